"""The float under 32 concurrent sales of one vendor, on PostgreSQL: each
sale its own transaction (decide on the limits, draw on the float, then
write its sale), with top-ups committed meanwhile.  The float ends exactly
at opening + top-ups - accepted sales, never below its floor, and every
accepted sale (and only those) is committed; the sales are not restarted
(the draw runs outside their snapshot, vendor_float.py's docstring).

Each thread runs the retry loop of trytond's dispatcher: TransactionError
(FloatBusy: two top-ups overlapping; a lock requested) restarts the
transaction, DatabaseOperationalError retries.

Then the reservation's life on PostgreSQL: sold with its sale's commit,
released at once by its rollback, a refusal changing nothing, and the
sweeper settling what a crash left held.
"""

from __future__ import annotations

import collections
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


def dispatch(context, fn, stats, who='sale'):
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
                    stats[f'{who} restarts'] += 1
                    continue
        except backend.DatabaseOperationalError:
            stats[f'{who} retries'] += 1
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
                other = create_vendor(acc, code='KC', party_name='Kwik Corner')
                top_up(other.vendor, D('100.00'), acc.cash, dt.date.today(), 'o')
            return (
                company.id, env.vendor.id, env.terminal.id, acc.cash.id,
                other.vendor.id,
            )  # fmt: skip

        stats = collections.Counter()
        (company, cls.vendor, cls.terminal, cls.cash, cls.other) = dispatch(
            {}, build, stats
        )
        cls.context = {'company': company}

    def test_32_sales_one_vendor(self):
        barrier = threading.Barrier(SALES + TOP_UPS)
        lock = threading.Lock()
        accepted, refused, errors = [], [], []
        stats = collections.Counter()

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
                if refusal is None and (
                    Position.draw(self.vendor, PRICE, f'sale-{number}') is not None
                ):
                    # The sale's own rows after its draw (a stand-in for the
                    # vend and its token): the draw need not be last.
                    Party.create([{'name': f'sale-{number}'}])
                    time.sleep(0.005)
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
                dispatch(self.context, attempt, stats, 'top-up')
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
            f'{stats["sale restarts"]} sale restarts, {stats["sale retries"]} '
            f'sale retries, {stats["top-up restarts"]} top-up restarts, '
            f'{stats["top-up retries"]} top-up retries, {elapsed:.2f} s'
        )
        self.assertEqual(stats['sale restarts'], 0)  # sales never restart

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
            # One sold reservation per accepted sale, nothing left held.
            states = reservations(self.vendor)
            self.assertEqual(
                sorted(int(r.split('-')[1]) for r, s in states if s == 'sold'),
                sorted(accepted),
            )
            self.assertNotIn('held', {s for _, s in states})

    def run_in(self, fn, commit=True):
        "fn() in a transaction of its own, committed or rolled back"
        with Transaction().start(DB_NAME, 1, context=self.context) as transaction:
            result = fn()
            if not commit:
                transaction.rollback()
            return result

    def available(self):
        def read():
            Vendor = Pool().get('prepaid.vendor')
            return Vendor(self.other).float_available

        return self.run_in(read)

    def test_reservation_sold_released_refused(self):
        "Commit sells the reservation, rollback releases it, refusal changes nothing"
        Position = lambda: Pool().get('prepaid.vendor.float')  # noqa: E731
        start = self.available()
        self.assertEqual(
            self.run_in(lambda: Position().draw(self.other, D('30.00'), 'kept')),
            start - D('30.00'),
        )
        self.assertEqual(self.available(), start - D('30.00'))
        # A sale that fails after its draw: the rollback gives it back at once.
        self.assertEqual(
            self.run_in(
                lambda: Position().draw(self.other, D('20.00'), 'lost'), commit=False
            ),
            start - D('50.00'),
        )
        self.assertEqual(self.available(), start - D('30.00'))
        before = self.run_in(lambda: reservations(self.other))
        self.assertIsNone(
            self.run_in(lambda: Position().draw(self.other, start, 'too much'))
        )
        self.assertEqual(self.available(), start - D('30.00'))
        states = dict(self.run_in(lambda: reservations(self.other)))
        self.assertEqual(len(states), len(before))  # no reservation for a refusal
        self.assertEqual((states['kept'], states['lost']), ('sold', 'released'))
        self.assertEqual(
            self.run_in(lambda: sold_marks(self.other)), {'kept'}
        )  # only the committed sale left its mark

    def test_sweeper(self):
        "Held and old without a sale: released; with its sale: sold; others kept"
        start = self.available()

        def crash():
            # What a crash leaves: draws held, one of them with its sale
            # committed, one of them recent.
            pool = Pool()
            Reservation = pool.get('prepaid.vendor.float.reservation')
            Sold = pool.get('prepaid.vendor.float.sold')
            Vendor = pool.get('prepaid.vendor')
            company = Vendor(self.other).company.id
            rows = Reservation.create(
                [
                    {'vendor': self.other, 'company': company, 'amount': D(a),
                     'reference': ref, 'state': 'held'}
                    for a, ref in (('5.00', 'old'), ('7.00', 'old sold'),
                                   ('11.00', 'recent'))
                ]
            )  # fmt: skip
            Sold.create([{'reservation': rows[1].id}])
            age(rows[:2], minutes=20)
            bump(self.other, D('23.00'))

        self.run_in(crash)
        self.assertEqual(self.available(), start - D('23.00'))

        def sweep():
            return Pool().get('prepaid.vendor.float.reservation').sweep()

        self.assertEqual(self.run_in(sweep), (1, 1))
        states = dict(self.run_in(lambda: reservations(self.other)))
        self.assertEqual(
            (states['old'], states['old sold'], states['recent']),
            ('released', 'sold', 'held'),
        )
        self.assertEqual(self.available(), start - D('18.00'))
        self.assertEqual(self.run_in(sweep), (0, 0))  # nothing twice


def reservations(vendor_id):
    "[(reference, state)] of the vendor's reservations"
    Reservation = Pool().get('prepaid.vendor.float.reservation')
    return [
        (r.reference, r.state)
        for r in Reservation.search([('vendor', '=', vendor_id)], order=[('id', 'ASC')])
    ]


def sold_marks(vendor_id):
    "The references of the vendor's reservations that have a sold mark"
    pool = Pool()
    Reservation = pool.get('prepaid.vendor.float.reservation')
    Sold = pool.get('prepaid.vendor.float.sold')
    marked = {s.reservation for s in Sold.search([])}
    return {
        r.reference
        for r in Reservation.search([('vendor', '=', vendor_id)])
        if r.id in marked
    }


def age(records, minutes):
    "Backdate the records' creation by minutes"
    table = records[0].__class__.__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(
        *table.update(
            [table.create_date],
            [
                dt.datetime.now(dt.UTC).replace(tzinfo=None)
                - dt.timedelta(minutes=minutes)
            ],
            where=table.id.in_([r.id for r in records]),
        )
    )


def bump(vendor_id, amount):
    "Raise the vendor's draw counter by amount, as draws do"
    Counter = Pool().get('prepaid.vendor.float.counter')
    table = Counter.__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(
        *table.update(
            [table.drawn], [table.drawn + amount], where=table.vendor == vendor_id
        )
    )
