"""Reading the values of a vendor's transaction file: amounts written in any
of the usual ways, times with or without an offset, msgIDs, tokens.

Every reader raises ``ValueError`` with a message for the operator; the file
reader turns it into a row error with the line number.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from ..xmlvend.base import MsgID
from ..xmlvend.values import MSG_ID_DATE_TIME, MSG_ID_UNIQUE_NUMBER

MAX_AMOUNT = Decimal("1e12")
_CURRENCY = re.compile(r"^[^\d().,'+-]*|[^\d().,'+-]*$")
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009']")
_GROUPED = re.compile(r"^\d{1,3}(?:[.,]\d{3})+$")


def parse_amount(
    text: str, decimal_mark: str | None = None
) -> tuple[Decimal, str | None]:
    """The amount written in ``text`` and the decimal mark it shows.

    Accepted: ``1234.5``, ``1,234.50``, ``1.234,50``, ``1 234,50`` (also with
    a no-break or thin space, or ``1'234.50``), a currency symbol or code
    before or after (``R 50.00``, ``50.00 ZAR``), a sign or parentheses for
    a negative amount.  With both marks, the last one is the decimal mark.
    With one mark seen once and three digits after it (``1,234``), the
    amount is ambiguous unless the file's decimal mark is known
    (``decimal_mark``, learnt from its other rows); then it is refused
    rather than guessed, a thousand times too much or too little.
    Returns the mark this amount proves ("." or ","), or None.
    """
    raw = text
    text = _CURRENCY.sub("", text.strip())
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    if text.endswith("-"):
        negative, text = True, text[:-1]
    if text[:1] in "+-" and text:
        negative, text = text[0] == "-", text[1:]
    text = _SPACES.sub("", text)
    if not text or not re.fullmatch(r"[\d.,]+", text) or not text[0].isdigit():
        raise ValueError(f"{raw.strip()!r} is not an amount")
    dots, commas = text.count("."), text.count(",")
    proven: str | None = None
    if dots and commas:
        mark = "." if text.rfind(".") > text.rfind(",") else ","
        other = "," if mark == "." else "."
        whole, _, fraction = text.rpartition(mark)
        if mark in whole or not _GROUPED.match(whole) or other not in whole:
            raise ValueError(f"{raw.strip()!r}: thousands groups are not regular")
        text, proven = whole.replace(other, "") + "." + fraction, mark
    elif dots + commas > 1:
        mark = "." if dots else ","
        if not _GROUPED.match(text):
            raise ValueError(f"{raw.strip()!r}: thousands groups are not regular")
        text = text.replace(mark, "")
        proven = "," if mark == "." else "."
    elif dots + commas == 1:
        mark = "." if dots else ","
        whole, _, fraction = text.partition(mark)
        if len(fraction) == 3 and whole != "0" and decimal_mark is None:
            raise ValueError(
                f"{raw.strip()!r} is ambiguous: is {mark!r} the decimal mark or "
                "a thousands separator?  Write the cents (1,234.00)"
            )
        if len(fraction) == 3 and whole != "0" and decimal_mark != mark:
            text = whole + fraction  # a thousands separator
        else:
            text = whole + "." + fraction
            proven = mark if len(fraction) != 3 or whole == "0" else None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{raw.strip()!r} is not an amount") from None
    if value >= MAX_AMOUNT:
        raise ValueError(f"{raw.strip()!r} is too large")
    if decimal_mark and proven and proven != decimal_mark:
        raise ValueError(
            f"{raw.strip()!r} uses {proven!r} as decimal mark, "
            f"the file {decimal_mark!r}"
        )
    return (-value if negative else value), proven


_DAY_FIRST = re.compile(
    r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})[ T]"
    r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$"
)
_YEAR_FIRST_SLASH = re.compile(
    r"^(\d{4})/(\d{1,2})/(\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$"
)


def parse_time(value: str | dt.datetime, timezone: ZoneInfo) -> dt.datetime:
    """An aware time from a cell: ISO 8601 (with or without offset),
    ``dd/mm/yyyy HH:MM[:SS]`` (also with ``-`` or ``.``; day first, as every
    country these vendors are in writes it), ``yyyy/mm/dd HH:MM[:SS]``,
    ``yyyyMMddHHmmss`` (a msgID's dateTime), or a spreadsheet date cell.
    A time without offset is the vendor's local time (``timezone``); a date
    without a time is refused (a cut-off cannot be judged without it)."""
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = value.strip()
        moment = _read_time(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone)
    if not 2000 <= moment.year <= 2099:
        raise ValueError(f"{value} is not a plausible date")
    return moment


def _read_time(text: str) -> dt.datetime:
    if re.fullmatch(r"\d{14}", text):
        return dt.datetime.strptime(text, "%Y%m%d%H%M%S")
    match = _DAY_FIRST.match(text)
    if match:
        day, month, year, hour, minute, second, fraction = match.groups()
        micro = int((fraction or "0").ljust(6, "0"))
        return dt.datetime(int(year), int(month), int(day), int(hour), int(minute),
                           int(second or 0), micro)  # fmt: skip
    match = _YEAR_FIRST_SLASH.match(text)
    if match:
        return dt.datetime(*(int(part or 0) for part in match.groups()))
    if len(text) > 10 and text[4:5] == "-":
        try:
            return dt.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            pass
    if re.fullmatch(r"[\d/.-]{8,10}", text):
        raise ValueError(f"{text!r} has no time of day")
    raise ValueError(f"{text!r} is not a date and time")


_MSG_ID = re.compile(
    rf"^({MSG_ID_DATE_TIME.pattern})[:\s/_-]({MSG_ID_UNIQUE_NUMBER.pattern})$"
)


def parse_msg_id(text: str) -> str:
    """A msgID in its key form (:attr:`.xmlvend.base.MsgID.key`): the
    utility's idempotency key, the same for 0042 and 42.  Written
    ``20260331235958:000417`` (or with ``-``, ``/``, ``_`` or a space)."""
    match = _MSG_ID.match(text.strip())
    if not match:
        raise ValueError(
            f"{text.strip()!r} is not a msgID (<dateTime>:<uniqueNumber>, "
            "e.g. 20260331235958:417)"
        )
    return MsgID(date_time=match.group(1), unique_number=match.group(2)).key


def parse_token(text: str) -> str:
    "20 digits, written with or without spaces or dashes between groups"
    digits = re.sub(r"[\s-]", "", text)
    if not re.fullmatch(r"\d{20}", digits):
        raise ValueError(f"{text.strip()!r} is not a 20-digit token")
    return digits


def parse_receipt(text: str) -> str:
    "A receipt number as printed; compared without case"
    value = text.strip().upper()
    if len(value) > 64 or not re.fullmatch(r"[A-Z0-9/_.-]+", value):
        raise ValueError(f"{text.strip()[:64]!r} is not a receipt number")
    return value
