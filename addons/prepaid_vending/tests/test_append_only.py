"""Logs and audit trails are append-only for everyone (issue 11 §3), and a
vend is answered only to the requester who made it (issue 11 §4b).

Each staff group, and the administrator, acts as a real user with access
checks on (as a client request): none may change, delete or forge a vend, its
lines and tokens, the receipt print log, the debt ledger, emergency credit
repayments, the remote account ledger, the meter state history or the meter
and customer change history; the code that writes them still does.
"""

import datetime as dt
import unittest
from decimal import Decimal as D

from trytond.exceptions import UserError
from trytond.model import fields
from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_vending.vend import VendError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .staff import STAFF_ROLES, acting_as, create_user
from .vend_fixtures import new_meter, new_point, open_session, with_vending

TODAY = dt.date.today()
STAFF_GROUPS = tuple(f'group_{role}' for role in STAFF_ROLES)

#: Model -> (a field to rewrite, its forged value).
APPEND_ONLY = {
    'prepaid.vend': ('cancel_reason', 'forged'),
    'prepaid.vend.line': ('description', 'forged'),
    'prepaid.vend.token': ('description', 'forged'),
    'prepaid.vend.reprint': ('reason', 'forged'),
    'prepaid.debt.line': ('description', 'forged'),
    'prepaid.emergency_credit.repayment': ('amount', D('999')),
    'prepaid.remote.account.line': ('description', 'forged'),
    'prepaid.meter.state_history': ('reason', 'forged'),
    'prepaid.meter.change': ('reason', 'forged'),
    'prepaid.customer.change': ('reason', 'forged'),
}


def everyone(env):
    "A user per staff group, and the administrator (in every group it has)"
    User = Pool().get('res.user')
    users = {g: create_user(f'login_{g}', g, company=env.company) for g in STAFF_GROUPS}
    (users['admin'],) = User.search([('login', '=', 'admin')])
    return users


def create_values(Model, record) -> dict:
    "The stored values of record, as a client would send them to forge one"
    skip = {'id', 'create_uid', 'create_date', 'write_uid', 'write_date'}
    names = [
        n
        for n, f in Model._fields.items()
        if n not in skip
        and not isinstance(f, fields.Function)
        and f._type not in {'one2many', 'many2many'}
    ]
    values = Model.read([record.id], names)[0]
    del values['id']
    if 'idempotency_key' in values:
        values.update(idempotency_key='forged', receipt_sequence=None)
    return values


def one_of_each(env) -> dict:
    "A record of each append-only model, written by the code that owns it"
    pool = Pool()
    Vend = pool.get('prepaid.vend')
    VendToken = pool.get('prepaid.vend.token')
    Reprint = pool.get('prepaid.vend.reprint')
    Debt = pool.get('prepaid.debt')
    Account = pool.get('prepaid.remote.account')
    AccountLine = pool.get('prepaid.remote.account.line')
    History = pool.get('prepaid.meter.state_history')
    Emergency = pool.get('prepaid.emergency_credit')
    Repayment = pool.get('prepaid.emergency_credit.repayment')
    with Transaction().set_user(0):
        vend = Vend.vend(env.meter, D('100.00'), 'card', None, 'seed', channel='api')
    (token,) = VendToken.create(
        [{'vend': vend.id, 'kind': 'credit', 'token': '1' * 20, 'description': 'x'}]
    )
    Reprint._write_log([vend], 'reprint', 'seed')
    credit = Emergency(meter=env.meter, party=env.customer, amount=D('20'))
    credit.save()
    (repayment,) = Repayment.create(
        [{'credit': credit.id, 'vend': vend.id, 'amount': D('5')}]
    )
    debt = Debt(party=env.customer, amount=D('10.00'), description='Arrears')
    debt.save()
    Debt.open([debt])
    remote = new_meter(
        '04000000002', new_point(env, 'SP-R'), payment_mode='remote_prepaid'
    )
    account = Account(meter=remote, party=env.customer)
    account.save()
    (account_line,) = AccountLine.create(
        [{'account': account.id, 'kind': 'vend', 'amount': D('1'), 'description': 'x'}]
    )
    meter_change, customer_change = changes(env)
    return {
        'prepaid.meter.change': meter_change,
        'prepaid.customer.change': customer_change,
        'prepaid.vend': vend,
        'prepaid.vend.line': vend.lines[0],
        'prepaid.vend.token': token,
        'prepaid.vend.reprint': Reprint.search([('vend', '=', vend.id)])[0],
        'prepaid.debt.line': debt.lines[0],
        'prepaid.emergency_credit.repayment': repayment,
        'prepaid.remote.account.line': account_line,
        'prepaid.meter.state_history': History.search([])[0],
    }


