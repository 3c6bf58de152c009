"""Vend accounting: balanced moves with tax lines; the VAT report agrees with the
vends to the cent, cancellations included."""

import datetime as dt
import unittest
from contextlib import contextmanager
from decimal import ROUND_FLOOR, ROUND_HALF_UP
from decimal import Decimal as D
from types import SimpleNamespace
from unittest.mock import patch

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.modules.account.tests import get_fiscalyear
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .. import vend_pipeline
from .vend_fixtures import open_session, with_vending


@contextmanager
def vend_clock(moment: dt.datetime):
    "Vends dated moment (vend_pipeline.py reads the time through dt.datetime.now)"

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return moment

    fake = SimpleNamespace(date=dt.date, timedelta=dt.timedelta, datetime=Clock)
    with patch.object(vend_pipeline, 'dt', fake):
        yield


@contextmanager
def no_journal_period_lock():
    "Fail if anything takes the journal-period table lock (NOWAIT in 8.0)"
    JournalPeriod = Pool().get('account.journal.period')

    def lock(records=None):
        raise AssertionError('account.journal.period table locked')

    with patch.object(JournalPeriod, 'lock', lock):
        yield


def cents(amount: D) -> D:
    return amount.quantize(D('0.01'), ROUND_HALF_UP)


class AccountingTestCase(unittest.TestCase):
    "Vend accounting"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_vat_report_matches_vends(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Tax = pool.get('account.tax')
        TaxLine = pool.get('account.tax.line')
        Session = pool.get('prepaid.cashier.session')
        Configuration = pool.get('prepaid.configuration')
        Move = pool.get('account.move')
        with with_vending() as env:
            session = open_session(env)
            tenders = [
                '300.00',
                '100.00',
                '57.51',
                '99.99',
                '1234.56',
                '10.00',
                '77.77',
                '300.00',
                '45.45',
                '12.34',
            ]
            vends = [
                Vend.vend(
                    env.meter,
                    D(t),
                    'cash' if i % 2 else 'card',
                    env.sales_point,
                    f'acc-{i}',
                )
                for i, t in enumerate(tenders)
            ]
            # Booked (the queued task) before the cancellation, which then
            # reverses a booked vend (test_booking: one cancelled before).
            Vend.book_pending()
            Configuration.write([Configuration(1)], {'cancel_policy': 'manager'})
            Vend.cancel_vends([vends[3]], 'test reversal')
            for vend in vends:
                move = Vend(vend.id).move
                self.assertEqual(
                    sum(line.debit for line in move.lines),
                    sum(line.credit for line in move.lines),
                )
            Session.close_session(
                session,
                {
                    'cash': sum(
                        D(t) for i, t in enumerate(tenders) if i % 2 and i != 3
                    ),
                    'card': sum(D(t) for i, t in enumerate(tenders) if not i % 2),
                },
            )
            self.assertFalse(Move.search([('state', '=', 'draft')]))
            issued = [
                v for v in Vend.browse([v.id for v in vends]) if v.state == 'issued'
            ]
            self.assertEqual([v.id for v in issued], [
                v.id for i, v in enumerate(vends) if i != 3
            ])  # fmt: skip
            # Expected figures from the tariff (vend_fixtures.example_c_version:
            # R50.00 monthly charge excl. VAT, 15 % VAT rounded half-up), not
            # from the vends: the first vend of the month pays the charge plus
            # its VAT, the rest of every tender is energy including VAT.
            rate, charge = D('0.15'), D('50.00')
            charge_vat = cents(charge * rate)  # 7.50
            energy = [D(t) for t in tenders]
            energy[0] -= charge + charge_vat
            vat = [cents(gross * rate / (1 + rate)) for gross in energy]
            vat[0] += charge_vat
            self.assertEqual(vat[:2], [D('39.13'), D('13.04')])
            expected_vat = sum(v for i, v in enumerate(vat) if i != 3)
            expected_base = sum(D(t) for i, t in enumerate(tenders) if i != 3)
            expected_base -= expected_vat
            self.assertEqual([v.vat_amount for v in issued], [
                v for i, v in enumerate(vat) if i != 3
            ])  # fmt: skip
            # The first vend in kWh: 50 kWh at 1.20, the rest of the net energy
            # (300.00 - 57.50 - VAT 31.63 = 210.87) at 1.60, down to 0.1 kWh.
            net_energy = energy[0] - (vat[0] - charge_vat)
            units = 50 + ((net_energy - 50 * D('1.20')) / D('1.60'))
            self.assertEqual(vends[0].units_kwh, units.quantize(D('0.1'), ROUND_FLOOR))
            self.assertEqual(vends[0].units_kwh, D('144.2'))
            # The tax report: tax lines of the period through account.tax.
            period = env.fiscalyear.periods[0]
            for p in env.fiscalyear.periods:
                if p.start_date <= vends[0].date.date() <= p.end_date:
                    period = p
            lines = TaxLine.search([('tax', '=', env.tax.id)])
            tax_total = sum(line.amount for line in lines if line.type == 'tax')
            base_total = sum(line.amount for line in lines if line.type == 'base')
            self.assertEqual(D(tax_total).quantize(D('0.01')), expected_vat)
            self.assertEqual(D(base_total).quantize(D('0.01')), expected_base)
            # account.tax amounts as the standard "Taxes" report computes them.
            # The cancelled vend shows as a credit (negative amounts).
            with Transaction().set_context(periods=[period.id]):
                tax = Tax(env.tax.id)
                self.assertEqual(
                    tax.invoice_tax_amount + tax.credit_tax_amount, expected_vat
                )
                self.assertEqual(
                    tax.invoice_base_amount + tax.credit_base_amount, expected_base
                )
                self.assertEqual(-tax.credit_tax_amount, vends[3].vat_amount)
            # Revenue + VAT + debts = cash received
            self.assertEqual(
                sum(v.tender for v in issued),
                sum(line.gross for v in issued for line in v.lines),
            )


class AccountingPeriodsTestCase(unittest.TestCase):
    "Periods and journal periods exist before the first vend of a month"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def journal_period(self, journal, date: dt.date):
        JournalPeriod = Pool().get('account.journal.period')
        return JournalPeriod.search(
            [
                ('journal', '=', journal.id),
                ('period.start_date', '<=', date),
                ('period.end_date', '>=', date),
            ]
        )

    @with_transaction()
    def test_vend_at_month_start_takes_no_lock(self):
        "Created ahead by the cron, a new month's first vend only reads"
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        Period = pool.get('account.period')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            today = pool.get('ir.date').today()
            # Saving the vending journal created this month's journal period.
            self.assertTrue(self.journal_period(env.journal, today))
            # Next year: the accountant created the fiscal year, no periods.
            year = today.year + 1
            fiscalyear = get_fiscalyear(env.company, today=dt.date(year, 1, 1))
            fiscalyear.save()
            new_year = dt.date(year, 1, 1)
            self.assertFalse(self.journal_period(env.journal, new_year))
            # The daily cron on the last day of the year.
            created = Configuration.ensure_accounting_periods(
                date=dt.date(year - 1, 12, 31)
            )
            self.assertEqual(created, 2)  # period and journal period
            (period,) = Period.search([('fiscalyear', '=', fiscalyear.id)])
            self.assertEqual(
                (period.name, period.start_date, period.end_date),
                (f'{year}-01', new_year, dt.date(year, 1, 31)),
            )
            self.assertTrue(self.journal_period(env.journal, new_year))
            # Idempotent: the next run creates nothing.
            self.assertEqual(
                Configuration.ensure_accounting_periods(date=dt.date(year - 1, 12, 31)),
                0,
            )
            open_session(env)
            with vend_clock(dt.datetime(year, 1, 1, 0, 0, 0)):
                with no_journal_period_lock():
                    vend = Vend.vend(
                        env.meter, D('100.00'), 'cash', env.sales_point, 'ny-1'
                    )
                    Vend.book_pending()  # nor does its booking
            vend = Vend(vend.id)
            self.assertEqual(vend.move.period, period)
            self.assertEqual(vend.move.date, new_year)

    @with_transaction()
    def test_accountant_periods_get_journal_periods(self):
        "Periods created for a new fiscal year get their vending journal period"
        pool = Pool()
        FiscalYear = pool.get('account.fiscalyear')
        with with_vending() as env:
            year = pool.get('ir.date').today().year + 1
            fiscalyear = get_fiscalyear(env.company, today=dt.date(year, 1, 1))
            fiscalyear.save()
            FiscalYear.create_period([fiscalyear])
            for month in range(1, 13):
                self.assertTrue(
                    self.journal_period(env.journal, dt.date(year, month, 15)),
                    month,
                )

    @with_transaction()
    def test_period_fills_gap(self):
        "A missing month between existing periods is created inside the gap"
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        Period = pool.get('account.period')
        with with_vending() as env:
            year = pool.get('ir.date').today().year + 1
            fiscalyear = get_fiscalyear(env.company, today=dt.date(year, 1, 1))
            fiscalyear.save()
            # Quarterly periods with February 15 - March 31 missing.
            Period.create(
                [
                    {
                        'name': 'Q1a',
                        'start_date': dt.date(year, 1, 1),
                        'end_date': dt.date(year, 2, 14),
                        'fiscalyear': fiscalyear.id,
                    },
                    {
                        'name': 'Q2',
                        'start_date': dt.date(year, 3, 20),
                        'end_date': dt.date(year, 6, 30),
                        'fiscalyear': fiscalyear.id,
                    },
                ]
            )
            # The cron on February 20: this month and the next, each cut to
            # the gap.
            Configuration.ensure_accounting_periods(date=dt.date(year, 2, 20))
            february, march = Period.search(
                [
                    ('fiscalyear', '=', fiscalyear.id),
                    ('name', 'in', [f'{year}-02', f'{year}-03']),
                ],
                order=[('start_date', 'ASC')],
            )
            feb_end = dt.date(year, 3, 1) - dt.timedelta(days=1)
            self.assertEqual(
                (february.start_date, february.end_date),
                (dt.date(year, 2, 15), feb_end),
            )
            self.assertEqual(
                (march.start_date, march.end_date),
                (dt.date(year, 3, 1), dt.date(year, 3, 19)),
            )
            self.assertTrue(self.journal_period(env.journal, dt.date(year, 3, 1)))

    @with_transaction()
    def test_vend_without_fiscal_year_is_a_clear_error(self):
        "No fiscal year: the cron only logs, the vend says what to do"
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            far = dt.date(pool.get('ir.date').today().year + 5, 3, 1)
            with self.assertLogs(
                'trytond.modules.prepaid_vending.accounting', 'WARNING'
            ):
                self.assertEqual(Configuration.ensure_accounting_periods(date=far), 0)
            open_session(env)
            with vend_clock(dt.datetime(far.year, far.month, far.day, 0, 0, 1)):
                with self.assertRaisesRegex(UserError, 'create .*fiscal year') as cm:
                    Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'f1')
            self.assertIn(far.isoformat(), str(cm.exception))
            self.assertIn(env.company.rec_name, str(cm.exception))

    @with_transaction()
    def test_vend_in_closed_period_is_refused(self):
        "A period the accountant closed takes no vend, and nothing is written"
        pool = Pool()
        Period = pool.get('account.period')
        JournalPeriod = pool.get('account.journal.period')
        Vend = pool.get('prepaid.vend')
        Move = pool.get('account.move')
        with with_vending() as env:
            open_session(env)
            today = pool.get('ir.date').today()
            period = Period.find(env.company, date=today)
            Period.close([period])
            moves = Move.search([], count=True)
            # A savepoint stands in for the request's transaction.
            cursor = Transaction().connection.cursor()
            cursor.execute('SAVEPOINT before_vend')
            with self.assertRaisesRegex(UserError, today.isoformat()):
                Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'c1')
            cursor.execute('ROLLBACK TO SAVEPOINT before_vend')
            self.assertEqual(Vend.search([], count=True), 0)
            self.assertEqual(Move.search([], count=True), moves)
            # Reopened, the period still has its vending journal closed.
            Period.reopen([period])
            cursor.execute('SAVEPOINT before_vend')
            with self.assertRaisesRegex(AccessError, 'closed journal-period'):
                Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'c2')
            cursor.execute('ROLLBACK TO SAVEPOINT before_vend')
            JournalPeriod.reopen(JournalPeriod.search([('period', '=', period.id)]))
            vend = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'c2')
            Vend.book_pending()
            self.assertEqual(Vend(vend.id).move.period, period)

    @with_transaction()
    def test_tariff_revenue_account_reaches_next_vend(self):
        "Vends price from a cache per version: a tariff change clears it"
        pool = Pool()
        Account = pool.get('account.account')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            open_session(env)

            def energy_account(vend):
                Vend.book_pending()
                vend = Vend(vend.id)
                return {line.account for line in vend.move.lines} - {
                    env.cash,
                    env.tax_account,
                }

            first = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'r1')
            self.assertEqual(energy_account(first), {env.revenue})
            (other,) = Account.copy([env.revenue], default={'code': 'R2'})
            env.tariff.revenue_account = other
            env.tariff.save()
            second = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'r2')
            self.assertEqual(energy_account(second), {other})

    @with_transaction()
    def test_cron_registered(self):
        "A daily cron runs the creation ahead"
        pool = Pool()
        Cron = pool.get('ir.cron')
        ModelData = pool.get('ir.model.data')
        cron = Cron(
            ModelData.get_id('prepaid_vending', 'cron_ensure_accounting_periods')
        )
        self.assertEqual(cron.method, 'prepaid.configuration|ensure_accounting_periods')
        self.assertEqual((cron.interval_number, cron.interval_type), (1, 'days'))
        # Without a vending journal there is nothing to create.
        Configuration = pool.get('prepaid.configuration')
        self.assertEqual(Configuration.ensure_accounting_periods(), 0)
