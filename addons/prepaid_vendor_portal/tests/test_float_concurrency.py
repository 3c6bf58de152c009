"""The float under 32 concurrent sales of one vendor, on PostgreSQL: each
sale its own transaction (decide on the limits, write its sale, draw on the
float as its last statement), with top-ups committed meanwhile.  The float
ends exactly at opening + top-ups - accepted sales, never below its floor,
and every accepted sale (and only those) is committed.

Each thread runs the retry loop of trytond's dispatcher: TransactionError
(FloatBusy: another draw committed after this snapshot; a lock requested)
restarts the transaction, DatabaseOperationalError retries.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import unittest
from decimal import Decimal as D

from trytond import backend
from trytond.modules.prepaid_vendor_portal import limits
from trytond.modules.prepaid_vendor_portal.vendor_float import top_up
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module
from trytond.transaction import Transaction, TransactionError

from .vendor_fixtures import create_vendor, setup_books

SALES = 32
TOP_UPS = 4
PRICE = D('50.00')
OPENING = D('1000.00')
TOP_UP = D('50.00')
RETRIES = 500


def dispatch(context, fn, stats):
    "fn in its own committed transaction, restarted as trytond's dispatcher does"
    extras: dict = {}
    for _ in range(RETRIES):
        try:
            with Transaction().start(
                DB_NAME, 1, context=context, **extras
            ) as transaction:
                try:
                    return fn(transaction)
                except TransactionError as exc:
                    transaction.rollback()
                    exc.fix(extras)
                    stats['restarts'] += 1
                    continue
        except backend.DatabaseOperationalError:
            stats['retries'] += 1
            continue
    raise RuntimeError(f'gave up after {RETRIES} attempts')


@unittest.skipUnless(
    backend.name == 'postgresql',
    'concurrent transactions need PostgreSQL (SQLite serialises every writer)',
)
class FloatRaceTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vendor_portal')
        from trytond.modules.company.tests import create_company

        def build(transaction):
            User = Pool().get('res.user')
            company = create_company()
            User.write(
                [User(1)], {'companies': [('add', [company.id])], 'company': company.id}
            )
            with transaction.set_context(company=company.id):
                acc = setup_books()
                env = create_vendor(acc)
                top_up(env.vendor, OPENING, acc.cash, dt.date.today(), 'opening')
            return company.id, env.vendor.id, env.terminal.id, acc.cash.id

        stats = {'restarts': 0, 'retries': 0}
        company, cls.vendor, cls.terminal, cls.cash = dispatch({}, build, stats)
        cls.context = {'company': company}

    def test_32_sales_one_vendor(self):
        barrier = threading.Barrier(SALES + TOP_UPS)
        lock = threading.Lock()
        accepted, refused, errors = [], [], []
        stats = {'restarts': 0, 'retries': 0}

        def sale(number):
            def attempt(transaction):
                pool = Pool()
                Vendor = pool.get('prepaid.vendor')
                Terminal = pool.get('prepaid.vendor.terminal')
                Party = pool.get('party.party')
                Position = pool.get('prepaid.vendor.float')
                vendor = Vendor(self.vendor)
                request = limits.VendRequest(
                    limits.Kind.VEND, PRICE, dt.datetime.now(dt.UTC), '10.0.0.1'
                )
                refusal = limits.check(
                    Terminal(self.terminal).limits_chain(),
                    vendor.float_state(),
                    request,
                    vendor.timezone(),
                )
                if refusal is None:
                    # The sale's own rows (a stand-in for the vend and its
                    # token), then the draw as the last statement.
                    Party.create([{'name': f'sale-{number}'}])
                    time.sleep(0.005)
                    if Position.draw(self.vendor, PRICE) is not None:
                        return True
                transaction.rollback()  # refused: nothing of the sale stays
                return False

            barrier.wait()
            try:
                ok = dispatch(self.context, attempt, stats)
            except Exception as exc:  # reported to the main thread
                errors.append(exc)
                return
            with lock:
                (accepted if ok else refused).append(number)

        def topping(number):
            def attempt(transaction):
                Vendor = Pool().get('prepaid.vendor')
                Account = Pool().get('account.account')
                top_up(
                    Vendor(self.vendor),
                    TOP_UP,
                    Account(self.cash),
                    dt.date.today(),
                    f'race {number}',
                )

            barrier.wait()
            try:
                dispatch(self.context, attempt, stats)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=sale, args=(i,)) for i in range(SALES)]
        threads += [threading.Thread(target=topping, args=(i,)) for i in range(TOP_UPS)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
        self.assertEqual(errors, [])
        self.assertEqual(len(accepted) + len(refused), SALES)
        print(
            f'\n{len(accepted)} sales accepted, {len(refused)} refused, '
            f'{stats["restarts"]} restarts, {stats["retries"]} retries, '
            f'{elapsed:.2f} s'
        )

        with Transaction().start(DB_NAME, 1, context=self.context):
            pool = Pool()
            Vendor = pool.get('prepaid.vendor')
            Party = pool.get('party.party')
            Position = pool.get('prepaid.vendor.float')
            vendor = Vendor(self.vendor)
            funded = OPENING + TOP_UPS * TOP_UP
            self.assertEqual(vendor.float_balance, funded)  # the ledger
            self.assertEqual(Position.drift([vendor]), {vendor.id: D(0)})
            self.assertEqual(vendor.float_available, funded - len(accepted) * PRICE)
            self.assertGreaterEqual(vendor.float_available, D(0))  # the floor
            # The opening float alone pays 20 sales: a sale is refused only
            # when less than its price is left.
            self.assertGreaterEqual(len(accepted), int(OPENING / PRICE))
            sold = Party.search([('name', 'like', 'sale-%')])
            self.assertEqual(
                sorted(int(p.name.split('-')[1]) for p in sold), sorted(accepted)
            )