def incoming_customer(env, name='Sipho Dlamini'):
    Party = Pool().get('party.party')
    party = Party(name=name, customer_category=env.category)
    party.save()
    Party.make_customer([party])
    return party


def changes(env) -> tuple:
    "A meter change and a customer change of env's point, by their own code"
    pool = Pool()
    Meter = pool.get('prepaid.meter')
    MeterChange = pool.get('prepaid.meter.change')
    CustomerChange = pool.get('prepaid.customer.change')
    spare = Meter(serial='04000000077', kind='smart_prepaid', payment_mode='prepaid')
    spare.save()
    meter_change, _ = MeterChange.change_meter(env.point, spare, TODAY, 'Faulty')
    customer_change = CustomerChange.change_customer(
        env.point, incoming_customer(env), TODAY, reason='Moved in'
    )
    return meter_change, customer_change


class AppendOnlyTestCase(unittest.TestCase):
    "Append-only logs and the requester of a vend"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_nobody_edits_deletes_or_forges_a_log(self):
        "Per role and per model: write, delete and create refused"
        pool = Pool()
        with with_vending() as env:
            records = one_of_each(env)
            users = everyone(env)
            for model, (field, forged) in APPEND_ONLY.items():
                Model = pool.get(model)
                record = records[model]
                before = Model.read([record.id], [field])[0][field]
                values = create_values(Model, record)
                count = Model.search_count([])
                for role, user in users.items():
                    with self.subTest(model=model, role=role), acting_as(user):
                        with self.assertRaises(AccessError):
                            Model.write([Model(record.id)], {field: forged})
                        with self.assertRaises(AccessError):
                            Model.delete([Model(record.id)])
                        with self.assertRaises(AccessError):
                            Model.create([dict(values)])
                self.assertEqual(Model.read([record.id], [field])[0][field], before)
                self.assertEqual(Model.search_count([]), count)

    @with_transaction()
    def test_refusal_does_not_depend_on_access_records(self):
        "The model refuses even a group given full access by mistake"
        pool = Pool()
        Access = pool.get('ir.model.access')
        Reprint = pool.get('prepaid.vend.reprint')
        with with_vending() as env:
            reprint = one_of_each(env)['prepaid.vend.reprint']
            cashier = create_user('cashier', 'group_cashier', company=env.company)
            Access.create(
                [
                    {
                        'model': 'prepaid.vend.reprint',
                        'group': cashier.groups[0].id,
                        'perm_read': True,
                        'perm_write': True,
                        'perm_create': True,
                        'perm_delete': True,
                    }
                ]
            )
            with acting_as(cashier):
                with self.assertRaisesRegex(AccessError, 'cannot be changed'):
                    Reprint.write([Reprint(reprint.id)], {'reason': 'forged'})
                with self.assertRaisesRegex(AccessError, 'cannot be deleted'):
                    Reprint.delete([Reprint(reprint.id)])
                with self.assertRaisesRegex(AccessError, 'only by the system'):
                    Reprint.create([{'vend': reprint.vend.id, 'reason': 'fake'}])

    @with_transaction()
    def test_code_still_appends(self):
        "A state change by an operator writes its history line"
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        History = pool.get('prepaid.meter.state_history')
        with with_vending() as env:
            operator = create_user('operator', 'group_operator', company=env.company)
            with acting_as(operator):
                Meter.change_state([Meter(env.meter.id)], 'faulty', 'Tamper')
            (line,) = History.search([('reason', '=', 'Tamper')])
            self.assertEqual(line.user, operator)


class ChangeHistoryTestCase(unittest.TestCase):
    "Meter and customer changes: only their wizards write the history"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def run_wizard(self, name, point, data):
        "As the client runs a wizard from a service point form"
        Wizard = Pool().get(name, type='wizard')
        context = {'active_model': 'prepaid.service_point', 'active_id': point.id}
        with Transaction().set_context(context, active_ids=[point.id]):
            session_id, _, _ = Wizard.create()
            Wizard.execute(session_id, {}, 'start')
            return Wizard.execute(session_id, data, 'change')

    @with_transaction()
    def test_wizards_still_write_the_history(self):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        MeterChange = pool.get('prepaid.meter.change')
        CustomerChange = pool.get('prepaid.customer.change')
        with with_vending() as env:
            operator = create_user('operator', 'group_operator', company=env.company)
            spare = Meter(serial='04000000077', kind='smart_prepaid')
            spare.save()
            incoming = incoming_customer(env)
            with acting_as(operator):
                self.run_wizard(
                    'prepaid.meter.change.wizard',
                    env.point,
                    {'start': {'new_meter': spare.id, 'date': TODAY, 'reason': 'Old'}},
                )
                self.run_wizard(
                    'prepaid.customer.change.wizard',
                    env.point,
                    {
                        'start': {
                            'new_customer': incoming.id,
                            'date': TODAY,
                            'debt_policy': 'keep',
                            'balance_policy': 'refund',
                            'reason': 'Moved in',
                        }
                    },
                )
            (meter_change,) = MeterChange.search([])
            self.assertEqual(
                (meter_change.new_meter, meter_change.user), (spare, operator)
            )
            (customer_change,) = CustomerChange.search([])
            self.assertEqual(
                (customer_change.new_customer, customer_change.user),
                (incoming, operator),
            )


