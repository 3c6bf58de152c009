"""The sans-io service: every operation answered against our schema, faults
with the standard header, no stack trace, idempotent replays byte for byte,
redaction for the dispute log, and the published schema files."""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal

import pytest
from lxml import etree
from trytond.modules.prepaid_vendor_portal import xmlvend as x
from trytond.modules.prepaid_vendor_portal.xmlvend import schema

from . import xmlvend_fake as fake
from .xmlvend_fake import CONTENT_TYPES, FakeBackend, by_msno, credit_vend, header, soap

SOAP_NS = {"1.1": fake.SOAP11, "1.2": fake.SOAP12}


def call(backend, message, version="1.1", action=None) -> x.Exchange:
    return x.process(soap(message, version), CONTENT_TYPES[version], action, backend)


def payload(body: bytes) -> etree._Element:
    "The Body's element of a SOAP message (or the Fault's detail element)"
    root = etree.fromstring(body)
    element = root[0][0]
    if etree.QName(element).localname == "Fault":
        detail = element.find("detail")
        if detail is None:
            detail = element.find(f"{{{fake.SOAP12}}}Detail")
        return detail[0]
    return element


def every_operation() -> list[x.BaseReq]:
    "One request per route, in an order that makes each succeed"
    vend = credit_vend()
    return [
        x.LoginReq(**header()),
        x.StartAllBatchesReq(**header()),
        x.ConfirmCustomerReq(**header(), id_method=by_msno("14339800360")),
        x.ConfirmCustomerReq(
            **header(),
            id_method=x.CustIDMethod(
                cust_identifier=x.CustAccountNo(acc_no="ACC00360")
            ),
        ),
        x.ConfirmMeterReq(**header(), id_method=by_msno("01234567890")),
        x.TrialCreditVendReq(
            **header(),
            id_method=by_msno("14339800360"),
            purchase_value=x.PurchaseValueUnits(
                units=x.Units(value=Decimal("20"), si_unit="KWH")
            ),
        ),
        vend,
        credit_vend("47500000019", "50.00"),
        x.FBEReq(**header(), id_method=by_msno("14339800360")),
        x.ReprintReq(**header(), id_method=by_msno("14339800360")),
        x.LastRespAdviceReq(**header(), advice_req_msg_id=vend.msg_id),
        x.ConfirmationAdviceReq(
            **header(),
            advice_req_msg_id=vend.msg_id,
            pay_type=x.Cash(tender_amt=fake.currency("120.00")),
        ),
        x.ReversalAdviceReq(**header(), advice_req_msg_id=vend.msg_id),
        x.PayAccReq(
            **header(),
            req_amt=fake.currency("50.00"),
            pay_type=x.Unknown(),
            pay_account=x.DebtRecovery(
                desc="Arrears", id_method=by_msno("14339800360")
            ),
        ),
        x.VendorStatementReq(**header()),
        x.TotalShiftBatchReq(**header()),
        x.TotalAllBatchesReq(**header()),
        x.EndShiftBatchReq(**header()),
        x.StartShiftBatchReq(**header()),
        x.EndSalesBatchReq(**header()),
        x.StartSalesBatchReq(**header()),
        x.EndBankBatchReq(**header()),
        x.StartBankBatchReq(**header()),
        x.EndAllBatchesReq(**header()),
    ]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_every_operation_answers_valid_xml(version):
    backend = FakeBackend()
    validator = x.xml_schema()
    routes_seen = set()
    for message in every_operation():
        exchange = call(backend, message, version)
        assert exchange.fault is None, (type(message).__name__, exchange.fault)
        assert exchange.status == 200
        assert exchange.content_type == x.SoapVersion(version).content_type
        root = etree.fromstring(exchange.body)
        assert etree.QName(root).namespace == SOAP_NS[version]
        element = payload(exchange.body)
        validator.assertValid(element)
        assert x.read_response(exchange.body) == exchange.response
        route = x.OPERATIONS[
            [op.name for op in x.OPERATIONS].index(exchange.operation)
        ].route(message)
        routes_seen.add(route.method)
    assert routes_seen == {route.method for op in x.OPERATIONS for route in op.routes}


