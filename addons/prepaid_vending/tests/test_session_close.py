"""The Close Shift wizard: a blind count, a review with the difference and its
reason, the close booked by close_session; refusals change nothing."""

import unittest
from decimal import Decimal as D

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_vending.session_close import dump_totals
from trytond.modules.prepaid_vending.vend import COUNTED_METHODS
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .staff import acting_as, create_user
from .vend_fixtures import with_vending

#: The admin user: a Vending Manager (prepaid.xml).
ADMIN = 1


def new_cashier(env, login):
    "A user of the Cashier group in the company of env"
    return create_user(login, 'group_cashier', company=env.company)


class ShiftClose:
    """Drive the wizard as the client does, on one shift: each step sends the
    values of the form shown (data) and executes a state."""

    def __init__(self, session):
        self.Wizard = Pool().get('prepaid.cashier.session.close', type='wizard')
        self.context = {
            'active_model': 'prepaid.cashier.session',
            'active_id': session.id,
            'active_ids': [session.id],
        }
        with Transaction().set_context(self.context):
            self.session_id, _, _ = self.Wizard.create()

    def execute(self, state, data=None):
        with Transaction().set_context(self.context):
            return self.Wizard.execute(self.session_id, data or {}, state)

    def count(self, **amounts):
        "Start, then send the count; returns the review's values"
        self.execute('start')
        return self.execute('check', {'count': amounts})['view']['defaults']

    def confirm(self, reason=None):
        return self.execute('confirm', {'review': {'difference_reason': reason}})


