"""Remote tokens, invocation counters and DLMS secrets (database tests).

1. remote-credit tokens are minted and committed at dispatch, before any
   network I/O; a retry re-sends the same digits and the meter's replay
   refusal of our own token counts as delivered (accepted on retry);
   PostgreSQL: a counter vend on a meter of a running batch is not blocked.
2. invocation counters per (client system title, key fingerprint); meters
   sharing a block cipher key are flagged; legacy per-meter counters are a floor.
4. DLMS secrets: ciphertexts unreadable by every group, setter restricted to
   Key Custodian / Administrator, channel moves of meters with secrets
   restricted and audited.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import unittest
import uuid
from decimal import Decimal

from trytond import backend
from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_headend.dlms.counters import counter_key
from trytond.modules.prepaid_headend.tests.test_headend import (
    AK,
    DECODER_KEY,
    EK,
    OTHER_EK,
    free_port_block,
)
from trytond.modules.prepaid_sts.meter import TokenRequest
from trytond.modules.prepaid_sts.tests import tools as sts_tools
from trytond.modules.prepaid_sts.tests.tools import create_user
from trytond.modules.prepaid_vending.tests.staff import acting_as
from trytond.modules.prepaid_vending.tests.tools import committed, with_company
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module
from trytond.transaction import Transaction

from simulators.meter import MeterConfig, MeterSimulator
from simulators.meter.testing import FakeClock

STS = {
    "sts_pan": sts_tools.PAN,
    "sts_sgc": "201457",
    "sts_krn": 1,
    "sts_tariff_index": "01",
    "sts_key_type": "2",
    "sts_base_date": "14",
    "sts_ea": "07",
}


def make_meter(port: int, serial: str | None = None, ek: bytes = EK, **values):
    Meter = Pool().get("prepaid.meter")
    meter = Meter(
        serial=serial or f"RF{uuid.uuid4().hex[:10]}",
        kind="smart_prepaid",
        hes_host="127.0.0.1",
        hes_port=port,
        hes_auth="hls-gmac",
        hes_client_address=1,
        hes_timeout=values.pop("hes_timeout", 5.0),
        **values,
    )
    meter.save()
    Meter.write(
        [meter], {"hes_block_cipher_key": ek.hex(), "hes_authentication_key": AK.hex()}
    )
    return meter


class RemoteTokensAndSecretsTestCase(unittest.TestCase):
    "Remote tokens, counters and secrets (SQLite and PostgreSQL)"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module("prepaid_headend")
        cls._previous_key = sts_tools.set_master_key()
        cls.sim = None
        if MeterSimulator is not None:
            base = free_port_block(1)
            cls.clock = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
            cls.sim = MeterSimulator(
                [MeterConfig(index=0, port=base, seed=1, decoder_key=DECODER_KEY)],
                clock=cls.clock,
            ).start()

    @classmethod
    def tearDownClass(cls):
        if cls.sim is not None:
            cls.sim.stop()
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    # --- 1. tokens minted before I/O, retry = accepted on retry ------------
    @with_company
    def test_token_minted_at_dispatch_and_retry_accepted(self):
        pool = Pool()
        Command = pool.get("prepaid.meter.command")
        Token = pool.get("prepaid.sts.token")
        Job = pool.get("prepaid.headend.job")
        Counter = pool.get("prepaid.headend.invocation_counter")
        Configuration = pool.get("prepaid.configuration")
        config = Configuration(1)
        config.hes_retries = 0
        config.save()
        sts_tools.create_vending_key()
        meter = make_meter(self.sim.port(0), **STS)
        Counter.set_floor(meter.hes_counter_key, 10_000_000)
        state = self.sim.meter(0)
        credit_before = state.credit_wh
        command = Command.queue(meter, "remote_credit", {"kwh": "7.5"})

        (job,) = Command.hes_dispatch([command])
        # Minted at dispatch, before the job ran: token log + payload digits.
        (token,) = Token.search([("meter", "=", meter.id)])
        self.assertEqual(Command(command.id).data["tokens"], [token.digits])
        self.assertEqual(Job(job.id).state, "pending")

        Job.execute([job])
        command = Command(command.id)
        self.assertEqual(command.state, "accepted", command.last_error)
        self.assertFalse(command.hes_accepted_on_retry)
        self.assertAlmostEqual(state.credit_wh - credit_before, 7_500, delta=1)

        # The batch's transaction "rolled back" after the meter accepted: the
        # committed claim (attempt 1) stays, the outcome is gone.  The retry
        # re-sends the same digits; the meter refuses the replay (status 6).
        Job.write([job], {"state": "pending", "result": None})
        Command.write([command], {"state": "sent"})
        Job.execute([Job(job.id)])
        command = Command(command.id)
        self.assertEqual(command.state, "accepted", command.last_error)
        self.assertTrue(command.hes_accepted_on_retry)
        self.assertEqual(command.hes_token_status, 6)
        self.assertIn("already delivered", Job(job.id).result)
        self.assertEqual(len(Token.search([("meter", "=", meter.id)])), 1)
        self.assertAlmostEqual(state.credit_wh - credit_before, 7_500, delta=1)

        # Someone else's replay of the same digits is still a rejection.
        replay = Command.queue(meter, "remote_credit", {"token": token.digits})
        Job.execute(Command.hes_dispatch([replay]))
        replay = Command(replay.id)
        self.assertEqual(replay.state, "rejected")
        self.assertFalse(replay.hes_accepted_on_retry)

    @with_company
    def test_dispatch_reuses_tokens_minted_by_an_uncommitted_dispatch(self):
        pool = Pool()
        Command = pool.get("prepaid.meter.command")
        Token = pool.get("prepaid.sts.token")
        sts_tools.create_vending_key()
        meter = make_meter(4059, **STS)
        command = Command.queue(meter, "remote_credit", {"kwh": "3"})
        first = command.hes_mint_tokens()
        # The dispatch that minted them lost its payload write: same TIDs.
        Command.write([command], {"payload": '{"kwh": "3"}'})
        self.assertEqual(Command(command.id).hes_mint_tokens(), first)
        self.assertEqual(len(Token.search([("meter", "=", meter.id)])), 1)

    @with_company
    def test_job_never_mints(self):
        pool = Pool()
        Command = pool.get("prepaid.meter.command")
        sts_tools.create_vending_key()
        meter = make_meter(4059, **STS)
        command = Command.queue(meter, "remote_credit", {"kwh": "3"})
        with self.assertRaises(Exception) as ctx:
            command.hes_prepare_tokens()
        self.assertIn(str(command.id), str(ctx.exception))

    # --- 2. counters per (title, key), shared keys flagged --------------------
    @with_company
    def test_counter_key_per_title_and_key_and_shared_key_warning(self):
        a = make_meter(4059)
        b = make_meter(4060)
        c = make_meter(4061, ek=OTHER_EK)
        self.assertEqual(a.hes_counter_key, b.hes_counter_key)
        self.assertEqual(a.hes_counter_key, counter_key(b"PPSHES01", EK))
        self.assertNotEqual(a.hes_counter_key, c.hes_counter_key)
        self.assertNotIn(EK.hex(), a.hes_counter_key.lower())
        self.assertNotIn(EK.hex(), (a.hes_key_fingerprint or "").lower())
        self.assertIn(b.serial, a.hes_key_shared)
        self.assertIn("1 other", a.hes_key_shared)
        self.assertIsNone(c.hes_key_shared)
        # One sequence for both meters: no (key, nonce) pair twice.
        settings = [m.hes_connection_settings() for m in (a, b)]
        self.assertEqual(settings[0].counter_key, settings[1].counter_key)

    @with_company
    def test_new_counter_row_starts_above_legacy_per_meter_rows(self):
        Counter = Pool().get("prepaid.headend.invocation_counter")
        Counter.create([{"key": "meter-999", "next_value": 7_000}])
        meter = make_meter(4059, ek=bytes(range(16, 32)))
        first, _ = Counter.take(meter.hes_counter_key)
        self.assertGreaterEqual(first, 7_000)

    # --- 4. secrets ---------------------------------------------------------------
    @with_company
    def test_ciphertexts_unreadable_by_every_group(self):
        Meter = Pool().get("prepaid.meter")
        meter = make_meter(4059)
        for group in ("key_custodian", "admin", "engineer", "operator"):
            user = create_user(f"u-{group}", group)
            with acting_as(user):
                for field in (
                    "hes_password_cipher",
                    "hes_block_cipher_key_cipher",
                    "hes_authentication_key_cipher",
                ):
                    with self.assertRaises(AccessError, msg=(group, field)):
                        Meter.read([meter.id], [field])

    @with_company
    def test_secret_setter_needs_key_custodian_or_admin(self):
        Meter = Pool().get("prepaid.meter")
        meter = make_meter(4059)
        engineer = create_user("eng", "engineer")
        custodian = create_user("cust", "key_custodian", "operator")
        with acting_as(engineer):
            with self.assertRaises(AccessError):
                Meter.write([meter], {"hes_password": "harvest"})
        with acting_as(custodian):
            Meter.write([meter], {"hes_block_cipher_key": OTHER_EK.hex()})
        self.assertEqual(Meter(meter.id).hes_connection_settings().block_cipher_key,
                         OTHER_EK)  # fmt: skip

    @with_company
    def test_moving_channel_of_meter_with_secrets_restricted_and_audited(self):
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Log = pool.get("ir.model.log")
        meter = make_meter(4059)
        operator = create_user("op", "operator")
        engineer = create_user("eng2", "engineer")
        custodian = create_user("cust2", "key_custodian", "engineer")
        for user in (operator, engineer):
            with acting_as(user):
                with self.assertRaises(AccessError):
                    Meter.write([meter], {"hes_host": "203.0.113.9"})
                with self.assertRaises(AccessError):
                    Meter.write([meter], {"hes_port": 4444})
                Meter.write([meter], {"hes_timeout": 7.0})  # other fields still OK
        with acting_as(custodian):
            Meter.write([meter], {"hes_host": "198.51.100.7", "hes_port": 4061})
        self.assertEqual(Meter(meter.id).hes_host, "198.51.100.7")
        Transaction()._store_log_records()
        logs = Log.search([("resource", "=", str(meter)), ("user", "=", custodian.id)])
        self.assertTrue(
            any("198.51.100.7:4061" in (log.target or "") for log in logs),
            [log.target for log in logs],
        )


@unittest.skipUnless(
    backend.name == "postgresql",
    "concurrent transactions need PostgreSQL (SQLite has a single writer)",
)
class CounterVendDuringBatchTestCase(unittest.TestCase):
    "A counter vend is not blocked by a head-end batch on the same meter"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module("prepaid_headend")
        cls._previous_key = sts_tools.set_master_key()

    @classmethod
    def tearDownClass(cls):
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    def test_counter_vend_while_token_job_talks_to_the_meter(self):
        # A meter that accepts the connection and never answers: the batch
        # stays in network I/O until its timeout.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        connected, release = threading.Event(), threading.Event()

        def accept():
            try:
                conn, _ = silent.accept()
            except OSError:
                return
            connected.set()
            release.wait(30)  # never answers; the client times out first
            conn.close()

        threading.Thread(target=accept, daemon=True).start()

        def setup():
            Command = Pool().get("prepaid.meter.command")
            Configuration = Pool().get("prepaid.configuration")
            with Transaction().set_context(company=sts_tools.utility().id):
                config = Configuration(1)
                config.hes_retries = 0
                config.save()
                sts_tools.create_vending_key(sgc="201457", krn=1)
                meter = make_meter(silent.getsockname()[1], hes_timeout=3.0, **STS)
                command = Command.queue(meter, "remote_credit", {"kwh": "5"})
            return meter.id, command.id

        def dispatch():
            Command = Pool().get("prepaid.meter.command")
            return [j.id for j in Command.hes_dispatch(Command.browse([command_id]))]

        meter_id, command_id = committed(setup)
        job_ids = committed(dispatch)
        with Transaction().start(DB_NAME, 0):
            Token = Pool().get("prepaid.sts.token")
            self.assertEqual(len(Token.search([("meter", "=", meter_id)])), 1)

        errors: list[BaseException] = []

        def batch():
            try:

                def run():
                    Job = Pool().get("prepaid.headend.job")
                    Job.execute(Job.browse(job_ids))

                committed(run)
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connected.set()
                release.set()

        worker = threading.Thread(target=batch)
        worker.start()
        self.assertTrue(connected.wait(30), "the batch never reached the meter")

        # The batch is in network I/O now: a counter vend on the same meter.
        def counter_vend():
            Meter = Pool().get("prepaid.meter")
            (token,) = Meter(meter_id).sts_issue_tokens(
                [TokenRequest("credit", 0, 0, amount=Decimal("2"))],
                reason="counter vend",
            )
            return token.digits

        self.assertTrue(committed(counter_vend))
        worker.join(60)
        silent.close()
        self.assertEqual(errors, [])
        with Transaction().start(DB_NAME, 0):
            Job = Pool().get("prepaid.headend.job")
            Token = Pool().get("prepaid.sts.token")
            (job,) = Job.browse(job_ids)
            self.assertEqual(job.state, "failed")
            self.assertEqual(job.error_kind, "timeout")
            self.assertEqual(len(Token.search([("meter", "=", meter_id)])), 2)
