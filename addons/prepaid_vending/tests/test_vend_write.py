"""The set-based write path of the vend (vend_write): what the ORM used to
guarantee still holds, and the rows read back equal what the pipeline kept in
memory."""

import datetime as dt
import unittest
from decimal import Decimal as D

from trytond.model.exceptions import AccessError, SQLConstraintError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .. import vend_write
from .vend_fixtures import open_session, with_vending


class VendWriteTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_rows_match_memory(self):
        "A fresh read of the vend, lines, position and move equals the vend"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Position = pool.get('prepaid.meter.month_position')
        with with_vending() as env:
            open_session(env)
            vend = Vend.vend(env.meter, D('300.00'), 'cash', env.sales_point, 'w1')
            Transaction().counter += 1
            fresh = Vend(vend.id)
            for name in ('number', 'tender', 'units_kwh', 'vat_amount', 'state'):
                self.assertEqual(getattr(fresh, name), getattr(vend, name), name)
            self.assertEqual(fresh.move.id, vend.move.id)
            self.assertEqual(fresh.create_uid.id, Transaction().user)
            self.assertEqual(
                [(line.kind, line.amount, line.vat) for line in fresh.lines],
                [(line.kind, line.amount, line.vat) for line in vend.lines],
            )
            (position,) = Position.search([('meter', '=', env.meter.id)])
            self.assertEqual(position.kwh, vend.month_kwh_after)
            self.assertEqual(position.vends, 1)
            # The second vend of the month updates the same position row.
            second = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'w2')
            (position,) = Position.search([('meter', '=', env.meter.id)])
            self.assertEqual(position.kwh, second.month_kwh_after)
            self.assertEqual(position.vends, 2)
            self.assertEqual(second.month_kwh_before, vend.month_kwh_after)

    @with_transaction()
    def test_move_balanced_with_tax_lines(self):
        "The move is a draft whose lines are valid (balanced), VAT on tax lines"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Move = pool.get('account.move')
        with with_vending() as env:
            open_session(env)
            vend = Vend.vend(env.meter, D('300.00'), 'cash', env.sales_point, 'w3')
            Transaction().counter += 1
            move = Move(vend.move.id)
            self.assertEqual(move.state, 'draft')
            self.assertEqual(str(move.origin), str(vend))
            self.assertEqual(
                sum(line.debit for line in move.lines),
                sum(line.credit for line in move.lines),
            )
            self.assertEqual({line.state for line in move.lines}, {'valid'})
            vat = sum(
                t.amount
                for line in move.lines
                for t in line.tax_lines
                if t.type == 'tax'
            )
            self.assertEqual(vat, vend.vat_amount)
            Move.post([move])  # Tryton's own posting accepts it
            self.assertEqual(move.state, 'posted')

    @with_transaction()
    def test_closed_account_refused(self):
        "A closed revenue account refuses the vend as Tryton's line check does"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Account = pool.get('account.account')
        with with_vending() as env:
            open_session(env)
            Account.write([env.revenue], {'closed': True})
            with self.assertRaises(AccessError):
                Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'w4')

    @with_transaction()
    def test_account_ended_before_the_vend_refused(self):
        "An account no longer valid on the vend's date is refused (line domain)"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Account = pool.get('account.account')
        with with_vending() as env:
            open_session(env)
            yesterday = dt.date.today() - dt.timedelta(days=1)
            Account.write(
                [env.revenue],
                {'start_date': yesterday.replace(year=2000), 'end_date': yesterday},
            )
            with self.assertRaises(AccessError):
                Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'w6')
            Account.write([env.revenue], {'end_date': None})
            vend = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'w7')
            self.assertEqual(vend.state, 'issued')

    @with_transaction()
    def test_unique_constraint_named(self):
        "A duplicate key reaching the INSERT gets Tryton's constraint message"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            open_session(env)
            vend = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'w5')
            row = {
                name: getattr(vend, name)
                for name in (
                    'company',
                    'date',
                    'meter',
                    'channel',
                    'payment_method',
                    'tender',
                )
            }
            row.update(
                idempotency_key='w5',
                tariff=vend.tariff,
                tariff_version=vend.tariff_version,
                state='issued',
            )
            with self.assertRaises(SQLConstraintError):
                vend_write.insert_rows(Vend, [row])
