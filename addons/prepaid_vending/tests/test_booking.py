"""Booking: the accounting of the vends, generated after their request.

- The books equal the vends to the cent after a shift close and after the
  queued task; booking again books nothing new.
- A vend cancelled before it is booked is never booked; one cancelled after
  is reversed exactly.
- The list of vends not booked shows what no booker has booked, including a
  group that could not be booked, until it is.
- PostgreSQL: two bookers racing book every vend once.
"""

import datetime as dt
import threading
import unittest
from collections import defaultdict
from contextlib import contextmanager
from decimal import Decimal as D

from trytond import backend
from trytond import config as trytond_config
from trytond.pool import Pool
from trytond.pyson import PYSONDecoder
from trytond.tests.test_tryton import (
    DB_NAME,
    activate_module,
    drop_db,
    with_transaction,
)
from trytond.transaction import Transaction

from .tools import dispatch
from .vend_fixtures import (
    committed_vending,
    new_meter,
    new_point,
    open_session,
    setup_vending,
    with_vending,
)

TENDERS = ['300.00', '100.00', '57.51', '99.99', '1234.56', '12.34']


def sell(env, count=None, prefix='b', sales_point=None):
    "Vends of TENDERS, alternately cash and card, at the fixture's sales point"
    Vend = Pool().get('prepaid.vend')
    return [
        Vend.vend(
            env.meter,
            D(tender),
            'cash' if i % 2 else 'card',
            sales_point or env.sales_point,
            f'{prefix}-{i}',
        )
        for i, tender in enumerate(TENDERS[: count or len(TENDERS)])
    ]


def balances(moves) -> dict:
    "Signed balance (debit positive) per account of the lines of moves"
    totals: dict = defaultdict(D)
    for move in moves:
        for line in move.lines:
            totals[line.account.id] += line.debit - line.credit
    return {a: b for a, b in totals.items() if b}


def tax_totals(moves) -> dict:
    "Tax line amounts per type (base, tax) of the lines of moves"
    totals: dict = defaultdict(D)
    for move in moves:
        for line in move.lines:
            for tax_line in line.tax_lines:
                totals[tax_line.type] += tax_line.amount
    return dict(totals)


@contextmanager
def booking_interval(seconds: int):
    "[prepaid] booking_interval set to seconds, and the process's last push forgotten"
    from .. import booking

    if not trytond_config.has_section('prepaid'):
        trytond_config.add_section('prepaid')
    previous = trytond_config.get('prepaid', 'booking_interval', default=None)
    trytond_config.set('prepaid', 'booking_interval', str(seconds))
    booking._last_push.clear()
    try:
        yield
    finally:
        # The default when it was not set.
        trytond_config.set('prepaid', 'booking_interval', previous or '60')


def sell_cancellable(env, count=3):
    "count vends in an open shift, under the policy that lets a manager cancel"
    Configuration = Pool().get('prepaid.configuration')
    Configuration.write([Configuration(1)], {'cancel_policy': 'manager'})
    open_session(env)
    return sell(env, count)


def unbooked_domain():
    "The domain of the Vends Not Booked action, as the client evaluates it"
    pool = Pool()
    Action = pool.get('ir.action.act_window')
    ModelData = pool.get('ir.model.data')
    action = Action(ModelData.get_id('prepaid_vending', 'act_vend_unbooked'))
    return PYSONDecoder().decode(action.pyson_domain)