class SessionCloseTestCase(unittest.TestCase):
    "Close Shift wizard"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def shift(self, env, user):
        "An open shift of user with R100 float, R300 cash and R50 card sold"
        pool = Pool()
        Session = pool.get('prepaid.cashier.session')
        Vend = pool.get('prepaid.vend')
        with Transaction().set_user(user.id):
            session = Session.open_session(env.sales_point, D('100.00'))
            Vend.vend(env.meter, D('300.00'), 'cash', env.sales_point, f'{user.id}a')
            Vend.vend(env.meter, D('50.00'), 'card', env.sales_point, f'{user.id}b')
        return Session(session.id)

    def assert_unchanged(self, session):
        Session = Pool().get('prepaid.cashier.session')
        session = Session(session.id)
        self.assertEqual(session.state, 'open')
        self.assertIsNone(session.difference)
        self.assertIsNone(session.difference_reason)
        self.assertFalse(session.counts)
        self.assertIsNone(session.difference_move)

    @with_transaction()
    def test_every_counted_method_has_a_field(self):
        "A payment method added to the vend is counted at the close too"
        Count = Pool().get('prepaid.cashier.session.close.count')
        for method, _ in COUNTED_METHODS:
            self.assertIn(method, Count._fields)

    @with_transaction()
    def test_blind_count_then_review_and_close(self):
        "Short by 10.00 with a reason: closed, the difference booked"
        Session = Pool().get('prepaid.cashier.session')
        ModelData = Pool().get('ir.model.data')
        with with_vending() as env:
            cashier = new_cashier(env, 'anna')
            session = self.shift(env, cashier)
            with acting_as(cashier.id):
                # The Close Shift button opens the wizard.
                self.assertEqual(
                    Session.close([session]),
                    ModelData.get_id('prepaid_vending', 'wizard_session_close'),
                )
                wizard = ShiftClose(session)
                count = wizard.execute('start')['view']
                # Blind: the count step shows no system figure.
                self.assertEqual(count['defaults']['methods'], ['card', 'cash'])
                self.assertEqual(count['defaults']['opening_float'], D('100.00'))
                for name in ('expected', 'difference', 'system', 'lines'):
                    self.assertNotIn(name, count['fields_view']['fields'])
                review = wizard.execute(
                    'check', {'count': {'cash': D('390.00'), 'card': D('50.00')}}
                )['view']['defaults']
                lines = {
                    x['payment_method']: (x['declared'], x['expected'], x['difference'])
                    for x in review['lines']
                }
                self.assertEqual(
                    lines,
                    {
                        'cash': (D('390.00'), D('400.00'), D('-10.00')),
                        'card': (D('50.00'), D('50.00'), D('0.00')),
                    },
                )
                self.assertEqual(review['total_difference'], D('-10.00'))
                self.assertFalse(review['balanced'])
                wizard.confirm('  Change given twice  ')
            session = Session(session.id)
            self.assertEqual(session.state, 'closed')
            self.assertEqual(session.difference, D('-10.00'))
            self.assertEqual(session.difference_reason, 'Change given twice')
            counts = {c.payment_method: c.difference for c in session.counts}
            self.assertEqual(counts, {'cash': D('-10.00'), 'card': D('0.00')})
            short = [
                x for x in session.difference_move.lines if x.account == env.expense
            ]
            self.assertEqual((short[0].debit, short[0].credit), (D('10.00'), D(0)))
            self.assertIn('Reason: Change given twice', session.report_text())

    @with_transaction()
    def test_no_count_is_refused(self):
        "An empty count (or one method left empty) closes nothing"
        with with_vending() as env:
            cashier = new_cashier(env, 'anna')
            session = self.shift(env, cashier)
            with acting_as(cashier.id):
                wizard = ShiftClose(session)
                wizard.execute('start')
                with self.assertRaisesRegex(UserError, 'Count the drawer.*Cash, Card'):
                    wizard.execute('check', {'count': {}})
                with self.assertRaisesRegex(UserError, r'Count the drawer.*Card \('):
                    wizard.execute('check', {'count': {'cash': D('400.00')}})
                # Confirm reached without a review (a crafted client).
                with self.assertRaisesRegex(UserError, 'Count the drawer'):
                    wizard.confirm('none')
                with self.assertRaisesRegex(UserError, 'negative'):
                    wizard.execute(
                        'check', {'count': {'cash': D('-1'), 'card': D('50.00')}}
                    )
            self.assert_unchanged(session)

    @with_transaction()
    def test_difference_without_reason_is_refused(self):
        with with_vending() as env:
            cashier = new_cashier(env, 'anna')
            session = self.shift(env, cashier)
            with acting_as(cashier.id):
                wizard = ShiftClose(session)
                wizard.count(cash=D('400.00'), card=D('40.00'))
                for reason in (None, '   '):
                    with self.assertRaisesRegex(UserError, 'give the reason'):
                        wizard.confirm(reason)
                # Balanced in total (cash over, card short) still needs one.
                review = wizard.count(cash=D('410.00'), card=D('40.00'))
                self.assertEqual(review['total_difference'], D('0.00'))
                self.assertFalse(review['balanced'])
                with self.assertRaisesRegex(UserError, 'give the reason'):
                    wizard.confirm()
                # A client that sends expected totals equal to its count
                # to skip the reason: they are checked under the lock.
                forged = dump_totals({'cash': D('410.00'), 'card': D('40.00')})
                with self.assertRaisesRegex(UserError, 'changed since the review'):
                    wizard.execute('confirm', {'review': {'expected': forged}})
            self.assert_unchanged(session)

    @with_transaction()
    def test_exact_count_needs_no_reason(self):
        Session = Pool().get('prepaid.cashier.session')
        with with_vending() as env:
            cashier = new_cashier(env, 'anna')
            session = self.shift(env, cashier)
            with acting_as(cashier.id):
                wizard = ShiftClose(session)
                review = wizard.count(cash=D('400.00'), card=D('50.00'))
                self.assertTrue(review['balanced'])
                wizard.confirm()
            session = Session(session.id)
            self.assertEqual(session.state, 'closed')
            self.assertEqual(session.difference, D('0.00'))
            self.assertIsNone(session.difference_reason)
            self.assertIsNone(session.difference_move)

    @with_transaction()
    def test_another_cashier_is_refused(self):
        "Only the shift's cashier or a Vending Manager closes it"
        Session = Pool().get('prepaid.cashier.session')
        with with_vending() as env:
            anna = new_cashier(env, 'anna')
            bob = new_cashier(env, 'bob')
            session = self.shift(env, anna)
            with acting_as(anna.id):
                wizard = ShiftClose(session)
                wizard.count(cash=D('400.00'), card=D('50.00'))
            with acting_as(bob.id):
                # Bob cannot even read the shift (record rule), nor start
                # the wizard on it, nor confirm Anna's reviewed wizard.
                with self.assertRaises(AccessError):
                    ShiftClose(session).execute('start')
                with self.assertRaises(AccessError):
                    wizard.confirm()
            self.assert_unchanged(session)
            # The admin of the tests is a Vending Manager: may close it.
            with acting_as(ADMIN):
                wizard = ShiftClose(session)
                wizard.count(cash=D('400.00'), card=D('50.00'))
                wizard.confirm()
            self.assertEqual(Session(session.id).state, 'closed')

    @with_transaction()
    def test_vend_after_review_is_refused(self):
        "The takings changed after the review: review again, nothing closed"
        Vend = Pool().get('prepaid.vend')
        with with_vending() as env:
            cashier = new_cashier(env, 'anna')
            session = self.shift(env, cashier)
            with acting_as(cashier.id):
                wizard = ShiftClose(session)
                wizard.count(cash=D('400.00'), card=D('50.00'))
                Vend.vend(env.meter, D('20.00'), 'cash', env.sales_point, 'late')
                with self.assertRaisesRegex(UserError, 'changed since the review'):
                    wizard.confirm()
            self.assert_unchanged(session)
