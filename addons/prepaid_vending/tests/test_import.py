"""Excel import of customers, service points and meters (excel_import.py).

The workbooks are built by the tests themselves with openpyxl (.xlsx) and
xlwt (.xls), so no binary fixture is committed.
"""

import datetime as dt
import io
import re
import unittest
from decimal import Decimal

import openpyxl
from trytond import backend
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, drop_db
from trytond.transaction import Transaction

from ..excel_import import (
    COLUMN_NAMES,
    ImportFileError,
    count_rows,
    import_rows,
    read_workbook,
    template_workbook,
)
from .tools import with_company

HEADER = [
    'customer_name',
    'national_id',
    'registration_number',
    'phone',
    'email',
    'category',
    'language',
    'street',
    'city',
    'latitude',
    'longitude',
    'feeder_code',
    'transformer_code',
    'meter_serial',
    'meter_kind',
    'manufacturer',
    'phases',
    'installed_on',
]


def good_row(serial, name='Thabo Mokoena', national_id='8001015009087', **kw):
    row = {
        'customer_name': name,
        'national_id': national_id,
        'phone': '+27 82 555 0101',
        'email': 'thabo@example.com',
        'category': 'residential',
        'language': 'en',
        'street': '1 Marula Road',
        'city': 'Polokwane',
        'latitude': -23.9,
        'longitude': 29.46,
        'feeder_code': 'FD-T1',
        'transformer_code': 'TX-T1',
        'meter_serial': serial,
        'meter_kind': 'sts_keypad',
        'manufacturer': 'Hexing',
        'phases': 1,
        'installed_on': dt.datetime(2023, 5, 17),
    }
    row.update(kw)
    return row


def xlsx(rows, header=HEADER):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append([row.get(n) for n in header])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def xls(rows, header=HEADER):
    import xlwt

    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet('customers')
    date_style = xlwt.easyxf(num_format_str='YYYY-MM-DD')
    for col, name in enumerate(header):
        sheet.write(0, col, name)
    for line, row in enumerate(rows, 1):
        for col, name in enumerate(header):
            value = row.get(name)
            if isinstance(value, dt.date):
                sheet.write(line, col, value, date_style)
            elif value is not None:
                sheet.write(line, col, value)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def run(data, mode='all'):
    header, rows = read_workbook(data)
    return import_rows(header, rows, mode=mode, today=dt.date(2025, 1, 1))


def make_network():
    "One substation, two feeders, two transformers, a master meter on TX-T1"
    pool = Pool()
    Substation = pool.get('prepaid.substation')
    Feeder = pool.get('prepaid.feeder')
    Transformer = pool.get('prepaid.transformer')
    Meter = pool.get('prepaid.meter')
    (substation,) = Substation.create([{'code': 'SS-T', 'name': 'Test'}])
    f1, f2 = Feeder.create(
        [
            {'code': 'FD-T1', 'name': 'F1', 'substation': substation.id},
            {'code': 'FD-T2', 'name': 'F2', 'substation': substation.id},
        ]
    )
    t1, t2 = Transformer.create(
        [
            {'code': 'TX-T1', 'name': 'T1', 'feeder': f1.id, 'rated_kva': Decimal(200)},
            {'code': 'TX-T2', 'name': 'T2', 'feeder': f2.id, 'rated_kva': Decimal(315)},
        ]
    )
    (master,) = Meter.create(
        [
            {
                'serial': 'CHK-T1',
                'role': 'master',
                'kind': 'postpaid',
                'payment_mode': 'postpaid',
                'phases': '3',
                'ct_ratio': 60,
                'master_of_transformer': t1.id,
            }
        ]
    )
    return t1, t2, master


def counts():
    pool = Pool()
    return (
        pool.get('party.party').search_count([('customer_number', '!=', None)]),
        pool.get('prepaid.service_point').search_count([]),
        pool.get('prepaid.meter').search_count([('role', '=', 'customer')]),
        pool.get('prepaid.meter.installation').search_count([]),
    )


def read_rejects(data):
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    workbook.close()
    return rows


class ImportTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A scenario run earlier in the session leaves its committed data in
        # the shared test database: start from the clean cached one.
        drop_db()
        activate_module('prepaid_vending')

    @with_company
    def test_good_file(self):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Party = pool.get('party.party')
        t1, t2, master = make_network()
        data = xlsx(
            [
                good_row('01000000001'),
                # Same national ID: a second premises of the same customer.
                good_row('01000000002', street='9 Baobab Street'),
                good_row(
                    '01000000003',
                    name='Mokoena Trading',
                    national_id=None,
                    registration_number='2011/123456/07',
                    category='COMMERCIAL',
                    meter_kind='smart_prepaid',
                    phases=3,
                    transformer_code='tx-t2',
                    feeder_code='FD-T2',
                    installed_on='2022-02-01',
                    language='fr',
                    email=None,
                ),
            ]
        )
        self.assertEqual(count_rows(data), 3)

        result = run(data)

        self.assertTrue(result.written)
        self.assertEqual(result.rejected, [])
        self.assertEqual(
            (result.imported, result.parties, result.service_points, result.meters),
            (3, 2, 3, 3),
        )
        self.assertEqual(counts(), (2, 3, 3, 3))
        (meter,) = Meter.search([('serial', '=', '01000000001')])
        self.assertEqual(meter.state, 'installed')
        self.assertEqual(meter.kind, 'sts_keypad')
        self.assertEqual(meter.payment_mode, 'prepaid')
        self.assertEqual(meter.master, master)
        self.assertEqual(meter.service_point.transformer, t1)
        self.assertEqual(meter.installations[0].installed_on, dt.date(2023, 5, 17))
        thabo = meter.customer
        self.assertTrue(thabo.customer_number)
        self.assertEqual(thabo.customer_category.code, 'RESIDENTIAL')
        self.assertEqual(len(thabo.service_points), 2)
        self.assertEqual(
            sorted(c.type for c in thabo.contact_mechanisms), ['email', 'phone']
        )
        self.assertEqual(thabo.lang.code, 'en')
        (company,) = Party.search([('registration_number', '=', '2011/123456/07')])
        (meter,) = company.meters
        self.assertEqual((meter.kind, meter.phases), ('smart_prepaid', '3'))
        # TX-T2 has no master meter: none is linked.
        self.assertIsNone(meter.master)
        self.assertEqual(company.lang.code, 'fr')
        self.assertEqual(meter.installations[0].installed_on, dt.date(2022, 2, 1))

    @with_company
    def test_bad_rows_reasons(self):
        "Each kind of bad row is rejected with a reason naming the problem"
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        make_network()
        Meter.create([{'serial': '09999999999'}])
        cases = [
            (
                good_row('B01', customer_name=None),
                'Column "customer_name" is mandatory',
            ),
            (
                good_row('B02', transformer_code='TX-NONE'),
                'Transformer "TX-NONE" does not exist',
            ),
            (good_row('B03', feeder_code='FD-NONE'), 'Feeder "FD-NONE" does not exist'),
            (good_row('B04', feeder_code='FD-T2'), 'is on feeder "FD-T1", not "FD-T2"'),
            (good_row('09999999999'), 'Meter serial "09999999999" already exists'),
            (good_row('B06', national_id='12AB'), 'National ID "12AB" is not valid'),
            (good_row('B07', phone='call me'), 'Phone "call me" is not valid'),
            (good_row('B08', email='no-at-sign'), 'E-mail "no-at-sign" is not valid'),
            (good_row('B09', category='ALIENS'), 'Category "ALIENS" does not exist'),
            (good_row('B10', installed_on='31/02/2020'), '"31/02/2020" is not a date'),
            (good_row('B11', installed_on=dt.datetime(2030, 1, 1)), 'is in the future'),
            (
                good_row('B12', latitude='north'),
                'Column "latitude": "north" is not a number',
            ),
            (good_row('B13', longitude=200), 'Column "longitude": 200 is outside'),
            (
                good_row('B14', meter_kind='gas'),
                'Column "meter_kind": "gas" is not one of',
            ),
            (good_row('B15', phases=2), 'Column "phases": "2" is not one of'),
            (good_row('B16', language='xx'), 'Language "xx" does not exist'),
            (
                good_row('B17', national_id='7001015009081', name='Other Person'),
                'belongs to "Thabo Mokoena (row 2)"',
            ),
            (good_row('DUP'), 'appears on 2 rows of the file: this row and'),
            (
                good_row('DUP', national_id='6001015009082', name='X'),
                'Meter serial "DUP" is already on row 20 (2 rows in all)',
            ),
            (
                good_row('B20', registration_number='!!'),
                'Registration number "!!" is not valid',
            ),
        ]
        # Row 2 is valid; it is the first owner of national ID 7001015009081.
        rows = [good_row('GOOD1', national_id='7001015009081')] + [c[0] for c in cases]
        data = xlsx(
            rows,
            header=HEADER + ['registration_number']
            if 'registration_number' not in HEADER
            else HEADER,
        )

        result = run(data, mode='valid')

        by_row = {r.number: r.reason for r in result.rejected}
        self.assertEqual(sorted(by_row), list(range(3, 3 + len(cases))))
        for number, (_, expected) in enumerate(cases, 3):
            with self.subTest(row=number):
                self.assertIn(expected, by_row[number])
        # Several problems of one row are all reported.
        self.assertEqual(result.imported, 1)
        rejects = read_rejects(result.rejects_workbook())
        self.assertEqual(rejects[0][:3], ('row', 'reason', 'customer_name'))
        self.assertEqual([r[0] for r in rejects[1:]], sorted(by_row))
        self.assertIn('Transformer "TX-NONE" does not exist', rejects[2][1])
        self.assertEqual(rejects[2][2 + HEADER.index('meter_serial')], 'B02')

    @with_company
    def test_all_or_nothing_writes_nothing(self):
        make_network()
        data = xlsx(
            [
                good_row('A1'),
                good_row('A2', transformer_code='NOPE'),
                good_row('A3', name='Lerato Dlamini', national_id='9001015009085'),
            ]
        )

        result = run(data, mode='all')

        self.assertFalse(result.written)
        self.assertEqual(result.imported, 0)
        self.assertEqual([r.number for r in result.rejected], [3])
        self.assertEqual(counts(), (0, 0, 0, 0))

    @with_company
    def test_valid_only_writes_good_rows(self):
        Meter = Pool().get('prepaid.meter')
        make_network()
        data = xlsx(
            [
                good_row('V1'),
                good_row('V2', transformer_code='NOPE'),
                good_row('V3', name='Lerato Dlamini', national_id='9001015009085'),
            ]
        )

        result = run(data, mode='valid')

        self.assertTrue(result.written)
        self.assertEqual(result.imported, 2)
        self.assertEqual(counts(), (2, 2, 2, 2))
        self.assertEqual(
            sorted(m.serial for m in Meter.search([('role', '=', 'customer')])),
            ['V1', 'V3'],
        )

    @with_company
    def test_existing_customer_gets_new_point(self):
        Party = Pool().get('party.party')
        make_network()
        run(xlsx([good_row('E1')]))
        result = run(
            xlsx(
                [
                    good_row('E2', street='2 Other Street'),
                    good_row('E3', name='Someone Else'),
                ]
            ),
            mode='valid',
        )
        self.assertEqual(result.parties, 0)
        self.assertEqual(result.imported, 1)
        self.assertIn(
            'belongs to "Thabo Mokoena", not to "Someone Else"',
            result.rejected[0].reason,
        )
        (party,) = Party.search([('national_id', '=', '8001015009087')])
        self.assertEqual(len(party.service_points), 2)

    @with_company
    def test_xls_workbook(self):
        Meter = Pool().get('prepaid.meter')
        make_network()
        data = xls(
            [
                # xlwt writes numbers as floats: IDs and phones come back
                # without a ".0".
                good_row(
                    'X1',
                    national_id=8001015009087,
                    phone=27825550101,
                    installed_on=dt.date(2021, 7, 9),
                ),
                good_row('X2', installed_on='not a date'),
            ]
        )
        result = run(data, mode='valid')
        self.assertEqual(result.imported, 1)
        self.assertIn('"not a date" is not a date', result.rejected[0].reason)
        (meter,) = Meter.search([('serial', '=', 'X1')])
        self.assertEqual(meter.customer.national_id, '8001015009087')
        self.assertEqual(meter.installations[0].installed_on, dt.date(2021, 7, 9))
        self.assertEqual(meter.customer.contact_mechanisms[0].value, '27825550101')

    @with_company
    def test_header_errors(self):
        make_network()
        header = [n for n in HEADER if n != 'meter_serial']
        with self.assertRaisesRegex(ImportFileError, 'meter_serial'):
            run(xlsx([good_row('H1')], header=header))
        with self.assertRaisesRegex(ImportFileError, 'unknown column.*colour'):
            run(xlsx([good_row('H1')], header=HEADER + ['colour']))
        with self.assertRaisesRegex(ImportFileError, 'city appear more than once'):
            run(xlsx([good_row('H1')], header=HEADER + ['City']))
        with self.assertRaisesRegex(ImportFileError, 'no data rows'):
            run(xlsx([]))
        with self.assertRaisesRegex(ImportFileError, 'neither an Excel'):
            run(b'customer_name,street\nA,B\n')
        with self.assertRaisesRegex(ImportFileError, 'cannot be read'):
            run(b'PK\x03\x04 truncated zip')
        self.assertEqual(counts(), (0, 0, 0, 0))

    @with_company
    def test_template(self):
        "The template has every column and its example row imports"
        make_network()
        data = template_workbook()
        header, rows = read_workbook(data)
        self.assertEqual(header, list(COLUMN_NAMES))
        rows[0][1][header.index('transformer_code')] = 'TX-T1'
        result = import_rows(header, rows, today=dt.date(2025, 1, 1))
        self.assertEqual(result.imported, 1)

    @with_company
    def test_wizard_sync(self):
        pool = Pool()
        Wizard = pool.get('prepaid.import.wizard', type='wizard')
        make_network()
        session_id, _, _ = Wizard.create()
        start = Wizard(session_id).default_start(None)
        self.assertEqual(start['mode'], 'all')
        self.assertEqual(read_workbook(start['template'])[0], list(COLUMN_NAMES))
        data = xlsx([good_row('W1'), good_row('W2', phone='x')])
        result = Wizard.execute(
            session_id,
            {'start': {'file': data, 'filename': 'meters.xlsx', 'mode': 'all'}},
            'import_',
        )
        values = result['view']['defaults']
        self.assertEqual(values['state'], 'rejected')
        self.assertEqual(
            (values['total_rows'], values['imported_rows'], values['rejected_rows']),
            (2, 0, 1),
        )
        self.assertEqual(values['rejects_filename'], 'rejected-meters.xlsx')
        rejects = read_rejects(values['rejects'])
        self.assertEqual(
            rejects[1][:2],
            (
                3,
                'Phone "x" is not valid: use 7 to '
                '15 digits with an optional leading "+".',
            ),
        )
        self.assertEqual(counts(), (0, 0, 0, 0))
        Wizard.delete(session_id)

    @with_company
    def test_queued_job_with_progress(self):
        pool = Pool()
        Wizard = pool.get('prepaid.import.wizard', type='wizard')
        Job = pool.get('prepaid.import.job')
        Queue = pool.get('ir.queue')
        Configuration = pool.get('prepaid.configuration')
        transaction = Transaction()
        make_network()
        config = Configuration(1)
        config.import_queue_threshold = 3
        config.save()
        rows = [
            good_row(
                f'Q{i:03d}', name=f'Person {i}', national_id=f'{8001015000000 + i}'
            )
            for i in range(12)
        ]
        rows[5]['transformer_code'] = 'NOPE'
        session_id, _, _ = Wizard.create()
        result = Wizard.execute(
            session_id,
            {'start': {'file': xlsx(rows), 'filename': 'big.xlsx', 'mode': 'valid'}},
            'import_',
        )
        values = result['view']['defaults']
        self.assertEqual(values['state'], 'queued')
        self.assertIn('12 rows', values['message'])
        self.assertEqual(counts(), (0, 0, 0, 0))
        job = Job(values['job'])
        self.assertEqual(job.progress, 0)
        # Run the queued task as the worker would after the commit.
        self.assertEqual(len(transaction.tasks), 1)
        while transaction.tasks:
            Queue(transaction.tasks.pop()).run()

        job = Job(job.id)
        self.assertEqual(job.state, 'done')
        self.assertEqual(
            (
                job.total_rows,
                job.validated_rows,
                job.processed_rows,
                job.imported_rows,
                job.rejected_rows,
            ),
            (12, 12, 12, 11, 1),
        )
        self.assertEqual(job.progress, 1.0)
        self.assertEqual(job.user.id, transaction.user)
        self.assertTrue(job.started_at <= job.finished_at)
        self.assertEqual(counts(), (11, 11, 11, 11))
        self.assertEqual(read_rejects(job.rejects)[1][0], 7)
        Wizard.delete(session_id)

    @with_company
    def test_progress_reported_by_batches(self):
        make_network()
        rows = [
            good_row(
                f'P{i:04d}', name=f'Person {i}', national_id=f'{8001015000000 + i}'
            )
            for i in range(450)
        ]
        header, table = read_workbook(xlsx(rows))
        calls = []
        result = import_rows(
            header,
            table,
            mode='valid',
            progress=lambda v, p: calls.append((v, p)),
            batch=200,
        )
        self.assertEqual(result.imported, 450)
        # Validation end, then one call per written batch of 200 rows.
        self.assertEqual(calls, [(450, 0), (450, 200), (450, 400), (450, 450)])

    @with_company
    def test_failed_queued_job(self):
        "A queued job that cannot read its file ends failed with the reason"
        pool = Pool()
        Job = pool.get('prepaid.import.job')
        Queue = pool.get('ir.queue')
        transaction = Transaction()
        job = Job(filename='bad.xlsx', file=b'not a workbook', mode='all')
        job.save()
        Job.queue([job])
        # The worker runs the task after the commit: the job exists when the
        # task rolls back its failed import.
        transaction.commit()
        while transaction.tasks:
            Queue(transaction.tasks.pop()).run()
        job = Job(job.id)
        self.assertEqual(job.state, 'failed')
        self.assertIn('neither an Excel', job.message)


