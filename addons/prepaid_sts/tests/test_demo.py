"""The demo utility sells STS tokens: the demo vending key, commissioned
keypad and smart meters and a vend whose token the engine decodes to the
vend's kWh."""

from __future__ import annotations

import os
import unittest
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.company.tests import create_company, set_company
from trytond.modules.prepaid_sts import masterkey
from trytond.modules.prepaid_sts.engine import (
    decode_token,
    derive_decoder_key,
    validate_pan,
)
from trytond.modules.prepaid_vending.tests.vend_fixtures import setup_accounting
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction, without_check_access

from prepaid_demo.sts import (
    DEMO_KRN,
    DEMO_SGC,
    demo_decoder_key,
    demo_pan,
    demo_vending_key,
)
from prepaid_demo.vending import (
    create_demo_data,
    setup_demo_vending,
)

from .tools import StsTestMixin, restore_master_key

SEED = 7


def build_demo():
    "The demo as scripts/setup_demo.py builds it, in the current company"
    setup_accounting(Pool().get('company.company')(Transaction().context["company"]))
    create_demo_data(seed=SEED, customers=30)
    return setup_demo_vending(seed=SEED)


class StsDemoTestCase(StsTestMixin, unittest.TestCase):
    "STS part of the demo"

    @with_transaction()
    def test_vend_on_demo_keypad_meter(self):
        "admin opens a shift and sells; the token decodes to the vend's kWh"
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        VendingKey = pool.get("prepaid.sts.vending_key")
        SalesPoint = pool.get("prepaid.sales_point")
        Session = pool.get("prepaid.cashier.session")
        Vend = pool.get("prepaid.vend")
        Tariff = pool.get("prepaid.tariff")
        with set_company(create_company()):
            counts = build_demo()
            keypads = Meter.search(
                [("kind", "=", "sts_keypad"), ("role", "=", "customer")],
                order=[("serial", "ASC")],
            )
            # Smart meters take their credit as STS tokens through the
            # head-end: they are commissioned too.
            smart = Meter.search(
                [("kind", "=", "smart_prepaid"), ("role", "=", "customer")],
                order=[("serial", "ASC")],
            )
            self.assertTrue(keypads)
            self.assertTrue(smart)
            self.assertEqual(
                counts["sts_meters_commissioned"], len(keypads) + len(smart)
            )
            postpaid = Meter.search([("kind", "=", "postpaid")])
            self.assertTrue(postpaid)
            self.assertFalse(any(m.sts_pan for m in postpaid))

            # The key store holds the seed's key, encrypted, marked DEMO.
            (key,) = VendingKey.search([])
            self.assertIn("DEMO", key.name)
            self.assertEqual(
                (key.sgc, key.krn, key.dkga, key.ea), (DEMO_SGC, 1, "04", "07")
            )
            with without_check_access():
                cipher = key.key_cipher
            self.assertNotIn(demo_vending_key(SEED).hex(), cipher)
            self.assertEqual(masterkey.decrypt(cipher), demo_vending_key(SEED))

            for meter in keypads + smart:
                self.assertTrue(meter.sts_commissioned)
                self.assertEqual(validate_pan(meter.sts_pan), meter.sts_pan)
                self.assertEqual(meter.sts_pan[6:17], meter.serial)
                tariff = Tariff.for_meter(meter, meter.installations[0].installed_on)
                self.assertEqual(meter.sts_tariff_index, tariff.sts_tariff_index)

            (head_office,) = SalesPoint.search([("code", "=", "HO")])
            with Transaction().set_context(_check_access=True):
                Session.create([{"sales_point": head_office.id}])
            (meter,) = [
                m for m in keypads if m.customer.customer_category.code == "RESIDENTIAL"
            ][:1]
            vend = Vend.vend(meter, Decimal("200.00"), "cash", head_office, "demo-sts")
            (token,) = vend.tokens
            self.assertEqual(token.kind, "credit")
            self.assertRegex(token.token, r"^\d{20}$")
            # Derived here from the seed, not read back from the key store.
            decoder_key = derive_decoder_key(
                demo_vending_key(SEED),
                "04",
                meter.sts_pan,
                2,
                DEMO_SGC,
                meter.sts_tariff_index,
                DEMO_KRN,
                "14",
                "07",
            )
            # What scripts/demo loads into the simulated meters.
            self.assertEqual(demo_decoder_key(meter, SEED), decoder_key)
            self.assertIsNone(demo_decoder_key(postpaid[0], SEED))
            decoded = decode_token(token.token, decoder_key, "07")
            self.assertTrue(decoded.crc_ok)
            self.assertEqual((decoded.token_class, decoded.subclass), (0, 0))
            # R57.50 service charge, then 50 kWh @ 1.20 + R63.91 / 1.60 (excl. VAT).
            self.assertEqual(vend.units_kwh, Decimal("89.9"))
            self.assertEqual(decoded.amount, vend.units_kwh)
            Vend.book_pending()  # as the queued task does after the commit
            self.assertTrue(Vend(vend.id).move)

            # Running the set-up again changes nothing.
            pans = [(m.id, m.sts_pan, m.sts_tariff_index) for m in keypads + smart]
            again = setup_demo_vending(seed=SEED)
            self.assertEqual(again["sts_meters_commissioned"], 0)
            self.assertEqual(VendingKey.search_count([]), 1)
            with without_check_access():
                self.assertEqual(VendingKey(key.id).key_cipher, cipher)
            self.assertEqual(
                [
                    (m.id, m.sts_pan, m.sts_tariff_index)
                    for m in Meter.browse(keypads + smart)
                ],
                pans,
            )

    @with_transaction()
    def test_no_master_key_stores_nothing(self):
        "No master key: no key is stored, and the keypad meters cannot sell"
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        VendingKey = pool.get("prepaid.sts.vending_key")
        SalesPoint = pool.get("prepaid.sales_point")
        Session = pool.get("prepaid.cashier.session")
        Vend = pool.get("prepaid.vend")
        previous = os.environ.pop(masterkey.ENV_NAME, None)
        try:
            with set_company(create_company()):
                counts = build_demo()
                self.assertEqual(counts["sts_meters_commissioned"], 0)
                self.assertIn("no master key", counts["sts_key"])
                self.assertEqual(VendingKey.search_count([]), 0)
                keypad = Meter.search([("kind", "=", "sts_keypad")], limit=1)[0]
                self.assertFalse(keypad.sts_pan)
                (head_office,) = SalesPoint.search([("code", "=", "HO")])
                Session.open_session(head_office)
                with self.assertRaises(UserError):
                    Vend.vend(keypad, Decimal("50.00"), "cash", head_office, "nokey")
        finally:
            restore_master_key(previous)

    def test_demo_pan(self):
        "The PAN is IIN 600727 + the 11-digit serial + its Luhn digit"
        self.assertEqual(demo_pan("01312440157"), "600727013124401573")
        self.assertEqual(validate_pan(demo_pan("01312440157")), "600727013124401573")
        self.assertIsNone(demo_pan("CHK0001-12345"))
        self.assertIsNone(demo_pan("123"))
        self.assertEqual(len(demo_vending_key(1)), 20)
        self.assertEqual(demo_vending_key(1), demo_vending_key(1))
        self.assertNotEqual(demo_vending_key(1), demo_vending_key(2))
