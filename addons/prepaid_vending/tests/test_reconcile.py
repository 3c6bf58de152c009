"""The "Confirm Not Delivered" wizard of head-end commands: a Vending Manager
(or Administrator) records how the meter was read and why a failed or
rejected remote-credit command did not credit it, so that its vend may be
cancelled; nobody else can."""

import unittest
from decimal import Decimal as D

from lxml import etree
from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError, ValidationError
from trytond.model.modelview import AccessButtonError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .staff import acting_as, create_user
from .vend_fixtures import open_session, with_vending


def run_wizard(commands, start: dict) -> None:
    "Open the wizard on commands as a client does and confirm with start"
    Wizard = Pool().get('prepaid.meter.command.reconcile', type='wizard')
    context = {
        'active_model': 'prepaid.meter.command',
        'active_id': commands[0].id,
        'active_ids': [c.id for c in commands],
    }
    with Transaction().set_context(context):
        session_id, _, _ = Wizard.create()
        Wizard.execute(session_id, {}, 'start')
        Wizard.execute(session_id, {'start': start}, 'confirm')
        Wizard.delete(session_id)


class ReconcileWizardTestCase(unittest.TestCase):
    "Confirm Not Delivered wizard on prepaid.meter.command"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def rejected_vend(self, env, key: str):
        "A vend whose remote-credit command the meter rejected"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Command = pool.get('prepaid.meter.command')
        vend = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, key)
        (command,) = vend.commands
        Command.mark_sent([command])
        Command.mark_rejected([command], 'token refused')
        return vend, Command(command.id)

    @with_transaction()
    def test_manager_reconciles_then_vend_cancels(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Command = pool.get('prepaid.meter.command')
        ModelData = pool.get('ir.model.data')
        with with_vending() as env:
            open_session(env)
            vend, command = self.rejected_vend(env, 'rw1')
            manager = create_user('rec-manager', 'group_manager', company=env.company)
            with acting_as(manager):
                self.assertEqual(
                    Command.reconcile_wizard([command]),
                    ModelData.get_id('prepaid_vending', 'wizard_command_reconcile'),
                )
                run_wizard(
                    [command],
                    {
                        'method': 'credit_register_site',
                        'reason': '  Credit register 12.3 kWh, unchanged since  ',
                    },
                )
                command = Command(command.id)
                self.assertTrue(command.reconciled_undelivered)
                self.assertEqual(command.reconciled_by, manager)
                self.assertIsNotNone(command.reconciled_at)
                self.assertEqual(command.reconciliation_method, 'credit_register_site')
                self.assertEqual(
                    command.reconciliation_reason,
                    'Credit register 12.3 kWh, unchanged since',
                )
                # Done once: the button is gone for a reconciled command.
                with self.assertRaises(AccessButtonError):
                    Command.reconcile_wizard([command])
            # Now the vend counts as undelivered for a cancellation.
            Vend.cancel_vends([Vend(vend.id)], 'not delivered, meter read')
            self.assertEqual(Vend(vend.id).state, 'cancelled')

    @with_transaction()
    def test_administrator_may_reconcile(self):
        Command = Pool().get('prepaid.meter.command')
        with with_vending() as env:
            open_session(env)
            _, command = self.rejected_vend(env, 'rw2')
            admin = create_user('rec-admin', 'group_admin', company=env.company)
            with acting_as(admin):
                run_wizard([command], {'method': 'token_history', 'reason': 'TID'})
            self.assertTrue(Command(command.id).reconciled_undelivered)
            # The button sits on the command form, with the confirmation.
            with acting_as(admin):
                arch = Command.fields_view_get(view_type='form')['arch']
            tree = etree.fromstring(arch)
            self.assertEqual(len(tree.xpath("//button[@name='reconcile_wizard']")), 1)
            for name in ('reconciliation_method', 'reconciled_by', 'reconciled_at'):
                self.assertEqual(len(tree.xpath(f"//field[@name='{name}']")), 1)

    @with_transaction()
    def test_cashier_cannot_reconcile(self):
        Command = Pool().get('prepaid.meter.command')
        with with_vending() as env:
            open_session(env)
            _, command = self.rejected_vend(env, 'rw3')
            for group in ('group_cashier', 'group_engineer'):
                user = create_user(f'rec-{group}', group, company=env.company)
                with acting_as(user):
                    # Cashiers and engineers read commands, but may not confirm.
                    Command.read([command.id], ['state'])
                    with self.assertRaises(AccessButtonError, msg=group):
                        Command.reconcile_wizard([command])
                    with self.assertRaises(AccessError, msg=group):
                        run_wizard(
                            [command], {'method': 'token_history', 'reason': 'x'}
                        )
                    with self.assertRaises(AccessError, msg=group):
                        Command.reconcile_undelivered([command], 'x', 'token_history')
            command = Command(command.id)
            self.assertFalse(command.reconciled_undelivered)
            self.assertIsNone(command.reconciled_by)

    @with_transaction()
    def test_reason_method_and_state_required(self):
        Command = Pool().get('prepaid.meter.command')
        with with_vending() as env:
            open_session(env)
            _, command = self.rejected_vend(env, 'rw4')
            manager = create_user('rec-manager4', 'group_manager', company=env.company)
            with acting_as(manager):
                with self.assertRaisesRegex(ValidationError, 'how the meter was read'):
                    run_wizard([command], {'method': 'token_history', 'reason': ' '})
                with self.assertRaisesRegex(ValidationError, 'how the meter was read'):
                    run_wizard([command], {'method': None, 'reason': 'read it'})
                with self.assertRaisesRegex(ValidationError, 'how the meter was read'):
                    Command.reconcile_undelivered([command], 'read it', 'guessed')
                self.assertFalse(Command(command.id).reconciled_undelivered)
                # A command still pending was never refused: nothing to confirm.
                pending = Command.queue(env.meter, 'remote_credit', {'kwh': '1'})
                with self.assertRaisesRegex(UserError, 'only a failed or rejected'):
                    run_wizard(
                        [pending], {'method': 'token_history', 'reason': 'read it'}
                    )
            self.assertFalse(Command(pending.id).reconciled_undelivered)
