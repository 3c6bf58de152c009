"""Readings: register values, load-profile intervals, billing values, events.

Partitioning plan (these tables grow with meters x time)
--------------------------------------------------------
Every reading table carries the reading timestamp (naive UTC, as Tryton stores
them) and a unique key that starts with the meter and ends with the timestamp:

============================== ========================================
table                          unique key
============================== ========================================
prepaid_headend_register       (meter, obis, timestamp)
prepaid_headend_interval       (meter, obis, timestamp)
prepaid_headend_billing        (meter, obis, timestamp)
prepaid_headend_event          (meter, log, timestamp, code)
============================== ========================================

On PostgreSQL the production schema turns each table into a declaratively
partitioned table, ``PARTITION BY RANGE (timestamp)``, one partition a month
(``prepaid_headend_interval_2026_01`` FOR VALUES FROM ('2026-01-01') TO
('2026-02-01')), created a few months ahead by a maintenance job, old months
detached and archived.  PostgreSQL requires the partition key in every unique
constraint: the keys above include ``timestamp``, so they stay valid per
partition.  The ``id`` primary key becomes (id, timestamp) on the partitioned
table; nothing in the module references readings by Many2One, so no foreign key
needs the id alone.  Queries always filter on meter and a time range, so
partition pruning applies.  Tryton creates plain tables; the conversion is a
one-off DDL script run before the data arrives (``CREATE TABLE ... PARTITION
BY RANGE``, copy, rename).

Idempotence
-----------
A re-read returns rows already stored.  :func:`insert_new` drops the rows whose
key already exists (one range query per meter and table) and inserts the rest;
the unique constraint remains the guard against two workers racing (the loser's
transaction fails and the queue retries it, then skips the rows).
:func:`insert_rows` does the same for the rows of many meters at once (one
query for the keys per 1,000 meters): the report files of the concentrators,
100,000 rows a file.  It writes them by COPY (``fastpath_copy``) when the
model's hooks are the reviewed ones of :data:`COPY_HOOKS` (run set-based),
else through ``fastpath.create`` (a record per row for the hooks).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from trytond.model import Index, ModelSQL, ModelView, Unique, fields
from trytond.modules.prepaid_vending import fastpath
from trytond.modules.prepaid_vending.append_only import AppendOnlyMixin
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from .billing_feed import KWH_PER_UNIT
from .dlms import axdr
from .dlms import operations as ops

# OBIS of cumulative energy registers: the interval consumption is the delta.
CUMULATIVE = {ops.ENERGY_IMPORT, ops.ENERGY_EXPORT}
OBIS_NAMES = {
    ops.ENERGY_IMPORT: "Active energy import (+A)",
    ops.ENERGY_EXPORT: "Active energy export (-A)",
    ops.ACTIVE_POWER: "Active power import (+P)",
    '1.0.32.7.0.255': "Voltage L1",
    '1.0.31.7.0.255': "Current L1",
}
#: key of a series in register_graph.xml -> its OBIS code.
GRAPH_SERIES = {
    'voltage': '1.0.32.7.0.255',
    'current': '1.0.31.7.0.255',
    'power': ops.ACTIVE_POWER,
}
EVENT_LOGS = [
    ('standard', "Standard Event Log"),
    ('disconnector', "Disconnector Event Log"),
    ('alarm', "Alarm Register"),
]
LOG_OBIS = {
    'standard': ops.STANDARD_EVENT_LOG,
    'disconnector': ops.DISCONNECTOR_EVENT_LOG,
    'alarm': ops.ALARM_REGISTER,
}
# IDIS event codes and the simulator's own codes (simulators/meter/model.py).
EVENT_CODES = {
    1: "Power down",
    2: "Power up",
    4: "Clock adjusted (old time)",
    5: "Clock adjusted (new time)",
    17: "Firmware ready for activation",
    18: "Firmware activated",
    50: "Remote disconnection",
    51: "Remote connection",
    52: "Local disconnection",
    53: "Limiter threshold exceeded",
    200: "Credit exhausted",
    201: "Token accepted",
    202: "Token rejected",
    203: "Tamper cleared",
    204: "Firmware verification failed",
    205: "Firmware activation failed (old firmware kept)",
    230: "Low credit warning (remote-prepaid account)",
    231: "Remote credit not delivered",
}
#: Event raised by the head-end itself when a vend's remote credit will not
#: reach the meter by itself (command.py); always published as an alarm.
DELIVERY_FAILED_CODE = 231
HEADEND_ALARM_CODES = frozenset({DELIVERY_FAILED_CODE})
ALARM_BITS = {8: "Fraud attempt (tamper)"}

#: The reading tables written set-based by :func:`insert_rows`: readings
#: come from meters and concentrators, never from a client (append-only),
#: so the write is the system's, caused by the concentrator service (root)
#: or by the staff who run the head-end.
READINGS = (
    'prepaid.headend.register',
    'prepaid.headend.interval',
    'prepaid.headend.billing',
    'prepaid.headend.event',
)
READING_WRITE = fastpath.SystemWrite(
    'readings received from meters',
    ('prepaid_vending.group_engineer', 'prepaid_vending.group_admin'),
)
fastpath.declare('prepaid_headend', *READINGS)
#: Rows per INSERT batch of insert_rows (bounds the records held in memory).
BATCH = 20_000


def naive_utc(moment: dt.datetime) -> dt.datetime:
    "Tryton stores naive UTC timestamps, to the second"
    if moment.tzinfo is not None:
        moment = axdr.to_utc(moment).replace(tzinfo=None)
    return moment.replace(microsecond=0)


class _ReadingMixin(AppendOnlyMixin):
    __slots__ = ()
    meter = fields.Many2One(
        'prepaid.meter', "Meter", required=True, ondelete='CASCADE', readonly=True
    )
    obis = fields.Char("OBIS", required=True, readonly=True)
    timestamp = fields.Timestamp("Timestamp (UTC)", required=True, readonly=True)
    value = fields.Float("Value", readonly=True)
    unit = fields.Char("Unit", readonly=True)
    job = fields.Many2One(
        'prepaid.headend.job', "Job", readonly=True, ondelete='SET NULL'
    )
    description = fields.Function(fields.Char("Quantity"), 'get_description')
    # sao's graph draws a time axis for DateTime fields only: a Timestamp
    # x axis is a row of raw "2026-12-07 09:15:00.000000" category labels.
    capture_time = fields.Function(fields.DateTime("Time"), 'get_capture_time')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'meter_obis_timestamp_unique',
                Unique(t, t.meter, t.obis, t.timestamp),
                'prepaid_headend.msg_reading_unique',
            ),
        ]
        cls._sql_indexes.add(
            Index(t, (t.meter, Index.Equality()), (t.timestamp, Index.Range()))
        )
        cls._order = [('timestamp', 'DESC'), ('obis', 'ASC'), ('id', 'DESC')]
        cls.__access__.add('meter')

    def get_description(self, name):
        return OBIS_NAMES.get(self.obis, self.obis)

    def get_capture_time(self, name):
        return self.timestamp


class RegisterReading(_ReadingMixin, ModelSQL, ModelView):
    "Register value read from a meter"

    __name__ = 'prepaid.headend.register'
    __string__ = "Register Reading"

    @classmethod
    def view_attributes(cls):
        # One line per quantity in the graph (see register_graph.xml): each
        # series takes the readings of its OBIS code only.
        return super().view_attributes() + [
            (f'/graph/y/field[@key="{key}"]', 'domain', Eval('obis') == obis)
            for key, obis in GRAPH_SERIES.items()
        ]


class IntervalReading(_ReadingMixin, ModelSQL, ModelView):
    "Load-profile interval value (15-minute capture)"

    __name__ = 'prepaid.headend.interval'
    __string__ = "Load Profile Interval"

    consumption = fields.Float(
        "Consumption",
        readonly=True,
        help="Energy of the interval (difference with the previous capture) "
        "for cumulative registers.",
    )
    energy_kwh = fields.Function(
        fields.Float("Energy (kWh)", digits=(16, 3)),
        'get_energy_kwh',
    )

    def get_energy_kwh(self, name):
        "The interval's consumption in kWh, whatever unit the meter reports"
        factor = KWH_PER_UNIT.get(self.unit)
        if self.consumption is None or factor is None:
            return None
        # Rounded to the field's digits (a Wh value times 0.001 is not).
        return round(self.consumption * float(factor), 3)


class BillingReading(_ReadingMixin, ModelSQL, ModelView):
    "Monthly billing (frozen) value"

    __name__ = 'prepaid.headend.billing'
    __string__ = "Billing Value"


class Event(AppendOnlyMixin, ModelSQL, ModelView):
    "Event or alarm read from a meter"

    __name__ = 'prepaid.headend.event'
    __string__ = "Meter Event"

    meter = fields.Many2One(
        'prepaid.meter', "Meter", required=True, ondelete='CASCADE', readonly=True
    )
    log = fields.Selection(EVENT_LOGS, "Log", required=True, readonly=True)
    timestamp = fields.Timestamp("Timestamp (UTC)", required=True, readonly=True)
    code = fields.Integer("Code", required=True, readonly=True)
    description = fields.Char("Description", readonly=True)
    job = fields.Many2One(
        'prepaid.headend.job', "Job", readonly=True, ondelete='SET NULL'
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'meter_log_timestamp_code_unique',
                Unique(t, t.meter, t.log, t.timestamp, t.code),
                'prepaid_headend.msg_event_unique',
            ),
        ]
        cls._order = [('timestamp', 'DESC'), ('id', 'DESC')]
        cls.__access__.add('meter')


def insert_new(
    model_name: str,
    meter_id: int,
    rows: Sequence[dict[str, Any]],
    key: Sequence[str] = ('obis', 'timestamp'),
) -> int:
    """Create the rows whose key (meter + ``key``) is not stored yet.

    Returns the number of rows created; duplicates inside ``rows`` count once.
    """
    if not rows:
        return 0
    Model = Pool().get(model_name)
    table = Model.__table__()
    cursor = Transaction().connection.cursor()
    times = [r['timestamp'] for r in rows]
    columns = [getattr(table, k) for k in key]
    cursor.execute(
        *table.select(
            *columns,
            where=(table.meter == meter_id)
            & (table.timestamp >= min(times))
            & (table.timestamp <= max(times)),
        )
    )
    seen = {_key_of(dict(zip(key, r))) for r in cursor}
    new = []
    for row in rows:
        k = _key_of(row, key)
        if k in seen:
            continue
        seen.add(k)
        new.append({'meter': meter_id, **row})
    if new:
        with without_check_access():
            Model.create(new)
    return len(new)


def insert_rows(
    model_name: str,
    rows: Sequence[dict[str, Any]],
    key: Sequence[str] = ('obis', 'timestamp'),
) -> int:
    """Create the rows (each with its ``meter``) whose key (meter + ``key``)
    is not stored yet, as :func:`insert_new` for many meters: the stored keys
    of their meters over the rows' time range, then batches of
    :data:`BATCH` rows by COPY or through the fast path (see the module
    docstring); through the ORM under ``fastpath.through_orm``.

    Returns the number of rows created; duplicates inside ``rows`` count once.
    """
    if not rows:
        return 0
    Model = Pool().get(model_name)
    table = Model.__table__()
    cursor = Transaction().connection.cursor()
    names = ('meter', *key)
    times = [r['timestamp'] for r in rows]
    meters = sorted({r['meter'] for r in rows})
    seen: set[tuple] = set()
    size = 1_000  # meters per query: a bounded IN list
    for start in range(0, len(meters), size):
        cursor.execute(
            *table.select(
                *(getattr(table, n) for n in names),
                where=table.meter.in_(meters[start : start + size])
                & (table.timestamp >= min(times))
                & (table.timestamp <= max(times)),
            )
        )
        seen.update(_key_of(dict(zip(names, r)), names) for r in cursor)
    new = []
    for row in rows:
        k = _key_of(row, names)
        if k not in seen:
            seen.add(k)
            new.append(row)
    for start in range(0, len(new), BATCH):
        batch = new[start : start + BATCH]
        if not fastpath.orm_enabled() and _copyable(Model):
            _copy(Model, batch)
        else:
            fastpath.create(Model, batch, system=READING_WRITE)
    return len(new)


#: The hook overrides of a reading model that :func:`_copy` honours without
#: a record per row: the append-only refusal of a client's create (the write
#: is the system's, checked), its check_modification (nothing for the
#: system's write), and the billing feed, run on the records it would keep
#: (the energy rows of remote-prepaid meters).  A model with any other
#: override, or with triggers, is written by ``fastpath.create``, which runs
#: every hook on a record per row (about 12 times slower; bench/README.md).
COPY_HOOKS = frozenset(
    {
        'prepaid_vending.append_only.AppendOnlyMixin.create',
        'prepaid_vending.append_only.AppendOnlyMixin.check_modification',
        'prepaid_headend.billing_feed.IntervalReading.on_modification',
    }
)


def _overrides(Model: Any) -> set[str]:
    "The hook overrides (fastpath.HOOKS) of Model's classes outside trytond"
    found = set()
    for klass in Model.__mro__:
        if klass.__module__.startswith('trytond.model'):
            continue
        module = klass.__module__.removeprefix('trytond.modules.')
        for hook in fastpath.HOOKS:
            if hook in vars(klass):
                found.add(f'{module}.{klass.__qualname__}.{hook}')
    return found


def _copyable(Model: Any) -> bool:
    Trigger = Pool().get('ir.trigger')
    with without_check_access():
        triggers = Trigger.get_triggers(Model.__name__, 'create')
    return not triggers and _overrides(Model) <= COPY_HOOKS


def _copy(Model: Any, rows: list[dict[str, Any]]) -> None:
    """Write rows with the fast path's batch writer (COPY on PostgreSQL), as
    the system, then run the billing feed on the rows it takes.  A column a
    row leaves out is NULL: the reading models have no defaults."""
    from trytond.modules.prepaid_vending import fastpath_copy, trytond_private

    from .billing_feed import feed_consumption

    fastpath.guard(Model)  # declared and reviewed, as fastpath.create
    READING_WRITE.check(Model)
    names = sorted(set().union(*rows))
    fields_ = [Model._fields[n] for n in names]
    for name in ('meter', 'timestamp', *(n for n in names if n in ('obis', 'log'))):
        if any(row.get(name) is None for row in rows):
            raise ValueError(f'{Model.__name__}: a row without {name}')
    values = [
        [f.sql_format(row.get(n)) for n, f in zip(names, fields_)] for row in rows
    ]
    transaction = Transaction()
    transaction.counter += 1
    trytond_private.drop_count(Model)
    ids = fastpath_copy.insert_rows(Model, names, values)
    transaction.create_records[Model.__name__].extend(ids)
    if 'prepaid_headend.billing_feed.IntervalReading.on_modification' in (
        _overrides(Model)
    ):
        energy = [(i, r) for i, r in zip(ids, rows) if r['obis'] == ops.ENERGY_IMPORT]
        remote = _remote_prepaid({r['meter'] for _, r in energy})
        with without_check_access():
            records = [Model(i, **r) for i, r in energy if r['meter'] in remote]
            if records:
                feed_consumption(records)


def _remote_prepaid(meters: set[int]) -> set[int]:
    "The meters among these whose payment mode is remote-prepaid"
    Meter = Pool().get('prepaid.meter')
    table = Meter.__table__()
    cursor = Transaction().connection.cursor()
    found: set[int] = set()
    ordered = sorted(meters)
    for start in range(0, len(ordered), 1_000):
        cursor.execute(
            *table.select(
                table.id,
                where=table.id.in_(ordered[start : start + 1_000])
                & (table.payment_mode == 'remote_prepaid'),
            )
        )
        found.update(i for (i,) in cursor)
    return found


def _key_of(row: dict[str, Any], key: Iterable[str] | None = None) -> tuple:
    names = list(key) if key is not None else list(row)
    out = []
    for name in names:
        value = row[name]
        if isinstance(value, str) and name == 'timestamp':
            value = dt.datetime.fromisoformat(value)  # SQLite without types
        if isinstance(value, dt.datetime):
            value = value.replace(microsecond=0, tzinfo=None)
        out.append(value)
    return tuple(out)


def profile_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    scalers: dict[str, tuple[int, int]],
    job_id: int | None,
    with_consumption: bool = False,
) -> list[dict[str, Any]]:
    """Turn (columns, rows) of a profile into one row per (obis, capture)."""
    clock_col = next(
        (i for i, c in enumerate(columns) if c.startswith(ops.CLOCK + ':')), 0
    )
    out = []
    previous: dict[str, float] = {}
    ordered = sorted(
        (r for r in rows if r[clock_col] is not None), key=lambda r: r[clock_col]
    )
    for row in ordered:
        when = naive_utc(row[clock_col])
        for i, column in enumerate(columns):
            if i == clock_col:
                continue
            obis, _attr = column.rsplit(':', 1)
            raw = row[i]
            if not isinstance(raw, (int, float)) or isinstance(raw, bool):
                continue
            scaler, unit = scalers.get(obis, (0, 255))
            value = raw * 10**scaler if scaler >= 0 else raw / 10**-scaler
            item = {
                'obis': obis,
                'timestamp': when,
                'value': float(value),
                'unit': ops.UNITS.get(unit, str(unit)),
                'job': job_id,
            }
            if with_consumption:
                item['consumption'] = (
                    value - previous[obis]
                    if obis in CUMULATIVE and obis in previous
                    else None
                )
                previous[obis] = value
            out.append(item)
    return out


def describe_event(code: int) -> str:
    return EVENT_CODES.get(code, f"Event {code}")


def describe_alarm(value: int) -> str:
    names = [label for bit, label in ALARM_BITS.items() if value & (1 << bit)]
    return ", ".join(names) or f"Alarm register {value:#010x}"
