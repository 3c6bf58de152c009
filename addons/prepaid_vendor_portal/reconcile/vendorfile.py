"""The vendor's own transaction file (CSV or XLSX), read defensively.

Columns (first row; names in any case, spaces, hyphens and underscores
ignored, in any order; other columns are ignored):

============  ============================  ===================================
column        also accepted as              content
============  ============================  ===================================
date_time     datetime, timestamp, date     when the vendor sold (see
                                            ``values.parse_time``); required
amount        value, tendered, amt          what the customer paid (see
                                            ``values.parse_amount``); required
msg_id        msgid, message_id             ``<dateTime>:<uniqueNumber>``
receipt       receipt_number, receipt_no    the receipt number we answered
token         sts_token, token_number       the 20-digit token
meter         meter_number, msno            the meter number (kept, not matched)
terminal      terminal_id                   the vendor's terminal (kept)
type          status, transaction_type      ``sale`` (default: vend, purchase,
                                            credit) or ``reversal`` (reversed,
                                            refund, cancel, cancelled, void)
============  ============================  ===================================

Each row needs at least one of msg_id, receipt and token.  A reversal's
amount may be written positive or negative: it counts negative.

Hardening: the file is refused whole (``FileError``) when it is larger than
``max_bytes``, has more than ``max_rows`` rows, is not UTF-8 (a byte order
mark is fine; UTF-16 with a byte order mark too), is not a readable XLSX
(or unpacks to more than ``max_unpacked`` bytes: a zip bomb), or has no
header with the required columns.  A bad row is reported with its line
number and the reason (:class:`RowError`) and left out; the other rows are
read.  Nothing raises anything else.

CSV: comma, semicolon or tab separated (the header line decides), RFC 4180
quoting.  XLSX: the first sheet, its first ``MAX_COLUMNS`` columns; the line
number is the sheet's row number, and empty rows count towards ``max_rows``.
The size a sheet declares (``<dimension>``) is ignored: it is the sender's
word, and trusting it lets a 5 KB file ask for billions of cells.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from .values import (
    MAX_AMOUNT,
    parse_amount,
    parse_msg_id,
    parse_receipt,
    parse_time,
    parse_token,
)

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 100_000
MAX_UNPACKED = 100 * 1024 * 1024
MAX_CELL = 200  # characters
MAX_COLUMNS = 256  # of an XLSX sheet; cells to the right are not read
MAX_ERRORS = 1_000  # reported one by one; beyond, only counted


class Kind(StrEnum):
    SALE = "sale"
    REVERSAL = "reversal"


COLUMNS: dict[str, tuple[str, ...]] = {
    "date_time": ("datetime", "timestamp", "date"),
    "amount": ("value", "tendered", "amt"),
    "msg_id": ("msgid", "message_id"),
    "receipt": ("receipt_number", "receipt_no"),
    "token": ("sts_token", "token_number"),
    "meter": ("meter_number", "msno"),
    "terminal": ("terminal_id",),
    "type": ("status", "transaction_type"),
}
KINDS = {
    **dict.fromkeys(("", "sale", "vend", "purchase", "credit"), Kind.SALE),
    **dict.fromkeys(
        ("reversal", "reversed", "refund", "cancel", "cancelled", "void"),
        Kind.REVERSAL,
    ),
}


class FileError(ValueError):
    "The file as a whole cannot be read; nothing of it is used"


@dataclass(frozen=True)
class VendorRow:
    line: int
    at: dt.datetime  # aware
    amount: Decimal  # negative for a reversal
    kind: Kind
    msg_id: str | None = None  # <dateTime>:<uniqueNumber>
    receipt: str | None = None
    token: str | None = None
    meter: str | None = None
    terminal: str | None = None

    @property
    def keys(self) -> tuple[tuple[str, str], ...]:
        "(key name, value) in matching precedence: msgID, receipt, token"
        return tuple(
            (name, value)
            for name, value in (
                ("msg_id", self.msg_id),
                ("receipt", self.receipt),
                ("token", self.token),
            )
            if value
        )


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class VendorFile:
    rows: tuple[VendorRow, ...]
    errors: tuple[RowError, ...]
    error_count: int  # may exceed len(errors) (MAX_ERRORS)
    decimal_mark: str | None
    file_format: str  # "csv" or "xlsx"


def read_vendor_file(
    data: bytes,
    timezone: ZoneInfo,
    *,
    digits: int = 2,
    max_bytes: int = MAX_BYTES,
    max_rows: int = MAX_ROWS,
    max_unpacked: int = MAX_UNPACKED,
) -> VendorFile:
    """The rows of a vendor file, CSV or XLSX (told by its first bytes).

    ``timezone`` is the vendor's: times without an offset are read in it;
    ``digits`` the currency's (an amount with more decimals is a row error)."""
    if len(data) > max_bytes:
        raise FileError(f"the file is larger than {max_bytes:,} bytes: split it")
    if not data.strip():
        raise FileError("the file is empty")
    if data[:4] == b"PK\x03\x04":
        table, file_format = _xlsx_table(data, max_rows, max_unpacked), "xlsx"
    else:
        table, file_format = _csv_table(data, max_rows), "csv"
    return _read_table(table, timezone, digits, file_format)


