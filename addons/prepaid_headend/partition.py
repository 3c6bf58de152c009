"""Monthly range partitioning of the reading tables on PostgreSQL.

Executes the plan of ``reading.py``: the tables that grow with meters x time
become ``PARTITION BY RANGE ("timestamp")`` tables with one partition a month
(``<table>_YYYY_MM``) and a DEFAULT partition (``<table>_default``) that takes
any row outside the created months, so an insert never fails for want of a
partition.

Two parts:

- :func:`convert_table` / :func:`convert_readings`, a one-off conversion run by
  the ``prepaid-partition-readings DATABASE`` command (:func:`main`) after the
  module is activated, with workers and cron stopped (it locks the tables);
- :func:`create_partitions`, run daily by ``ir.cron``
  (:meth:`Cron.create_reading_partitions`), which creates the partitions of
  the current month and the next :data:`MONTHS_AHEAD` months when missing.

What Tryton needs, and how it is kept
-------------------------------------
PostgreSQL requires the partition key in every primary key and unique
constraint of a partitioned table.  So:

- the primary key becomes ``(id, "timestamp")`` under the same name
  (``<table>_pkey``); ``id`` stays an identity column (Tryton 8.0 requires one:
  a plain column would be "migrated" to identity on the next update, which
  PostgreSQL refuses on a partitioned table) and its sequence keeps its name
  and its position, so ids are never reused.  ``id`` stays unique in practice
  (one sequence) but is not enforced alone; nothing references a reading by
  Many2One, and the conversion refuses a table that another table references;
- the unique constraints of reading.py already end with ``timestamp`` and are
  recreated as they are, under their names; a unique constraint without it
  would be extended with ``timestamp`` (logged);
- foreign keys, check constraints, the ``idx_*`` indexes, NOT NULL, defaults
  and comments are recreated under the same names.

``trytond-admin -u`` then finds what it expects: the table
(information_schema lists partitioned tables), an identity ``id``, its
constraints and foreign keys by name with the same ON DELETE rules, and its
indexes by name (``CREATE INDEX IF NOT EXISTS`` does nothing).  The one
exception is ``trytond-admin --indexes`` without ``-u``, which creates indexes
CONCURRENTLY, refused by PostgreSQL on a partitioned table even when the index
exists: the reading models below create them plainly for a partitioned table.

Rows in the DEFAULT partition that fall in a month the job creates are moved
into the new partition in the same transaction.  Detaching and archiving old
months is left to the operator (``ALTER TABLE ... DETACH PARTITION``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from trytond.pool import PoolMeta
from trytond.transaction import Transaction

logger = logging.getLogger(__name__)

#: The tables with the big row counts, converted by default.
TABLES = (
    'prepaid_headend_interval',
    'prepaid_headend_register',
    'prepaid_headend_event',
)
#: Every reading table the plan allows to partition (billing values are
#: monthly, few rows: partition them only on request).
ALL_TABLES = TABLES + ('prepaid_headend_billing',)
KEY = 'timestamp'
MONTHS_AHEAD = 3
#: A conversion or a maintenance run waits this long for its table lock, then
#: fails cleanly instead of queueing every reader behind it.
LOCK_TIMEOUT = '30s'
MAX_IDENTIFIER = 63


class PartitionError(Exception):
    "The table cannot be partitioned as asked; nothing was changed"


@dataclasses.dataclass
class Conversion:
    table: str
    converted: bool
    rows: int = 0
    partitions: list[str] = dataclasses.field(default_factory=list)
    message: str = ''


# --- pure helpers -----------------------------------------------------------


def quote(name: str) -> str:
    "A quoted SQL identifier"
    return '"' + name.replace('"', '""') + '"'


def add_months(month: dt.date, count: int) -> dt.date:
    year, index = divmod(month.month - 1 + count, 12)
    return dt.date(month.year + year, index + 1, 1)


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    "First days of the months from ``first``'s to ``last``'s, both included"
    month, end = first.replace(day=1), last.replace(day=1)
    out = []
    while month <= end:
        out.append(month)
        month = add_months(month, 1)
    return out


def partition_name(table: str, month: dt.date) -> str:
    name = f'{table}_{month:%Y_%m}'
    if len(name) > MAX_IDENTIFIER:
        raise PartitionError(f"partition name {name!r} is too long")
    return name


def default_name(table: str) -> str:
    return f'{table}_default'


def bounds(month: dt.date) -> tuple[str, str]:
    "SQL literals of the month's range, [first day, first day of next month)"
    return (
        f"'{month:%Y-%m-%d} 00:00:00'",
        f"'{add_months(month, 1):%Y-%m-%d} 00:00:00'",
    )


def dialect(cursor: Any) -> str:
    if isinstance(cursor, sqlite3.Cursor):
        return 'sqlite'
    # trytond's PostgreSQL cursor subclasses psycopg's.
    if any(c.__module__.split('.')[0] == 'psycopg' for c in type(cursor).__mro__):
        return 'postgresql'
    return type(cursor).__module__


# --- catalogue queries --------------------------------------------------------


def _relation(cursor: Any, table: str) -> tuple[int, str] | None:
    "(oid, relkind) of the table in the search path, or None"
    cursor.execute(
        'SELECT c.oid, c.relkind FROM pg_class c '
        'WHERE c.oid = to_regclass(quote_ident(%s))',
        (table,),
    )
    row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def is_partitioned(cursor: Any, table: str) -> bool:
    relation = _relation(cursor, table)
    return bool(relation) and relation[1] == 'p'


def partitions(cursor: Any, table: str) -> dict[str, str]:
    "Partition name -> bound expression, of a partitioned table"
    cursor.execute(
        'SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) '
        'FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid '
        'WHERE i.inhparent = to_regclass(quote_ident(%s))',
        (table,),
    )
    return {name: bound for name, bound in cursor}


def _default_partition(cursor: Any, table: str) -> str | None:
    cursor.execute(
        'SELECT c.relname FROM pg_partitioned_table p '
        'JOIN pg_class c ON c.oid = p.partdefid '
        'WHERE p.partrelid = to_regclass(quote_ident(%s))',
        (table,),
    )
    row = cursor.fetchone()
    return row[0] if row else None


def _columns(cursor: Any, oid: int) -> list[str]:
    cursor.execute(
        'SELECT attname FROM pg_attribute '
        'WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped '
        'ORDER BY attnum',
        (oid,),
    )
    return [name for (name,) in cursor]


def _lock(cursor: Any, table: str) -> None:
    # SET LOCAL: ends with the transaction, whatever the outcome.
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    cursor.execute(f'LOCK TABLE {quote(table)} IN ACCESS EXCLUSIVE MODE')


# --- the one-off conversion ---------------------------------------------------


def convert_table(
    cursor: Any,
    table: str,
    *,
    today: dt.date | None = None,
    months_ahead: int = MONTHS_AHEAD,
) -> Conversion:
    """Turn ``table`` into a table partitioned by month on ``timestamp``.

    Keeps its rows (and their ids), its identity sequence, constraints,
    foreign keys, indexes and comments under the same names; creates the
    months from the oldest row to ``months_ahead`` after ``today`` and the
    DEFAULT partition.  Runs in the caller's transaction: on any error the
    caller rolls back and the table is as it was.  Idempotent: an already
    partitioned table is left alone (``converted`` False).
    """
    if (kind := dialect(cursor)) != 'postgresql':
        raise PartitionError(f"partitioning needs PostgreSQL, not {kind}")
    today = today or dt.datetime.now(dt.UTC).date()
    relation = _relation(cursor, table)
    if relation is None:
        raise PartitionError(
            f"table {table} does not exist (activate prepaid_headend first)"
        )
    oid, relkind = relation
    if relkind == 'p':
        return Conversion(table, False, message=f"{table} is already partitioned")
    if relkind != 'r':
        raise PartitionError(f"{table} is not a plain table (relkind {relkind})")
    _lock(cursor, table)

    columns = _columns(cursor, oid)
    if KEY not in columns or 'id' not in columns:
        raise PartitionError(f"{table} has no {KEY} or id column")
    cursor.execute(
        'SELECT conname, conrelid::regclass::text FROM pg_constraint '
        "WHERE confrelid = %s AND contype = 'f' AND conrelid <> %s",
        (oid, oid),
    )
    if referencing := cursor.fetchall():
        names = ', '.join(f'{c} on {t}' for c, t in referencing)
        raise PartitionError(
            f"{table} is referenced by foreign keys ({names}): a partitioned "
            f"table cannot back a key on id alone"
        )
    cursor.execute(
        'SELECT attidentity FROM pg_attribute WHERE attrelid = %s AND attname = \'id\'',
        (oid,),
    )
    if cursor.fetchone()[0] not in ('d', 'a'):
        raise PartitionError(
            f"{table}.id is not an identity column: run trytond-admin -u first"
        )

    constraints = _constraint_definitions(cursor, table, oid, columns)
    indexes = _index_definitions(cursor, table, oid)
    cursor.execute("SELECT obj_description(%s, 'pg_class')", (oid,))
    (comment,) = cursor.fetchone()
    cursor.execute(
        "SELECT s.relname, s.oid::regclass::text FROM pg_class s "
        "WHERE s.oid = pg_get_serial_sequence(quote_ident(%s), 'id')::regclass",
        (table,),
    )
    sequence_name, old_sequence = cursor.fetchone()
    cursor.execute(f'SELECT last_value, is_called FROM {old_sequence}')
    last_value, is_called = cursor.fetchone()
    cursor.execute(
        f'SELECT min({quote(KEY)}), max({quote(KEY)}), count(*) FROM {quote(table)}'
    )
    oldest, _newest, count = cursor.fetchone()

    # The new table under a temporary name: the old one keeps its names (and
    # the names of its constraints and indexes) until it is dropped.
    staging = f'{table}__partitioned'
    cursor.execute(
        f'CREATE TABLE {quote(staging)} (LIKE {quote(table)} INCLUDING DEFAULTS '
        'INCLUDING IDENTITY INCLUDING CONSTRAINTS INCLUDING COMMENTS '
        'INCLUDING STORAGE) '
        f'PARTITION BY RANGE ({quote(KEY)})'
    )
    first = min(oldest.date(), today) if oldest else today
    months = months_between(first, add_months(today, months_ahead))
    created = []
    for month in months:
        low, high = bounds(month)
        name = partition_name(table, month)
        cursor.execute(
            f'CREATE TABLE {quote(name)} PARTITION OF {quote(staging)} '
            f'FOR VALUES FROM ({low}) TO ({high})'
        )
        created.append(name)
    cursor.execute(
        f'CREATE TABLE {quote(default_name(table))} '
        f'PARTITION OF {quote(staging)} DEFAULT'
    )
    created.append(default_name(table))
    names = ', '.join(map(quote, columns))
    cursor.execute(
        f'INSERT INTO {quote(staging)} ({names}) OVERRIDING SYSTEM VALUE '
        f'SELECT {names} FROM {quote(table)}'
    )

    cursor.execute(f'DROP TABLE {quote(table)}')
    cursor.execute(f'ALTER TABLE {quote(staging)} RENAME TO {quote(table)}')
    cursor.execute("SELECT pg_get_serial_sequence(quote_ident(%s), 'id')", (table,))
    (new_sequence,) = cursor.fetchone()
    # The identity sequence was created under the staging name.
    cursor.execute(f'ALTER SEQUENCE {new_sequence} RENAME TO {quote(sequence_name)}')
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence(quote_ident(%s), 'id'), %s, %s)",
        (table, last_value, is_called),
    )
    for name, definition in constraints:
        cursor.execute(
            f'ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}'
        )
    for definition in indexes:
        # pg_get_indexdef names the table, which now is the partitioned one.
        cursor.execute(definition)
    if comment is not None:
        cursor.execute(f'COMMENT ON TABLE {quote(table)} IS {_literal(comment)}')
    cursor.execute(f'ANALYZE {quote(table)}')
    logger.info(
        "%s partitioned by month: %d rows, %d partitions", table, count, len(created)
    )
    return Conversion(
        table,
        True,
        rows=count,
        partitions=created,
        message=f"{table} partitioned by month: {count} rows copied, "
        f"{len(created)} partitions",
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _constraint_definitions(
    cursor: Any, table: str, oid: int, columns: Sequence[str]
) -> list[tuple[str, str]]:
    """(name, definition) of the constraints to recreate, primary key first.

    CHECK constraints and NOT NULL come with ``LIKE ... INCLUDING CONSTRAINTS``.
    """
    cursor.execute(
        'SELECT conname, contype, pg_get_constraintdef(oid), conkey '
        "FROM pg_constraint WHERE conrelid = %s AND contype IN ('p', 'u', 'f', 'x') "
        "ORDER BY contype = 'p' DESC, conname",
        (oid,),
    )
    key = columns.index(KEY) + 1
    out = []
    for name, kind, definition, attnums in cursor.fetchall():
        attnums = list(attnums or [])
        if kind == 'p':
            definition = f'PRIMARY KEY (id, {quote(KEY)})'
        elif kind == 'u' and key not in attnums:
            names = [columns[n - 1] for n in attnums] + [KEY]
            definition = f'UNIQUE ({", ".join(map(quote, names))})'
            logger.warning("%s: unique %s extended with %s", table, name, KEY)
        elif kind == 'x' and key not in attnums:
            raise PartitionError(
                f"{table}: exclusion constraint {name} does not include {KEY}"
            )
        out.append((name, definition))
    return out


def _index_definitions(cursor: Any, table: str, oid: int) -> list[str]:
    "CREATE INDEX statements of the indexes that back no constraint"
    cursor.execute(
        'SELECT i.indexrelid::regclass::text, i.indisunique, i.indkey::int2[], '
        'pg_get_indexdef(i.indexrelid) '
        'FROM pg_index i WHERE i.indrelid = %s AND i.indexrelid NOT IN '
        '(SELECT conindid FROM pg_constraint WHERE conrelid = %s) '
        'ORDER BY 1',
        (oid, oid),
    )
    rows = cursor.fetchall()
    columns = _columns(cursor, oid)
    key = columns.index(KEY) + 1
    out = []
    for name, unique, attnums, definition in rows:
        if unique and key not in list(attnums):
            raise PartitionError(f"{table}: unique index {name} does not include {KEY}")
        out.append(definition)
    return out


def convert_readings(
    cursor: Any,
    tables: Iterable[str] = TABLES,
    *,
    today: dt.date | None = None,
    months_ahead: int = MONTHS_AHEAD,
) -> list[Conversion]:
    """Convert each table (see :func:`convert_table`); on SQLite nothing is
    done and one refusal is returned."""
    if (kind := dialect(cursor)) != 'postgresql':
        return [
            Conversion(
                '',
                False,
                message=f"partitioning needs PostgreSQL; this database is {kind}: "
                "nothing done",
            )
        ]
    tables = list(tables)
    if unknown := [t for t in tables if t not in ALL_TABLES]:
        raise PartitionError(f"not a reading table: {', '.join(unknown)}")
    return [
        convert_table(cursor, table, today=today, months_ahead=months_ahead)
        for table in tables
    ]


# --- maintenance: partitions ahead --------------------------------------------


def create_partitions(
    cursor: Any,
    table: str,
    *,
    today: dt.date | None = None,
    months_ahead: int = MONTHS_AHEAD,
) -> list[str]:
    """Create the missing month partitions from ``today``'s month to
    ``months_ahead`` months after it; returns the names created.

    Rows that the DEFAULT partition holds for such a month are moved into it
    (PostgreSQL refuses a new partition whose rows sit in DEFAULT)."""
    if not is_partitioned(cursor, table):
        raise PartitionError(f"{table} is not partitioned")
    today = today or dt.datetime.now(dt.UTC).date()
    existing = partitions(cursor, table)
    default = _default_partition(cursor, table)
    wanted = [
        (partition_name(table, m), m)
        for m in months_between(today, add_months(today, months_ahead))
    ]
    missing = [(name, month) for name, month in wanted if name not in existing]
    if not missing:
        return []
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    created = []
    for name, month in missing:
        if _relation(cursor, name) is not None:
            raise PartitionError(f"{name} exists but is not a partition of {table}")
        low, high = bounds(month)
        in_range = f'{quote(KEY)} >= {low} AND {quote(KEY)} < {high}'
        moved = 0
        if default:
            cursor.execute(f'SELECT count(*) FROM {quote(default)} WHERE {in_range}')
            (moved,) = cursor.fetchone()
        if moved:
            columns = ', '.join(
                map(quote, _columns(cursor, _relation(cursor, table)[0]))
            )
            cursor.execute(
                f'CREATE TABLE {quote(name)} (LIKE {quote(table)} '
                'INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)'
            )
            cursor.execute(
                f'WITH moved AS (DELETE FROM {quote(default)} WHERE {in_range} '
                f'RETURNING {columns}) '
                f'INSERT INTO {quote(name)} ({columns}) SELECT {columns} FROM moved'
            )
            # Indexes, keys and foreign keys are created by the attach.
            cursor.execute(
                f'ALTER TABLE {quote(table)} ATTACH PARTITION {quote(name)} '
                f'FOR VALUES FROM ({low}) TO ({high})'
            )
        else:
            cursor.execute(
                f'CREATE TABLE {quote(name)} PARTITION OF {quote(table)} '
                f'FOR VALUES FROM ({low}) TO ({high})'
            )
        logger.info("partition %s created (%d rows moved from default)", name, moved)
        created.append(name)
    return created


def create_reading_partitions(
    cursor: Any,
    *,
    today: dt.date | None = None,
    months_ahead: int = MONTHS_AHEAD,
) -> dict[str, list[str]]:
    """The maintenance job: partitions ahead for every partitioned reading
    table; tables not converted are skipped; nothing on SQLite."""
    if dialect(cursor) != 'postgresql':
        return {}
    return {
        table: create_partitions(cursor, table, today=today, months_ahead=months_ahead)
        for table in ALL_TABLES
        if is_partitioned(cursor, table)
    }


# --- Tryton -------------------------------------------------------------------


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            (
                'ir.cron|create_reading_partitions',
                "Create Reading Partitions Ahead",
            )
        )

    @classmethod
    def create_reading_partitions(cls) -> dict[str, list[str]]:
        cursor = Transaction().connection.cursor()
        if dialect(cursor) != 'postgresql':
            logger.info("reading partitions: not PostgreSQL, nothing to do")
            return {}
        created = create_reading_partitions(cursor)
        if not created:
            logger.info(
                "reading partitions: no partitioned table "
                "(run prepaid-partition-readings to convert)"
            )
        return created


class _PartitionedIndexes:
    """``trytond-admin --indexes`` creates indexes CONCURRENTLY, which
    PostgreSQL refuses on a partitioned table (even with IF NOT EXISTS)."""

    __slots__ = ()

    @classmethod
    def _update_sql_indexes(cls, concurrently=False):
        if concurrently:
            cursor = Transaction().connection.cursor()
            if dialect(cursor) == 'postgresql' and is_partitioned(cursor, cls._table):
                concurrently = False
        super()._update_sql_indexes(concurrently=concurrently)


class RegisterReading(_PartitionedIndexes, metaclass=PoolMeta):
    __name__ = 'prepaid.headend.register'


class IntervalReading(_PartitionedIndexes, metaclass=PoolMeta):
    __name__ = 'prepaid.headend.interval'


class BillingReading(_PartitionedIndexes, metaclass=PoolMeta):
    __name__ = 'prepaid.headend.billing'


class Event(_PartitionedIndexes, metaclass=PoolMeta):
    __name__ = 'prepaid.headend.event'


# --- command ------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``prepaid-partition-readings [-c CONF] DATABASE``: the one-off
    conversion.  Stop trytond-worker and trytond-cron first (it locks the
    tables); run it again any time: converted tables are left alone, missing
    partitions ahead are created."""
    parser = argparse.ArgumentParser(
        prog='prepaid-partition-readings',
        description="Partition the head-end reading tables by month (PostgreSQL only).",
    )
    parser.add_argument('database')
    parser.add_argument(
        '-c', '--config', help="trytond configuration file (default $TRYTOND_CONFIG)"
    )
    parser.add_argument(
        '--table',
        action='append',
        choices=ALL_TABLES,
        help=f"table to convert (repeatable; default: {', '.join(TABLES)})",
    )
    parser.add_argument(
        '--months-ahead',
        type=int,
        default=MONTHS_AHEAD,
        help=f"months created after the current one (default {MONTHS_AHEAD})",
    )
    options = parser.parse_args(argv)
    if options.months_ahead < 0:
        parser.error("--months-ahead must not be negative")

    from trytond import config

    if options.config:
        config.update_etc(options.config)
    from trytond import backend  # after the configuration: it picks the backend
    from trytond.transaction import Transaction

    try:
        with Transaction().start(options.database, 0) as transaction:
            cursor = transaction.connection.cursor()
            if dialect(cursor) != 'postgresql':
                (refusal,) = convert_readings(cursor)
                print(refusal.message, file=sys.stderr)
                return 1
            results = convert_readings(
                cursor,
                options.table or TABLES,
                months_ahead=options.months_ahead,
            )
            ahead = create_reading_partitions(cursor, months_ahead=options.months_ahead)
            transaction.commit()
    except (PartitionError, backend.DatabaseOperationalError) as error:
        # The transaction was rolled back: nothing changed.
        print(f"error: {error}; nothing changed", file=sys.stderr)
        return 2
    for result in results:
        print(result.message)
    for table, names in ahead.items():
        if names:
            print(f"{table}: created {', '.join(names)}")
    return 0


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