def table_rows(Model, column, ids, skip=()):
    "Stored rows of Model whose column is in ids, by id, without what differs"
    from sql import Column, Table

    table = Table(Model._table)
    cursor = Transaction().connection.cursor()
    cursor.execute(
        *table.select(where=Column(table, column).in_(list(ids)), order_by=table.id)
    )
    names = [d[0] for d in cursor.description]
    drop = {'id', 'create_date', 'write_date', column, *skip}
    return [
        {n: v for n, v in zip(names, row) if n not in drop} for row in cursor.fetchall()
    ]


class BulkWriteTestCase(unittest.TestCase):
    "The set-based write path against the ORM path it replaces"

    @classmethod
    def setUpClass(cls):
        drop_db()
        activate_module('prepaid_vending')

    @with_company
    def test_same_records_as_orm(self):
        """Both paths write the same columns, multi-values, contact
        mechanisms, installations and history lines for the same rows"""
        pool = Pool()
        Party = pool.get('party.party')
        Meter = pool.get('prepaid.meter')
        Point = pool.get('prepaid.service_point')
        make_network()

        def rows(prefix, base):
            return [
                good_row(f'{prefix}1', national_id=f'{base + 1}'),
                good_row(f'{prefix}2', national_id=f'{base + 1}', street='2 Side St'),
                good_row(
                    f'{prefix}3',
                    name='Mokoena Trading',
                    national_id=None,
                    registration_number=f'{prefix}/123456/07',
                    category='COMMERCIAL',
                    meter_kind='smart_prepaid',
                    phases=3,
                    transformer_code='TX-T2',
                    feeder_code='FD-T2',
                    language='fr',
                    email=None,
                    installed_on='2022-02-01',
                ),
                good_row(
                    f'{prefix}4',
                    name='No Contact',
                    national_id=f'{base + 4}',
                    phone=None,
                    email=None,
                    language=None,
                ),
            ]

        orm = run_rows(rows('OR', 8001015000000), orm=True)
        bulk = run_rows(rows('BK', 9001015000000))
        self.assertEqual((orm.imported, bulk.imported), (4, 4))
        self.assertEqual((orm.parties, bulk.parties), (3, 3))

        user = Transaction().user
        unique = ('serial', 'national_id', 'registration_number', 'code')
        numbers = ('customer_number', 'code_alnum', 'code_digit')
        meters = [Meter(i) for i in orm.meter_ids], [Meter(i) for i in bulk.meter_ids]
        ids = {}
        for key, found in zip(('orm', 'bulk'), meters):
            ids[key] = {
                'meter': [m.id for m in found],
                'point': [m.service_point.id for m in found],
                'party': sorted({m.customer.id for m in found}),
            }
        for model, column, kind, skip in [
            (Meter, 'id', 'meter', unique),
            ('prepaid.meter.state_history', 'meter', 'meter', ('date',)),
            ('prepaid.meter.installation', 'meter', 'meter', ('service_point',)),
            (Point, 'id', 'point', unique + ('customer',)),
            (Party, 'id', 'party', unique + numbers),
            ('party.contact_mechanism', 'party', 'party', ()),
        ]:
            Model = pool.get(model) if isinstance(model, str) else model
            with self.subTest(model=Model.__name__):
                expected = table_rows(Model, column, ids['orm'][kind], skip)
                written = table_rows(Model, column, ids['bulk'][kind], skip)
                self.assertTrue(expected)
                self.assertEqual(written, expected)
        # Multi-value records (language, company accounts ...) as the ORM's
        # setters write them.
        value_models = {
            Party.multivalue_model(n)
            for n, f in Party._fields.items()
            if f.__class__.__name__ == 'MultiValue'
        }
        self.assertIn(pool.get('party.party.lang'), value_models)
        for Value in value_models:
            with self.subTest(model=Value.__name__):
                self.assertEqual(
                    table_rows(Value, 'party', ids['bulk']['party']),
                    table_rows(Value, 'party', ids['orm']['party']),
                )
        # Audit columns: created (and, for meters, written) by the user.
        for meter in meters[1]:
            self.assertEqual(meter.create_uid.id, user)
            self.assertEqual(meter.write_uid.id, user)
            self.assertIsNotNone(meter.write_date)
            self.assertEqual(meter.state_history[0].user.id, user)
        if backend.name == 'postgresql':
            # COPY stores the timestamp an INSERT stores: the transaction's
            # CURRENT_TIMESTAMP, as a timestamp without time zone.
            reference = meters[0][0]
            for record in meters[1] + [m.customer for m in meters[1]]:
                self.assertEqual(record.create_date, reference.create_date)
            for meter in meters[1]:
                self.assertEqual(meter.write_date, reference.write_date)
        # Sequences went on: numbers and codes follow each other, no double.
        parties = Party.browse(ids['orm']['party'] + ids['bulk']['party'])
        codes = [p.customer_number for p in parties]
        self.assertEqual(len(set(codes)), 6)
        points = Point.browse(ids['orm']['point'] + ids['bulk']['point'])
        self.assertEqual(len({p.code for p in points}), 8)
        self.assertEqual(
            [m.customer.lang.code if m.customer.lang else None for m in meters[1]],
            ['en', 'en', 'fr', None],
        )

    @with_company
    def test_orm_fallback(self):
        "A model needing ORM work the bulk path lacks makes the import use it"
        from unittest import mock

        # The modules run_rows calls (pytest may import this package under
        # a second name besides trytond.modules).
        bulk_writer, orm_writer = writer_modules()

        make_network()
        with (
            mock.patch.object(
                bulk_writer,
                'check_bulk_model',
                side_effect=bulk_writer.BulkUnsupported('test'),
            ),
            mock.patch.object(
                orm_writer,
                'write_chunk',
                wraps=orm_writer.write_chunk,
            ) as orm_path,
        ):
            result = run_rows([good_row('FB1')])
        self.assertTrue(orm_path.called)
        self.assertEqual(result.imported, 1)
        self.assertEqual(counts(), (1, 1, 1, 1))

    @with_company
    def test_unsupported_setter_refused(self):
        "bulk_create refuses values it cannot write as the ORM does"
        bulk_writer, _ = writer_modules()
        BulkUnsupported = bulk_writer.BulkUnsupported
        bulk_create = bulk_writer.bulk_create
        Party = Pool().get('party.party')
        with self.assertRaisesRegex(BulkUnsupported, 'party.party.addresses'):
            bulk_create(Party, [{'name': 'X', 'addresses': [('add', [1])]}])

    @with_company
    def test_batch_writer_refusal_translated(self):
        """A row the database refuses (COPY on PostgreSQL, executemany on
        SQLite) gives Tryton's message, as create does, and nothing stays"""
        from trytond.model.exceptions import SQLConstraintError

        from ..fastpath_copy import insert_rows

        pool = Pool()
        Meter = pool.get('prepaid.meter')
        columns = ['serial', 'kind', 'payment_mode', 'state', 'role', 'phases']
        # The serial is unique per company.
        columns += ['ct_ratio', 'company']
        company = Transaction().context['company']
        row = ['DUP1', 'sts_keypad', 'prepaid', 'in_stock', 'customer', '1', 1, company]
        (first,) = insert_rows(Meter, columns, [row])
        self.assertEqual(Meter(first).serial, 'DUP1')
        with self.assertRaisesRegex(SQLConstraintError, 'serial number already'):
            insert_rows(Meter, columns, [['OK1', *row[1:]], row])
        Transaction().rollback()
        self.assertEqual(Meter.search([('serial', 'in', ['DUP1', 'OK1'])]), [])

    @with_company
    def test_set_based_checks_same_messages(self):
        """The checks bulk_create runs set-based (bulk_writer.set_based_checks)
        refuse what create refuses, with the same message; valid records
        pass them"""
        from trytond.modules.company.tests import create_company

        pool = Pool()
        Party = pool.get('party.party')
        t1, t2, master = make_network()
        (party,) = Party.create([{'name': 'Owner', 'customer_number': 'C-SB1'}])
        # Another utility's network (company given: the context keeps ours).
        company = create_company(name='Other Utility').id
        (substation,) = pool.get('prepaid.substation').create(
            [{'code': 'SS-O', 'name': 'O', 'company': company}]
        )
        (feeder,) = pool.get('prepaid.feeder').create(
            [
                {
                    'code': 'F-O',
                    'name': 'O',
                    'substation': substation.id,
                    'company': company,
                }
            ]
        )
        (other,) = pool.get('prepaid.transformer').create(
            [{'code': 'TX-O', 'name': 'O', 'feeder': feeder.id, 'company': company}]
        )
        self.check_set_based(party, t1, t2, master, other)

    def check_set_based(self, party, t1, t2, master, other):
        from trytond.model.exceptions import AccessError, ValidationError

        pool = Pool()
        Point = pool.get('prepaid.service_point')
        Meter = pool.get('prepaid.meter')
        bulk_create = writer_modules()[0].bulk_create

        def refused(create, error, values):
            with self.assertRaises(error) as caught:
                create(values)
            return caught.exception.message

        point = {'customer': party.id, 'street': '1 Main Rd', 'city': 'Tzaneen'}
        # A service point on another utility's transformer.
        values = [{**point, 'transformer': other.id}]
        orm = refused(Point.create, AccessError, values)
        self.assertIn('Other Utility', orm)
        bulk = refused(lambda v: bulk_create(Point, v), AccessError, values)
        # The same message but for the new point's code (the next number).
        (orm_code,) = re.findall(r'"(SP\d+) ', orm)
        (bulk_code,) = re.findall(r'"(SP\d+) ', bulk)
        self.assertNotEqual(bulk_code, orm_code)
        self.assertEqual(bulk, orm.replace(orm_code, bulk_code))
        # A customer meter named master of a transformer.
        meter = {'kind': 'sts_keypad', 'role': 'customer', 'phases': '1'}
        orm = refused(
            Meter.create,
            ValidationError,
            [{**meter, 'serial': 'ROLE1', 'master_of_transformer': t2.id}],
        )
        self.assertIn('ROLE1', orm)
        bulk = refused(
            lambda v: bulk_create(Meter, v),
            ValidationError,
            [{**meter, 'serial': 'ROLE2', 'master_of_feeder': t1.feeder.id}],
        )
        self.assertEqual(bulk, orm.replace('ROLE1', 'ROLE2'))
        # Valid records pass: own transformer, a customer meter under a master.
        (point_id,) = bulk_create(Point, [{**point, 'transformer': t1.id}])
        (meter_id,) = bulk_create(
            Meter, [{**meter, 'serial': 'OK1', 'master': master.id}]
        )
        self.assertEqual(Meter(meter_id).master, master)
        self.assertEqual(Point(point_id).transformer, t1)

    @with_company
    def test_overlap_still_refused(self):
        "The set-based overlap check still rejects a second open installation"
        # The base class: the test package may import meter.py under another
        # module path than the pool does.
        from trytond.model.exceptions import ValidationError

        pool = Pool()
        Installation = pool.get('prepaid.meter.installation')
        make_network()
        result = run_rows([good_row('OV1')])
        (meter_id,) = result.meter_ids
        (installation,) = Installation.search([('meter', '=', meter_id)])
        with self.assertRaisesRegex(ValidationError, 'OV1 @ .* overlaps'):
            Installation.create(
                [
                    {
                        'meter': meter_id,
                        'service_point': installation.service_point.id,
                        'installed_on': dt.date(2024, 1, 1),
                    }
                ]
            )