# ------------------------------------------------------------------ tables
Table = list[tuple[int, list[object]]]  # (line, cells); the first is the header


def _csv_table(data: bytes, max_rows: int) -> Table:
    text = _decode(data)
    first = text.split("\n", 1)[0]
    delimiter = max((";", ",", "\t"), key=first.count)
    if first.count(delimiter) == 0:
        raise FileError("no column separator (comma, semicolon or tab) in the header")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    table: Table = []
    start = 1
    try:
        for cells in reader:
            if len(table) > max_rows:
                raise FileError(f"more than {max_rows:,} rows: split the file")
            table.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as error:
        raise FileError(f"line {reader.line_num}: {error}") from None
    return table


def _decode(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        codec = "utf-16"
    else:
        codec = "utf-8-sig"
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as error:
        raise FileError(
            f"the file is not UTF-8 (byte {error.start}): save it as CSV UTF-8"
        ) from None
    if "\x00" in text:
        raise FileError("the file holds NUL characters: not a text file")
    return text


def _xlsx_table(data: bytes, max_rows: int, max_unpacked: int) -> Table:
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise FileError(f"not a readable XLSX file ({error})") from None
    if unpacked > max_unpacked:
        raise FileError(f"the XLSX file unpacks to more than {max_unpacked:,} bytes")
    table: Table = []
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            # The sheet's own <dimension> is not trusted: read-only openpyxl
            # pads every row to its width and fills the gaps between rows, so
            # a few kilobytes declaring A1:XFD60000 become a billion cells.
            # Forget it, and read at most MAX_COLUMNS columns.
            sheet.reset_dimensions()
            rows = sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True)
            for number, cells in enumerate(rows, 1):
                if number > max_rows + 1:  # the header and max_rows rows
                    raise FileError(f"more than {max_rows:,} rows: split the file")
                if any(cell is not None for cell in cells):
                    table.append((number, _trimmed(cells)))
        finally:
            book.close()
    except FileError:
        raise
    except Exception as error:  # openpyxl raises many kinds on a corrupt file
        raise FileError(
            f"not a readable XLSX file ({type(error).__name__}: {error})"[:300]
        ) from None
    return table


def _trimmed(cells: tuple[object, ...]) -> list[object]:
    "The cells up to the last one that holds something"
    end = len(cells)
    while end and cells[end - 1] is None:
        end -= 1
    return list(cells[:end])


# -------------------------------------------------------------------- rows
def _column_key(name: object) -> str:
    return re.sub(r"[\s_-]+", "_", str(name or "").strip().lower()).strip("_")


def _header(cells: list[object]) -> dict[str, int]:
    aliases = {
        alias.replace("_", ""): column
        for column, names in COLUMNS.items()
        for alias in (column, *names)
    }
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        column = aliases.get(_column_key(cell).replace("_", ""))
        if column and column not in found:
            found[column] = index
    missing = [c for c in ("date_time", "amount") if c not in found]
    if missing:
        raise FileError(
            f"the header has no {' and no '.join(missing)} column "
            f"(columns: {', '.join(COLUMNS)})"
        )
    if not {"msg_id", "receipt", "token"} & found.keys():
        raise FileError("the header needs a msg_id, receipt or token column")
    return found


