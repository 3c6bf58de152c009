"""Amounts typed or sent by users: one reading everywhere (issue 11, "raw
errors reach users").  ``inputs.numbers.parse_decimal`` is the rule; the
wizard, ``Vend.vend``, ``Vend.trial`` and ``rpc_vend`` go through it, so a bad
amount gets a clear refusal and nothing is written."""

import unittest
from decimal import Decimal as D

from trytond.modules.prepaid_vending.amounts import AmountError
from trytond.modules.prepaid_vending.inputs.numbers import (
    NumberError,
    parse_decimal,
)
from trytond.modules.prepaid_vending.vend import VendError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .vend_fixtures import open_session, with_vending

ARABIC_INDIC_1000 = '\u0661\u0660\u0660\u0660'


class ParseDecimalTestCase(unittest.TestCase):
    "The rule itself (pure Python)"

    def test_accepted(self):
        for value, expected in [
            ('150', D('150')),
            ('150.50', D('150.50')),
            (' 150.5 ', D('150.5')),
            ('-0.5', D('-0.5')),
            ('.5', D('0.5')),
            ('7.', D('7')),
            (42, D(42)),
            (D('1E+5'), D('100000')),
            ('999999999999.99', D('999999999999.99')),
            # Trailing zeros are not places.
            ('1.50000000000', D('1.50000000')),
        ]:
            with self.subTest(value=value):
                self.assertEqual(parse_decimal(value), expected)

    def test_refused(self):
        for value, code in [
            ('1_000', 'syntax'),
            (ARABIC_INDIC_1000, 'syntax'),
            ('\uff11\uff10', 'syntax'),  # full-width digits
            ('1e30', 'syntax'),
            ('1 000', 'syntax'),
            ('1,000.00', 'syntax'),
            ('NaN', 'syntax'),
            ('Infinity', 'syntax'),
            ('abc', 'syntax'),
            ('', 'syntax'),
            ('1' * 33, 'too_long'),
            (1.5, 'type'),
            (True, 'type'),
            (None, 'type'),
            ([1], 'type'),
            (D('NaN'), 'not_finite'),
            (D('-Infinity'), 'not_finite'),
            (D('1E+26'), 'too_large'),
            (10**12, 'too_large'),
            ('1000000000000', 'too_large'),
            ('0.000000001', 'places'),
        ]:
            with self.subTest(value=value):
                with self.assertRaises(NumberError) as cm:
                    parse_decimal(value)
                self.assertEqual(cm.exception.code, code)
        with self.assertRaises(NumberError) as cm:
            parse_decimal('10.005', places=2)
        self.assertEqual(str(cm.exception), '10.005 has more than 2 decimal places')
        self.assertEqual(parse_decimal('10.50', places=2), D('10.50'))

    def test_messages_are_bounded(self):
        "A message quotes at most 40 characters of what was sent"
        with self.assertRaises(NumberError) as cm:
            parse_decimal('x' * 30)
        self.assertLess(len(str(cm.exception)), 200)
        with self.assertRaises(NumberError) as cm:
            parse_decimal('9' * 10000)
        self.assertLess(len(str(cm.exception)), 200)


class AmountInputTestCase(unittest.TestCase):
    "Every entry point of the vend refuses bad amounts clearly"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_vend_and_trial_refuse_huge_amounts(self):
        "1e26 was a bare [<class 'decimal.InvalidOperation'>]"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            open_session(env)
            huge = D('1E+26')
            message = 'The tender 1E.26 is too large: amounts have at most 12'
            with self.assertRaisesRegex(VendError, message):
                Vend.vend(env.meter, huge, 'cash', env.sales_point, 'h1')
            with self.assertRaisesRegex(VendError, message):
                Vend.trial(env.meter, tender=huge)
            with self.assertRaisesRegex(VendError, 'The kWh 1E.26 is too large'):
                Vend.trial(env.meter, requested_kwh=huge)
            with self.assertRaisesRegex(VendError, 'The kWh 1E.26 is too large'):
                Vend.vend(
                    env.meter, None, 'cash', env.sales_point, 'h2', requested_kwh=huge
                )
            self.assertEqual(Vend.search([]), [])

    @with_transaction()
    def test_rpc_vend_refuses_what_is_not_plain_decimal(self):
        "1_000 and Arabic-Indic digits were sold as 1000"
        Vend = Pool().get('prepaid.vend')
        with with_vending() as env:
            serial = env.meter.serial
            for tender, message in [
                ('1_000', 'The tender "1_000" is not a number: write it with'),
                (ARABIC_INDIC_1000, 'is not a number: write it with the digits'),
                ('1e26', 'The tender "1e26" is not a number'),
                ('1000000000000', 'The tender 1000000000000 is too large'),
                ('100.001', 'The tender 100.001 has more than 2 decimal places'),
                (100.5, 'is not a number: enter a decimal number'),
            ]:
                with self.subTest(tender=tender):
                    # Without a shift only an API terminal (or root) sells.
                    with self.assertRaisesRegex(VendError, message):
                        with Transaction().set_user(0):
                            Vend.rpc_vend(serial, tender, 'card', None, 'r1')
            with Transaction().set_user(0):
                result = Vend.rpc_vend(serial, ' 100.00 ', 'card', None, 'r2')
            self.assertEqual(result['tender'], '100.00')
            self.assertEqual(len(Vend.search([])), 1)

    @with_transaction()
    def test_wizard_refuses_text_that_is_not_a_number(self):
        "'abc' in the wizard's tender was a bare ConversionSyntax"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Wizard = pool.get('prepaid.vend.wizard', type='wizard')
        Sale = pool.get('prepaid.vend.wizard.sale')
        with with_vending() as env:
            open_session(env)
            session_id, _, _ = Wizard.create()
            Wizard.execute(session_id, {}, 'start')
            Wizard.execute(session_id, {'start': {'meter': env.meter.id}}, 'select')
            for tender, error, message in [
                ('abc', AmountError, 'The Tender "abc" is not a number'),
                ('1_000', AmountError, 'The Tender "1_000" is not a number'),
                (ARABIC_INDIC_1000, AmountError, 'is not a number: write it'),
                (D('1E+26'), VendError, 'The tender 1E.26 is too large'),
            ]:
                with self.subTest(tender=tender):
                    with self.assertRaisesRegex(error, message):
                        Wizard.execute(
                            session_id,
                            {'sale': {'payment_method': 'cash', 'tender': tender}},
                            'issue',
                        )
            with self.assertRaisesRegex(AmountError, 'Requested kWh "1e3"'):
                Wizard.execute(
                    session_id,
                    {'sale': {'payment_method': 'cash', 'requested_kwh': '1e3'}},
                    'issue',
                )
            # The quote as the tender is typed (on_change): the record the
            # client's values build refuses text, a huge Decimal gets the
            # message instead of a quote.
            with self.assertRaisesRegex(AmountError, 'The Tender "abc"'):
                Sale(meter=env.meter.id, tender='abc')
            sale = Sale(meter=env.meter, tender=D('1E+26'), requested_kwh=None)
            sale.on_change_tender()
            self.assertRegex(sale.quote_message, 'The tender 1E.26 is too large')
            self.assertEqual(Vend.search([]), [])
            # Text in plain notation is read as the number it is.
            result = Wizard.execute(
                session_id,
                {'sale': {'payment_method': 'cash', 'tender': '100.00'}},
                'issue',
            )
            self.assertEqual(result['view']['state'], 'receipt')
            (vend,) = Vend.search([])
            self.assertEqual(vend.tender, D('100.00'))
            Wizard.delete(session_id)
