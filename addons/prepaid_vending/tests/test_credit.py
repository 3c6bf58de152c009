"""Debt recovery plans and write-off, emergency credit, friendly periods and
remote-prepaid accounts (billing, disconnect, reconnect, warnings)."""

import datetime as dt
import unittest
from decimal import Decimal as D

from trytond.exceptions import UserError
from trytond.modules.prepaid_vending.credit import wall_clock
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from .vend_fixtures import open_session, with_vending


class CreditTestCase(unittest.TestCase):
    "Credit management"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_debt_plan_and_write_off(self):
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            open_session(env)
            debt = Debt(
                party=env.customer,
                description='Old arrears',
                amount=D('500.00'),
                recovery_percent=D(20),
                min_per_vend=D('30.00'),
                max_per_vend=D('50.00'),
            )
            debt.save()
            Debt.open([debt])
            first = Vend.vend(
                env.meter, D('300.00'), 'cash', env.sales_point, 'd1'
            )  # 20 % = 60 capped at 50
            second = Vend.vend(
                env.meter, D('100.00'), 'cash', env.sales_point, 'd2'
            )  # 20 % = 20 raised to the minimum 30
            recovered = [
                sum(x.amount for x in v.lines if x.kind == 'debt')
                for v in (first, second)
            ]
            self.assertEqual(recovered, [D('50.00'), D('30.00')])
            debt = Debt(debt.id)
            self.assertEqual(debt.balance, D('420.00'))
            self.assertEqual(second.debt_remaining, D('420.00'))
            self.assertEqual(
                [line.kind for line in debt.lines], ['charge', 'recovery', 'recovery']
            )
            with self.assertRaisesRegex(UserError, 'reason'):
                Debt.write_off([debt], '')
            Debt.write_off([debt], 'indigent household')
            debt = Debt(debt.id)
            self.assertEqual((debt.state, debt.balance), ('written_off', D(0)))
            third = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'd3')
            self.assertFalse([x for x in third.lines if x.kind == 'debt'])

    @with_transaction()
    def test_debt_payment(self):
        "A payment reduces the oldest debt first; too much or nothing: refused"
        Debt = Pool().get('prepaid.debt')
        with with_vending() as env:
            debts = []
            for amount in ('100.00', '50.00'):
                debt = Debt(party=env.customer, description='Arrears', amount=D(amount))
                debt.save()
                debts.append(debt)
            Debt.open(debts)
            for bad, message in (('150.01', 'more than the 150.00'), ('0', 'positive')):
                with self.assertRaisesRegex(UserError, message):
                    Debt.pay(debts, D(bad), 'Payment R1')
            self.assertEqual([Debt(d.id).balance for d in debts], [D(100), D(50)])
            lines = Debt.pay(debts, D('120.00'), 'Payment R2')
            self.assertEqual(
                [(ln.debt.id, ln.kind, ln.amount) for ln in lines],
                [(debts[0].id, 'payment', D('-100.00')),
                 (debts[1].id, 'payment', D('-20.00'))],
            )  # fmt: skip
            first, second = (Debt(d.id) for d in debts)
            self.assertEqual((first.state, first.balance), ('paid', D(0)))
            self.assertEqual((second.state, second.balance), ('open', D(30)))
            Debt.pay([first, second], D('30.00'), 'Payment R3')
            self.assertEqual(Debt(second.id).state, 'paid')

    @with_transaction()
    def test_emergency_credit(self):
        pool = Pool()
        Emergency = pool.get('prepaid.emergency_credit')
        Vend = pool.get('prepaid.vend')
        Configuration = pool.get('prepaid.configuration')
        with with_vending() as env:
            open_session(env)
            with self.assertRaisesRegex(UserError, 'disabled'):
                Emergency.issue(env.meter, 'e0')
            Configuration.write(
                [Configuration(1)],
                {
                    'emergency_credit_amount': D('20.00'),
                    'emergency_credit_min_vends': 1,
                },
            )
            with self.assertRaisesRegex(UserError, 'needs 1'):
                Emergency.issue(env.meter, 'e1')
            Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'p1')
            credit = Emergency.issue(env.meter, 'e2')
            self.assertEqual(credit.vend.payment_method, 'emergency')
            self.assertGreater(credit.vend.units_kwh, 0)
            # The advance is booked on the emergency receivable, not in cash.
            Vend.book_pending()
            (debit,) = [line for line in Vend(credit.vend.id).move.lines if line.debit]
            self.assertEqual(debit.account, env.receivable)
            with self.assertRaisesRegex(UserError, 'still owes'):
                Emergency.issue(env.meter, 'e3')
            vend = Vend.vend(env.meter, D('50.00'), 'cash', env.sales_point, 'p2')
            first = vend.lines[0]
            self.assertEqual(first.kind, 'emergency')  # repaid first
            self.assertEqual(first.amount, D('20.00'))
            self.assertEqual(Emergency(credit.id).state, 'repaid')

    @with_transaction()
    def test_friendly_periods(self):
        pool = Pool()
        Calendar = pool.get('prepaid.friendly.calendar')
        Day = pool.get('prepaid.friendly.calendar.day')
        with with_vending():
            calendar = Calendar(
                name='Default',
                daily_start=dt.time(17, 0),
                daily_end=dt.time(8, 0),
                saturday=True,
                sunday=True,
                special_days=[
                    Day(name='Christmas', month=12, day=25),
                    Day(name='Election', date=dt.date(2026, 5, 29)),
                ],
            )
            calendar.save()
            cases = [
                (dt.datetime(2026, 6, 3, 12, 0), False),  # Wednesday noon
                (dt.datetime(2026, 6, 3, 18, 0), True),  # evening
                (dt.datetime(2026, 6, 3, 7, 59), True),  # early morning
                (dt.datetime(2026, 6, 3, 8, 0), False),
                (dt.datetime(2026, 6, 6, 12, 0), True),  # Saturday
                (dt.datetime(2026, 12, 25, 12, 0), True),  # yearly holiday
                (dt.datetime(2026, 5, 29, 12, 0), True),  # dated holiday
                (dt.datetime(2027, 5, 28, 12, 0), False),
            ]
            for moment, expected in cases:
                with self.subTest(moment=moment):
                    self.assertEqual(calendar.is_friendly(moment), expected)
            with self.assertRaisesRegex(UserError, 'holiday'):
                Day(calendar=calendar, month=2, day=30).save()

    @with_transaction()
    def test_friendly_periods_in_company_time(self):
        "Friendly hours are local: trytond's UTC clock goes through wall_clock"
        pool = Pool()
        Calendar = pool.get('prepaid.friendly.calendar')
        with with_vending() as env:
            calendar = Calendar(
                name='Evenings', daily_start=dt.time(17, 0), daily_end=dt.time(8, 0)
            )
            calendar.save()
            utc = dt.datetime(2026, 6, 3, 15, 30)  # a Wednesday
            self.assertEqual(wall_clock(utc), utc)  # company without timezone
            self.assertFalse(calendar.is_friendly(wall_clock(utc)))
            env.company.timezone = 'Africa/Johannesburg'  # UTC+2, no DST
            env.company.save()
            self.assertEqual(wall_clock(utc), dt.datetime(2026, 6, 3, 17, 30))
            self.assertTrue(calendar.is_friendly(wall_clock(utc)))

    @with_transaction()
    def test_remote_prepaid_account(self):
        "Top-up, billing on monthly blocks, warnings, disconnect, reconnect"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Account = pool.get('prepaid.remote.account')
        Consumption = pool.get('prepaid.remote.consumption')
        Command = pool.get('prepaid.meter.command')
        Configuration = pool.get('prepaid.configuration')
        with with_vending(payment_mode='remote_prepaid') as env:
            open_session(env)
            Configuration.write([Configuration(1)], {'low_credit_thresholds': '50,20'})
            vend = Vend.vend(env.meter, D('157.50'), 'cash', env.sales_point, 'r1')
            # Fixed charge 57.50 is taken by the vend; 100 goes to the balance.
            self.assertEqual(vend.credit_amount, D('100.00'))
            self.assertFalse(vend.commands)  # no token, no remote credit
            account = Account.for_meter(env.meter)
            self.assertEqual(account.balance, D('100.00'))
            month = dt.datetime.now().replace(
                day=1, hour=0, minute=0, second=0, microsecond=0
            )

            def consume(kwh, hours):
                start = month + dt.timedelta(hours=hours)
                Consumption(
                    account=account,
                    start=start,
                    end=start + dt.timedelta(hours=1),
                    kwh=D(kwh),
                ).save()

            consume('40', 0)
            Account.bill([account])
            # 40 kWh @ 1.20 + 15 % VAT = 55.20: the monthly charge is not
            # billed again, the vend of the month took it.
            account = Account(account.id)
            self.assertEqual(D('100.00') - account.balance, D('55.20'))
            kinds = [c.kind for c in Command.search([])]
            self.assertEqual(kinds, ['low_credit_warning'])  # below 50
            self.assertEqual(account.connection, 'connected')
            # Second run bills only the increment, across the block boundary.
            consume('20', 1)
            Account.bill([account])
            account = Account(account.id)
            # 10 kWh @ 1.20 + 10 kWh @ 1.60, + VAT = (12 + 16) * 1.15
            self.assertEqual(D('100.00') - account.balance, D('55.20') + D('32.20'))
            # 12.60 left: the second threshold, still above the limit.
            self.assertEqual(account.connection, 'connected')
            consume('20', 2)  # 20 kWh @ 1.60 + VAT = 36.80: -24.20
            Account.bill([account])
            account = Account(account.id)
            self.assertEqual(account.balance, D('-24.20'))
            commands = Command.search([])
            self.assertEqual(
                [(c.kind, c.data.get('threshold')) for c in commands],
                [
                    ('low_credit_warning', '50'),
                    ('low_credit_warning', '20'),
                    ('disconnect', None),
                ],
            )
            self.assertEqual(account.connection, 'disconnecting')
            Account.bill([account])  # nothing new to bill: no new command
            self.assertEqual(Command.search_count([]), 3)
            (disconnect,) = Command.search([('kind', '=', 'disconnect')])
            Command.mark_sent([disconnect])
            Command.mark_accepted([disconnect])
            self.assertEqual(Account(account.id).connection, 'disconnected')
            Vend.vend(env.meter, D('200.00'), 'cash', env.sales_point, 'r2')
            account = Account(account.id)
            self.assertGreaterEqual(account.balance, 0)
            self.assertEqual(account.connection, 'reconnecting')
            (reconnect,) = Command.search([('kind', '=', 'reconnect')])
            self.assertEqual(reconnect.state, 'pending')