def test_response_header_answers_the_request():
    backend = FakeBackend()
    message = credit_vend(
        msg_id=x.MsgID(date_time="202603011030001", unique_number="007")
    )
    element = payload(call(backend, message).body)
    b = "{http://www.nrs.eskom.co.za/xmlvend/base/2.1/schema}"
    assert etree.QName(element).localname == "creditVendResp"
    assert element.find(f"{b}reqMsgID").attrib == {
        "dateTime": "202603011030001",
        "uniqueNumber": "007",
    }
    assert element.find(f"{b}respDateTime").text == "2026-03-01T10:30:00.000Z"
    names = [etree.QName(child).localname for child in element]
    assert names == [
        "clientID", "serverID", "terminalID", "reqMsgID", "respDateTime",
        "dispHeader", "clientStatus", "utility", "vendor", "custVendDetail",
        "creditVendReceipt",
    ]  # fmt: skip


def test_remote_credit_for_a_smart_meter_has_no_token():
    exchange = call(FakeBackend(), credit_vend("47500000019", "50.00"))
    issue = exchange.response.credit_vend_receipt.transactions.tx[0].credit_token_issue
    assert issue.token is None and issue.units.value > 0
    assert b"stsCipher" not in exchange.body
    x.xml_schema().assertValid(payload(exchange.body))


@pytest.mark.parametrize(
    "action", [None, "", '"CreditVendRequest"', "Wrong", "urn:x/Login"]
)
def test_soap_action_does_not_matter(action):
    backend = FakeBackend()
    message = credit_vend()
    exchange = call(backend, message, action=action)
    assert exchange.operation == "CreditVendRequest"
    assert [name for name, _ in backend.calls] == ["credit_vend"]


# -------------------------------------------------------------------- faults
def fault_parts(exchange: x.Exchange):
    reply = x.read_response(exchange.body)
    assert isinstance(reply, x.ResponseFault)
    return reply


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_business_fault_carries_the_header_and_the_fault_type(version):
    message = x.ConfirmMeterReq(**header(), id_method=by_msno("55555555555"))
    exchange = call(FakeBackend(), message, version)
    assert exchange.status == 500
    assert isinstance(exchange.fault, x.UnknownMeterEx)
    reply = fault_parts(exchange)
    assert reply.code == ("Server" if version == "1.1" else "Receiver")
    assert reply.reason == "Meter 55555555555 is not registered"
    detail = reply.detail
    assert isinstance(detail.fault, x.UnknownMeterEx.wire)
    assert detail.cust_msg == "Meter not found"
    assert (detail.client_id, detail.terminal_id, detail.req_msg_id) == (
        message.client_id,
        message.terminal_id,
        message.msg_id,
    )
    assert detail.server_id == fake.SERVER_ID
    x.xml_schema().assertValid(payload(exchange.body))
    assert b'xsi:type="b:UnknownMeterEx"' in exchange.body


@pytest.mark.parametrize(
    "version, status, code", [("1.1", 500, "Client"), ("1.2", 400, "Sender")]
)
def test_schema_fault_is_a_client_fault_with_header(version, status, code):
    body = soap(credit_vend(), version).replace(b'value="115.00"', b'value="-5"')
    exchange = x.process(body, CONTENT_TYPES[version], None, FakeBackend())
    assert exchange.status == status
    reply = fault_parts(exchange)
    assert reply.code == code
    assert isinstance(reply.fault, x.XMLVendSchemaEx.wire)
    assert "purchase amount must be positive" in reply.fault.desc
    assert reply.detail.req_msg_id is not None


def test_vendor_credit_and_blocked_meter_change_nothing():
    backend = FakeBackend(float_balance="100.00")
    short = call(backend, credit_vend(amount="100.01"))
    assert isinstance(short.fault, x.VendorCreditEx)
    assert fault_parts(short).detail.operator_msg == "Available credit 100.00"
    blocked = call(backend, credit_vend("99000000018", "10"))
    assert isinstance(blocked.fault, x.BlockedMeterEx)
    assert backend.float == Decimal("100.00") and not backend.answers


def test_bad_credentials_are_refused():
    message = credit_vend(auth_cred=x.AuthCred(op_name="OPERATOR1", password="guess"))
    exchange = call(FakeBackend(), message)
    assert isinstance(exchange.fault, x.RequestAuthorisationEx)
    assert b"guess" not in exchange.body


