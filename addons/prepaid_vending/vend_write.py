"""Set-based writes of the vend pipeline: one INSERT per table (and
:func:`scalar` and :func:`ids`, the narrow reads of its hot path).

Why: the ORM's ``create`` re-reads every new record to validate it (required,
digits, domains), runs ``check_modification`` and ``on_modification`` and, for
``account.move.line``, re-checks the journal period and re-balances the move
with two UPDATEs.  For a vend that is about 70 % of its time (bench/vend.py
``--profile``), while every value written here is computed by the pipeline
from records it has just read and checked.  What still holds:

- access rights: checked once at the API boundary (``Vend.vend``);
- NOT NULL, unique (idempotency key, month position) and CHECK constraints:
  enforced by the database, and an integrity error is translated into
  Tryton's message exactly as ``ModelSQL.create`` does;
- defaults of fields added by other modules: ``default_get`` fills them;
- ``ir.trigger`` on create: a model with triggers falls back to the ORM.

No account move is written here: the vends are booked after their request,
with the ORM (booking.py).
"""

from __future__ import annotations

import datetime as dt
import weakref

from sql import Column
from sql.functions import CurrentTimestamp
from trytond import backend
from trytond.pool import Pool
from trytond.transaction import Transaction

#: Columns ModelSQL.create fills itself.
_MAGIC = {'id', 'create_uid', 'create_date', 'write_uid', 'write_date'}


def _columns(Model) -> dict:
    """The stored fields of Model (name -> field), worked out once per class:
    the fields of a pool's class do not change (read-only for callers)."""
    columns = _columns_memo.get(Model)
    if columns is None:
        columns = _columns_memo[Model] = {
            name: field
            for name, field in Model._fields.items()
            if name not in _MAGIC and field.sql_type() is not None
        }
    return columns


_columns_memo: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def insert_rows(Model, rows: list[dict]) -> list[int]:
    """Create rows of Model (values as for ``create``: records or ids for
    relations, no One2Many) and return their ids, in order.

    The caller vouches for the values (see the module docstring)."""
    if not rows:
        return []
    pool = Pool()
    Trigger = pool.get('ir.trigger')
    if Trigger.get_triggers(Model.__name__, 'create'):
        # A trigger expects the ORM's create: keep its behaviour.
        return [r.id for r in Model.create(rows)]
    transaction = Transaction()
    database = transaction.database
    cursor = transaction.connection.cursor()
    table = Model.__table__()
    stored = _columns(Model)
    given = set().union(*rows)
    missing = [n for n in stored if n not in given]
    defaults = Model.default_get(missing, with_rec_name=False) if missing else {}
    names = sorted(given | set(defaults))
    columns = [table.create_uid, table.create_date] + [Column(table, n) for n in names]
    values = []
    for row in rows:
        full = {**defaults, **row}
        values.append(
            [transaction.user, CurrentTimestamp()]
            + [stored[n].sql_format(full.get(n)) for n in names]
        )
    try:
        ids = None
        if len(values) > 1 and database.has_multirow_insert():
            ids = database.nextid(transaction.connection, Model._table, len(values))
        if ids is not None:
            cursor.execute(
                *table.insert(
                    columns + [table.id], [v + [i] for v, i in zip(values, ids)]
                )
            )
        else:
            ids = []
            for value in values:
                if database.has_returning():
                    cursor.execute(*table.insert(columns, [value], [table.id]))
                    ids.append(cursor.fetchone()[0])
                else:
                    cursor.execute(*table.insert(columns, [value]))
                    ids.append(database.lastid(cursor))
    except backend.DatabaseIntegrityError as exception:
        # As ModelSQL.create: name the constraint in the user's language.
        raise_error = Model._ModelSQL__raise_integrity_error
        with transaction.new_transaction():
            for row in rows:
                raise_error(exception, row, transaction=transaction)
        raise
    transaction.counter += 1
    transaction.create_records[Model.__name__].extend(ids)
    return ids


def scalar(query):
    """The first column of the first row of a python-sql query, or None.

    The vend's lookups (tariff of a meter, version at a date, idempotency
    key...) need one id or value: ``ModelSQL.search`` builds and parses a
    domain, adds the access rules and instantiates records for it, which cost
    about ten times the query."""
    cursor = Transaction().connection.cursor()
    cursor.execute(*query)
    row = cursor.fetchone()
    return row[0] if row else None


def ids(query) -> list[int]:
    """The first column of every row of a python-sql query (record ids), for
    the lists every vend asks for (open debts...): see ``scalar``."""
    cursor = Transaction().connection.cursor()
    cursor.execute(*query)
    return [row[0] for row in cursor]


def forget(Model, ids) -> None:
    """After a raw UPDATE of ids: drop them from the transaction's record
    caches, as ``ModelSQL.write`` does (the counter alone does not)."""
    transaction = Transaction()
    transaction.counter += 1
    for cache in transaction.cache.values():
        if Model.__name__ in cache:
            records = cache[Model.__name__]
            for id_ in ids:
                records.pop(id_, None)


def refresh(Model, id_: int, values: dict) -> None:
    """After a raw UPDATE of values of one record: write them into the
    transaction's record caches that hold it, instead of dropping it
    (``forget``), so the pipeline does not read the whole record again."""
    transaction = Transaction()
    transaction.counter += 1
    for cache in transaction.cache.values():
        if Model.__name__ in cache:
            record = cache[Model.__name__].get(id_)
            if record is not None:
                for name, value in values.items():
                    record[name] = value


def adopt(record, id_: int) -> None:
    """Give an in-memory record the id it was inserted with, keeping its
    values in memory (the pipeline reads them again; no re-read from the DB).

    Mirrors what ``ModelStorage.save`` does after ``create``."""
    record._ids.remove(record.id)
    record._id = id_
    record._ids = [id_]


def row_of(record, names) -> dict:
    "The values of an in-memory record for insert_rows"
    values = record._values
    return {n: values[n] for n in names if n in values}


def insert_records(Model, records: list) -> None:
    "INSERT in-memory records of Model: each keeps its values and gets its id"
    names = list(_columns(Model))
    ids = insert_rows(Model, [row_of(record, names) for record in records])
    for record, id_ in zip(records, ids, strict=True):
        adopt(record, id_)


def as_date(value):
    "SQLite returns dates as text"
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value
