"""Key changes, per role: they take no access from their meter, so the groups
that may write meters (the Vending Operator) do not thereby rewrite them."""

import unittest

from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_vending.tests.staff import as_new_user
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from .tools import create_meter


class KeyChangeAccessTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_sts')

    @with_transaction()
    def test_key_change_written_by_no_group(self):
        KeyChange = Pool().get('prepaid.sts.key_change')
        meter = create_meter()
        values = {'meter': meter.id, 'company': meter.company.id}
        for side, krn in [('old', 1), ('new', 2)]:
            values.update(
                {
                    f'{side}_sgc': '201457',
                    f'{side}_krn': krn,
                    f'{side}_tariff_index': '01',
                    f'{side}_key_type': '2',
                    f'{side}_base_date': '14',
                }
            )
        (change,) = KeyChange.create([values])
        # No group rewrites one (they move through Confirm and Cancel:
        # test_sts_workflow_only), and only the wizard creates them.
        for group in (
            'group_operator',
            'group_cashier',
            'group_accountant',
            'group_key_custodian',
            'group_engineer',
            'group_manager',
            'group_admin',
        ):
            with self.subTest(group=group), as_new_user(group):
                with self.assertRaises(AccessError):
                    KeyChange.write([KeyChange(change.id)], {'reason': 'forged'})
                with self.assertRaises(AccessError):
                    KeyChange.create([values])
        self.assertIsNone(KeyChange(change.id).reason)
