"""Head-end jobs on meters behind a concentrator (dcu_route.py).

The concentrator simulator serves its meters over HTTPS with client
certificates on 127.0.0.1; the head-end's jobs reach a meter without a
direct channel through the DLMS gateway of the concentrator whose directory
lists it, presenting the head-end's certificate and key from the
Communication Settings (the key encrypted with the master key; the CA and CRL
from trytond.conf), with the meter's own HLS keys: the same relay, reading
and refusals as for a direct meter.
"""

from __future__ import annotations

import datetime as dt
import itertools
import tempfile
import unittest
from decimal import Decimal

import trytond.config as config
from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.model.modelview import AccessButtonError
from trytond.modules.prepaid_headend import dcu
from trytond.modules.prepaid_headend.concentrator.tls import Peer
from trytond.modules.prepaid_headend.dcu_backend import TrytonHeadEnd
from trytond.modules.prepaid_headend.dlms.session import (
    DEFAULT_AUTHENTICATION_KEY,
    DEFAULT_BLOCK_CIPHER_KEY,
)
from trytond.modules.prepaid_headend.tests.test_headend import DECODER_KEY
from trytond.modules.prepaid_headend.tests.test_remote_delivery import STS, run_queue
from trytond.modules.prepaid_sts.tests import tools as sts_tools
from trytond.modules.prepaid_sts.tests.tools import create_user
from trytond.modules.prepaid_vending.delivery import vend_delivery
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.modules.prepaid_vending.tests.vend_fixtures import (
    open_session,
    with_vending,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module
from trytond.transaction import Transaction

from simulators.dcu import DcuSimulator, G3Config, TestPki
from simulators.dcu.testing import HeadEndStandIn

STEADY = G3Config(never_join_fraction=0.0, flaky_fraction=0.0)
# The simulated meters remember the last invocation counter of the head-end's
# system title across the rolled-back tests: each test starts above.
_FLOORS = itertools.count(1_000, 50_000)


def give_headend_credentials(credentials, key: str | None = None) -> None:
    "The head-end's client certificate and key, as a Key Custodian enters them"
    Communication = Pool().get('prepaid.headend.communication')
    Communication.write(
        [Communication(1)],
        {
            'dcu_certificate': credentials.cert.read_text(),
            'dcu_key': key or credentials.key.read_text(),
        },
    )


def fingerprint(credentials) -> str:
    return Peer.from_pem(credentials.cert.read_text()).fingerprint


class ConcentratorRouteTestCase(unittest.TestCase):
    "Jobs through the concentrator's DLMS gateway"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('prepaid_headend')
        cls._previous_key = sts_tools.set_master_key()
        cls._tmp = tempfile.TemporaryDirectory()
        cls.pki = TestPki(cls._tmp.name)
        # The concentrator pushes its reports to a stand-in: these tests are
        # about the head-end calling the concentrator.
        cls.stand_in = HeadEndStandIn(cls.pki).start()
        cls.sim = DcuSimulator(
            1,
            3,
            pki=cls.pki,
            headend_url=cls.stand_in.url,
            latency_scale=0.001,
            g3=STEADY,
            # On the head-end's time: orders carry their window in UTC.
            start=dt.datetime.now(dt.UTC).replace(microsecond=0),
            # The STS decoder key of the public test vectors (test_headend).
            template={'decoder_key': DECODER_KEY},
        ).start()
        cls.sim.advance(hours=1)
        cls.dc = cls.sim.concentrator('DC0001')
        cls.hes = cls.stand_in.credentials
        cls._options = {
            'dcu_ca': str(cls.pki.ca_cert),
            'dcu_crl': str(cls.pki.crl),
        }
        if not config.has_section('prepaid_headend'):
            config.add_section('prepaid_headend')
        for option, value in cls._options.items():
            config.set('prepaid_headend', option, value)

    @classmethod
    def tearDownClass(cls):
        for option in cls._options:
            config.set('prepaid_headend', option, '')
        cls.sim.stop()
        cls.stand_in.stop()
        cls._tmp.cleanup()
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    # -- fixtures ------------------------------------------------------------
    def give_headend_credentials(self, key: str | None = None):
        give_headend_credentials(self.hes, key)

    def setup_meter(self, index: int, meter=None, **concentrator_values):
        """The Tryton meter of simulated meter ``index`` (``meter``, or a new
        one), in the concentrator's directory, with the meter's HLS keys"""
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Counter = pool.get('prepaid.headend.invocation_counter')
        Concentrator = pool.get('prepaid.concentrator')
        Entry = pool.get('prepaid.concentrator.directory')
        simulated = self.dc.meters[index]
        self.give_headend_credentials()
        channel = {'hes_auth': 'hls-gmac', 'hes_client_address': 1, 'hes_timeout': 15.0}
        if meter is None:
            (meter,) = Meter.create(
                [{'serial': simulated.meter_id, 'kind': 'smart_prepaid', **channel}]
            )
        else:
            Meter.write([meter], channel)
        Meter.write(
            [meter],
            {
                'hes_block_cipher_key': DEFAULT_BLOCK_CIPHER_KEY.hex(),
                'hes_authentication_key': DEFAULT_AUTHENTICATION_KEY.hex(),
            },
        )
        Counter.set_floor(meter.hes_counter_key, next(_FLOORS))
        concentrators = Concentrator.search([('dc_id', '=', 'DC0001')])
        if concentrators:
            (concentrator,) = concentrators
        else:
            values = {
                'dc_id': 'DC0001',
                'url': self.sim.url('DC0001'),
                'certificate_fingerprint': fingerprint(self.sim.credentials['DC0001']),
                **concentrator_values,
            }
            (concentrator,) = Concentrator.create([values])
        Entry.create(
            [
                {
                    'concentrator': concentrator.id,
                    'meter_id': simulated.meter_id,
                    'meter': meter.id,
                    'pda': simulated.pda.hex().upper(),
                    'status': 'joined',
                    'approval': 'approved',
                }
            ]
        )
        return meter, concentrator, simulated

    def run_relay(self, meter, action: str):
        Job = Pool().get('prepaid.headend.job')
        jobs = Job.create_for([meter], 'relay', {'action': action})
        Job.execute(jobs)
        return Job(jobs[0].id)

    # -- tests ---------------------------------------------------------------
    @with_company
    def test_relay_and_reading_through_the_gateway(self):
        "A meter without a channel of its own is operated through its DCU"
        Meter = Pool().get('prepaid.meter')
        meter, concentrator, simulated = self.setup_meter(0)
        self.assertTrue(meter.hes_reachable)
        self.assertEqual(meter.hes_concentrator, concentrator)
        self.assertIn(meter, Meter.search([('hes_reachable', '=', True)]))
        self.assertEqual(meter.hes_connection_settings().framing, 'wrapper')
        self.assertNotIn(
            'no channel',
            ' '.join(meter.hes_channel_problems()).lower(),
        )

        job = self.run_relay(meter, 'disconnect')
        self.assertEqual(job.state, 'done', job.last_error)
        self.assertFalse(simulated.meter.state.relay_connected)
        self.assertEqual(Meter(meter.id).hes_relay_state, 'disconnected')
        job = self.run_relay(meter, 'reconnect')
        self.assertEqual(job.state, 'done', job.last_error)
        self.assertTrue(simulated.meter.state.relay_connected)

        Job = Pool().get('prepaid.headend.job')
        (read,) = Job.create_for([meter], 'read', {'on_demand': True})
        Job.execute([read])
        read = Job(read.id)
        self.assertEqual(read.state, 'done', read.last_error)
        Register = Pool().get('prepaid.headend.register')
        self.assertTrue(Register.search([('meter', '=', meter.id)]))

    @with_company
    def test_a_revoked_or_removed_route_is_not_used(self):
        "Revoked certificate, removed meter, pending approval: no channel"
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Concentrator = pool.get('prepaid.concentrator')
        Entry = pool.get('prepaid.concentrator.directory')
        meter, concentrator, simulated = self.setup_meter(1)
        (entry,) = concentrator.directory
        for model, record, values in [
            (Concentrator, concentrator, {'certificate_revoked': True}),
            (Entry, entry, {'status': 'removed'}),
            (Entry, entry, {'approval': 'pending'}),
            (Concentrator, concentrator, {'active': False}),
        ]:
            previous = {name: getattr(record, name) for name in values}
            model.write([record], values)
            meter = Meter(meter.id)
            self.assertFalse(meter.hes_reachable, values)
            self.assertNotIn(meter, Meter.search([('hes_reachable', '=', True)]))
            self.assertIn(meter, Meter.search([('hes_reachable', '=', False)]))
            with self.assertRaises(UserError):
                meter.hes_connection_settings()
            job = self.run_relay(meter, 'disconnect')
            self.assertEqual(job.state, 'failed', values)
            self.assertTrue(simulated.meter is None or self._connected(simulated))
            model.write([record], previous)
        self.assertTrue(Meter(meter.id).hes_reachable)

    @with_company
    def test_a_concentrator_with_another_certificate_is_not_trusted(self):
        "The DCU must answer with the certificate registered for it"
        meter, _, simulated = self.setup_meter(2, certificate_fingerprint='ab' * 32)
        job = self.run_relay(meter, 'disconnect')
        self.assertEqual(job.state, 'failed')
        self.assertIn('not the one registered', job.last_error)
        self.assertTrue(simulated.meter is None or self._connected(simulated))

    @with_company
    def test_no_head_end_certificate_is_a_clear_error(self):
        Communication = Pool().get('prepaid.headend.communication')
        meter, _, _ = self.setup_meter(0)
        Communication.write(
            [Communication(1)], {'dcu_certificate': None, 'dcu_key_cipher': None}
        )
        job = self.run_relay(meter, 'disconnect')
        self.assertEqual(job.state, 'failed')
        self.assertIn('Concentrator Client Certificate and Key', job.last_error)
        # Nor without the CA of the server's configuration.
        self.give_headend_credentials()
        config.set('prepaid_headend', 'dcu_ca', '')
        try:
            job = self.run_relay(meter, 'disconnect')
        finally:
            config.set('prepaid_headend', 'dcu_ca', self._options['dcu_ca'])
        self.assertEqual(job.state, 'failed')
        self.assertIn('dcu_ca', job.last_error)

    @with_company
    def test_head_end_key_is_write_only_encrypted_and_checked(self):
        pool = Pool()
        Communication = pool.get('prepaid.headend.communication')
        self.give_headend_credentials()
        settings = Communication(1)
        key_pem = self.hes.key.read_text()
        self.assertIsNone(settings.dcu_key)
        cipher = settings.dcu_key_cipher
        self.assertTrue(cipher)
        self.assertNotIn(key_pem.splitlines()[1], cipher)
        # Another key than the certificate's, or no PEM at all: refused,
        # the stored key unchanged.
        other = self.pki.issue('HES-OTHER')
        for wrong in (other.key.read_text(), 'not a key'):
            with self.assertRaisesRegex(UserError, 'refused'):
                self.give_headend_credentials(key=wrong)
            self.assertEqual(Communication(1).dcu_key_cipher, cipher)
        # A Key Custodian enters them; a Metering Engineer cannot, nor can
        # anyone read the encrypted key.
        custodian = create_user('custodian-dcu', 'key_custodian')
        engineer = create_user('engineer-dcu', 'engineer')
        with (
            Transaction().set_user(custodian.id),
            Transaction().set_context(_check_access=True),
        ):
            Communication.write(
                [Communication(1)],
                {
                    'dcu_certificate': self.hes.cert.read_text(),
                    'dcu_key': key_pem,
                },
            )
            with self.assertRaises(AccessError):
                Communication.read([1], ['dcu_key_cipher'])
        with (
            Transaction().set_user(engineer.id),
            Transaction().set_context(_check_access=True),
        ):
            with self.assertRaises(AccessError):
                Communication.write([Communication(1)], {'dcu_key': key_pem})

    @with_company
    def test_a_sale_delivers_its_credit_through_the_concentrator(self):
        "A smart prepaid meter behind a DCU gets its vended credit as tokens"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Meter = pool.get('prepaid.meter')
        Command = pool.get('prepaid.meter.command')
        Configuration = pool.get('prepaid.configuration')
        with with_vending() as env:
            config = Configuration(1)
            config.hes_retries = 0
            config.save()
            sts_tools.create_vending_key()
            Meter.write([env.meter], STS)
            meter, _, simulated = self.setup_meter(1, meter=Meter(env.meter.id))
            self.assertEqual(meter.vend_delivery_problems(), [])
            open_session(env)
            credit = simulated.instant(self.sim.clock.time())[6]
            vend = Vend.vend(meter, Decimal('100.00'), 'cash', env.sales_point, 'dcu-1')
            run_queue()
            (command,) = Command.search([('vend', '=', vend.id)])
            self.assertEqual(command.state, 'accepted', command.last_error)
            self.assertEqual(vend_delivery(Vend(vend.id)).state, 'confirmed')
            self.assertAlmostEqual(
                simulated.meter.state.credit_wh - credit,
                float(vend.units_kwh) * 1000,
                delta=5,
            )

    @with_company
    def test_a_relay_order_runs_on_many_meters_in_its_window(self):
        "An order's IdPet ties the concentrator's outcomes to it and its meters"
        pool = Pool()
        Order = pool.get('prepaid.concentrator.order')
        Status = pool.get('prepaid.concentrator.request_status')
        Meter = pool.get('prepaid.meter')
        a, concentrator, sim_a = self.setup_meter(0)
        b, _, sim_b = self.setup_meter(2)
        (stranger,) = Meter.create([{'serial': 'NOT-BEHIND', 'kind': 'smart_prepaid'}])

        def order(action, meters, **values):
            (record,) = Order.create(
                [
                    {
                        'concentrator': concentrator.id,
                        'action': action,
                        'reason': 'Unpaid accounts',
                        'window_end': dcu.now() + dt.timedelta(hours=3),
                        'lines': [('create', [{'meter': m.id} for m in meters])],
                        **values,
                    }
                ]
            )
            return record

        def deliver(record):
            # The concentrator runs the order on its clock and reports the
            # outcome; the head-end's service takes it (as its route does).
            self.sim.advance(minutes=30)
            update = self.stand_in.backend.status('DC0001', record.id_pet)
            self.assertIsNotNone(update)
            TrytonHeadEnd().request_status(update)
            return Order(record.id)

        disconnect = order('disconnect', [a, b, stranger])
        self.assertEqual(disconnect.state, 'draft')
        Order.send([disconnect])
        disconnect = Order(disconnect.id)
        self.assertEqual(disconnect.state, 'working', disconnect.message)
        self.assertEqual(disconnect.id_pet, disconnect.id)
        self.assertIn('not in the directory', disconnect.message)

        disconnect = deliver(disconnect)
        self.assertEqual(disconnect.state, 'partial')
        outcome = {line.meter: line for line in disconnect.lines}
        self.assertEqual(outcome[a].status, 'ok')
        self.assertEqual(outcome[a].message, 'disconnected')
        self.assertEqual(outcome[b].status, 'ok')
        self.assertEqual(outcome[stranger].status, 'unknown_meter')
        self.assertFalse(sim_a.meter.state.relay_connected)
        self.assertFalse(sim_b.meter.state.relay_connected)
        self.assertEqual(Meter(a.id).hes_relay_state, 'disconnected')
        self.assertIsNone(Meter(stranger.id).hes_relay_state)
        # Every status is kept for audit too.
        self.assertEqual(Status.search_count([('id_pet', '=', disconnect.id_pet)]), 1)
        # Sent once: Send again does nothing.
        Order.send([disconnect])
        self.assertEqual(Order(disconnect.id).state, 'partial')

        reconnect = order('reconnect', [a, b])
        Order.send([reconnect])
        reconnect = deliver(reconnect)
        self.assertEqual(reconnect.state, 'done', reconnect.message)
        self.assertTrue(sim_a.meter.state.relay_connected)
        self.assertEqual(Meter(b.id).hes_relay_state, 'connected')

    @with_company
    def test_an_order_to_an_unreachable_concentrator_stays_a_draft(self):
        pool = Pool()
        Order = pool.get('prepaid.concentrator.order')
        Concentrator = pool.get('prepaid.concentrator')
        meter, concentrator, simulated = self.setup_meter(0)
        Concentrator.write([concentrator], {'url': 'https://127.0.0.1:9/DC0001'})
        (record,) = Order.create(
            [
                {
                    'concentrator': concentrator.id,
                    'action': 'disconnect',
                    'reason': 'Tampering',
                    'window_end': dcu.now() + dt.timedelta(hours=1),
                    'lines': [('create', [{'meter': meter.id}])],
                }
            ]
        )
        Order.send([record])
        record = Order(record.id)
        self.assertEqual(record.state, 'draft')
        self.assertIn('send it again', record.message)
        self.assertIsNone(record.id_pet)
        self.assertTrue(simulated.meter is None or self._connected(simulated))

    @with_company
    def test_orders_are_refused_to_other_roles_and_to_raw_writes(self):
        pool = Pool()
        Order = pool.get('prepaid.concentrator.order')
        meter, concentrator, _ = self.setup_meter(0)
        values = {
            'concentrator': concentrator.id,
            'action': 'disconnect',
            'reason': 'Tampering',
            'window_end': dcu.now() + dt.timedelta(hours=1),
            'lines': [('create', [{'meter': meter.id}])],
        }
        cashier = create_user('order-cashier', 'cashier')
        engineer = create_user('order-engineer', 'engineer')
        transaction = Transaction()
        with (
            transaction.set_user(cashier.id),
            transaction.set_context(_check_access=True),
        ):
            with self.assertRaises(AccessError):
                Order.create([values])
        with (
            transaction.set_user(engineer.id),
            transaction.set_context(_check_access=True),
        ):
            (record,) = Order.create([values])
            # The status is the head-end's, never a client's.
            with self.assertRaises(AccessError):
                Order.write([record], {'state': 'done'})
            with self.assertRaises(AccessError):
                Order.write([record], {'id_pet': 99})
        with (
            transaction.set_user(cashier.id),
            transaction.set_context(_check_access=True),
        ):
            with self.assertRaises(AccessButtonError):
                Order.send([record])
        # A window that closes before it opens is refused.
        with self.assertRaises(UserError):
            Order.write([record], {'window_start': record.window_end})

    @staticmethod
    def _connected(simulated) -> bool:
        return simulated.meter.state.relay_connected
