"""Remote-prepaid billing: period charges once per period, and emergency credit
in the disconnect decision.

Tariff of the fixtures (docs/vending.md Example C): blocks 1.20 / 1.60 / 2.10 excl.
15 % VAT, a monthly fixed charge of 50.00 + VAT = 57.50.
"""

import datetime as dt
import unittest
from decimal import Decimal as D

from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from .vend_fixtures import open_session, with_vending

MONTHLY = D('57.50')


def this_month() -> dt.datetime:
    return dt.datetime.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def consume(account, kwh: str, hour: int, month: dt.datetime | None = None) -> None:
    Consumption = Pool().get('prepaid.remote.consumption')
    start = (month or this_month()) + dt.timedelta(hours=hour)
    Consumption(
        account=account, start=start, end=start + dt.timedelta(hours=1), kwh=D(kwh)
    ).save()


def charges_taken(env) -> D:
    """Fixed charges taken from the account holder by vends and bills."""
    pool = Pool()
    Vend = pool.get('prepaid.vend')
    Bill = pool.get('prepaid.remote.bill')
    by_vends = sum(
        (
            line.amount + line.vat
            for vend in Vend.search([('meter', '=', env.meter.id)])
            for line in vend.lines
            if line.kind == 'charge'
        ),
        D(0),
    )
    # Each bill details the whole month as priced so far (and charges the
    # difference with the month's earlier bills): the month's latest bill
    # shows what the month's bills took together.
    latest = {}
    for bill in Bill.search([], order=[('id', 'ASC')]):
        latest[bill.month] = bill
    by_bills = D(0)
    for bill in latest.values():
        for detail in (bill.details or '').splitlines():
            if detail.startswith('Fixed charge:'):
                # "Fixed charge: 1 month 50.00 + VAT 7.50"
                words = detail.split()
                by_bills += D(words[-4]) + D(words[-1])
    return by_vends + by_bills


class RemoteBillingTestCase(unittest.TestCase):
    "Remote-prepaid billing rules"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_monthly_charge_once_with_vend_and_bill(self):
        "The first vend of the month takes the charge; the bills do not"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Account = pool.get('prepaid.remote.account')
        Bill = pool.get('prepaid.remote.bill')
        with with_vending(payment_mode='remote_prepaid') as env:
            open_session(env)
            vend = Vend.vend(env.meter, D('157.50'), 'cash', env.sales_point, 'v1')
            self.assertEqual(vend.credit_amount, D('100.00'))
            account = Account.for_meter(env.meter)
            consume(account, '40', 0)
            Account.bill([account])
            consume(account, '10', 1)
            Account.bill([account])  # a second run in the same month
            bills = Bill.search([('account', '=', account.id)], order=[('id', 'ASC')])
            self.assertEqual(
                [b.amount + b.vat for b in bills], [D('55.20'), D('13.80')]
            )
            self.assertEqual([b.monthly_charges for b in bills], [False, False])
            self.assertEqual(Account(account.id).balance, D('100.00') - D('69.00'))
            self.assertEqual(charges_taken(env), MONTHLY)
            # The vend side of the rule: no bill took this month's charges.
            self.assertEqual(
                Account.charges_billed(env.meter, dt.date.today()), (False, False)
            )

    @with_transaction()
    def test_monthly_charge_once_with_only_a_bill(self):
        "Without a vend in the month the first bill takes it, once"
        pool = Pool()
        Account = pool.get('prepaid.remote.account')
        Bill = pool.get('prepaid.remote.bill')
        with with_vending(payment_mode='remote_prepaid') as env:
            account = Account.for_meter(env.meter)
            account.credit_limit = D('-1000.00')  # no disconnect noise
            account.save()
            consume(account, '40', 0)
            Account.bill([account])
            consume(account, '10', 1)
            Account.bill([account])
            bills = Bill.search([('account', '=', account.id)], order=[('id', 'ASC')])
            # 55.20 energy + 57.50 charge, then the energy increment only.
            self.assertEqual(
                [b.amount + b.vat for b in bills], [D('55.20') + MONTHLY, D('13.80')]
            )
            self.assertEqual([b.monthly_charges for b in bills], [True, True])
            self.assertEqual(
                Account(account.id).balance, -(D('55.20') + MONTHLY + D('13.80'))
            )
            self.assertEqual(charges_taken(env), MONTHLY)
            # A vend of the month must now leave them out (vend pipeline).
            self.assertEqual(
                Account.charges_billed(env.meter, dt.date.today()), (True, False)
            )
            # The next month is a new period: billed again, once.
            next_month = (this_month() + dt.timedelta(days=32)).replace(day=1)
            consume(account, '5', 0, month=next_month)
            Account.bill([account])
            (last,) = Bill.search([('month', '=', next_month.date())])
            self.assertEqual(last.amount + last.vat, D('6.90') + MONTHLY)
            self.assertEqual(charges_taken(env), 2 * MONTHLY)

    @with_transaction()
    def test_cancelled_vend_gives_the_charge_back_to_the_bill(self):
        "A cancelled first vend no longer holds the month's charge"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Account = pool.get('prepaid.remote.account')
        Bill = pool.get('prepaid.remote.bill')
        Configuration = pool.get('prepaid.configuration')
        with with_vending(payment_mode='remote_prepaid') as env:
            open_session(env)
            Configuration.write([Configuration(1)], {'cancel_policy': 'manager'})
            vend = Vend.vend(env.meter, D('157.50'), 'cash', env.sales_point, 'c1')
            account = Account.for_meter(env.meter)
            account.credit_limit = D('-1000.00')
            account.save()
            consume(account, '40', 0)
            Account.bill([account])
            Vend.cancel_vends([vend], 'wrong meter')
            consume(account, '10', 1)
            Account.bill([account])
            bills = Bill.search([('account', '=', account.id)], order=[('id', 'ASC')])
            self.assertEqual(
                [b.amount + b.vat for b in bills], [D('55.20'), D('13.80') + MONTHLY]
            )
            self.assertEqual(Account(account.id).balance, -(D('69.00') + MONTHLY))

    @with_transaction()
    def test_monthly_charge_once_with_bill_then_vend(self):
        "A bill took the month's charge first: the vend does not take it"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Account = pool.get('prepaid.remote.account')
        with with_vending(payment_mode='remote_prepaid') as env:
            open_session(env)
            account = Account.for_meter(env.meter)
            account.credit_limit = D('-1000.00')
            account.save()
            consume(account, '40', 0)
            Account.bill([account])
            vend = Vend.vend(env.meter, D('157.50'), 'cash', env.sales_point, 'b1')
            self.assertEqual(vend.credit_amount, D('157.50'))
            consume(account, '10', 1)
            Account.bill([account])
            self.assertEqual(charges_taken(env), MONTHLY)