def writer_modules():
    "The bulk and ORM writer modules of the package import_rows runs from"
    import sys

    package = import_rows.__module__.rpartition('.')[0]
    return sys.modules[package + '.bulk_writer'], sys.modules[package + '.orm_writer']


def run_rows(rows, mode='all', **kw):
    header, table = read_workbook(xlsx(rows))
    return import_rows(header, table, mode=mode, today=dt.date(2025, 1, 1), **kw)


class ImportCommandTestCase(unittest.TestCase):
    "The prepaid-import command without a database"

    def test_template(self):
        import tempfile

        from ..import_cli import main

        with tempfile.TemporaryDirectory() as folder:
            path = f'{folder}/template.xlsx'
            self.assertEqual(main(['--template', path]), 0)
            with open(path, 'rb') as template:
                header, rows = read_workbook(template.read())
        self.assertEqual(header, list(COLUMN_NAMES))
        self.assertEqual(len(rows), 1)

    def test_missing_arguments(self):
        from ..import_cli import main

        with self.assertRaises(SystemExit) as exit_:
            main(['some.xlsx'])
        self.assertEqual(exit_.exception.code, 2)
        with self.assertRaises(SystemExit):
            main(['-d', 'db'])
        with self.assertRaises(SystemExit):
            main(['-d', 'db', 'x.xlsx', '--mode', 'some'])

    def test_unreadable_file(self):
        from ..import_cli import main

        self.assertEqual(main(['-d', 'db', '/nonexistent/file.xlsx']), 1)

    def test_empty_file(self):
        "An empty file was a TypeError traceback; now a one-line refusal"
        import contextlib
        import io as io_
        import tempfile

        from ..import_cli import main

        with tempfile.NamedTemporaryFile(suffix='.xlsx') as empty:
            err = io_.StringIO()
            with contextlib.redirect_stderr(err):
                self.assertEqual(main(['-d', 'db', empty.name]), 1)
        self.assertEqual(
            err.getvalue(),
            f"prepaid-import: {empty.name} is empty: nothing to import\n",
        )


