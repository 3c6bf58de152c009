"""The receipt shows the kWh the token carries when it differs from the kWh
paid: an STS amount is rounded up to the next value the token can encode, so
above 1638.3 kWh a 1700.5 kWh purchase is carried as 1701.4 kWh (IEC 62055-41
amount field, exponent/mantissa, rounded up; docs/sts.md section 4.5 and
addons/prepaid_sts/tests/test_sts_integrity.py).

The vend tests run the real STS engine: they activate prepaid_sts (which
depends on this module) with the public STS 531-1-07 test vending key of
prepaid_sts/tests/tools.py."""

import unittest
from decimal import Decimal as D
from types import SimpleNamespace
from unittest.mock import patch

from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from ..receipt import (
    TOKEN_VALUE_LABEL,
    ReceiptData,
    Row,
    format_text,
    receipt_data,
    receipt_text,
    token_value_kwh,
)
from .vend_fixtures import open_session, with_vending


def fake_vend(units, fbe=None, tokens=(), credited=None):
    "The attributes token_value_kwh reads"
    return SimpleNamespace(
        units_kwh=units,
        fbe_kwh=fbe,
        tokens=[SimpleNamespace(kind=k, units=u) for k, u in tokens],
        credited_kwh=credited,
    )


class TokenValueTestCase(unittest.TestCase):
    "token_value_kwh and its line: no database"

    def test_rounded_up_amount_shown(self):
        vend = fake_vend(D('1700.5'), tokens=[('credit', D('1701.4'))],
                         credited=D('1701.4'))  # fmt: skip
        self.assertEqual(token_value_kwh(vend), D('1701.4'))

    def test_same_amount_not_shown(self):
        # SQLite returns unquantised Numerics: 100.50 is 100.5.
        vend = fake_vend(D('100.5'), tokens=[('credit', D('100.50'))],
                         credited=D('100.50'))  # fmt: skip
        self.assertIsNone(token_value_kwh(vend))

    def test_fbe_token_counts_on_both_sides(self):
        vend = fake_vend(
            D('80.0'),
            fbe=D('50.0'),
            tokens=[('credit', D('80.0')), ('fbe', D('50.0'))],
            credited=D('130.0'),
        )
        self.assertIsNone(token_value_kwh(vend))
        vend.credited_kwh = D('1751.4')
        vend.units_kwh = D('1700.5')
        self.assertEqual(token_value_kwh(vend), D('1751.4'))

    def test_no_token_no_line(self):
        # Remote credit of a smart meter: FBE is credited without a token.
        vend = fake_vend(D('80.0'), fbe=D('50.0'), credited=D('130.0'))
        self.assertIsNone(token_value_kwh(vend))

    def test_text_line(self):
        data = ReceiptData(
            number='R1',
            utility='City Power',
            units=[
                Row('kWh', '1700.5', 'total'),
                Row(TOKEN_VALUE_LABEL, '1701.4 kWh', 'credited'),
            ],
        )
        for width in (32, 48):
            lines = format_text(data, width).splitlines()
            (line,) = [x for x in lines if x.startswith(TOKEN_VALUE_LABEL)]
            self.assertTrue(line.endswith('1701.4 kWh'))
            self.assertEqual(len(line), width)


class CreditedReceiptTestCase(unittest.TestCase):
    "Receipts of real STS vends"

    @classmethod
    def setUpClass(cls):
        from trytond.modules.prepaid_sts.tests.tools import set_master_key

        cls._previous_master_key = set_master_key()
        activate_module('prepaid_sts')

    @classmethod
    def tearDownClass(cls):
        from trytond.modules.prepaid_sts.tests.tools import restore_master_key

        restore_master_key(cls._previous_master_key)

    def sts_vend(self, env, kwh: str, key: str):
        from trytond.modules.prepaid_sts.tests.test_sts_vend import set_sts
        from trytond.modules.prepaid_sts.tests.tools import create_vending_key

        Vend = Pool().get('prepaid.vend')
        if not Pool().get('prepaid.sts.vending_key').search([]):
            create_vending_key()
            set_sts(env.meter)
        return Vend.vend(
            env.meter, None, 'cash', env.sales_point, key, requested_kwh=D(kwh)
        )

    def render_html(self, vend) -> str:
        "The report's HTML before conversion"
        Report = Pool().get('prepaid.vend.receipt', type='report')
        rendered = []
        original = Report.convert.__func__

        def convert(cls, report, content, *args, **kwargs):
            rendered.append(content)
            return original(cls, report, content, *args, **kwargs)

        with patch.object(Report, 'convert', classmethod(convert)):
            Report.execute([vend.id], {'model': 'prepaid.vend'})
        (html,) = rendered
        return html.decode('utf-8') if isinstance(html, bytes) else html

    @with_transaction()
    def test_1700_5_kwh_receipt_shows_token_value(self):
        with with_vending(kind='sts_keypad') as env:
            open_session(env)
            vend = self.sts_vend(env, '1700.5', 'big')
            self.assertEqual(vend.units_kwh, D('1700.5'))
            self.assertEqual(vend.credited_kwh, D('1701.4'))
            data = receipt_data(vend)
            self.assertEqual(
                data.units,
                [
                    Row('Energy purchased', '1700.5 kWh', 'total'),
                    Row(TOKEN_VALUE_LABEL, '1701.4 kWh', 'credited'),
                ],
            )
            text = receipt_text(vend)
            self.assertRegex(text, r'(?m)^Energy purchased +1700\.5 kWh$')
            self.assertRegex(text, r'(?m)^Token value +1701\.4 kWh$')
            html = self.render_html(vend)
            self.assertRegex(
                html,
                r'<tr class="credited">\s*<th>Token value</th>\s*'
                r'<td>1701\.4 kWh</td>',
            )

    @with_transaction()
    def test_encodable_amount_has_no_token_value_line(self):
        with with_vending(kind='sts_keypad') as env:
            open_session(env)
            vend = self.sts_vend(env, '100.5', 'small')
            self.assertEqual(vend.credited_kwh, D('100.5'))
            self.assertEqual(
                receipt_data(vend).units,
                [Row('Energy purchased', '100.5 kWh', 'total')],
            )
            self.assertNotIn(TOKEN_VALUE_LABEL, receipt_text(vend))
            self.assertNotIn(TOKEN_VALUE_LABEL, self.render_html(vend))