class BookingTestCase(unittest.TestCase):
    "Booking of the vends"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def assertBooksEqualVends(self, env, vends):
        """The moves of vends hold exactly their money, from the vends' own
        figures: the tenders on the receipt account, the VAT on the tax
        account and in the tax lines, the net on revenue."""
        Vend = Pool().get('prepaid.vend')
        vends = Vend.browse([v.id for v in vends])
        self.assertTrue(all(v.move for v in vends))
        moves = {v.move for v in vends}
        self.assertEqual({m.state for m in moves}, {'posted'})
        # Every vend a move books is one of these (nothing else, nothing twice).
        self.assertEqual(
            sorted(v.id for m in moves for v in m.prepaid_vends),
            sorted(v.id for v in vends),
        )
        self.assertMovesHold(env, moves, vends)

    def assertMovesHold(self, env, moves, vends):
        """The lines of moves sum to the money of vends: the tenders on the
        receipt account, the VAT on the tax account and in the tax lines, the
        net on revenue."""
        tender = sum(v.tender for v in vends)
        vat = sum(v.vat_amount for v in vends)
        self.assertEqual(
            balances(moves),
            {
                env.cash.id: tender,
                env.tax_account.id: -vat,
                env.revenue.id: -(tender - vat),
            },
        )
        self.assertEqual(tax_totals(moves), {'tax': vat, 'base': tender - vat})

    def assertBookingRefused(self):
        "Booking now books nothing, and says why in a warning"
        Vend = Pool().get('prepaid.vend')
        with self.assertLogs('trytond.modules.prepaid_vending.booking', 'WARNING'):
            self.assertEqual(Vend.book_pending(), [])

    @with_transaction()
    def test_vend_writes_no_move(self):
        "The vend's request books nothing: the vend waits in the list"
        pool = Pool()
        Move = pool.get('account.move')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            open_session(env)
            vends = sell(env, 2)
            self.assertEqual(Move.search([]), [])
            self.assertEqual([v.move for v in vends], [None, None])
            self.assertEqual(
                Vend.search(unbooked_domain(), order=[('id', 'ASC')]), vends
            )

    @with_transaction()
    def test_books_equal_vends_after_shift_close(self):
        "The close books every vend of the shift in the shift's move"
        pool = Pool()
        Session = pool.get('prepaid.cashier.session')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            session = open_session(env)
            vends = sell(env)
            totals = Session(session.id).system_totals()
            Session.close_session(session, totals)
            self.assertBooksEqualVends(env, vends)
            (move,) = {Vend(v.id).move for v in vends}
            self.assertEqual(move.origin, Session(session.id))
            self.assertEqual(Vend.search(unbooked_domain()), [])

    @with_transaction()
    def test_books_equal_vends_after_queued_task(self):
        "A vend pushes a booking task; run after commit, it books the vends"
        pool = Pool()
        Queue = pool.get('ir.queue')
        with with_vending() as env:
            open_session(env)
            with booking_interval(0):
                vends = sell(env)
            tasks = Queue.search([('name', '=', 'prepaid_booking')])
            self.assertEqual(len(tasks), len(vends))  # interval 0: every vend
            self.assertEqual(
                {(t.data['model'], t.data['method']) for t in tasks},
                {('prepaid.vend', 'book_queued')},
            )
            tasks[0].run()
            self.assertBooksEqualVends(env, vends)
            # The others find nothing left to book.
            for task in tasks[1:]:
                task.run()
            self.assertBooksEqualVends(env, vends)

    @with_transaction()
    def test_push_throttled(self):
        "With an interval, one process pushes one task per interval"
        Queue = Pool().get('ir.queue')
        with with_vending() as env:
            open_session(env)
            with booking_interval(3600):
                sell(env, 3)
            self.assertEqual(len(Queue.search([('name', '=', 'prepaid_booking')])), 1)

    @with_transaction()
    def test_booking_twice_books_nothing_new(self):
        pool = Pool()
        Move = pool.get('account.move')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            open_session(env)
            first = sell(env, 3, 'x')
            moves = Vend.book_pending()
            self.assertEqual(len(moves), 1)
            self.assertEqual(Vend.book_pending(), [])
            later = sell(env, 2, 'y')
            (second,) = Vend.book_pending()
            self.assertNotIn(second, moves)
            self.assertEqual(Vend.book_pending(), [])
            self.assertEqual(len(Move.search([])), 2)
            self.assertBooksEqualVends(env, first + later)

    @with_transaction()
    def test_groups_per_day_shift_and_sales_point(self):
        "Vends of two sales points book in two moves, each with its own vends"
        pool = Pool()
        SalesPoint = pool.get('prepaid.sales_point')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            kiosk = SalesPoint(
                name='Kiosk',
                code='K2',
                kind='office',
                channel='api',
                cash_account=env.cash,
                bank_account=env.cash,
            )
            kiosk.save()
            open_session(env)
            office = sell(env, 2, 'o')
            api = [
                Vend.vend(env.meter, D('75.00'), 'card', kiosk, 'k-1', channel='api')
            ]
            moves = Vend.book_pending()
            self.assertEqual(len(moves), 2)
            self.assertEqual(
                sorted(sorted(v.id for v in m.prepaid_vends) for m in moves),
                sorted([sorted(v.id for v in office), [api[0].id]]),
            )
            self.assertBooksEqualVends(env, office + api)

    @with_transaction()
    def test_cancel_before_booking(self):
        "A vend cancelled before it is booked is never booked"
        Vend = Pool().get('prepaid.vend')
        with with_vending() as env:
            vends = sell_cancellable(env)
            Vend.cancel_vends([vends[1]], 'typing error')
            cancelled = Vend(vends[1].id)
            self.assertEqual(cancelled.state, 'cancelled')
            self.assertIsNone(cancelled.cancel_move)
            self.assertNotIn(cancelled, Vend.search(unbooked_domain()))
            Vend.book_pending()
            cancelled = Vend(vends[1].id)
            self.assertIsNone(cancelled.move)
            self.assertBooksEqualVends(env, [vends[0], vends[2]])

    @with_transaction()
    def test_cancel_after_booking(self):
        "A booked vend cancelled gets a posted reversal of exactly its share"
        Vend = Pool().get('prepaid.vend')
        with with_vending() as env:
            vends = sell_cancellable(env)
            (move,) = Vend.book_pending()
            Vend.cancel_vends([vends[1]], 'customer refunded')
            cancelled = Vend(vends[1].id)
            reversal = cancelled.cancel_move
            self.assertEqual(reversal.state, 'posted')
            self.assertEqual(reversal.origin, cancelled)
            self.assertEqual(cancelled.move, move)  # the drill-down stays
            # The booked move and the reversal leave the two other vends.
            kept = [Vend(vends[0].id), Vend(vends[2].id)]
            self.assertMovesHold(env, [move, reversal], kept)
            self.assertEqual(Vend.book_pending(), [])

    @with_transaction()
    def test_unbookable_group_stays_listed(self):
        "A vend that cannot be booked waits in the list, then is booked"
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            open_session(env)
            vends = sell(env, 2)
            Configuration.write([Configuration(1)], {'energy_revenue_account': None})
            self.assertBookingRefused()
            self.assertEqual(
                Vend.search(unbooked_domain(), order=[('id', 'ASC')]), vends
            )
            Configuration.write(
                [Configuration(1)], {'energy_revenue_account': env.revenue.id}
            )
            Vend.book_pending()
            self.assertEqual(Vend.search(unbooked_domain()), [])
            self.assertBooksEqualVends(env, vends)

    @with_transaction()
    def test_move_balanced_with_tax_lines(self):
        "The booked move: posted, balanced, the vend's VAT on tax lines"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            open_session(env)
            vend = Vend.vend(env.meter, D('300.00'), 'cash', env.sales_point, 'w3')
            (move,) = Vend.book_pending()
            self.assertEqual(move.state, 'posted')
            self.assertEqual(move.journal, env.journal)
            self.assertEqual(move.date, vend.date.date())
            self.assertEqual(
                sum(line.debit for line in move.lines),
                sum(line.credit for line in move.lines),
            )
            vat = sum(
                t.amount
                for line in move.lines
                for t in line.tax_lines
                if t.type == 'tax'
            )
            self.assertEqual(vat, vend.vat_amount)

    @with_transaction()
    def test_closed_account_refused(self):
        "A closed revenue account: the vend is sold, Tryton refuses its booking"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Account = pool.get('account.account')
        with with_vending() as env:
            open_session(env)
            Account.write([env.revenue], {'closed': True})
            vend = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'w4')
            self.assertBookingRefused()
            self.assertEqual(Vend.search(unbooked_domain()), [vend])
            self.assertIsNone(Vend(vend.id).move)
            Account.write([env.revenue], {'closed': False})
            (move,) = Vend.book_pending()
            self.assertEqual(Vend(vend.id).move, move)

    @with_transaction()
    def test_account_ended_before_the_vend_refused(self):
        "An account no longer valid on the vend's date refuses its booking"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Account = pool.get('account.account')
        with with_vending() as env:
            open_session(env)
            yesterday = dt.date.today() - dt.timedelta(days=1)
            Account.write(
                [env.revenue],
                {'start_date': yesterday.replace(year=2000), 'end_date': yesterday},
            )
            vend = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'w6')
            self.assertBookingRefused()
            Account.write([env.revenue], {'end_date': None})
            self.assertEqual(len(Vend.book_pending()), 1)
            self.assertBooksEqualVends(env, [vend])

    @with_transaction()
    def test_cron_books_without_company_in_context(self):
        "The cron (no company in its context) books the vends in their company's books"
        pool = Pool()
        Cron = pool.get('ir.cron')
        ModelData = pool.get('ir.model.data')
        Vend = pool.get('prepaid.vend')
        cron = Cron(ModelData.get_id('prepaid_vending', 'cron_book_vends'))
        self.assertEqual(cron.method, 'prepaid.vend|book_pending')
        with with_vending() as env:
            open_session(env)
            vends = sell(env, 2)
            with Transaction().set_context(company=None):
                (move,) = Vend.book_pending()
            self.assertEqual(move.company, env.company)
            self.assertBooksEqualVends(env, vends)

    @with_transaction()
    def test_unbooked_list_for_accountants_only(self):
        "The action is on the menu of managers, accountants and administrators"
        pool = Pool()
        Menu = pool.get('ir.ui.menu')
        ModelData = pool.get('ir.model.data')
        menu = Menu(ModelData.get_id('prepaid_vending', 'menu_vend_unbooked'))
        self.assertEqual(
            {ModelData.get_id('prepaid_vending', g) for g in (
                'group_manager', 'group_accountant', 'group_admin')},
            {g.id for g in menu.groups},
        )  # fmt: skip


