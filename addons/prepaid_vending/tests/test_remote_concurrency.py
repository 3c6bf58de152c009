"""A vend and the billing run on the same remote-prepaid meter at the same moment.

The monthly fixed charge (docs/vending.md Example C: R50 + VAT) is taken once a month
per account, by whichever comes first: the first paid vend of the month or the
consumption bill.  Each test runs the two in concurrent PostgreSQL transactions,
one held open while the other starts, and checks that the charge was taken
exactly once, by the one that committed first, and that the other was not lost
(the vend restarts, the billing run retries the account on a fresh snapshot).
"""

import datetime as dt
import threading
import unittest
from decimal import Decimal as D

from trytond import backend
from trytond.modules.prepaid_vending.locking import MeterBusy
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module, drop_db
from trytond.transaction import Transaction

from .test_vend_lock import vend_until_done
from .vend_fixtures import (
    committed_vending,
    new_meter,
    new_point,
    setup_vending,
    wait_for_lock,
)

ENERGY_40_KWH = D('48.00')  # 40 kWh in Example C's first block at 1.20, excl. VAT


@unittest.skipUnless(
    backend.name == 'postgresql',
    'concurrent transactions need PostgreSQL (SQLite serialises every writer)',
)
class VendBillConcurrencyTestCase(unittest.TestCase):
    "Vend and billing run on one meter at once"

    @classmethod
    def setUpClass(cls):
        drop_db()  # committed fixtures below: start from the cached template
        activate_module('prepaid_vending')

        def build():
            Account = Pool().get('prepaid.remote.account')
            env = setup_vending(payment_mode='remote_prepaid')
            meters = [
                new_meter(
                    f'0700000000{i}',
                    new_point(env, f'RB{i}'),
                    payment_mode='remote_prepaid',
                )
                for i in range(2)
            ]
            return {
                'warm': env.meter.id,
                'meters': [m.id for m in meters],
                'accounts': [Account.for_meter(m).id for m in meters],
            }

        cls.context, built = committed_vending(build)
        cls.meter_ids = built['meters']
        cls.account_ids = built['accounts']
        # The journal period of this month is created under a table lock by
        # the first move: done here, so that the tests see only the meter lock.
        vend_until_done(cls.context, built['warm'], 'bill-warm', [])

    @classmethod
    def tearDownClass(cls):
        drop_db()

    def consume(self, account_id: int, kwh: str) -> None:
        "Commit one hour of consumption at the start of this month"
        with Transaction().start(DB_NAME, 1, context=self.context) as tr:
            Consumption = Pool().get('prepaid.remote.consumption')
            start = dt.datetime.now().replace(
                day=1, hour=0, minute=0, second=0, microsecond=0
            )
            Consumption(
                account=account_id,
                start=start,
                end=start + dt.timedelta(hours=1),
                kwh=D(kwh),
            ).save()
            tr.commit()

    def outcome(self, vend_id: int, account_id: int):
        "(monthly charge lines of the vend, bills of the account)"
        with Transaction().start(DB_NAME, 1, context=self.context):
            pool = Pool()
            Vend = pool.get('prepaid.vend')
            Bill = pool.get('prepaid.remote.bill')
            vend = Vend(vend_id)
            charges = [x.amount for x in vend.lines if x.kind == 'charge']
            bills = [
                (b.amount, b.monthly_charges)
                for b in Bill.search([('account', '=', account_id)])
            ]
            return charges, bills

    def test_vend_first_then_billing_run(self):
        "The billing run waits for the vend, then bills without the charge"
        meter, account = self.meter_ids[0], self.account_ids[0]
        self.consume(account, '40')
        hold, restarts, vend_ids = threading.Event(), [], []
        vend = threading.Thread(
            target=lambda: vend_ids.append(
                vend_until_done(self.context, meter, 'bill-a', restarts, hold)
            )
        )
        vend.start()
        wait_for_lock('prepaid_meter')  # the vend's UPDATE of the meter

        failed = []

        def billing_run():
            with Transaction().start(DB_NAME, 1, context=self.context) as tr:
                failed.append(Pool().get('prepaid.remote.account').bill_all())
                tr.commit()

        billing = threading.Thread(target=billing_run)
        billing.start()
        billing.join(0.5)
        self.assertTrue(billing.is_alive(), "the billing run must wait")
        hold.set()
        vend.join(30)
        billing.join(30)
        self.assertEqual(failed, [0])
        self.assertEqual(restarts, [])
        charges, bills = self.outcome(vend_ids[0], account)
        self.assertEqual(charges, [D('50.00')])  # Example C's monthly charge
        self.assertEqual(bills, [(ENERGY_40_KWH, False)])

    def test_billing_first_then_vend(self):
        "The vend waits for the bill, restarts, and does not charge again"
        meter, account = self.meter_ids[1], self.account_ids[1]
        self.consume(account, '40')
        billed, hold = threading.Event(), threading.Event()

        def bill_held():
            with Transaction().start(DB_NAME, 1, context=self.context) as tr:
                Account = Pool().get('prepaid.remote.account')
                Account.bill([Account(account)])
                billed.set()
                hold.wait(30)
                tr.commit()

        billing = threading.Thread(target=bill_held)
        billing.start()
        self.assertTrue(billed.wait(30))
        restarts, vend_ids = [], []
        vend = threading.Thread(
            target=lambda: vend_ids.append(
                vend_until_done(self.context, meter, 'bill-b', restarts)
            )
        )
        vend.start()
        vend.join(0.5)
        self.assertTrue(vend.is_alive(), "the vend must wait for the bill")
        hold.set()
        billing.join(30)
        vend.join(30)
        self.assertIn(MeterBusy, restarts)
        charges, bills = self.outcome(vend_ids[0], account)
        self.assertEqual(charges, [])
        self.assertEqual(bills, [(ENERGY_40_KWH + D('50.00'), True)])
