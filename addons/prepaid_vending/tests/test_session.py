"""Cashier shifts: one open shift per cashier, count versus system totals,
difference booked, moves posted, record rules for cashiers."""

import unittest
from decimal import Decimal as D

from trytond.exceptions import UserError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .vend_fixtures import open_session, with_vending


class SessionTestCase(unittest.TestCase):
    "Cashier shifts"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_close_with_difference(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Session = pool.get('prepaid.cashier.session')
        Move = pool.get('account.move')
        with with_vending() as env:
            session = Session.open_session(env.sales_point, D('200.00'))
            cursor = Transaction().connection.cursor()
            cursor.execute('SAVEPOINT second_shift')
            with self.assertRaisesRegex(UserError, 'already has an open shift'):
                Session.open_session(env.sales_point)
            cursor.execute('ROLLBACK TO SAVEPOINT second_shift')
            Vend.vend(env.meter, D('300.00'), 'cash', env.sales_point, 's1')
            Vend.vend(env.meter, D('100.00'), 'mobile_money', env.sales_point, 's2')
            session = Session(session.id)
            self.assertEqual(
                session.system_totals(),
                {'cash': D('500.00'), 'mobile_money': D('100.00')},
            )
            # The drawer is 5.00 short.
            Session.close_session(
                session, {'cash': D('495.00'), 'mobile_money': D('100.00')}
            )
            session = Session(session.id)
            self.assertEqual(session.state, 'closed')
            self.assertEqual(session.difference, D('-5.00'))
            move = session.difference_move
            self.assertEqual(move.state, 'posted')
            short = [line for line in move.lines if line.account == env.expense]
            self.assertEqual(short[0].debit, D('5.00'))
            self.assertFalse(Move.search([('state', '=', 'draft')]))
            report = session.report_text()
            self.assertIn('Total difference', report)
            self.assertIn('-5.00', report)
            with self.assertRaisesRegex(UserError, 'no open shift'):
                Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 's3')
            with self.assertRaisesRegex(UserError, 'already closed'):
                Session.close_session(session, {})

    @with_transaction()
    def test_cashier_sees_own_records(self):
        "ir.rule: a cashier reads only their own shifts and vends"
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        Vend = pool.get('prepaid.vend')
        Session = pool.get('prepaid.cashier.session')
        with with_vending() as env:
            open_session(env)
            Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'adm')
            cashier_group = ModelData.get_id('prepaid_vending', 'group_cashier')
            cashiers = User.create(
                [
                    {
                        'login': f'cashier{i}',
                        'name': f'Cashier {i}',
                        'groups': [('add', [cashier_group])],
                        'companies': [('add', [env.company.id])],
                        'company': env.company.id,
                    }
                    for i in range(2)
                ]
            )
            for i, cashier in enumerate(cashiers):
                with (
                    Transaction().set_user(cashier.id),
                    Transaction().set_context(_check_access=True),
                ):
                    Session.open_session(env.sales_point)
                    Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, f'c{i}')
            for cashier in cashiers:
                with (
                    Transaction().set_user(cashier.id),
                    Transaction().set_context(_check_access=True),
                ):
                    vends = Vend.search([])
                    self.assertEqual([v.cashier.id for v in vends], [cashier.id])
                    sessions = Session.search([])
                    self.assertEqual(len(sessions), 1)
            self.assertEqual(Vend.search_count([]), 3)
