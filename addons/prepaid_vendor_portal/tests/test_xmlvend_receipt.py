"""What an XMLVend sale's receipt carries, on the route with the vending
core: a pending STS key change rides on the credit token (kcTokenIssue, as
real servers send it), and every deduction of the tender is its own
transaction, the transactions adding up to the tender."""

from __future__ import annotations

import unittest
from decimal import Decimal

import pytest
from trytond.modules.prepaid_sts.tests.tools import create_vending_key
from trytond.modules.prepaid_vending.tests.tools import committed
from trytond.modules.prepaid_vendor_portal import xmlvend as x
from trytond.pool import Pool
from trytond.transaction import Transaction

from .xmlvend_route_fixtures import XMLVendRouteMixin, credit_vend, read_state

pytestmark = pytest.mark.database


def tx_total(receipt: x.CreditVendReceipt) -> Decimal:
    "What the receipt's transactions add up to, VAT included"
    return sum(
        (t.amt.value + sum((v.amt.value for v in t.tax), Decimal(0)))
        for t in receipt.transactions.tx
    )


class XMLVendReceiptTestCase(XMLVendRouteMixin, unittest.TestCase):
    "Key change tokens and deductions on the XMLVend receipt"

    def in_utility(self, function):
        def run():
            with Transaction().set_context(company=self.env.company):
                return function()

        return committed(run)

    def test_pending_key_change_rides_on_the_credit_token(self):
        def issue_key_change():
            pool = Pool()
            KeyChange = pool.get('prepaid.sts.key_change')
            Meter = pool.get('prepaid.meter')
            create_vending_key(krn=2)
            change = KeyChange.issue(Meter(self.env.meter_id), {'krn': 2})
            return change.id, [t.digits for t in change.tokens]

        change_id, digits = self.in_utility(issue_key_change)
        self.assertEqual(len(digits), 2)
        seller = self.new_seller()
        status, answer = self.post(credit_vend(seller, self.env.meter, '100.00'))
        self.assertEqual(status, 200, answer)
        receipt = answer.credit_vend_receipt
        (energy,) = [
            t for t in receipt.transactions.tx if isinstance(t, x.CreditVendTx)
        ]
        kc = energy.kc_token_issue
        self.assertEqual(
            [
                kc.token.set_1st_meter_key.sts_cipher,
                kc.token.set_2nd_meter_key.sts_cipher,
            ],
            digits,
        )
        self.assertEqual(
            (kc.kct_data.from_krn, kc.kct_data.to_krn, kc.kct_data.to_sgc),
            (1, 2, '201457'),
        )
        # The credit token is under the new key: the meter's detail says so.
        self.assertEqual(energy.credit_token_issue.meter_detail.krn, 2)
        token = energy.credit_token_issue.token.sts_cipher
        self.assertRegex(token, r'^[0-9]{20}$')
        self.assertNotIn(token, digits)

        def delivered():
            KeyChange = Pool().get('prepaid.sts.key_change')
            return str(KeyChange(change_id).delivered_with)

        self.assertTrue(self.in_utility(delivered).startswith('prepaid.vend,'))

        # Until the key change is confirmed (the meter took it), every sale
        # carries its tokens again, as at the office; then none.
        def energy_tx(answer):
            (energy,) = [
                t
                for t in answer.credit_vend_receipt.transactions.tx
                if isinstance(t, x.CreditVendTx)
            ]
            return energy

        status, again = self.post(credit_vend(seller, self.env.meter, '50.00'))
        self.assertEqual(status, 200, again)
        self.assertEqual(energy_tx(again).kc_token_issue.token, kc.token)

        def confirm():
            KeyChange = Pool().get('prepaid.sts.key_change')
            KeyChange.confirm([KeyChange(change_id)])

        self.in_utility(confirm)
        status, after = self.post(credit_vend(seller, self.env.meter, '50.00'))
        self.assertEqual(status, 200, after)
        self.assertIsNone(energy_tx(after).kc_token_issue)

    def test_debt_recovered_is_its_own_transaction(self):
        def open_debt():
            pool = Pool()
            Debt = pool.get('prepaid.debt')
            Meter = pool.get('prepaid.meter')
            customer = Meter(self.env.meter_id).customer
            (debt,) = Debt.create(
                [
                    {
                        'party': customer.id,
                        'amount': Decimal('40.00'),
                        'description': 'Arrears 2026',
                        'recovery_percent': Decimal('25'),
                    }
                ]
            )
            Debt.open([debt])
            return debt.id

        debt_id = self.in_utility(open_debt)
        seller = self.new_seller()
        before = read_state(seller)
        status, answer = self.post(credit_vend(seller, self.env.meter, '100.00'))
        self.assertEqual(status, 200, answer)
        receipt = answer.credit_vend_receipt
        debts = [t for t in receipt.transactions.tx if isinstance(t, x.DebtRecoveryTx)]
        self.assertEqual(len(debts), 1)
        self.assertEqual(debts[0].amt.value, Decimal('25.00'))
        self.assertEqual(debts[0].acc_desc, 'Debt recovery')
        self.assertEqual(tx_total(receipt), Decimal('100.00'))
        self.assertEqual(receipt.transactions.tender_amt.value, Decimal('100.00'))

        def balance():
            return Pool().get('prepaid.debt')(debt_id).balance

        self.assertEqual(self.in_utility(balance), Decimal('15.00'))
        after = read_state(seller)
        self.assertEqual(after['available'], before['available'] - Decimal('100'))

        # A trial vend itemises the same way and sells nothing.
        trial = x.TrialCreditVendReq(
            **{
                k: v
                for k, v in credit_vend(
                    seller, self.env.meter, '80.00'
                ).__dict__.items()
                if k != 'purchase_value'
            },
            purchase_value=x.PurchaseValueCurrency(amt=x.Currency(value=Decimal(80))),
        )
        status, quote = self.post(trial)
        self.assertEqual(status, 200, quote)
        debts = [
            t
            for t in quote.credit_vend_receipt.transactions.tx
            if isinstance(t, x.DebtRecoveryTx)
        ]
        self.assertEqual([t.amt.value for t in debts], [Decimal('15.00')])
        self.assertEqual(tx_total(quote.credit_vend_receipt), Decimal('80.00'))
        self.assertEqual(read_state(seller), after)
