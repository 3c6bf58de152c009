"""The demo's bank: scripts/setup_demo.py gives the demo utility a vendor
with an API till and a float, so that an XMLVend client can buy from the
demo at once, and a vendor portal login; a second set-up creates nothing
twice."""

from __future__ import annotations

import unittest
from decimal import Decimal

from trytond.modules.company.tests import create_company, set_company
from trytond.modules.prepaid_sts.tests.tools import restore_master_key, set_master_key
from trytond.modules.prepaid_vending.tests.vend_fixtures import setup_accounting
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from prepaid_demo import vendors
from prepaid_demo.vending import create_demo_data, setup_demo_vending

SEED = 7


class DemoVendorTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._previous_master_key = set_master_key()
        activate_module('prepaid_vendor_portal')

    @classmethod
    def tearDownClass(cls):
        restore_master_key(cls._previous_master_key)
        super().tearDownClass()

    @with_transaction()
    def test_demo_bank_can_sell(self):
        "An active bank, branch and till with the printed token and a float"
        pool = Pool()
        Vendor = pool.get('prepaid.vendor')
        Terminal = pool.get('prepaid.vendor.terminal')
        with set_company(create_company()):
            company = pool.get('company.company')(Transaction().context['company'])
            setup_accounting(company)
            create_demo_data(seed=SEED, customers=10)
            first = setup_demo_vending(seed=SEED)
            second = setup_demo_vending(seed=SEED)

            self.assertEqual(first['vendor_float'], '50000.00')
            self.assertNotIn('vendor_float', second)  # topped up once
            (vendor,) = Vendor.search([('code', '=', vendors.VENDOR_CODE)])
            self.assertEqual(vendor.state, 'active')
            self.assertEqual(vendor.float_balance, Decimal('50000.00'))
            self.assertEqual(vendor.float_available, Decimal('50000.00'))
            (terminal,) = Terminal.search(
                [
                    ('client_id', '=', vendors.CLIENT_ID),
                    ('terminal_id', '=', vendors.TERMINAL_ID),
                ]
            )
            self.assertEqual(terminal.state, 'active')
            self.assertEqual(terminal.outlet.state, 'active')
            self.assertTrue(terminal.check_token(vendors.API_TOKEN))
            self.assertFalse(terminal.check_token('x' * len(vendors.API_TOKEN)))

            # The banner's portal login: the bank's Vendor Administrator.
            WebUser = pool.get('web.user')
            Link = pool.get('prepaid.vendor.web_user')
            user = WebUser.authenticate(vendors.PORTAL_EMAIL, vendors.PORTAL_PASSWORD)
            self.assertIsNotNone(user)
            (link,) = Link.search([('web_user', '=', user.id)])
            self.assertEqual((link.vendor, link.role), (vendor, 'administrator'))

    @with_transaction()
    def test_demo_registers_the_sample_identities(self):
        "The XMLVend samples' vendor, terminals, operator and meters, once"
        pool = Pool()
        Vendor = pool.get('prepaid.vendor')
        Terminal = pool.get('prepaid.vendor.terminal')
        Operator = pool.get('prepaid.vendor.operator')
        Meter = pool.get('prepaid.meter')
        with set_company(create_company()):
            company = pool.get('company.company')(Transaction().context['company'])
            setup_accounting(company)
            create_demo_data(seed=SEED, customers=5)
            first = setup_demo_vending(seed=SEED)
            second = setup_demo_vending(seed=SEED)

            self.assertEqual(first['sample_float'], '10000.00')
            self.assertEqual(first['sample_meters'], 2)
            self.assertNotIn('sample_float', second)
            self.assertEqual(second['sample_meters'], 0)
            (vendor,) = Vendor.search([('code', '=', vendors.SAMPLE_VENDOR_CODE)])
            self.assertEqual(vendor.state, 'active')
            self.assertEqual(vendor.float_available, vendors.SAMPLE_FLOAT)
            terminals = Terminal.search([('outlet.vendor', '=', vendor.id)])
            self.assertEqual(
                sorted(
                    (t.client_id, t.terminal_id, t.operator_required) for t in terminals
                ),
                sorted(vendors.SAMPLE_TERMINALS),
            )
            for terminal in terminals:
                self.assertEqual(terminal.state, 'active')
                self.assertTrue(terminal.check_token(vendors.SAMPLE_API_TOKEN))
            (operator,) = Operator.search([('vendor', '=', vendor.id)])
            self.assertEqual((operator.login, operator.state), ('CASHIER7', 'active'))
            self.assertTrue(operator.verify_password(vendors.SAMPLE_OPERATOR_PASSWORD))
            meters = Meter.search([('serial', 'in', vendors.SAMPLE_METERS)])
            self.assertEqual(len(meters), 2)
            for meter in meters:
                self.assertEqual(
                    (meter.kind, meter.state, meter.payment_mode),
                    ('sts_keypad', 'installed', 'prepaid'),
                )
                self.assertTrue(meter.customer)
                self.assertTrue(meter.sts_pan.endswith(meter.serial, 6, 17))
                self.assertEqual(
                    (meter.sts_sgc, meter.sts_krn, meter.sts_tariff_index),
                    ('999910', 1, '01'),
                )
