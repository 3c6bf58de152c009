"""Concentrators in Tryton: the head-end's concentrator service on its trytond
route, with the Tryton backend (dcu_backend.py).

The concentrator simulator delivers its day of reports over real HTTPS with
client certificates to a TLS terminator on 127.0.0.1 (the concentrator
package's server, standing in for nginx: it hands the verified certificate
to the route in ``SSL_CLIENT_CERT``) in front of trytond's WSGI application;
the other tests call the route with werkzeug's test client. Every call is
its own committed transaction, as in production, so the fixtures are
committed too, each test with its own utility, meters and concentrator id.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import unittest
import urllib.parse
import uuid

import trytond.config as config
from trytond.modules.prepaid_headend import dcu
from trytond.modules.prepaid_headend.concentrator import files, reports, soap
from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator.errors import RefusedFault
from trytond.modules.prepaid_headend.concentrator.httpd import HttpsWsgiServer
from trytond.modules.prepaid_headend.concentrator.tls import (
    Peer,
    Reloading,
    server_context,
)
from trytond.modules.prepaid_headend.dlms import operations as ops
from trytond.modules.prepaid_sts.tests.tools import utility
from trytond.modules.prepaid_vending.tests.main_thread_app import MainThreadApp
from trytond.modules.prepaid_vending.tests.tools import committed, create_network
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module
from trytond.transaction import Transaction
from trytond.wsgi import app
from werkzeug.test import Client

from simulators.dcu import DcuSimulator, G3Config, TestPki

UTC = dt.UTC
DAY = dt.datetime(2026, 1, 15)
SOAP_URL = f'/{DB_NAME}/concentrator/soap'
FILES_URL = f'/{DB_NAME}/concentrator/files/'


def fingerprint(credentials) -> str:
    return Peer.from_pem(credentials.cert.read_text()).fingerprint


def hello(dc_id: str) -> m.RequestStatusUpdate:
    "A message that changes nothing but the concentrator's last contact"
    return m.RequestStatusUpdate(1, dc_id, m.RequestStatus.OK)


class ConcentratorServiceTestCase(unittest.TestCase):
    "The concentrator service of the head-end on its trytond route"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('prepaid_headend')
        cls._tmp = tempfile.TemporaryDirectory()
        cls.pki = TestPki(cls._tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()
        super().tearDownClass()

    def setUp(self):
        self.tag = uuid.uuid4().hex[:6].upper()
        self.client = Client(app)

    # -- fixtures ------------------------------------------------------------
    def register(self, dc_id: str, credentials, serials=(), **values) -> int:
        """A utility with a network, meters of these serials (the first one
        installed on another transformer than the concentrator's) and the
        concentrator with the credentials' certificate."""

        def make():
            pool = Pool()
            Meter = pool.get('prepaid.meter')
            Concentrator = pool.get('prepaid.concentrator')
            Point = pool.get('prepaid.service_point')
            Installation = pool.get('prepaid.meter.installation')
            company = utility(f'DCU {self.tag}')
            with Transaction().set_context(company=company.id):
                here = create_network(f'{self.tag}A')
                there = create_network(f'{self.tag}B')
                meters = Meter.create(
                    [{'serial': s, 'model': 'SIM-1'} for s in serials]
                )
                for meter, transformer in zip(
                    meters, [there] + [here] * len(meters), strict=False
                ):
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
                (record,) = Concentrator.create(
                    [
                        {
                            'company': company.id,
                            'dc_id': dc_id,
                            'transformer': here.id,
                            'certificate_fingerprint': fingerprint(credentials),
                            **values,
                        }
                    ]
                )
                return record.id

        return committed(make)

    def soap(self, message: m.Message, credentials=None) -> m.Message:
        operation = soap.HEADEND.operation_for(message)
        environ = {}
        if credentials is not None:
            environ['SSL_CLIENT_CERT'] = credentials.cert.read_text()
        response = self.client.post(
            SOAP_URL,
            data=soap.render(message),
            headers={
                'Content-Type': soap.CONTENT_TYPE,
                'SOAPAction': f'"{operation.action}"',
            },
            environ_base=environ,
        )
        return soap.parse_response(operation, response.get_data())

    def upload(self, name: str, data: bytes, credentials) -> int:
        response = self.client.put(
            FILES_URL + name,
            data=data,
            headers={
                'Content-Type': 'application/gzip',
                'Content-Digest': files.content_digest(data),
            },
            environ_base={'SSL_CLIENT_CERT': credentials.cert.read_text()},
        )
        return response.status_code

    def readings(self, model: str, serials) -> list[tuple]:
        def read():
            Model = Pool().get(model)
            return sorted(
                (r.meter.serial, r.obis, r.timestamp, r.value)
                for r in Model.search([('meter.serial', 'in', list(serials))])
            )

        return committed(read)

    def concentrator(self, record_id: int) -> dict:
        def read():
            record = Pool().get('prepaid.concentrator')(record_id)
            return {
                name: getattr(record, name)
                for name in ('state', 'offline_since', 'last_contact', 'last_report')
            }

        return committed(read)

    def alarms(self, dc_id: str) -> list[tuple[int, int]]:
        def read():
            Event = Pool().get('prepaid.concentrator.event')
            return [
                (e.group, e.code)
                for e in Event.search(
                    [('dc_id', '=', dc_id), ('alarm', '=', True)],
                    order=[('id', 'ASC')],
                )
            ]

        return committed(read)

    # -- tests ---------------------------------------------------------------
    def test_simulated_day_over_https_lands_in_the_reading_tables(self):
        "The simulator's concentrator, over mutual TLS, through the route"
        hes = self.pki.issue('HES')
        pump = MainThreadApp(app)
        server = HttpsWsgiServer()
        context = Reloading(
            server_context, hes.cert, hes.key, self.pki.ca_cert, self.pki.crl
        )
        listener = server.listen(pump, context, name='HES')
        server.start()
        url = f'https://127.0.0.1:{listener.port}/{DB_NAME}/concentrator'
        sim = DcuSimulator(
            1,
            4,
            pki=self.pki,
            headend_url=url,
            latency_scale=0,
            g3=G3Config(never_join_fraction=0.0, flaky_fraction=0.0),
        ).start()
        try:
            dc = sim.concentrator('DC0001')
            serials = [fm.meter_id for fm in dc.meters]
            # The last simulated meter is none of the utility's.
            record_id = self.register('DC0001', sim.credentials['DC0001'], serials[:-1])
            pump.run(lambda: sim.advance(hours=25))
        finally:
            sim.stop()
            server.stop()
        known = serials[:-1]
        intervals = self.readings('prepaid.headend.interval', known)
        day = {DAY + dt.timedelta(minutes=15 * k) for k in range(1, 97)}
        for serial in known:
            times = {
                t for s, o, t, _ in intervals if s == serial and o == ops.ENERGY_IMPORT
            }
            self.assertLessEqual(day, times, serial)
        self.assertFalse(self.readings('prepaid.headend.interval', serials[-1:]))
        daily = self.readings('prepaid.headend.register', known)
        self.assertIn((known[0], ops.ENERGY_IMPORT), {(s, o) for s, o, _, _ in daily})
        status = self.concentrator(record_id)
        self.assertEqual(status['state'], 'online')
        self.assertIsNotNone(status['last_report'])

        # Discovery: known meters approved, the stranger pending; the first
        # meter sits on another transformer than the concentrator.
        def directory():
            Entry = Pool().get('prepaid.concentrator.directory')
            entries = Entry.search([('concentrator', '=', record_id)])
            flagged = Entry.search(
                [('concentrator', '=', record_id), ('topology_mismatch', '=', True)]
            )
            return (
                {e.meter_id: (e.approval, e.status) for e in entries},
                [e.meter_id for e in flagged],
            )

        entries, flagged = committed(directory)
        self.assertEqual(
            entries,
            {s: ('approved', 'joined') for s in known}
            | {serials[-1]: ('pending', 'joined')},
        )
        self.assertEqual(flagged, [known[0]])

        # Every file again, last first, under the route: one set of readings.
        uploads = [entry for entry in pump.log if entry[0] == 'PUT']
        self.assertTrue(uploads)
        for _, path, body, environ in reversed(uploads):
            answer = self.client.put(
                path,
                data=body,
                headers={'Content-Digest': environ['HTTP_CONTENT_DIGEST']},
                environ_base={'SSL_CLIENT_CERT': environ['SSL_CLIENT_CERT']},
            )
            self.assertEqual(answer.status_code, 200)
        self.assertEqual(self.readings('prepaid.headend.interval', known), intervals)

    def test_reports_twice_and_out_of_order_store_one_set(self):
        creds = self.pki.issue(f'DC{self.tag}')
        dc_id = creds.name
        serial = f'M{self.tag}'
        self.register(dc_id, creds, [serial])

        def profile(start: int, report_id: int) -> m.ReportDelivery:
            rows = tuple(
                reports.IntervalRow(
                    serial,
                    dt.datetime(2026, 1, 15, tzinfo=UTC) + dt.timedelta(minutes=15 * k),
                    1_000 + 100 * k,
                    400,
                )
                for k in range(start, start + 4)
            )
            report = reports.Report(
                m.ReportType.LOAD_PROFILE,
                dc_id,
                0,
                dt.datetime(2026, 1, 16, 0, 5, tzinfo=UTC),
                rows,
            )
            return m.ReportDelivery(
                0,
                dc_id,
                report_id,
                m.RequestStatus.OK,
                m.ReportType.LOAD_PROFILE,
                reports.VERSION,
                reports.render(report),
            )

        later, earlier = profile(5, 2), profile(1, 1)
        self.assertEqual(self.soap(later, creds).result, m.AckResult.ACCEPTED)
        self.assertEqual(self.soap(later, creds).result, m.AckResult.DUPLICATE)
        self.assertEqual(self.soap(earlier, creds).result, m.AckResult.ACCEPTED)
        # The same payload under a new ReportId (a restarted concentrator):
        # another report, no new reading.
        again = m.ReportDelivery(**{**earlier.__dict__, 'report_id': 9})
        self.assertEqual(self.soap(again, creds).result, m.AckResult.ACCEPTED)
        rows = self.readings('prepaid.headend.interval', [serial])
        energy = [r for r in rows if r[1] == ops.ENERGY_IMPORT]
        self.assertEqual(len(energy), 8)
        self.assertEqual(len(rows), 16)  # and the power of each interval
        self.assertEqual([v for *_, v in energy][:2], [1_100.0, 1_200.0])

        def consumption():
            Interval = Pool().get('prepaid.headend.interval')
            found = Interval.search(
                [('meter.serial', '=', serial), ('obis', '=', ops.ENERGY_IMPORT)],
                order=[('timestamp', 'ASC')],
            )
            return [r.consumption for r in found]

        # The later report came first: its first interval had no stored
        # predecessor then, and readings are never rewritten.
        self.assertEqual(
            committed(consumption),
            [None, 100.0, 100.0, 100.0, None, 100.0, 100.0, 100.0],
        )

        # The same as a file, twice under two names: stored once.
        report = reports.parse(earlier.payload)
        data = files.pack(reports.render(report))
        name = files.FileName(dc_id, 0, m.ReportType.LOAD_PROFILE, 0, report.generated)
        self.assertEqual(self.upload(str(name), data, creds), 201)
        renamed = files.FileName(
            dc_id, 0, m.ReportType.LOAD_PROFILE, 0, report.generated, seq=7
        )
        self.assertEqual(self.upload(str(renamed), data, creds), 200)
        self.assertEqual(self.readings('prepaid.headend.interval', [serial]), rows)

        def kept():
            Received = Pool().get('prepaid.concentrator.report')
            (record,) = Received.search(
                [('kind', '=', 'file'), ('sha256', '=', files.sha256(data))]
            )
            return bytes(record.data), record.stored

        self.assertEqual(committed(kept), (data, 0))

    def test_unknown_other_and_revoked_certificates_are_refused(self):
        creds = self.pki.issue(f'DC{self.tag}')
        # The same name from another key (the TLS terminator's CA check is
        # not the route's): not the registered certificate.
        other = TestPki(f'{self._tmp.name}/{self.tag}').issue(creds.name)
        stranger = self.pki.issue(f'DX{self.tag}')  # no such concentrator
        record_id = self.register(creds.name, creds)
        update = hello(creds.name)
        self.assertEqual(self.soap(update, creds).result, m.AckResult.ACCEPTED)
        with self.assertRaises(RefusedFault):
            self.soap(update, other)
        with self.assertRaises(RefusedFault):
            self.soap(hello(stranger.name), stranger)

        def revoke():
            Concentrator = Pool().get('prepaid.concentrator')
            Concentrator.write([Concentrator(record_id)], {'certificate_revoked': True})

        committed(revoke)
        with self.assertRaises(RefusedFault):
            self.soap(update, creds)
        refused = (dcu.HEADEND_GROUP, dcu.EV_REFUSED_IDENTITY)
        self.assertEqual(self.alarms(creds.name), [refused, refused])
        self.assertEqual(self.alarms(stranger.name), [refused])

        def audit():
            Rejection = Pool().get('prepaid.concentrator.rejection')
            return sorted(
                (r.dc_id, r.what, r.fingerprint)
                for r in Rejection.search(
                    [('dc_id', 'in', [creds.name, stranger.name])]
                )
            )

        self.assertEqual(
            committed(audit),
            sorted(
                [
                    (creds.name, 'identity', fingerprint(other)),
                    (creds.name, 'identity', fingerprint(creds)),
                    (stranger.name, 'identity', fingerprint(stranger)),
                ]
            ),
        )

    def test_meter_status_latest_time_wins_and_decides(self):
        creds = self.pki.issue(f'DC{self.tag}')
        known = f'K{self.tag}'
        stranger = f'S{self.tag}'
        record_id = self.register(creds.name, creds, [known])
        t0 = dt.datetime(2026, 1, 15, 8, tzinfo=UTC)

        def item(meter_id, status, hours, **values):
            return m.MeterStatusItem(
                meter_id,
                bytes(range(8)),
                status,
                t0 + dt.timedelta(hours=hours),
                **values,
            )

        answer = self.soap(
            m.MeterStatusUpdate(
                creds.name,
                (
                    item(known, m.MeterStatus.JOINED, 0, short_address=5, hops=2),
                    item(stranger, m.MeterStatus.JOINED, 0, collector='C1'),
                ),
            ),
            creds,
        )
        self.assertEqual(
            {(d.meter_id, d.decision, d.model) for d in answer.decisions},
            {
                (known, m.Decision.APPROVED, 'SIM-1'),
                (stranger, m.Decision.PENDING, None),
            },
        )
        # Lost at 10:00, delivered after the rejoin at 12:00: still joined.
        for hours, status in ((12, m.MeterStatus.JOINED), (10, m.MeterStatus.LOST)):
            self.soap(
                m.MeterStatusUpdate(creds.name, (item(known, status, hours),)), creds
            )

        def entries():
            Entry = Pool().get('prepaid.concentrator.directory')
            return {
                e.meter_id: (
                    e.status,
                    e.approval,
                    e.status_time,
                    e.short_address,
                    e.collector.code if e.collector else None,
                )
                for e in Entry.search([('concentrator', '=', record_id)])
            }

        rejoined = dt.datetime(2026, 1, 15, 20)
        self.assertEqual(
            committed(entries),
            {
                known: ('joined', 'approved', rejoined, 5, None),
                stranger: (
                    'joined',
                    'pending',
                    dt.datetime(2026, 1, 15, 8),
                    None,
                    'C1',
                ),
            },
        )

    def test_malformed_report_refused_and_audited(self):
        creds = self.pki.issue(f'DC{self.tag}')
        self.register(creds.name, creds)
        delivery = m.ReportDelivery(
            0,
            creds.name,
            1,
            m.RequestStatus.OK,
            m.ReportType.DAILY,
            reports.VERSION,
            '<Report xmlns="urn:prepaid-platform:dcu:report:1"/>',
        )
        answer = self.soap(delivery, creds)
        self.assertEqual(answer.result, m.AckResult.MALFORMED)
        wsdl = self.client.get(SOAP_URL + '?wsdl')
        self.assertEqual(wsdl.status_code, 200)
        self.assertIn(b'UpdateMetersStatus', wsdl.get_data())
        self.assertEqual(
            self.alarms(creds.name), [(dcu.HEADEND_GROUP, dcu.EV_REFUSED_INPUT)]
        )

    def test_silent_concentrator_goes_offline_with_an_alarm(self):
        creds = self.pki.issue(f'DC{self.tag}')
        record_id = self.register(creds.name, creds, reporting_window=60)
        self.soap(hello(creds.name), creds)
        contact = self.concentrator(record_id)['last_contact']

        def cron(moment):
            def run():
                Concentrator = Pool().get('prepaid.concentrator')
                silent = Concentrator.mark_offline(moment)
                return [c.id for c in silent]

            return committed(run)

        self.assertNotIn(record_id, cron(contact + dt.timedelta(minutes=59)))
        self.assertIn(record_id, cron(contact + dt.timedelta(minutes=61)))
        self.assertNotIn(record_id, cron(contact + dt.timedelta(minutes=120)))
        status = self.concentrator(record_id)
        self.assertEqual(
            (status['state'], status['offline_since']), ('offline', contact)
        )
        self.assertEqual(self.alarms(creds.name), [(dcu.HEADEND_GROUP, dcu.EV_OFFLINE)])
        self.soap(hello(creds.name), creds)  # heard from again
        status = self.concentrator(record_id)
        self.assertEqual((status['state'], status['offline_since']), ('online', None))

    def test_certificate_from_the_proxy_header(self):
        "nginx's escaped certificate, under the configured header only"
        creds = self.pki.issue(f'DC{self.tag}')
        self.register(creds.name, creds)
        message = hello(creds.name)
        operation = soap.HEADEND.operation_for(message)
        headers = {'Content-Type': soap.CONTENT_TYPE}
        escaped = urllib.parse.quote(creds.cert.read_text(), safe='')
        had_section = config.has_section('prepaid_headend')
        previous = config.get('prepaid_headend', 'client_cert')
        if not had_section:
            config.add_section('prepaid_headend')
        config.set('prepaid_headend', 'client_cert', 'HTTP_X_SSL_CLIENT_CERT')
        try:
            answer = self.client.post(
                SOAP_URL,
                data=soap.render(message),
                headers={**headers, 'X-SSL-Client-Cert': escaped},
            )
            self.assertIsInstance(
                soap.parse_response(operation, answer.get_data()), m.StatusAck
            )
            # With the header configured, the server variable is not read.
            answer = self.client.post(
                SOAP_URL,
                data=soap.render(message),
                headers=headers,
                environ_base={'SSL_CLIENT_CERT': creds.cert.read_text()},
            )
            with self.assertRaises(RefusedFault):
                soap.parse_response(operation, answer.get_data())
        finally:
            if had_section:
                config.set('prepaid_headend', 'client_cert', previous)
            else:
                config.remove_section('prepaid_headend')
            config._cache_clear()  # remove_section leaves get's cache

    # -- report files through the queue -------------------------------------
    def profile_file(self, dc_id: str, serials, first: int, seq: int):
        "(name, gzip) of a load-profile file: 4 intervals of each meter"
        rows = tuple(
            reports.IntervalRow(
                serial,
                dt.datetime(2026, 1, 15, tzinfo=UTC) + dt.timedelta(minutes=15 * k),
                1_000 + 100 * k,
                400,
            )
            for serial in serials
            for k in range(first, first + 4)
        )
        generated = dt.datetime(2026, 1, 16, 0, 5, tzinfo=UTC)
        report = reports.Report(m.ReportType.LOAD_PROFILE, dc_id, 0, generated, rows)
        name = files.FileName(
            dc_id, 0, m.ReportType.LOAD_PROFILE, 0, generated, seq=seq
        )
        return str(name), files.pack(reports.render(report))

    def queued(self, dc_id: str) -> list[int]:
        "The queue tasks not run yet of the concentrator's received files"

        def read():
            pool = Pool()
            Queue = pool.get('ir.queue')
            Received = pool.get('prepaid.concentrator.report')
            mine = {r.id for r in Received.search([('concentrator.dc_id', '=', dc_id)])}
            return sorted(
                t.id
                for t in Queue.search(
                    [('name', '=', 'headend'), ('finished_at', '=', None)]
                )
                if t.data['method'] == 'ingest' and set(t.data['instances']) <= mine
            )

        return committed(read)

    def received_files(self, dc_id: str) -> list[tuple]:
        def read():
            Received = Pool().get('prepaid.concentrator.report')
            return sorted(
                (r.file_name, r.stored, bytes(r.data) if r.data else None)
                for r in Received.search(
                    [('concentrator.dc_id', '=', dc_id), ('kind', '=', 'file')]
                )
            )

        return committed(read)

    def test_files_are_queued_ingested_once_and_a_bad_one_refused_alone(self):
        "With queue workers, the request keeps the file and queues its readings"
        from trytond.worker import run_task

        creds = self.pki.issue(f'DC{self.tag}')
        serials = [f'Q{self.tag}1', f'Q{self.tag}2']
        self.register(creds.name, creds, serials)
        first, first_data = self.profile_file(creds.name, serials, 1, 1)
        later, later_data = self.profile_file(creds.name, serials, 5, 2)
        bad = files.FileName(
            creds.name,
            0,
            m.ReportType.LOAD_PROFILE,
            0,
            dt.datetime(2026, 1, 16, tzinfo=UTC),
            seq=3,
        )
        # Well-formed gzip, schema-invalid report.
        bad_data = files.pack(
            f'<Report xmlns="{reports.NS}" type="load_profile"'
            f' version="{reports.VERSION}" dc="{creds.name}" idPet="0"'
            ' generated="2026-01-16T00:00:00Z">'
            '<Meter id="X"><Interval t="never"/></Meter></Report>'
        )
        had_section = config.has_section('queue')
        previous = config.get('queue', 'worker')
        if not had_section:
            config.add_section('queue')
        config.set('queue', 'worker', 'True')  # tasks wait for a worker
        try:
            self.assertEqual(self.upload(first, first_data, creds), 201)
            self.assertEqual(self.upload(str(bad), bad_data, creds), 400)
            self.assertEqual(self.upload(later, later_data, creds), 201)
            # The same bytes under another name: a duplicate, no new task.
            renamed = first.replace('_1.xml.gz', '_9.xml.gz')
            self.assertEqual(self.upload(renamed, first_data, creds), 200)
        finally:
            if had_section:
                config.set('queue', 'worker', previous or 'False')
            else:
                config.remove_section('queue')
            config._cache_clear()

        # Kept for audit, nothing ingested yet: two tasks wait.
        self.assertEqual(
            self.received_files(creds.name),
            sorted([(first, None, first_data), (later, None, later_data)]),
        )
        self.assertEqual(self.readings('prepaid.headend.interval', serials), [])
        tasks = self.queued(creds.name)
        self.assertEqual(len(tasks), 2)

        # The bad file is refused alone, audited with its bytes.
        def refused():
            Rejection = Pool().get('prepaid.concentrator.rejection')
            return [
                (r.what, r.name, bytes(r.data))
                for r in Rejection.search([('dc_id', '=', creds.name)])
            ]

        self.assertEqual(committed(refused), [('file', str(bad), bad_data)])

        # A worker runs them (the later file first): 8 intervals a meter.
        for task in reversed(tasks):
            run_task(DB_NAME, task)
        rows = self.readings('prepaid.headend.interval', serials)
        self.assertEqual(len(rows), 2 * 8 * 2)  # energy and power
        self.assertEqual(
            sorted(s for _, s, _ in self.received_files(creds.name)), [16, 16]
        )
        self.assertEqual(self.queued(creds.name), [])
        # A task run again (retried, queued twice) adds nothing.
        run_task(DB_NAME, tasks[0])
        self.assertEqual(self.readings('prepaid.headend.interval', serials), rows)

        # The first file's readings again in a new file (another generated
        # time): only the readings not stored yet would be added.
        again, again_data = self.profile_file(creds.name, serials, 1, 4)
        again_data = files.pack(
            files.unpack(again_data).replace(
                b'2026-01-16T00:05:00Z', b'2026-01-16T01:05:00Z'
            )
        )
        self.assertEqual(self.upload(again, again_data, creds), 201)
        self.assertEqual(self.readings('prepaid.headend.interval', serials), rows)
        self.assertIn((again, 0, again_data), self.received_files(creds.name))

    def test_file_readings_same_through_the_fast_path_and_the_orm(self):
        "The set-based write (COPY) stores what the ORM stores"
        from trytond.modules.prepaid_vending import fastpath

        creds = self.pki.issue(f'DC{self.tag}')
        fast, orm = f'F{self.tag}', f'O{self.tag}'
        self.register(creds.name, creds, [fast, orm])
        name, data = self.profile_file(creds.name, [fast], 1, 1)
        self.assertEqual(self.upload(name, data, creds), 201)
        name, data = self.profile_file(creds.name, [orm], 1, 2)
        with fastpath.through_orm():
            self.assertEqual(self.upload(name, data, creds), 201)

        def stored(serial):
            Interval = Pool().get('prepaid.headend.interval')
            return sorted(
                (r.obis, r.timestamp, r.value, r.unit, r.consumption, r.create_uid.id)
                for r in Interval.search([('meter.serial', '=', serial)])
            )

        self.assertEqual(len(committed(lambda: stored(fast))), 8)
        self.assertEqual(
            committed(lambda: stored(fast)), committed(lambda: stored(orm))
        )
