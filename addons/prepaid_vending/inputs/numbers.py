"""Decimal numbers typed by staff or sent by programs: the one reading of an
amount for the vend wizard, ``rpc_vend``, the tariff calculator, the
``prepaid-tariff`` and ``prepaid-sts`` commands and the Excel import.

Text is accepted only in plain notation: an optional sign, ASCII digits, an
optional decimal point and digits (``150``, ``150.50``, ``-0.5``).  Python's
``Decimal()`` would also take ``1_000``, ``1e30``, ``NaN``, ``Infinity`` and
digits of other scripts (``١٠٠٠``); a cashier who types one of these did not
mean a number, so they are refused with a message that says how to write it.

Every number, whatever its type, is also bounded: at most
``MAX_INTEGER_DIGITS`` digits before the point and ``MAX_PLACES`` after it.
This keeps every sum, product and rounding of the calculator inside the
decimal context's 28 digits, so no later step fails with a bare
``decimal.InvalidOperation``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

#: Digits before the decimal point: 999,999,999,999 is above any vend, price,
#: energy or register reading the platform handles.
MAX_INTEGER_DIGITS = 12
#: Digits after the decimal point (prices have 4, STS currency amounts 5).
MAX_PLACES = 8
#: Characters of a number written as text (sign, digits, point, spaces).
MAX_TEXT = 32

_PLAIN = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_LIMIT = 10**MAX_INTEGER_DIGITS


class NumberError(ValueError):
    """A value that is not an acceptable number.

    ``code`` says why (``type``, ``syntax``, ``too_long``, ``not_finite``,
    ``too_large``, ``places``) so that callers can translate the message;
    ``str()`` is the English message for commands and logs.
    """

    def __init__(self, code: str, message: str, **params: Any):
        super().__init__(message)
        self.code = code
        self.params = params


def shown(value: Any, width: int = 40) -> str:
    "A value as quoted in a message: never longer than width characters"
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def parse_decimal(value: Any, places: int | None = None) -> Decimal:
    """value as a Decimal, or NumberError.

    Accepts a Decimal, an int or text in plain notation (surrounding spaces
    ignored).  Refuses bool and float (a binary float is never an exact
    amount), non-finite values, more than ``MAX_INTEGER_DIGITS`` digits before
    the point, and more decimal places than ``places`` (default
    ``MAX_PLACES``); trailing zeros do not count (``100.500`` has 2 places).
    """
    limit = MAX_PLACES if places is None else places
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise NumberError(
            "type",
            f"{shown(value)} is not a number: give a decimal number as a "
            'decimal string such as "100.50"',
            value=shown(value),
        )
    if isinstance(value, int):
        if not -_LIMIT < value < _LIMIT:
            raise _too_large(value)
        return Decimal(value)
    if isinstance(value, str):
        text = value.strip(" ")
        if len(text) > MAX_TEXT:
            raise NumberError(
                "too_long",
                f"{shown(value)} is too long for a number (at most {MAX_TEXT} "
                "characters)",
                value=shown(value),
                maximum=MAX_TEXT,
            )
        if not _PLAIN.fullmatch(text):
            raise NumberError(
                "syntax",
                f"{shown(value)} is not a number: write it with the digits "
                "0-9 and a decimal point only, such as 1000.50 (no thousands "
                "separator, no exponent)",
                value=shown(value),
            )
        number = Decimal(text)
    else:
        number = value
        if not number.is_finite():
            raise NumberError(
                "not_finite",
                f"{value} is not a number",
                value=shown(str(value)),
            )
    if number and number.adjusted() >= MAX_INTEGER_DIGITS:
        raise _too_large(value)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -limit:
        if number != number.quantize(Decimal(1).scaleb(-limit)):
            raise NumberError(
                "places",
                f"{shown(str(value))} has more than {limit} decimal places",
                value=shown(str(value)),
                places=limit,
            )
        number = number.quantize(Decimal(1).scaleb(-limit))
    return number


def _too_large(value: Any) -> NumberError:
    return NumberError(
        "too_large",
        f"{shown(str(value))} is too large: at most {MAX_INTEGER_DIGITS} digits "
        "before the decimal point",
        value=shown(str(value)),
        digits=MAX_INTEGER_DIGITS,
    )
