"""Free basic electricity through STS: the month's allowance is its own class 0
token after the credit token, issued once a month."""

from __future__ import annotations

import unittest
from decimal import Decimal

from trytond.modules.prepaid_sts.engine import decode_token, derive_decoder_key
from trytond.modules.prepaid_vending.tests.vend_fixtures import (
    open_session,
    with_vending,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction

from .test_sts_vend import set_sts
from .tools import (
    PAN,
    VK_DKGA04,
    StsTestMixin,
    create_vending_key,
)


class StsFreeBasicElectricityTestCase(StsTestMixin, unittest.TestCase):
    "Free basic electricity token"

    @with_transaction()
    def test_fbe_token_once_a_month(self):
        pool = Pool()
        Vend = pool.get("prepaid.vend")
        Version = pool.get("prepaid.tariff.version")
        Token = pool.get("prepaid.sts.token")
        with with_vending(kind="sts_keypad") as env:
            Version.write(list(env.tariff.versions), {"fbe_kwh_per_month": Decimal(50)})
            open_session(env)
            create_vending_key()
            set_sts(env.meter)
            decoder_key = derive_decoder_key(
                bytes.fromhex(VK_DKGA04), "04", PAN, 2, "201457", "01", 1, "14", "07"
            )

            first = Vend.vend(
                env.meter, Decimal("100.00"), "cash", env.sales_point, "f1"
            )
            self.assertEqual([t.kind for t in first.tokens], ["credit", "fbe"])
            self.assertEqual(first.fbe_kwh, Decimal("50.0"))
            credit, fbe = (
                decode_token(t.token, decoder_key, "07") for t in first.tokens
            )
            # Both are class 0 electricity tokens the meter accepts, with their
            # own TIDs: the meter refuses a second token with the same TID.
            for decoded in (credit, fbe):
                self.assertTrue(decoded.crc_ok)
                self.assertEqual((decoded.token_class, decoded.subclass), (0, 0))
            self.assertEqual(credit.amount, first.units_kwh)
            self.assertEqual(fbe.amount, Decimal("50.0"))
            self.assertNotEqual(credit.tid, fbe.tid)
            self.assertEqual(first.tokens[1].units, Decimal("50.0"))
            (logged,) = Token.search(
                [("kind", "=", "fbe"), ("origin", "=", str(first))]
            )
            self.assertEqual(logged.digits, first.tokens[1].token)

            second = Vend.vend(
                env.meter, Decimal("50.00"), "cash", env.sales_point, "f2"
            )
            self.assertEqual([t.kind for t in second.tokens], ["credit"])
            self.assertFalse(second.fbe_kwh)
