"""Head-end models end to end against the meter simulator over real TCP.

The simulator runs in a background thread on free 127.0.0.1 ports with a
settable clock (no sleeping).  Queued tasks do not run inside a test
transaction, so the tests call ``Job.execute`` on the jobs a button, the cron
method or the command dispatcher created, as a queue worker would.
"""

from __future__ import annotations

import datetime as dt
import itertools
import socket
import threading
import unittest
import uuid
from decimal import Decimal
from unittest.mock import patch

from lxml import etree
from trytond import backend
from trytond.bus import Bus
from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError, RequiredValidationError
from trytond.model.modelview import AccessButtonError
from trytond.modules.prepaid_headend.channel import DatabaseCounterStore
from trytond.modules.prepaid_headend.dlms import operations as ops
from trytond.modules.prepaid_sts.engine import derive_decoder_key
from trytond.modules.prepaid_sts.tests import tools as sts_tools
from trytond.modules.prepaid_sts.tests.tools import create_user
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.modules.prepaid_vending.tests.vend_fixtures import new_point, with_vending
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module
from trytond.transaction import Transaction

from simulators.meter import MeterConfig, MeterSimulator
from simulators.meter.testing import FakeClock

UTC = dt.UTC
OTHER_EK = bytes.fromhex("0F0E0D0C0B0A09080706050403020100")
OTHER_AK = bytes.fromhex("DFDEDDDCDBDAD9D8D7D6D5D4D3D2D1D0")
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
# Decoder key of the STS test meter: DKGA04 test vending key of STS 531-1-07
# (public vectors, see prepaid_sts/tests/tools.py) for PAN 600727000000000009,
# SGC 201457, TI 01, KRN 1, KT 2, base date 2014, EA 07.
DECODER_KEY = derive_decoder_key(
    bytes.fromhex(sts_tools.VK_DKGA04),
    "04",
    sts_tools.PAN,
    2,
    "201457",
    "01",
    1,
    "14",
    "07",
)
# Simulator fleet: index -> role.
OK_WRAPPER, OK_HDLC, WRONG_KEYS, DRIFTING, FIRMWARE = 0, 1, 2, 3, 4
# Each test starts the meters' invocation counters above everything used
# before: the simulator remembers the last counter across rolled-back tests.
_FLOORS = itertools.count(1_000, 50_000)


def free_port_block(count: int) -> int:
    for base in range(33000, 40000, 89):
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


