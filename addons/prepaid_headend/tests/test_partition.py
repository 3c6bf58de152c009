"""Monthly partitioning of the reading tables (partition.py).

On PostgreSQL: the conversion of a database holding readings, the ORM on the
converted tables (create in two months, read, search, idempotent re-store,
delete), the maintenance job, refusals, and a module upgrade afterwards.
On SQLite: the clean refusal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import unittest

from trytond import backend
from trytond.model.exceptions import SQLConstraintError
from trytond.modules.prepaid_headend import partition as pt
from trytond.modules.prepaid_headend.reading import insert_new
from trytond.modules.prepaid_sts.tests.tools import utility
from trytond.modules.prepaid_vending.tests import tools
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.pool import Pool
from trytond.tests.test_tryton import (
    DB_NAME,
    activate_module,
    drop_db,
)
from trytond.transaction import Transaction

ENERGY = '1.0.1.8.0.255'
INTERVAL = 'prepaid_headend_interval'
REGISTER = 'prepaid_headend_register'
EVENT = 'prepaid_headend_event'
BILLING = 'prepaid_headend_billing'
JANUARY = dt.datetime(2026, 1, 10, 12, 0)


class PurePartitionTestCase(unittest.TestCase):
    "Month arithmetic and names"

    def test_months_between_crosses_the_year(self):
        self.assertEqual(
            pt.months_between(dt.date(2026, 11, 30), dt.date(2027, 2, 1)),
            [dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2027, 1, 1),
             dt.date(2027, 2, 1)],
        )  # fmt: skip
        self.assertEqual(pt.add_months(dt.date(2026, 12, 1), 1), dt.date(2027, 1, 1))
        self.assertEqual(pt.add_months(dt.date(2026, 1, 1), -1), dt.date(2025, 12, 1))

    def test_bounds_and_names(self):
        self.assertEqual(
            pt.bounds(dt.date(2026, 12, 1)),
            ("'2026-12-01 00:00:00'", "'2027-01-01 00:00:00'"),
        )
        self.assertEqual(
            pt.partition_name(INTERVAL, dt.date(2026, 2, 1)),
            'prepaid_headend_interval_2026_02',
        )
        with self.assertRaises(pt.PartitionError):
            pt.partition_name('x' * 60, dt.date(2026, 2, 1))


def committed(func, user: int = 0):
    return tools.committed(func, user, context={'_check_access': False})


def reading(when: dt.datetime, value: float) -> dict:
    return {'obis': ENERGY, 'timestamp': when, 'value': value, 'unit': 'Wh'}


def rows_by_partition(cursor, table: str) -> dict[str, list[int]]:
    cursor.execute(f'SELECT tableoid::regclass::text, id FROM {table} ORDER BY id')
    out: dict[str, list[int]] = {}
    for name, id_ in cursor:
        out.setdefault(name, []).append(id_)
    return out


def schema(cursor, table: str) -> dict:
    "What Tryton relies on: constraints and indexes by name, identity id"
    cursor.execute(
        'SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint '
        'WHERE conrelid = %s::regclass ORDER BY conname',
        (table,),
    )
    constraints = dict(cursor.fetchall())
    cursor.execute(
        'SELECT indexrelid::regclass::text FROM pg_index '
        'WHERE indrelid = %s::regclass ORDER BY 1',
        (table,),
    )
    indexes = [n for (n,) in cursor]
    cursor.execute(
        "SELECT attidentity, pg_get_serial_sequence(%s, 'id') FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attname = 'id'",
        (table, table),
    )
    return {
        'constraints': constraints,
        'indexes': indexes,
        'identity': cursor.fetchone(),
    }


@unittest.skipUnless(backend.name == 'postgresql', "partitioning is PostgreSQL only")
class PartitionPostgresqlTestCase(unittest.TestCase):
    "Reading tables converted to monthly partitions on a database with data"

    @classmethod
    def setUpClass(cls):
        drop_db()  # the conversion is committed: start from a fresh database
        activate_module('prepaid_headend')
        cls.today = dt.datetime.now(dt.UTC).date()

        def fixtures():
            Meter = Pool().get('prepaid.meter')
            with Transaction().set_context(company=utility().id):
                meters = Meter.create(
                    [
                        {'serial': 'PART1', 'kind': 'smart_prepaid'},
                        {'serial': 'PART2', 'kind': 'smart_prepaid'},
                    ]
                )
            cursor = Transaction().connection.cursor()
            before = {t: schema(cursor, t) for t in pt.TABLES}
            insert_new(
                'prepaid.headend.interval',
                meters[0].id,
                [
                    reading(JANUARY, 1.0),
                    reading(JANUARY + dt.timedelta(minutes=15), 2.0),
                ],
            )
            insert_new(
                'prepaid.headend.register', meters[0].id, [reading(JANUARY, 5.0)]
            )
            insert_new(
                'prepaid.headend.event',
                meters[0].id,
                [{'log': 'standard', 'timestamp': JANUARY, 'code': 1}],
                key=('log', 'timestamp', 'code'),
            )
            cursor.execute(f'SELECT max(id) FROM {INTERVAL}')
            (max_id,) = cursor.fetchone()
            return [m.id for m in meters], before, max_id

        cls.meters, cls.before, cls.max_interval_id = committed(fixtures)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            cls.status = pt.main([DB_NAME, '--months-ahead', '2'])
        cls.output = out.getvalue()

    @classmethod
    def tearDownClass(cls):
        drop_db()

    def cursor(self):
        return Transaction().connection.cursor()

    @with_company
    def test_conversion_keeps_rows_ids_and_what_tryton_needs(self):
        self.assertEqual(self.status, 0, self.output)
        self.assertIn(f'{INTERVAL} partitioned by month: 2 rows copied', self.output)
        cursor = self.cursor()
        cursor.execute(
            'SELECT partrelid::regclass::text, partstrat FROM pg_partitioned_table '
            'ORDER BY 1'
        )
        self.assertEqual(
            cursor.fetchall(), [(EVENT, 'r'), (INTERVAL, 'r'), (REGISTER, 'r')]
        )
        self.assertFalse(pt.is_partitioned(cursor, BILLING))  # not asked for
        months = pt.months_between(dt.date(2026, 1, 1), pt.add_months(self.today, 2))
        expected = {pt.partition_name(INTERVAL, m) for m in months}
        expected.add(f'{INTERVAL}_default')
        self.assertEqual(set(pt.partitions(cursor, INTERVAL)), expected)
        self.assertEqual(
            pt.partitions(cursor, INTERVAL)[f'{INTERVAL}_2026_01'],
            "FOR VALUES FROM ('2026-01-01 00:00:00') TO ('2026-02-01 00:00:00')",
        )
        # The rows kept their ids and sit in January's partition.
        self.assertEqual(
            rows_by_partition(cursor, INTERVAL),
            {f'{INTERVAL}_2026_01': [self.max_interval_id - 1, self.max_interval_id]},
        )
        for table in pt.TABLES:
            before, after = self.before[table], schema(cursor, table)
            with self.subTest(table=table):
                self.assertEqual(after['identity'], before['identity'])
                self.assertEqual(after['indexes'], before['indexes'])
                self.assertEqual(set(after['constraints']), set(before['constraints']))
                self.assertEqual(
                    after['constraints'][f'{table}_pkey'],
                    'PRIMARY KEY (id, "timestamp")',
                )
                for name, definition in before['constraints'].items():
                    if not name.endswith('_pkey'):
                        self.assertEqual(after['constraints'][name], definition)
        # The sequence goes on after the copied ids.
        Interval = Pool().get('prepaid.headend.interval')
        (new,) = Interval.create(
            [
                {
                    'meter': self.meters[1],
                    **reading(JANUARY, 9.0),
                }
            ]
        )
        self.assertGreater(new.id, self.max_interval_id)

    @with_company
    def test_orm_in_two_months_read_search_restore_delete(self):
        pool = Pool()
        Interval = pool.get('prepaid.headend.interval')
        Event = pool.get('prepaid.headend.event')
        meter = self.meters[1]
        march = dt.datetime(2026, 3, 31, 23, 45)
        april = dt.datetime(2026, 4, 1, 0, 0)
        rows = [reading(march, 10.0), reading(april, 11.5)]
        self.assertEqual(insert_new('prepaid.headend.interval', meter, rows), 2)
        # A re-read stores nothing (idempotent as before the conversion).
        self.assertEqual(insert_new('prepaid.headend.interval', meter, rows), 0)
        events = [
            {'log': 'standard', 'timestamp': march, 'code': 1},
            {'log': 'standard', 'timestamp': april, 'code': 2},
        ]
        key = ('log', 'timestamp', 'code')
        self.assertEqual(insert_new('prepaid.headend.event', meter, events, key), 2)
        self.assertEqual(insert_new('prepaid.headend.event', meter, events, key), 0)

        found = Interval.search(
            [
                ('meter', '=', meter),
                ('timestamp', '>=', dt.datetime(2026, 3, 1)),
                ('timestamp', '<', dt.datetime(2026, 5, 1)),
            ],
            order=[('timestamp', 'ASC')],
        )
        self.assertEqual(
            [(r.timestamp, r.value, r.meter.id) for r in found],
            [(march, 10.0, meter), (april, 11.5, meter)],
        )
        self.assertEqual(
            Interval.search_count(
                [('meter', '=', meter), ('timestamp', '>=', dt.datetime(2026, 4, 1))]
            ),
            1,
        )
        # Each row landed in its month.
        by_partition = rows_by_partition(self.cursor(), INTERVAL)
        self.assertEqual(by_partition[f'{INTERVAL}_2026_03'], [found[0].id])
        self.assertEqual(by_partition[f'{INTERVAL}_2026_04'], [found[1].id])
        by_partition = rows_by_partition(self.cursor(), EVENT)
        self.assertEqual(len(by_partition[f'{EVENT}_2026_03']), 1)
        self.assertEqual(len(by_partition[f'{EVENT}_2026_04']), 1)

        Interval.delete(found)
        Event.delete(Event.search([('meter', '=', meter)]))
        self.assertEqual(Interval.search_count([('meter', '=', meter)]), 0)
        self.assertNotIn(
            f'{INTERVAL}_2026_03', rows_by_partition(self.cursor(), INTERVAL)
        )

    @with_company
    def test_unique_key_still_refuses_a_racing_duplicate(self):
        "insert_new skips known rows; the key stops a row that raced it"
        Interval = Pool().get('prepaid.headend.interval')
        with self.assertRaises(SQLConstraintError) as raised:
            Interval.create([{'meter': self.meters[0], **reading(JANUARY, 1.0)}])
        self.assertIn('already has a value', str(raised.exception))

    @with_company
    def test_conversion_again_changes_nothing(self):
        cursor = self.cursor()
        before = {t: (schema(cursor, t), pt.partitions(cursor, t)) for t in pt.TABLES}
        results = pt.convert_readings(cursor)
        self.assertEqual([r.converted for r in results], [False, False, False])
        self.assertIn('already partitioned', results[0].message)
        after = {t: (schema(cursor, t), pt.partitions(cursor, t)) for t in pt.TABLES}
        self.assertEqual(after, before)

    @with_company
    def test_partitions_ahead_are_idempotent_and_drain_the_default(self):
        cursor = self.cursor()
        Interval = Pool().get('prepaid.headend.interval')
        far = pt.add_months(self.today, 6)
        when = dt.datetime(far.year, far.month, 2, 8, 0)
        (row,) = Interval.create([{'meter': self.meters[0], **reading(when, 3.0)}])
        self.assertEqual(
            rows_by_partition(cursor, INTERVAL)[f'{INTERVAL}_default'], [row.id]
        )
        later = pt.add_months(self.today, 4)
        created = pt.create_partitions(cursor, INTERVAL, today=later, months_ahead=2)
        self.assertEqual(
            created,
            [
                pt.partition_name(INTERVAL, pt.add_months(self.today, n))
                for n in (4, 5, 6)
            ],
        )
        by_partition = rows_by_partition(cursor, INTERVAL)
        self.assertEqual(by_partition[pt.partition_name(INTERVAL, far)], [row.id])
        self.assertNotIn(f'{INTERVAL}_default', by_partition)
        # The attached partition got the keys: a duplicate is still refused.
        self.assertEqual(
            insert_new(
                'prepaid.headend.interval', self.meters[0], [reading(when, 3.0)]
            ),
            0,
        )
        cursor.execute(
            'SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass',
            (pt.partition_name(INTERVAL, far),),
        )
        (count,) = cursor.fetchone()
        self.assertEqual(count, len(schema(cursor, INTERVAL)['indexes']))
        self.assertEqual(Interval(row.id).value, 3.0)
        # Second run: nothing to do.
        self.assertEqual(
            pt.create_partitions(cursor, INTERVAL, today=later, months_ahead=2), []
        )

    @with_company
    def test_cron_recreates_a_missing_month(self):
        pool = Pool()
        Cron = pool.get('ir.cron')
        ModelData = pool.get('ir.model.data')
        cursor = self.cursor()
        last = pt.partition_name(EVENT, pt.add_months(self.today, 2))
        cursor.execute(f'DROP TABLE {last}')
        cron = Cron(
            ModelData.get_id('prepaid_headend', 'cron_create_reading_partitions')
        )
        self.assertEqual(cron.method, 'ir.cron|create_reading_partitions')
        Cron.run_once([cron])
        self.assertIn(last, pt.partitions(cursor, EVENT))
        # The job creates three months ahead: one more than the conversion.
        self.assertIn(
            pt.partition_name(INTERVAL, pt.add_months(self.today, 3)),
            pt.partitions(cursor, INTERVAL),
        )
        self.assertEqual(
            Cron.create_reading_partitions(),
            {EVENT: [], INTERVAL: [], REGISTER: []},
        )

    @with_company
    def test_refuses_a_referenced_table_and_changes_nothing(self):
        cursor = self.cursor()
        cursor.execute(
            f'CREATE TABLE part_test_ref (id serial, billing integer '
            f'REFERENCES {BILLING} (id))'
        )
        with self.assertRaises(pt.PartitionError) as raised:
            pt.convert_table(cursor, BILLING)
        self.assertIn('part_test_ref', str(raised.exception))
        self.assertFalse(pt.is_partitioned(cursor, BILLING))
        with self.assertRaises(pt.PartitionError):
            pt.convert_readings(cursor, ['res_user'])
        with self.assertRaises(pt.PartitionError):
            pt.convert_table(cursor, 'prepaid_headend_nothing')
        with self.assertRaises(pt.PartitionError):
            pt.create_partitions(cursor, BILLING)

    def test_command_refuses_cleanly(self):
        "A refusal exits non-zero, says why and commits nothing"
        committed(
            lambda: Transaction()
            .connection.cursor()
            .execute(
                f'CREATE TABLE part_cmd_ref (billing integer REFERENCES {BILLING} (id))'
            )
        )
        try:
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                status = pt.main([DB_NAME, '--table', BILLING])
            self.assertEqual(status, 2)
            self.assertIn('part_cmd_ref', err.getvalue())
            self.assertIn('nothing changed', err.getvalue())
        finally:
            committed(
                lambda: Transaction()
                .connection.cursor()
                .execute('DROP TABLE part_cmd_ref')
            )
        with Transaction().start(DB_NAME, 0):
            self.assertFalse(
                pt.is_partitioned(Transaction().connection.cursor(), BILLING)
            )

    def test_module_upgrade_keeps_the_partitioning(self):
        """trytond-admin -u (the upgrade wizard) after the conversion

        It commits; the database it leaves is the one it found (the upgrade
        changes nothing, the reading it stores is deleted), so the other
        tests of the class run before or after it alike."""

        def snapshot():
            cursor = Transaction().connection.cursor()
            return {t: (schema(cursor, t), pt.partitions(cursor, t)) for t in pt.TABLES}

        before = committed(snapshot)

        def upgrade():
            pool = Pool()
            Module = pool.get('ir.module')
            Module.upgrade(Module.search([('name', '=', 'prepaid_headend')]))
            Transaction().commit()
            ActivateUpgrade = pool.get('ir.module.activate_upgrade', type='wizard')
            instance_id, _, _ = ActivateUpgrade.create()
            Transaction().commit()
            ActivateUpgrade(instance_id).transition_upgrade()
            ActivateUpgrade.delete(instance_id)

        committed(upgrade, user=1)
        self.assertEqual(committed(snapshot), before)

        # trytond-admin --indexes creates indexes CONCURRENTLY, outside a
        # transaction: the partitioned tables get them plainly.
        with Transaction().start(DB_NAME, 0, autocommit=True):
            for name in (
                'prepaid.headend.interval',
                'prepaid.headend.register',
                'prepaid.headend.event',
            ):
                Pool().get(name)._update_sql_indexes(concurrently=True)

        when = dt.datetime(2026, 1, 20)

        def forget_reading():
            Interval = Pool().get('prepaid.headend.interval')
            Interval.delete(
                Interval.search(
                    [('meter', '=', self.meters[1]), ('timestamp', '=', when)]
                )
            )

        def still_works():
            Interval = Pool().get('prepaid.headend.interval')
            stored = insert_new(
                'prepaid.headend.interval', self.meters[1], [reading(when, 4.0)]
            )
            (row,) = Interval.search(
                [('meter', '=', self.meters[1]), ('timestamp', '=', when)]
            )
            cursor = Transaction().connection.cursor()
            cursor.execute(
                f'SELECT tableoid::regclass::text FROM {INTERVAL} WHERE id = %s',
                (row.id,),
            )
            return stored, cursor.fetchone()[0]

        self.addCleanup(committed, forget_reading)
        self.assertEqual(committed(still_works), (1, f'{INTERVAL}_2026_01'))


@unittest.skipUnless(backend.name == 'sqlite', "the refusal on SQLite")
class PartitionSqliteTestCase(unittest.TestCase):
    "SQLite has no partitioning: everything refuses cleanly and changes nothing"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_headend')

    @with_company
    def test_refusal(self):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Cron = pool.get('ir.cron')
        cursor = Transaction().connection.cursor()
        (result,) = pt.convert_readings(cursor)
        self.assertFalse(result.converted)
        self.assertIn('needs PostgreSQL', result.message)
        self.assertIn('nothing done', result.message)
        with self.assertRaises(pt.PartitionError):
            pt.convert_table(cursor, INTERVAL)
        self.assertEqual(pt.create_reading_partitions(cursor), {})
        self.assertEqual(Cron.create_reading_partitions(), {})
        # Readings work as before.
        (meter,) = Meter.create([{'serial': 'PARTSQ', 'kind': 'smart_prepaid'}])
        rows = [reading(JANUARY, 1.0)]
        self.assertEqual(insert_new('prepaid.headend.interval', meter.id, rows), 1)
        self.assertEqual(insert_new('prepaid.headend.interval', meter.id, rows), 0)

    def test_command_refuses(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status = pt.main([DB_NAME])
        self.assertEqual(status, 1)
        self.assertIn('needs PostgreSQL', err.getvalue())
