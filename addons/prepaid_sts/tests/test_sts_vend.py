"""The vend hook: prepaid.vend issues STS tokens through prepaid_sts."""

from __future__ import annotations

import unittest
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.prepaid_sts.engine import decode_token, derive_decoder_key
from trytond.modules.prepaid_vending.tests.vend_fixtures import (
    open_session,
    with_vending,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction

from .tools import (
    PAN,
    VK_DKGA02,
    VK_DKGA04,
    StsTestMixin,
    create_vending_key,
)


def set_sts(meter, **values):
    Meter = Pool().get("prepaid.meter")
    params = {
        "sts_pan": PAN,
        "sts_sgc": "201457",
        "sts_krn": 1,
        "sts_tariff_index": "01",
        "sts_key_type": "2",
        "sts_base_date": "14",
        "sts_ea": "07",
    }
    params.update(values)
    Meter.write([meter], params)


class StsVendTestCase(StsTestMixin, unittest.TestCase):
    "STS vend hook"

    def vend(self, env, tender, key):
        Vend = Pool().get("prepaid.vend")
        return Vend.vend(env.meter, tender, "cash", env.sales_point, key)

    @with_transaction()
    def test_vend_key_change_then_credit(self):
        "Pending key change tokens come first, then the credit token"
        pool = Pool()
        KeyChange = pool.get("prepaid.sts.key_change")
        Token = pool.get("prepaid.sts.token")
        with with_vending(kind="sts_keypad") as env:
            open_session(env)
            create_vending_key()
            create_vending_key(krn=2)
            set_sts(env.meter)
            key_change = KeyChange.issue(env.meter, {"krn": 2}, reason="KRN 2")
            vend = self.vend(env, Decimal("100.00"), "sts1")
            kinds = [t.kind for t in vend.tokens]
            self.assertEqual(kinds, ["key_change", "key_change", "credit"])
            self.assertEqual([t.sequence for t in vend.tokens], [1, 2, 3])
            self.assertEqual(key_change.delivered_with, vend)
            new_key = derive_decoder_key(
                bytes.fromhex(VK_DKGA04), "04", PAN, 2, "201457", "01", 2, "14", "07"
            )
            credit = vend.tokens[2]
            decoded = decode_token(credit.token, new_key, "07")
            self.assertTrue(decoded.crc_ok)
            self.assertEqual((decoded.token_class, decoded.subclass), (0, 0))
            self.assertEqual(decoded.amount, vend.units_kwh)
            (logged,) = Token.search([("origin", "=", str(vend))])
            self.assertEqual(logged.digits, credit.token)
            self.assertEqual(logged.kind, "credit")
            # Still pending (not confirmed): printed again on the next vend.
            second = self.vend(env, Decimal("50.00"), "sts2")
            self.assertEqual(
                [t.kind for t in second.tokens], ["key_change", "key_change", "credit"]
            )
            KeyChange.confirm([key_change])
            third = self.vend(env, Decimal("50.00"), "sts3")
            self.assertEqual([t.kind for t in third.tokens], ["credit"])
            self.assertGreater(third.tokens[0].token, "")
            tids = [t.tid for t in Token.search([("kind", "=", "credit")])]
            self.assertEqual(len(set(tids)), 3)

    @with_transaction()
    def test_vend_refused_after_cutover(self):
        "A base-1993 meter cannot vend after the cut-over: roll it first"
        with with_vending(kind="sts_keypad") as env:
            open_session(env)
            create_vending_key(sgc="123456", base_date="93", dkga="02", key=VK_DKGA02)
            set_sts(env.meter, sts_sgc="123456", sts_base_date="93")
            with self.assertRaises(UserError) as cm:
                self.vend(env, Decimal("100.00"), "old")
            self.assertIn("TID rollover", str(cm.exception))
