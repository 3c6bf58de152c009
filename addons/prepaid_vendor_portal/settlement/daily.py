"""The daily settlement file of a vendor: one CSV per vendor and business
day, generated after the day's batches close.

Layout (UTF-8 without byte order mark, comma separated, RFC 4180 quoting,
CRLF line ends, ``.`` decimal mark, no thousands separator):

- line 1, the header: the names of :data:`COLUMNS`;
- one detail record per transaction, ``record`` = ``D``, in time order;
- the last line, the trailer: ``T``, vendor, business date, count, then the
  totals of amount, VAT, kWh, commission and net, the currency, and the
  SHA-256 (hex) of every byte before the trailer line.

Amounts are signed: a reversal is negative (it appears on the day it was
reversed, whatever the day of the sale).  ``net`` = ``amount`` -
``commission``: what the vendor owes the utility for the line.  Tokens are
masked but for their last four digits (a token is value until it is typed
in; the vendor holds the full one in its own records and matches by msgID
or receipt).  Text cells that a spreadsheet would run as a formula (a
leading ``=``, ``+``, ``-``, ``@``, tab or CR) are prefixed with ``'``.

The business day runs from ``day_start`` (the time the API terminals'
daily batch closes, midnight by default) on the business date to the same
time the next day, in the utility's time zone.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from zoneinfo import ZoneInfo

from ..money import ZERO, format_amount, quantum, require_decimal

KWH_QUANTUM = Decimal("0.01")
COLUMNS = (
    "record", "vendor", "business_date", "line", "date_time", "type", "terminal",
    "operator", "msg_id", "receipt", "meter", "token", "amount", "vat", "kwh",
    "commission", "net", "currency",
)  # fmt: skip
TRAILER = (
    "record", "vendor", "business_date", "count", "amount", "vat", "kwh",
    "commission", "net", "currency", "sha256",
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class TxKind(StrEnum):
    SALE = "sale"
    REVERSAL = "reversal"
    FBE = "fbe"
    PAY_ACCOUNT = "pay_account"


class SettlementFileError(ValueError):
    "A settlement file that does not check out (count, totals or checksum)"


@dataclass(frozen=True)
class SettlementTx:
    at: dt.datetime  # aware
    kind: TxKind
    terminal: str
    receipt: str
    amount: Decimal  # negative for a reversal
    vat: Decimal = ZERO
    kwh: Decimal = ZERO
    commission: Decimal = ZERO
    msg_id: str = ""
    meter: str = ""
    token: str = ""
    operator: str = ""


@dataclass(frozen=True)
class Trailer:
    vendor: str
    business_date: dt.date
    count: int
    amount: Decimal
    vat: Decimal
    kwh: Decimal
    commission: Decimal
    net: Decimal
    currency: str
    sha256: str


def business_day(
    day: dt.date, timezone: ZoneInfo, day_start: dt.time = dt.time()
) -> tuple[dt.datetime, dt.datetime]:
    "[start, end) of the business day, aware, in the utility's time zone"
    start = dt.datetime.combine(day, day_start, timezone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), day_start, timezone)
    return start, end


def file_name(vendor: str, day: dt.date) -> str:
    "settlement_<vendor>_<yyyymmdd>.csv, the vendor code made safe for a path"
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", vendor).strip("-") or "vendor"
    return f"settlement_{safe}_{day:%Y%m%d}.csv"


def mask_token(token: str) -> str:
    digits = re.sub(r"\D", "", token)
    return "*" * (len(digits) - 4) + digits[-4:] if len(digits) > 4 else ""


def daily_file(
    vendor: str,
    day: dt.date,
    transactions: Iterable[SettlementTx],
    *,
    timezone: ZoneInfo,
    currency: str,
    digits: int = 2,
    day_start: dt.time = dt.time(),
) -> bytes:
    """The settlement file of vendor for the business day (see the module).

    Raises ValueError for a transaction outside the day, a naive time, a
    sign that contradicts its type, or an amount with more digits than the
    currency has (rounding it here would break the totals)."""
    q = quantum(digits)
    start, end = business_day(day, timezone, day_start)
    txs = sorted(transactions, key=lambda tx: (tx.at, tx.receipt))
    for tx in txs:
        _validate(tx, start, end, q)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    totals = dict.fromkeys(("amount", "vat", "kwh", "commission", "net"), ZERO)
    for number, tx in enumerate(txs, 1):
        net = tx.amount - tx.commission
        for name, value in (("amount", tx.amount), ("vat", tx.vat), ("kwh", tx.kwh),
                            ("commission", tx.commission), ("net", net)):  # fmt: skip
            totals[name] += value
        writer.writerow([
            "D", _text(vendor), day.isoformat(), number,
            tx.at.astimezone(timezone).isoformat(timespec="seconds"),
            TxKind(tx.kind).value, _text(tx.terminal), _text(tx.operator),
            _text(tx.msg_id), _text(tx.receipt), _text(tx.meter), mask_token(tx.token),
            format_amount(tx.amount, q), format_amount(tx.vat, q),
            format_amount(tx.kwh, KWH_QUANTUM), format_amount(tx.commission, q),
            format_amount(net, q), currency,
        ])  # fmt: skip
    body = buffer.getvalue().encode("utf-8")
    trailer = io.StringIO(newline="")
    csv.writer(trailer, lineterminator="\r\n").writerow([
        "T", _text(vendor), day.isoformat(), len(txs),
        format_amount(totals["amount"], q), format_amount(totals["vat"], q),
        format_amount(totals["kwh"], KWH_QUANTUM),
        format_amount(totals["commission"], q), format_amount(totals["net"], q),
        currency, hashlib.sha256(body).hexdigest(),
    ])  # fmt: skip
    return body + trailer.getvalue().encode("utf-8")


def read_daily_file(data: bytes) -> tuple[list[dict[str, str]], Trailer]:
    """The detail records and the trailer of a settlement file, checked:
    the checksum, the count and every total must agree, or
    ``SettlementFileError`` says which does not."""
    cut = data.rstrip(b"\r\n").rfind(b"\n") + 1
    body, last = data[:cut], data[cut:]
    try:
        text = body.decode("utf-8")
        trailer_cells = next(csv.reader(io.StringIO(last.decode("utf-8"))))
    except (UnicodeDecodeError, StopIteration):
        raise SettlementFileError("not a settlement file") from None
    if len(trailer_cells) != len(TRAILER) or trailer_cells[0] != "T":
        raise SettlementFileError("the trailer record is missing")
    values = dict(zip(TRAILER, trailer_cells))
    if hashlib.sha256(body).hexdigest() != values["sha256"]:
        raise SettlementFileError("checksum mismatch: the file was altered or cut")
    reader = csv.reader(io.StringIO(text, newline=""))
    if next(reader, None) != list(COLUMNS):
        raise SettlementFileError("unexpected header")
    rows = [dict(zip(COLUMNS, cells)) for cells in reader]
    try:
        trailer = Trailer(
            vendor=values["vendor"],
            business_date=dt.date.fromisoformat(values["business_date"]),
            count=int(values["count"]),
            currency=values["currency"],
            sha256=values["sha256"],
            **{
                k: Decimal(values[k])
                for k in ("amount", "vat", "kwh", "commission", "net")
            },  # fmt: skip
        )
        sums = {k: sum((Decimal(row[k]) for row in rows), ZERO)
                for k in ("amount", "vat", "kwh", "commission", "net")}  # fmt: skip
    except (ValueError, InvalidOperation, KeyError):
        raise SettlementFileError("a number in the file cannot be read") from None
    if trailer.count != len(rows):
        raise SettlementFileError(
            f"{len(rows)} records, the trailer says {trailer.count}"
        )
    for name, total in sums.items():
        if total != getattr(trailer, name):
            raise SettlementFileError(
                f"the {name} column does not add up to the trailer"
            )
    return rows, trailer


def _validate(
    tx: SettlementTx, start: dt.datetime, end: dt.datetime, q: Decimal
) -> None:
    where = f"transaction {tx.receipt!r}"
    if tx.at.tzinfo is None:
        raise ValueError(f"{where}: the time needs a time zone")
    if not start <= tx.at < end:
        raise ValueError(f"{where} at {tx.at.isoformat()} is not in the business day")
    kind = TxKind(tx.kind)
    for name in ("amount", "vat", "kwh", "commission"):
        value = getattr(tx, name)
        require_decimal(value, f"{where}: {name}", allow_negative=True)
        step = KWH_QUANTUM if name == "kwh" else q
        if value != value.quantize(step):
            raise ValueError(f"{where}: {name} {value} has more digits than {step}")
    negative = kind == TxKind.REVERSAL
    for name in ("amount", "vat", "kwh", "commission"):
        value = getattr(tx, name)
        if (value > 0 and negative) or (value < 0 and not negative):
            raise ValueError(
                f"{where}: a {kind.value}'s {name} must be "
                f"{'negative' if negative else 'positive'} ({value})"
            )


def _text(value: str) -> str:
    value = value or ""
    return "'" + value if value.startswith(_FORMULA_START) else value