class EmergencyCreditDisconnectTestCase(unittest.TestCase):
    "Disconnect only once the emergency credit is used up"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_emergency_credit_keeps_supply_until_consumed(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Account = pool.get('prepaid.remote.account')
        Command = pool.get('prepaid.meter.command')
        Emergency = pool.get('prepaid.emergency_credit')
        Configuration = pool.get('prepaid.configuration')
        with with_vending(payment_mode='remote_prepaid') as env:
            open_session(env)
            Configuration.write(
                [Configuration(1)],
                {
                    'emergency_credit_amount': D('20.00'),
                    'emergency_credit_min_vends': 1,
                },
            )
            Vend.vend(env.meter, D('157.50'), 'cash', env.sales_point, 'p1')
            account = Account.for_meter(env.meter)
            # 50 @ 1.20 + 50 @ 1.60 = 140 + VAT = 161.00: balance -61.00
            consume(account, '100', 0)
            Account.bill([account])
            account = Account(account.id)
            self.assertEqual(account.balance, D('-61.00'))
            self.assertEqual(account.connection, 'disconnecting')
            (disconnect,) = Command.search([('kind', '=', 'disconnect')])
            Command.mark_sent([disconnect])
            Command.mark_accepted([disconnect])

            # The advance only reduces the overdraft (-41.00), yet it is
            # energy for the customer: supply comes back until it is used.
            Emergency.issue(env.meter, 'e1')
            account = Account(account.id)
            self.assertEqual(account.balance, D('-41.00'))
            self.assertEqual(account.emergency_credit_left(), D('20.00'))
            self.assertEqual(account.connection, 'reconnecting')
            (reconnect,) = Command.search([('kind', '=', 'reconnect')])
            self.assertEqual(reconnect.data['emergency_credit'], '20.00')
            Command.mark_sent([reconnect])
            Command.mark_accepted([reconnect])

            consume(account, '10', 1)  # 10 @ 1.60 + VAT = 18.40 of 20.00
            Account.bill([account])
            Account.check_disconnections()
            account = Account(account.id)
            self.assertEqual(account.emergency_credit_left(), D('1.60'))
            self.assertEqual(account.connection, 'connected')
            self.assertEqual(Command.search_count([('kind', '=', 'disconnect')]), 1)

            consume(account, '1', 2)  # 1.84 more: used up
            Account.bill([account])
            account = Account(account.id)
            self.assertEqual(account.emergency_credit_left(), D(0))
            self.assertEqual(account.connection, 'disconnecting')
            self.assertEqual(Command.search_count([('kind', '=', 'disconnect')]), 2)

    @with_transaction()
    def test_repaid_emergency_credit_does_not_hold_supply(self):
        "Once repaid by a top-up, the credit no longer counts"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Account = pool.get('prepaid.remote.account')
        Emergency = pool.get('prepaid.emergency_credit')
        Configuration = pool.get('prepaid.configuration')
        with with_vending(payment_mode='remote_prepaid') as env:
            open_session(env)
            Configuration.write(
                [Configuration(1)],
                {
                    'emergency_credit_amount': D('20.00'),
                    'emergency_credit_min_vends': 1,
                },
            )
            Vend.vend(env.meter, D('157.50'), 'cash', env.sales_point, 'p1')
            credit = Emergency.issue(env.meter, 'e1')
            account = Account.for_meter(env.meter)
            self.assertEqual(account.emergency_credit_left(), D('20.00'))
            Vend.vend(env.meter, D('50.00'), 'cash', env.sales_point, 'p2')
            self.assertEqual(Emergency(credit.id).state, 'repaid')
            self.assertEqual(account.emergency_credit_left(), D(0))
            # 120 + 20 + 30 = 150.00 in the balance; 150 kWh cost
            # (60 + 160) * 1.15 = 253.00: below the limit, nothing left.
            consume(account, '150', 0)
            Account.bill([account])
            account = Account(account.id)
            self.assertEqual(account.balance, D('-103.00'))
            self.assertEqual(account.connection, 'disconnecting')
