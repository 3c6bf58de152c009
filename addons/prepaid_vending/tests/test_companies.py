"""Two utilities (companies) in one database.

Both sell on a meter numbered 04000000001 from a sales point coded HO, to the
same customer (parties are shared).  A cashier of one finds, reads, sells to
and prints only their own utility's records; each utility's vends are priced
with its own configuration and booked in its own books.
"""

import unittest
import uuid
from decimal import Decimal as D

from trytond.model.exceptions import AccessError, SQLConstraintError, ValidationError
from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from ..accounting import VendConfig
from ..vend import VendError
from ..vend_wizard import find_meters
from .staff import acting_as, create_user
from .vend_fixtures import open_session, setup_vending

SERIAL = '04000000001'


def two_utilities():
    """(utility A, utility B): each a namespace of setup_vending with its
    company and a cashier working for it (and for it only)"""
    utilities = []
    for name in ('Utility A', 'Utility B'):
        company = create_company(name)
        with set_company(company):
            env = setup_vending()
            env.cashier = create_user(f'cashier {name}', 'cashier', company=company)
        utilities.append(env)
    return utilities


def sell(env, tender='100.00', key=None):
    "An RPC vend by env's cashier in their company, at their sales point"
    Vend = Pool().get('prepaid.vend')
    with set_company(env.company), acting_as(env.cashier):
        if (
            not Pool()
            .get('prepaid.cashier.session')
            .search([('cashier', '=', env.cashier.id), ('state', '=', 'open')])
        ):
            open_session(env)
        return Vend.rpc_vend(SERIAL, tender, 'cash', 'HO', key or uuid.uuid4().hex)


class CompaniesTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_same_numbers_in_both_unique_in_each(self):
        a, b = two_utilities()
        self.assertNotEqual(a.meter, b.meter)
        self.assertEqual((a.meter.serial, a.sales_point.code), (b.meter.serial, 'HO'))
        self.assertEqual((a.meter.company, b.meter.company), (a.company, b.company))
        Meter = Pool().get('prepaid.meter')
        with set_company(a.company):
            with self.assertRaises(SQLConstraintError):
                Meter(serial=SERIAL).save()

    @with_transaction()
    def test_cashier_finds_and_reads_only_their_company(self):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        SalesPoint = pool.get('prepaid.sales_point')
        Tariff = pool.get('prepaid.tariff')
        a, b = two_utilities()
        with set_company(a.company), acting_as(a.cashier):
            self.assertEqual(Meter.search([('serial', '=', SERIAL)]), [a.meter])
            self.assertEqual(find_meters(SERIAL), [a.meter])
            self.assertEqual(find_meters('Thandi'), [a.meter])
            self.assertEqual(SalesPoint.search([('code', '=', 'HO')]), [a.sales_point])
            for record in (b.meter, b.sales_point, b.point, b.tariff, b.transformer):
                with self.subTest(record=record.__name__):
                    with self.assertRaises(AccessError):
                        record.__class__.read([record.id], ['rec_name'])
            self.assertEqual(Tariff.search([]), [a.tariff])

    @with_transaction()
    def test_rpc_vend_sells_on_the_cashiers_company_meter(self):
        Vend = Pool().get('prepaid.vend')
        a, b = two_utilities()
        sold_a, sold_b = sell(a), sell(b)
        # Receipt numbers are per sales point: both utilities' first is HO-1.
        self.assertEqual(sold_a['number'], sold_b['number'])
        (vend_a,) = Vend.search([('company', '=', a.company.id)])
        (vend_b,) = Vend.search([('company', '=', b.company.id)])
        # Smart meters: the credit goes as a remote command, of the company.
        self.assertEqual([c.company for c in vend_b.commands], [b.company])
        self.assertEqual((vend_a.meter, vend_a.company), (a.meter, a.company))
        self.assertEqual((vend_b.meter, vend_b.company), (b.meter, b.company))
        self.assertEqual(vend_a.sales_point, a.sales_point)
        self.assertEqual(vend_b.session.company, b.company)

    @with_transaction()
    def test_context_cannot_lend_another_company(self):
        "A cashier of A who sets company B in the context is refused"
        Vend = Pool().get('prepaid.vend')
        a, b = two_utilities()
        with set_company(a.company), acting_as(a.cashier):
            open_session(a)
        with set_company(b.company), acting_as(a.cashier):
            with self.assertRaisesRegex(AccessError, 'do not work for'):
                Vend.rpc_vend(SERIAL, '100.00', 'cash', 'HO', 'forged')
        self.assertEqual(Vend.search([]), [])

    @with_transaction()
    def test_context_company_must_be_an_id(self):
        "The cashier's own company, given as a string, is refused (not cast)"
        Vend = Pool().get('prepaid.vend')
        a, b = two_utilities()
        with set_company(a.company), acting_as(a.cashier):
            open_session(a)
            with Transaction().set_context(company=str(a.company.id)):
                with self.assertRaisesRegex(AccessError, 'do not work for'):
                    Vend.rpc_vend(SERIAL, '100.00', 'cash', 'HO', 'as-text')
        self.assertEqual(Vend.search([]), [])

    @with_transaction()
    def test_cashier_cannot_vend_to_another_companys_meter(self):
        Vend = Pool().get('prepaid.vend')
        a, b = two_utilities()
        with set_company(a.company), acting_as(a.cashier):
            open_session(a)
            # B's meter given directly (a forged id): unknown to A's cashier.
            with self.assertRaisesRegex(AccessError, "cannot sell to meter"):
                Vend.vend(b.meter, D('100.00'), 'cash', a.sales_point, 'k1')
        self.assertEqual(Vend.search([]), [])

    @with_transaction()
    def test_sales_point_never_sells_to_another_companys_meter(self):
        "Even the system (root, as the cron or a script) cannot"
        Vend = Pool().get('prepaid.vend')
        a, b = two_utilities()
        with set_company(b.company):
            with self.assertRaisesRegex(AccessError, 'Sales point "Head Office"'):
                Vend.vend(b.meter, D('100.00'), 'card', a.sales_point, 'k2')
        self.assertEqual(Vend.search([]), [])

    @with_transaction()
    def test_receipts_and_reports_of_the_other_company_refused(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Line = pool.get('prepaid.vend.line')
        Command = pool.get('prepaid.meter.command')
        Report = pool.get('prepaid.vend.receipt', type='report')
        a, b = two_utilities()
        sold_b = sell(b)
        sell(a)
        (vend_b,) = Vend.search([('company', '=', b.company.id)])
        with set_company(a.company), acting_as(a.cashier):
            self.assertEqual([v.company for v in Vend.search([])], [a.company])
            # The same receipt number exists at A: only A's answers.
            self.assertEqual(
                [v.company for v in Vend.search([('number', '=', sold_b['number'])])],
                [a.company],
            )
            self.assertEqual(Line.search([('vend', '=', vend_b.id)]), [])
            self.assertEqual(Command.search([('vend', '=', vend_b.id)]), [])
            with self.assertRaises(AccessError):
                Vend.read([vend_b.id], ['number'])
            self.assertTrue(vend_b.lines)
            with self.assertRaises(AccessError):
                Line.read([line.id for line in vend_b.lines], ['amount'])
            with self.assertRaises(AccessError):
                Report.execute([vend_b.id], {'model': 'prepaid.vend'})

    @with_transaction()
    def test_books_stay_separate(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Line = pool.get('account.move.line')
        a, b = two_utilities()
        sell(a, '100.00')
        sell(a, '60.00')
        sell(b, '250.00')
        # One booking run of the installation (a cron, no company in its
        # context) books each utility's vends in that utility's books.
        self.assertIsNone(Transaction().context.get('company'))
        moves = Vend.book_pending()
        self.assertEqual(len(moves), 2)
        for env, total in ((a, D('160.00')), (b, D('250.00'))):
            vends = Vend.search([('company', '=', env.company.id)])
            with self.subTest(company=env.company.rec_name):
                self.assertEqual(sum(v.tender for v in vends), total)
                moves = [v.move for v in vends]
                self.assertTrue(all(moves))
                self.assertEqual({m.company for m in moves}, {env.company})
                # The cash received is on the company's own cash account.
                lines = Line.search([('move', 'in', [m.id for m in moves])])
                self.assertEqual(
                    {line.account.company for line in lines}, {env.company}
                )
                cash = sum(line.debit for line in lines if line.account == env.cash)
                self.assertEqual(cash, total)
        accountant = create_user(
            'accountant A', 'account.group_account', company=a.company
        )
        Move = pool.get('account.move')
        with set_company(a.company), acting_as(accountant):
            moves = Move.search([])
            self.assertTrue(moves)
            self.assertEqual({m.company for m in moves}, {a.company})

    @with_transaction()
    def test_each_utility_recovers_only_its_own_debts(self):
        "The customer (a shared party) owes B: A's sale recovers nothing of it"
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        Vend = pool.get('prepaid.vend')
        a, b = two_utilities()
        with set_company(b.company):
            (debt,) = Debt.create(
                [
                    {
                        'party': b.customer.id,
                        'amount': D('90.00'),
                        'description': 'Arrears at B',
                        'recovery_percent': D('50'),
                    }
                ]
            )
            Debt.open([debt])
        self.assertEqual(a.customer, b.customer)
        self.assertEqual(Debt.open_debts(a.customer, a.company), [])
        self.assertEqual(Debt.open_debts(b.customer, b.company), [debt])

        sale_a = Vend.search([('number', '=', sell(a, '100.00')['number'])])
        self.assertEqual(
            [line.kind for line in sale_a[0].lines if line.kind == 'debt'], []
        )
        self.assertEqual(Debt(debt.id).balance, D('90.00'))
        sale_b = Vend.search([('number', '=', sell(b, '100.00')['number'])])
        recovered = [line.amount for line in sale_b[0].lines if line.kind == 'debt']
        (amount,) = recovered
        self.assertGreater(amount, 0)
        self.assertEqual(Debt(debt.id).balance, D('90.00') - amount)

    @with_transaction()
    def test_configuration_per_company(self):
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        Vend = pool.get('prepaid.vend')
        a, b = two_utilities()
        with set_company(a.company):
            Configuration.write([Configuration(1)], {'max_vend_amount': D('80.00')})
        with set_company(b.company):
            Configuration.write(
                [Configuration(1)],
                {'max_vend_amount': D('900.00'), 'cancel_policy': 'never'},
            )
        for env, maximum, policy in (
            (a, D('80.00'), 'undelivered'),
            (b, D('900.00'), 'never'),
        ):
            with set_company(env.company):
                config = Configuration(1)
                self.assertEqual(config.max_vend_amount, maximum)
                self.assertEqual(config.cancel_policy, policy)
                self.assertEqual(VendConfig.get().max_vend_amount, maximum)
                self.assertEqual(config.cash_account, env.cash)
        # A's limit refuses what B's allows.
        with self.assertRaises(VendError):
            sell(a, '100.00')
        sell(b, '100.00')
        self.assertEqual([v.company for v in Vend.search([])], [b.company])

    @with_transaction()
    def test_records_never_move_or_mix_companies(self):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Transformer = pool.get('prepaid.transformer')
        a, b = two_utilities()
        with self.assertRaisesRegex(AccessError, 'cannot change'):
            Meter.write([a.meter], {'company': b.company.id})
        with set_company(b.company):
            with self.assertRaisesRegex(AccessError, 'cannot be used with'):
                Transformer.create(
                    [{'name': 'T9', 'code': 'T9', 'feeder': a.transformer.feeder.id}]
                )
            meter = Meter(serial='04000000099')
            meter.save()
            with self.assertRaisesRegex(AccessError, 'cannot be used with'):
                a.point.install_meter(meter, a.meter.installations[0].installed_on)
        self.assertEqual(Transaction().context.get('company'), None)
        with self.assertRaises(ValidationError):
            # Without a company (context or value) a meter cannot exist.
            Meter(serial='04000000098').save()
