"""Receipts of real STS vends show the kWh the token carries when it differs
from the kWh paid: an STS amount is rounded up to the next value the token can
encode, so above 1638.3 kWh a 1700.5 kWh purchase is carried as 1701.4 kWh
(IEC 62055-41 amount field, exponent/mantissa, rounded up; docs/sts.md
section 4.5 and tests/test_sts_integrity.py).  The receipt's own logic is
tested without a database by prepaid_vending (tests/test_receipt_credited.py).

The vends run the real STS engine with the public STS 531-1-07 test vending
key of tests/tools.py."""

import unittest
from decimal import Decimal as D

from trytond.modules.prepaid_vending.receipt import (
    TOKEN_VALUE_LABEL,
    Row,
    receipt_data,
    receipt_text,
)
from trytond.modules.prepaid_vending.tests.test_receipt import render_report
from trytond.modules.prepaid_vending.tests.vend_fixtures import (
    open_session,
    with_vending,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction

from .test_sts_vend import set_sts
from .tools import StsTestMixin, create_vending_key


class CreditedReceiptTestCase(StsTestMixin, unittest.TestCase):
    "Receipts of real STS vends"

    def sts_vend(self, env, kwh: str, key: str):
        Vend = Pool().get('prepaid.vend')
        if not Pool().get('prepaid.sts.vending_key').search([]):
            create_vending_key()
            set_sts(env.meter)
        return Vend.vend(
            env.meter, None, 'cash', env.sales_point, key, requested_kwh=D(kwh)
        )

    def render_html(self, vend) -> str:
        "The report's HTML before conversion"
        html, _ = render_report([vend.id], {})
        return html

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
