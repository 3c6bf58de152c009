"""The COSEM object model of a simulated prepayment meter (Blue Book classes).

Each object answers ``get``/``set``/``action`` with A-XDR :class:`Data` values or
a data-access-result code; live values come from :class:`MeterState`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from . import axdr, tokens
from .axdr import (
    Data,
    array,
    boolean,
    enum,
    i8,
    i16,
    i32,
    octets,
    struct_,
    u8,
    u16,
    u32,
)
from .model import (
    EV_FIRMWARE_ACTIVATED,
    EV_FIRMWARE_ACTIVATION_FAILED,
    EV_FIRMWARE_READY,
    EV_FIRMWARE_VERIFY_FAILED,
    EV_REMOTE_DISCONNECTION,
    ImageState,
    MeterState,
    ProfileRow,
)
from .xdlms import (
    OBJECT_UNAVAILABLE,
    OTHER_REASON,
    READ_WRITE_DENIED,
    SUCCESS,
    TEMPORARY_FAILURE,
    TYPE_UNMATCHED,
)

Result = Data | int
ActionResult = tuple[int, Data | None]

IMAGE_BLOCK_SIZE = 192


def obis(text: str) -> bytes:
    """'1.0.1.8.0.255' -> 6 bytes."""
    parts = [int(p) for p in text.replace(":", ".").replace("-", ".").split(".")]
    if len(parts) != 6:
        raise ValueError(f"bad OBIS code {text!r}")
    return bytes(parts)


CLOCK = obis("0.0.1.0.0.255")
ENERGY_IMPORT = obis("1.0.1.8.0.255")
ACTIVE_POWER = obis("1.0.1.7.0.255")
MAX_DEMAND = obis("1.0.1.6.0.255")
ASSOCIATION = obis("0.0.40.0.0.255")


class CosemObject:
    class_id = 0
    version = 0
    attribute_count = 1
    method_count = 0
    writable: frozenset[int] = frozenset()

    def __init__(self, ln: bytes, state: MeterState) -> None:
        self.ln = ln
        self.state = state

    def get(self, attr: int, selector: int | None, params: Data | None) -> Result:
        if attr == 1:
            return octets(self.ln)
        if selector is not None:
            return OTHER_REASON  # selective access only on profiles
        return self.read(attr)

    def read(self, attr: int) -> Result:
        return OBJECT_UNAVAILABLE

    def set(self, attr: int, value: Data) -> int:
        if attr not in self.writable:
            return READ_WRITE_DENIED
        try:
            return self.write(attr, value)
        except (TypeError, ValueError, IndexError, AttributeError):
            return TYPE_UNMATCHED

    def write(self, attr: int, value: Data) -> int:
        return READ_WRITE_DENIED

    def action(self, method: int, param: Data | None) -> ActionResult:
        return OBJECT_UNAVAILABLE, None


def _int(value: Data) -> int:
    if not isinstance(value.value, int) or isinstance(value.value, bool):
        raise TypeError("integer expected")
    return value.value


class DataObject(CosemObject):
    """Class 1 with a value provider."""

    class_id = 1
    attribute_count = 2

    def __init__(self, ln: bytes, state: MeterState, provider) -> None:
        super().__init__(ln, state)
        self.provider = provider

    def read(self, attr: int) -> Result:
        return self.provider() if attr == 2 else OBJECT_UNAVAILABLE


class Register(CosemObject):
    """Class 3: value (attr 2) with scaler_unit (attr 3)."""

    class_id = 3
    attribute_count = 3

    def __init__(self, ln, state, provider, scaler: int, unit: int) -> None:
        super().__init__(ln, state)
        self.provider = provider
        self.scaler_unit = struct_(i8(scaler), enum(unit))

    def read(self, attr: int) -> Result:
        if attr == 2:
            return self.provider()
        if attr == 3:
            return self.scaler_unit
        return OBJECT_UNAVAILABLE


class ExtendedRegister(Register):
    """Class 4: maximum demand (value, scaler_unit, status, capture_time)."""

    class_id = 4
    attribute_count = 5

    def read(self, attr: int) -> Result:
        if attr == 4:
            return u8(0)
        if attr == 5:
            t = self.state.max_demand_time
            return axdr.datetime_data(t) if t else octets(b"\xff" * 12)
        return super().read(attr)


class Clock(CosemObject):
    class_id = 8
    attribute_count = 9
    writable = frozenset({2})

    def read(self, attr: int) -> Result:
        if attr == 2:
            return axdr.datetime_data(self.state.meter_time())
        if attr == 3:
            return i16(0)
        if attr == 4:
            return u8(0)  # status
        if attr in (5, 6):
            return octets(b"\xff" * 12)  # no DST
        if attr == 7:
            return i8(0)
        if attr == 8:
            return boolean(False)
        if attr == 9:
            return enum(1)  # internal crystal
        return OBJECT_UNAVAILABLE

    def write(self, attr: int, value: Data) -> int:
        if value.tag not in (axdr.OCTET_STRING, axdr.DATE_TIME):
            return TYPE_UNMATCHED
        new = axdr.decode_datetime(value.value)
        if new is None:
            return TYPE_UNMATCHED
        self.state.set_meter_time(new)
        return SUCCESS


def _capture_object(class_id: int, ln: bytes, attr: int) -> Data:
    return struct_(u16(class_id), octets(ln), i8(attr), u16(0))


class ProfileGeneric(CosemObject):
    """Class 7 (version 1) over a list of ProfileRow, with selective access."""

    class_id = 7
    version = 1
    attribute_count = 8
    method_count = 2

    def __init__(self, ln, state, rows_fn, columns, period: int, depth: int) -> None:
        super().__init__(ln, state)
        self.rows_fn = rows_fn  # () -> Iterable[ProfileRow]
        # columns: list of (class_id, ln, attr, value type constructor or None
        # for the clock column)
        self.columns = columns
        self.period = period
        self.depth = depth

    def _rows(self) -> list[ProfileRow]:
        self.state.advance()
        return list(self.rows_fn())

    def _row_data(self, row: ProfileRow, cols: list[int]) -> Data:
        cells = []
        for c in cols:
            if c == 0:
                cells.append(axdr.datetime_data(row.time))
            else:
                cells.append(self.columns[c][3](row.values[c - 1]))
        return struct_(*cells)

    def get(self, attr: int, selector: int | None, params: Data | None) -> Result:
        if attr != 2:
            return super().get(attr, selector, params)
        rows = self._rows()
        cols = list(range(len(self.columns)))
        try:
            if selector == 1:
                rows, cols = self._by_range(rows, params)
            elif selector == 2:
                rows, cols = self._by_entry(rows, params)
            elif selector is not None:
                return OTHER_REASON
        except (TypeError, ValueError, IndexError, axdr.AxdrError):
            return OTHER_REASON
        return array([self._row_data(r, cols) for r in rows])

    def _by_range(self, rows: list[ProfileRow], params: Data | None):
        if params is None or params.tag != axdr.STRUCTURE:
            raise ValueError("range descriptor must be a structure")
        restricting = params[0]
        if bytes(restricting[1].value) != CLOCK:
            raise ValueError("only the clock can restrict a range")
        lo = axdr.decode_datetime(params[1].value)
        hi = axdr.decode_datetime(params[2].value)
        selected = [
            r
            for r in rows
            if (lo is None or r.time >= lo) and (hi is None or r.time <= hi)
        ]
        cols = list(range(len(self.columns)))
        if len(params.value) > 3 and params[3].value:
            wanted = [
                (int(s[0].value), bytes(s[1].value), int(s[2].value))
                for s in params[3].value
            ]
            keys = [(c[0], c[1], c[2]) for c in self.columns]
            cols = [keys.index(w) for w in wanted]
        return selected, cols

    def _by_entry(self, rows: list[ProfileRow], params: Data | None):
        if params is None or params.tag != axdr.STRUCTURE:
            raise ValueError("entry descriptor must be a structure")
        first, last, first_col, last_col = (int(p.value) for p in params.value[:4])
        last = len(rows) if last == 0 else min(last, len(rows))
        last_col = len(self.columns) if last_col == 0 else last_col
        first, first_col = max(first, 1), max(first_col, 1)
        return rows[first - 1 : last], list(range(first_col - 1, last_col))

    def read(self, attr: int) -> Result:
        if attr == 3:
            return array([_capture_object(c[0], c[1], c[2]) for c in self.columns])
        if attr == 4:
            return u32(self.period)
        if attr == 5:
            return enum(1)  # fifo
        if attr == 6:
            return _capture_object(0, bytes(6), 0)
        if attr == 7:
            return u32(len(self._rows()))
        if attr == 8:
            return u32(self.depth)
        return OBJECT_UNAVAILABLE

    def action(self, method: int, param: Data | None) -> ActionResult:
        if method in (1, 2):
            return SUCCESS, None  # reset/capture accepted (buffer is simulated)
        return OBJECT_UNAVAILABLE, None


class DisconnectControl(CosemObject):
    class_id = 70
    attribute_count = 4
    method_count = 2
    writable = frozenset({4})

    def read(self, attr: int) -> Result:
        st = self.state
        st.advance()
        if attr == 2:
            return boolean(st.relay_connected)
        if attr == 3:
            return enum(st.control_state)
        if attr == 4:
            return enum(st.control_mode)
        return OBJECT_UNAVAILABLE

    def write(self, attr: int, value: Data) -> int:
        if value.tag != axdr.ENUM or not 0 <= value.value <= 6:
            return TYPE_UNMATCHED
        self.state.control_mode = value.value
        return SUCCESS

    def action(self, method: int, param: Data | None) -> ActionResult:
        st = self.state
        st.advance()
        if method == 1:
            st.open_relay("remote", EV_REMOTE_DISCONNECTION)
            return SUCCESS, None
        if method == 2:
            st.remote_reconnect()  # connected, or ready (control_mode)
            return SUCCESS, None
        return OBJECT_UNAVAILABLE, None


class Limiter(CosemObject):
    class_id = 71
    attribute_count = 11
    writable = frozenset({3, 4, 5, 6, 7})

    _fields = {
        3: "limiter_threshold_active_w",
        4: "limiter_threshold_normal_w",
        5: "limiter_threshold_emergency_w",
        6: "limiter_min_over_s",
        7: "limiter_min_under_s",
    }

    def read(self, attr: int) -> Result:
        if attr == 2:
            return struct_(u16(3), octets(ACTIVE_POWER), i8(2))
        if attr in self._fields:
            return u32(int(getattr(self.state, self._fields[attr])))
        if attr == 8:
            return struct_(u16(0), octets(b"\xff" * 12), u32(0))
        if attr == 9:
            return array([])
        if attr == 10:
            return boolean(False)
        if attr == 11:
            script = struct_(octets(obis("0.0.10.0.106.255")), u16(1))
            return struct_(script, script)
        return OBJECT_UNAVAILABLE

    def write(self, attr: int, value: Data) -> int:
        v = _int(value)
        if v < 0:
            return TYPE_UNMATCHED
        self.state.advance()
        setattr(self.state, self._fields[attr], v)
        return SUCCESS


class ImageTransfer(CosemObject):
    class_id = 18
    attribute_count = 7
    method_count = 4

    def _blocks_expected(self) -> int:
        return -(-self.state.image.size // IMAGE_BLOCK_SIZE)

    def read(self, attr: int) -> Result:
        img = self.state.image
        n = self._blocks_expected()
        if attr == 2:
            return u32(IMAGE_BLOCK_SIZE)
        if attr == 3:
            return axdr.bits("".join("1" if i in img.blocks else "0" for i in range(n)))
        if attr == 4:
            missing = [i for i in range(n) if i not in img.blocks]
            return u32(missing[0] if missing else n)
        if attr == 5:
            return boolean(True)
        if attr == 6:
            return enum(img.status)
        if attr == 7:
            if not img.identifier:
                return array([])
            sig = hashlib.sha256(self._image()[:-32]).digest() if img.size else b""
            return array([struct_(u32(img.size), octets(img.identifier), octets(sig))])
        return OBJECT_UNAVAILABLE

    def _image(self) -> bytes:
        img = self.state.image
        return b"".join(img.blocks.get(i, b"") for i in range(self._blocks_expected()))

    def action(self, method: int, param: Data | None) -> ActionResult:
        st = self.state
        img = st.image
        try:
            if method == 1:  # initiate {identifier, size}
                ident, size = bytes(param[0].value), _int(param[1])
                if size <= 32:
                    return OTHER_REASON, None
                st.image = ImageState(identifier=ident, size=size, status=1)
                return SUCCESS, None
            if method == 2:  # block {number, data}
                if img.status not in (1, 4):
                    return TEMPORARY_FAILURE, None
                number, data = _int(param[0]), bytes(param[1].value)
                if number >= self._blocks_expected() or len(data) > IMAGE_BLOCK_SIZE:
                    return OTHER_REASON, None
                img.blocks[number] = data
                img.status = 1
                return SUCCESS, None
        except (TypeError, IndexError, AttributeError):
            return TYPE_UNMATCHED, None
        if method == 3:  # verify: size announced + SHA-256 trailer
            if img.status == 0:
                return TEMPORARY_FAILURE, None
            image = self._image()
            body, digest = image[:-32], image[-32:]
            ok = len(image) == img.size and hashlib.sha256(body).digest() == digest
            img.status = 3 if ok else 4
            st.log_event(EV_FIRMWARE_READY if ok else EV_FIRMWARE_VERIFY_FAILED)
            return (SUCCESS if ok else OTHER_REASON), None
        if method == 4:  # activate
            if img.status not in (3, 6):
                return OTHER_REASON, None
            if st.activation_failures > 0:
                # The new image does not start: the meter falls back to the
                # one it ran before and says so in the status (7).
                st.activation_failures -= 1
                img.status = 7
                st.log_event(EV_FIRMWARE_ACTIVATION_FAILED)
                return SUCCESS, None
            st.firmware_id = img.identifier.decode("ascii", "replace")
            img.status = 6
            st.log_event(EV_FIRMWARE_ACTIVATED)
            return SUCCESS, None
        return OBJECT_UNAVAILABLE, None


class SpecialDays(CosemObject):
    class_id = 11
    attribute_count = 2
    method_count = 2

    def read(self, attr: int) -> Result:
        if attr == 2:
            return array(
                [
                    struct_(u16(i), octets(d), u8(day))
                    for i, d, day in self.state.special_days
                ]
            )
        return OBJECT_UNAVAILABLE

    def action(self, method: int, param: Data | None) -> ActionResult:
        days = self.state.special_days
        try:
            if method == 1:  # insert {index, date, day_id}
                entry = (_int(param[0]), bytes(param[1].value), _int(param[2]))
                days[:] = [d for d in days if d[0] != entry[0]] + [entry]
                days.sort()
                return SUCCESS, None
            if method == 2:  # delete index
                days[:] = [d for d in days if d[0] != _int(param)]
                return SUCCESS, None
        except (TypeError, IndexError, AttributeError):
            return TYPE_UNMATCHED, None
        return OBJECT_UNAVAILABLE, None


class ActivityCalendar(CosemObject):
    class_id = 20
    attribute_count = 10
    method_count = 1
    writable = frozenset({6, 7, 8, 9, 10})

    def read(self, attr: int) -> Result:
        stored = self.state.calendar_passive
        if attr in (2, 6):
            return stored.get(attr, octets(b""))  # type: ignore[return-value]
        if attr in (3, 4, 5, 7, 8, 9):
            return stored.get(attr, array([]))  # type: ignore[return-value]
        if attr == 10:
            return stored.get(attr, octets(b"\xff" * 12))  # type: ignore[return-value]
        return OBJECT_UNAVAILABLE

    def write(self, attr: int, value: Data) -> int:
        self.state.calendar_passive[attr] = value
        return SUCCESS

    def action(self, method: int, param: Data | None) -> ActionResult:
        if method == 1:  # activate_passive_calendar: passive -> active
            cal = self.state.calendar_passive
            for passive, active in ((6, 2), (7, 3), (8, 4), (9, 5)):
                if passive in cal:
                    cal[active] = cal[passive]
            return SUCCESS, None
        return OBJECT_UNAVAILABLE, None


class Account(CosemObject):
    class_id = 111
    attribute_count = 19

    def read(self, attr: int) -> Result:
        st = self.state
        if attr == 2:
            return struct_(enum(2 if st.prepaid else 1), enum(st.account_status))
        if attr == 3:
            return u8(0)
        if attr == 4:
            return axdr.bits("00000000")
        if attr == 5:
            st.advance()
            return i32(round(st.credit_wh))
        if attr == 16:
            return i32(0)
        return OBJECT_UNAVAILABLE


class Credit(CosemObject):
    class_id = 112
    attribute_count = 11
    method_count = 3

    def read(self, attr: int) -> Result:
        st = self.state
        st.advance()
        if attr == 2:
            return i32(round(st.credit_wh))
        if attr == 3:
            return enum(0)  # token credit
        if attr == 4:
            return u8(1)
        if attr in (5, 6, 9, 10):
            return i32(0)
        if attr == 7:
            return axdr.bits("00000")
        if attr == 8:
            return enum(3 if st.credit_wh > 0 else 4)  # in use / exhausted
        if attr == 11:
            return u32(0)
        return OBJECT_UNAVAILABLE

    def action(self, method: int, param: Data | None) -> ActionResult:
        try:
            if method == 1:  # update_amount
                self.state.add_credit_wh(_int(param))
                return SUCCESS, None
            if method == 2:  # set_amount_to_value
                self.state.advance()
                self.state.credit_wh = 0.0
                self.state.add_credit_wh(_int(param))
                return SUCCESS, None
        except (TypeError, AttributeError):
            return TYPE_UNMATCHED, None
        return OBJECT_UNAVAILABLE, None


class TokenGateway(CosemObject):
    class_id = 115
    attribute_count = 6
    method_count = 1

    def read(self, attr: int) -> Result:
        st = self.state
        if attr == 2:
            return octets(st.last_token)
        if attr == 3:
            t = st.token_time
            return axdr.datetime_data(t) if t else octets(b"\xff" * 12)
        if attr == 4:
            return array([])
        if attr == 5:
            return enum(0)  # remote
        if attr == 6:
            ts = st.token_status
            return struct_(enum(ts.status), axdr.bits(ts.data))
        return OBJECT_UNAVAILABLE

    def action(self, method: int, param: Data | None) -> ActionResult:
        if method != 1:
            return OBJECT_UNAVAILABLE, None
        if param is None or param.tag not in (axdr.OCTET_STRING, axdr.VISIBLE_STRING):
            return TYPE_UNMATCHED, None
        raw = param.value if isinstance(param.value, bytes) else param.value.encode()
        # "success" means the meter received the token; the outcome is attr 6.
        tokens.enter_token(self.state, raw, self.state.meter_time())
        return SUCCESS, None


def build_objects(state: MeterState) -> dict[bytes, CosemObject]:
    """All objects of the contract, keyed by logical name (association excluded)."""
    st = state
    cfg = st.config

    def energy(attr_name: str, factor: float = 1.0):
        def provider() -> Data:
            st.advance()
            return u32(round(getattr(st, attr_name) * factor) & 0xFFFFFFFF)

        return provider

    def power() -> Data:
        return u32(round(st.active_power_w))

    # Every register value is double-long-unsigned, as the contract fixes it,
    # so a head-end can decode all of them the same way.
    def voltage() -> Data:
        return u32(2300)  # 230.0 V

    def current() -> Data:
        return u32(round(st.active_power_w / 230.0 / 0.95 * 100))

    objs: list[CosemObject] = [
        DataObject(obis("0.0.42.0.0.255"), st, lambda: octets(cfg.logical_device_name)),
        DataObject(
            obis("1.0.0.2.0.255"), st, lambda: octets(st.firmware_id.encode("ascii"))
        ),
        Clock(CLOCK, st),
        Register(ENERGY_IMPORT, st, energy("energy_import_wh"), 0, 30),
        Register(obis("1.0.2.8.0.255"), st, energy("energy_export_wh"), 0, 30),
        # Reactive energy follows active energy at a power factor of 0.95.
        Register(obis("1.0.3.8.0.255"), st, energy("energy_import_wh", 0.3287), 0, 32),
        Register(obis("1.0.4.8.0.255"), st, energy("energy_export_wh", 0.3287), 0, 32),
        Register(ACTIVE_POWER, st, power, 0, 27),
        Register(obis("1.0.32.7.0.255"), st, voltage, -1, 35),
        Register(obis("1.0.31.7.0.255"), st, current, -2, 33),
        Register(obis("1.0.14.7.0.255"), st, lambda: u32(5000), -2, 44),
        Register(obis("1.0.13.7.0.255"), st, lambda: u32(950), -3, 255),
        ExtendedRegister(MAX_DEMAND, st, lambda: u32(st.max_demand_w), 0, 27),
        ProfileGeneric(
            obis("1.0.99.1.0.255"),
            st,
            lambda: st.load_profile,
            [
                (8, CLOCK, 2, None),
                (3, ENERGY_IMPORT, 2, u32),
                (3, ACTIVE_POWER, 2, u32),
            ],
            900,
            192,
        ),
        ProfileGeneric(
            obis("0.0.98.1.0.255"),
            st,
            lambda: st.billing,
            [(8, CLOCK, 2, None), (3, ENERGY_IMPORT, 2, u32), (4, MAX_DEMAND, 2, u32)],
            0,
            12,
        ),
        DataObject(obis("0.0.96.11.0.255"), st, lambda: u8(_last_code(st.events))),
        DataObject(
            obis("0.0.96.11.2.255"), st, lambda: u8(_last_code(st.disconnector_events))
        ),
        ProfileGeneric(
            obis("0.0.99.98.0.255"),
            st,
            lambda: st.events,
            [(8, CLOCK, 2, None), (1, obis("0.0.96.11.0.255"), 2, u8)],
            0,
            100,
        ),
        ProfileGeneric(
            obis("0.0.99.98.2.255"),
            st,
            lambda: st.disconnector_events,
            [(8, CLOCK, 2, None), (1, obis("0.0.96.11.2.255"), 2, u8)],
            0,
            100,
        ),
        DataObject(obis("0.0.97.98.0.255"), st, lambda: u32(st.alarm_register)),
        DisconnectControl(obis("0.0.96.3.10.255"), st),
        Limiter(obis("0.0.17.0.0.255"), st),
        ImageTransfer(obis("0.0.44.0.0.255"), st),
        SpecialDays(obis("0.0.11.0.0.255"), st),
        ActivityCalendar(obis("0.0.13.0.0.255"), st),
        Account(obis("0.0.19.0.0.255"), st),
        Credit(obis("0.0.19.10.0.255"), st),
        TokenGateway(obis("0.0.19.40.0.255"), st),
    ]
    return {o.ln: o for o in objs}


def _last_code(rows: Iterable[ProfileRow]) -> int:
    last = 0
    for row in rows:
        last = row.values[0]
    return last


__all__ = ["CosemObject", "build_objects", "obis"]
