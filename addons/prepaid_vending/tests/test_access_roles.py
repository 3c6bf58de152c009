"""Who may see and change what, per role, as an RPC call sees it (access
checks on).

Records that belong to a meter take no access from it: the groups that may
write meters (the Vending Operator among them) must not thereby write
emergency credits or meter commands.  Customers are personal data: no access
without a staff group.  A manager who also sells sees every vend and shift.
"""

import datetime as dt
import unittest
from decimal import Decimal

from trytond.model.exceptions import AccessError
from trytond.model.modelview import AccessButtonError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module
from trytond.transaction import Transaction

from .staff import as_new_user
from .tools import TODAY, create_customer, create_meter, with_company
from .vend_fixtures import open_session, with_vending

# Groups that read a meter's records but change none of them.
READERS = ('group_operator', 'group_cashier', 'group_accountant', 'group_key_custodian')


class AccessRolesTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def assert_refused(self, groups, Model, record, values, create_values=None):
        "Each of groups can neither write record nor create one like it"
        for group in groups:
            with self.subTest(group=group), as_new_user(group):
                with self.assertRaises(AccessError):
                    Model.write([Model(record.id)], values)
                if create_values is not None:
                    with self.assertRaises(AccessError):
                        Model.create([create_values])

    @with_company
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
            with self.subTest(group=group), as_new_user(group):
                Credit.write([Credit(credit.id)], {'amount': Decimal(amount)})
            self.assertEqual(Credit(credit.id).amount, Decimal(amount))

    @with_company
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
            with self.subTest(group=group), as_new_user(group):
                Command.write([Command(command.id)], {'last_error': group})
                with self.assertRaises(AccessError):
                    Command.create([values])
            self.assertEqual(Command(command.id).last_error, group)

    @with_company
    def test_month_position_written_by_nobody(self):
        "The kWh bought this month price the next vend: only vends write them"
        Position = Pool().get('prepaid.meter.month_position')
        meter = create_meter('04100000204')
        values = {
            'meter': meter.id,
            'month': TODAY.replace(day=1),
            'kwh': Decimal('40.0'),
            'vends': 1,
        }
        (position,) = Position.create([values])
        self.assert_refused(
            READERS + ('group_engineer', 'group_manager', 'group_admin'),
            Position,
            position,
            {'kwh': Decimal('0.0')},
            dict(values, month=TODAY.replace(day=1, month=TODAY.month + 1)),
        )

    @with_company
    def test_meter_tariff_assigned_by_operator_manager_admin(self):
        pool = Pool()
        Tariff = pool.get('prepaid.tariff')
        MeterTariff = pool.get('prepaid.meter.tariff')
        meter = create_meter('04100000205')
        (tariff,) = Tariff.create([{'name': 'Domestic', 'code': 'DOM-A'}])
        values = {'meter': meter.id, 'tariff': tariff.id, 'start_date': TODAY}
        (assignment,) = MeterTariff.create([values])
        self.assert_refused(
            READERS[1:] + ('group_engineer',),
            MeterTariff,
            assignment,
            {'reason': 'forged'},
            values,
        )
        for group in ('group_operator', 'group_manager', 'group_admin'):
            with self.subTest(group=group), as_new_user(group):
                MeterTariff.write([MeterTariff(assignment.id)], {'reason': group})
            self.assertEqual(MeterTariff(assignment.id).reason, group)

    @with_company
    def test_remote_consumption_and_bills_not_written_by_account_writers(self):
        pool = Pool()
        Account = pool.get('prepaid.remote.account')
        Consumption = pool.get('prepaid.remote.consumption')
        Bill = pool.get('prepaid.remote.bill')
        meter = create_meter('04100000206', payment_mode='remote_prepaid')
        (account,) = Account.create([{'meter': meter.id}])
        start = dt.datetime(2026, 3, 1)
        usage = {
            'account': account.id,
            'start': start,
            'end': start + dt.timedelta(minutes=30),
            'kwh': Decimal('1.500'),
        }
        (consumption,) = Consumption.create([usage])
        bill_values = {
            'account': account.id,
            'month': TODAY,
            'date': start,
            'amount': Decimal('100.00'),
            'vat': Decimal('15.00'),
        }
        (bill,) = Bill.create([bill_values])
        # The operator and the manager write remote accounts, not these.
        for group in ('group_operator', 'group_manager'):
            with self.subTest(group=group), as_new_user(group):
                Account.write([Account(account.id)], {'credit_limit': Decimal(5)})
        self.assert_refused(
            ('group_operator', 'group_manager', 'group_cashier'),
            Consumption,
            consumption,
            {'kwh': Decimal('0.000')},
            usage,
        )
        self.assert_refused(
            ('group_operator', 'group_manager', 'group_engineer'),
            Bill,
            bill,
            {'amount': Decimal('1.00')},
            bill_values,
        )
        # The cashier and the engineer still read them (once given by the
        # account).
        with as_new_user('group_cashier'):
            self.assertEqual(Consumption.search([]), [consumption])
        with as_new_user('group_engineer'):
            self.assertEqual(Bill.search([]), [bill])
            # The engineer enters a reading, then cannot rewrite it
            # (test_workflow_only).
            Consumption.create([dict(usage, start=start - dt.timedelta(hours=1))])
            with self.assertRaises(AccessError):
                Consumption.write([Consumption(consumption.id)], {'kwh': Decimal(2)})

    # --- customers ------------------------------------------------------------
    @with_company
    def test_customers_hidden_without_staff_group(self):
        pool = Pool()
        Party = pool.get('party.party')
        Address = pool.get('party.address')
        User = pool.get('res.user')
        customer = create_customer()
        (address,) = Address.create([{'party': customer.id, 'street': '12 Oak'}])
        for groups in [(), ('group_api_terminal',)]:
            with self.subTest(groups=groups), as_new_user(*groups):
                for Model, record in [(Party, customer), (Address, address)]:
                    with self.assertRaises(AccessError):
                        Model.search([])
                    with self.assertRaises(AccessError):
                        Model.read([record.id], ['rec_name'])
                    with self.assertRaises(AccessError):
                        Model.write([Model(record.id)], {'street': 'x', 'name': 'x'})
                with self.assertRaises(AccessError):
                    Party.create([{'name': 'Intruder'}])
                # Logging in still works: the preferences name no party.
                self.assertIn('language', User.get_preferences(context_only=False))
        self.assertEqual(Party(customer.id).name, 'Thandi Mokoena')

    @with_company
    def test_customers_read_by_staff_changed_by_back_office(self):
        pool = Pool()
        Party = pool.get('party.party')
        customer = create_customer()
        for group in (
            'group_cashier',
            'group_engineer',
            'group_key_custodian',
            'group_accountant',
        ):
            with self.subTest(group=group), as_new_user(group):
                self.assertEqual(Party.search([('id', '=', customer.id)]), [customer])
                with self.assertRaises(AccessError):
                    Party.write([Party(customer.id)], {'name': 'Renamed'})
                with self.assertRaises(AccessError):
                    Party.create([{'name': 'New'}])
        for group in (
            'group_operator',
            'group_manager',
            'group_admin',
            'party.group_party_admin',
            'res.group_admin',
        ):
            with self.subTest(group=group), as_new_user(group):
                Party.write([Party(customer.id)], {'name': group})
                Party.create([{'name': f'New for {group}'}])
            self.assertEqual(Party(customer.id).name, group)

    @with_company
    def test_make_customer_button_groups(self):
        Party = Pool().get('party.party')
        (party,) = Party.create([{'name': 'Walk-in'}])
        for group in ('group_cashier', 'group_engineer', 'group_accountant'):
            with self.subTest(group=group), as_new_user(group):
                with self.assertRaises((AccessButtonError, AccessError)):
                    Party.make_customer([Party(party.id)])
        self.assertIsNone(Party(party.id).customer_number)

    # --- record rules ----------------------------------------------------------
    @with_company
    def test_manager_who_sells_sees_every_vend_and_shift(self):
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        Vend = pool.get('prepaid.vend')
        Session = pool.get('prepaid.cashier.session')
        with with_vending() as env:
            open_session(env)
            Vend.vend(env.meter, Decimal('100.00'), 'cash', env.sales_point, 'adm')

            def user(login, *groups):
                return User.create(
                    [
                        {
                            'login': login,
                            'name': login,
                            'groups': [
                                ('add', [ModelData.get_id('prepaid_vending', g)])
                                for g in groups
                            ],
                            'companies': [('add', [env.company.id])],
                            'company': env.company.id,
                        }
                    ]
                )[0]

            cashier = user('cashier', 'group_cashier')
            selling = [
                user('selling_manager', 'group_cashier', 'group_manager'),
                user('selling_accountant', 'group_cashier', 'group_accountant'),
                user('selling_admin', 'group_cashier', 'group_admin'),
            ]
            transaction = Transaction()
            for seller in [cashier, *selling]:
                with (
                    transaction.set_user(seller.id),
                    transaction.set_context(_check_access=True),
                ):
                    Session.open_session(env.sales_point)
                    Vend.vend(
                        env.meter,
                        Decimal('100.00'),
                        'cash',
                        env.sales_point,
                        seller.login,
                    )
            for seller in selling:
                with (
                    self.subTest(user=seller.login),
                    transaction.set_user(seller.id),
                    transaction.set_context(_check_access=True),
                ):
                    self.assertEqual(Vend.search_count([]), 5)
                    self.assertEqual(Session.search_count([]), 5)
                    self.assertEqual(
                        Vend.search_count([('cashier', '=', cashier.id)]), 1
                    )
            # A cashier alone still sees only their own.
            with (
                transaction.set_user(cashier.id),
                transaction.set_context(_check_access=True),
            ):
                self.assertEqual(
                    [v.cashier for v in Vend.search([])], [User(cashier.id)]
                )
                self.assertEqual(Session.search_count([]), 1)

    # --- debts -------------------------------------------------------------------
    @with_company
    def test_debt_payment_lines(self):
        "Only a payment taken writes a payment line; staff read it, none writes one"
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        Line = pool.get('prepaid.debt.line')
        # Debt.pay is no RPC method: a client cannot call it.
        self.assertNotIn('pay', Debt.__rpc__)
        with with_vending() as env:
            debt = Debt(party=env.customer, description='Arrears', amount=Decimal(90))
            debt.save()
            Debt.open([debt])
            Debt.pay([debt], Decimal('40.00'), 'Account payment R9')
            for group in ('group_operator', 'group_manager', 'group_cashier'):
                with self.subTest(group=group), as_new_user(group):
                    with self.assertRaises(AccessError):
                        Line.create(
                            [
                                {
                                    'debt': debt.id,
                                    'kind': 'payment',
                                    'amount': Decimal('-50.00'),
                                }
                            ]
                        )
                    # Allowed: the payment read in the debt's history.
                    (line,) = Line.search(
                        [('debt', '=', debt.id), ('kind', '=', 'payment')]
                    )
                    self.assertEqual(line.amount, Decimal('-40.00'))
            self.assertEqual(Debt(debt.id).balance, Decimal('50.00'))

    @with_company
    def test_debt_open_button_groups(self):
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        with with_vending() as env:
            (debt,) = Debt.create(
                [
                    {
                        'party': env.customer.id,
                        'amount': Decimal('90.00'),
                        'description': 'Arrears',
                    }
                ]
            )
            for group in ('group_cashier', 'group_accountant', 'group_admin'):
                with self.subTest(group=group), as_new_user(group):
                    with self.assertRaises((AccessButtonError, AccessError)):
                        Debt.open([Debt(debt.id)])
            self.assertEqual(Debt(debt.id).state, 'draft')
            with as_new_user('group_operator'):
                Debt.open([Debt(debt.id)])
            self.assertEqual(Debt(debt.id).state, 'open')
