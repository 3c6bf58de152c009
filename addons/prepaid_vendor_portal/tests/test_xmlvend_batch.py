"""Sales batches through the XMLVend route: start, subtotal and end of a
terminal's sales batch, the batch each sale records, the day close."""

from __future__ import annotations

import datetime as dt
import unittest
from decimal import Decimal

import pytest
from trytond.modules.prepaid_vendor_portal import xmlvend as x
from trytond.pool import Pool

from .xmlvend_route_fixtures import (
    XMLVendRouteMixin,
    committed,
    credit_vend,
    header,
    read_state,
)

pytestmark = pytest.mark.database


def batches(seller) -> list[dict]:
    "The terminal's batches, oldest first, with their sales"

    def read():
        pool = Pool()
        Batch = pool.get('prepaid.vendor.batch')
        found = Batch.search(
            [('terminal', '=', seller.terminal)], order=[('id', 'ASC')]
        )
        return [
            {
                'id': b.id,
                'sequence': b.sequence,
                'state': b.state,
                'closed_by': b.closed_by,
                'count': b.sale_count,
                'amount': b.sale_amount,
            }
            for b in found
        ]

    return committed(read)


class XMLVendBatchTestCase(XMLVendRouteMixin, unittest.TestCase):
    "Sales batches per terminal on the real backend"

    def setUp(self):
        super().setUp()
        self.seller = self.new_seller()

    def sell(self, amount: str):
        status, answer = self.post(credit_vend(self.seller, self.env.meter, amount))
        self.assertEqual(status, 200, answer)
        return answer

    def test_start_two_sales_total_end(self):
        "start, two sales, a subtotal of 2 and their sum, end closes the batch"
        status, started = self.post(x.StartSalesBatchReq(**header(self.seller)))
        self.assertEqual(status, 200, started)
        self.assertIsInstance(started.started_batch, x.SalesStartBatch)
        self.assertEqual(started.started_batch.seq_no, 1)

        # A second start while it is open: StartBatchEx, nothing opened.
        status, refused = self.post(x.StartSalesBatchReq(**header(self.seller)))
        self.assertEqual(status, 500)
        self.assertFault(refused, 'StartBatchEx', 'end it first')
        self.assertEqual(len(batches(self.seller)), 1)

        self.sell('100.00')
        self.sell('80.00')
        status, total = self.post(x.TotalSalesBatchReq(**header(self.seller)))
        self.assertEqual(status, 200, total)
        (summary,) = total.total_batch
        self.assertIsInstance(summary, x.SalesBatch)
        self.assertEqual(summary.batch_tot.value, Decimal('180.00'))
        self.assertEqual(summary.seq_no, 1)
        (row,) = batches(self.seller)
        self.assertEqual(
            (row['state'], row['count'], row['amount']),
            ('open', 2, Decimal('180.00')),
        )

        end = x.EndSalesBatchReq(**header(self.seller))
        status, ended = self.post(end)
        self.assertEqual(status, 200, ended)
        self.assertEqual(ended.end_batch.batch_tot.value, Decimal('180.00'))
        self.assertEqual(ended.end_batch.seq_no, 1)
        (row,) = batches(self.seller)
        self.assertEqual((row['state'], row['closed_by']), ('closed', 'terminal'))

        # The same end again (a time-out): the stored answer, nothing else.
        status, again = self.post(end)
        self.assertEqual(status, 200)
        self.assertEqual(again, ended)

        # A subtotal or an end with no batch open: the standard's faults.
        before = read_state(self.seller)
        status, answer = self.post(x.TotalSalesBatchReq(**header(self.seller)))
        self.assertEqual(status, 500)
        self.assertFault(answer, 'CheckBatchTotalEx', 'No sales batch is open')
        status, answer = self.post(x.EndSalesBatchReq(**header(self.seller)))
        self.assertFault(answer, 'EndBatchEx', 'No sales batch is open')
        self.assertEqual(read_state(self.seller), before)

        # A sale after the end opens a day batch of its own.
        self.sell('70.00')
        first, second = batches(self.seller)
        self.assertEqual(first['count'], 2)
        self.assertEqual(
            (second['sequence'], second['state'], second['count'], second['amount']),
            (2, 'open', 1, Decimal('70.00')),
        )

    def test_sale_without_start_opens_day_batch(self):
        "A sale with no batch open opens one; the next sale joins it"
        self.sell('100.00')
        self.sell('90.00')
        (row,) = batches(self.seller)
        self.assertEqual(
            (row['state'], row['count'], row['amount']), ('open', 2, Decimal('190.00'))
        )
        # That day batch is the open one: start is refused until it ends.
        status, answer = self.post(x.StartSalesBatchReq(**header(self.seller)))
        self.assertFault(answer, 'StartBatchEx', 'Sales batch 1 is open')

    def test_bank_shift_and_all_batches_not_kept(self):
        "Bank, shift and all-batch requests: UseCaseSupportEx, nothing opened"
        for request in (
            x.StartBankBatchReq(**header(self.seller)),
            x.StartShiftBatchReq(**header(self.seller)),
            x.StartAllBatchesReq(**header(self.seller)),
            x.TotalAllBatchesReq(**header(self.seller)),
        ):
            status, answer = self.post(request)
            self.assertEqual(status, 500)
            self.assertFault(answer, 'UseCaseSupportEx', 'only sales batches')
        self.assertEqual(batches(self.seller), [])

    def test_wrong_token_opens_nothing(self):
        "An unauthenticated start: ClientIDAuthorisationEx, no batch"
        status, answer = self.post(
            x.StartSalesBatchReq(**header(self.seller, token='x' * 40))
        )
        self.assertFault(answer, 'ClientIDAuthorisationEx')
        self.assertEqual(batches(self.seller), [])

    def test_day_close_cron(self):
        "The cron closes the batches of past days, not today's"
        self.sell('100.00')

        def close(now):
            Batch = Pool().get('prepaid.vendor.batch')
            return Batch.close_past_days(now)

        now = dt.datetime.now(dt.UTC)
        committed(lambda: close(now))
        (row,) = batches(self.seller)
        self.assertEqual(row['state'], 'open')
        committed(lambda: close(now + dt.timedelta(days=2)))
        (row,) = batches(self.seller)
        self.assertEqual((row['state'], row['closed_by']), ('closed', 'cron'))
        self.assertEqual(row['count'], 1)

    def test_sale_after_midnight_leaves_yesterday_batch(self):
        "A sale finding yesterday's batch open closes it and opens today's"
        self.sell('100.00')

        def age():
            Batch = Pool().get('prepaid.vendor.batch')
            (batch,) = Batch.search([('terminal', '=', self.seller.terminal)])
            Batch.write([batch], {'day': batch.day - dt.timedelta(days=1)})

        committed(age)
        self.sell('80.00')
        first, second = batches(self.seller)
        self.assertEqual(
            (first['state'], first['closed_by'], first['count']), ('closed', 'cron', 1)
        )
        self.assertEqual(
            (second['sequence'], second['state'], second['count']), (2, 'open', 1)
        )