def book_until_done(context, barrier, results, errors):
    "A booker in its own transaction, with the dispatcher's retries"

    def book(transaction):
        moves = Pool().get('prepaid.vend').book_pending()
        results.append([m.id for m in moves])

    barrier.wait()
    try:
        dispatch(context, book, attempts=20)
    except Exception as exc:  # reported to the main thread
        errors.append(exc)


@unittest.skipUnless(
    backend.name == 'postgresql',
    'concurrent transactions need PostgreSQL (SQLite serialises every writer)',
)
class BookingConcurrencyTestCase(unittest.TestCase):
    "Bookers racing"

    @classmethod
    def setUpClass(cls):
        drop_db()  # committed fixtures below: start from the cached template
        activate_module('prepaid_vending')

        def build():
            Vend = Pool().get('prepaid.vend')
            env = setup_vending()
            meters = [
                new_meter(f'0800000000{i}', new_point(env, f'R{i}')) for i in range(4)
            ]
            vends = [
                Vend.vend(m, D('100.00'), 'card', None, f'race-{i}', channel='api')
                for i, m in enumerate(meters)
            ]
            return {'vends': [v.id for v in vends]}

        cls.context, built = committed_vending(build)
        cls.vend_ids = built['vends']

    @classmethod
    def tearDownClass(cls):
        drop_db()

    def test_two_bookers_book_once(self):
        barrier = threading.Barrier(2)
        results, errors = [], []
        threads = [
            threading.Thread(
                target=book_until_done, args=(self.context, barrier, results, errors)
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual(errors, [])
        with Transaction().start(DB_NAME, 1, context=self.context):
            Vend = Pool().get('prepaid.vend')
            vends = Vend.browse(self.vend_ids)
            self.assertTrue(all(v.move for v in vends))
            moves = {v.move for v in vends}
            # Each move made by one booker only, and no other move.
            self.assertEqual(
                sorted(i for r in results for i in r), sorted(m.id for m in moves)
            )
            booked = [v.id for m in moves for v in m.prepaid_vends]
            self.assertEqual(sorted(booked), sorted(self.vend_ids))
            debit = sum(line.debit for m in moves for line in m.lines)
            self.assertEqual(debit, sum(v.tender for v in vends))
