"""Concurrent vends on PostgreSQL with real transactions in threads.

- Two cashiers vending on the same meter at the same moment get consistent
  block positions (the second starts where the first ended).
- The same request sent twice at once (same idempotency key) charges once.
Each thread runs the retry loop of trytond's dispatcher: TransactionError (lock
requested) restarts the transaction with the lock, DatabaseOperationalError
(serialisation failure) retries, as a real RPC call would.
"""

import threading
import unittest
from decimal import Decimal as D

from trytond import backend
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module
from trytond.transaction import Transaction

from .tools import dispatch
from .vend_fixtures import new_meter, new_point, setup_vending

RETRIES = 20


def run_vend(context, meter_id, tender, key, barrier, results, errors):
    def vend(transaction):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Meter = pool.get('prepaid.meter')
        vend = Vend.vend(Meter(meter_id), tender, 'card', None, key, channel='api')
        results.append(vend.id)

    barrier.wait()
    try:
        # Lock not available or serialisation failure: retried.
        dispatch(context, vend, attempts=RETRIES)
    except Exception as exc:  # reported to the main thread
        errors.append(RuntimeError(f'{key}: {exc}'))


@unittest.skipUnless(
    backend.name == 'postgresql',
    'row locks and concurrent transactions need PostgreSQL '
    '(SQLite serialises every writer)',
)
class VendConcurrencyTestCase(unittest.TestCase):
    "Concurrent vends"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')
        from trytond.modules.company.tests import create_company

        def build(transaction):
            pool = Pool()
            User = pool.get("res.user")
            company = create_company()
            User.write(
                [User(1)],
                {"companies": [("add", [company.id])], "company": company.id},
            )
            with transaction.set_context(company=company.id):
                env = setup_vending()
                meters = [
                    new_meter(f"0500000000{i}", new_point(env, f"C{i}"))
                    for i in range(2)
                ]
            return company, meters

        # The dispatcher's loop: restarted with the locks requested.
        company, meters = dispatch(None, build)
        cls.context = {"company": company.id}
        cls.meter_ids = [m.id for m in meters]

    def concurrent(self, calls):
        barrier = threading.Barrier(len(calls))
        results, errors = [], []
        threads = [
            threading.Thread(
                target=run_vend,
                args=(self.context, meter, tender, key, barrier, results, errors),
            )
            for meter, tender, key in calls
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        return results

    def test_same_meter_consistent_blocks(self):
        meter = self.meter_ids[0]
        ids = self.concurrent(
            [(meter, D('300.00'), 'cc-a'), (meter, D('300.00'), 'cc-b')]
        )
        with Transaction().start(DB_NAME, 1, context=self.context):
            pool = Pool()
            Vend = pool.get('prepaid.vend')
            Position = pool.get('prepaid.meter.month_position')
            vends = sorted(Vend.browse(ids), key=lambda v: v.month_kwh_before)
            self.assertEqual(len(vends), 2)
            first, second = vends
            self.assertEqual(first.month_kwh_before, D(0))
            self.assertEqual(second.month_kwh_before, first.month_kwh_after)
            # Only the first vend of the month pays the fixed charge.
            self.assertEqual(
                [any(x.kind == 'charge' for x in v.lines) for v in vends], [True, False]
            )
            # First: 144.2 kWh (blocks 1-2); second: 300/1.15/1.60 = 163.0 kWh
            self.assertEqual([v.units_kwh for v in vends], [D('144.2'), D('163.0')])
            (position,) = Position.search([('meter', '=', meter)])
            self.assertEqual(position.kwh, D('307.2'))
            self.assertEqual(position.vends, 2)

    def test_same_key_charges_once(self):
        meter = self.meter_ids[1]
        ids = self.concurrent(
            [
                (meter, D('100.00'), 'dup'),
                (meter, D('100.00'), 'dup'),
                (meter, D('100.00'), 'dup'),
            ]
        )
        self.assertEqual(len(set(ids)), 1)

        def check():
            Vend = Pool().get('prepaid.vend')
            vends = Vend.search([('idempotency_key', '=', 'dup')])
            self.assertEqual(len(vends), 1)
            # Booked once: one move, holding the one tender.  (Posting takes
            # the strict sequence's row lock: the transaction restarts with it.)
            (move,) = Vend.book_pending()
            self.assertEqual(list(move.prepaid_vends), vends)
            self.assertEqual(sum(x.debit for x in move.lines), D('100.00'))

        dispatch(self.context, lambda transaction: check())
