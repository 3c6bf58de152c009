"""A-XDR encoding of COSEM ``Data`` values (IEC 62056-6-2 / Green Book 9.5).

Values are held as :class:`Data` (tag + Python value) so that a decoded SET or
ACTION argument keeps its wire type and can be re-encoded byte for byte.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from typing import Any


class AxdrError(ValueError):
    """Malformed or unsupported A-XDR content."""


# Data choice tags (Blue Book, "Data" CHOICE).
NULL = 0
ARRAY = 1
STRUCTURE = 2
BOOLEAN = 3
BIT_STRING = 4
DOUBLE_LONG = 5
DOUBLE_LONG_UNSIGNED = 6
OCTET_STRING = 9
VISIBLE_STRING = 10
UTF8_STRING = 12
BCD = 13
INTEGER = 15
LONG = 16
UNSIGNED = 17
LONG_UNSIGNED = 18
LONG64 = 20
LONG64_UNSIGNED = 21
ENUM = 22
FLOAT32 = 23
FLOAT64 = 24
DATE_TIME = 25
DATE = 26
TIME = 27

# Fixed-size integer types: tag -> struct format.
_INT_FORMATS = {
    DOUBLE_LONG: ">i",
    DOUBLE_LONG_UNSIGNED: ">I",
    BCD: ">b",
    INTEGER: ">b",
    LONG: ">h",
    UNSIGNED: ">B",
    LONG_UNSIGNED: ">H",
    LONG64: ">q",
    LONG64_UNSIGNED: ">Q",
    ENUM: ">B",
}
_FIXED_OCTETS = {DATE_TIME: 12, DATE: 5, TIME: 4}


@dataclass(frozen=True)
class Data:
    """One COSEM Data value: ``tag`` is the A-XDR choice, ``value`` its content.

    ``value`` is ``None`` (null), ``bool``, ``int``, ``float``, ``bytes`` (octet
    string, date-time...), ``str`` (visible/utf8 string, or bit-string as "0101")
    or a ``list[Data]`` (array, structure).
    """

    tag: int
    value: Any = None

    def __getitem__(self, index: int) -> Data:
        return self.value[index]

    def py(self) -> Any:
        """Plain Python value (lists recursively converted)."""
        if self.tag in (ARRAY, STRUCTURE):
            return [item.py() for item in self.value]
        return self.value


# Short constructors keep object definitions readable.
def null() -> Data:
    return Data(NULL)


def u8(v: int) -> Data:
    return Data(UNSIGNED, v)


def u16(v: int) -> Data:
    return Data(LONG_UNSIGNED, v)


def u32(v: int) -> Data:
    return Data(DOUBLE_LONG_UNSIGNED, v)


def i8(v: int) -> Data:
    return Data(INTEGER, v)


def i16(v: int) -> Data:
    return Data(LONG, v)


def i32(v: int) -> Data:
    return Data(DOUBLE_LONG, v)


def enum(v: int) -> Data:
    return Data(ENUM, v)


def boolean(v: bool) -> Data:
    return Data(BOOLEAN, bool(v))


def octets(v: bytes) -> Data:
    return Data(OCTET_STRING, bytes(v))


def visible(v: str) -> Data:
    return Data(VISIBLE_STRING, v)


def bits(v: str) -> Data:
    return Data(BIT_STRING, v)


def struct_(*items: Data) -> Data:
    return Data(STRUCTURE, list(items))


def array(items: list[Data]) -> Data:
    return Data(ARRAY, list(items))


def encode_length(n: int) -> bytes:
    """A-XDR/BER definite length: one byte below 128, else 0x8N + N bytes."""
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def decode_length(buf: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise AxdrError("truncated length")
    first = buf[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    size = first & 0x7F
    if size == 0 or size > 4 or pos + size > len(buf):
        raise AxdrError(f"bad length prefix 0x{first:02X}")
    return int.from_bytes(buf[pos : pos + size], "big"), pos + size


def encode(d: Data) -> bytes:
    tag, v = d.tag, d.value
    if tag == NULL:
        return b"\x00"
    if tag in (ARRAY, STRUCTURE):
        return bytes([tag]) + encode_length(len(v)) + b"".join(encode(i) for i in v)
    if tag == BOOLEAN:
        # TRUE as 0x01, as gurux and dlms-cosem write it; any non-zero decodes.
        return bytes([tag, 0x01 if v else 0x00])
    if tag in _INT_FORMATS:
        return bytes([tag]) + struct.pack(_INT_FORMATS[tag], v)
    if tag == OCTET_STRING:
        return bytes([tag]) + encode_length(len(v)) + bytes(v)
    if tag in (VISIBLE_STRING, UTF8_STRING):
        raw = v.encode("ascii" if tag == VISIBLE_STRING else "utf-8")
        return bytes([tag]) + encode_length(len(raw)) + raw
    if tag == BIT_STRING:
        nbits = len(v)
        padded = v + "0" * (-nbits % 8)
        raw = int(padded, 2).to_bytes(len(padded) // 8, "big") if padded else b""
        return bytes([tag]) + encode_length(nbits) + raw
    if tag == FLOAT32:
        return bytes([tag]) + struct.pack(">f", v)
    if tag == FLOAT64:
        return bytes([tag]) + struct.pack(">d", v)
    if tag in _FIXED_OCTETS:
        if len(v) != _FIXED_OCTETS[tag]:
            raise AxdrError(f"tag {tag} needs {_FIXED_OCTETS[tag]} bytes")
        return bytes([tag]) + bytes(v)
    raise AxdrError(f"cannot encode data tag {tag}")


def decode(buf: bytes, pos: int = 0) -> tuple[Data, int]:
    """Decode one Data value at ``pos``; return it and the position after it."""
    if pos >= len(buf):
        raise AxdrError("truncated data")
    tag = buf[pos]
    pos += 1
    if tag == NULL:
        return Data(NULL), pos
    if tag in (ARRAY, STRUCTURE):
        count, pos = decode_length(buf, pos)
        items = []
        for _ in range(count):
            item, pos = decode(buf, pos)
            items.append(item)
        return Data(tag, items), pos
    if tag == BOOLEAN:
        _need(buf, pos, 1)
        return Data(tag, buf[pos] != 0), pos + 1
    if tag in _INT_FORMATS:
        fmt = _INT_FORMATS[tag]
        size = struct.calcsize(fmt)
        _need(buf, pos, size)
        return Data(tag, struct.unpack_from(fmt, buf, pos)[0]), pos + size
    if tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        n, pos = decode_length(buf, pos)
        _need(buf, pos, n)
        raw = bytes(buf[pos : pos + n])
        if tag == VISIBLE_STRING:
            return Data(tag, raw.decode("ascii", "replace")), pos + n
        if tag == UTF8_STRING:
            return Data(tag, raw.decode("utf-8", "replace")), pos + n
        return Data(tag, raw), pos + n
    if tag == BIT_STRING:
        nbits, pos = decode_length(buf, pos)
        nbytes = (nbits + 7) // 8
        _need(buf, pos, nbytes)
        raw = buf[pos : pos + nbytes]
        text = "".join(f"{b:08b}" for b in raw)[:nbits]
        return Data(tag, text), pos + nbytes
    if tag in (FLOAT32, FLOAT64):
        fmt = ">f" if tag == FLOAT32 else ">d"
        size = struct.calcsize(fmt)
        _need(buf, pos, size)
        return Data(tag, struct.unpack_from(fmt, buf, pos)[0]), pos + size
    if tag in _FIXED_OCTETS:
        size = _FIXED_OCTETS[tag]
        _need(buf, pos, size)
        return Data(tag, bytes(buf[pos : pos + size])), pos + size
    raise AxdrError(f"unsupported data tag {tag}")


def decode_all(buf: bytes) -> Data:
    """Decode exactly one value filling ``buf``."""
    d, pos = decode(buf, 0)
    if pos != len(buf):
        raise AxdrError(f"{len(buf) - pos} trailing bytes after data")
    return d


def _need(buf: bytes, pos: int, n: int) -> None:
    if pos + n > len(buf):
        raise AxdrError("truncated data")


# --- COSEM date-time (Blue Book 4.1.6.1), 12 octets ---------------------------

_UNSPEC_DEVIATION = -0x8000


def encode_datetime(t: dt.datetime) -> bytes:
    """UTC date-time with deviation 0 and clock status 0, as the contract says."""
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC)
    return struct.pack(
        ">HBBBBBBBhB",
        t.year,
        t.month,
        t.day,
        t.isoweekday(),
        t.hour,
        t.minute,
        t.second,
        t.microsecond // 10000,
        0,
        0,
    )


def decode_datetime(raw: bytes) -> dt.datetime | None:
    """Decode a 12-octet date-time to an aware UTC datetime.

    Returns ``None`` when year/month/day are "not specified" (0xFFFF/0xFF), which
    range descriptors use for open ends. A specified deviation is applied as
    UTC = local + deviation (minutes), the sign convention gurux uses; the
    contract's own values always carry deviation 0.
    """
    if len(raw) != 12:
        raise AxdrError("date-time must be 12 octets")
    year, month, day, _wd, hour, minute, second, hundredths, dev, _st = struct.unpack(
        ">HBBBBBBBhB", raw
    )
    if year == 0xFFFF or month in (0xFF, 0xFD, 0xFE) or day in (0xFF, 0xFD, 0xFE):
        return None
    hour = 0 if hour == 0xFF else hour
    minute = 0 if minute == 0xFF else minute
    second = 0 if second == 0xFF else second
    micro = 0 if hundredths == 0xFF else hundredths * 10000
    try:
        t = dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=dt.UTC)
    except ValueError as exc:
        raise AxdrError(f"invalid date-time: {exc}") from exc
    if dev != _UNSPEC_DEVIATION:
        # Deviation is "local time minus UTC ... expressed as UTC - local" in
        # minutes (Blue Book: positive deviation = local time behind UTC).
        t = t + dt.timedelta(minutes=dev)
    return t


def datetime_data(t: dt.datetime) -> Data:
    """Date-time as the octet-string form (what clock attr 2 and profiles use)."""
    return octets(encode_datetime(t))
