"""The cashier's Sell Electricity wizard, driven as the client drives it
(``create`` then ``execute`` per button, the session kept in the database;
the quote by the sale form's on_change, as sao calls it when the tender is
entered).

Known answers: docs/vending.md Example C (blocks excl. VAT 0-50 @ 1.20,
50-350 @ 1.60; R50 monthly fixed charge + 15 % VAT = R57.50; R300 with R40
debt gives 122.5 kWh, energy R202.50 incl. R26.41 VAT).  Wizard figures are
checked against ``Vend.trial`` of the same database, not retyped.
"""

import unittest
from decimal import Decimal as D
from types import SimpleNamespace

from trytond.exceptions import UserError
from trytond.modules.prepaid_vending.vend_wizard import (
    find_meters,
    group_token,
    quote_lines,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from .vend_fixtures import open_session, with_vending


class VendWizardTestCase(unittest.TestCase):
    "Sell Electricity wizard"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def run_wizard(self, search, sale, meter=None):
        """Start the wizard, search, pick the meter, Issue.

        Returns (session_id, result of the last step)."""
        Wizard = Pool().get('prepaid.vend.wizard', type='wizard')
        session_id, start, _ = Wizard.create()
        self.assertEqual(start, 'start')
        result = Wizard.execute(session_id, {}, 'start')
        self.assertTrue(result['view']['defaults']['idempotency_key'])
        start_data = {'search': search}
        if meter:
            start_data['meter'] = meter.id
        result = Wizard.execute(session_id, {'start': start_data}, 'select')
        self.assertEqual(result['view']['state'], 'sale')
        result = Wizard.execute(session_id, {'sale': sale}, 'issue')
        return session_id, result

    def quote(self, meter, **values):
        "The sale form after the cashier entered values (its on_change)"
        Sale = Pool().get('prepaid.vend.wizard.sale')
        sale = Sale(**{'meter': meter, 'tender': None, 'requested_kwh': None, **values})
        if 'requested_kwh' in values:
            sale.on_change_requested_kwh()
        else:
            sale.on_change_tender()
        return sale

    @with_transaction()
    def test_find_meters(self):
        "One search field: meter number, customer number, name or phone"
        pool = Pool()
        Contact = pool.get('party.contact_mechanism')
        with with_vending() as env:
            Contact(party=env.customer, type='mobile', value='+27821234567').save()
            for text in ['0400000', 'C0001', 'mokoena', '821234567']:
                self.assertEqual(find_meters(text), [env.meter], text)
            self.assertEqual(find_meters('nobody here'), [])
            # One character would match everybody: wait for more.
            self.assertEqual(find_meters('0'), [])

    @with_transaction()
    def test_sell_and_retry(self):
        "The quote writes nothing; Issue vends once, a retried Issue returns it"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Wizard = pool.get('prepaid.vend.wizard', type='wizard')
        with with_vending() as env:
            open_session(env)
            quote = Vend.trial(env.meter, tender=D('300.00'))
            self.assertEqual(self.quote(env.meter, tender=D('300.00')).units_kwh,
                             quote.units_kwh)  # fmt: skip
            self.assertEqual(Vend.search_count([]), 0)
            session_id, result = self.run_wizard(
                'C0001', {'payment_method': 'card', 'tender': D('300.00')}
            )
            self.assertEqual(result['view']['state'], 'receipt')
            (vend,) = Vend.search([])
            self.assertEqual(vend.units_kwh, quote.units_kwh)
            self.assertEqual(vend.payment_method, 'card')
            self.assertEqual(vend.tender, D('300.00'))
            values = result['view']['defaults']
            self.assertEqual(values['vend'], vend.id)
            self.assertEqual(values['units_kwh'], vend.units_kwh)
            self.assertEqual(values['total_vat'], vend.vat_amount)
            self.assertEqual(
                sum(line['amount'] for line in values['lines']), vend.tender
            )
            # A smart meter: its credit goes as a remote command, and the
            # result says where the delivery stands.
            self.assertEqual(values['delivery_state'], 'pending')
            self.assertIn('queued for the meter', values['delivery_display'])
            # A double click or a client retry after a time-out.
            again = Wizard.execute(
                session_id,
                {'sale': {'payment_method': 'card', 'tender': D('300.00')}},
                'issue',
            )
            self.assertEqual(again['view']['defaults']['vend'], vend.id)
            self.assertEqual(Vend.search_count([]), 1)
            # The print button renders the receipt report of that vend, and
            # asks for the original: the report decides (test_receipt.py).
            printed = Wizard.execute(session_id, {}, 'print_')
            ((action, data),) = printed['actions']
            self.assertEqual(action['report_name'], 'prepaid.vend.receipt')
            self.assertEqual(data['ids'], [vend.id])
            self.assertTrue(data['original'])
            self.assertEqual(printed['view']['state'], 'receipt')

    @with_transaction()
    def test_quote_on_change(self):
        "The quote follows the tender: every deduction with its VAT, the blocks"
        Vend = Pool().get('prepaid.vend')
        with with_vending() as env:
            sale = self.quote(env.meter, tender=D('300.00'))
            self.assertIsNone(sale.quote_message)
            lines = {line.description: line for line in sale.quote_lines}
            self.assertEqual(lines['Fixed charge'].amount, D('57.50'))  # + VAT
            self.assertEqual(lines['Fixed charge'].vat, D('7.50'))
            # Prices on the VAT basis of the amounts: 1.20 + 15 % = 1.38.
            self.assertIn('Block 1: 50.0 kWh @ 1.38', lines)
            self.assertTrue(any(d.startswith('Block 2:') for d in lines))
            self.assertEqual(
                sum((x.amount or D(0) for x in sale.quote_lines), D(0)), D('300.00')
            )
            self.assertEqual(sale.quote_tender, D('300.00'))
            self.assertEqual(Vend.search_count([]), 0)
            # Another tender, another quote; a refused one says why.
            self.assertGreater(
                self.quote(env.meter, tender=D('400.00')).units_kwh, sale.units_kwh
            )
            low = self.quote(env.meter, tender=D('5'))
            self.assertIn('below the minimum', low.quote_message)
            self.assertFalse(low.quote_lines)
            self.assertIsNone(low.units_kwh)
            by_kwh = self.quote(env.meter, requested_kwh=D('20.0'))
            self.assertGreaterEqual(by_kwh.units_kwh, D('20.0'))
            self.assertGreater(by_kwh.quote_tender, D(0))

    @with_transaction()
    def test_sale_defaults(self):
        "The customer's account is on screen when the meter is picked"
        Wizard = Pool().get('prepaid.vend.wizard', type='wizard')
        with with_vending() as env:
            session_id, _, _ = Wizard.create()
            Wizard.execute(session_id, {}, 'start')
            result = Wizard.execute(
                session_id, {'start': {'search': '04000000001'}}, 'select'
            )
            defaults = result['view']['defaults']
            self.assertEqual(defaults['customer'], env.customer.id)
            self.assertEqual(defaults['tariff'], env.tariff.id)
            self.assertEqual(defaults['payment_method'], 'cash')
            # No token engine, no key change (prepaid_sts answers the hook).
            self.assertEqual(defaults['key_changes'], '')

    @with_transaction()
    def test_requested_kwh(self):
        "Selling a number of kWh computes the tender"
        Vend = Pool().get('prepaid.vend')
        with with_vending() as env:
            open_session(env)
            self.run_wizard(
                '04000000001', {'payment_method': 'cash', 'requested_kwh': D('20.0')}
            )
            (vend,) = Vend.search([])
            self.assertGreaterEqual(vend.units_kwh, D('20.0'))
            self.assertEqual(vend.requested_kwh, D('20.0'))

    @with_transaction()
    def test_refusals(self):
        "No open shift, blocked meter, tender out of limits: clear refusals"
        Vend = Pool().get('prepaid.vend')
        with with_vending() as env:
            with self.assertRaisesRegex(UserError, 'open cashier shift'):
                self.run_wizard(
                    'C0001', {'payment_method': 'cash', 'tender': D('100.00')}
                )
            open_session(env)
            with self.assertRaisesRegex(UserError, 'below the minimum'):
                self.run_wizard('C0001', {'payment_method': 'cash', 'tender': D('5')})
            with self.assertRaisesRegex(UserError, 'above the maximum'):
                self.run_wizard(
                    'C0001', {'payment_method': 'cash', 'tender': D('9000')}
                )
            with self.assertRaisesRegex(UserError, 'tender received'):
                self.run_wizard('C0001', {'payment_method': 'cash'})
            env.meter.vend_blocked = True
            env.meter.vend_blocked_reason = 'tampering'
            env.meter.save()
            with self.assertRaisesRegex(UserError, 'tampering'):
                self.run_wizard(
                    'C0001', {'payment_method': 'cash', 'tender': D('100.00')}
                )
            self.assertEqual(Vend.search_count([]), 0)

    @with_transaction()
    def test_ambiguous_search(self):
        "Several matches and no choice: the cashier must pick one"
        pool = Pool()
        Wizard = pool.get('prepaid.vend.wizard', type='wizard')
        from .vend_fixtures import new_meter, new_point

        with with_vending() as env:
            new_meter('04000000002', new_point(env, 'SP2'))
            session_id, _, _ = Wizard.create()
            Wizard.execute(session_id, {}, 'start')
            with self.assertRaisesRegex(UserError, 'matches 2 meters'):
                Wizard.execute(session_id, {'start': {'search': 'C0001'}}, 'select')
            result = Wizard.execute(
                session_id,
                {'start': {'search': 'C0001', 'meter': env.meter.id}},
                'select',
            )
            self.assertEqual(result['view']['defaults']['meter'], env.meter.id)
            # Back to the search keeps the request key: one wizard, one vend.
            key = Wizard(session_id).start.idempotency_key
            back = Wizard.execute(session_id, {}, 'start')['view']['defaults']
            self.assertEqual(back['idempotency_key'], key)
            self.assertEqual(back['search'], 'C0001')


def test_group_token():
    assert group_token('12345678901234567890') == '1234 5678 9012 3456 7890'


def test_quote_lines_known_answer():
    "docs/vending.md Example C figures as the cashier reads them, VAT included"
    from trytond.modules.prepaid_vending.tariff.blocks import BlockUse
    from trytond.modules.prepaid_vending.tariff.vend import ChargeLine, VendQuote

    quote = VendQuote(
        tender=D('300.00'),
        channel_fee=ChargeLine('Channel fee', D(0), D(0)),
        charges=(ChargeLine('Fixed charge', D('50.00'), D('7.50')),),
        emergency_credit_recovered=D(0),
        debt_recovered=D('40.00'),
        debt_remaining=D(0),
        energy_amount=D('176.09'),
        energy_vat=D('26.41'),
        units_kwh=D('122.5'),
        blocks=(
            BlockUse(1, D('50.0'), D('1.20'), D('60.00')),
            BlockUse(2, D('72.5'), D('1.60'), D('116.09')),
        ),
        month_to_date_kwh=D('122.5'),
        credit_amount=D(0),
        fbe_kwh=D(0),
    )
    calculator = SimpleNamespace(prices_include_vat=False, vat_rate=D('0.15'))
    lines = [
        (x.description, x.amount, x.vat)
        for x in quote_lines(quote, calculator, line=SimpleNamespace)
    ]
    assert lines == [
        ('Fixed charge', D('57.50'), D('7.50')),  # zero channel fee not shown
        ('Debt recovery', D('40.00'), D(0)),
        ('Block 1: 50.0 kWh @ 1.38', None, None),
        ('Block 2: 72.5 kWh @ 1.84', None, None),
        ('Energy', D('202.50'), D('26.41')),
    ]
    assert sum(amount or 0 for _, amount, _ in lines) == quote.tender
