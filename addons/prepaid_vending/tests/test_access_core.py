"""Wizards, buttons and hidden fields of the vending module (issue 11 §1-2);
prepaid_headend runs the same checks on the whole installation."""

import unittest

from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction

from ..access import require_wizard_groups
from .access_checks import AccessChecks
from .staff import acting_as, create_user
from .tools import with_company


class AccessCoreTestCase(AccessChecks, unittest.TestCase):
    module = 'prepaid_vending'

    @with_transaction()
    def test_wizard_own_action_still_runs(self):
        """A member running the wizard from its own action is not refused
        (party.erase: ir.module.activate_upgrade checks its access in a new
        transaction, which on PostgreSQL cannot see this test's user)"""
        pool = Pool()
        ActionWizard = pool.get('ir.action.wizard')
        Wizard = pool.get('party.erase', type='wizard')
        (action,) = ActionWizard.search([('wiz_name', '=', 'party.erase')], limit=1)
        self.assertTrue(action.groups)
        admin = create_user('party_admin', 'party.group_party_admin')
        with acting_as(admin, action_id=action.id):
            self.assertTrue(Wizard.create()[0])
            require_wizard_groups('party.erase')

    @with_transaction()
    def test_move_template_keeps_template_id_as_action_id(self):
        "Tryton's move line toolbar passes a template id as action_id"
        pool = Pool()
        Wizard = pool.get('account.move.template.create', type='wizard')
        accountant = create_user('accountant', 'account.group_account')
        with acting_as(accountant, action_id=999999):
            self.assertTrue(Wizard.create()[0])

    @with_transaction()
    def test_require_wizard_groups_ignores_context(self):
        pool = Pool()
        ActionWizard = pool.get('ir.action.wizard')
        open_actions = [a for a in ActionWizard.search([]) if not a.groups]
        nobody = create_user('nobody')
        context = {'action_id': open_actions[0].id} if open_actions else {}
        with acting_as(nobody, **context):
            with self.assertRaises(AccessError):
                require_wizard_groups('ir.module.activate_upgrade')

    @with_company
    def test_password_hash_oracle(self):
        "The binary search of the issue: refused at its first step"
        pool = Pool()
        User = pool.get('res.user')
        Meter = pool.get('prepaid.meter')
        (admin,) = User.search([('login', '=', 'admin')])
        admin.password = 'correct horse battery'
        admin.save()
        Meter.create([{'serial': '04100000901'}])
        nobody = create_user('oracle')
        with acting_as(nobody):
            for domain in (
                [('login', '=', 'admin'), ('password_hash', '>=', '$')],
                [('create_uid.password_hash', '>=', '$')],
                [('create_uid', 'where', [('password_hash', '>=', '$')])],
                [('login', '=', 'admin'), ('password_reset', '!=', None)],
            ):
                with self.subTest(domain=domain):
                    with self.assertRaises(AccessError):
                        User.search_count(domain)
            with self.assertRaises(AccessError):
                User.search([], order=[('password_hash', 'ASC')])
            # Other fields stay searchable.
            self.assertEqual(User.search_count([('login', '=', 'admin')]), 1)
