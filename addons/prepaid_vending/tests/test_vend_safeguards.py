"""Vending safeguards: payment methods, read-only sales records, channels,
token digits for reprint groups only, reconciliation, shift and cancellation
rules, idempotency and RPC input (SQLite and PostgreSQL; the shift close race
with concurrent transactions is in test_session_concurrency.py).
"""

import unittest
from decimal import Decimal as D

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_vending.vend import VendError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .staff import acting_as, create_user
from .vend_fixtures import open_session, with_vending


class VendSafeguardsTestCase(unittest.TestCase):
    "Vending safeguards"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def enable_emergency(self):
        Configuration = Pool().get('prepaid.configuration')
        Configuration.write(
            [Configuration(1)],
            {'emergency_credit_amount': D('100.00'), 'emergency_credit_min_vends': 0},
        )

    @with_transaction()
    def test_emergency_method_refused_outside_emergency_credit(self):
        "'emergency' is refused from a sale and from the RPC"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Emergency = pool.get('prepaid.emergency_credit')
        with with_vending() as env:
            open_session(env)
            self.enable_emergency()
            with self.assertRaisesRegex(VendError, 'not a payment method'):
                Vend.vend(env.meter, D('100.00'), 'emergency', env.sales_point, 'e1')
            with self.assertRaisesRegex(VendError, 'payment method'):
                Vend.rpc_vend(env.meter.serial, '100.00', 'emergency', 'HO', 'e2')
            # The context key cannot come from a client: RPC strips "_" keys,
            # and a normal context key is not the one checked.
            with Transaction().set_context(prepaid_emergency_issue=True):
                with self.assertRaises(VendError):
                    Vend.vend(env.meter, D('100.00'), 'emergency', None, 'e3')
            self.assertEqual(Vend.search_count([]), 0)
            credit = Emergency.issue(env.meter, 'e4')
            self.assertEqual(credit.vend.payment_method, 'emergency')
            self.assertEqual(credit.state, 'open')

    @with_transaction()
    def test_vends_lines_tokens_shifts_are_read_only(self):
        "Vends, lines, tokens, positions and shift totals are read-only"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Line = pool.get('prepaid.vend.line')
        Position = pool.get('prepaid.meter.month_position')
        Session = pool.get('prepaid.cashier.session')
        Count = pool.get('prepaid.cashier.session.count')
        with with_vending() as env:
            cashier = create_user('cashier-r2', 'group_cashier', company=env.company)
            manager = create_user('manager-r2', 'group_manager', company=env.company)
            operator = create_user('operator-r2', 'group_operator', company=env.company)
            with acting_as(cashier):
                session = Session.open_session(env.sales_point, D('50.00'))
                vend = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'w1')
                self.assertEqual(vend.cashier.id, cashier.id)
                with self.assertRaises(AccessError):
                    Vend.write([Vend(vend.id)], {'tender': D('1.00')})
                with self.assertRaises(AccessError):
                    Line.write(list(Vend(vend.id).lines), {'amount': D('0')})
                with self.assertRaises(AccessError):
                    Vend.create(
                        [
                            {
                                'idempotency_key': 'forged',
                                'meter': env.meter.id,
                                'date': vend.date,
                                'channel': 'counter',
                                'payment_method': 'cash',
                                'tender': D('1'),
                                'tariff': vend.tariff.id,
                                'tariff_version': vend.tariff_version.id,
                            }
                        ]
                    )
                with self.assertRaises(AccessError):
                    Position.write(Position.search([]), {'kwh': D('0')})
                for values in (
                    {'state': 'closed'},
                    {'difference': D('0')},
                    {'opening_float': D('500.00')},  # after vends: hides a loss
                ):
                    with self.assertRaises(AccessError):
                        Session.write([Session(session.id)], values)
                # The cash count is the cashier's to enter, the system figure not.
                Session.write(
                    [Session(session.id)],
                    {
                        'counts': [
                            ('create', [{'payment_method': 'cash', 'declared': 1}])
                        ]
                    },
                )
                with self.assertRaises(AccessError):
                    Count.write(Count.search([]), {'system': D('1.00')})
            with acting_as(manager):
                with self.assertRaises(AccessError):
                    Vend.write([Vend(vend.id)], {'cancel_reason': 'edited'})
            with acting_as(operator):
                with self.assertRaises(AccessError):
                    Vend.vend(env.meter, D('100.00'), 'card', None, 'op', channel='api')
            with acting_as(cashier):
                Session.close_session(Session(session.id), {'cash': D('150.00')})
            session = Session(session.id)
            self.assertEqual(session.state, 'closed')
            self.assertEqual(session.difference, D('0'))

    @with_transaction()
    def test_channel_comes_from_sales_point(self):
        "The client cannot pick the channel; cash always needs a shift"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            self.assertEqual(env.sales_point.channel, 'counter')
            with self.assertRaisesRegex(VendError, 'set on the sales point'):
                Vend.rpc_vend(
                    env.meter.serial, '100.00', 'card', 'HO', 'c1', None, 'web'
                )
            # Its own channel, but no open shift.
            with self.assertRaisesRegex(UserError, 'shift'):
                Vend.rpc_vend(env.meter.serial, '100.00', 'card', 'HO', 'c2')
            # Cash without a sales point or shift, even on the API channel.
            with self.assertRaisesRegex(UserError, 'sales point'):
                Vend.rpc_vend(env.meter.serial, '100.00', 'cash', None, 'c3')
            env.sales_point.channel = 'web'
            env.sales_point.save()
            with self.assertRaisesRegex(UserError, 'shift'):
                Vend.rpc_vend(env.meter.serial, '100.00', 'cash', 'HO', 'c4')
            # No shift counts a card sale off the counter: API terminals only.
            with self.assertRaisesRegex(VendError, 'API terminal'):
                Vend.rpc_vend(env.meter.serial, '100.00', 'card', 'HO', 'c5')
            terminal = create_user('gateway', 'group_api_terminal', company=env.company)
            with acting_as(terminal):
                result = Vend.rpc_vend(env.meter.serial, '100.00', 'card', 'HO', 'c5')
            (vend,) = Vend.search([('number', '=', result['number'])])
            self.assertEqual(vend.channel, 'web')
            self.assertIsNone(vend.session)
            with acting_as(terminal):
                result = Vend.rpc_vend(env.meter.serial, '100.00', 'card', None, 'c6')
            self.assertEqual(
                Vend.search([('number', '=', result['number'])])[0].channel, 'api'
            )

    @with_transaction()
    def test_token_digits_only_for_reprint_groups(self):
        "Vend token digits and command payloads: reprint groups only"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Token = pool.get('prepaid.vend.token')
        Command = pool.get('prepaid.meter.command')
        with with_vending() as env:
            open_session(env)
            vend = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 't1')
            (token,) = Token.create(
                [{'vend': vend.id, 'kind': 'credit', 'token': '1' * 20}]
            )
            (command,) = vend.commands
            for group in ('group_operator', 'group_engineer', 'group_accountant'):
                user = create_user(f'{group}-t', group, company=env.company)
                with acting_as(user):
                    with self.assertRaises(AccessError):
                        Token.read([token.id], ['token'])
                    with self.assertRaises(AccessError):
                        Command.read([command.id], ['payload'])
            for group in ('group_manager', 'group_admin'):
                user = create_user(f'{group}-t', group, company=env.company)
                with acting_as(user):
                    (values,) = Token.read([token.id], ['token'])
                    self.assertEqual(values['token'], '1' * 20)
                    self.assertTrue(Command.read([command.id], ['payload']))

    @with_transaction()
    def test_failed_command_is_not_undelivered_until_reconciled(self):
        "Failed/rejected commands are not 'undelivered' by themselves"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Command = pool.get('prepaid.meter.command')
        with with_vending() as env:
            open_session(env)
            vend = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'f1')
            (command,) = vend.commands
            Command.mark_sent([command])
            Command.mark_rejected([command], 'token already used')
            with self.assertRaisesRegex(UserError, 'cannot be cancelled'):
                Vend.cancel_vends([vend], 'customer says not received')
            cashier = create_user('cashier-f', 'group_cashier', company=env.company)
            with acting_as(cashier):
                with self.assertRaises(AccessError):
                    Command.reconcile_undelivered([Command(command.id)], 'read it')
                with self.assertRaises(AccessError):
                    Command.write(
                        [Command(command.id)], {'reconciled_undelivered': True}
                    )
            with self.assertRaisesRegex(UserError, 'how the meter was read'):
                Command.reconcile_undelivered([command], ' ')
            Command.reconcile_undelivered([command], 'credit register unchanged')
            command = Command(command.id)
            self.assertEqual(command.reconciled_by.id, Transaction().user)
            Vend.cancel_vends([Vend(vend.id)], 'not delivered, meter read')
            self.assertEqual(Vend(vend.id).state, 'cancelled')

    @with_transaction()
    def test_vend_rereads_shift_under_lock(self):
        "The shift is re-read under lock after the meter lock"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Session = pool.get('prepaid.cashier.session')
        with with_vending() as env:
            session = open_session(env)
            # Session.current sees the open shift (a stale read), then another
            # transaction closes it before this vend takes its locks.
            real_current = Session.current.__func__

            def current_then_closed(cls, sales_point):
                found = real_current(cls, sales_point)
                table = cls.__table__()
                Transaction().connection.cursor().execute(
                    *table.update([table.state], ['closed'])
                )
                return found

            Session.current = classmethod(current_then_closed)
            try:
                with self.assertRaisesRegex(UserError, 'closed'):
                    Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'r1')
            finally:
                del Session.current
            self.assertEqual(Vend.search_count([('session', '=', session.id)]), 0)
            with self.assertRaisesRegex(UserError, 'closed'):
                Session.close_session(Session(session.id), {})

    @with_transaction()
    def test_cancel_undoes_position_and_repayments(self):
        "Month position, emergency issue and exact repayment undo"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Position = pool.get('prepaid.meter.month_position')
        Emergency = pool.get('prepaid.emergency_credit')
        with with_vending() as env:
            open_session(env)
            self.enable_emergency()
            credit = Emergency.issue(env.meter, 'x1')
            Vend.cancel_vends([credit.vend], 'issued by mistake')
            self.assertEqual(Emergency(credit.id).state, 'cancelled')
            (position,) = Position.search([])
            self.assertEqual((position.vends, position.kwh), (0, D('0')))

            credit = Emergency.issue(env.meter, 'x2')
            repaying = Vend.vend(env.meter, D('300.00'), 'cash', env.sales_point, 'x3')
            self.assertEqual(Emergency(credit.id).state, 'repaid')
            # A credit whose repayment text merely contains the number.
            other = Emergency(
                meter=env.meter,
                amount=D('20.00'),
                repaid=D('20.00'),
                state='repaid',
                repayments=f'{repaying.number}0',
            )
            other.save()
            with self.assertRaisesRegex(UserError, 'already partly repaid'):
                Vend.cancel_vends([credit.vend], 'mistake')
            Vend.cancel_vends([repaying], 'wrong meter')
            credit = Emergency(credit.id)
            self.assertEqual((credit.state, credit.repaid), ('open', D('0')))
            self.assertEqual(Emergency(other.id).state, 'repaid')
            (position,) = Position.search([])
            # Only the emergency vend x2 is left in the month.
            self.assertEqual(position.vends, 1)
            self.assertEqual(position.kwh, credit.vend.month_kwh_after)

    @with_transaction()
    def test_idempotency_key_reused_for_other_request_refused(self):
        "Same key, different request or cancelled vend: clear error"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            open_session(env)
            vend = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'i1')
            again = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'i1')
            self.assertEqual(again, vend)
            for args, differs in (
                ((D('200.00'), 'cash'), 'tender'),
                ((D('100.00'), 'card'), 'payment_method'),
            ):
                with self.assertRaisesRegex(VendError, differs):
                    Vend.vend(env.meter, *args, env.sales_point, 'i1')
            with self.assertRaisesRegex(VendError, 'requested_kwh'):
                Vend.vend(
                    env.meter, None, 'cash', env.sales_point, 'i1', requested_kwh=D(5)
                )
            Vend.cancel_vends([vend], 'test')
            with self.assertRaisesRegex(VendError, 'was cancelled'):
                Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'i1')

    @with_transaction()
    def test_rpc_bad_input(self):
        "Bad RPC input gives a VendError saying what is wrong"
        Vend = Pool().get('prepaid.vend')
        with with_vending() as env:
            serial = env.meter.serial
            for args, message in (
                ((serial, 'abc', 'card', None, 'b1'), 'tender "abc" is not a number'),
                ((serial, None, 'card', None, 'b2', 'NaN'), 'kWh "NaN"'),
                ((serial, 'Infinity', 'card', None, 'b3'), 'not a number'),
                ((serial, '100.00', 'card', 'NOPE', 'b4'), 'No sales point'),
                ((serial, '100.00', 'card', None, ''), 'idempotency_key'),
                ((None, '100.00', 'card', None, 'b5'), 'meter_serial'),
            ):
                with self.assertRaisesRegex(VendError, message):
                    Vend.rpc_vend(*args)
            with self.assertRaisesRegex(VendError, 'not a number'):
                Vend.vend(env.meter, D('NaN'), 'card', None, 'b6', channel='api')
