"""The cashier's Sell Electricity wizard, driven as the client drives it
(``create`` then ``execute`` per button, the session kept in the database).

Known answers: docs/vending.md Example C (blocks excl. VAT 0-50 @ 1.20,
50-350 @ 1.60; R50 monthly fixed charge + 15 % VAT = R57.50; R300 with R40
debt gives 122.5 kWh, energy R202.50 incl. R26.41 VAT).  Wizard figures are
checked against ``Vend.trial`` of the same database, not retyped.
"""

import unittest
from decimal import Decimal as D

from trytond.exceptions import UserError
from trytond.modules.prepaid_vending.vend_wizard import (
    find_meters,
    group_token,
    quote_text,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from .vend_fixtures import open_session, with_vending


class VendWizardTestCase(unittest.TestCase):
    "Sell Electricity wizard"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def run_wizard(self, search, sale, trial=False, meter=None):
        """Start the wizard, search, pick the meter, optionally Trial, Issue.

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
        if trial:
            result = Wizard.execute(session_id, {'sale': sale}, 'trial')
            self.assertEqual(result['view']['state'], 'sale')
        result = Wizard.execute(session_id, {'sale': sale}, 'issue')
        return session_id, result

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
        "Trial writes nothing; Issue vends once, a retried Issue returns it"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Wizard = pool.get('prepaid.vend.wizard', type='wizard')
        with with_vending() as env:
            open_session(env)
            quote = Vend.trial(env.meter, tender=D('300.00'))
            session_id, result = self.run_wizard(
                'C0001', {'payment_method': 'card', 'tender': D('300.00')}, trial=True
            )
            self.assertEqual(result['view']['state'], 'receipt')
            (vend,) = Vend.search([])
            self.assertEqual(vend.units_kwh, quote.units_kwh)
            self.assertEqual(vend.payment_method, 'card')
            self.assertEqual(vend.tender, D('300.00'))
            values = result['view']['defaults']
            self.assertEqual(values['vend'], vend.id)
            self.assertIn(vend.number, values['receipt'])
            self.assertIn(f'{vend.units_kwh}', values['receipt'])
            # A double click or a client retry after a time-out.
            again = Wizard.execute(
                session_id,
                {'sale': {'payment_method': 'card', 'tender': D('300.00')}},
                'issue',
            )
            self.assertEqual(again['view']['defaults']['vend'], vend.id)
            self.assertEqual(Vend.search_count([]), 1)
            # The print button renders the receipt report of that vend.
            printed = Wizard.execute(session_id, {}, 'print_')
            ((action, data),) = printed['actions']
            self.assertEqual(action['report_name'], 'prepaid.vend.receipt')
            self.assertEqual(data['ids'], [vend.id])
            self.assertEqual(printed['view']['state'], 'receipt')

    @with_transaction()
    def test_trial_shows_quote(self):
        "The quote shows every deduction with its VAT and the blocks"
        Wizard = Pool().get('prepaid.vend.wizard', type='wizard')
        Vend = Pool().get('prepaid.vend')
        with with_vending() as env:
            session_id, _, _ = Wizard.create()
            Wizard.execute(session_id, {}, 'start')
            Wizard.execute(session_id, {'start': {'search': '04000000001'}}, 'select')
            result = Wizard.execute(
                session_id,
                {'sale': {'payment_method': 'cash', 'tender': D('300.00')}},
                'trial',
            )
            text = result['view']['defaults']['quote']
            self.assertIn('Fixed charge', text)
            self.assertIn('57.50', text)  # R50 + 15 % VAT
            self.assertIn('Block 1: 50.0 kWh @ 1.20', text)
            self.assertIn('Block 2:', text)
            self.assertEqual(Vend.search_count([]), 0)
            # The customer's account is on screen.
            defaults = result['view']['defaults']
            self.assertEqual(defaults['customer'], env.customer.id)
            self.assertEqual(defaults['tariff'], env.tariff.id)

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


def test_quote_text_known_answer():
    "docs/vending.md Example C figures rendered as the cashier reads them"
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
    text = quote_text(quote)
    lines = text.splitlines()
    assert all(len(line) <= 48 for line in lines)
    assert 'Channel fee' not in text  # zero deductions are not shown
    assert any(
        line.startswith('Fixed charge') and line.endswith('57.50') for line in lines
    )
    assert any(
        line.startswith('Debt recovery') and line.endswith('40.00') for line in lines
    )
    assert any(line.startswith('Energy') and line.endswith('202.50') for line in lines)
    assert any(
        line.startswith('Total VAT') and line.endswith('33.91') for line in lines
    )
    assert lines[-2].startswith('kWh') and lines[-2].endswith('122.5')
