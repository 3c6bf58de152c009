"""Each role sees a menu made for it.

A cashier sells, closes shifts, looks up their own vends, verifies tokens and
looks customers up: the network, tariffs, meter changes, head-end commands and
the token log are back-office menus that only clutter the cashier's desk.
"""

import unittest

from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

MODULES = ['prepaid_vending', 'prepaid_sts', 'prepaid_headend', 'prepaid_vendor_portal']
CASHIER_MENU = [
    'Prepaid',
    'Prepaid / Customers',
    'Prepaid / Customers / Customers',
    'Prepaid / STS',
    'Prepaid / STS / Verify Token',
    'Prepaid / Vending',
    'Prepaid / Vending / Cashier Shifts',
    'Prepaid / Vending / Sell Electricity',
    'Prepaid / Vending / Vends',
]
BACK_OFFICE = [
    'Parties / Parties',
    'Prepaid / Network / Transformers',
    'Prepaid / Tariffs / Tariffs',
    'Prepaid / Meters / Meters',
    'Prepaid / Meters / Meter Changes',
    'Prepaid / Meters / Head-End Commands',
    'Prepaid / STS / Token Log',
    'Prepaid / Customers / Service Points',
]


def visible_menu(*groups: str) -> list[str]:
    "The menu entries a new user of these prepaid_vending groups sees"
    pool = Pool()
    User = pool.get('res.user')
    Menu = pool.get('ir.ui.menu')
    ModelData = pool.get('ir.model.data')
    ids = [ModelData.get_id('prepaid_vending', f'group_{g}') for g in groups]
    (user,) = User.create(
        [{'login': '-'.join(groups), 'name': 'Staff', 'groups': [('add', ids)]}]
    )
    transaction = Transaction()
    with transaction.set_user(user.id), transaction.set_context(_check_access=True):
        return sorted(m.complete_name for m in Menu.search([]))


class MenusTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module(MODULES)

    @with_transaction()
    def test_cashier_sees_the_cashier_menu_only(self):
        self.maxDiff = None
        self.assertEqual(visible_menu('cashier'), CASHIER_MENU)

    @with_transaction()
    def test_back_office_keeps_its_menus(self):
        for group in ['operator', 'manager']:
            with self.subTest(group=group):
                menu = visible_menu(group)
                for entry in BACK_OFFICE:
                    self.assertIn(entry, menu)

    @with_transaction()
    def test_cashier_with_another_role_sees_both(self):
        "The groups add up: a cashier who is also an operator keeps the network"
        menu = visible_menu('cashier', 'operator')
        self.assertIn('Prepaid / Network / Transformers', menu)
        self.assertIn('Prepaid / Vending / Sell Electricity', menu)
