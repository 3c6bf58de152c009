"""Accounting of ledger changes made without a vend: debt write-offs, move-out
refunds, debts and balances handed to another customer.

After each change the books (account.move.line per account and party) must
agree with the debt ledger and the remote-prepaid balances, and a missing
account must refuse the change with nothing written."""

import datetime as dt
import unittest
from decimal import Decimal as D

from trytond.exceptions import UserError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from prepaid_demo.company import VENDING_ACCOUNT_CODES

from .vend_fixtures import open_session, with_vending

TODAY = dt.date.today()


def configure_adjustment_accounts(env, skip=()):
    "The demo's bad-debt and refund accounts (prepaid_demo.company); skip left empty"
    pool = Pool()
    Account = pool.get('account.account')
    Configuration = pool.get('prepaid.configuration')
    values = {}
    for name, code in VENDING_ACCOUNT_CODES.items():
        if name in skip:
            values[name] = None
            continue
        (account,) = Account.search(
            [('code', '=', code), ('company', '=', env.company.id)]
        )
        values[name] = account.id
    Configuration.write([Configuration(1)], values)
    return Configuration(1)


def booked(account, party) -> D:
    "Debit minus credit of party on account, posted and draft moves alike"
    Line = Pool().get('account.move.line')
    lines = Line.search(
        [('account', '=', account.id), ('party', '=', party.id if party else None)]
    )
    return sum((line.debit - line.credit for line in lines), D(0))


def debt_ledger(party) -> D:
    Debt = Pool().get('prepaid.debt')
    return sum((d.balance for d in Debt.search([('party', '=', party.id)])), D(0))


def moves_from(origin) -> list:
    Move = Pool().get('account.move')
    return Move.search([('origin', '=', str(origin))])


def vend(env, tender, key):
    "A vend, booked (as the queued task books it after the request)"
    Vend = Pool().get('prepaid.vend')
    sale = Vend.vend(env.meter, D(tender), 'cash', env.sales_point, key)
    Vend.book_pending()
    return Vend(sale.id)


def new_customer(env, name='Sipho Dlamini'):
    Party = Pool().get('party.party')
    party = Party(name=name, customer_category=env.category)
    party.save()
    Party.make_customer([party])
    return party


def overdraw(env, account, kwh='200'):
    "Bill consumption the balance cannot pay for"
    pool = Pool()
    Account = pool.get('prepaid.remote.account')
    Consumption = pool.get('prepaid.remote.consumption')
    start = dt.datetime.combine(TODAY.replace(day=1), dt.time())
    Consumption(
        account=account, start=start, end=start + dt.timedelta(hours=1), kwh=D(kwh)
    ).save()
    Account.bill([account])
    return Account(account.id)


