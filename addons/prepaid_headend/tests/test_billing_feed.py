"""Head-end readings feed remote-prepaid billing; warnings leave over MQTT.

End to end against the meter simulator over real TCP: a read job stores the
load profile, the feed turns it into consumption rows, the billing job prices
them, the balance falls below the credit limit, a disconnect command is
queued and the head-end opens the simulated relay.  Re-reads change nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import unittest
import uuid
from decimal import Decimal

import pytest
from trytond.modules.prepaid_headend import mqtt_bridge
from trytond.modules.prepaid_headend.billing_feed import consumption_pairs
from trytond.modules.prepaid_headend.command import LOW_CREDIT_CODE
from trytond.modules.prepaid_headend.dlms import operations as ops
from trytond.modules.prepaid_headend.mqtt import BrokerSettings, Subscriber
from trytond.modules.prepaid_headend.mqtt.topics import alarms_filter
from trytond.modules.prepaid_sts.tests import tools as sts_tools
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.modules.prepaid_vending.tests.vend_fixtures import (
    open_session,
    with_vending,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module
from trytond.transaction import Transaction

from simulators.meter import MeterConfig, MeterSimulator
from simulators.meter.model import DEFAULT_AK, DEFAULT_EK
from simulators.meter.testing import FakeClock

from .test_headend import free_port_block

D = Decimal
T0 = dt.datetime(2026, 3, 1, 0, 0)
QUARTER = dt.timedelta(minutes=15)
BROKER = BrokerSettings('127.0.0.1', 1883, timeout=5.0)
_FLOORS = itertools.count(1_000, 50_000)


class ConsumptionPairsTestCase(unittest.TestCase):
    "The pure pairing of cumulative captures"

    def test_pairs_involving_new_captures(self):
        captures = [
            (T0, 1_000_000.0, 'Wh'),
            (T0 + QUARTER, 1_000_250.0, 'Wh'),
            (T0 + 2 * QUARTER, 1_000_750.0, 'Wh'),
        ]
        rows = consumption_pairs(captures, {T0 + 2 * QUARTER})
        self.assertEqual(
            rows,
            [
                {
                    'start': T0 + QUARTER,
                    'end': T0 + 2 * QUARTER,
                    'kwh': D('0.500'),
                    'max_kw': D('2.000'),  # 0.5 kWh in a quarter of an hour
                }
            ],
        )
        # A capture stored before an earlier one gives both of its pairs.
        rows = consumption_pairs(captures, {T0 + QUARTER})
        self.assertEqual([r['kwh'] for r in rows], [D('0.250'), D('0.500')])

    def test_register_going_back_or_unknown_unit_is_not_billed(self):
        captures = [
            (T0, 5_000.0, 'Wh'),
            (T0 + QUARTER, 100.0, 'Wh'),  # meter exchanged / register reset
            (T0 + 2 * QUARTER, 300.0, 'Wh'),
            (T0 + 3 * QUARTER, 7.0, 'V'),
        ]
        new = {c[0] for c in captures}
        with self.assertLogs('trytond.modules.prepaid_headend.billing_feed') as logs:
            rows = consumption_pairs(captures, new)
        self.assertEqual(
            [(r['start'], r['kwh']) for r in rows], [(T0 + QUARTER, D('0.200'))]
        )
        self.assertEqual(len(logs.output), 2)


class BillingFeedTestCase(unittest.TestCase):
    "Simulator read -> consumption -> bill -> disconnect"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('prepaid_headend')
        cls._previous_key = sts_tools.set_master_key()
        # 26 h into the current month: the 24 h profile of a read lies in
        # one month, the month of the vend.
        start = dt.datetime.now(dt.UTC).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        cls.clock = FakeClock(start + dt.timedelta(hours=26))
        port = free_port_block(1)
        cls.sim = MeterSimulator(
            # Credit mode: the meter's own credit never opens the relay here.
            [MeterConfig(index=0, port=port, seed=3, prepaid=False)],
            clock=cls.clock,
        ).start()

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    def connect(self, meter) -> None:
        "Point the fixture meter at the simulated one"
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Counter = pool.get('prepaid.headend.invocation_counter')
        Meter.write(
            [meter],
            {
                'hes_host': '127.0.0.1',
                'hes_port': self.sim.port(0),
                'hes_framing': 'wrapper',
                'hes_auth': 'hls-gmac',
                'hes_client_address': 1,
                'hes_timeout': 5.0,
            },
        )
        Meter.write(
            [meter],
            {
                'hes_block_cipher_key': DEFAULT_EK.hex(),
                'hes_authentication_key': DEFAULT_AK.hex(),
            },
        )
        # Above every counter an earlier (rolled-back) test used: the
        # simulator remembers the last one.
        Counter.set_floor(Meter(meter.id).hes_counter_key, next(_FLOORS))

    def read(self, meter):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Job = pool.get('prepaid.headend.job')
        Meter.hes_read_now([meter])
        jobs = Job.search([('meter', '=', meter.id), ('state', '=', 'pending')])
        Job.execute(jobs)
        (job,) = Job.browse([j.id for j in jobs])
        self.assertEqual(job.state, 'done', job.last_error)
        return job

    @with_company
    def test_readings_bill_and_disconnect(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Account = pool.get('prepaid.remote.account')
        Consumption = pool.get('prepaid.remote.consumption')
        Interval = pool.get('prepaid.headend.interval')
        Command = pool.get('prepaid.meter.command')
        Job = pool.get('prepaid.headend.job')
        with with_vending(payment_mode='remote_prepaid') as env:
            open_session(env)
            meter = env.meter
            self.connect(meter)
            # 157.50 - the monthly charge 57.50 = 100.00 in the balance.
            Vend.vend(meter, D('157.50'), 'cash', env.sales_point, 'f1')
            account = Account.for_meter(meter)
            account.credit_limit = D('80.00')
            account.save()

            self.read(meter)
            captures = Interval.search(
                [('meter', '=', meter.id), ('obis', '=', ops.ENERGY_IMPORT)],
                order=[('timestamp', 'ASC')],
            )
            self.assertIn(len(captures), (96, 97))
            rows = Consumption.search(
                [('account', '=', account.id)], order=[('start', 'ASC')]
            )
            # One row per pair of consecutive captures, end to end.
            self.assertEqual(len(rows), len(captures) - 1)
            self.assertEqual(
                [(r.start, r.end) for r in rows],
                [(a.timestamp, b.timestamp) for a, b in zip(captures, captures[1:])],
            )
            kwh = sum((r.kwh for r in rows), D(0))
            registered = D(repr(captures[-1].value - captures[0].value)) / 1000
            self.assertEqual(kwh, registered.quantize(D('0.001')))
            self.assertGreater(kwh, 10)  # about 1 kW for 24 h
            self.assertLess(kwh, 50)  # all in the first block

            (bill,) = Account.bill([account])
            self.assertEqual(bill.kwh, kwh)
            # First block 1.20 excl. VAT; the vend took the monthly charge.
            energy = (kwh * D('1.20')).quantize(D('0.01'))
            self.assertEqual(bill.amount, energy)
            self.assertEqual(bill.vat, (energy * D('0.15')).quantize(D('0.01')))
            account = Account(account.id)
            self.assertEqual(account.balance, D('100.00') - bill.amount - bill.vat)
            self.assertLess(account.balance, account.credit_limit)
            self.assertEqual(account.connection, 'disconnecting')
            (disconnect,) = Command.search([('kind', '=', 'disconnect')])

            # The head-end executes it: the simulated relay opens.
            jobs = Command.hes_dispatch()
            Job.execute(jobs)
            self.assertEqual(Command(disconnect.id).state, 'accepted')
            self.assertFalse(self.sim.meter(0).relay_connected)
            self.assertEqual(Account(account.id).connection, 'disconnected')

            # The same readings again: nothing new anywhere.
            counts = (
                Interval.search_count([('meter', '=', meter.id)]),
                Consumption.search_count([('account', '=', account.id)]),
                Command.search_count([]),
            )
            self.read(meter)
            self.assertEqual(Account.bill([account]), [])
            self.assertEqual(
                (
                    Interval.search_count([('meter', '=', meter.id)]),
                    Consumption.search_count([('account', '=', account.id)]),
                    Command.search_count([]),
                ),
                counts,
            )

    @with_company
    def test_next_read_continues_from_the_stored_capture(self):
        "The first capture of a read pairs with the last one stored before"
        pool = Pool()
        Account = pool.get('prepaid.remote.account')
        Consumption = pool.get('prepaid.remote.consumption')
        Interval = pool.get('prepaid.headend.interval')
        with with_vending(payment_mode='remote_prepaid') as env:
            meter = env.meter
            self.connect(meter)
            self.read(meter)
            account = Account.for_meter(meter)
            before = Consumption.search_count([('account', '=', account.id)])
            last = Interval.search(
                [('meter', '=', meter.id), ('obis', '=', ops.ENERGY_IMPORT)],
                order=[('timestamp', 'DESC')],
                limit=1,
            )[0]
            self.clock.advance(minutes=15)  # one more capture
            self.read(meter)
            rows = Consumption.search(
                [('account', '=', account.id), ('start', '>=', last.timestamp)]
            )
            self.assertEqual(len(rows), 1)
            self.assertEqual(rows[0].start, last.timestamp)
            self.assertEqual(rows[0].end, last.timestamp + QUARTER)
            self.assertEqual(
                Consumption.search_count([('account', '=', account.id)]), before + 1
            )

    @with_company
    def test_rows_written_by_copy_are_fed(self):
        "A concentrator's file (reading.insert_rows, COPY) feeds billing too"
        from trytond.modules.prepaid_headend import reading as rd

        pool = Pool()
        Account = pool.get('prepaid.remote.account')
        Consumption = pool.get('prepaid.remote.consumption')
        with with_vending(payment_mode='remote_prepaid') as env:
            meter = env.meter
            start = dt.datetime.now().replace(
                day=1, hour=1, minute=0, second=0, microsecond=0
            )
            rows = [
                {
                    'meter': meter.id,
                    'obis': obis,
                    'timestamp': start + k * QUARTER,
                    'value': value,
                    'unit': unit,
                }
                for k in range(4)
                for obis, value, unit in (
                    (ops.ENERGY_IMPORT, 1_000.0 + 250 * k, 'Wh'),
                    (ops.ACTIVE_POWER, 1_000.0, 'W'),
                )
            ]
            self.assertEqual(rd.insert_rows('prepaid.headend.interval', rows), 8)
            account = Account.for_meter(meter)
            fed = Consumption.search(
                [('account', '=', account.id)], order=[('start', 'ASC')]
            )
            self.assertEqual([c.kwh for c in fed], [D('0.250')] * 3)
            # Again: nothing stored, nothing fed.
            self.assertEqual(rd.insert_rows('prepaid.headend.interval', rows), 0)
            self.assertEqual(
                Consumption.search_count([('account', '=', account.id)]), 3
            )

    @with_company
    def test_other_meters_are_not_fed(self):
        "A prepaid (token) meter's profile creates no consumption"
        pool = Pool()
        Consumption = pool.get('prepaid.remote.consumption')
        Interval = pool.get('prepaid.headend.interval')
        with with_vending(payment_mode='prepaid') as env:
            self.connect(env.meter)
            self.read(env.meter)
            self.assertGreater(Interval.search_count([]), 90)
            self.assertEqual(Consumption.search_count([]), 0)


@pytest.mark.usefixtures('mosquitto')
class LowCreditWarningTestCase(unittest.TestCase):
    "Low-credit warnings are published over MQTT after the commit"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('prepaid_headend')

    @classmethod
    def tearDownClass(cls):
        mqtt_bridge.close_publishers()
        super().tearDownClass()

    def setUp(self):
        self.site = f"t{uuid.uuid4().hex[:12]}"
        self.serial = f"LCW{uuid.uuid4().hex[:8].upper()}"

    def meter_and_warning(self):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Command = pool.get('prepaid.meter.command')
        meter = Meter(serial=self.serial, kind='smart_prepaid')
        meter.save()  # no head-end channel: a warning needs none
        return Command.queue(
            meter, 'low_credit_warning', {'balance': '12.60', 'threshold': '20'}
        )

    def configure(self, enabled: bool) -> None:
        Communication = Pool().get('prepaid.headend.communication')
        config = Communication(1)
        config.mqtt_enabled = enabled
        config.mqtt_host = BROKER.host
        config.mqtt_port = BROKER.port
        config.mqtt_tls = False  # the test broker listens in clear
        config.mqtt_site = self.site
        config.mqtt_timeout = BROKER.timeout
        config.save()

    @with_company
    def test_warning_published_and_done(self):
        Command = Pool().get('prepaid.meter.command')
        subscriber = Subscriber(BROKER, [alarms_filter(self.site)], direction='alarms')
        subscriber.start()
        self.addCleanup(subscriber.stop)
        self.configure(enabled=True)
        command = self.meter_and_warning()
        self.assertEqual(Command.hes_dispatch(), [])  # no meter job
        command = Command(command.id)
        self.assertEqual(command.state, 'accepted')
        self.assertEqual(subscriber.get_batch(10, 0.5), [])  # not committed yet
        Transaction().commit()
        (received,) = subscriber.get_batch(1, 5.0)
        self.assertEqual(received.topic, f"prepaid/{self.site}/alarms/{self.serial}")
        self.assertEqual(received.message.code, LOW_CREDIT_CODE)
        self.assertEqual(received.message.kind, 'event')
        self.assertEqual(received.message.text, "Low credit: balance 12.60 below 20")
        # Done: a second dispatch publishes nothing.
        Command.hes_dispatch()
        Transaction().commit()
        self.assertEqual(subscriber.get_batch(10, 0.5), [])

    @with_company
    def test_warning_waits_while_mqtt_is_off(self):
        Command = Pool().get('prepaid.meter.command')
        self.configure(enabled=False)
        command = self.meter_and_warning()
        Command.hes_dispatch()
        self.assertEqual(Command(command.id).state, 'pending')
