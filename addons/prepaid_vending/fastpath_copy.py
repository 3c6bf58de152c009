"""The fast path's row writer for large batches (part of :mod:`fastpath`).

``fastpath.create`` inserts the few rows of a vend with multi-row INSERTs.
The Excel import writes up to 200,000 rows of six models at once, and there
trytond's client-side parameter binding makes the large INSERT statements
the main cost on PostgreSQL.  :func:`insert_rows` writes such batches:

- PostgreSQL: the ids drawn from the table's sequence first, then the rows
  streamed by ``COPY ... FROM STDIN``;
- SQLite: one prepared INSERT run by ``executemany`` (the transaction holds
  the write lock and the tables use AUTOINCREMENT: the ids follow each other,
  checked all the same).

It writes the audit columns as ``ModelSQL.create`` does (``create_uid``,
``create_date`` = the transaction's ``CURRENT_TIMESTAMP``, and ``write_uid``
/ ``write_date`` when the caller's ORM path would write the records again),
and turns integrity and data errors into Tryton's messages as ``create``
does (through :mod:`trytond_private`).

It is the low-level write only: values already SQL-formatted, nothing else
checked.  Its caller, ``excel_import.bulk_writer.bulk_create``, does what
``create`` does around it (access, ``preprocess_values``, defaults, computed
fields, the model's hooks, record rules, triggers) and documents what it
leaves out; the import's tests compare its records with the ORM's.
"""

from __future__ import annotations

from typing import Any

from sql import Column
from sql.aggregate import Count
from sql.functions import CurrentTimestamp
from trytond import backend
from trytond.transaction import Transaction

from . import trytond_private

__all__ = ['insert_rows']


def insert_rows(
    Model: Any, columns: list[str], rows: list[list[Any]], written: bool = False
) -> list[int]:
    """Insert rows (SQL-formatted values of columns, in that order) into
    Model's table and return their ids, in order.  written: also set
    write_uid/write_date."""
    if not rows:
        return []
    transaction = Transaction()
    try:
        if backend.name == 'postgresql':
            return _copy(Model, columns, rows, written)
        return _executemany(Model, columns, rows, written)
    except (backend.DatabaseIntegrityError, backend.DatabaseDataError) as error:
        if isinstance(error, backend.DatabaseIntegrityError):
            raise_error = trytond_private.raise_integrity_error
        else:
            raise_error = trytond_private.raise_data_error
        # As ModelSQL.create: the failed transaction cannot query, the row
        # at fault is looked for from a new one.
        with transaction.new_transaction():
            for row in rows:
                raise_error(Model, error, dict(zip(columns, row)))
        raise


def _audit(write: bool) -> list[str]:
    "The audit columns an insert sets"
    names = ['create_uid', 'create_date']
    return names + ['write_uid', 'write_date'] if write else names


def _copy(Model: Any, columns: list[str], rows: list[list[Any]], write: bool):
    from psycopg.sql import SQL, Identifier

    transaction = Transaction()
    connection = transaction.connection
    ids = transaction.database.nextid(connection, Model._table, count=len(rows))
    if not isinstance(ids, list):
        ids = [ids]
    cursor = connection.cursor()
    # The value an INSERT of CURRENT_TIMESTAMP stores in trytond's
    # timestamp-without-time-zone columns: COPY takes no SQL expressions.
    cursor.execute('SELECT CAST(CURRENT_TIMESTAMP AS TIMESTAMP)')
    (now,) = cursor.fetchone()
    user = transaction.user
    audit = [user, now, user, now] if write else [user, now]
    names = _audit(write) + columns + ['id']
    query = SQL('COPY {} ({}) FROM STDIN').format(
        Identifier(Model._table), SQL(', ').join(map(Identifier, names))
    )
    with cursor.copy(query) as copy:
        for row, id_ in zip(rows, ids):
            copy.write_row(audit + row + [id_])
    return ids


def _executemany(Model: Any, columns: list[str], rows: list[list[Any]], write: bool):
    transaction = Transaction()
    cursor = transaction.connection.cursor()
    table = Model.__table__()
    audit_values = [transaction.user, CurrentTimestamp()] * (2 if write else 1)
    cols = [Column(table, c) for c in _audit(write) + columns]
    query, _ = tuple(table.insert(cols, [audit_values + rows[0]]))
    # The parameters of the audit columns: the user ids (the timestamps are
    # SQL expressions of the query).
    params = [[transaction.user] * (2 if write else 1) + row for row in rows]
    cursor.executemany(query, params)
    cursor.execute('SELECT last_insert_rowid()')
    (last,) = cursor.fetchone()
    first = last - len(rows) + 1
    cursor.execute(
        *table.select(Count(table.id), where=(table.id >= first) & (table.id <= last))
    )
    if cursor.fetchone()[0] != len(rows):
        raise RuntimeError(f'{Model.__name__}: inserted ids are not consecutive')
    return list(range(first, last + 1))
