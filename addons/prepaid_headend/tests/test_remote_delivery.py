"""A sale never takes money without delivering (database tests).

1. A meter that cannot receive what the sale would send is refused at the
   quote and at the vend, with the reason and the fix, and nothing is
   written: a smart meter without a channel, without its keys or without STS
   data; a keypad meter without STS data or without a vending key for it.
2. A smart meter's remote credit is dispatched by a queue task pushed in the
   vend's transaction (run here as trytond runs it after the commit without
   a worker); the wizard and the receipt say "confirmed at HH:MM".
3. A meter that does not answer: the delivery is "failed" with an automatic
   retry (cron), and once the retries run out an alarm (event 231 in the
   meter's alarms, published over MQTT, and a notification to the Vending
   Managers); the way forward is the token for manual entry where the meter
   has a keypad, else a refund under the cancellation policy.  A meter that
   refuses the token raises the alarm at once.
"""

from __future__ import annotations

import datetime as dt
import unittest
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.prepaid_headend import command as command_module
from trytond.modules.prepaid_headend import mqtt_bridge
from trytond.modules.prepaid_headend import reading as rd
from trytond.modules.prepaid_headend.tests.test_headend import (
    AK,
    DECODER_KEY,
    EK,
    free_port_block,
)
from trytond.modules.prepaid_sts.tests import tools as sts_tools
from trytond.modules.prepaid_sts.tests.tools import create_user
from trytond.modules.prepaid_vending.delivery import vend_delivery
from trytond.modules.prepaid_vending.receipt import receipt_text
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.modules.prepaid_vending.tests.vend_fixtures import (
    new_meter,
    new_point,
    open_session,
    with_vending,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module

from simulators.meter import MeterConfig, MeterSimulator
from simulators.meter.testing import FakeClock

STS = {
    'sts_pan': sts_tools.PAN,
    'sts_sgc': '201457',
    'sts_krn': 1,
    'sts_tariff_index': '01',
    'sts_key_type': '2',
    'sts_base_date': '14',
    'sts_ea': '07',
}
D = Decimal


def written_counts() -> dict[str, int]:
    "Rows of everything a vend writes"
    pool = Pool()
    return {
        name: pool.get(name).search_count([])
        for name in (
            'prepaid.vend',
            'prepaid.vend.line',
            'prepaid.meter.command',
            'prepaid.sts.token',
            'account.move',
            'ir.queue',
        )
    }


def run_queue() -> int:
    """Run the queued tasks as trytond does after a commit without a worker
    (a task may queue more); returns how many ran, not counting the booking
    task a vend may push (at most one per interval and process: whether one
    is pushed depends on the tests run before)."""
    Queue = Pool().get('ir.queue')
    count = 0
    while tasks := Queue.search([('finished_at', '=', None)], order=[('id', 'ASC')]):
        for task in tasks:
            task.run()
            count += task.name != 'prepaid_booking'
    return count


class RemoteDeliveryTestCase(unittest.TestCase):
    "Refused before payment; delivery status, retry and alarm"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('prepaid_headend')
        cls._previous_key = sts_tools.set_master_key()

    @classmethod
    def tearDownClass(cls):
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    def setUp(self):
        # A new simulated meter per test: each test's database rolls back,
        # and with it the head-end's invocation counter, which a meter that
        # remembers the last one would refuse as a replay.
        super().setUp()
        base = free_port_block(2)
        self.closed_port = base + 1  # nothing listens there
        self.sim = MeterSimulator(
            [MeterConfig(index=0, port=base, seed=7, decoder_key=DECODER_KEY)],
            clock=FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0)),
        ).start()
        self.addCleanup(self.sim.stop)

    def commission(self, meter, port=None, keys=True, sts=True):
        "Give meter a channel (to the simulator), its keys and its STS data"
        Meter = Pool().get('prepaid.meter')
        values = {
            'hes_host': '127.0.0.1',
            'hes_port': port or self.sim.port(0),
            'hes_auth': 'hls-gmac',
            'hes_client_address': 1,
            # Generous: on a loaded 2-core CI machine an HLS association
            # can take seconds; the failure tests use a closed port.
            'hes_timeout': 15.0,
        }
        if sts:
            values.update(STS)
        Meter.write([meter], values)
        if keys:
            Meter.write(
                [meter],
                {
                    'hes_block_cipher_key': EK.hex(),
                    'hes_authentication_key': AK.hex(),
                },
            )
        return Meter(meter.id)

    def configure(self):
        Configuration = Pool().get('prepaid.configuration')
        config = Configuration(1)
        config.hes_retries = 0
        config.save()
        sts_tools.create_vending_key()

    # --- 1. refused before payment ---------------------------------------
    @with_company
    def test_meter_that_cannot_receive_is_refused_before_payment(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Meter = pool.get('prepaid.meter')
        Wizard = pool.get('prepaid.vend.wizard', type='wizard')
        with with_vending() as env:
            open_session(env)
            before = written_counts()

            def refused(meter, *reasons):
                for attempt in (
                    lambda: Vend.trial(meter, tender=D('100.00')),
                    lambda: Vend.vend(
                        meter, D('100.00'), 'cash', env.sales_point, f'k{meter.id}'
                    ),
                ):
                    with self.assertRaises(UserError) as ctx:
                        attempt()
                    message = str(ctx.exception)
                    self.assertIn('nothing was charged', message)
                    for reason in reasons:
                        self.assertIn(reason, message)
                self.assertEqual(written_counts(), before)

            # A smart meter as the demo had them: no channel, no STS data.
            refused(
                env.meter,
                'no communication channel',
                'enter its host and port',
                'cannot receive STS tokens',
                'Meter PAN',
            )
            # A channel but no keys for its HLS-GMAC association.
            meter = self.commission(env.meter, keys=False, sts=False)
            refused(meter, 'block cipher key', 'authentication key', 'Meter PAN')
            # Keys and STS data, but no vending key for its SGC/KRN.
            meter = self.commission(env.meter)
            refused(meter, 'No active vending key of Dunder Mifflin for SGC 201457')
            sts_tools.create_vending_key()
            self.assertGreater(Vend.trial(meter, tender=D('100.00')).units_kwh, 0)

            # The wizard refuses it when the meter is picked (no money yet).
            keypad = new_meter(
                '04000000077', new_point(env, 'SP-KP'), kind='sts_keypad'
            )
            session_id, _, _ = Wizard.create()
            Wizard.execute(session_id, {}, 'start')
            with self.assertRaisesRegex(UserError, 'fill in .*Meter PAN'):
                Wizard.execute(
                    session_id,
                    {'start': {'search': keypad.serial, 'meter': keypad.id}},
                    'select',
                )
            refused(keypad, 'cannot receive STS tokens')
            Meter.write([keypad], {**STS, 'sts_pan': '600727000000000017'})
            self.assertTrue(Vend.trial(Meter(keypad.id), tender=D('100.00')))
            # A blocked meter: the reason and who lifts it.
            Meter.write(
                [keypad], {'vend_blocked': True, 'vend_blocked_reason': 'tamper'}
            )
            with self.assertRaisesRegex(UserError, 'tamper.*lifts the block'):
                Vend.trial(Meter(keypad.id), tender=D('100.00'))
            self.assertEqual(written_counts(), before)

    # --- 2. dispatched after the vend, confirmed on screen ---------------
    @with_company
    def test_remote_credit_dispatched_and_confirmed(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Command = pool.get('prepaid.meter.command')
        Queue = pool.get('ir.queue')
        Wizard = pool.get('prepaid.vend.wizard', type='wizard')
        with with_vending() as env:
            self.configure()
            meter = self.commission(env.meter)
            open_session(env)
            state = self.sim.meter(0)
            credit_before = state.credit_wh
            # The sale form's quote as the tender is entered.
            Sale = pool.get('prepaid.vend.wizard.sale')
            sale = Sale(meter=meter, tender=D('100.00'), requested_kwh=None)
            sale.on_change_tender()
            self.assertIsNone(sale.quote_message)
            self.assertGreater(sale.units_kwh, 0)
            session_id, _, _ = Wizard.create()
            Wizard.execute(session_id, {}, 'start')
            Wizard.execute(session_id, {'start': {'search': meter.serial}}, 'select')
            result = Wizard.execute(
                session_id,
                {'sale': {'payment_method': 'cash', 'tender': D('100.00')}},
                'issue',
            )
            (vend,) = Vend.search([])
            values = result['view']['defaults']
            # Before the commit: queued, with a task for right after it.
            self.assertEqual(values['delivery_state'], 'pending')
            self.assertEqual(values['tokens'], '')  # no token to key in
            (task,) = Queue.search([('name', '=', 'headend')])
            self.assertEqual(task.data['method'], 'hes_dispatch')

            self.assertEqual(run_queue(), 2)  # dispatch, then the token job
            (command,) = Command.search([('vend', '=', vend.id)])
            self.assertEqual(command.state, 'accepted', command.last_error)
            self.assertAlmostEqual(
                state.credit_wh - credit_before,
                float(vend.units_kwh) * 1000,
                delta=1,
            )
            delivery = vend_delivery(Vend(vend.id))
            self.assertEqual(delivery.state, 'confirmed')
            when = f'{command.done_at:%H:%M}'  # company time = UTC here
            self.assertEqual(
                delivery.status, f'credit sent to meter, confirmed at {when}'
            )
            # The cashier presses Check Delivery: confirmed on screen.
            refreshed = Wizard.execute(session_id, {}, 'refresh')
            values = refreshed['view']['defaults']
            self.assertEqual(values['delivery_state'], 'confirmed')
            self.assertIn(f'confirmed at {when}', values['delivery_display'])
            self.assertRegex(
                receipt_text(Vend(vend.id)),
                rf'(?m)^Delivery\n  credit sent to meter, confirmed at {when}$',
            )

    @with_company
    def test_job_of_a_lost_worker_failed_then_credit_sent_again(self):
        """A worker that dies mid-job (trytond's queue never runs its task
        again) leaves the job running: the cron fails it once its batch's
        time is surely over, and the remote credit is sent again."""
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Command = pool.get('prepaid.meter.command')
        Job = pool.get('prepaid.headend.job')
        Queue = pool.get('ir.queue')
        with with_vending() as env:
            self.configure()
            meter = self.commission(env.meter)
            open_session(env)
            state = self.sim.meter(0)
            credit_before = state.credit_wh
            vend = Vend.vend(meter, D('100.00'), 'cash', env.sales_point, 'lw1')
            (dispatch,) = Queue.search([('name', '=', 'headend')])
            dispatch.run()
            (command,) = Command.search([('vend', '=', vend.id)])
            (job,) = Job.search([('command', '=', command.id)])
            # The worker takes the task, claims the job, and dies.
            Queue.delete(Queue.search([('finished_at', '=', None)]))
            Job._claim([job.id])
            job = Job(job.id)
            self.assertEqual(job.state, 'running')

            # Within the batch's time (2 rounds of the 120 s deadline + 5 min).
            soon = job.started_at + dt.timedelta(minutes=8)
            self.assertEqual(Job.fail_lost(now=soon), [])
            self.assertEqual(Job(job.id).state, 'running')
            later = job.started_at + dt.timedelta(minutes=10)
            self.assertEqual(Job.fail_lost(now=later), [job])
            job = Job(job.id)
            self.assertEqual((job.state, job.error_kind), ('failed', 'lost'))
            self.assertIn('worker stopped', job.last_error)
            self.assertEqual(Job.fail_lost(now=later), [])  # once only
            command = Command(command.id)
            self.assertEqual(command.state, 'failed')
            self.assertIsNotNone(command.hes_retry_at)

            # The retry delivers the credit: nothing paid for is lost.
            retry = command.hes_retry_at + dt.timedelta(seconds=1)
            Job.execute(Command.hes_dispatch(now=retry))
            command = Command(command.id)
            self.assertEqual(command.state, 'accepted', command.last_error)
            self.assertAlmostEqual(
                state.credit_wh - credit_before,
                float(vend.units_kwh) * 1000,
                delta=1,
            )

    # --- 3. no answer: retry, then alarm ---------------------------------
    @with_company
    def test_failed_delivery_retried_then_alarm(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Command = pool.get('prepaid.meter.command')
        Event = pool.get('prepaid.headend.event')
        Notification = pool.get('res.notification')
        Configuration = pool.get('prepaid.configuration')
        with with_vending() as env:
            self.configure()
            manager = create_user('manager-delivery', 'manager')
            meter = self.commission(env.meter, port=self.closed_port)
            open_session(env)
            vend = Vend.vend(meter, D('100.00'), 'cash', env.sales_point, 'nf1')
            run_queue()
            (command,) = Command.search([('vend', '=', vend.id)])
            self.assertEqual(command.state, 'failed')
            self.assertIsNotNone(command.hes_retry_at)
            delivery = vend_delivery(Vend(vend.id))
            self.assertEqual(delivery.state, 'failed')
            self.assertTrue(delivery.status.startswith('failed: connection'))
            self.assertIn('Automatic retry at', delivery.way_forward)
            self.assertEqual(Event.search_count([('code', '=', 231)]), 0)
            # A command sent before is never "surely undelivered".
            config = Configuration(1)
            with self.assertRaisesRegex(UserError, 'cannot be cancelled'):
                Vend(vend.id).check_cancel_policy(config.cancel_policy)

            # The cron sends it again once the retry is due (not before).
            self.assertEqual(Command.hes_dispatch(), [])
            later = command.hes_retry_at + dt.timedelta(seconds=1)
            jobs = Command.hes_dispatch(now=later)
            self.assertEqual([j.command for j in jobs], [command])
            Pool().get('prepaid.headend.job').execute(jobs)
            command = Command(command.id)
            self.assertEqual((command.state, command.attempts), ('failed', 2))

            # The last send allowed: no retry, the alarm.
            Command.write([command], {'attempts': command_module.CREDIT_RETRY_LIMIT})
            Command.write([command], {'hes_retry_at': later})
            Pool().get('prepaid.headend.job').execute(
                Command.hes_dispatch(now=later + dt.timedelta(seconds=1))
            )
            command = Command(command.id)
            self.assertEqual(command.state, 'failed')
            self.assertIsNone(command.hes_retry_at)
            (event,) = Event.search([('code', '=', rd.DELIVERY_FAILED_CODE)])
            self.assertEqual(event.meter, meter)
            self.assertIn(vend.number, event.description)
            (notice,) = Notification.search([('user', '=', manager.id)])
            self.assertIn(meter.serial, notice.label)
            self.assertEqual(notice.model, 'prepaid.meter.command')
            delivery = vend_delivery(Vend(vend.id))
            self.assertIn(
                'refunded under the cancellation policy', delivery.way_forward
            )
            self.assertEqual(delivery.tokens, ())
            # The alarm goes out over MQTT like the meter's own alarms.
            communication = pool.get('prepaid.headend.communication')(1)
            communication.mqtt_enabled = True
            communication.save()
            self.assertEqual(mqtt_bridge.queue_alarms([event]), 1)

            # The meter has a keypad (a customer interface unit): the
            # token for manual entry is on the receipt.
            meter.keypad = True
            meter.save()
            delivery = vend_delivery(Vend(vend.id))
            self.assertIn("meter's keypad", delivery.way_forward)
            (digits,) = command.data['tokens']
            self.assertEqual(delivery.tokens, (digits,))
            text = receipt_text(Vend(vend.id))
            self.assertIn('Token for manual entry', text)
            self.assertIn(' '.join(digits[i : i + 4] for i in range(0, 20, 4)), text)

    @with_company
    def test_token_refused_by_meter_raises_alarm(self):
        pool = Pool()
        Command = pool.get('prepaid.meter.command')
        Event = pool.get('prepaid.headend.event')
        with with_vending() as env:
            self.configure()
            meter = self.commission(env.meter)
            # A token the meter has seen: refused (replay), never retried.
            first = Command.queue(meter, 'remote_credit', {'kwh': '2'})
            run_queue()
            first = Command(first.id)
            self.assertEqual(first.state, 'accepted', first.last_error)
            (token,) = first.data['tokens']
            replay = Command.queue(meter, 'remote_credit', {'token': token})
            run_queue()
            replay = Command(replay.id)
            self.assertEqual(replay.state, 'rejected')
            self.assertIsNone(replay.delivery_retry_at())
            self.assertEqual(
                Event.search_count([('code', '=', rd.DELIVERY_FAILED_CODE)]), 1
            )
