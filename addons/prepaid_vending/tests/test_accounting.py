"""Vend accounting: balanced moves with tax lines; the VAT report agrees with the
vends to the cent, cancellations included."""

import unittest
from decimal import Decimal as D

from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .vend_fixtures import open_session, with_vending


class AccountingTestCase(unittest.TestCase):
    "Vend accounting"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_vat_report_matches_vends(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Tax = pool.get('account.tax')
        TaxLine = pool.get('account.tax.line')
        Session = pool.get('prepaid.cashier.session')
        Configuration = pool.get('prepaid.configuration')
        Move = pool.get('account.move')
        with with_vending() as env:
            session = open_session(env)
            tenders = [
                '300.00',
                '100.00',
                '57.51',
                '99.99',
                '1234.56',
                '10.00',
                '77.77',
                '300.00',
                '45.45',
                '12.34',
            ]
            vends = [
                Vend.vend(
                    env.meter,
                    D(t),
                    'cash' if i % 2 else 'card',
                    env.sales_point,
                    f'acc-{i}',
                )
                for i, t in enumerate(tenders)
            ]
            Configuration.write([Configuration(1)], {'cancel_policy': 'manager'})
            Vend.cancel_vends([vends[3]], 'test reversal')
            for vend in vends:
                move = Vend(vend.id).move
                self.assertEqual(
                    sum(line.debit for line in move.lines),
                    sum(line.credit for line in move.lines),
                )
            Session.close_session(
                session,
                {
                    'cash': sum(
                        D(t) for i, t in enumerate(tenders) if i % 2 and i != 3
                    ),
                    'card': sum(D(t) for i, t in enumerate(tenders) if not i % 2),
                },
            )
            self.assertFalse(Move.search([('state', '=', 'draft')]))
            issued = [
                v for v in Vend.browse([v.id for v in vends]) if v.state == 'issued'
            ]
            expected_vat = sum(v.vat_amount for v in issued)
            expected_base = sum(
                line.amount
                for v in issued
                for line in v.lines
                if line.vat and line.kind in {'fee', 'charge', 'energy'}
            )
            # The tax report: tax lines of the period through account.tax.
            period = env.fiscalyear.periods[0]
            for p in env.fiscalyear.periods:
                if p.start_date <= vends[0].date.date() <= p.end_date:
                    period = p
            lines = TaxLine.search([('tax', '=', env.tax.id)])
            tax_total = sum(line.amount for line in lines if line.type == 'tax')
            base_total = sum(line.amount for line in lines if line.type == 'base')
            self.assertEqual(D(tax_total).quantize(D('0.01')), expected_vat)
            self.assertEqual(D(base_total).quantize(D('0.01')), expected_base)
            # account.tax amounts as the standard "Taxes" report computes them.
            # The cancelled vend shows as a credit (negative amounts).
            with Transaction().set_context(periods=[period.id]):
                tax = Tax(env.tax.id)
                self.assertEqual(
                    tax.invoice_tax_amount + tax.credit_tax_amount, expected_vat
                )
                self.assertEqual(
                    tax.invoice_base_amount + tax.credit_base_amount, expected_base
                )
                self.assertEqual(-tax.credit_tax_amount, vends[3].vat_amount)
            # Revenue + VAT + debts = cash received
            self.assertEqual(
                sum(v.tender for v in issued),
                sum(line.gross for v in issued for line in v.lines),
            )
