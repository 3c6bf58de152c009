"""High-level meter operations on an open DlmsSession.

Each function performs the GET/SET/ACTION sequence for one business operation
and returns plain Python values (aware UTC datetimes, floats with the scaler
applied, ints for enums) so callers never see gurux types.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import axdr
from .errors import FirmwareError, MalformedReply, ServiceError
from .session import DlmsSession

# OBIS codes of the project's meters (the contract: docs/dlms.md section 6).
CLOCK = "0.0.1.0.0.255"
LOGICAL_DEVICE_NAME = "0.0.42.0.0.255"
ACTIVE_FIRMWARE_ID = "1.0.0.2.0.255"
ENERGY_IMPORT = "1.0.1.8.0.255"
ENERGY_EXPORT = "1.0.2.8.0.255"
ACTIVE_POWER = "1.0.1.7.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"
BILLING_PROFILE = "0.0.98.1.0.255"
STANDARD_EVENT_LOG = "0.0.99.98.0.255"
DISCONNECTOR_EVENT_LOG = "0.0.99.98.2.255"
ALARM_REGISTER = "0.0.97.98.0.255"
DISCONNECT_CONTROL = "0.0.96.3.10.255"
LIMITER = "0.0.17.0.0.255"
IMAGE_TRANSFER = "0.0.44.0.0.255"
ACCOUNT = "0.0.19.0.0.255"
CREDIT = "0.0.19.10.0.255"
TOKEN_GATEWAY = "0.0.19.40.0.255"

CLASS_DATA, CLASS_REGISTER, CLASS_DEMAND_REGISTER = 1, 3, 4
CLASS_PROFILE, CLASS_CLOCK, CLASS_IMAGE_TRANSFER = 7, 8, 18
CLASS_DISCONNECT, CLASS_LIMITER = 70, 71
CLASS_ACCOUNT, CLASS_CREDIT, CLASS_TOKEN_GATEWAY = 111, 112, 115

# DLMS unit enumeration (Blue Book table) for the units the meters use.
UNITS = {
    27: "W",
    28: "VA",
    29: "var",
    30: "Wh",
    31: "VAh",
    32: "varh",
    33: "A",
    35: "V",
    44: "Hz",
    255: "",
}

# image_transfer_status (class 18 attr 6)
IMAGE_STATUS = {
    0: "not_initiated",
    1: "initiated",
    2: "verification_initiated",
    3: "verification_successful",
    4: "verification_failed",
    5: "activation_initiated",
    6: "activation_successful",
    7: "activation_failed",
}

# token_status codes (class 115 attr 6)
TOKEN_STATUS = {
    0: "format_ok",
    1: "authentication_ok",
    2: "validation_ok",
    3: "execution_ok",
    4: "format_failure",
    5: "authentication_failure",
    6: "validation_failure",
    7: "execution_failure",
    8: "received",
}


@dataclass(frozen=True)
class Reading:
    obis: str
    value: float | int
    unit: int
    raw: int
    scaler: int

    @property
    def unit_name(self) -> str:
        return UNITS.get(self.unit, str(self.unit))


@dataclass(frozen=True)
class RelayState:
    output_state: bool
    control_state: int  # 0 disconnected, 1 connected, 2 ready_for_reconnection


@dataclass(frozen=True)
class TokenStatus:
    status: int
    data: str  # bit-string as "0101..."

    @property
    def name(self) -> str:
        return TOKEN_STATUS.get(self.status, str(self.status))

    @property
    def accepted(self) -> bool:
        return self.status == 3


@dataclass(frozen=True)
class CaptureObject:
    class_id: int
    obis: str
    attr: int
    data_index: int

    @property
    def column(self) -> str:
        return f"{self.obis}:{self.attr}"


@dataclass(frozen=True)
class FirmwareResult:
    identifier: str
    blocks: int
    status: int
    active_firmware_id: str | None


# -- value helpers ---------------------------------------------------------
def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise MalformedReply(f"expected an integer, got {value!r}") from exc


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    raise MalformedReply(f"expected an octet-string, got {value!r}")


def _seq(value: Any, size: int | None = None) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise MalformedReply(f"expected a structure, got {value!r}")
    if size is not None and len(value) < size:
        raise MalformedReply(f"structure of {len(value)} items, {size} expected")
    return list(value)


def _datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, (bytes, bytearray)):
        try:
            return axdr.decode_datetime(bytes(value))
        except ValueError as exc:
            raise MalformedReply(str(exc)) from exc
    inner = getattr(value, "value", None)  # a GXDateTime decoded by gurux
    if isinstance(inner, dt.datetime):
        return axdr.to_utc(inner) if inner.tzinfo else inner.replace(tzinfo=axdr.UTC)
    if value is None:
        return None
    raise MalformedReply(f"expected a date-time, got {value!r}")


def bits(value: Any) -> str:
    """gurux bit-string -> '0101...'."""
    if value is None:
        return ""
    if hasattr(value, "toString"):  # GXBitString
        return value.toString(False)
    return str(value)


# -- registers and clock ---------------------------------------------------
async def read_scaler_unit(session: DlmsSession, obis: str, class_id: int = 3):
    su = _seq(await session.get(obis, class_id, 3), 2)
    return _int(su[0]), _int(su[1])


async def read_register(
    session: DlmsSession,
    obis: str,
    class_id: int = CLASS_REGISTER,
    scaler_unit: tuple[int, int] | None = None,
) -> Reading:
    """Value (attr 2) with the scaler of attr 3 applied (pass `scaler_unit`
    when already known to save a round trip)."""
    scaler, unit = scaler_unit or await read_scaler_unit(session, obis, class_id)
    raw = _int(await session.get(obis, class_id, 2))
    value: float | int = raw * 10**scaler if scaler >= 0 else raw / 10**-scaler
    return Reading(obis, value, unit, raw, scaler)


async def read_clock(session: DlmsSession) -> dt.datetime:
    value = _datetime(await session.get(CLOCK, CLASS_CLOCK, 2))
    if value is None:
        raise MalformedReply("meter clock is not set")
    return value


async def set_clock(
    session: DlmsSession, when: dt.datetime | None = None
) -> dt.datetime:
    """Set the meter time (UTC, deviation 0); returns the time read back."""
    when = axdr.to_utc(when) if when else dt.datetime.now(axdr.UTC)
    await session.set(
        CLOCK, CLASS_CLOCK, 2, axdr.octet_string(axdr.encode_datetime(when))
    )
    return await read_clock(session)


async def read_firmware_id(session: DlmsSession) -> str:
    return _bytes(await session.get(ACTIVE_FIRMWARE_ID, CLASS_DATA, 2)).decode(
        "ascii", "replace"
    )


async def read_alarm_register(session: DlmsSession) -> int:
    return _int(await session.get(ALARM_REGISTER, CLASS_DATA, 2))


# -- relay -----------------------------------------------------------------
async def relay_status(session: DlmsSession) -> RelayState:
    out = await session.get(DISCONNECT_CONTROL, CLASS_DISCONNECT, 2)
    ctl = await session.get(DISCONNECT_CONTROL, CLASS_DISCONNECT, 3)
    return RelayState(bool(out), _int(ctl))


async def disconnect(session: DlmsSession) -> RelayState:
    """remote_disconnect, then read back the confirmed state."""
    await session.action(DISCONNECT_CONTROL, CLASS_DISCONNECT, 1, axdr.int8(0))
    return await relay_status(session)


async def reconnect(session: DlmsSession) -> RelayState:
    await session.action(DISCONNECT_CONTROL, CLASS_DISCONNECT, 2, axdr.int8(0))
    return await relay_status(session)


# -- profiles --------------------------------------------------------------
async def read_capture_objects(session: DlmsSession, obis: str) -> list[CaptureObject]:
    out = []
    for item in _seq(await session.get(obis, CLASS_PROFILE, 3)):
        f = _seq(item, 4)
        out.append(
            CaptureObject(
                _int(f[0]), axdr.obis_str(_bytes(f[1])), _int(f[2]), _int(f[3])
            )
        )
    return out


def _convert_rows(captures: Sequence[CaptureObject], buffer: Any) -> list[list[Any]]:
    clock_cols = {
        i for i, c in enumerate(captures) if c.class_id == CLASS_CLOCK and c.attr == 2
    }
    rows = []
    for raw_row in _seq(buffer) if buffer is not None else []:
        row = _seq(raw_row)
        rows.append(
            [_datetime(v) if i in clock_cols else _plain(v) for i, v in enumerate(row)]
        )
    return rows


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (int, float, str)):
        return _plain(value.value)
    return value


def _range_access(captures: Sequence[CaptureObject], start, end) -> bytes:
    clock = next(
        (c for c in captures if c.class_id == CLASS_CLOCK and c.attr == 2),
        CaptureObject(CLASS_CLOCK, CLOCK, 2, 0),
    )
    restricting = axdr.structure(
        [
            axdr.uint16(clock.class_id),
            axdr.octet_string(axdr.obis_bytes(clock.obis)),
            axdr.int8(clock.attr),
            axdr.uint16(clock.data_index),
        ]
    )
    params = axdr.structure(
        [
            restricting,
            axdr.octet_string(axdr.encode_datetime(start)),
            axdr.octet_string(axdr.encode_datetime(end)),
            axdr.array([]),  # all columns
        ]
    )
    return b"\x01" + params


async def read_profile(
    session: DlmsSession,
    obis: str,
    start: dt.datetime,
    end: dt.datetime,
    captures: Sequence[CaptureObject] | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """Rows whose capture time is within [start, end] (selective access by
    range, selector 1). Returns (columns "obis:attr", rows) with the clock
    column as aware UTC datetimes; other values raw (no scaler)."""
    captures = captures or await read_capture_objects(session, obis)
    buffer = await session.get(
        obis, CLASS_PROFILE, 2, _range_access(captures, start, end)
    )
    return [c.column for c in captures], _convert_rows(captures, buffer)


async def read_profile_by_entry(
    session: DlmsSession,
    obis: str,
    from_entry: int = 1,
    to_entry: int = 0,
    captures: Sequence[CaptureObject] | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """Selective access by entry (selector 2): entries are 1-based, to 0 =
    up to the last entry."""
    if from_entry < 1 or to_entry < 0:
        raise ValueError("from_entry must be >= 1 and to_entry >= 0")
    captures = captures or await read_capture_objects(session, obis)
    access = b"\x02" + axdr.structure(
        [axdr.uint32(from_entry), axdr.uint32(to_entry), axdr.uint16(1), axdr.uint16(0)]
    )
    buffer = await session.get(obis, CLASS_PROFILE, 2, access)
    return [c.column for c in captures], _convert_rows(captures, buffer)


async def read_event_log(
    session: DlmsSession,
    obis: str = STANDARD_EVENT_LOG,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[tuple[dt.datetime | None, int]]:
    """(time, event code) pairs, whole log or a time range."""
    if start is not None and end is not None:
        _cols, rows = await read_profile(session, obis, start, end)
    else:
        _cols, rows = await read_profile_by_entry(session, obis, 1, 0)
    return [(r[0], _int(r[1])) for r in rows]


# -- prepayment --------------------------------------------------------------
async def enter_token(session: DlmsSession, token: str) -> TokenStatus:
    """Enter an STS token (20 digits) through the token gateway and return the
    meter's verdict (attr 6). The ACTION succeeding only means "received"."""
    digits = token.replace(" ", "").replace("-", "")
    await session.action(
        TOKEN_GATEWAY,
        CLASS_TOKEN_GATEWAY,
        1,
        axdr.octet_string(digits.encode("ascii")),
    )
    status = _seq(await session.get(TOKEN_GATEWAY, CLASS_TOKEN_GATEWAY, 6), 1)
    return TokenStatus(_int(status[0]), bits(status[1]) if len(status) > 1 else "")


