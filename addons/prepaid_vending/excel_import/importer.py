"""The import itself: validate every row, then write the valid ones by
batches through the set-based writer (or the ORM), streaming the rejected
ones to the rejects workbook."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from trytond.i18n import gettext
from trytond.pool import Pool

from . import bulk_writer, orm_writer
from .columns import check_header
from .sheet import Cell, ImportFileError, RejectsWriter
from .validation import (
    CleanRow,
    FileIndex,
    Rejected,
    RowValidator,
    load_lookups,
    load_row_lookups,
)

logger = logging.getLogger(__name__)

# Rows per written batch (and per progress report) of the set-based path.
WRITE_BATCH = 1000
# Records per create() call on the ORM path.  Larger batches save queries but
# each record instantiation scans the whole batch (an assertion in
# ModelStorage), so the gain stops around a few hundred.
ORM_BATCH = 200

# How many values an "in" clause of a look-up query carries.
QUERY_CHUNK = 1000


@dataclass
class ImportResult:
    total: int = 0
    imported: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    written: bool = False
    parties: int = 0
    service_points: int = 0
    meters: int = 0
    header: list[str] = field(default_factory=list)
    meter_ids: list[int] = field(default_factory=list)
    rejects: bytes | None = None

    def rejects_workbook(self) -> bytes | None:
        "The rejected rows as typed, with their row number and reasons"
        return self.rejects


Progress = Callable[[int, int], None]  # (validated rows, processed rows)


def import_rows(
    header: list[str],
    rows: Iterable[tuple[int, list[Cell]]],
    mode: str = 'all',
    progress: Progress | None = None,
    today: dt.date | None = None,
    batch: int | None = None,
    orm: bool = False,
) -> ImportResult:
    """Validate every row, then write the valid ones (mode 'valid') or all of
    them only if none is rejected (mode 'all').  Runs in the current
    transaction; the caller commits.  batch: rows per written batch (and per
    progress report); orm: write through Model.create (the reference path).

    rows is read twice (a list, or a Sheet that reads its file again): first
    to validate every row and index what rows share, then to write the valid
    rows by batches and stream the rejected ones to the rejects workbook.  No
    row is held beyond its batch, so memory does not grow with the file."""
    if mode not in {'all', 'valid'}:
        raise ValueError(f"mode must be 'all' or 'valid', not {mode!r}")
    positions = check_header(header)
    today = today or dt.date.today()
    lookups = load_lookups()
    validator = RowValidator(positions, lookups, today)
    index = FileIndex()
    total = invalid = 0
    for chunk in chunks(rows):
        load_row_lookups(lookups, positions, chunk)
        for number, row in chunk:
            clean, errors = validator.validate(number, row)
            index.add(number, validator.serial(row), clean)
            invalid += bool(errors)
        total += len(chunk)
        if progress and total % 5000 < len(chunk):
            progress(total, 0)
    if not total:
        raise ImportFileError(gettext('prepaid_vending.msg_import_no_rows'))
    result = ImportResult(total=total, header=header)
    if progress:
        progress(total, 0)
    writer = None
    if mode == 'valid' or not (invalid or index.conflicts):
        writer = RowWriter(result, batch, orm)
    rejects = RejectsWriter(header)
    pending: list[CleanRow] = []
    processed = 0
    for number, row in rows:
        clean, errors = validator.validate(number, row)
        errors += index.reasons(number, validator.serial(row), clean)
        processed += 1
        if errors:
            result.rejected.append(Rejected(number, errors))
            rejects.append(number, errors, row)
        elif writer:
            pending.append(clean)
            if len(pending) == writer.batch:
                writer.write(pending)
                pending = []
                if progress:
                    progress(total, processed)
    if writer:
        if pending:
            writer.write(pending)
            if progress:
                progress(total, processed)
        result.written = True
    result.rejects = rejects.close()
    return result


class RowWriter:
    """Create parties, service points, meters and installations by batches:
    set-based (bulk_create) unless orm is set or a model needs the ORM.
    The customers created by one batch are found again by the later ones."""

    def __init__(self, result: ImportResult, batch: int | None, orm: bool):
        self.result = result
        self.party_ids: dict[tuple[str, str], int] = {}
        self.bulk = not orm
        if self.bulk:
            try:
                for name in bulk_writer.BULK_MODELS:
                    bulk_writer.check_bulk_model(Pool().get(name))
            except bulk_writer.BulkUnsupported as exception:
                logger.info("import through the ORM: %s", exception)
                self.bulk = False
        self.batch = batch or (WRITE_BATCH if self.bulk else ORM_BATCH)

    def write(self, rows: list[CleanRow]) -> None:
        for chunk in chunks(rows, self.batch):
            if self.bulk:
                bulk_writer.write_chunk(chunk, self.result, self.party_ids)
            else:
                orm_writer.write_chunk(chunk, self.result, self.party_ids)


def chunks(values: Iterable[Any], size: int = QUERY_CHUNK) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
