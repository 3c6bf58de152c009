"""STS integrity: the kWh a token really carries is what is recorded; STS
identity and TIDs cannot be rewritten; the rollover campaign locks once.

Test keys: the public STS 531-1-07 test vending keys of tools.py.  The amount
encoding (1700.5 kWh is carried as 1701.4 kWh) follows IEC 62055-41 (the
exponent/mantissa amount field, rounded up), see docs/sts.md section 4.5.
"""

from __future__ import annotations

import datetime as dt
import unittest
from decimal import Decimal

from trytond import backend
from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_vending.tests.vend_fixtures import (
    open_session,
    with_vending,
)
from trytond.modules.prepaid_vending.vend import VendError
from trytond.pool import Pool
from trytond.tests.test_tryton import (
    DB_NAME,
    activate_module,
    drop_db,
    with_transaction,
)
from trytond.transaction import Transaction, TransactionError

from .test_sts_vend import set_sts
from .tools import (
    VK_DKGA02,
    StsTestMixin,
    create_meter,
    create_user,
    create_vending_key,
    restore_master_key,
    set_master_key,
    utility,
)


class StsIntegrityTestCase(StsTestMixin, unittest.TestCase):
    "STS integrity rules"

    @with_transaction()
    def test_token_kwh_recorded_when_rounding_credits_more(self):
        "1700.5 kWh paid, 1701.4 kWh on the token, log and receipt data"
        pool = Pool()
        Vend = pool.get("prepaid.vend")
        Token = pool.get("prepaid.sts.token")
        Configuration = pool.get("prepaid.configuration")
        with with_vending(kind="sts_keypad") as env:
            open_session(env)
            create_vending_key()
            set_sts(env.meter)
            vend = Vend.vend(
                env.meter,
                None,
                "cash",
                env.sales_point,
                "big",
                requested_kwh=Decimal("1700.5"),
            )
            self.assertEqual(vend.units_kwh, Decimal("1700.5"))  # paid
            (token,) = vend.tokens
            self.assertEqual(token.units, Decimal("1701.4"))  # on the meter
            self.assertEqual(vend.credited_kwh, Decimal("1701.4"))
            (logged,) = Token.search([("origin", "=", str(vend))])
            self.assertEqual(logged.value, Decimal("1701.4"))
            Configuration.write([Configuration(1)], {"max_kwh_per_vend": Decimal(1000)})
            with self.assertRaisesRegex(VendError, "1000"):
                Vend.vend(
                    env.meter,
                    None,
                    "cash",
                    env.sales_point,
                    "too-big",
                    requested_kwh=Decimal("1700.5"),
                )

    @with_transaction()
    def test_sts_parameters_frozen_and_tid_never_lowered(self):
        "STS parameters set once; last TID never lowered by hand"
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        KeyChange = pool.get("prepaid.sts.key_change")
        VendingKey = pool.get("prepaid.sts.vending_key")
        create_vending_key()
        create_vending_key(krn=2)
        engineer = create_user("engineer-r6", "engineer")
        transaction = Transaction()
        with (
            transaction.set_user(engineer.id),
            transaction.set_context(_check_access=True),
        ):
            # Commissioning: a meter without parameters gets them once.
            (blank,) = Meter.create(
                [{"serial": "BLANK", "kind": "sts_keypad", "company": utility().id}]
            )
            Meter.write(
                [blank],
                {
                    "sts_pan": "600727000000000009",
                    "sts_sgc": "201457",
                    "sts_krn": 1,
                    "sts_tariff_index": "01",
                },
            )
            for values in (
                {"sts_pan": "600727000000000017"},
                {"sts_krn": 2},
                {"sts_sgc": "123456"},
                {"sts_base_date": "93"},
            ):
                with self.assertRaisesRegex(AccessError, "key change"):
                    Meter.write([Meter(blank.id)], values)
            with self.assertRaises(AccessError):
                Meter.write([Meter(blank.id)], {"sts_last_tid": 0})
        meter = create_meter("TID")
        meter.sts_issue_tokens([credit_request("1")], now=dt.datetime(2024, 1, 1))
        last = Meter(meter.id).sts_last_tid
        with self.assertRaisesRegex(AccessError, "cannot go down"):
            Meter.write([Meter(meter.id)], {"sts_last_tid": last - 1})
        # The key change path still moves the parameters, and its cancel back.
        key_change = KeyChange.issue(Meter(meter.id), {"krn": 2}, reason="KRN 2")
        self.assertEqual(Meter(meter.id).sts_krn, 2)
        KeyChange.cancel([key_change])
        self.assertEqual(Meter(meter.id).sts_krn, 1)
        # The vending key: identity frozen once the key material is stored.
        (key,) = VendingKey.search([("krn", "=", 1)])
        with self.assertRaisesRegex(AccessError, "cannot change"):
            VendingKey.write([key], {"krn": 3})
        with self.assertRaisesRegex(AccessError, "cannot change"):
            VendingKey.write([key], {"base_date": "93"})
        VendingKey.write([key], {"name": "Renamed"})
        (draft,) = VendingKey.create(
            [
                {
                    "company": utility().id,
                    "name": "Draft",
                    "sgc": "654321",
                    "krn": 1,
                    "key_type": "2",
                }
            ]
        )
        VendingKey.write([draft], {"krn": 4})  # no key material yet

    @with_transaction()
    def test_rollover_locks_once_and_skips_meters_without_key(self):
        "One lock for all the meters; a meter without key is skipped"
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Rollover = pool.get("prepaid.sts.rollover")
        create_vending_key(sgc="123456", base_date="93", dkga="02", key=VK_DKGA02)
        create_vending_key(sgc="123456", krn=2, base_date="14")
        ok = [create_meter(f"R{i}", sgc="123456", base_date="93") for i in range(3)]
        orphan = create_meter("NOKEY", sgc="999999", base_date="93")
        (campaign,) = Rollover.create([{"name": "Rollover", "company": utility().id}])
        Rollover.find_meters([campaign])
        calls = []
        real_lock = Meter.lock

        def lock(cls, records=None):
            calls.append(sorted(r.id for r in records))
            return real_lock(records)

        Meter.lock = classmethod(lock)
        try:
            Rollover.issue([campaign])
        finally:
            del Meter.lock
        everyone = sorted(m.id for m in [*ok, orphan])
        self.assertEqual(calls[0], everyone)  # all up front, then no restart
        results = {line.meter.serial: line for line in campaign.lines}
        for meter in ok:
            self.assertEqual(results[meter.serial].result, "issued")
            self.assertEqual(Meter(meter.id).sts_base_date, "14")
        self.assertEqual(results["NOKEY"].result, "skipped")
        self.assertIn("999999", results["NOKEY"].skip_reason)
        self.assertEqual(Meter(orphan.id).sts_base_date, "93")
        self.assertEqual(len(campaign.key_changes), 3)


