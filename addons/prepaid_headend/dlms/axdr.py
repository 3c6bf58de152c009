"""Minimal A-XDR encoder and COSEM date-time codec (client side).

Request parameters are encoded here and handed to gurux as pre-encoded bytes,
so values never go through gurux's type guessing or its local-timezone
date-time handling (GXDateTime attaches the *process* timezone to naive
datetimes). Every time in this package is an aware UTC datetime on the Python
side and a COSEM date-time with deviation 0 on the wire.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

UTC = dt.UTC

# A-XDR data type tags (IEC 62056-6-2).
NULL = 0x00
ARRAY = 0x01
STRUCTURE = 0x02
BOOLEAN = 0x03
BIT_STRING = 0x04
DOUBLE_LONG = 0x05
DOUBLE_LONG_UNSIGNED = 0x06
OCTET_STRING = 0x09
VISIBLE_STRING = 0x0A
INTEGER = 0x0F
LONG = 0x10
UNSIGNED = 0x11
LONG_UNSIGNED = 0x12
ENUM = 0x16

DEVIATION_UNSPECIFIED = -0x8000


def length(n: int) -> bytes:
    """BER-style length used by A-XDR for arrays, structures and strings."""
    if n < 0:
        raise ValueError("negative length")
    if n < 0x80:
        return bytes([n])
    size = (n.bit_length() + 7) // 8
    return bytes([0x80 | size]) + n.to_bytes(size, "big")


def octet_string(value: bytes) -> bytes:
    return bytes([OCTET_STRING]) + length(len(value)) + bytes(value)


def visible_string(value: str) -> bytes:
    raw = value.encode("ascii")
    return bytes([VISIBLE_STRING]) + length(len(raw)) + raw


def uint32(value: int) -> bytes:
    return bytes([DOUBLE_LONG_UNSIGNED]) + value.to_bytes(4, "big")


def int32(value: int) -> bytes:
    return bytes([DOUBLE_LONG]) + value.to_bytes(4, "big", signed=True)


def uint16(value: int) -> bytes:
    return bytes([LONG_UNSIGNED]) + value.to_bytes(2, "big")


def uint8(value: int) -> bytes:
    return bytes([UNSIGNED, value])


def int8(value: int) -> bytes:
    return bytes([INTEGER]) + value.to_bytes(1, "big", signed=True)


def enum(value: int) -> bytes:
    return bytes([ENUM, value])


def boolean(value: bool) -> bytes:
    return bytes([BOOLEAN, 1 if value else 0])


def structure(items: Sequence[bytes]) -> bytes:
    return bytes([STRUCTURE]) + length(len(items)) + b"".join(items)


def array(items: Sequence[bytes]) -> bytes:
    return bytes([ARRAY]) + length(len(items)) + b"".join(items)


def obis_bytes(obis: str) -> bytes:
    """'1.0.1.8.0.255' (also '1-0:1.8.0.255') -> 6 bytes."""
    parts = obis.replace("-", ".").replace(":", ".").split(".")
    if len(parts) != 6:
        raise ValueError(f"invalid OBIS code {obis!r}")
    try:
        raw = bytes(int(p) for p in parts)
    except ValueError as exc:
        raise ValueError(f"invalid OBIS code {obis!r}") from exc
    return raw


def obis_str(raw: bytes) -> str:
    if len(raw) != 6:
        raise ValueError("logical name must be 6 bytes")
    return ".".join(str(b) for b in raw)


def encode_datetime(value: dt.datetime) -> bytes:
    """12-byte COSEM date-time in UTC (deviation 0, clock status 0).

    Naive datetimes are refused: guessing a timezone is exactly the bug this
    module exists to avoid."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime refused: pass an aware (UTC) datetime")
    u = value.astimezone(UTC)
    return (
        u.year.to_bytes(2, "big")
        + bytes(
            [
                u.month,
                u.day,
                u.isoweekday(),
                u.hour,
                u.minute,
                u.second,
                u.microsecond // 10000,
            ]
        )
        + (0).to_bytes(2, "big", signed=True)
        + b"\x00"
    )


def decode_datetime(raw: bytes) -> dt.datetime | None:
    """COSEM date-time (12 bytes) -> aware UTC datetime.

    Deviation follows the Blue Book convention (minutes to add to local time
    to get UTC); 0x8000 (not specified) is taken as UTC, which is what the
    project's meters send. Returns None for an all-wildcard value."""
    raw = bytes(raw)
    if len(raw) != 12:
        raise ValueError(f"COSEM date-time must be 12 bytes, got {len(raw)}")
    year = int.from_bytes(raw[0:2], "big")
    month, day, _dow, hour, minute, second, hundredths = raw[2:9]
    if year == 0xFFFF and month == 0xFF and day == 0xFF:
        return None
    if 0xFF in (month, day, hour, minute) or year == 0xFFFF:
        raise ValueError(f"date-time with wildcards not supported: {raw.hex()}")
    second = 0 if second == 0xFF else second
    micro = 0 if hundredths == 0xFF else hundredths * 10000
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    local = dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    if deviation != DEVIATION_UNSPECIFIED:
        local += dt.timedelta(minutes=deviation)
    return local


def to_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime refused: pass an aware (UTC) datetime")
    return value.astimezone(UTC)


def parse_iso(text: str) -> dt.datetime:
    """ISO 8601 -> aware UTC; a string without offset is read as UTC."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