async def read_last_token(session: DlmsSession) -> str:
    """The last token the gateway received (class 115 attr 2), as digits."""
    value = await session.get(TOKEN_GATEWAY, CLASS_TOKEN_GATEWAY, 2)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("ascii", "replace")
    return str(value or "")


async def read_credit_wh(session: DlmsSession) -> int:
    return _int(await session.get(CREDIT, CLASS_CREDIT, 2))


async def read_account(session: DlmsSession) -> tuple[int, int]:
    """(payment_mode, account_status)."""
    value = _seq(await session.get(ACCOUNT, CLASS_ACCOUNT, 2), 2)
    return _int(value[0]), _int(value[1])


LIMITER_ATTRS = {
    "active": 3,
    "normal": 4,
    "emergency": 5,
    "min_over_threshold_duration": 6,
    "min_under_threshold_duration": 7,
}
# Written last, so a meter never runs a new active threshold with old durations.
LIMITER_WRITE_ORDER = (
    "normal",
    "emergency",
    "min_over_threshold_duration",
    "min_under_threshold_duration",
    "active",
)


async def read_limiter(session: DlmsSession) -> dict[str, int]:
    """Thresholds (W) and minimum over/under durations (s) of the limiter."""
    out = {}
    for name, attr in LIMITER_ATTRS.items():
        out[name] = _int(await session.get(LIMITER, CLASS_LIMITER, attr))
    return out


