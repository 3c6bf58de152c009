"""Reading an uploaded workbook for the import, within limits.

An upload is checked before any work (``check_upload``): not empty, not over
the size limit, an .xlsx or .xls file, an .xlsx whose parts do not expand
beyond ``MAX_EXPANSION`` times the size limit (a zip bomb), and no more rows
declared than the row limit.  ``Sheet`` then reads the first sheet row by
row, as often as the import needs (it validates every row, then reads them
again to write them), so the rows are never all held in memory; it stops
with the same clear refusal when a sheet holds more rows than it declared.

The limits are system parameters (Prepaid > Configuration), bounded by the
server's ``[prepaid] import_max_rows`` and ``import_max_megabytes``.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from trytond.exceptions import UserError
from trytond.i18n import gettext

Cell = Any  # str | int | float | bool | datetime | date | None

XLSX_MAGIC = b'PK\x03\x04'
XLS_MAGIC = b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1'
MEGABYTE = 1 << 20
#: Uncompressed .xlsx content allowed per byte of the size limit.  The sheets
#: of real workbooks expand 5 to 10 times; openpyxl holds the shared strings
#: part in memory, so this bounds the memory of the largest accepted file.
MAX_EXPANSION = 12
#: The import's limits when the server configuration does not set them:
#: the largest accepted file stays below 300 MB of memory (bench/README.md).
DEFAULT_MAX_ROWS = 200_000
DEFAULT_MAX_MEGABYTES = 12
#: Numbers from 1e15 up are not kept exactly by spreadsheets (15 significant
#: digits): as identifiers they would be silently wrong.
EXACT_LIMIT = 10**15


class ImportFileError(UserError):
    "The workbook itself cannot be imported (size, format, header, rows)"


class LossyNumber(ValueError):
    "A numeric cell that cannot stand for an identifier exactly"


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_rows: int

    @property
    def megabytes(self) -> int:
        return self.max_bytes // MEGABYTE


def check_upload(data: bytes | None, limits: Limits) -> None:
    "Refuse a file the import will not read, before any work"
    if not data:
        raise ImportFileError(gettext('prepaid_vending.msg_import_file_empty'))
    if len(data) > limits.max_bytes:
        raise ImportFileError(
            gettext(
                'prepaid_vending.msg_import_too_large',
                size=f'{len(data) / MEGABYTE:.1f}',
                maximum=limits.megabytes,
            )
        )
    if data[:4] == XLSX_MAGIC:
        _check_xlsx(data, limits)
    elif data[:8] != XLS_MAGIC:
        raise ImportFileError(gettext('prepaid_vending.msg_import_file_format'))
    declared = Sheet(data).declared_rows()
    if declared is not None and declared > limits.max_rows:
        raise _too_many_rows(declared, limits.max_rows)


def _check_xlsx(data: bytes, limits: Limits) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exception:
        raise _unreadable(exception) from exception
    if expanded > limits.max_bytes * MAX_EXPANSION:
        raise ImportFileError(
            gettext(
                'prepaid_vending.msg_import_expands',
                size=f'{expanded / MEGABYTE:.0f}',
                maximum=limits.megabytes * MAX_EXPANSION,
            )
        )


def _too_many_rows(rows: int, maximum: int) -> ImportFileError:
    return ImportFileError(
        gettext('prepaid_vending.msg_import_too_many_rows', rows=rows, maximum=maximum)
    )


def _unreadable(exception: Exception) -> ImportFileError:
    return ImportFileError(
        gettext(
            'prepaid_vending.msg_import_file_unreadable',
            error=str(exception)[:200],
        )
    )


class Sheet:
    """The first sheet of a workbook: its header, then its non-empty data
    rows with their spreadsheet row number, read again at each iteration.

    max_rows: iteration stops with ImportFileError beyond this many rows."""

    def __init__(self, data: bytes, max_rows: int | None = None):
        if not data:
            raise ImportFileError(gettext('prepaid_vending.msg_import_file_empty'))
        if data[:4] == XLSX_MAGIC:
            self._read = _read_xlsx
        elif data[:8] == XLS_MAGIC:
            self._read = _read_xls
        else:
            raise ImportFileError(gettext('prepaid_vending.msg_import_file_format'))
        self.data = data
        self.max_rows = max_rows
        self.header: list[str] = []
        self._header_row = 0
        rows = self._rows()
        try:
            for number, row in rows:
                self.header = [_header_name(v) for v in row]
                self._header_row = number
                break
        finally:
            rows.close()
        # Trailing empty header cells are formatting, not columns.
        while self.header and not self.header[-1]:
            self.header.pop()
        if not self.header:
            raise ImportFileError(gettext('prepaid_vending.msg_import_empty'))

    def _rows(self) -> Iterator[tuple[int, list[Cell]]]:
        "Non-empty rows, header included"
        rows = self._read(self.data)
        try:
            for number, row in rows:
                if any(v is not None for v in row):
                    yield number, row
        except ImportFileError:
            raise
        except Exception as exception:
            raise _unreadable(exception) from exception
        finally:
            rows.close()

    def __iter__(self) -> Iterator[tuple[int, list[Cell]]]:
        width = len(self.header)
        count = 0
        rows = self._rows()
        try:
            for number, row in rows:
                if number <= self._header_row:
                    continue
                count += 1
                if self.max_rows is not None and count > self.max_rows:
                    raise _too_many_rows(count, self.max_rows)
                yield number, row[:width]
        finally:
            rows.close()

    def declared_rows(self) -> int | None:
        "Data rows the .xlsx says it holds (its dimension), None if unknown"
        if self._read is not _read_xlsx:
            return None
        import openpyxl

        try:
            workbook = openpyxl.load_workbook(
                io.BytesIO(self.data), read_only=True, data_only=True
            )
        except Exception as exception:
            raise _unreadable(exception) from exception
        try:
            last = workbook.worksheets[0].max_row
        except Exception:
            last = None
        finally:
            workbook.close()
        return None if last is None else max(last - 1, 0)

    def count(self) -> int:
        "Data rows, counted by reading the sheet"
        return sum(1 for _ in self)


def _header_name(value: Cell) -> str:
    if value is None:
        return ''
    return '_'.join(str(value).strip().lower().split())


def _cell_xlsx(value: Cell) -> Cell:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _read_xlsx(data: bytes) -> Iterator[tuple[int, list[Cell]]]:
    import openpyxl

    try:
        # read_only streams the sheet instead of building every cell object.
        workbook = openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=True
        )
    except Exception as exception:
        raise _unreadable(exception) from exception
    try:
        sheet = workbook.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), 1):
            yield number, [_cell_xlsx(v) for v in row]
    finally:
        workbook.close()


def _read_xls(data: bytes) -> Iterator[tuple[int, list[Cell]]]:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data)
    except Exception as exception:
        raise _unreadable(exception) from exception
    sheet = book.sheet_by_index(0)
    for index in range(sheet.nrows):
        values = []
        for cell in sheet.row(index):
            if cell.ctype in {xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK}:
                values.append(None)
            elif cell.ctype == xlrd.XL_CELL_DATE:
                values.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
            elif cell.ctype == xlrd.XL_CELL_NUMBER:
                number = cell.value
                # Whole numbers as int, except those too long to be exact
                # (text() refuses them as identifiers).
                whole = math.isfinite(number) and number == int(number)
                exact = whole and abs(number) < EXACT_LIMIT
                values.append(int(number) if exact else number)
            elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                values.append(bool(cell.value))
            elif cell.ctype == xlrd.XL_CELL_ERROR:
                values.append(xlrd.error_text_from_code.get(cell.value, '#ERR'))
            else:
                values.append(_cell_xlsx(cell.value))
        yield index + 1, values


def text(value: Cell) -> str:
    """Cell as text: spreadsheets store IDs and phone numbers as numbers.

    A number cell from 1e15 up, or not finite, raises LossyNumber: the
    spreadsheet kept 15 significant digits only (12345678901234567890 is
    stored as 1.234567890123457e19), so its digits are not the ones typed.
    An .xls stores every number that way; an .xlsx written by a program may
    hold an exact integer, which is kept."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value) or (
            value.is_integer() and abs(value) >= EXACT_LIMIT
        ):
            raise LossyNumber(repr(value))
        if value.is_integer():
            return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    return str(value).strip()


