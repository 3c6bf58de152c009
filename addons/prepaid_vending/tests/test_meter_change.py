"""Change meter, change customer and change tariff against a database.

The STS cases (key change and credit transfer tokens) are tested by
prepaid_sts (tests/test_sts_meter_change.py), which depends on this module.
"""

import datetime as dt
import unittest
from decimal import Decimal as D

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from .staff import acting_as, create_user
from .vend_fixtures import new_point, open_session, with_vending

TODAY = dt.date.today()


def stock_meter(serial, kind='smart_prepaid', payment_mode='prepaid', **values):
    Meter = Pool().get('prepaid.meter')
    meter = Meter(serial=serial, kind=kind, payment_mode=payment_mode, **values)
    meter.save()
    return meter


def vend(env, tender, key, meter=None):
    Vend = Pool().get('prepaid.vend')
    return Vend.vend(meter or env.meter, tender, 'cash', env.sales_point, key)


class MeterChangeTestCase(unittest.TestCase):
    "Change meter, customer and tariff (no STS)"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_change_smart_meter(self):
        "Final reading, history, block position, tariff and credit carried over"
        pool = Pool()
        MeterChange = pool.get('prepaid.meter.change')
        Assignment = pool.get('prepaid.meter.tariff')
        Command = pool.get('prepaid.meter.command')
        Meter = pool.get('prepaid.meter')
        with with_vending() as env:
            open_session(env)
            Assignment(
                meter=env.meter, tariff=env.tariff, start_date=dt.date(2020, 1, 1)
            ).save()
            first = vend(env, D('300.00'), 'v1')
            new = stock_meter('04000000099')

            change, tokens = MeterChange.change_meter(
                env.point,
                new,
                TODAY,
                'Display faulty',
                final_reading=D('1234.50'),
                new_reading=D('0.10'),
                credit_kwh=D('12.3'),
            )

            self.assertEqual(env.point.__class__(env.point.id).meter, new)
            self.assertEqual(Meter(env.meter.id).state, 'removed')
            (old_install,) = [
                i
                for i in env.point.__class__(env.point.id).installations
                if i.meter == env.meter
            ]
            self.assertEqual(old_install.removal_reading, D('1234.50'))
            self.assertEqual(change.old_meter, env.meter)
            self.assertEqual(change.customer, env.customer)
            self.assertEqual(change.month_kwh, first.units_kwh)
            self.assertEqual(change.credit_kwh, D('12.3'))
            self.assertFalse(change.key_change)
            self.assertEqual(change.user.id, 1)
            # The credit goes to the smart meter through the head-end, free.
            (command,) = Command.search([('meter', '=', new.id)])
            self.assertEqual(command.kind, 'remote_credit')
            self.assertEqual(command.data['kwh'], '12.3')
            self.assertEqual(command.data['reason'], 'meter credit transfer')
            self.assertEqual(tokens[0][1], '')
            # The next vend on the new meter continues in the same block.
            second = vend(env, D('100.00'), 'v2', meter=Meter(new.id))
            self.assertEqual(second.month_kwh_before, first.units_kwh)
            self.assertFalse([x for x in second.lines if x.kind == 'charge'])
            self.assertEqual(
                Assignment.search([('meter', '=', new.id)])[0].tariff, env.tariff
            )
            # History is never edited from a client (per role:
            # test_append_only).
            with acting_as(create_user('admin2', 'group_admin', company=env.company)):
                with self.assertRaises(AccessError):
                    MeterChange.write([change], {'reason': 'other'})
                with self.assertRaises(AccessError):
                    MeterChange.delete([change])

    @with_transaction()
    def test_change_meter_refusals(self):
        "Clear errors: no meter, future date, bad kWh, meter not in stock"
        pool = Pool()
        MeterChange = pool.get('prepaid.meter.change')
        with with_vending() as env:
            new = stock_meter('04000000099')
            empty = new_point(env, 'SP9')
            cases = [
                ((empty, new, TODAY, 'x'), {}, 'No meter'),
                ((env.point, new, TODAY + dt.timedelta(days=1), 'x'), {}, 'future'),
                ((env.point, new, TODAY, ''), {}, 'reason'),
                ((env.point, new, TODAY, 'x'), {'credit_kwh': D('-1')}, 'positive'),
                ((env.point, new, TODAY, 'x'), {'credit_kwh': D('1.25')}, 'decimal'),
                ((env.point, env.meter, TODAY, 'x'), {}, 'in stock'),
            ]
            for args, kwargs, message in cases:
                with self.subTest(message=message):
                    with self.assertRaisesRegex(UserError, message):
                        MeterChange.change_meter(*args, **kwargs)
            self.assertEqual(MeterChange.search_count([]), 0)

    @with_transaction()
    def test_change_keypad_needs_sts(self):
        "A keypad meter cannot receive credit without the STS module"
        MeterChange = Pool().get('prepaid.meter.change')
        with with_vending() as env:
            new = stock_meter('04000000099', kind='sts_keypad')
            with self.assertRaisesRegex(UserError, 'prepaid_sts'):
                MeterChange.change_meter(
                    env.point, new, TODAY, 'x', credit_kwh=D('5.0')
                )

    @with_transaction()
    def test_remote_prepaid_balance_follows_account(self):
        "A remote-prepaid balance moves with the account, not as kWh"
        pool = Pool()
        MeterChange = pool.get('prepaid.meter.change')
        Account = pool.get('prepaid.remote.account')
        with with_vending(payment_mode='remote_prepaid') as env:
            open_session(env)
            first = vend(env, D('200.00'), 'r1')
            balance = Account.for_meter(env.meter).balance
            self.assertEqual(balance, first.credit_amount)
            new = stock_meter('04000000099', payment_mode='remote_prepaid')
            with self.assertRaisesRegex(UserError, 'follows the account'):
                MeterChange.change_meter(
                    env.point, new, TODAY, 'upgrade', credit_kwh=D('5.0')
                )
            change, tokens = MeterChange.change_meter(env.point, new, TODAY, 'upgrade')
            self.assertEqual(tokens, [])
            self.assertEqual(change.credit_amount, balance)
            account = Account.for_meter(new, create=False)
            self.assertEqual(account.balance, balance)
            self.assertIsNone(Account.for_meter(env.meter, create=False))

    @with_transaction()
    def test_customer_change_keep_and_refund(self):
        "Default policy: debts stay with the outgoing customer, balance refunded"
        pool = Pool()
        CustomerChange = pool.get('prepaid.customer.change')
        Debt = pool.get('prepaid.debt')
        Party = pool.get('party.party')
        Account = pool.get('prepaid.remote.account')
        with with_vending(payment_mode='remote_prepaid') as env:
            open_session(env)
            vend(env, D('150.00'), 'r1')
            balance = Account.for_meter(env.meter).balance
            debt = Debt(party=env.customer, description='Arrears', amount=D('80'))
            debt.save()
            Debt.open([debt])
            incoming = Party(name='Sipho Dlamini')
            incoming.save()
            with self.assertRaisesRegex(UserError, 'not a customer'):
                CustomerChange.change_customer(env.point, incoming, TODAY)
            incoming.customer_category = env.category
            Party.make_customer([incoming])
            with self.assertRaisesRegex(UserError, 'already the customer'):
                CustomerChange.change_customer(env.point, env.customer, TODAY)

            change = CustomerChange.change_customer(
                env.point, incoming, TODAY, reason='Moved out'
            )

            self.assertEqual(env.point.__class__(env.point.id).customer, incoming)
            self.assertEqual(
                (change.debt_policy, change.balance_policy), ('keep', 'refund')
            )
            self.assertEqual(Debt(debt.id).state, 'open')
            self.assertEqual(Debt(debt.id).party, env.customer)
            self.assertEqual(change.refund, balance)
            account = Account.for_meter(env.meter)
            self.assertEqual(account.balance, D('0'))
            self.assertEqual(account.party, incoming)
            self.assertEqual(Debt.open_debts(incoming, env.company), [])

    @with_transaction()
    def test_customer_change_premises_and_transfer(self):
        "Other policy: debts and balance go with the premises"
        pool = Pool()
        CustomerChange = pool.get('prepaid.customer.change')
        Debt = pool.get('prepaid.debt')
        Party = pool.get('party.party')
        Account = pool.get('prepaid.remote.account')
        with with_vending(payment_mode='remote_prepaid') as env:
            open_session(env)
            vend(env, D('150.00'), 'r1')
            balance = Account.for_meter(env.meter).balance
            debt = Debt(
                party=env.customer,
                description='Arrears',
                amount=D('80'),
                recovery_percent=D(10),
            )
            debt.save()
            Debt.open([debt])
            incoming = Party(name='Sipho Dlamini', customer_category=env.category)
            incoming.save()

            change = CustomerChange.change_customer(
                env.point,
                incoming,
                TODAY,
                debt_policy='premises',
                balance_policy='transfer',
            )

            self.assertEqual(change.debt_transferred, D('80'))
            self.assertEqual(Debt(debt.id).state, 'paid')
            self.assertEqual(Debt(debt.id).balance, D('0'))
            (moved,) = Debt.open_debts(incoming, env.company)
            self.assertEqual(moved.balance, D('80'))
            self.assertEqual(moved.recovery_percent, D(10))
            self.assertEqual(change.refund, D('0'))
            self.assertEqual(Account.for_meter(env.meter).balance, balance)
            # The incoming customer's next vend recovers the transferred debt.
            second = vend(env, D('100.00'), 'r2')
            self.assertEqual(second.customer, incoming)
            (recovery,) = [x for x in second.lines if x.kind == 'debt']
            self.assertEqual(recovery.amount, D('10.00'))

    @with_transaction()
    def test_tariff_change(self):
        "A dated tariff assignment; no key change for a smart meter"
        pool = Pool()
        Tariff = pool.get('prepaid.tariff')
        with with_vending() as env:
            other = Tariff(name='Business', code='B1', sts_tariff_index='02')
            other.save()
            with self.assertRaisesRegex(UserError, 'reason'):
                env.meter.assign_tariff(other, TODAY, '')
            assignment, tokens = env.meter.assign_tariff(other, TODAY, 'Shop')
            self.assertEqual(tokens, [])
            self.assertEqual(Tariff.for_meter(env.meter, TODAY), other)
            self.assertEqual(assignment.user.id, 1)
            with self.assertRaisesRegex(UserError, 'after the last one'):
                env.meter.assign_tariff(env.tariff, TODAY, 'Back')