async def write_limiter_threshold(
    session: DlmsSession, watts: int, which: str = "active"
) -> int:
    """Set threshold_active/normal/emergency (W) and read it back."""
    attr = LIMITER_ATTRS[which]
    await session.set(LIMITER, CLASS_LIMITER, attr, axdr.uint32(int(watts)))
    return _int(await session.get(LIMITER, CLASS_LIMITER, attr))


async def write_limiter(session: DlmsSession, values: dict[str, int]) -> dict[str, int]:
    """Write the given limiter attributes (names of ``LIMITER_ATTRS``), the
    active threshold last, then read the whole limiter back; a value the meter
    did not keep is a :class:`ServiceError`."""
    unknown = set(values) - set(LIMITER_ATTRS)
    if unknown:
        raise ValueError(f"unknown limiter attributes: {sorted(unknown)}")
    for name in LIMITER_WRITE_ORDER:
        if name in values:
            value = axdr.uint32(int(values[name]))
            await session.set(LIMITER, CLASS_LIMITER, LIMITER_ATTRS[name], value)
    back = await read_limiter(session)
    differ = {k: (v, back[k]) for k, v in values.items() if back[k] != int(v)}
    if differ:
        raise ServiceError(f"limiter read-back differs (written, read): {differ}")
    return back