def credit_request(kwh: str):
    from trytond.modules.prepaid_sts.meter import TokenRequest

    return TokenRequest("credit", 0, 0, amount=Decimal(kwh))


@unittest.skipUnless(
    backend.name == "postgresql",
    "trytond restarts a transaction for a row lock only where rows are locked "
    "(PostgreSQL); the restarts are counted there",
)
class RolloverRestartTestCase(unittest.TestCase):
    "On PostgreSQL the rollover campaign restarts its transaction once"

    @classmethod
    def setUpClass(cls):
        cls._previous_master_key = set_master_key()
        drop_db()  # committed fixtures below
        activate_module("prepaid_sts")
        with Transaction().start(DB_NAME, 1) as transaction:
            create_vending_key(sgc="123456", base_date="93", dkga="02", key=VK_DKGA02)
            create_vending_key(sgc="123456", krn=2, base_date="14")
            for i in range(5):
                create_meter(f"PG{i}", sgc="123456", base_date="93")
            Rollover = Pool().get("prepaid.sts.rollover")
            (campaign,) = Rollover.create(
                [{"name": "PG rollover", "company": utility().id}]
            )
            Rollover.find_meters([campaign])
            cls.campaign_id = campaign.id
            transaction.commit()

    @classmethod
    def tearDownClass(cls):
        drop_db()
        restore_master_key(cls._previous_master_key)

    def test_one_restart(self):
        "Five meters: one restart (it was one per meter, each redoing the rest)"
        restarts, extras = 0, {}
        while True:
            with Transaction().start(DB_NAME, 1, **extras) as transaction:
                Rollover = Pool().get("prepaid.sts.rollover")
                try:
                    Rollover.issue([Rollover(self.campaign_id)])
                except TransactionError as error:
                    transaction.rollback()
                    error.fix(extras)
                    restarts += 1
                    continue
                campaign = Rollover(self.campaign_id)
                self.assertEqual(len(campaign.key_changes), 5)
                transaction.rollback()
                break
        self.assertEqual(restarts, 1)
