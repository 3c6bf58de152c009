"""The demo's concentrators (prepaid_demo.concentrators): registered with
this run's certificates, reporting over mutual TLS through the TLS
terminator to trytond's concentrator route, they show online with their
meter directory and a first report.

As in test_dcu.py every call of the route is its own committed transaction
(the SQLite test database answers in the test's thread: MainThreadApp), so
the fixtures are committed, with their own utility and concentrator ids.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import unittest
import uuid

import trytond.config as config
from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator import soap
from trytond.modules.prepaid_headend.concentrator.errors import RefusedFault
from trytond.modules.prepaid_headend.dlms import operations as ops
from trytond.modules.prepaid_sts.tests import tools as sts_tools
from trytond.modules.prepaid_sts.tests.tools import utility
from trytond.modules.prepaid_vending.tests.main_thread_app import MainThreadApp
from trytond.modules.prepaid_vending.tests.tools import committed, create_network
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module
from trytond.transaction import Transaction
from trytond.wsgi import app
from werkzeug.test import Client

from prepaid_demo.concentrators import (
    FIRST_REPORT_S,
    DemoConcentrators,
    concentrator_routes_only,
    ensure_concentrators,
    headend_tls_environ,
)


class DemoConcentratorsTestCase(unittest.TestCase):
    "The demo's two concentrators"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('prepaid_headend')
        # The HLS keys of the meters behind the concentrators are stored
        # encrypted.
        cls._previous_key = sts_tools.set_master_key()

    @classmethod
    def tearDownClass(cls):
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    def setUp(self):
        self.tag = uuid.uuid4().hex[:6].upper()
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)

    def network(self) -> tuple[int, dict[str, list[str]]]:
        """A utility with three transformers: 3, 2 and 1 smart meters (and a
        keypad meter, which no concentrator reads); returns the company and
        transformer code -> serials."""

        def make():
            pool = Pool()
            Meter = pool.get('prepaid.meter')
            Point = pool.get('prepaid.service_point')
            Installation = pool.get('prepaid.meter.installation')
            company = utility(f'Demo DCU {self.tag}')
            layout = {}
            with Transaction().set_context(company=company.id):
                for letter, smart in (('A', 3), ('B', 2), ('C', 1)):
                    transformer = create_network(f'{self.tag}{letter}')
                    kinds = ['smart_prepaid'] * smart + (
                        ['sts_keypad', 'postpaid'] if letter == 'A' else []
                    )
                    meters = Meter.create(
                        [
                            {'serial': f'{letter}{self.tag}{k}', 'kind': kind}
                            for k, kind in enumerate(kinds)
                        ]
                    )
                    for meter in meters:
                        (point,) = Point.create(
                            [{'transformer': transformer.id, 'street': 'Main'}]
                        )
                        Installation.create(
                            [
                                {
                                    'meter': meter.id,
                                    'service_point': point.id,
                                    'installed_on': dt.date(2026, 1, 1),
                                }
                            ]
                        )
                    layout[transformer.code] = sorted(
                        m.serial for m in meters if m.kind != 'sts_keypad'
                    )
            return company.id, layout

        return committed(make)

    def test_two_concentrators_online_with_directory_and_first_report(self):
        company, layout = self.network()
        context = {'company': company, 'companies': [company]}

        def transaction(func):
            return committed(func, context=context)

        dc_ids = (f'DD1{self.tag}', f'DD2{self.tag}')
        pump = MainThreadApp(app)
        demo = DemoConcentrators(
            DB_NAME, pump, self._tmp.name, transaction, dc_ids=dc_ids, meters=5
        )
        demo.start()
        try:
            # The meters join, then the first report: all before the plan's
            # first hourly task.
            pump.run(lambda: demo.sim.advance(seconds=FIRST_REPORT_S + 20))
            read = self.read_through_the_gateway(f'A{self.tag}4', context)
        finally:
            demo.stop()
        # The postpaid meter behind a concentrator got its HLS channel and
        # was read through the concentrator's gateway, with the head-end's
        # certificate the demo hands to trytond.
        self.assertEqual(read, ('done', 'DD1' + self.tag))
        self.assertEqual(demo.tls_refusals, [])
        # The transformers with the most eligible meters, keypads left out.
        by_code = {serials[0]: code for code, serials in layout.items()}
        plan = dict(demo.plan)
        self.assertEqual(
            {by_code[s[0]] for s in plan.values()},
            {f'TX1{self.tag}A', f'TX1{self.tag}B'},
        )
        self.assertEqual(sorted(map(len, plan.values())), [2, 4])

        def seen():
            pool = Pool()
            Concentrator = pool.get('prepaid.concentrator')
            Entry = pool.get('prepaid.concentrator.directory')
            Received = pool.get('prepaid.concentrator.report')
            Register = pool.get('prepaid.headend.register')
            out = {}
            for record in Concentrator.search([('dc_id', 'in', list(dc_ids))]):
                entries = Entry.search([('concentrator', '=', record.id)])
                out[record.dc_id] = {
                    'state': record.state,
                    'last_report': record.last_report is not None,
                    'firmware': record.firmware_version,
                    'url': record.url,
                    'directory': {
                        e.meter_id: (e.status, e.approval, bool(e.meter))
                        for e in entries
                    },
                    'mismatch': [e.meter_id for e in entries if e.topology_mismatch],
                    'reports': {
                        r.report_type
                        for r in Received.search([('concentrator', '=', record.id)])
                    },
                    'readings': {
                        r.meter.serial
                        for r in Register.search(
                            [
                                ('meter.serial', 'in', list(plan[record.dc_id])),
                                ('obis', '=', ops.ENERGY_IMPORT),
                            ]
                        )
                    },
                }
            return out

        found = committed(seen)
        self.assertEqual(set(found), set(dc_ids))
        for dc_id, status in found.items():
            serials = plan[dc_id]
            self.assertEqual(status['state'], 'online', dc_id)
            self.assertTrue(status['last_report'], dc_id)
            self.assertEqual(status['firmware'], 'DCU-1.0.0')
            self.assertEqual(status['url'], demo.urls[dc_id])
            self.assertEqual(
                status['directory'], {s: ('joined', 'approved', True) for s in serials}
            )
            self.assertEqual(status['mismatch'], [])
            self.assertLessEqual(
                {'instant', 'meter_list', 'dc_parameters'}, status['reports']
            )
            self.assertEqual(status['readings'], set(serials))

        # Started again (the demo's next run): the same records, new
        # certificates registered, the old ones refused.
        old = demo.sim.credentials[dc_ids[0]].cert.read_text()
        again = DemoConcentrators(
            DB_NAME, pump, f'{self._tmp.name}/again', transaction, dc_ids=dc_ids
        )
        again.start()
        again.stop()
        self.assertEqual(dict(again.plan), plan)

        def records():
            Concentrator = Pool().get('prepaid.concentrator')
            return Concentrator.search_count([('dc_id', 'in', list(dc_ids))])

        self.assertEqual(committed(records), 2)
        client = Client(concentrator_routes_only(app, DB_NAME))
        hello = m.RequestStatusUpdate(1, dc_ids[0], m.RequestStatus.OK)
        operation = soap.HEADEND.operation_for(hello)
        answer = client.post(
            f'/{DB_NAME}/concentrator/soap',
            data=soap.render(hello),
            headers={
                'Content-Type': soap.CONTENT_TYPE,
                'SOAPAction': f'"{operation.action}"',
            },
            environ_base={'SSL_CLIENT_CERT': old},
        )
        with self.assertRaises(RefusedFault):
            soap.parse_response(operation, answer.get_data())
        # Only the concentrator routes are served through the terminator.
        self.assertEqual(client.get(f'/{DB_NAME}/xmlvend?wsdl').status_code, 404)
        self.assertEqual(client.get('/').status_code, 404)

    def read_through_the_gateway(self, serial: str, context: dict):
        "An on-demand read of meter ``serial``: the job's state, its DCU"
        settings = headend_tls_environ(self._tmp.name)
        if not config.has_section('prepaid_headend'):
            config.add_section('prepaid_headend')
        for name, value in settings.items():
            option = name.removeprefix('TRYTOND_PREPAID_HEADEND__').lower()
            config.set('prepaid_headend', option, value)
        self.addCleanup(
            lambda: [
                config.set('prepaid_headend', n.split('__')[-1].lower(), '')
                for n in settings
            ]
        )

        def read():
            pool = Pool()
            Meter = pool.get('prepaid.meter')
            Job = pool.get('prepaid.headend.job')
            (meter,) = Meter.search([('serial', '=', serial)])
            (job,) = Job.create_for([meter], 'read', {'on_demand': True})
            Job.execute([job])
            job = Job(job.id)
            return (
                job.state,
                meter.hes_concentrator.dc_id
                if job.last_error is None
                else job.last_error,
            )

        return committed(read, context=context)

    def test_not_enough_transformers_creates_nothing(self):
        company, _ = self.network()
        ids = tuple(f'DX{k}{self.tag}' for k in range(4))

        with self.assertRaisesRegex(ValueError, '3 transformer'):
            committed(
                lambda: ensure_concentrators(ids),
                context={'company': company, 'companies': [company]},
            )

        def count():
            Concentrator = Pool().get('prepaid.concentrator')
            return Concentrator.search_count([('dc_id', 'in', list(ids))])

        self.assertEqual(committed(count), 0)