class HeadendTestCase(unittest.TestCase):
    "Head-end against simulated meters"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module("prepaid_headend")
        cls._previous_key = sts_tools.set_master_key()
        base = free_port_block(5)
        cls.clock = FakeClock(dt.datetime.now(UTC).replace(microsecond=0))
        configs = [
            MeterConfig(index=OK_WRAPPER, port=base, seed=1, decoder_key=DECODER_KEY),
            # 12 monthly billing captures need more energy than the default
            # 1.5 MWh at 1 kW (the backfill would go negative).
            MeterConfig(
                index=OK_HDLC,
                port=base + 1,
                framing="hdlc",
                seed=2,
                initial_energy_wh=20_000_000,
            ),
            MeterConfig(
                index=WRONG_KEYS,
                port=base + 2,
                block_cipher_key=OTHER_EK,
                authentication_key=OTHER_AK,
            ),
            MeterConfig(index=DRIFTING, port=base + 3, clock_offset_s=120.0),
            MeterConfig(index=FIRMWARE, port=base + 4, framing="hdlc", seed=5),
        ]
        cls.sim = MeterSimulator(configs, clock=cls.clock).start()
        # A "meter" that accepts the TCP connection and never answers.
        cls.silent = socket.socket()
        cls.silent.bind(("127.0.0.1", 0))
        cls.silent.listen(8)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        cls.silent.close()
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    # --- fixtures -----------------------------------------------------------
    def configure(self, retries: int = 0) -> None:
        Configuration = Pool().get("prepaid.configuration")
        config = Configuration(1)
        config.hes_retries = retries
        config.hes_concurrency = 10
        config.save()

    def meter(self, index: int | None, serial: str | None = None, **values):
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Counter = pool.get("prepaid.headend.invocation_counter")
        if index is None:  # the silent endpoint
            port, framing = self.silent.getsockname()[1], "wrapper"
        else:
            port = self.sim.port(index)
            framing = self.sim.configs[index].framing
        values.setdefault("hes_timeout", 5.0)
        meter = Meter(
            serial=serial or f"SIM{index}",
            kind="smart_prepaid",
            hes_host="127.0.0.1",
            hes_port=port,
            hes_framing=framing,
            hes_auth="hls-gmac",
            hes_client_address=1,
            **values,
        )
        meter.save()
        Meter.write(
            [meter],
            {"hes_block_cipher_key": EK.hex(), "hes_authentication_key": AK.hex()},
        )
        Counter.set_floor(meter.hes_counter_key, next(_FLOORS))
        return meter

    def run_jobs(self, jobs):
        Job = Pool().get("prepaid.headend.job")
        Job.execute(jobs)
        return Job.browse([j.id for j in jobs])

    def pending_jobs(self, meter):
        Job = Pool().get("prepaid.headend.job")
        return Job.search([("meter", "=", meter.id), ("state", "=", "pending")])

    def user(self, login: str, *groups: str):
        return create_user(login, *groups)

    # --- reading ----------------------------------------------------------------
    @with_company
    def test_schedule_run_reads_batch_with_failures(self):
        "Cron run: readings stored; wrong keys and timeout recorded per meter"
        pool = Pool()
        Group = pool.get("prepaid.headend.meter_group")
        Schedule = pool.get("prepaid.headend.schedule")
        Register = pool.get("prepaid.headend.register")
        Interval = pool.get("prepaid.headend.interval")
        Counter = pool.get("prepaid.headend.invocation_counter")
        self.configure()
        group = Group(name="Feeder 1")
        group.save()
        meters = [
            self.meter(OK_WRAPPER, hes_group=group),
            self.meter(OK_HDLC, hes_group=group),
            self.meter(WRONG_KEYS, hes_group=group),
            self.meter(None, "SILENT", hes_group=group, hes_timeout=0.3),
        ]
        floor = Counter.peek(meters[0].hes_counter_key)
        schedule = Schedule(
            name="Every 30 min", group=group, frequency="interval", interval_minutes=30
        )
        schedule.save()

        jobs = Schedule.run_due()
        self.assertEqual(len(jobs), 4)
        self.assertEqual({j.state for j in jobs}, {"pending"})
        self.assertIsNotNone(schedule.next_run)
        self.assertEqual(Schedule.run_due(), [])  # not due again yet

        jobs = self.run_jobs(jobs)
        by_serial = {j.meter.serial: j for j in jobs}
        for serial in ("SIM0", "SIM1"):
            job = by_serial[serial]
            self.assertEqual(job.state, "done", job.last_error)
            self.assertEqual(job.attempts, 1)
            readings = Register.search([("meter", "=", job.meter.id)])
            self.assertEqual(len(readings), 5)
            energy = next(r for r in readings if r.obis == ops.ENERGY_IMPORT)
            self.assertEqual(energy.unit, "Wh")
            self.assertGreater(energy.value, 1_000_000)
            intervals = Interval.search(
                [("meter", "=", job.meter.id), ("obis", "=", ops.ENERGY_IMPORT)]
            )
            self.assertIn(len(intervals), (96, 97))  # 24 h of 15-min captures
            self.assertTrue(job.meter.hes_online)
            self.assertIsNotNone(job.meter.hes_last_contact)
        wrong = by_serial["SIM2"]
        self.assertEqual(wrong.state, "failed")
        self.assertEqual(wrong.error_kind, "authentication")
        self.assertIn("authentication", wrong.meter.hes_last_error)
        silent = by_serial["SILENT"]
        self.assertEqual(silent.state, "failed")
        self.assertEqual(silent.error_kind, "timeout")
        self.assertFalse(silent.meter.hes_online)
        # The ciphered frames took their counters from the database table.
        self.assertGreater(Counter.peek(meters[0].hes_counter_key), floor)

    @with_company
    def test_button_jobs_notify_the_web_client_that_asked(self):
        "The outcome reaches the client that pressed the button, not cron's jobs"
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Schedule = pool.get("prepaid.headend.schedule")
        Group = pool.get("prepaid.headend.meter_group")
        self.configure()
        group = Group(name="Notified")
        group.save()
        meter = self.meter(OK_WRAPPER, hes_group=group)
        silent = self.meter(None, "SILENT", hes_timeout=0.3)
        published = []

        def publish(channel, message):
            published.append((channel, message))

        with patch.object(Bus, "publish", publish):
            with Transaction().set_context(client="sao-1234"):
                Meter.hes_read_now([meter, silent])
            self.run_jobs(self.pending_jobs(meter) + self.pending_jobs(silent))
            Schedule(
                name="Hourly", group=group, frequency="interval", interval_minutes=60
            ).save()
            self.run_jobs(Schedule.run_due())  # cron's jobs: nobody to tell
        self.assertEqual({c for c, _ in published}, {"client:sao-1234"})
        by_title = {m["title"]: m for _, m in published}
        self.assertEqual(set(by_title), {"SIM0: Read done", "SILENT: Read failed"})
        self.assertIn("Meter clock", by_title["SIM0: Read done"]["body"])
        self.assertEqual(by_title["SILENT: Read failed"]["priority"], 3)
        self.assertEqual(by_title["SIM0: Read done"]["type"], "notification")

    @with_company
    def test_on_demand_read_then_reread_is_idempotent(self):
        "The button queues a job; its result shows on the meter; re-reads add nothing"
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Interval = pool.get("prepaid.headend.interval")
        Billing = pool.get("prepaid.headend.billing")
        Event = pool.get("prepaid.headend.event")
        self.configure()
        meter = self.meter(OK_HDLC)

        Meter.hes_read_now([meter])
        (job,) = self.pending_jobs(meter)
        self.run_jobs([job])
        meter = Meter(meter.id)
        self.assertIn("done", meter.hes_last_result)
        self.assertIn("Load profile", meter.hes_last_result)
        self.assertEqual(meter.firmware_version, "FW-1.0.0")
        intervals = Interval.search_count([("meter", "=", meter.id)])
        billing = Billing.search_count([("meter", "=", meter.id)])
        events = Event.search_count([("meter", "=", meter.id)])
        self.assertEqual(billing, 12 * 2)  # 12 months x (energy, max demand)

        Meter.hes_read_now([meter])  # same meter time: everything is known
        self.run_jobs(self.pending_jobs(meter))
        self.assertEqual(Interval.search_count([("meter", "=", meter.id)]), intervals)
        self.assertEqual(Billing.search_count([("meter", "=", meter.id)]), billing)
        self.assertEqual(Event.search_count([("meter", "=", meter.id)]), events)

        self.clock.advance(minutes=15)  # one more capture
        Meter.hes_read_now([meter])
        self.run_jobs(self.pending_jobs(meter))
        # energy + power of the new capture only
        self.assertEqual(
            Interval.search_count([("meter", "=", meter.id)]), intervals + 2
        )
        newest = Interval.search(
            [("meter", "=", meter.id), ("obis", "=", ops.ENERGY_IMPORT)],
            order=[("timestamp", "DESC")],
            limit=1,
        )[0]
        self.assertIsNotNone(newest.consumption)
        self.assertGreaterEqual(newest.consumption, 0)

    @with_company
    def test_clock_drift_corrected(self):
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Sync = pool.get("prepaid.headend.clock_sync")
        self.configure()
        meter = self.meter(DRIFTING)
        Meter.hes_sync_clock([meter])
        self.run_jobs(self.pending_jobs(meter))
        (sync,) = Sync.search([("meter", "=", meter.id)])
        self.assertGreater(sync.drift, 100)  # 120 s ahead (+ test time)
        self.assertTrue(sync.corrected)
        self.assertLess(abs(sync.drift_after), 5)
        meter_time = self.sim.meter(DRIFTING).meter_time()
        self.assertLess(abs((meter_time - dt.datetime.now(UTC)).total_seconds()), 5)

        # Within the threshold now: checked, recorded, not set again.
        Meter.hes_sync_clock([meter])
        self.run_jobs(self.pending_jobs(meter))
        latest = Sync.search([("meter", "=", meter.id)], order=[("id", "DESC")])[0]
        self.assertFalse(latest.corrected)

    # --- relay -----------------------------------------------------------------
    @with_company
    def test_engineer_disconnects_and_reconnects(self):
        pool = Pool()
        Relay = pool.get("prepaid.headend.relay")
        self.configure()
        meter = self.meter(OK_WRAPPER)
        engineer = self.user("engineer", "engineer")
        transaction = Transaction()
        for action, connected in [("disconnect", False), ("reconnect", True)]:
            with (
                transaction.set_user(engineer.id),
                transaction.set_context(_check_access=True),
            ):
                (operation,) = Relay.create(
                    [{"meter": meter.id, "action": action, "reason": "Tampering"}]
                )
                Relay.execute([operation])
            self.run_jobs(self.pending_jobs(meter))
            operation = Relay(operation.id)
            self.assertEqual(operation.state, "done", operation.error)
            self.assertEqual(operation.output_state, connected)
            self.assertEqual(
                operation.relay_state, "connected" if connected else "disconnected"
            )
            self.assertEqual(self.sim.meter(OK_WRAPPER).relay_connected, connected)
        self.assertEqual(len(Relay.search([("meter", "=", meter.id)])), 2)

    @with_company
    def test_meter_form_relay_buttons(self):
        "Connect / Disconnect on the meter queue a recorded relay operation"
        pool = Pool()
        Relay = pool.get("prepaid.headend.relay")
        Meter = pool.get("prepaid.meter")
        Notification = pool.get("res.notification")
        self.configure()
        meter = self.meter(OK_WRAPPER)
        engineer = self.user("engineer", "engineer")
        transaction = Transaction()
        for button, action, connected in [
            (Meter.hes_relay_disconnect, "disconnect", False),
            (Meter.hes_relay_connect, "reconnect", True),
        ]:
            with (
                transaction.set_user(engineer.id),
                transaction.set_context(_check_access=True),
            ):
                button([meter])
            (operation,) = Relay.search(
                [("meter", "=", meter.id), ("action", "=", action)]
            )
            self.assertEqual(operation.state, "queued")
            self.assertEqual(operation.user, engineer)
            self.assertTrue(operation.reason)
            (job,) = self.pending_jobs(meter)
            self.assertEqual(job.relay, operation)
            (notice,) = Notification.search(
                [("user", "=", engineer.id), ("records", "=", f"[{operation.id}]")]
            )
            self.assertIn(meter.serial, notice.label)
            self.run_jobs([job])
            self.assertEqual(Relay(operation.id).state, "done")
            self.assertEqual(self.sim.meter(OK_WRAPPER).relay_connected, connected)

    @with_company
    def test_meter_form_disconnect_asks_confirmation(self):
        Meter = Pool().get("prepaid.meter")
        arch = etree.fromstring(Meter.fields_view_get(view_type="form")["arch"])
        buttons = {b.get("name"): b for b in arch.iter("button")}
        self.assertTrue(buttons["hes_relay_disconnect"].get("confirm"))
        self.assertEqual(buttons["hes_relay_disconnect"].get("string"), "Disconnect")
        self.assertEqual(buttons["hes_relay_connect"].get("string"), "Connect")

    @with_company
    def test_meter_form_relay_buttons_refused_to_cashier(self):
        pool = Pool()
        Relay = pool.get("prepaid.headend.relay")
        Meter = pool.get("prepaid.meter")
        meter = self.meter(OK_WRAPPER)
        transaction = Transaction()
        for login, group in [("cashier", "cashier"), ("operator", "operator")]:
            user = self.user(login, group)
            with (
                transaction.set_user(user.id),
                transaction.set_context(_check_access=True),
            ):
                for button in [Meter.hes_relay_disconnect, Meter.hes_relay_connect]:
                    with self.subTest(user=login, button=button.__name__):
                        with self.assertRaises(AccessButtonError):
                            button([meter])
        self.assertEqual(Relay.search([("meter", "=", meter.id)]), [])
        self.assertEqual(self.pending_jobs(meter), [])

    @with_company
    def test_relay_needs_reason(self):
        Relay = Pool().get("prepaid.headend.relay")
        meter = self.meter(OK_WRAPPER)
        (operation,) = Relay.create([{"meter": meter.id, "action": "read"}])
        operation.action = "disconnect"
        with self.assertRaises(RequiredValidationError):
            operation.save()  # reason required for connect/disconnect

    @with_company
    def test_cashier_cannot_operate_relay(self):
        pool = Pool()
        Relay = pool.get("prepaid.headend.relay")
        Meter = pool.get("prepaid.meter")
        meter = self.meter(OK_WRAPPER)
        (operation,) = Relay.create(
            [{"meter": meter.id, "action": "disconnect", "reason": "Test"}]
        )
        cashier = self.user("cashier", "cashier")
        transaction = Transaction()
        with (
            transaction.set_user(cashier.id),
            transaction.set_context(_check_access=True),
        ):
            self.assertEqual(len(Relay.search([])), 1)  # can see the history
            # ... and the meter's communication status
            (row,) = Meter.read(
                [meter.id], ["hes_last_result", "hes_relay_state", "hes_group"]
            )
            with self.assertRaises(AccessError):
                Relay.create(
                    [{"meter": meter.id, "action": "disconnect", "reason": "x"}]
                )
            with self.assertRaises(AccessButtonError):
                Relay.execute([operation])
            with self.assertRaises(AccessButtonError):
                Meter.hes_read_now([meter])
        self.assertEqual(operation.state, "draft")
        self.assertEqual(self.pending_jobs(meter), [])

    @with_company
    def test_billing_disconnect_command_executed(self):
        "prepaid_vending's disconnect/reconnect commands run as relay operations"
        pool = Pool()
        Command = pool.get("prepaid.meter.command")
        Relay = pool.get("prepaid.headend.relay")
        self.configure()
        meter = self.meter(OK_HDLC)
        command = Command.queue(meter, "disconnect", {"balance": "-5.00", "limit": "0"})
        jobs = Command.hes_dispatch()
        self.assertEqual(len(jobs), 1)
        self.assertEqual(Command(command.id).state, "sent")
        self.run_jobs(jobs)
        command = Command(command.id)
        self.assertEqual(command.state, "accepted", command.last_error)
        (operation,) = Relay.search([("command", "=", command.id)])
        self.assertEqual(operation.relay_state, "disconnected")
        self.assertIn("-5.00", operation.reason)
        self.assertFalse(self.sim.meter(OK_HDLC).relay_connected)

        command = Command.queue(meter, "reconnect", {"balance": "20.00"})
        self.run_jobs(Command.hes_dispatch())
        self.assertEqual(Command(command.id).state, "accepted")
        self.assertTrue(self.sim.meter(OK_HDLC).relay_connected)

    @with_company
    def test_disconnect_held_in_friendly_period(self):
        pool = Pool()
        Command = pool.get("prepaid.meter.command")
        Calendar = pool.get("prepaid.friendly.calendar")
        Configuration = pool.get("prepaid.configuration")
        meter = self.meter(OK_HDLC)
        every_day = {
            d: True
            for d in (
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
                "sunday",
            )
        }
        (calendar,) = Calendar.create([{"name": "Always friendly", **every_day}])
        config = Configuration(1)
        config.friendly_calendar = calendar
        config.save()
        command = Command.queue(meter, "disconnect", {"balance": "-1.00"})
        self.assertEqual(Command.hes_dispatch(), [])
        self.assertEqual(Command(command.id).state, "pending")
        self.assertTrue(self.sim.meter(OK_HDLC).relay_connected)

    # --- load limit ---------------------------------------------------------------
    @with_company
    def test_load_management_written_read_back_and_kept_in_step(self):
        "Category and customer settings reach the limiter; cron keeps them there"
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Setting = pool.get("prepaid.load_management")
        Period = pool.get("prepaid.load_management.period")
        with with_vending() as env:
            self.configure()
            meter = self.meter(OK_HDLC)
            silent = self.meter(None, "SILENT", hes_timeout=0.3)
            new_point(env, "SP-LM1").install_meter(meter, dt.date(2020, 1, 1))
            new_point(env, "SP-LM2").install_meter(silent, dt.date(2020, 1, 1))
            with self.assertRaisesRegex(UserError, "load-management"):
                Meter.hes_write_load_limit([meter])
            self.assertEqual(Meter.hes_apply_load_management(), [])  # unmanaged

            # A daily period around the present (company time = UTC here).
            now = dt.datetime.now()
            category_setting = Setting(
                name="Residential",
                normal_limit=5000,
                emergency_limit=1000,
                min_over_duration=30,
                periods=[
                    Period(
                        start_time=(now - dt.timedelta(hours=1)).time(),
                        end_time=(now + dt.timedelta(hours=1)).time(),
                        limit=2500,
                    )
                ],
            )
            category_setting.save()
            env.category.load_management = category_setting
            env.category.save()
            meter = Meter(meter.id)
            self.assertEqual(meter.hes_load_management, category_setting)
            self.assertEqual(meter.hes_load_limit, 2500)

            jobs = Meter.hes_apply_load_management(now)
            self.assertEqual({j.meter for j in jobs}, {meter, silent})
            self.assertEqual(Meter.hes_apply_load_management(now), [])  # queued
            by_meter = {j.meter: j for j in self.run_jobs(jobs)}
            self.assertEqual(by_meter[meter].state, "done", by_meter[meter].last_error)
            limiter = self.sim.meter(OK_HDLC)
            self.assertEqual(
                (
                    limiter.limiter_threshold_active_w,
                    limiter.limiter_threshold_normal_w,
                    limiter.limiter_threshold_emergency_w,
                    limiter.limiter_min_over_s,
                    limiter.limiter_min_under_s,
                ),
                (2500, 5000, 1000, 30, 60),
            )
            self.assertEqual(Meter(meter.id).hes_load_limit_read, 2500)
            self.assertEqual(
                Meter(meter.id).hes_limiter_in_meter(),
                category_setting.limiter_values((now).time()),
            )
            self.assertEqual(by_meter[silent].error_kind, "timeout")
            # In step, and the offline meter waits an hour before a retry.
            self.assertEqual(Meter.hes_apply_load_management(now), [])
            later = now + dt.timedelta(hours=2)
            retry = Meter.hes_apply_load_management(later)
            self.assertIn(silent, [j.meter for j in retry])
            self.run_jobs(retry)

            # The customer's own setting overrides the category's.
            own = Setting(name="Clinic", normal_limit=9000)
            own.save()
            env.customer.load_management = own
            env.customer.save()
            (job,) = [
                j for j in Meter.hes_apply_load_management(now) if j.meter == meter
            ]
            (job,) = self.run_jobs([job])
            self.assertEqual(job.state, "done", job.last_error)
            self.assertEqual(limiter.limiter_threshold_active_w, 9000)
            self.assertEqual(limiter.limiter_threshold_emergency_w, 0)

            # The engineer's buttons: read back what the meter holds.
            Meter.hes_read_load_limit([meter])
            (job,) = self.run_jobs(self.pending_jobs(meter))
            self.assertIn("active: 9000", job.result)

    # --- tokens -------------------------------------------------------------------
    @with_company
    def test_remote_token_accepted_then_replay_rejected(self):
        pool = Pool()
        Command = pool.get("prepaid.meter.command")
        Token = pool.get("prepaid.sts.token")
        self.configure()
        sts_tools.create_vending_key()
        meter = self.meter(
            OK_WRAPPER,
            sts_pan=sts_tools.PAN,
            sts_sgc="201457",
            sts_krn=1,
            sts_tariff_index="01",
            sts_key_type="2",
            sts_base_date="14",
            sts_ea="07",
        )
        state = self.sim.meter(OK_WRAPPER)
        credit_before = state.credit_wh

        command = Command.queue(meter, "remote_credit", {"kwh": "12.5"})
        self.run_jobs(Command.hes_dispatch())
        command = Command(command.id)
        self.assertEqual(command.state, "accepted", command.last_error)
        self.assertEqual(command.hes_token_status, 3)
        self.assertEqual(command.hes_token_status_name, "execution_ok")
        (token,) = Token.search([("meter", "=", meter.id)])
        self.assertEqual(token.value, Decimal("12.5"))
        self.assertEqual(command.data["tokens"], [token.digits])
        self.assertAlmostEqual(state.credit_wh - credit_before, 12_500, delta=1)
        self.assertAlmostEqual(command.hes_meter_credit, state.credit_wh, delta=1)

        replay = Command.queue(meter, "remote_credit", {"token": token.digits})
        self.run_jobs(Command.hes_dispatch())
        replay = Command(replay.id)
        self.assertEqual(replay.state, "rejected")
        self.assertEqual(replay.hes_token_status, 6)  # validation failure (TID)
        self.assertIn("validation_failure", replay.last_error)
        self.assertAlmostEqual(state.credit_wh - credit_before, 12_500, delta=1)

    # --- firmware -----------------------------------------------------------------
    @with_company
    def test_firmware_upgrade_then_corrupt_image_refused(self):
        pool = Pool()
        Firmware = pool.get("prepaid.headend.firmware")
        Meter = pool.get("prepaid.meter")
        self.configure()
        meter = self.meter(FIRMWARE)
        before = self.sim.meter(FIRMWARE).firmware_id  # tests share the meter
        body = bytes(range(256)) * 8  # 2 kB
        (upgrade,) = Firmware.create(
            [
                {
                    "meter": meter.id,
                    "identifier": "FW-2.0.0",
                    "image": ops.build_image(body),
                }
            ]
        )
        Firmware.start([upgrade])
        (job,) = self.run_jobs(self.pending_jobs(meter))
        upgrade = Firmware(upgrade.id)
        self.assertEqual(upgrade.state, "activated", upgrade.error)
        self.assertEqual(upgrade.previous_version, before)
        self.assertEqual(upgrade.active_version, "FW-2.0.0")
        self.assertEqual(Meter(meter.id).firmware_version, "FW-2.0.0")
        self.assertEqual(self.sim.meter(FIRMWARE).firmware_id, "FW-2.0.0")

        corrupt = bytearray(ops.build_image(body))
        corrupt[100] ^= 0xFF
        (bad,) = Firmware.create(
            [{"meter": meter.id, "identifier": "FW-3.0.0", "image": bytes(corrupt)}]
        )
        Firmware.start([bad])
        (job,) = self.run_jobs(self.pending_jobs(meter))
        bad = Firmware(bad.id)
        self.assertEqual(job.state, "failed")
        self.assertEqual(job.error_kind, "firmware")
        self.assertEqual(bad.state, "failed")
        self.assertIn("verification failed", bad.error)
        self.assertEqual(bad.active_version, "FW-2.0.0")  # kept the old one
        self.assertEqual(self.sim.meter(FIRMWARE).firmware_id, "FW-2.0.0")

    @with_company
    def test_firmware_activation_at_a_time_is_a_scheduled_task(self):
        pool = Pool()
        Firmware = pool.get("prepaid.headend.firmware")
        Job = pool.get("prepaid.headend.job")
        Queue = pool.get("ir.queue")
        self.configure()
        meter = self.meter(FIRMWARE, serial="SIM4B")
        when = dt.datetime.now() + dt.timedelta(hours=2)
        (upgrade,) = Firmware.create(
            [
                {
                    "meter": meter.id,
                    "identifier": "FW-4.0.0",
                    "image": ops.build_image(b"x" * 500),
                    "activation": "at",
                    "activate_at": when,
                }
            ]
        )
        Firmware.start([upgrade])
        self.run_jobs(self.pending_jobs(meter))
        upgrade = Firmware(upgrade.id)
        self.assertEqual(upgrade.state, "verified", upgrade.error)
        self.assertNotEqual(self.sim.meter(FIRMWARE).firmware_id, "FW-4.0.0")
        (activation,) = Job.search(
            [("firmware", "=", upgrade.id), ("kind", "=", "firmware_activate")]
        )
        scheduled = [
            t
            for t in Queue.search([])
            if t.data["method"] == "execute"
            and list(t.data["instances"]) == [activation.id]
        ]
        self.assertEqual(len(scheduled), 1)
        self.assertGreater(scheduled[0].scheduled_at, when - dt.timedelta(minutes=1))

        self.run_jobs([activation])  # what the worker does at that time
        upgrade = Firmware(upgrade.id)
        self.assertEqual(upgrade.state, "activated", upgrade.error)
        self.assertEqual(self.sim.meter(FIRMWARE).firmware_id, "FW-4.0.0")

    # --- configuration errors --------------------------------------------------------
    @with_company
    def test_missing_keys_fail_the_job_with_a_clear_error(self):
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        meter = Meter(
            serial="NOKEYS",
            kind="smart_prepaid",
            hes_host="127.0.0.1",
            hes_port=self.sim.port(OK_WRAPPER),
        )
        meter.save()
        Meter.hes_read_now([meter])
        (job,) = self.run_jobs(self.pending_jobs(meter))
        self.assertEqual(job.state, "failed")
        self.assertEqual(job.error_kind, "configuration")
        self.assertIn("block cipher key", job.last_error)

    @with_company
    def test_secrets_are_write_only_and_encrypted(self):
        Meter = Pool().get("prepaid.meter")
        meter = self.meter(OK_WRAPPER)
        (row,) = Meter.read(
            [meter.id],
            [
                "hes_block_cipher_key",
                "hes_block_cipher_key_cipher",
                "hes_secrets_entered",
            ],
        )
        self.assertIsNone(row["hes_block_cipher_key"])
        self.assertNotIn(EK.hex(), row["hes_block_cipher_key_cipher"].lower())
        self.assertEqual(meter.hes_connection_settings().block_cipher_key, EK)
        self.assertIn("block cipher key", row["hes_secrets_entered"])
        with self.assertRaises(UserError):
            Meter.write([meter], {"hes_block_cipher_key": "0011"})  # too short

    # --- invocation counters under concurrency ---------------------------------------
    @unittest.skipUnless(
        backend.name == "postgresql",
        "row locks between workers need PostgreSQL (SQLite has a single writer)",
    )
    def test_counters_never_reused_by_concurrent_workers(self):
        key = f"concurrency-{uuid.uuid4().hex}"
        results: list[list[int]] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(4)

        def worker():
            try:
                with Transaction().start(DB_NAME, 0):
                    store = DatabaseCounterStore(reserve=3, autonomous=True)
                    barrier.wait()
                    results.append([store.get_and_increment(key) for _ in range(20)])
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        values = [v for r in results for v in r]
        self.assertEqual(len(values), 80)
        self.assertEqual(len(set(values)), 80)  # never handed out twice
        for got in results:
            self.assertEqual(got, sorted(got))  # increasing per worker
        with Transaction().start(DB_NAME, 0):
            Counter = Pool().get("prepaid.headend.invocation_counter")
            self.assertGreaterEqual(Counter.peek(key), max(values) + 1)
