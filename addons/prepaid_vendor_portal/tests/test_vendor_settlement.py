"""The daily settlement file of a vendor in Tryton: made once when the day is
over and its last batch closes (or by the day-close cron), equal to what the
core writes for the day's sales, never made again (vendor_settlement.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
import unittest
from decimal import Decimal

import pytest
from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_sts import masterkey
from trytond.modules.prepaid_sts.tests.tools import restore_master_key
from trytond.modules.prepaid_vending import booking
from trytond.modules.prepaid_vending.tests.staff import acting_as, create_user
from trytond.modules.prepaid_vendor_portal import settlement as core
from trytond.modules.prepaid_vendor_portal import xmlvend as x
from trytond.modules.prepaid_vendor_portal.commission.rules import Mode
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME

from .xmlvend_route_fixtures import XMLVendRouteMixin, committed, credit_vend, header

pytestmark = pytest.mark.database
D = Decimal


def settlements(seller) -> list[dict]:
    def read():
        Settlement = Pool().get('prepaid.vendor.settlement')
        found = Settlement.search([('vendor', '=', seller.vendor)])
        return [
            {
                'id': s.id,
                'day': s.day,
                'name': s.name,
                'file': bytes(s.file),
                'checksum': s.checksum,
                'count': s.count,
                'amount': s.amount,
                'net': s.net,
            }
            for s in found
        ]

    return committed(read)


class VendorSettlementTestCase(XMLVendRouteMixin, unittest.TestCase):
    "The daily settlement files on the real backend"

    def setUp(self):
        super().setUp()
        # The vends' booking is not this test's business: held back.
        booking._last_push[DB_NAME] = time.monotonic()
        self.seller = self.new_seller()

    def tearDown(self):
        booking._last_push.pop(DB_NAME, None)
        super().tearDown()

    def sell(self, amount: str, **changes):
        message = credit_vend(self.seller, self.env.meter, amount, **changes)
        status, answer = self.post(message)
        self.assertEqual(status, 200, answer)
        return message

    def batch(self):
        def read():
            Batch = Pool().get('prepaid.vendor.batch')
            (batch,) = Batch.search(
                [('terminal', '=', self.seller.terminal)],
                order=[('id', 'DESC')],
                limit=1,
            )
            return batch.id, batch.day

        return committed(read)

    def close(self, now: dt.datetime, by='terminal'):
        batch_id, _ = self.batch()

        def run():
            Batch = Pool().get('prepaid.vendor.batch')
            Batch.close([Batch(batch_id)], now, by)

        committed(run)

    @staticmethod
    def key_of(vendor_id: int) -> bytes:
        return Pool().get('prepaid.vendor')(vendor_id).settlement_key()

    def key(self) -> bytes:
        return committed(
            lambda: Pool().get('prepaid.vendor')(self.seller.vendor).settlement_key()
        )

    def test_made_once_at_the_close_equal_to_the_core(self):
        "The last batch closed after the day: one file, the core's, never again"
        first = self.sell('100.00')
        second = self.sell('80.00')
        _, day = self.batch()
        now = dt.datetime.now(dt.UTC)

        # Ended during the day: no file yet (a till may still open a batch).
        self.close(now)
        self.assertEqual(settlements(self.seller), [])
        # The cron of the same day makes none either.
        committed(lambda: Pool().get('prepaid.vendor.batch').close_past_days(now))
        self.assertEqual(settlements(self.seller), [])

        # The day is over: the cron makes it.
        later = now + dt.timedelta(days=2)
        committed(lambda: Pool().get('prepaid.vendor.batch').close_past_days(later))
        (made,) = settlements(self.seller)
        self.assertEqual(made['day'], day)
        self.assertEqual(made['checksum'], hashlib.sha256(made['file']).hexdigest())
        self.assertEqual(
            (made['count'], made['amount'], made['net']), (2, D('180.00'), D('180.00'))
        )

        # The core's file of the day's two sales, byte for byte.
        def expected():
            pool = Pool()
            Vendor = pool.get('prepaid.vendor')
            Sale = pool.get('prepaid.vendor.sale')
            vendor = Vendor(self.seller.vendor)
            sales = Sale.search(
                [('vendor', '=', vendor.id)], order=[('sold_at', 'ASC'), ('id', 'ASC')]
            )
            txs = [
                core.SettlementTx(
                    at=s.sold_at.replace(tzinfo=dt.UTC),
                    kind=core.TxKind.SALE,
                    terminal=self.seller.terminal_id,
                    receipt=s.vend.number,
                    amount=s.vend.tender,
                    vat=s.vend.vat_amount or D(0),
                    kwh=(s.vend.units_kwh or D(0)).quantize(D('0.01')),
                    msg_id=message.msg_id.key,
                    meter=self.env.meter,
                    token=s.vend.tokens[0].token,
                    operator='',
                )
                for s, message in zip(sales, (first, second))
            ]
            return core.file_name(vendor.code, day), core.daily_file(
                vendor.code,
                day,
                txs,
                timezone=vendor.timezone(),
                currency=vendor.company.currency.code,
                commission_mode=Mode.MONTHLY,
                key=vendor.settlement_key(),
                digits=vendor.company.currency.digits,
            )

        name, data = committed(expected)
        self.assertEqual((made['name'], made['file']), (name, data))
        rows, trailer = core.read_daily_file(made['file'], self.key())
        self.assertEqual(
            [r['msg_id'] for r in rows], [first.msg_id.key, second.msg_id.key]
        )
        self.assertTrue(all(r['token'].startswith('****') for r in rows))
        self.assertEqual((trailer.count, trailer.amount), (2, D('180.00')))

        # Closed again, the cron again: the same one file.
        self.close(later + dt.timedelta(hours=1), 'cron')
        committed(lambda: Pool().get('prepaid.vendor.batch').close_past_days(later))
        self.assertEqual(settlements(self.seller), [made])

    def test_end_batch_after_the_day_makes_it(self):
        "EndSalesBatch's close of the day's last batch, after the day, makes it"
        status, _ = self.post(x.StartSalesBatchReq(**header(self.seller)))
        self.assertEqual(status, 200)
        self.sell('150.00')
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1, hours=1)
        self.close(later)
        (made,) = settlements(self.seller)
        self.assertEqual((made['count'], made['amount']), (1, D('150.00')))

    def test_no_master_key_no_file_then_the_cron(self):
        "Without a master key nothing is made and the close goes on; the cron retries"
        self.sell('140.00')
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
        previous = os.environ.pop(masterkey.ENV_NAME, None)
        try:
            with self.assertLogs(
                'trytond.modules.prepaid_vendor_portal.vendor_settlement', 'WARNING'
            ):
                committed(
                    lambda: Pool().get('prepaid.vendor.batch').close_past_days(later)
                )
        finally:
            restore_master_key(previous)
        self.assertEqual(settlements(self.seller), [])
        self.assertEqual(self.batch_state(), 'closed')
        committed(lambda: Pool().get('prepaid.vendor.batch').close_past_days(later))
        (made,) = settlements(self.seller)
        self.assertEqual(made['amount'], D('140.00'))

    def batch_state(self) -> str:
        batch_id, _ = self.batch()
        return committed(lambda: Pool().get('prepaid.vendor.batch')(batch_id).state)

    def test_staff_read_only(self):
        "The accountant reads the files; nobody writes them, a cashier sees none"
        self.sell('130.00')
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
        committed(lambda: Pool().get('prepaid.vendor.batch').close_past_days(later))
        (made,) = settlements(self.seller)

        def as_roles():
            Settlement = Pool().get('prepaid.vendor.settlement')
            Vendor = Pool().get('prepaid.vendor')
            accountant = create_user(f'acc_{made["id"]}', 'accountant')
            manager = create_user(
                f'vm_{made["id"]}', 'prepaid_vendor_portal.group_vendor_manager'
            )
            cashier = create_user(f'ca_{made["id"]}', 'cashier')
            with acting_as(accountant):
                (read,) = Settlement.read([made['id']], ['checksum'])
                self.assertEqual(read['checksum'], made['checksum'])
                with self.assertRaises(AccessError):
                    Settlement.write([Settlement(made['id'])], {'amount': D(1)})
            with acting_as(manager):
                with self.assertRaises(AccessError):
                    Settlement.delete([Settlement(made['id'])])
                # The vendor's key is nobody's to read.
                with self.assertRaises(AccessError):
                    Vendor.read([self.seller.vendor], ['settlement_key_cipher'])
            # A copy of the vendor gets a key of its own.
            (copy,) = Vendor.copy(
                [Vendor(self.seller.vendor)],
                {'code': 'COPY', 'outlets': None, 'float_account': None},
            )
            self.assertNotEqual(copy.settlement_key(), self.key_of(self.seller.vendor))
            with acting_as(cashier):
                with self.assertRaises(AccessError):
                    Settlement.read([made['id']], ['checksum'])

        committed(as_roles, context={'company': self.env.company})