class RequesterTestCase(unittest.TestCase):
    "rpc_vend: a retry answers only its requester; no shift, API terminals only"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_another_cashiers_key_is_refused_and_reveals_nothing(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            alice = create_user('alice', 'group_cashier', company=env.company)
            bob = create_user('bob', 'group_cashier', company=env.company)
            args = (env.meter.serial, '100.00', 'cash', 'HO', 'alice-1')
            with acting_as(alice):
                open_session(env)
                sold = Vend.rpc_vend(*args)
            with acting_as(bob):
                open_session(env)
                with self.assertRaisesRegex(VendError, 'already used') as caught:
                    Vend.rpc_vend(*args)
            message = str(caught.exception)
            self.assertNotIn(sold['number'], message)
            self.assertNotIn(env.meter.serial, message)
            for token in sold['tokens']:
                self.assertNotIn(token, message)
            # The requester's own retry still answers the same vend.
            with acting_as(alice):
                self.assertEqual(Vend.rpc_vend(*args), sold)
            self.assertEqual(len(Vend.search([])), 1)

    @with_transaction()
    def test_same_user_other_sales_point_is_refused(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            terminal = create_user('gateway', 'group_api_terminal', company=env.company)
            with acting_as(terminal):
                Vend.rpc_vend(env.meter.serial, '100.00', 'card', None, 'k1')
                env.sales_point.channel = 'web'
                with Transaction().set_context(_check_access=False):
                    env.sales_point.save()
                with self.assertRaisesRegex(VendError, 'already used'):
                    Vend.rpc_vend(env.meter.serial, '100.00', 'card', 'HO', 'k1')

    @with_transaction()
    def test_bad_amount_is_told_before_the_terminal_check(self):
        "A non-terminal's bad amount gets the amount's message, as a terminal"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            cashier = create_user('cashier', 'group_cashier', company=env.company)
            terminal = create_user('gateway', 'group_api_terminal', company=env.company)
            cases = [
                ((None, None), 'decimal amount'),
                (('-5.00', None), 'must be positive, not -5.00'),
                (('10.005', None), 'more than 2 decimal places'),
                ((None, '0'), 'kWh must be positive'),
            ]
            for user in (cashier, terminal):
                for (tender, kwh), message in cases:
                    with self.subTest(user=user.login, tender=tender, kwh=kwh):
                        with (
                            acting_as(user),
                            self.assertRaisesRegex(VendError, message),
                        ):
                            Vend.rpc_vend(
                                env.meter.serial, tender, 'card', None, 'k', kwh
                            )
            # A good amount from a non-terminal: the terminal message.
            with acting_as(cashier), self.assertRaisesRegex(VendError, 'API terminal'):
                Vend.rpc_vend(env.meter.serial, '100.00', 'card', None, 'k')
            self.assertEqual(Vend.search([]), [])

    @with_transaction()
    def test_cashier_without_shift_cannot_sell(self):
        "Vend R00000001 on the API series was sold by a cashier with no shift"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            cashier = create_user('cashier', 'group_cashier', company=env.company)
            terminal = create_user('gateway', 'group_api_terminal', company=env.company)
            for role, user in (('cashier', cashier), ('admin', None)):
                with self.subTest(role=role):
                    if user is None:
                        (user,) = pool.get('res.user').search([('login', '=', 'admin')])
                    with acting_as(user):
                        with self.assertRaisesRegex(VendError, 'API terminal'):
                            Vend.rpc_vend(
                                env.meter.serial, '100.00', 'card', None, role
                            )
            self.assertEqual(Vend.search([]), [])
            with acting_as(terminal):
                result = Vend.rpc_vend(env.meter.serial, '100.00', 'card', None, 't1')
            (vend,) = Vend.search([('number', '=', result['number'])])
            self.assertEqual((vend.cashier, vend.session), (terminal, None))
            # A terminal has no shift: it cannot take cash.
            with acting_as(terminal):
                with self.assertRaisesRegex(UserError, 'sales point'):
                    Vend.rpc_vend(env.meter.serial, '100.00', 'cash', None, 't2')