def _read_table(
    table: Table, timezone: ZoneInfo, digits: int, file_format: str
) -> VendorFile:
    # Skip blank lines before the header.
    while table and not any(_text(c) for c in table[0][1]):
        table.pop(0)
    if not table:
        raise FileError("the file has no header")
    columns = _header(table[0][1])
    rows: list[VendorRow] = []
    errors: list[RowError] = []
    count = 0
    decimal_mark = _decimal_mark(table[1:], columns["amount"])
    for line, cells in table[1:]:
        if not any(_text(cell) for cell in cells):
            continue  # blank line
        try:
            rows.append(_row(line, cells, columns, timezone, digits, decimal_mark))
        except ValueError as error:
            count += 1
            if len(errors) < MAX_ERRORS:
                errors.append(RowError(line, str(error)))
    return VendorFile(tuple(rows), tuple(errors), count, decimal_mark, file_format)


def _decimal_mark(table: Table, index: int) -> str | None:
    "The decimal mark the file's amounts prove, when they agree"
    marks = set()
    for _, cells in table:
        cell = cells[index] if index < len(cells) else None
        if isinstance(cell, str):
            try:
                marks.add(parse_amount(cell)[1])
            except ValueError:
                continue
    marks.discard(None)
    return marks.pop() if len(marks) == 1 else None


def _row(
    line: int,
    cells: list[object],
    columns: dict[str, int],
    timezone: ZoneInfo,
    digits: int,
    decimal_mark: str | None,
) -> VendorRow:
    def cell(name: str) -> object:
        index = columns.get(name)
        value = cells[index] if index is not None and index < len(cells) else None
        if isinstance(value, str) and len(value) > MAX_CELL:
            raise ValueError(f"{name}: more than {MAX_CELL} characters")
        return value

    def text(name: str) -> str:
        return _text(cell(name))

    kind_text = text("type").lower()
    if kind_text not in KINDS:
        raise ValueError(f"type: {kind_text!r} is neither a sale nor a reversal")
    kind = KINDS[kind_text]
    stamp = cell("date_time")
    if not _text(stamp):
        raise ValueError("date_time is empty")
    try:
        at = parse_time(stamp if isinstance(stamp, dt.datetime) else _text(stamp),
                        timezone)  # fmt: skip
    except ValueError as error:
        raise ValueError(f"date_time: {error}") from None
    amount = _amount(cell("amount"), decimal_mark, digits)
    if kind == Kind.REVERSAL:
        amount = -abs(amount)
    elif amount <= 0:
        raise ValueError(f"amount: a sale of {amount} (mark reversals in 'type')")
    keys = {}
    for name, parse in (
        ("msg_id", parse_msg_id),
        ("receipt", parse_receipt),
        ("token", parse_token),
    ):
        raw = cell(name)
        if (
            isinstance(raw, int | float)
            and not isinstance(raw, bool)
            and (abs(raw) >= 2**53)
        ):
            # A spreadsheet keeps 15 significant digits of a number cell: a
            # 20-digit token typed as a number has already lost its last ones.
            raise ValueError(
                f"{name}: stored as a number, digits are lost: format the "
                "column as text"
            )
        value = text(name)
        if value:
            try:
                keys[name] = parse(value)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
    if not keys:
        raise ValueError("no msg_id, receipt or token to match it by")
    return VendorRow(
        line=line,
        at=at,
        amount=amount,
        kind=kind,
        meter=text("meter") or None,
        terminal=text("terminal") or None,
        **keys,
    )


def _amount(value: object, decimal_mark: str | None, digits: int) -> Decimal:
    if isinstance(value, bool) or value is None or _text(value) == "":
        raise ValueError("amount is empty")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        # A spreadsheet number: its shortest repr is what the cell shows.
        amount = Decimal(repr(value))
    else:
        try:
            amount, _ = parse_amount(str(value), decimal_mark)
        except ValueError as error:
            raise ValueError(f"amount: {error}") from None
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise ValueError(f"amount: {value} is not a plausible amount")
    if amount != amount.quantize(Decimal(1).scaleb(-digits)):
        raise ValueError(f"amount: {value} has more than {digits} decimals")
    return amount


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a number cell: 417.0 is 417
    return str(value).strip()
