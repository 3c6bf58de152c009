"""Two cashiers vend for the same keypad meter at the same moment (PostgreSQL,
real transactions in threads): block positions stay consistent and the two
credit tokens carry distinct TIDs, both accepted by the meter's decoder key.

Each thread runs the retry loop of trytond's dispatcher, as a real RPC call
would: TransactionError (lock requested) restarts the transaction with the
lock, DatabaseOperationalError (lock not available) retries.
"""

from __future__ import annotations

import threading
import unittest
from decimal import Decimal

from trytond import backend
from trytond.modules.prepaid_sts.engine import decode_token, derive_decoder_key
from trytond.modules.prepaid_vending.tests.vend_fixtures import (
    new_meter,
    new_point,
    setup_vending,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module
from trytond.transaction import Transaction, TransactionError

from .test_sts_vend import set_sts
from .tools import (
    PAN,
    VK_DKGA04,
    create_vending_key,
    restore_master_key,
    set_master_key,
)

RETRIES = 30


def start_with_lock_retries(context, work):
    "Run ``work()`` in its own transaction the way trytond's dispatcher does"
    extras: dict = {}
    for _ in range(RETRIES):
        try:
            with Transaction().start(DB_NAME, 1, context=context, **extras) as tx:
                try:
                    return work()
                except TransactionError as error:
                    tx.rollback()
                    error.fix(extras)
        except backend.DatabaseOperationalError:
            continue
    raise RuntimeError(f"gave up after {RETRIES} retries")


@unittest.skipUnless(
    backend.name == "postgresql",
    "row locks and concurrent transactions need PostgreSQL "
    "(SQLite serialises every writer)",
)
class StsVendConcurrencyTestCase(unittest.TestCase):
    "Concurrent vends on one keypad meter"

    @classmethod
    def setUpClass(cls):
        cls._previous_master_key = set_master_key()
        activate_module("prepaid_sts")
        from trytond.modules.company.tests import create_company

        def setup():
            pool = Pool()
            User = pool.get("res.user")
            company = create_company()
            User.write(
                [User(1)], {"companies": [("add", [company.id])], "company": company.id}
            )
            with Transaction().set_context(company=company.id):
                env = setup_vending()
                meter = new_meter("06000000001", new_point(env, "STS1"), "sts_keypad")
                create_vending_key()
                set_sts(meter)
            Transaction().commit()
            return company.id, meter.id

        company_id, cls.meter_id = start_with_lock_retries({}, setup)
        cls.context = {"company": company_id}

    @classmethod
    def tearDownClass(cls):
        restore_master_key(cls._previous_master_key)

    def test_same_meter_distinct_tids_and_consistent_blocks(self):
        barrier = threading.Barrier(2)
        results: list[int] = []
        errors: list[Exception] = []

        def vend(key):
            def work():
                pool = Pool()
                Vend = pool.get("prepaid.vend")
                Meter = pool.get("prepaid.meter")
                return Vend.vend(
                    Meter(self.meter_id), Decimal("300.00"), "card", None, key,
                    channel="api",
                ).id  # fmt: skip

            barrier.wait()
            try:
                results.append(start_with_lock_retries(self.context, work))
            except Exception as error:  # reported to the main thread
                errors.append(error)

        threads = [threading.Thread(target=vend, args=(k,)) for k in ("sa", "sb")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])

        with Transaction().start(DB_NAME, 1, context=self.context):
            pool = Pool()
            Vend = pool.get("prepaid.vend")
            Token = pool.get("prepaid.sts.token")
            first, second = sorted(
                Vend.browse(results), key=lambda v: v.month_kwh_before
            )
            self.assertEqual(first.month_kwh_before, Decimal(0))
            self.assertEqual(second.month_kwh_before, first.month_kwh_after)
            decoder_key = derive_decoder_key(
                bytes.fromhex(VK_DKGA04), "04", PAN, 2, "201457", "01", 1, "14", "07"
            )
            decoded = []
            for vend in (first, second):
                (token,) = vend.tokens
                decoded.append(decode_token(token.token, decoder_key, "07"))
                self.assertTrue(decoded[-1].crc_ok)
                self.assertEqual(decoded[-1].amount, vend.units_kwh)
            self.assertNotEqual(decoded[0].tid, decoded[1].tid)
            logged = Token.search([("meter", "=", self.meter_id)])
            self.assertEqual(
                sorted(t.tid for t in logged), sorted(d.tid for d in decoded)
            )
