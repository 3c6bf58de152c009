"""A vendor's XMLVend sales in the books: sold over the route, booked by the
vends' booker on the vendor's float account with the commission deducted at
sale, cancelled, refused (docs/vendors.md sections 3.1 and 4)."""

from __future__ import annotations

import time
import unittest
from decimal import Decimal

import pytest
from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_vending import booking
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME
from trytond.transaction import Transaction

from .xmlvend_route_fixtures import XMLVendRouteMixin, committed, credit_vend

pytestmark = pytest.mark.database
D = Decimal


class VendorBookingTestCase(XMLVendRouteMixin, unittest.TestCase):
    "The booking of a vendor's sales on its float account"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

        def configure():
            pool = Pool()
            Account = pool.get('account.account')
            Configuration = pool.get('prepaid.configuration')
            with Transaction().set_context(company=cls.env.company):
                (expense,) = Account.search(
                    [
                        ('type.expense', '=', True),
                        ('company', '=', cls.env.company),
                        ('closed', '!=', True),
                        ('id', '!=', cls.env.cash),  # the bank of the tests
                    ],
                    limit=1,
                )
                Configuration.write(
                    [Configuration(1)],
                    {
                        'vendor_commission_account': expense.id,
                        'cancel_policy': 'manager',
                    },
                )
                return expense.id

        cls.expense = committed(configure)

    def setUp(self):
        super().setUp()
        # The booking task a vend pushes is held back by its throttle: the
        # test books when it says so (the cron's book_pending).
        booking._last_push[DB_NAME] = time.monotonic()
        self.book()  # what earlier tests left: not this test's business

    def tearDown(self):
        booking._last_push.pop(DB_NAME, None)
        super().tearDown()

    # -- helpers --------------------------------------------------------------
    def book(self) -> list[int]:
        "The cron's booking run; the ids of its moves"
        return committed(
            lambda: [m.id for m in Pool().get('prepaid.vend').book_pending()]
        )

    def plan(self, seller, mode='at_sale', percent='2.5'):
        def make():
            Plan = Pool().get('prepaid.vendor.commission.plan')
            Plan.create(
                [
                    {
                        'company': self.env.company,
                        'vendor': seller.vendor,
                        'mode': mode,
                        'rules': [
                            ('create', [{'name': 'Vends', 'percent': D(percent)}])
                        ],
                    }
                ]
            )

        committed(make)

    def sell(self, seller, amount: str):
        status, answer = self.post(credit_vend(seller, self.env.meter, amount))
        self.assertEqual(status, 200, answer)
        return answer

    def figures(self, seller) -> dict:
        "The vendor's float as the ledger, the position and its sales see it"

        def read():
            pool = Pool()
            Vendor = pool.get('prepaid.vendor')
            Position = pool.get('prepaid.vendor.float')
            Sale = pool.get('prepaid.vendor.sale')
            Line = pool.get('account.move.line')
            vendor = Vendor(seller.vendor)
            sales = Sale.search([('vendor', '=', vendor.id)], order=[('id', 'ASC')])
            commission_lines = Line.search(
                [
                    ('account', '=', self.expense),
                    ('description', '=', f'Commission {vendor.code}'),
                ]
            )
            return {
                'ledger': Position.ledger_balances([vendor])[vendor.id],
                'drift': Position.drift([vendor])[vendor.id],
                'available': vendor.float_state().available,
                'sales': [(s.vend.id, s.commission, s.rule) for s in sales],
                'expense': sum((ln.debit - ln.credit for ln in commission_lines), D(0)),
            }

        return committed(read)

    def moves_of(self, vend_ids) -> list[dict]:
        "The lines of the moves that booked these vends"

        def read():
            Vend = Pool().get('prepaid.vend')
            moves = {Vend(v).move for v in vend_ids}
            self.assertNotIn(None, moves)
            return [
                {
                    'account': line.account.id,
                    'party': line.party.id if line.party else None,
                    'debit': line.debit,
                    'credit': line.credit,
                    'tax': {t.type for t in line.tax_lines},
                }
                for move in moves
                for line in move.lines
            ]

        return committed(read)

    # -- tests ----------------------------------------------------------------
    def test_two_sales_booked_on_the_float_with_commission_at_sale(self):
        "Ledger = top-up - sales + commission, to the cent; revenue and VAT kept"
        seller = self.new_seller('1000.00')
        self.plan(seller, percent='2.5')
        first = self.sell(seller, '100.00')
        self.assertEqual(first.client_status.avail_credit.value, D('902.50'))
        second = self.sell(seller, '200.00')
        # The commission is the vendor's at once: 1000 - 300 + 2.50 + 5.00.
        self.assertEqual(second.client_status.avail_credit.value, D('707.50'))
        before = self.figures(seller)
        self.assertEqual(before['ledger'], D('1000.00'))  # nothing booked yet
        self.assertEqual(before['available'], D('707.50'))
        self.assertEqual(before['drift'], D(0))
        self.assertEqual(
            [(c, r) for _, c, r in before['sales']],
            [(D('2.50'), 'Vends'), (D('5.00'), 'Vends')],
        )

        self.assertTrue(self.book())
        after = self.figures(seller)
        self.assertEqual(after['ledger'], D('707.50'))
        self.assertEqual(after['available'], D('707.50'))  # a booking moves none
        self.assertEqual(after['drift'], D(0))
        self.assertEqual(after['expense'], D('7.50'))
        self.assertEqual(self.book(), [])  # never twice
        self.assertEqual(self.figures(seller), after)

        # The sales' move: the float debited by the tenders, the revenue and
        # VAT credited as for a cashier's sale (VAT with its tax line), the
        # commission Dr expense / Cr float; nothing on the bank.
        vends = [v for v, _, _ in after['sales']]
        lines = self.moves_of(vends)
        vat = committed(
            lambda: sum(Pool().get('prepaid.vend')(v).vat_amount for v in vends)
        )
        self.assertGreater(vat, 0)
        payable, vendor_party = self.env.payable, self.party_of(seller)
        on_float = [ln for ln in lines if ln['account'] == payable]
        self.assertEqual({ln['party'] for ln in on_float}, {vendor_party})
        self.assertEqual(sum(ln['debit'] for ln in on_float), D('300.00'))
        self.assertEqual(sum(ln['credit'] for ln in on_float), D('7.50'))
        self.assertFalse([ln for ln in lines if ln['account'] == self.env.cash])
        sales_credits = [
            ln for ln in lines if ln['account'] not in (payable, self.expense)
        ]
        self.assertEqual(sum(ln['credit'] for ln in sales_credits), D('300.00'))
        self.assertEqual(
            sum(ln['credit'] for ln in sales_credits if 'tax' in ln['tax']), vat
        )
        self.assertEqual(
            sum(ln['credit'] for ln in sales_credits if 'base' in ln['tax']),
            D('300.00') - vat,
        )

    def test_cancelled_booked_sale_nets_to_zero(self):
        "A booked sale cancelled: its lines reversed on the float and expense"
        seller = self.new_seller('1000.00')
        self.plan(seller, percent='2.5')
        self.sell(seller, '100.00')
        self.book()
        booked = self.figures(seller)
        self.assertEqual(booked['ledger'], D('902.50'))
        ((vend, _, _),) = booked['sales']
        self.cancel(vend)
        after = self.figures(seller)
        self.assertEqual(after['ledger'], D('1000.00'))
        self.assertEqual(after['available'], D('1000.00'))
        self.assertEqual(after['drift'], D(0))
        self.assertEqual(after['expense'], D(0))
        self.assertEqual(self.book(), [])

    def test_cancelled_sale_before_booking_is_never_booked(self):
        "Cancelled before its booking: never booked, the float given back"
        seller = self.new_seller('1000.00')
        self.sell(seller, '100.00')  # no plan: monthly, nothing deducted
        sold = self.figures(seller)
        self.assertEqual(sold['available'], D('900.00'))
        self.assertEqual([c for _, c, _ in sold['sales']], [D(0)])
        ((vend, _, _),) = sold['sales']
        self.cancel(vend)
        self.book()
        after = self.figures(seller)
        self.assertEqual(after['ledger'], D('1000.00'))
        self.assertEqual(after['available'], D('1000.00'))
        self.assertEqual(after['drift'], D(0))
        self.assertIsNone(committed(lambda: Pool().get('prepaid.vend')(vend).move))

    def test_monthly_plan_deducts_nothing_at_sale(self):
        "A monthly plan: the sale's commission is left to the month's settlement"
        seller = self.new_seller('1000.00')
        self.plan(seller, mode='monthly', percent='2.5')
        answer = self.sell(seller, '100.00')
        self.assertEqual(answer.client_status.avail_credit.value, D('900.00'))
        self.book()
        after = self.figures(seller)
        self.assertEqual(after['ledger'], D('900.00'))
        self.assertEqual(after['expense'], D(0))
        self.assertEqual(after['drift'], D(0))

    def test_refused_sale_books_nothing(self):
        "Insufficient float: refused, no sale recorded, nothing booked"
        seller = self.new_seller('50.00')
        self.plan(seller, percent='2.5')
        status, answer = self.post(credit_vend(seller, self.env.meter, '100.00'))
        self.assertEqual(status, 500)
        self.assertFault(answer, 'VendorCreditEx', 'Insufficient vendor credit')
        self.book()
        after = self.figures(seller)
        self.assertEqual(after['sales'], [])
        self.assertEqual(after['ledger'], D('50.00'))
        self.assertEqual(after['available'], D('50.00'))
        self.assertEqual(after['drift'], D(0))
        self.assertEqual(after['expense'], D(0))

    def test_no_commission_account_leaves_the_sales_for_the_next_run(self):
        "The books refuse the group: nothing booked, the position untouched"
        seller = self.new_seller('1000.00')
        self.plan(seller, percent='2.5')
        self.sell(seller, '100.00')
        self.set_commission_account(None)
        try:
            self.assertEqual(self.book(), [])
            waiting = self.figures(seller)
            self.assertEqual(waiting['ledger'], D('1000.00'))
            self.assertEqual(waiting['available'], D('902.50'))
            self.assertEqual(waiting['drift'], D(0))
        finally:
            self.set_commission_account(self.expense)
        self.assertTrue(self.book())
        after = self.figures(seller)
        self.assertEqual(after['ledger'], D('902.50'))
        self.assertEqual(after['available'], D('902.50'))
        self.assertEqual(after['drift'], D(0))

    def test_plan_the_core_refuses_is_refused(self):
        "A percent above 100 is refused with the core's message, nothing saved"
        seller = self.new_seller('0')
        with self.assertRaises(ValidationError) as refused:
            self.plan(seller, percent='150')
        self.assertIn('more than 100', refused.exception.message)

        def count():
            Plan = Pool().get('prepaid.vendor.commission.plan')
            return Plan.search_count([('vendor', '=', seller.vendor)])

        self.assertEqual(committed(count), 0)

    # -- more helpers ---------------------------------------------------------
    def set_commission_account(self, account_id: int | None) -> None:
        def write():
            Configuration = Pool().get('prepaid.configuration')
            with Transaction().set_context(company=self.env.company):
                Configuration.write(
                    [Configuration(1)], {'vendor_commission_account': account_id}
                )

        committed(write)

    def cancel(self, vend_id: int) -> None:
        def run():
            Vend = Pool().get('prepaid.vend')
            with Transaction().set_context(company=self.env.company):
                Vend.cancel_vends([Vend(vend_id)], 'sold on the wrong meter')

        committed(run)

    def party_of(self, seller) -> int:
        return committed(lambda: Pool().get('prepaid.vendor')(seller.vendor).party.id)
