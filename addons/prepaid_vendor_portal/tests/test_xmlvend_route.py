"""The XMLVend server on its trytond route, backed by the vending models:
werkzeug's test client posts SOAP to ``/<db>/xmlvend`` as a vending client
would; every call is its own committed transaction, as in production."""

from __future__ import annotations

import unittest
from decimal import Decimal

import pytest
import zeep
from trytond.modules.prepaid_vendor_portal import xmlvend as x
from trytond.modules.prepaid_vendor_portal.xmlvend.namespaces import BASE, REVENUE
from trytond.pool import Pool
from trytond.wsgi import app
from zeep.exceptions import Fault

from .vendor_fixtures import TOKEN
from .wsgi_pump import Pump
from .xmlvend_route_fixtures import (
    ADDRESS,
    CONTENT_TYPES,
    URL,
    XMLVendRouteMixin,
    by_msno,
    committed,
    credit_vend,
    energy_tx,
    envelope,
    header,
    read_state,
)

pytestmark = pytest.mark.database


class XMLVendRouteTestCase(XMLVendRouteMixin, unittest.TestCase):
    "XMLVend 2.1 served by trytond on the real vending core"

    # -- sales ---------------------------------------------------------------
    def test_credit_vend_token_float_and_retry(self):
        "A sale: an STS token, the float down by the tender; a retry, the same"
        seller = self.new_seller()
        before = read_state(seller)
        request = credit_vend(seller, self.env.meter, '100.00')
        status, answer = self.post(request)
        self.assertEqual(status, 200, answer)
        self.assertIsInstance(answer, x.CreditVendResp)
        receipt = answer.credit_vend_receipt
        tx = energy_tx(receipt)
        token = tx.credit_token_issue.token.sts_cipher
        self.assertRegex(token, r'^[0-9]{20}$')
        self.assertNotEqual(token, '0' * 20)
        self.assertEqual(receipt.transactions.tender_amt.value, Decimal('100.00'))
        self.assertEqual(tx.credit_token_issue.meter_detail.sgc, '201457')
        after = read_state(seller)
        self.assertEqual(after['available'], before['available'] - Decimal('100'))
        self.assertEqual(answer.client_status.avail_credit.value, after['available'])
        self.assertEqual(after['vends'], before['vends'] + 1)

        # The same msgID again (a time-out on the till): the same answer,
        # nothing sold twice; also over SOAP 1.2.
        status, again = self.post(request, version='1.2')
        self.assertEqual(status, 200)
        self.assertEqual(again, answer)
        self.assertEqual(read_state(seller), after)

        # The last-response advice gives the original answer too.
        advice = x.LastRespAdviceReq(**header(seller), advice_req_msg_id=request.msg_id)
        status, last = self.post(advice)
        self.assertEqual(status, 200)
        self.assertEqual(last.last_response, answer)

        # The msgID reused for another sale: refused, nothing sold.
        other = credit_vend(seller, self.env.meter, '50.00', msg_id=request.msg_id)
        status, refused = self.post(other)
        self.assertEqual(status, 500)
        self.assertFault(refused, 'XMLVendFaultEx', 'used for another request')
        self.assertEqual(read_state(seller), after)

        # Reprint: the meter's XMLVend sales, as first answered.
        status, reprint = self.post(
            x.ReprintReq(**header(seller), id_method=by_msno(self.env.meter))
        )
        self.assertEqual(status, 200, reprint)
        self.assertEqual(reprint.reprint[-1], answer)

        # Another vendor's till cannot reprint this vendor's sale.
        other = self.new_seller()
        status, refused = self.post(
            x.ReprintReq(**header(other), id_method=by_msno(self.env.meter))
        )
        self.assertEqual(status, 500)
        self.assertFault(refused, 'ReprintEx', 'No XMLVend sale')

    def test_units_and_vending_core_refusal(self):
        "kWh are priced by the tariff; the core's own refusal is a clear fault"
        seller = self.new_seller()
        before = read_state(seller)
        request = x.CreditVendReq(
            **header(seller),
            id_method=by_msno(self.env.meter),
            purchase_value=x.PurchaseValueUnits(
                units=x.Units(value=Decimal('20'), si_unit='kWh')
            ),
        )
        status, answer = self.post(request, version='1.2')
        self.assertEqual(status, 200, answer)
        tx = energy_tx(answer.credit_vend_receipt)
        self.assertGreaterEqual(tx.credit_token_issue.units.value, Decimal('20'))
        tender = answer.credit_vend_receipt.transactions.tender_amt.value
        after = read_state(seller)
        self.assertEqual(after['available'], before['available'] - tender)

        # Below the utility's minimum tender (10.00): refused by Vend.vend.
        status, refused = self.post(credit_vend(seller, self.env.meter, '5.00'), '1.2')
        self.assertEqual(status, 500)  # a Receiver fault in SOAP 1.2
        self.assertFault(refused, 'RequestAuthorisationEx', '5.00')
        self.assertEqual(read_state(seller), after)

    def test_trial_sells_nothing(self):
        "A trial vend: twenty zeros, no vend, the float unchanged"
        seller = self.new_seller()
        before = read_state(seller)
        request = x.TrialCreditVendReq(
            **header(seller),
            id_method=by_msno(self.env.meter),
            purchase_value=x.PurchaseValueCurrency(amt=x.Currency(value=Decimal(80))),
        )
        status, answer = self.post(request)
        self.assertEqual(status, 200, answer)
        tx = energy_tx(answer.credit_vend_receipt)
        self.assertEqual(tx.credit_token_issue.token.sts_cipher, '0' * 20)
        self.assertGreater(tx.credit_token_issue.units.value, 0)
        self.assertEqual(read_state(seller), before)

    def test_confirm_meter_and_unknown_meter(self):
        "confirm meter gives the STS data; an unknown meter is UnknownMeterEx"
        seller = self.new_seller()
        status, answer = self.post(
            x.ConfirmMeterReq(**header(seller), id_method=by_msno(self.env.meter))
        )
        self.assertEqual(status, 200, answer)
        detail = answer.confirm_meter_result.meter_detail
        self.assertEqual(
            (detail.msno, detail.sgc, detail.krn), (self.env.meter, '201457', 1)
        )
        before = read_state(seller)
        status, answer = self.post(credit_vend(seller, '99999999999', '50.00'))
        self.assertEqual(status, 500)
        self.assertFault(answer, 'UnknownMeterEx', '99999999999')
        self.assertEqual(read_state(seller), before)

    def test_blocked_meter(self):
        "A meter blocked for vending: BlockedMeterEx"
        seller = self.new_seller()

        def block(value):
            Meter = Pool().get('prepaid.meter')
            Meter.write(
                [Meter(self.env.meter_id)],
                {
                    'vend_blocked': value,
                    'vend_blocked_reason': 'tamper' if value else None,
                },
            )

        committed(lambda: block(True))
        try:
            status, answer = self.post(
                x.ConfirmCustomerReq(
                    **header(seller), id_method=by_msno(self.env.meter)
                )
            )
        finally:
            committed(lambda: block(False))
        self.assertEqual(status, 500)
        self.assertFault(answer, 'BlockedMeterEx', 'tamper')

    # -- refusals ------------------------------------------------------------
    def test_wrong_token_refused(self):
        "A wrong API token: ClientIDAuthorisationEx, nothing sold"
        seller = self.new_seller()
        before = read_state(seller)
        status, answer = self.post(
            credit_vend(
                seller, self.env.meter, '50.00', **header(seller, token='w' * 40)
            )
        )
        self.assertEqual(status, 500)
        self.assertFault(answer, 'ClientIDAuthorisationEx', 'wrong API token')
        self.assertEqual(read_state(seller), before)

    def test_suspended_vendor_and_revoked_terminal(self):
        "A suspended vendor and a revoked terminal sell nothing"
        seller = self.new_seller()
        before = read_state(seller)

        def suspend():
            Vendor = Pool().get('prepaid.vendor')
            Vendor.suspend([Vendor(seller.vendor)])

        committed(suspend)
        status, answer = self.post(credit_vend(seller, self.env.meter, '50.00'))
        self.assertEqual(status, 500)
        self.assertFault(answer, 'ClientIDAuthorisationEx', 'suspended')
        self.assertEqual(read_state(seller), before)

        other = self.new_seller()

        def revoke():
            Terminal = Pool().get('prepaid.vendor.terminal')
            Terminal.revoke([Terminal(other.terminal)])

        committed(revoke)
        status, answer = self.post(credit_vend(other, self.env.meter, '50.00'))
        self.assertFault(answer, 'ClientIDAuthorisationEx', 'revoked')

    def test_float_too_low(self):
        "A float below the sale: VendorCreditEx, no vend, no answer kept"
        seller = self.new_seller(float_='20.00')
        before = read_state(seller)
        request = credit_vend(seller, self.env.meter, '50.00')
        status, answer = self.post(request)
        self.assertEqual(status, 500)
        self.assertFault(answer, 'VendorCreditEx')
        self.assertEqual(read_state(seller), before)
        # Nothing to give back: the till may sell again.
        status, advice = self.post(
            x.LastRespAdviceReq(**header(seller), advice_req_msg_id=request.msg_id)
        )
        self.assertFault(advice, 'LastResponseEx')

    def test_malformed_xml_writes_nothing(self):
        "Not XML, or not a request: a SOAP fault, no stack trace, nothing written"
        seller = self.new_seller()
        before = read_state(seller)
        for body in (b'<soap:Envelope', b'{"meter": "1"}', b'x' * 70000):
            reply = self.client.post(
                URL,
                data=body,
                headers={'Content-Type': CONTENT_TYPES['1.1']},
                environ_base=ADDRESS,
            )
            self.assertEqual(reply.status_code, 500)
            self.assertIn(b'Fault', reply.data)
            self.assertNotIn(b'Traceback', reply.data)
        self.assertEqual(read_state(seller), before)

    def test_operation_not_offered(self):
        "An XMLVend operation the server does not offer: UseCaseSupportEx"
        seller = self.new_seller()
        before = read_state(seller)
        body = envelope(x.VendorStatementReq(**header(seller))).replace(
            b'vendorStatementReq', b'cancelVendReq'
        )
        reply = self.client.post(
            URL,
            data=body,
            headers={'Content-Type': CONTENT_TYPES['1.1']},
            environ_base=ADDRESS,
        )
        self.assertEqual(reply.status_code, 500)
        self.assertFault(x.read_response(reply.data), 'UseCaseSupportEx')
        self.assertEqual(read_state(seller), before)

    def test_credit_vend_with_zeep_over_http(self):
        "A zeep client built from the served WSDL buys a token over HTTP"
        seller = self.new_seller()
        before = read_state(seller)
        with Pump(app) as pump:

            def buy():
                client = zeep.Client(pump.base + URL + '?wsdl')
                service = client.bind('XMLVendService2.1', 'XMLVendServicePort')

                def t(ns, name, **kwargs):
                    return client.get_type(f'{{{ns}}}{name}')(**kwargs)

                msg_id = t(BASE, 'MsgID', dateTime='20260301120000', uniqueNumber='7')
                vend = service.CreditVendRequest(
                    clientID=t(BASE, 'EANDeviceID', ean=seller.client_id),
                    terminalID=t(BASE, 'GenericDeviceID', id=seller.terminal_id),
                    msgID=msg_id,
                    authCred=t(BASE, 'AuthCred', opName='TILL', password=TOKEN),
                    idMethod=t(
                        BASE,
                        'VendIDMethod',
                        meterIdentifier=t(BASE, 'MeterNumber', msno=self.env.meter),
                    ),
                    purchaseValue=t(
                        REVENUE,
                        'PurchaseValueCurrency',
                        amt=t(BASE, 'Currency', value=Decimal('60.00'), symbol='R'),
                    ),
                )
                unknown = None
                try:
                    service.ConfirmMeterRequest(
                        clientID=t(BASE, 'EANDeviceID', ean=seller.client_id),
                        terminalID=t(BASE, 'GenericDeviceID', id=seller.terminal_id),
                        msgID=t(
                            BASE, 'MsgID', dateTime='20260301120000', uniqueNumber='8'
                        ),
                        authCred=t(BASE, 'AuthCred', opName='TILL', password=TOKEN),
                        idMethod=t(
                            BASE,
                            'VendIDMethod',
                            meterIdentifier=t(BASE, 'MeterNumber', msno='12345678901'),
                        ),
                    )
                except Fault as fault:
                    unknown = fault
                return vend, unknown

            vend, unknown = pump.run(buy)
        issue = vend.creditVendReceipt.transactions.tx[0].creditTokenIssue
        self.assertRegex(issue.token.stsCipher, r'^[0-9]{20}$')
        after = read_state(seller)
        self.assertEqual(after['available'], before['available'] - Decimal('60'))
        self.assertEqual(vend.clientStatus.availCredit.value, after['available'])
        self.assertIsNotNone(unknown)
        self.assertIn('12345678901', unknown.message)

    def test_wsdl(self):
        "GET ?wsdl: the WSDL with the address it was fetched from"
        reply = self.client.get(URL + '?wsdl', base_url='https://vend.example')
        self.assertEqual(reply.status_code, 200)
        self.assertIn(f'https://vend.example{URL}'.encode(), reply.data)