# -- firmware ------------------------------------------------------------------
def build_image(body: bytes) -> bytes:
    """The project's image format: body || SHA-256(body)."""
    return bytes(body) + hashlib.sha256(body).digest()


async def image_status(session: DlmsSession) -> int:
    return _int(await session.get(IMAGE_TRANSFER, CLASS_IMAGE_TRANSFER, 6))


async def upgrade_firmware(
    session: DlmsSession,
    identifier: str,
    image: bytes,
    activate: bool = True,
    poll_interval: float = 0.2,
    max_polls: int = 50,
) -> FirmwareResult:
    """Image transfer: initiate, blocks, verify (polling the status while the
    meter works), then activate now (or leave it verified when activate is
    False) and read back the active firmware identifier."""
    block_size = _int(await session.get(IMAGE_TRANSFER, CLASS_IMAGE_TRANSFER, 2))
    if block_size <= 0:
        raise FirmwareError(f"meter announces image block size {block_size}")
    ident = identifier.encode("ascii")
    await session.action(
        IMAGE_TRANSFER,
        CLASS_IMAGE_TRANSFER,
        1,
        axdr.structure([axdr.octet_string(ident), axdr.uint32(len(image))]),
    )
    count = (len(image) + block_size - 1) // block_size
    for n in range(count):
        chunk = image[n * block_size : (n + 1) * block_size]
        await session.action(
            IMAGE_TRANSFER,
            CLASS_IMAGE_TRANSFER,
            2,
            axdr.structure([axdr.uint32(n), axdr.octet_string(chunk)]),
        )
    status = await _verify(session, poll_interval, max_polls)
    if not activate:
        return FirmwareResult(identifier, count, status, None)
    return await activate_image(session, identifier, count, poll_interval, max_polls)


async def _verify(session: DlmsSession, poll_interval: float, max_polls: int) -> int:
    try:
        await session.action(IMAGE_TRANSFER, CLASS_IMAGE_TRANSFER, 3, axdr.int8(0))
    except ServiceError:
        pass  # temporary-failure = still verifying, other = failed: poll
    for _ in range(max_polls):
        status = await image_status(session)
        if status == 3:
            return status
        if status == 4:
            raise FirmwareError("image verification failed (size or hash)", status)
        if status != 2:
            raise FirmwareError(
                f"unexpected image transfer status {IMAGE_STATUS.get(status, status)}",
                status,
            )
        await asyncio.sleep(poll_interval)
    raise FirmwareError("image verification did not complete", 2)


async def activate_image(
    session: DlmsSession,
    identifier: str,
    blocks: int = 0,
    poll_interval: float = 0.2,
    max_polls: int = 50,
) -> FirmwareResult:
    try:
        await session.action(IMAGE_TRANSFER, CLASS_IMAGE_TRANSFER, 4, axdr.int8(0))
    except ServiceError as exc:
        raise FirmwareError(f"activation refused: {exc}") from exc
    status = await image_status(session)
    for _ in range(max_polls):
        if status != 5:
            break
        await asyncio.sleep(poll_interval)
        status = await image_status(session)
    if status == 7:
        raise FirmwareError("image activation failed", status)
    active = await read_firmware_id(session)
    if active != identifier:
        raise FirmwareError(
            f"active firmware is {active!r} after activation, not {identifier!r}",
            status,
        )
    return FirmwareResult(identifier, blocks, status, active)


def jsonable(value: Any) -> Any:
    """Convert decoded values for JSON output (CLI, logs)."""
    if isinstance(value, dt.datetime):
        return axdr.to_utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        if raw and all(0x20 <= b < 0x7F for b in raw):
            return raw.decode("ascii")
        return raw.hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if type(value).__name__ == "GXBitString":
        return bits(value)
    inner = getattr(value, "value", None)
    if inner is not None:
        return jsonable(inner)
    return str(value)