def test_backend_crash_is_a_system_fault_without_a_trace(caplog):
    class Broken(FakeBackend):
        def credit_vend(self, request):
            raise RuntimeError("database password=hunter2 unreachable")

    with caplog.at_level(logging.ERROR):
        exchange = call(Broken(), credit_vend())
    assert exchange.status == 500 and isinstance(exchange.fault, x.SystemEx)
    reply = fault_parts(exchange)
    assert reply.code == "Server"
    assert reply.fault.desc.startswith(
        "The server could not process the request (reference "
    )
    for leak in (b"hunter2", b"RuntimeError", b"Traceback", b".py"):
        assert leak not in exchange.body
    reference = reply.fault.desc.rsplit(" ", 1)[1].rstrip(")")
    assert reference in caplog.text and "hunter2" in caplog.text  # the log has it


@pytest.mark.parametrize(
    "wrong",
    [
        lambda resp: replace(
            resp, req_msg_id=x.MsgID(date_time="20260301103000", unique_number="999")
        ),
        lambda resp: replace(resp, client_id=x.GenericDeviceID(id="someone-else")),
        lambda resp: x.TrialCreditVendResp(
            **{f: getattr(resp, f) for f in resp.__dataclass_fields__}
        ),
        lambda resp: replace(resp, disp_header="x" * 501),
    ],
)
def test_backend_answer_that_does_not_fit_is_a_system_fault(wrong):
    class Confused(FakeBackend):
        def credit_vend(self, request):
            return wrong(super().credit_vend(request))

    exchange = call(Confused(), credit_vend())
    assert isinstance(exchange.fault, x.SystemEx)
    x.xml_schema().assertValid(payload(exchange.body))


def test_unknown_operation_with_header_is_use_case_support_fault():
    body = soap(credit_vend()).replace(b"creditVendReq", b"cancelVendReq")
    exchange = x.process(body, "text/xml", None, FakeBackend())
    assert isinstance(exchange.fault, x.UseCaseSupportEx)
    assert exchange.operation == "cancelVendReq" and exchange.status == 500
    assert fault_parts(exchange).detail.client_id == fake.CLIENT


# ---------------------------------------------------------------- idempotency
def test_same_msg_id_same_request_gets_the_same_bytes_and_is_charged_once():
    backend = FakeBackend()
    message = credit_vend()
    first = call(backend, message)
    again = call(backend, message)
    padded = call(
        backend,
        replace(
            message,
            msg_id=replace(
                message.msg_id, unique_number="000" + message.msg_id.unique_number
            ),
            auth_cred=x.AuthCred(op_name="OPERATOR2", password="secret-2"),
        ),
    )
    assert first.body == again.body == padded.body
    assert backend.float == Decimal("1000.00") - Decimal("115.00")


def test_same_msg_id_for_another_request_is_refused():
    backend = FakeBackend()
    message = credit_vend()
    call(backend, message)
    other = call(backend, replace(message, id_method=by_msno("01234567890")))
    assert isinstance(other.fault, x.DuplicateMsgID)
    assert b'xsi:type="b:XMLVendFaultEx"' in other.body
    assert fault_parts(other).code == "Client"
    assert backend.float == Decimal("885.00")


def test_stored_answer_replays_byte_for_byte():
    exchange = call(FakeBackend(), credit_vend())
    stored = x.encode_payload(exchange.response)
    replayed = x.render_response(
        x.decode_payload(stored), x.OPERATIONS[3], x.SoapVersion.SOAP11
    )
    assert x.OPERATIONS[3].name == "CreditVendRequest"
    assert replayed == exchange.body


def test_last_response_advice():
    backend = FakeBackend()
    vend = credit_vend()
    original = call(backend, vend)
    advice = call(
        backend, x.LastRespAdviceReq(**header(), advice_req_msg_id=vend.msg_id)
    )
    assert advice.response.last_response == original.response
    assert payload(original.body).find(".//{*}stsCipher").text in advice.body.decode()
    missing = call(
        backend,
        x.LastRespAdviceReq(
            **header(),
            advice_req_msg_id=x.MsgID(date_time="20260301103000", unique_number="9"),
        ),
    )
    assert isinstance(missing.fault, x.LastResponseEx)
    assert fault_parts(missing).code == "Client"


