"""Confirmation and reversal advice through the XMLVend route: on a stored
sale, answered once per msgID; an STS token sale is never reversed."""

from __future__ import annotations

import unittest

import pytest
from trytond.modules.prepaid_vendor_portal import xmlvend as x

from .xmlvend_route_fixtures import (
    XMLVendRouteMixin,
    credit_vend,
    header,
    read_state,
)

pytestmark = pytest.mark.database


class XMLVendAdviceTestCase(XMLVendRouteMixin, unittest.TestCase):
    "Confirmation and reversal advice on the real backend"

    def setUp(self):
        super().setUp()
        self.seller = self.new_seller()

    def sell(self, amount='100.00'):
        request = credit_vend(self.seller, self.env.meter, amount)
        status, answer = self.post(request)
        self.assertEqual(status, 200, answer)
        return request, answer

    def test_confirmation(self):
        "A stored sale is confirmed; a retry of the advice gets the same answer"
        sale, sold = self.sell()
        before = read_state(self.seller)
        advice = x.ConfirmationAdviceReq(
            **header(self.seller), advice_req_msg_id=sale.msg_id
        )
        status, answer = self.post(advice)
        self.assertEqual(status, 200, answer)
        self.assertIsInstance(answer, x.ConfirmationAdviceResp)
        self.assertIs(answer.tx_confirmed, True)
        self.assertEqual(answer.advice_req_msg_id, sale.msg_id)
        after = read_state(self.seller)
        self.assertEqual(after['available'], before['available'])
        self.assertEqual(after['vends'], before['vends'])
        self.assertEqual(after['answers'], before['answers'] + 1)

        status, again = self.post(advice)
        self.assertEqual(status, 200)
        self.assertEqual(again, answer)
        self.assertEqual(read_state(self.seller), after)

        # The sale's own last response is still the sale.
        status, last = self.post(
            x.LastRespAdviceReq(**header(self.seller), advice_req_msg_id=sale.msg_id)
        )
        self.assertEqual(last.last_response, sold)

        # The advice's msgID reused to confirm another msgID: refused.
        other = x.ConfirmationAdviceReq(
            **header(self.seller, msg_id=advice.msg_id),
            advice_req_msg_id=x.MsgID(date_time='20260301103000', unique_number='9'),
        )
        status, refused = self.post(other)
        self.assertEqual(status, 500)
        self.assertFault(refused, 'XMLVendFaultEx', 'used for another request')
        self.assertEqual(read_state(self.seller), after)

    def test_confirmation_unknown_sale(self):
        "No sale with that msgID: ConfirmationEx, nothing stored"
        before = read_state(self.seller)
        status, answer = self.post(
            x.ConfirmationAdviceReq(
                **header(self.seller),
                advice_req_msg_id=x.MsgID(
                    date_time='20260301103000', unique_number='404404'
                ),
            )
        )
        self.assertEqual(status, 500)
        self.assertFault(answer, 'ConfirmationEx', '404404')
        self.assertEqual(read_state(self.seller), before)

    def test_reversal_of_token_sale_changes_nothing(self):
        "An issued token is never taken back: txReversed false, float and vends kept"
        sale, sold = self.sell('80.00')
        before = read_state(self.seller)
        advice = x.ReversalAdviceReq(
            **header(self.seller), advice_req_msg_id=sale.msg_id
        )
        status, answer = self.post(advice)
        self.assertEqual(status, 200, answer)
        self.assertIsInstance(answer, x.ReversalAdviceResp)
        self.assertIs(answer.tx_reversed, False)
        after = read_state(self.seller)
        self.assertEqual(after['available'], before['available'])
        self.assertEqual(after['vends'], before['vends'])

        status, again = self.post(advice)
        self.assertEqual(again, answer)
        self.assertEqual(read_state(self.seller), after)

        # The sale is still there, as sold.
        status, retry = self.post(sale)
        self.assertEqual(retry, sold)

    def test_reversal_unknown_and_of_an_advice(self):
        "ReversalEx for an unknown msgID and for one that was no sale"
        sale, _ = self.sell()
        confirm = x.ConfirmationAdviceReq(
            **header(self.seller), advice_req_msg_id=sale.msg_id
        )
        self.assertEqual(self.post(confirm)[0], 200)
        before = read_state(self.seller)
        for target in (
            x.MsgID(date_time='20260301103000', unique_number='505505'),
            confirm.msg_id,
        ):
            status, answer = self.post(
                x.ReversalAdviceReq(**header(self.seller), advice_req_msg_id=target)
            )
            self.assertEqual(status, 500)
            self.assertFault(answer, 'ReversalEx', target.unique_number)
        self.assertEqual(read_state(self.seller), before)

    def test_advice_of_another_vendor_sale(self):
        "Another vendor's terminal cannot confirm this vendor's sale"
        sale, _ = self.sell()
        stranger = self.new_seller('0')
        status, answer = self.post(
            x.ConfirmationAdviceReq(**header(stranger), advice_req_msg_id=sale.msg_id)
        )
        self.assertEqual(status, 500)
        self.assertFault(answer, 'ConfirmationEx')
