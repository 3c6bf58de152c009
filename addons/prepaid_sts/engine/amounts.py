"""Amount fields of IEC 62055-41 (docs/sts.md section 4.5).

A 16-bit field is ``e(2) || m(14)`` standing for
``10**e * m + 16384 * (10**e - 1) / 9``.  Units (class 0 subclasses 0-3) are
counted in tenths (kWh, m3, minutes); power limits (class 2 subclasses 0 and 6)
in watts.  Currency amounts (class 0 subclasses 4-7) count 1e-5 of the base
currency and use a 5-bit exponent: bits 15-14 of the field are e1, e0 and the
nibble that replaces RND carries ``s || e4 || e3 || e2``.
"""

from __future__ import annotations

from .errors import AmountError

_MANTISSA = 1 << 14


def _offset(e: int) -> int:
    # 16384 * (10**e - 1) / 9: the value of the first mantissa step of exponent e.
    return _MANTISSA * (10**e - 1) // 9


_OFFSETS = [_offset(e) for e in range(32)]
_POWERS = [10**e for e in range(32)]
#: Largest value of a 2-bit-exponent field: 18201624.
MAX_FIELD_VALUE = _OFFSETS[3] + _POWERS[3] * (_MANTISSA - 1)
#: Largest currency magnitude (5-bit exponent), in 1e-5 units.
MAX_CURRENCY_VALUE = _OFFSETS[31] + _POWERS[31] * (_MANTISSA - 1)


def _encode_up(value: int, max_exp: int) -> tuple[int, int]:
    """Smallest encodable value >= ``value``: return (exponent, mantissa)."""
    for e in range(max_exp + 1):
        top = _OFFSETS[e] + _POWERS[e] * (_MANTISSA - 1)
        if value <= top:
            p = _POWERS[e]
            m = -((_OFFSETS[e] - value) // p)  # ceil((value - offset) / p)
            return e, max(m, 0)
    raise OverflowError


def _encode_down(value: int, max_exp: int) -> tuple[int, int]:
    """Largest encodable value <= ``value``: return (exponent, mantissa)."""
    for e in range(max_exp, -1, -1):
        if value >= _OFFSETS[e]:
            m = (value - _OFFSETS[e]) // _POWERS[e]
            return e, min(m, _MANTISSA - 1)
    raise OverflowError  # pragma: no cover - value >= 0 always matches e = 0


def encode_field(value: int, what: str = "amount") -> int:
    """Encode a non-negative integer (tenths or watts) rounding up; return the field."""
    if value < 0:
        raise AmountError(f"{what} must not be negative, got {value}")
    if value > MAX_FIELD_VALUE:
        raise AmountError(
            f"{what} {value} is too large for a token: the maximum is "
            f"{MAX_FIELD_VALUE} ({what} in token units)"
        )
    e, m = _encode_up(value, 3)
    return (e << 14) | m


def decode_field(field: int) -> int:
    """Decode a 16-bit ``e(2) || m(14)`` field to its integer value."""
    e = field >> 14
    return _OFFSETS[e] + _POWERS[e] * (field & 0x3FFF)


def encode_currency(value: int) -> tuple[int, int]:
    """Encode a currency amount in 1e-5 units; return (field16, s_and_e nibble).

    Positive amounts round up; negative amounts set the sign bit and round the
    magnitude down (so a refund never exceeds the requested amount).
    """
    negative = value < 0
    magnitude = -value if negative else value
    if magnitude > MAX_CURRENCY_VALUE:
        raise AmountError(
            f"currency amount {value} (1e-5 units) is too large for a token: "
            f"the maximum magnitude is {MAX_CURRENCY_VALUE}"
        )
    e, m = _encode_down(magnitude, 31) if negative else _encode_up(magnitude, 31)
    field = ((e & 3) << 14) | m
    s_and_e = (8 if negative else 0) | (e >> 2)
    return field, s_and_e


def decode_currency(field: int, s_and_e: int) -> int:
    """Decode a currency field and its S&E nibble to a signed amount in 1e-5 units."""
    e = ((s_and_e & 7) << 2) | (field >> 14)
    value = _OFFSETS[e] + _POWERS[e] * (field & 0x3FFF)
    return -value if s_and_e & 8 else value
