"""The write-off wizard of a debt: a Vending Manager gives a reason, sees the
balance and writes the debt off; every other group is refused at the button,
the wizard action and Debt.write_off, with nothing written."""

import unittest
from decimal import Decimal as D

from trytond.model.exceptions import AccessError, ValidationError
from trytond.model.modelview import AccessButtonError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .staff import as_new_user
from .test_accounting_adjustments import booked, configure_adjustment_accounts
from .vend_fixtures import with_vending


def open_debt(env, amount='80.00'):
    Debt = Pool().get('prepaid.debt')
    debt = Debt(party=env.customer, description='Arrears', amount=D(amount))
    debt.save()
    Debt.open([debt])
    return debt


def run_wizard(debt, state='start', reason=None):
    """Drive the wizard as the client does: create the session under the
    user's access rights, then execute states as RPC runs them (the wizard
    checks its groups itself)."""
    Wizard = Pool().get('prepaid.debt.write_off', type='wizard')
    context = {
        'active_model': 'prepaid.debt',
        'active_id': debt.id,
        'active_ids': [debt.id],
    }
    with Transaction().set_context(context):
        session_id, _, _ = Wizard.create()
        with Transaction().set_context(_check_access=False):
            result = Wizard.execute(session_id, {}, 'start')
            if state != 'start':
                data = {'start': {'reason': reason}}
                result = Wizard.execute(session_id, data, state)
        Wizard.delete(session_id)
    return result


class DebtWizardTestCase(unittest.TestCase):
    "Write-off wizard"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_manager_writes_off_through_wizard(self):
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        with with_vending() as env:
            config = configure_adjustment_accounts(env)
            debt = open_debt(env)
            with as_new_user('group_manager'):
                # The form button opens the wizard for a manager.
                self.assertTrue(Debt.write_off_wizard([Debt(debt.id)]))
                shown = run_wizard(debt)
                self.assertEqual(shown['view']['defaults']['balance'], D('80.00'))
                self.assertEqual(shown['view']['defaults']['debts'], [debt.id])

                run_wizard(debt, 'write_off', 'household indigent')

            debt = Debt(debt.id)
            self.assertEqual(debt.state, 'written_off')
            self.assertEqual(debt.balance, D(0))
            (line,) = [x for x in debt.lines if x.kind == 'write_off']
            self.assertEqual(
                (line.amount, line.description), (D('-80.00'), 'household indigent')
            )
            self.assertEqual(booked(config.debt_account, env.customer), D(0))
            self.assertEqual(booked(config.bad_debt_account, None), D('80.00'))

    @with_transaction()
    def test_cashier_refused(self):
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        Move = pool.get('account.move')
        with with_vending() as env:
            configure_adjustment_accounts(env)
            debt = open_debt(env)
            moves = Move.search_count([])
            with as_new_user('group_cashier'):
                with self.assertRaises(AccessButtonError):
                    Debt.write_off_wizard([Debt(debt.id)])
                with self.assertRaises(AccessError):
                    run_wizard(debt, 'write_off', 'cashier decided')
                with self.assertRaises(AccessError):
                    Debt.write_off([Debt(debt.id)], 'cashier decided')
            debt = Debt(debt.id)
            self.assertEqual((debt.state, debt.balance), ('open', D('80.00')))
            self.assertEqual([x.kind for x in debt.lines], ['charge'])
            self.assertEqual(Move.search_count([]), moves)

    @with_transaction()
    def test_blank_reason_refused(self):
        "A reason of spaces is no reason: refused, nothing written"
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        with with_vending() as env:
            configure_adjustment_accounts(env)
            debt = open_debt(env)
            with as_new_user('group_manager'):
                with self.assertRaisesRegex(ValidationError, 'reason'):
                    run_wizard(debt, 'write_off', '   ')
            debt = Debt(debt.id)
            self.assertEqual((debt.state, debt.balance), ('open', D('80.00')))

    @with_transaction()
    def test_paid_debt_refused(self):
        "Only an open debt can be written off (the button is hidden otherwise)"
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        with with_vending() as env:
            configure_adjustment_accounts(env)
            debt = open_debt(env)
            Debt.paid([debt])
            with as_new_user('group_manager'):
                with self.assertRaises(AccessButtonError):  # invisible button
                    Debt.write_off_wizard([Debt(debt.id)])
                with self.assertRaisesRegex(ValidationError, 'not open'):
                    run_wizard(debt, 'write_off', 'paid already')
            self.assertEqual(Debt(debt.id).state, 'paid')
