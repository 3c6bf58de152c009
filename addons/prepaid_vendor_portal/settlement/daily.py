"""The daily settlement file of a vendor: one CSV per vendor and business
day, generated after the day's batches close.

Layout (UTF-8 without byte order mark, comma separated, RFC 4180 quoting,
CRLF line ends, ``.`` decimal mark, no thousands separator):

- line 1, the header: the names of :data:`COLUMNS`;
- one detail record per transaction, ``record`` = ``D``, in time order;
- the last line, the trailer (:data:`TRAILER`): ``T``, vendor, business
  date, count, then the totals of amount, VAT, kWh, commission and net, the
  currency, the commission mode, and the HMAC-SHA256 (hex) of every byte of
  the file before it, under the vendor's settlement key.

Amounts are signed: a reversal is negative (it appears on the day it was
reversed, whatever the day of the sale).  ``net`` = ``amount`` -
``commission``: what the vendor owes the utility for the line.  Which
commission depends on the vendor's plan (``commission_mode``):

- ``at_sale``: the commission the vendor kept at the sale, final for the
  line (a month's true-up, if any, is its own settlement);
- ``monthly``: none.  The month's commission is only known once the month
  is settled (caps and volume tiers depend on every sale of the month), so
  the daily file carries 0.00 on every line and ``net`` = ``amount``; a
  line with a commission is refused rather than written as if deducted.

The HMAC tells the vendor (and the utility, reading a file back) that the
file came from a holder of the vendor's key and was not altered or cut: an
unkeyed digest would only detect accidents, since whoever alters a file can
recompute it.  Both sides hold the key, so it is no signature: it cannot
prove to a third party which of the two wrote a file.

Tokens are masked but for their last four digits (a token is value until it
is typed in; the vendor holds the full one in its own records and matches
by msgID or receipt).  Text cells that a spreadsheet would run as a formula
(a leading ``=``, ``+``, ``-``, ``@``, tab or CR) are prefixed with ``'``.

The business day runs from ``day_start`` (the time the API terminals'
daily batch closes, midnight by default) on the business date to the same
time the next day, in the utility's time zone (:func:`..days.business_day`).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from zoneinfo import ZoneInfo

from ..commission.rules import Mode
from ..days import MIDNIGHT, business_day
from ..money import ZERO, format_amount, quantum, require_decimal

KWH_QUANTUM = Decimal("0.01")
COLUMNS = (
    "record", "vendor", "business_date", "line", "date_time", "type", "terminal",
    "operator", "msg_id", "receipt", "meter", "token", "amount", "vat", "kwh",
    "commission", "net", "currency",
)  # fmt: skip
TRAILER = (
    "record", "vendor", "business_date", "count", "amount", "vat", "kwh",
    "commission", "net", "currency", "commission_mode", "hmac_sha256",
)  # fmt: skip
MIN_KEY_BYTES = 32  # HMAC-SHA256: a key as long as the digest
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
    commission_mode: Mode
    hmac_sha256: str


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
    commission_mode: Mode,
    key: bytes,
    digits: int = 2,
    day_start: dt.time = MIDNIGHT,
) -> bytes:
    """The settlement file of vendor for the business day (see the module),
    authenticated with the vendor's settlement ``key``.

    Raises ValueError for a transaction outside the day, a naive time, a
    sign that contradicts its type, an amount with more digits than the
    currency has (rounding it here would break the totals), a commission on
    a monthly-settled vendor's line, or a key shorter than 32 bytes."""
    mode = Mode(commission_mode)
    _check_key(key)
    q = quantum(digits)
    start, end = business_day(day, timezone, day_start)
    txs = sorted(transactions, key=lambda tx: (tx.at, tx.receipt))
    for tx in txs:
        _validate(tx, start, end, q, mode)
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
    # The trailer up to its last cell is authenticated too: its vendor, date
    # and commission mode are in no record of an empty day.
    writer.writerow([
        "T", _text(vendor), day.isoformat(), len(txs),
        format_amount(totals["amount"], q), format_amount(totals["vat"], q),
        format_amount(totals["kwh"], KWH_QUANTUM),
        format_amount(totals["commission"], q), format_amount(totals["net"], q),
        currency, mode.value, "",
    ])  # fmt: skip
    signed = buffer.getvalue().removesuffix("\r\n").encode("utf-8")
    return signed + _mac(key, signed).encode() + b"\r\n"


def read_daily_file(data: bytes, key: bytes) -> tuple[list[dict[str, str]], Trailer]:
    """The detail records and the trailer of a settlement file, checked:
    the HMAC under the vendor's ``key``, the count and every total must
    agree, or ``SettlementFileError`` says which does not."""
    _check_key(key)
    signed, comma, mac = data.removesuffix(b"\r\n").rpartition(b",")
    if not comma or not hmac.compare_digest(_mac(key, signed + comma).encode(), mac):
        raise SettlementFileError(
            "authentication failed: the file was altered or cut, or the key is "
            "not the vendor's"
        )
    try:
        text = (signed + comma + mac).decode("utf-8")
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error):
        raise SettlementFileError("not a settlement file") from None
    if len(lines) < 2 or lines[0] != list(COLUMNS):
        raise SettlementFileError("unexpected header")
    *records, trailer_cells = lines[1:]
    if len(trailer_cells) != len(TRAILER) or trailer_cells[0] != "T":
        raise SettlementFileError("the trailer record is missing")
    rows = [dict(zip(COLUMNS, record)) for record in records]
    values = dict(zip(TRAILER, trailer_cells))
    try:
        trailer = Trailer(
            vendor=values["vendor"],
            business_date=dt.date.fromisoformat(values["business_date"]),
            count=int(values["count"]),
            currency=values["currency"],
            commission_mode=Mode(values["commission_mode"]),
            hmac_sha256=values["hmac_sha256"],
            **{
                k: Decimal(values[k])
                for k in ("amount", "vat", "kwh", "commission", "net")
            },  # fmt: skip
        )
        sums = {k: sum((Decimal(row[k]) for row in rows), ZERO)
                for k in ("amount", "vat", "kwh", "commission", "net")}  # fmt: skip
    except (ValueError, InvalidOperation, KeyError):
        raise SettlementFileError("a value in the file cannot be read") from None
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


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"the vendor's settlement key must be at least {MIN_KEY_BYTES} bytes"
        )


def _mac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _validate(
    tx: SettlementTx, start: dt.datetime, end: dt.datetime, q: Decimal, mode: Mode
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
    if mode == Mode.MONTHLY and tx.commission:
        raise ValueError(
            f"{where}: a monthly-settled vendor's commission is settled with the "
            "month, not in the daily file"
        )
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
