"""Who may change what, per role, as an RPC call sees it (access checks on).

Records that belong to a meter take no access from it: the groups that may
write meters (the Vending Operator among them) must not thereby write
emergency credits or meter commands.
"""

import unittest
from decimal import Decimal

from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from .tools import acting_as, create_meter

# Groups that read a meter's records but change none of them.
READERS = ('group_operator', 'group_cashier', 'group_accountant', 'group_key_custodian')


class AccessRolesTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def assert_refused(self, groups, Model, record, values, create_values=None):
        "Each of groups can neither write record nor create one like it"
        for group in groups:
            with self.subTest(group=group), acting_as(group):
                with self.assertRaises(AccessError):
                    Model.write([Model(record.id)], values)
                if create_values is not None:
                    with self.assertRaises(AccessError):
                        Model.create([create_values])

    @with_transaction()
    def test_emergency_credit_written_by_manager_and_admin_only(self):
        Credit = Pool().get('prepaid.emergency_credit')
        meter = create_meter('04100000201')
        values = {'meter': meter.id, 'amount': Decimal('20.00')}
        (credit,) = Credit.create([values])
        self.assert_refused(
            READERS + ('group_engineer',),
            Credit,
            credit,
            {'amount': Decimal('500.00')},
            values,
        )
        for group, amount in [('group_manager', '25.00'), ('group_admin', '30.00')]:
            with self.subTest(group=group), acting_as(group):
                Credit.write([Credit(credit.id)], {'amount': Decimal(amount)})
            self.assertEqual(Credit(credit.id).amount, Decimal(amount))

    @with_transaction()
    def test_meter_command_written_by_engineer_and_manager_only(self):
        Command = Pool().get('prepaid.meter.command')
        meter = create_meter('04100000203')
        values = {'meter': meter.id, 'kind': 'disconnect'}
        (command,) = Command.create([values])
        self.assert_refused(
            READERS + ('group_admin',),
            Command,
            command,
            {'last_error': 'tampered'},
            values,
        )
        for group in ('group_engineer', 'group_manager'):
            with self.subTest(group=group), acting_as(group):
                Command.write([Command(command.id)], {'last_error': group})
                with self.assertRaises(AccessError):
                    Command.create([values])
            self.assertEqual(Command(command.id).last_error, group)