class ImportLimitsTestCase(unittest.TestCase):
    """Uploads that could exhaust the server are refused before any work;
    what a row's reason says stays bounded (issue 11 section 7)."""

    @classmethod
    def setUpClass(cls):
        drop_db()
        activate_module('prepaid_vending')

    def set_limits(self, rows=None, megabytes=None):
        Configuration = Pool().get('prepaid.configuration')
        config = Configuration(1)
        config.import_max_rows = rows
        config.import_max_megabytes = megabytes
        config.save()

    def run_wizard(self, data):
        Wizard = Pool().get('prepaid.import.wizard', type='wizard')
        session_id, _, _ = Wizard.create()
        try:
            return Wizard.execute(
                session_id,
                {'start': {'file': data, 'filename': 'x.xlsx', 'mode': 'valid'}},
                'import_',
            )
        finally:
            Wizard.delete(session_id)

    @with_company
    def test_limits_refused_before_any_work(self):
        # Through the pool, the classes of trytond.modules (pytest may import
        # this test package under a second name).
        from trytond.exceptions import UserError as ImportFileError
        from trytond.modules.prepaid_vending.excel_import import import_limits
        from trytond.modules.prepaid_vending.excel_import.sheet import (
            Sheet,
            check_upload,
        )

        pool = Pool()
        Job = pool.get('prepaid.import.job')
        Wizard = pool.get('prepaid.import.wizard', type='wizard')
        make_network()
        rows = [
            good_row(f'L{i}', name=f'P {i}', national_id=f'{8001015000000 + i}')
            for i in range(6)
        ]
        data = xlsx(rows)
        self.set_limits(rows=5)
        session_id, _, _ = Wizard.create()
        start = Wizard(session_id).default_start(None)
        self.assertEqual(start['limits'], 'At most 5 rows and 12 MB per workbook.')
        Wizard.delete(session_id)
        with self.assertRaisesRegex(
            ImportFileError, r'more than 5 rows \(6 found\), the import limit'
        ):
            self.run_wizard(data)
        # A sheet whose dimension says less than it holds is stopped as read.
        with self.assertRaisesRegex(ImportFileError, 'more than 5 rows'):
            list(Sheet(data, max_rows=5))
        self.set_limits(rows=6, megabytes=1)
        self.assertEqual(self.run_wizard(data)['view']['defaults']['imported_rows'], 6)
        big = b'PK\x03\x04' + bytes(1 << 20)
        with self.assertRaisesRegex(
            ImportFileError, r'The file is 1.0 MB, above the import limit of 1 MB'
        ):
            self.run_wizard(big)
        with self.assertRaisesRegex(ImportFileError, 'The file is empty'):
            self.run_wizard(b'')
        with self.assertRaisesRegex(ImportFileError, 'The file is empty'):
            check_upload(None, import_limits())
        # A zip bomb: a few KB that unpack to more than 12 times the limit.
        with self.assertRaisesRegex(ImportFileError, 'expands to 20 MB when unpacked'):
            self.run_wizard(zip_bomb(20 << 20))
        self.assertEqual(Job.search_count([]), 1)

    @with_company
    def test_limit_parameters_bounded(self):
        "Zero, negative or above the server's ceiling is refused"
        from trytond.model.exceptions import ValidationError

        for rows, megabytes in [(0, None), (-5, None), (200_001, None), (None, 13)]:
            with self.subTest(rows=rows, megabytes=megabytes):
                with self.assertRaisesRegex(ValidationError, 'must be between 1 and'):
                    self.set_limits(rows=rows, megabytes=megabytes)

    @with_company
    def test_duplicate_reasons_stay_bounded(self):
        """10,000 identical rows listed every other row in each reason
        (127 MB of rejects): now each reason names the first row only, and
        the rejects grow linearly with the rows"""
        make_network()

        def rejects(count):
            header, table = read_workbook(xlsx([good_row('SAME')] * count))
            result = import_rows(header, table, today=dt.date(2025, 1, 1))
            self.assertEqual(len(result.rejected), count)
            return result

        small, large = rejects(200), rejects(800)
        self.assertEqual(
            large.rejected[0].reason,
            'Meter serial "SAME" appears on 800 rows of the file: '
            'this row and the later ones are rejected.',
        )
        self.assertEqual(
            large.rejected[-1].reason,
            'Meter serial "SAME" is already on row 2 (800 rows in all).',
        )
        longest = max(len(r.reason) for r in large.rejected)
        self.assertLess(longest, 120)
        ratio = len(large.rejects_workbook()) / len(small.rejects_workbook())
        self.assertLess(ratio, 4.4)  # 4x the rows: linear, not quadratic
        self.assertEqual(counts(), (0, 0, 0, 0))

    @with_company
    def test_cells_read_without_loss(self):
        "Numbers that lost digits, NaN and oversized text are refused clearly"
        make_network()
        huge_name = 'N' * 32767
        rows = [
            # openpyxl writes this int as 1.234567890123457e+19: digits lost.
            good_row('C1', national_id=12345678901234567890),
            # An exact integer cell (as a program writes it) is kept.
            good_row(1234567890123, name='Exact', national_id='7001015009088'),
            good_row('C3', name=huge_name, national_id='7101015009085'),
            good_row('C4', latitude='NaN', national_id='7201015009081'),
            good_row('C5', longitude='1_0', national_id='7301015009087'),
            good_row('C6', ct_ratio='\u0661\u0660', national_id='7401015009083'),
        ]
        header = HEADER + ['ct_ratio']
        result = run(xlsx(rows, header=header), mode='valid')
        reasons = {r.number: r.reason for r in result.rejected}
        self.assertEqual(sorted(reasons), [2, 4, 5, 6, 7])
        self.assertEqual(
            reasons[2],
            'Column "national_id": the number 1.234567890123457e+19 is too long to '
            'be stored exactly in a spreadsheet (15 digits at most): format the '
            'column as Text and type it again.',
        )
        self.assertEqual(
            reasons[4], 'Column "customer_name": 32767 characters, more than the '
            '200 allowed.',
        )  # fmt: skip
        self.assertIn('Column "latitude": "NaN" is not a number', reasons[5])
        self.assertIn('Column "longitude": "1_0" is not a number', reasons[6])
        self.assertIn('"\u0661\u0660" is not a positive whole number', reasons[7])
        (meter,) = (
            Pool().get('prepaid.meter').search([('serial', '=', '1234567890123')])
        )
        self.assertEqual(meter.customer.name, 'Exact')
        # A float NaN cell (a program's) is refused too, never stored empty.
        header, table = read_workbook(xlsx([good_row('C7')]))
        table[0][1][header.index('latitude')] = float('nan')
        result = import_rows(header, table, today=dt.date(2025, 1, 1))
        self.assertIn(
            'Column "latitude": "nan" is not a number', result.rejected[0].reason
        )

    @with_company
    def test_streamed_twice_from_the_file(self):
        "The import reads the sheet again instead of holding its rows"
        from ..excel_import.sheet import Sheet

        make_network()
        data = xlsx(
            [
                good_row(f'S{i}', name=f'P {i}', national_id=f'{8001015000000 + i}')
                for i in range(30)
            ]
        )
        sheet = Sheet(data)
        reads = []
        original = Sheet.__iter__

        def counting(self):
            reads.append(1)
            return original(self)

        from unittest import mock

        with mock.patch.object(Sheet, '__iter__', counting):
            result = import_rows(sheet.header, sheet, batch=7)
        self.assertEqual((len(reads), result.imported), (2, 30))
        self.assertEqual(counts(), (30, 30, 30, 30))


def zip_bomb(size: int) -> bytes:
    "An .xlsx-looking zip with one part of size zero bytes"
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as archive:
        archive.writestr('xl/sharedStrings.xml', bytes(size))
    return out.getvalue()
