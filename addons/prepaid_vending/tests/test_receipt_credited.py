"""The receipt shows the kWh the token carries when it differs from the kWh
paid: an STS amount is rounded up to the next value the token can encode, so
above 1638.3 kWh a 1700.5 kWh purchase is carried as 1701.4 kWh (IEC 62055-41
amount field, exponent/mantissa, rounded up; docs/sts.md section 4.5 and
addons/prepaid_sts/tests/test_sts_integrity.py).

These tests need no database; the receipts of real STS vends are tested by
prepaid_sts (tests/test_sts_receipt_credited.py), which depends on this
module."""

import unittest
from decimal import Decimal as D
from types import SimpleNamespace

from ..receipt import (
    TOKEN_VALUE_LABEL,
    ReceiptData,
    Row,
    format_text,
    token_value_kwh,
)


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