def server_limits() -> Limits:
    """The ceiling set by the server's configuration ([prepaid]
    import_max_rows, import_max_megabytes): what memory allows.  The system
    parameters may lower the limits, never raise them above this."""
    from trytond import config

    rows = config.getint('prepaid', 'import_max_rows', default=DEFAULT_MAX_ROWS)
    megabytes = config.getint(
        'prepaid', 'import_max_megabytes', default=DEFAULT_MAX_MEGABYTES
    )
    return Limits(max_bytes=max(megabytes, 1) * MEGABYTE, max_rows=max(rows, 1))


def read_workbook(data: bytes) -> tuple[list[str], list[tuple[int, list[Cell]]]]:
    """The header names and the non-empty data rows (with their spreadsheet
    row number) of the first sheet of an .xlsx or .xls file, all in memory:
    for small workbooks and tests; the import itself streams a Sheet."""
    sheet = Sheet(data)
    return sheet.header, list(sheet)


def count_rows(data: bytes) -> int:
    "Data rows of the workbook (header and empty rows excluded)"
    return Sheet(data).count()


class RejectsWriter:
    """The rejected rows as typed, preceded by their row number and reasons,
    written as they come (openpyxl's write-only mode keeps them in a
    temporary file, not in memory)."""

    def __init__(self, header: list[str]):
        self.header = header
        self.workbook = None
        self.sheet = None

    def append(self, number: int, reasons: list[str], values: list[Cell]) -> None:
        if self.workbook is None:
            import openpyxl

            self.workbook = openpyxl.Workbook(write_only=True)
            self.sheet = self.workbook.create_sheet('rejected')
            self.sheet.append(['row', 'reason'] + self.header)
        self.sheet.append(
            [number, '; '.join(reasons)]
            # A cell starting with "=" would be a formula when opened.
            + [
                v if not isinstance(v, str) or not v.startswith('=') else "'" + v
                for v in values
            ]
        )

    def close(self) -> bytes | None:
        if self.workbook is None:
            return None
        out = io.BytesIO()
        self.workbook.save(out)
        return out.getvalue()