def test_reversal_policy_token_stays_remote_credit_is_reversed_once():
    backend = FakeBackend()
    token_vend, remote = credit_vend(), credit_vend("47500000019", "50.00")
    call(backend, token_vend)
    call(backend, remote)
    assert backend.float == Decimal("835.00")

    def reverse(message):
        return call(
            backend, x.ReversalAdviceReq(**header(), advice_req_msg_id=message.msg_id)
        )

    assert reverse(token_vend).response.tx_reversed is False
    assert reverse(remote).response.tx_reversed is True
    assert reverse(remote).response.tx_reversed is False
    assert backend.float == Decimal("885.00")


# ------------------------------------------------------------------ redaction
def test_redaction_masks_credentials_cards_and_key_change_tokens():
    card = x.CreditCard(
        card_amt=fake.currency("10"),
        acc_holder_name="A",
        pan="4111111111111111",
        exp_date="12/29",
        cv_num="123",
        clearing_house="X",
    )
    message = replace(
        credit_vend(),
        auth_cred=x.AuthCred(
            op_name="OPERATOR1", password="secret-1", new_password="n3w"
        ),
        pay_type=card,
    )
    redacted = x.redact(soap(message))
    for secret in (b"secret-1", b"n3w", b"4111111111111111", b"12/29", b">123<"):
        assert secret not in redacted
    assert b"****1111" in redacted and b"OPERATOR1" in redacted
    assert x.read_request(redacted).message.auth_cred.password == "****"

    kct = x.KCTokenIssue(
        desc="Key change",
        meter_detail=fake.METERS["14339800360"],
        token=x.KCToken(
            set_1st_meter_key=x.STS1Token(sts_cipher="1" * 20),
            set_2nd_meter_key=x.STS1Token(sts_cipher="2" * 20),
        ),
        kct_data=x.KCTData(
            from_sgc="600727",
            from_krn=1,
            from_ti="01",
            to_sgc="600727",
            to_krn=2,
            to_ti="01",
        ),
    )
    response = call(FakeBackend(), credit_vend()).response
    tx = response.credit_vend_receipt.transactions.tx[0]
    credit_token = tx.credit_token_issue.token.sts_cipher
    with_kct = replace(
        response,
        credit_vend_receipt=replace(
            response.credit_vend_receipt,
            transactions=replace(
                response.credit_vend_receipt.transactions,
                tx=(replace(tx, kc_token_issue=kct),),
            ),
        ),
    )
    redacted = x.redact(x.encode_payload(with_kct))
    assert b"1" * 20 not in redacted and b"2" * 20 not in redacted
    assert credit_token.encode() in redacted  # disputes are about the credit token


def test_redaction_of_a_body_that_cannot_be_parsed():
    hostile = (
        b'<!DOCTYPE x><a><b:password xmlns:b="u">hunter2</b:password>' + b"x" * 10_000
    )
    redacted = x.redact(hostile, keep=200)
    assert b"hunter2" not in redacted and len(redacted) < 400
    assert redacted.startswith(b"<!-- unparsed (document type declarations")


# --------------------------------------------------------------- schema files
def test_schema_files_are_current():
    for name, content in schema.generated_files().items():
        assert schema.schema_file(name) == content, (
            f"{name} is stale: python -m "
            "trytond.modules.prepaid_vendor_portal.xmlvend.generate"
        )


def test_served_wsdl_has_every_operation_both_bindings_and_the_address():
    document = etree.fromstring(x.wsdl_document("https://utility.example/db/xmlvend"))
    wsdl = "{http://schemas.xmlsoap.org/wsdl/}"
    operations = {
        op.get("name")
        for op in document.find(f"{wsdl}portType").iter(f"{wsdl}operation")
    }
    assert operations == {op.name for op in x.OPERATIONS}
    addresses = [a.get("location") for a in document.iter("{*}address")]
    assert addresses == ["https://utility.example/db/xmlvend"] * 2
    inline = document.find(f"{wsdl}types")
    assert len(inline) == 3 and all(s.get("targetNamespace") for s in inline)
    for schema_node in inline:
        for imported in schema_node.iter("{http://www.w3.org/2001/XMLSchema}import"):
            assert imported.get("schemaLocation") is None  # nothing else to fetch


def test_core_imports_nothing_from_trytond():
    # trytond.modules itself (the package path) loads a few trytond modules;
    # the core must add none but its own.
    code = (
        "import sys, trytond.modules; before = set(sys.modules); "
        "from trytond.modules.prepaid_vendor_portal import xmlvend; "
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('trytond') "
        "and not m.startswith('trytond.modules.prepaid_vendor_portal')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