class AccountingAdjustmentsTestCase(unittest.TestCase):
    "Accounting of write-offs, refunds and transfers"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_write_off_books_bad_debt(self):
        "Recoveries and the write-off credit the receivable with the whole debt"
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            config = configure_adjustment_accounts(env)
            open_session(env)
            debt = Debt(
                party=env.customer,
                description='Arrears taken over',
                amount=D('500.00'),
                recovery_percent=D(20),
                max_per_vend=D('50.00'),
            )
            debt.save()
            Debt.open([debt])
            vend(env, '300.00', 'w1')  # recovers 50
            Vend.book_pending()  # nothing left: booked
            receivable = env.config.debt_account
            before = booked(receivable, env.customer)

            Debt.write_off([debt], 'indigent household')

            debt = Debt(debt.id)
            (line,) = [x for x in debt.lines if x.kind == 'write_off']
            self.assertEqual(line.amount, D('-450.00'))
            (move,) = moves_from(line)
            self.assertEqual(move.state, 'posted')
            self.assertEqual(move.journal, env.config.vend_journal)
            self.assertEqual(
                sum(x.debit for x in move.lines), sum(x.credit for x in move.lines)
            )
            amounts = sorted(
                (x.account.id, x.debit, x.credit, x.party) for x in move.lines
            )
            self.assertEqual(
                amounts,
                sorted(
                    [
                        (config.bad_debt_account.id, D('450.00'), D(0), None),
                        (receivable.id, D(0), D('450.00'), env.customer),
                    ]
                ),
            )
            # The receivable moved exactly as the debt ledger did, and all
            # its credits for the customer (vend recovery + write-off) add up
            # to the debt raised (its debit was booked when it was opened).
            self.assertEqual(booked(receivable, env.customer) - before, D('-450.00'))
            self.assertEqual(booked(receivable, env.customer), D(0))
            self.assertEqual(debt.balance, D(0))
            Line = pool.get('account.move.line')
            credits = Line.search(
                [('account', '=', receivable.id), ('party', '=', env.customer.id)]
            )
            self.assertEqual(sum(x.credit for x in credits), debt.amount)
            self.assertEqual(booked(config.bad_debt_account, None), D('450.00'))

    @with_transaction()
    def test_overdrawn_move_out_then_write_off(self):
        "An overdrawn balance becomes a booked debt; its write-off clears both"
        pool = Pool()
        CustomerChange = pool.get('prepaid.customer.change')
        Account = pool.get('prepaid.remote.account')
        Debt = pool.get('prepaid.debt')
        with with_vending(payment_mode='remote_prepaid') as env:
            config = configure_adjustment_accounts(env)
            open_session(env)
            vend(env, '157.50', 'o1')
            account = overdraw(env, Account.for_meter(env.meter))
            overdrawn = -account.balance
            self.assertGreater(overdrawn, 0)
            prepayment, receivable = config.prepayment_account, config.debt_account
            # The liability per customer mirrors the balance before the move.
            self.assertEqual(-booked(prepayment, env.customer), account.balance)
            incoming = new_customer(env)

            change = CustomerChange.change_customer(env.point, incoming, TODAY)

            (debt,) = Debt.open_debts(env.customer, env.company)
            self.assertEqual(debt.balance, overdrawn)
            (move,) = moves_from(change)
            self.assertEqual(move.state, 'posted')
            self.assertEqual(booked(receivable, env.customer), overdrawn)
            self.assertEqual(
                booked(receivable, env.customer), debt_ledger(env.customer)
            )
            self.assertEqual(booked(prepayment, env.customer), D(0))
            self.assertEqual(Account(account.id).balance, D(0))
            self.assertEqual(booked(prepayment, incoming), D(0))

            Debt.write_off([debt], 'customer untraceable')

            self.assertEqual(debt_ledger(env.customer), D(0))
            self.assertEqual(booked(receivable, env.customer), D(0))
            self.assertEqual(booked(config.bad_debt_account, None), overdrawn)

    @with_transaction()
    def test_refund_at_move_out(self):
        "Dr the customer's prepayment / Cr refunds payable, for the balance"
        pool = Pool()
        CustomerChange = pool.get('prepaid.customer.change')
        Account = pool.get('prepaid.remote.account')
        with with_vending(payment_mode='remote_prepaid') as env:
            config = configure_adjustment_accounts(env)
            prepayment, refunds = config.prepayment_account, config.refund_account
            self.assertNotEqual(prepayment, refunds)
            open_session(env)
            vend(env, '157.50', 'r1')
            balance = Account.for_meter(env.meter).balance
            self.assertEqual(balance, D('100.00'))
            self.assertEqual(booked(prepayment, env.customer), -balance)
            incoming = new_customer(env)

            change = CustomerChange.change_customer(
                env.point, incoming, TODAY, reason='Moved out'
            )

            self.assertEqual(change.refund, balance)
            (move,) = moves_from(change)
            self.assertEqual(move.state, 'posted')
            self.assertEqual(
                sorted((x.account.id, x.debit, x.credit) for x in move.lines),
                sorted(
                    [
                        (prepayment.id, balance, D(0)),
                        (refunds.id, D(0), balance),
                    ]
                ),
            )
            self.assertTrue(all(x.party == env.customer for x in move.lines))
            # Books agree with the ledger: nothing left on the prepaid balance,
            # the refund owed to the outgoing customer.
            self.assertEqual(Account.for_meter(env.meter).balance, D(0))
            self.assertEqual(booked(prepayment, env.customer), D(0))
            self.assertEqual(booked(prepayment, incoming), D(0))
            self.assertEqual(booked(refunds, env.customer), -change.refund)

    @with_transaction()
    def test_transfer_to_incoming_customer(self):
        "Debts and balance going with the premises move between parties"
        pool = Pool()
        CustomerChange = pool.get('prepaid.customer.change')
        Account = pool.get('prepaid.remote.account')
        Debt = pool.get('prepaid.debt')
        with with_vending(payment_mode='remote_prepaid') as env:
            config = configure_adjustment_accounts(env)
            prepayment, receivable = config.prepayment_account, config.debt_account
            open_session(env)
            vend(env, '157.50', 't1')
            debt = Debt(party=env.customer, description='Arrears', amount=D('80'))
            debt.save()
            Debt.open([debt])
            balance = Account.for_meter(env.meter).balance
            old_receivable = booked(receivable, env.customer)
            incoming = new_customer(env)

            change = CustomerChange.change_customer(
                env.point,
                incoming,
                TODAY,
                debt_policy='premises',
                balance_policy='transfer',
            )

            self.assertEqual(len(moves_from(change)), 2)
            self.assertTrue(all(m.state == 'posted' for m in moves_from(change)))
            # The balance is now the incoming customer's, in the books too.
            self.assertEqual(booked(prepayment, env.customer), D(0))
            self.assertEqual(booked(prepayment, incoming), -balance)
            self.assertEqual(Account.for_meter(env.meter).balance, balance)
            # The receivable moved with the debt ledger.
            self.assertEqual(booked(receivable, incoming), debt_ledger(incoming))
            self.assertEqual(debt_ledger(incoming), D('80'))
            self.assertEqual(
                booked(receivable, env.customer) - old_receivable, D('-80')
            )

    @with_transaction()
    def test_meter_change_onto_another_account(self):
        "A balance landing on another party's account is booked to that party"
        pool = Pool()
        MeterChange = pool.get('prepaid.meter.change')
        Account = pool.get('prepaid.remote.account')
        Meter = pool.get('prepaid.meter')
        with with_vending(payment_mode='remote_prepaid') as env:
            config = configure_adjustment_accounts(env)
            prepayment = config.prepayment_account
            open_session(env)
            vend(env, '157.50', 'm1')
            balance = Account.for_meter(env.meter).balance
            other = new_customer(env, 'Previous Holder')
            new = Meter(
                serial='04000000099',
                kind='smart_prepaid',
                payment_mode='remote_prepaid',
            )
            new.save()
            Account(meter=new, party=other).save()

            change, _ = MeterChange.change_meter(env.point, new, TODAY, 'upgrade')

            (move,) = moves_from(change)
            self.assertEqual(move.state, 'posted')
            target = Account.for_meter(new, create=False)
            self.assertEqual(target.balance, balance)
            self.assertEqual(booked(prepayment, other), -target.balance)
            self.assertEqual(booked(prepayment, env.customer), D(0))

    @with_transaction()
    def test_meter_change_same_customer_books_nothing(self):
        "The balance following its account stays with the customer: no move"
        pool = Pool()
        MeterChange = pool.get('prepaid.meter.change')
        Meter = pool.get('prepaid.meter')
        with with_vending(payment_mode='remote_prepaid') as env:
            configure_adjustment_accounts(env)
            open_session(env)
            vend(env, '157.50', 's1')
            new = Meter(
                serial='04000000099',
                kind='smart_prepaid',
                payment_mode='remote_prepaid',
            )
            new.save()
            change, _ = MeterChange.change_meter(env.point, new, TODAY, 'upgrade')
            self.assertEqual(moves_from(change), [])

    @with_transaction()
    def test_write_off_refused_without_bad_debt_account(self):
        "Clear error; neither the history line nor a move is written"
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        Move = pool.get('account.move')
        with with_vending() as env:
            configure_adjustment_accounts(env, skip={'bad_debt_account'})
            debt = Debt(party=env.customer, description='Arrears', amount=D('80'))
            debt.save()
            Debt.open([debt])
            moves = Move.search_count([])

            with self.assertRaisesRegex(UserError, 'Bad Debts'):
                Debt.write_off([debt], 'indigent household')

            debt = Debt(debt.id)
            self.assertEqual(debt.state, 'open')
            self.assertEqual(debt.balance, D('80'))
            self.assertEqual([x.kind for x in debt.lines], ['charge'])
            self.assertEqual(Move.search_count([]), moves)

    @with_transaction()
    def test_refund_refused_without_refund_account(self):
        "Clear error; no change, no ledger line, no move, customer unchanged"
        pool = Pool()
        CustomerChange = pool.get('prepaid.customer.change')
        Account = pool.get('prepaid.remote.account')
        Line = pool.get('prepaid.remote.account.line')
        Move = pool.get('account.move')
        ServicePoint = pool.get('prepaid.service_point')
        with with_vending(payment_mode='remote_prepaid') as env:
            configure_adjustment_accounts(env, skip={'refund_account'})
            open_session(env)
            vend(env, '157.50', 'x1')
            account = Account.for_meter(env.meter)
            lines, moves = Line.search_count([]), Move.search_count([])
            incoming = new_customer(env)

            with self.assertRaisesRegex(UserError, 'Customer Refunds Payable'):
                CustomerChange.change_customer(env.point, incoming, TODAY)

            self.assertEqual(CustomerChange.search_count([]), 0)
            self.assertEqual(Line.search_count([]), lines)
            self.assertEqual(Move.search_count([]), moves)
            self.assertEqual(ServicePoint(env.point.id).customer, env.customer)
            account = Account(account.id)
            self.assertEqual((account.party, account.balance), (env.customer, D('100')))

    @with_transaction()
    def test_books_agree_with_debt_ledger_at_every_step(self):
        "Raise (two categories), recover through a vend, write off"
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            config = configure_adjustment_accounts(env)
            receivable = config.debt_account
            arrears, penalties = (
                config.debt_arrears_account,
                config.debt_penalty_account,
            )
            self.assertNotIn(receivable, (arrears, penalties))
            customer = env.customer
            open_session(env)

            def agree(expected):
                self.assertEqual(debt_ledger(customer), expected)
                self.assertEqual(booked(receivable, customer), expected)

            taken_over = Debt(
                party=customer,
                description='Arrears from the legacy billing system',
                amount=D('500.00'),
                recovery_percent=D(20),
            )
            taken_over.save()
            agree(D(0))  # a draft debt is not raised yet
            Debt.open([taken_over])
            agree(D('500.00'))
            (charge,) = Debt(taken_over.id).lines
            (move,) = moves_from(charge)
            self.assertEqual(move.state, 'posted')
            self.assertEqual(
                sorted((x.account.id, x.debit, x.credit, x.party) for x in move.lines),
                sorted(
                    [
                        (receivable.id, D('500.00'), D(0), customer),
                        (arrears.id, D(0), D('500.00'), None),
                    ]
                ),
            )

            tampering = Debt(
                party=customer,
                description='Meter tampering penalty',
                category='penalty',
                amount=D('120.00'),
                recovery_percent=D(10),
            )
            tampering.save()
            Debt.open([tampering])
            agree(D('620.00'))
            self.assertEqual(booked(penalties, None), D('-120.00'))
            self.assertEqual(booked(arrears, None), D('-500.00'))

            sale = vend(env, '300.00', 'b1')  # the strictest plan: 20 %
            recovered = sum(x.amount for x in sale.lines if x.kind == 'debt')
            self.assertEqual(recovered, D('60.00'))
            # The vend's move credits the same receivable for the same party.
            (debt_line,) = [
                x for x in sale.move.lines if x.account == receivable and x.credit
            ]
            self.assertEqual((debt_line.credit, debt_line.party), (recovered, customer))
            agree(D('560.00'))
            Vend.book_pending()  # nothing left: booked
            agree(D('560.00'))

            Debt.write_off([taken_over, tampering], 'customer deceased')
            agree(D(0))
            self.assertEqual(booked(config.bad_debt_account, None), D('560.00'))

    @with_transaction()
    def test_reopened_debt_is_not_raised_twice(self):
        "A cancelled vend gives its recovery back: no second charge or move"
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        Vend = pool.get('prepaid.vend')
        Configuration = pool.get('prepaid.configuration')
        with with_vending() as env:
            config = configure_adjustment_accounts(env)
            Configuration.write([Configuration(1)], {'cancel_policy': 'manager'})
            receivable = config.debt_account
            open_session(env)
            debt = Debt(
                party=env.customer,
                description='Arrears',
                amount=D('40.00'),
                recovery_percent=D(50),
            )
            debt.save()
            Debt.open([debt])
            sale = vend(env, '200.00', 'p1')  # recovers the whole 40
            self.assertEqual(Debt(debt.id).state, 'paid')
            self.assertEqual(booked(receivable, env.customer), D(0))

            Vend.cancel_vends([sale], 'wrong meter')

            debt = Debt(debt.id)
            self.assertEqual(debt.state, 'open')
            self.assertEqual([x.kind for x in debt.lines].count('charge'), 1)
            self.assertEqual(booked(receivable, env.customer), D('40.00'))
            self.assertEqual(booked(receivable, env.customer), debt.balance)

    @with_transaction()
    def test_raise_refused_without_counter_account(self):
        "Clear error; the debt stays draft with no history line and no move"
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        Move = pool.get('account.move')
        with with_vending() as env:
            config = configure_adjustment_accounts(env, skip={'debt_penalty_account'})
            debt = Debt(
                party=env.customer,
                description='Tampering',
                category='penalty',
                amount=D('80'),
            )
            debt.save()
            moves = Move.search_count([])

            with self.assertRaisesRegex(UserError, 'Debt Penalties'):
                Debt.open([debt])

            debt = Debt(debt.id)
            self.assertEqual(debt.state, 'draft')
            self.assertEqual(debt.lines, ())
            self.assertEqual(Move.search_count([]), moves)
            self.assertEqual(booked(config.debt_account, env.customer), D(0))
