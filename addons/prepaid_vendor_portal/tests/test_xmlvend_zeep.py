"""A zeep client built from the served WSDL runs every operation, in SOAP 1.1
and 1.2, against the sans-io service behind a tiny WSGI server on 127.0.0.1
(with the in-memory backend), and reads the standard faults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import zeep
from lxml import etree
from trytond.modules.prepaid_vendor_portal import xmlvend as x
from trytond.modules.prepaid_vendor_portal.xmlvend.namespaces import BASE, REVENUE
from zeep.exceptions import Fault

from .xmlvend_fake import FakeBackend

PORTS = {"1.1": "XMLVendServicePort", "1.2": "XMLVendServiceSoap12Port"}


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Server:
    "The transport a trytond route will be: GET ?wsdl, POST to handle()"

    def __init__(self) -> None:
        self.backend = FakeBackend()
        self.actions: list[str | None] = []
        self.httpd = make_server("127.0.0.1", 0, self.app, handler_class=_Quiet)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/demo/xmlvend"

    def app(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "GET" and environ.get("QUERY_STRING") == "wsdl":
            start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8")])
            return [x.wsdl_document(self.url)]
        limit = x.REQUEST_LIMITS.max_body + 1
        body = environ["wsgi.input"].read(
            min(int(environ.get("CONTENT_LENGTH") or 0), limit)
        )
        self.actions.append(environ.get("HTTP_SOAPACTION"))
        status, content_type, answer = x.handle(
            body,
            environ.get("CONTENT_TYPE"),
            environ.get("HTTP_SOAPACTION"),
            self.backend,
        )
        start_response(f"{status} XMLVend", [("Content-Type", content_type)])
        return [answer]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    server = Server()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def client(server) -> zeep.Client:
    return zeep.Client(server.url + "?wsdl")


class Calls:
    "Builds zeep arguments the way a vendor's developer would"

    def __init__(self, client: zeep.Client, version: str):
        self.client = client
        self.version = version
        self.service = client.bind("XMLVendService2.1", PORTS[version])
        self.counter = 0
        self.date_time = "2026030110" + ("11" if version == "1.1" else "12") + "00"

    def t(self, ns: str, name: str, **kwargs):
        return self.client.get_type(f"{{{ns}}}{name}")(**kwargs)

    def header(self) -> dict:
        self.counter += 1
        return dict(
            clientID=self.t(BASE, "EANDeviceID", ean="6009990000012"),
            terminalID=self.t(BASE, "GenericDeviceID", id="T-ZEEP"),
            msgID=self.t(
                BASE, "MsgID", dateTime=self.date_time, uniqueNumber=str(self.counter)
            ),
            authCred=self.t(BASE, "AuthCred", opName="OPERATOR1", password="secret-1"),
        )

    def meter(self, msno: str):
        return self.t(
            BASE, "VendIDMethod", meterIdentifier=self.t(BASE, "MeterNumber", msno=msno)
        )

    def money(self, value: str):
        return self.t(BASE, "Currency", value=Decimal(value), symbol="R")

    def derived(self, operation: str, ns: str, element: str, type_name: str, **fields):
        """Call an operation with a derived request type (advice and batch kinds).

        zeep's service call builds the body from the element's declared type,
        which is abstract here; rendering a value of the derived type with the
        element makes zeep write its xsi:type.  The reply goes through zeep's
        binding as usual (faults raised as zeep Faults)."""
        value = self.t(ns, type_name, **self.header(), **fields)
        soap_ns = SOAP_NS[self.version]
        envelope = etree.Element(f"{{{soap_ns}}}Envelope", nsmap={"soap-env": soap_ns})
        body = etree.SubElement(envelope, f"{{{soap_ns}}}Body")
        self.client.get_element(f"{{{ns}}}{element}").render(body, value)
        if self.version == "1.1":
            headers = {
                "SOAPAction": f'"{operation}"',
                "Content-Type": "text/xml; charset=utf-8",
            }
        else:
            headers = {
                "Content-Type": "application/soap+xml; charset=utf-8; "
                f'action="{operation}"'
            }
        binding = self.service._binding
        response = self.client.transport.post_xml(
            self.service._binding_options["address"], envelope, headers
        )
        return binding.process_reply(self.client, binding.get(operation), response)


SOAP_NS = {
    "1.1": "http://schemas.xmlsoap.org/soap/envelope/",
    "1.2": "http://www.w3.org/2003/05/soap-envelope",
}


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_every_operation_through_zeep(server, client, version):
    server.backend = FakeBackend()
    c = Calls(client, version)
    s = c.service
    done = set()

    user = s.LoginRequest(**c.header())
    assert (user.CDUName, user.CDUBalance) == ("Demo Vendor", Decimal("1000.00"))
    done.add("LoginRequest")

    started = c.derived(
        "StartBatchRequest", REVENUE, "startBatchReq", "StartAllBatchesReq"
    )
    assert type(started.startedBatch).__name__ == "BankStartBatch"
    assert started.startedBatch.salesStartBatch[0].shiftStartBatch[0].seqNo > 0
    done.add("StartBatchRequest")

    customer = s.ConfirmCustomerRequest(**c.header(), idMethod=c.meter("14339800360"))
    assert customer.confirmCustResult[0].custVendConfig.fbeDue is True
    by_account = s.ConfirmCustomerRequest(
        **c.header(),
        idMethod=c.t(
            BASE,
            "CustIDMethod",
            custIdentifier=c.t(BASE, "CustAccountNo", accNo="ACC00360"),
        ),
    )
    assert by_account.confirmCustResult[0].meterDetail.msno == "14339800360"
    done.add("ConfirmCustomerRequest")

    meter = s.ConfirmMeterRequest(**c.header(), idMethod=c.meter("01234567890"))
    assert meter.confirmMeterResult.meterDetail.sgc == "100836"
    done.add("ConfirmMeterRequest")

    trial = s.TrialCreditVendRequest(
        **c.header(),
        resource=c.t(BASE, "Electricity"),
        idMethod=c.meter("14339800360"),
        purchaseValue=c.t(
            REVENUE,
            "PurchaseValueUnits",
            units=c.t(BASE, "Units", value=Decimal("20"), siUnit="kWh"),
        ),
    )
    trial_issue = trial.creditVendReceipt.transactions.tx[0].creditTokenIssue
    assert trial_issue.token.stsCipher == "0" * 20
    assert server.backend.float == Decimal("1000.00")
    done.add("TrialCreditVendRequest")

    vend_header = c.header()
    vend = s.CreditVendRequest(
        **vend_header,
        resource=c.t(BASE, "Electricity"),
        idMethod=c.meter("14339800360"),
        purchaseValue=c.t(REVENUE, "PurchaseValueCurrency", amt=c.money("115.00")),
        payType=c.t(BASE, "Cash", tenderAmt=c.money("120.00")),
    )
    tx = vend.creditVendReceipt.transactions.tx[0]
    token = tx.creditTokenIssue.token.stsCipher
    assert len(token) == 20 and token != "0" * 20
    assert tx.creditTokenIssue.units.value == Decimal("62.5")
    assert vend.clientStatus.availCredit.value == Decimal("885.00")
    done.add("CreditVendRequest")

    fbe = s.FBERequest(**c.header(), idMethod=c.meter("14339800360"))
    assert fbe.creditVendReceipt.transactions.tx[0].creditTokenIssue.units.value == 50
    done.add("FBERequest")

    reprint = s.ReprintRequest(**c.header(), idMethod=c.meter("14339800360"))
    assert [r.creditVendReceipt.receiptNo for r in reprint.reprint] == [
        vend.creditVendReceipt.receiptNo
    ]
    done.add("ReprintRequest")

    original = vend_header["msgID"]
    last = c.derived(
        "AdviceRequest", BASE, "adviceReq", "LastRespAdviceReq", adviceReqMsgID=original
    )
    last_tx = last.lastResponse.creditVendReceipt.transactions.tx[0]
    assert last_tx.creditTokenIssue.token.stsCipher == token
    confirmed = c.derived(
        "AdviceRequest",
        BASE,
        "adviceReq",
        "ConfirmationAdviceReq",
        adviceReqMsgID=original,
        payType=c.t(BASE, "Cash", tenderAmt=c.money("120.00")),
    )
    assert confirmed.txConfirmed is True
    reversal = c.derived(
        "AdviceRequest", BASE, "adviceReq", "ReversalAdviceReq", adviceReqMsgID=original
    )
    assert reversal.txReversed is False  # a token was issued: the vendor is liable
    done.add("AdviceRequest")

    paid = s.PayAccountRequest(
        **c.header(),
        reqAmt=c.money("50.00"),
        payAccount=c.t(REVENUE, "DebtRecovery", idMethod=c.meter("14339800360")),
    )
    assert paid.payAccReceipt.transactions.tx[0].balance.value == Decimal("70.00")
    done.add("PayAccountRequest")

    statement = s.VendorStatementRequest(**c.header())
    assert statement.statement.accBal.value == Decimal("885.00")
    assert statement.statement.lineItem[0].amt.value == Decimal("-115.00")
    done.add("VendorStatementRequest")

    total = c.derived(
        "TotalBatchRequest", REVENUE, "totalBatchReq", "TotalAllBatchesReq"
    )
    assert [type(b).__name__ for b in total.totalBatch] == [
        "BankBatch",
        "SalesBatch",
        "ShiftBatch",
    ]
    assert total.totalBatch[0].batchTot.value == Decimal("115.00")
    done.add("TotalBatchRequest")

    ended = c.derived("EndBatchRequest", REVENUE, "endBatchReq", "EndShiftBatchReq")
    assert type(ended.endBatch).__name__ == "ShiftBatch"
    assert server.backend.batches["shift"] == "closed"
    done.add("EndBatchRequest")

    assert done == {op.name for op in x.OPERATIONS}


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_faults_through_zeep(server, client, version):
    server.backend = FakeBackend(float_balance="10.00")
    c = Calls(client, version)
    s = c.service
    fault_element = client.get_element(f"{{{BASE}}}xmlvendFaultResp")

    with pytest.raises(Fault) as unknown:
        s.ConfirmMeterRequest(**c.header(), idMethod=c.meter("55555555555"))
    assert unknown.value.code.endswith("Server" if version == "1.1" else "Receiver")
    detail = fault_element.parse(unknown.value.detail[0], client.wsdl.types)
    assert type(detail.fault).__name__ == "UnknownMeterEx"
    assert detail.fault.desc == "Meter 55555555555 is not registered"
    assert (detail.custMsg, detail.terminalID.id) == ("Meter not found", "T-ZEEP")

    with pytest.raises(Fault) as credit:
        s.CreditVendRequest(
            **c.header(),
            resource=c.t(BASE, "Electricity"),
            idMethod=c.meter("14339800360"),
            purchaseValue=c.t(REVENUE, "PurchaseValueCurrency", amt=c.money("115.00")),
        )
    detail = fault_element.parse(credit.value.detail[0], client.wsdl.types)
    assert type(detail.fault).__name__ == "VendorCreditEx"

    with pytest.raises(Fault) as last:
        c.derived(
            "AdviceRequest",
            BASE,
            "adviceReq",
            "LastRespAdviceReq",
            adviceReqMsgID=c.t(
                BASE, "MsgID", dateTime="20260301000000", uniqueNumber="77"
            ),
        )
    assert last.value.code.endswith("Client" if version == "1.1" else "Sender")
    detail = fault_element.parse(last.value.detail[0], client.wsdl.types)
    assert type(detail.fault).__name__ == "LastResponseEx"

    # zeep's plain call of an operation whose request type is abstract sends
    # no xsi:type: the server cannot tell a last response from a reversal.
    with pytest.raises(Fault) as ambiguous:
        s.AdviceRequest(
            **c.header(),
            adviceReqMsgID=c.t(
                BASE, "MsgID", dateTime="20260301000000", uniqueNumber="1"
            ),
        )
    assert "xsi:type is needed" in ambiguous.value.message
