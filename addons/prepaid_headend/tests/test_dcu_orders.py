"""Concentrator orders of every kind (dcu_order.py): time sync, meter add and
remove, collection plan, expiry, the concentrator form's buttons.

The concentrator simulator serves them over HTTPS with client certificates
on 127.0.0.1 and runs them on its virtual clock; its request status updates
go to a stand-in and are handed to the head-end's service as its route
does. Each test has a concentrator of its own: the simulator outlives the
rolled-back transactions, and an IdPet is never run twice by a concentrator.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import unittest

import trytond.config as config
from trytond.exceptions import UserError
from trytond.model.modelview import AccessButtonError
from trytond.modules.prepaid_headend import dcu
from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator.plan import (
    HOUSEKEEPING,
    ScheduleSpec,
    collection_plan,
)
from trytond.modules.prepaid_headend.concentrator.tls import Peer
from trytond.modules.prepaid_headend.dcu_backend import TrytonHeadEnd
from trytond.modules.prepaid_headend.tests.test_dcu_route import (
    give_headend_credentials,
)
from trytond.modules.prepaid_sts.tests import tools as sts_tools
from trytond.modules.prepaid_sts.tests.tools import create_user
from trytond.modules.prepaid_vending.tests.staff import acting_as
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module

from simulators.dcu import DcuSimulator, G3Config, TestPki
from simulators.dcu.testing import HeadEndStandIn

STEADY = G3Config(never_join_fraction=0.0, flaky_fraction=0.0)
Task = m.CollectionTask
RT, P, D = m.ReportType, m.Period, m.Delivery


class CollectionPlanTestCase(unittest.TestCase):
    "The collection plan from reading schedules (pure)"

    def test_schedules_become_tasks_the_most_frequent_winning(self):
        plan = collection_plan(
            [
                ScheduleSpec('daily', registers=True, profile=True),
                ScheduleSpec('interval', 15, events=True, profile=True),
                ScheduleSpec('monthly', billing=True, events=True),
            ]
        )
        self.assertEqual(
            plan,
            (
                Task(RT.DAILY, P.DAY, True, D.FILE),
                Task(RT.MONTHLY, P.MONTH, True, D.FILE),
                Task(RT.LOAD_PROFILE, P.QUARTER_HOUR, True, D.FILE),
                Task(RT.METER_EVENTS, P.QUARTER_HOUR, True, D.SOAP),
                *HOUSEKEEPING,
            ),
        )
        m.check(m.CollectionPlanOrder(plan))  # one task per report type

    def test_interval_periods_and_nothing_to_collect(self):
        periods = [
            collection_plan([ScheduleSpec('interval', minutes, events=True)])[0].period
            for minutes in (5, 59, 60, 180, 1440)
        ]
        self.assertEqual(periods, [P.QUARTER_HOUR] * 2 + [P.HOUR] * 2 + [P.DAY])
        # A schedule that reads nothing a concentrator collects: no plan (the
        # head-end does not replace a plan with housekeeping alone).
        self.assertEqual(collection_plan([ScheduleSpec('daily')]), ())
        self.assertEqual(collection_plan([]), ())


class ConcentratorOrderTestCase(unittest.TestCase):
    "Orders of every kind sent to a simulated concentrator over mutual TLS"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('prepaid_headend')
        # The head-end's client key is stored encrypted with the master key.
        cls._previous_key = sts_tools.set_master_key()
        cls._tmp = tempfile.TemporaryDirectory()
        cls.pki = TestPki(cls._tmp.name)
        cls.stand_in = HeadEndStandIn(cls.pki).start()
        # On the head-end's time once the meters joined (an hour): orders
        # carry their window in UTC.
        start = dt.datetime.now(dt.UTC).replace(microsecond=0)
        cls.sim = DcuSimulator(
            8,
            3,
            pki=cls.pki,
            headend_url=cls.stand_in.url,
            latency_scale=0.001,
            g3=STEADY,
            start=start - dt.timedelta(hours=1),
        ).start()
        cls.sim.advance(hours=1)
        cls._options = {
            'dcu_ca': str(cls.pki.ca_cert),
            'dcu_crl': str(cls.pki.crl),
        }
        cls._had_section = config.has_section('prepaid_headend')
        if not cls._had_section:
            config.add_section('prepaid_headend')
        for option, value in cls._options.items():
            config.set('prepaid_headend', option, value)

    @classmethod
    def tearDownClass(cls):
        # The configuration as it was: later tests read the section's other
        # options (a section added here would lack them).
        if cls._had_section:
            for option in cls._options:
                config.set('prepaid_headend', option, '')
        else:
            config.remove_section('prepaid_headend')
            config._cache_clear()  # remove_section leaves get's cache
        cls.sim.stop()
        cls.stand_in.stop()
        cls._tmp.cleanup()
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    # -- fixtures ------------------------------------------------------------
    def setup_concentrator(self, dc_id: str, approval: str = 'approved'):
        """The Tryton concentrator of simulated ``dc_id`` with its meters in
        its directory: (concentrator, meters, simulated concentrator)"""
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Concentrator = pool.get('prepaid.concentrator')
        Entry = pool.get('prepaid.concentrator.directory')
        simulated = self.sim.concentrator(dc_id)
        give_headend_credentials(self.stand_in.credentials)
        (concentrator,) = Concentrator.create(
            [
                {
                    'dc_id': dc_id,
                    'url': self.sim.url(dc_id),
                    'certificate_fingerprint': Peer.from_pem(
                        self.sim.credentials[dc_id].cert.read_text()
                    ).fingerprint,
                }
            ]
        )
        meters = Meter.create(
            [
                {'serial': fm.meter_id, 'kind': 'smart_prepaid'}
                for fm in simulated.meters
            ]
        )
        Entry.create(
            [
                {
                    'concentrator': concentrator.id,
                    'meter_id': fm.meter_id,
                    'meter': meter.id,
                    'pda': fm.pda.hex().upper(),
                    'status': 'joined',
                    'approval': approval,
                }
                for fm, meter in zip(simulated.meters, meters, strict=True)
            ]
        )
        return concentrator, meters, simulated

    def order(self, concentrator, kind: str, meters=(), **values):
        Order = Pool().get('prepaid.concentrator.order')
        (record,) = Order.create(
            [
                {
                    'concentrator': concentrator.id,
                    'kind': kind,
                    'reason': 'Test',
                    'window_end': dcu.now() + dt.timedelta(hours=1),
                    'lines': [('create', [{'meter': m.id} for m in meters])],
                    **values,
                }
            ]
        )
        return record

    def send(self, order):
        Order = Pool().get('prepaid.concentrator.order')
        Order.send([order])
        return Order(order.id)

    def deliver(self, order, dc_id: str, minutes: float = 2):
        """The concentrator runs the order on its clock and reports the
        outcome; the head-end's service takes it (as its route does)."""
        self.sim.advance(minutes=minutes)
        update = self.stand_in.backend.status(dc_id, order.id_pet)
        self.assertIsNotNone(update, f"no status for {order.id_pet}")
        TrytonHeadEnd().request_status(update)
        return Pool().get('prepaid.concentrator.order')(order.id)

    @staticmethod
    def outcomes(order) -> dict:
        return {line.meter.serial: (line.status, line.message) for line in order.lines}

    # -- tests ---------------------------------------------------------------
    @with_company
    def test_time_sync_sets_the_concentrator_then_its_drifting_meter(self):
        "TimeSync: the head-end's clock to the concentrator, then to a meter"
        concentrator, meters, dc = self.setup_concentrator('DC0001')
        dc.clock_offset = 3 * 86400.0  # three days ahead
        drifting = dc.meters[0].materialise(self.sim.clock)
        punctual = dc.meters[1].materialise(self.sim.clock)
        # 10 minutes and 20 seconds off the head-end's clock, the one the
        # concentrator takes (the simulator's true time is ahead of it by
        # what the tests advanced).
        headend_offset = dt.datetime.now(dt.UTC).timestamp() - self.sim.clock.time()
        drifting.state.clock_offset_s = headend_offset + 600.0
        punctual.state.clock_offset_s = headend_offset + 20.0
        order = self.order(concentrator, 'time_sync', meters[:2], threshold_s=60)

        order = self.send(order)
        self.assertEqual(order.state, 'working', order.message)
        # Set at arrival, to the time the order carried (its sending).
        self.assertAlmostEqual(
            dc.dc_time(), dt.datetime.now(dt.UTC).timestamp(), delta=5
        )
        order = self.deliver(order, 'DC0001')
        self.assertEqual(order.state, 'done', order.message)
        outcome = self.outcomes(order)
        self.assertEqual(outcome[meters[0].serial][0], 'ok')
        self.assertIn('clock set', outcome[meters[0].serial][1])
        self.assertIn('within 60 s', outcome[meters[1].serial][1])
        # The meter's clock moved to the concentrator's.
        self.assertAlmostEqual(drifting.state.clock_offset_s, dc.clock_offset, delta=5)
        self.assertAlmostEqual(punctual.state.clock_offset_s, headend_offset + 20.0)

    @with_company
    def test_meter_add_then_remove_update_both_directories(self):
        "MeterAdd approves head-end entries into the DCU; MeterRemove removes"
        Entry = Pool().get('prepaid.concentrator.directory')
        concentrator, meters, dc = self.setup_concentrator('DC0002', 'pending')
        fm = dc.meters[1]
        fm.in_directory = fm.approved = False  # not approved yet
        (entry,) = Entry.search([('meter', '=', meters[1].id)])

        add = self.send(self.order(concentrator, 'meter_add', meters[1:2]))
        self.assertEqual(add.state, 'working', add.message)
        add = self.deliver(add, 'DC0002')
        self.assertEqual(add.state, 'done', add.message)
        self.assertEqual(self.outcomes(add)[fm.meter_id][0], 'ok')
        self.assertTrue(fm.in_directory and fm.approved)
        self.assertEqual(Entry(entry.id).approval, 'approved')

        remove = self.send(self.order(concentrator, 'meter_remove', meters[1:2]))
        remove = self.deliver(remove, 'DC0002')
        self.assertEqual(remove.state, 'done', remove.message)
        self.assertFalse(fm.in_directory)
        self.assertEqual(Entry(entry.id).status, 'removed')
        # The others were not touched.
        self.assertTrue(dc.meters[0].in_directory)
        self.assertEqual(
            {e.status for e in Entry.search([('id', '!=', entry.id)])}, {'joined'}
        )

    @with_company
    def test_the_reading_schedules_become_the_collection_plan(self):
        "Send Collection Plan (a Metering Engineer): the schedules' tasks"
        pool = Pool()
        Group = pool.get('prepaid.headend.meter_group')
        Schedule = pool.get('prepaid.headend.schedule')
        Meter = pool.get('prepaid.meter')
        Concentrator = pool.get('prepaid.concentrator')
        Order = pool.get('prepaid.concentrator.order')
        concentrator, meters, dc = self.setup_concentrator('DC0003')
        (group,) = Group.create([{'name': 'Behind DC0003'}])
        Meter.write(meters, {'hes_group': group.id})
        Schedule.create(
            [
                {
                    'name': 'Daily',
                    'group': group.id,
                    'frequency': 'daily',
                    'read_registers': True,
                    'profile_hours': 24,
                    'read_events': False,
                },
                {
                    'name': 'Events',
                    'group': group.id,
                    'frequency': 'interval',
                    'interval_minutes': 60,
                    'read_registers': False,
                    'profile_hours': 0,
                    'read_events': True,
                    'read_billing': True,
                },
            ]
        )
        engineer = create_user('plan-engineer', 'engineer')
        with acting_as(engineer):
            Concentrator.send_collection_plan([Concentrator(concentrator.id)])
        (order,) = Order.search([('concentrator', '=', concentrator.id)])
        self.assertEqual(order.kind, 'collection_plan')
        self.assertEqual(order.state, 'working', order.message)
        expected = (
            Task(RT.DAILY, P.DAY, True, D.FILE),
            Task(RT.MONTHLY, P.MONTH, True, D.FILE),
            Task(RT.LOAD_PROFILE, P.DAY, True, D.FILE),
            Task(RT.METER_EVENTS, P.HOUR, True, D.SOAP),
            *HOUSEKEEPING,
        )
        order = self.deliver(order, 'DC0003')
        self.assertEqual(order.state, 'done', order.message)
        self.assertEqual(dc.plan, expected)
        self.assertIn('load_profile P1D by file', order.plan)

    @with_company
    def test_buttons_for_metering_engineers_and_administrators_only(self):
        "Synchronise Clock: refused to a Manager and a Cashier, an Engineer may"
        pool = Pool()
        Concentrator = pool.get('prepaid.concentrator')
        Order = pool.get('prepaid.concentrator.order')
        concentrator, _, dc = self.setup_concentrator('DC0004')
        dc.clock_offset = -7200.0
        plan = dc.plan
        for role in ('manager', 'cashier'):
            user = create_user(f'button-{role}', role)
            for button in (Concentrator.sync_clock, Concentrator.send_collection_plan):
                with self.subTest(role=role, button=button.__name__):
                    with acting_as(user), self.assertRaises(AccessButtonError):
                        button([Concentrator(concentrator.id)])
        self.assertEqual(Order.search_count([]), 0)
        self.assertEqual(dc.clock_offset, -7200.0)
        self.assertEqual(dc.plan, plan)

        engineer = create_user('button-engineer', 'engineer')
        with acting_as(engineer):
            Concentrator.sync_clock([Concentrator(concentrator.id)])
        (order,) = Order.search([])
        self.assertEqual((order.kind, order.state), ('time_sync', 'working'))
        self.assertEqual(order.threshold_s, 10)  # the configured threshold
        self.assertAlmostEqual(
            dc.dc_time(), dt.datetime.now(dt.UTC).timestamp(), delta=5
        )

    @with_company
    def test_orders_outside_their_window_are_reported_expired(self):
        "Arrived after its end: expired at once; meters unreached: later"
        concentrator, meters, dc = self.setup_concentrator('DC0005')
        late = self.order(
            concentrator,
            'meter_remove',
            meters[:1],
            window_end=dcu.now() - dt.timedelta(minutes=1),
        )
        late = self.send(late)
        self.assertEqual(late.state, 'expired')
        self.assertIn('ended', late.message)
        self.assertTrue(dc.meters[0].in_directory)

        # A meter that stays unreachable until the window closes.
        dc.force_offline(dc.meters[2].meter_id, 3600)
        relay = self.order(
            concentrator,
            'relay',
            meters[2:],
            action='disconnect',
            window_end=dcu.now() + dt.timedelta(minutes=16),
        )
        relay = self.send(relay)
        self.assertEqual(relay.state, 'working', relay.message)
        relay = self.deliver(relay, 'DC0005', minutes=20)
        self.assertEqual(relay.state, 'expired', relay.message)
        self.assertEqual(self.outcomes(relay)[meters[2].serial][0], 'expired')
        self.assertIsNone(meters[2].hes_relay_state)

    @with_company
    def test_bad_orders_are_refused_before_anything_is_sent(self):
        "Clear errors, nothing sent, the order a draft"
        Entry = Pool().get('prepaid.concentrator.directory')
        concentrator, meters, dc = self.setup_concentrator('DC0006')
        sent_before = len(dc._requests)

        with self.assertRaisesRegex(UserError, 'zero or more seconds'):
            self.order(concentrator, 'time_sync', threshold_s=-5)
        without_lines = self.order(concentrator, 'meter_add')
        with self.assertRaisesRegex(UserError, 'names no meter'):
            self.send(without_lines)
        # A meter add needs the meter's G3 address from the directory.
        (entry,) = Entry.search([('meter', '=', meters[0].id)])
        Entry.write([entry], {'pda': None})
        no_pda = self.order(concentrator, 'meter_add', meters[:1])
        with self.assertRaisesRegex(UserError, 'G3 address'):
            self.send(no_pda)
        # No reading schedule reads its meters: no plan to send.
        no_plan = self.order(concentrator, 'collection_plan')
        with self.assertRaisesRegex(UserError, 'No active reading schedule'):
            self.send(no_plan)
        # A relay order needs its action.
        with self.assertRaises(UserError):
            self.order(concentrator, 'relay', meters[:1])

        Order = Pool().get('prepaid.concentrator.order')
        for record in (without_lines, no_pda, no_plan):
            record = Order(record.id)
            self.assertEqual(record.state, 'draft')
            self.assertIsNone(record.id_pet)
        self.assertEqual(len(dc._requests), sent_before)

    @with_company
    def test_every_status_updates_orders_of_every_kind(self):
        "The reported status sets the order; the outcomes its lines"
        pool = Pool()
        Order = pool.get('prepaid.concentrator.order')
        Entry = pool.get('prepaid.concentrator.directory')
        concentrator, meters, dc = self.setup_concentrator('DC0007', 'pending')
        ids = [fm.meter_id for fm in dc.meters]
        S = m.RequestStatus

        def report(order, status, *outcomes):
            # As sent: the head-end's service takes the concentrator's update.
            if order.id_pet is None:
                Order.write([order], {'state': 'working', 'id_pet': order.id})
            update = m.RequestStatusUpdate(
                order.id, 'DC0007', status, f"{status}", tuple(outcomes)
            )
            TrytonHeadEnd().request_status(update)
            return Order(order.id)

        values = {'action': 'disconnect', 'threshold_s': 30}
        states = {
            S.OK: 'done',
            S.WORKING: 'working',
            S.PARTIAL: 'partial',
            S.EXPIRED: 'expired',
            S.METER_TIMEOUT: 'failed',
            S.UNKNOWN_METER: 'failed',
            S.MALFORMED: 'failed',
        }
        for kind in ('relay', 'time_sync', 'meter_add', 'meter_remove'):
            for status, state in states.items():
                with self.subTest(kind=kind, status=status):
                    order = self.order(
                        concentrator, kind, meters, **values, reason=f'{kind}'
                    )
                    order = report(
                        order, status, m.MeterOutcome(ids[0], status, 'first')
                    )
                    self.assertEqual(order.state, state)
                    self.assertEqual(order.message, str(status))
                    self.assertEqual(
                        [line.status for line in order.lines],
                        [status.value, None, None],
                    )
        plan = self.order(concentrator, 'collection_plan')
        self.assertEqual(report(plan, S.MALFORMED).state, 'failed')

        # Only a meter whose outcome is ok takes what was ordered.
        add = self.order(concentrator, 'meter_add', meters)
        add = report(
            add,
            S.PARTIAL,
            m.MeterOutcome(ids[0], S.OK),
            m.MeterOutcome(ids[1], S.METER_TIMEOUT),
            m.MeterOutcome(ids[2], S.UNKNOWN_METER),
        )
        self.assertEqual(add.state, 'partial')
        approval = {e.meter_id: e.approval for e in Entry.search([])}
        self.assertEqual(approval, dict(zip(ids, ['approved', 'pending', 'pending'])))
        # (The first meter was removed by an ok above.)
        remove = self.order(concentrator, 'meter_remove', meters)
        remove = report(remove, S.MALFORMED, m.MeterOutcome(ids[1], S.MALFORMED))
        status = {e.meter_id: e.status for e in Entry.search([])}
        self.assertEqual(status, dict(zip(ids, ['removed', 'joined', 'joined'])))
