"""The set-based write path of the vend (fastpath):
what the ORM used to guarantee still holds, and the rows read back equal what
the pipeline kept in memory."""

import unittest
from decimal import Decimal as D

from trytond.model.exceptions import SQLConstraintError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .. import fastpath
from ..vend_pipeline import VEND_WRITE
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
            self.assertIsNone(fresh.move)  # booked after the request: test_booking
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
                fastpath.create(Vend, [row], system=VEND_WRITE)
