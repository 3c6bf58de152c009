"""The sans-io service: every operation answered against our schema, faults
with the standard header, no stack trace, idempotent replays byte for byte,
redaction for the dispute log, and the published schema files."""

from __future__ import annotations

import logging
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


class Refusing:
    "A backend whose credit vend raises the fault it is given"

    server_id = fake.SERVER_ID

    def __init__(self, fault: x.XMLVendError):
        self.fault = fault

    def credit_vend(self, request):
        raise self.fault


FAULT_CLASSES = sorted({*x.FAULTS.values(), x.DuplicateMsgID}, key=lambda c: c.__name__)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("cls", FAULT_CLASSES, ids=lambda c: c.__name__)
def test_every_fault_maps_to_its_soap_code_status_and_wire_type(cls, version):
    fault = cls("Refused: why", operator_msg="Tell the operator", cust_msg="Sorry")
    message = credit_vend()
    exchange = call(Refusing(fault), message, version)
    assert exchange.fault is fault and exchange.response is None
    client = issubclass(cls, x.XMLVendFaultEx)
    soap_code = {("1.1", True): "Client", ("1.1", False): "Server",
                 ("1.2", True): "Sender", ("1.2", False): "Receiver"}  # fmt: skip
    assert exchange.status == (400 if client and version == "1.2" else 500)
    reply = fault_parts(exchange)
    assert reply.code == soap_code[version, client]
    assert reply.reason == "Refused: why"
    # DuplicateMsgID goes as a plain XMLVendFaultEx: standard clients know it.
    wire = "XMLVendFaultEx" if cls is x.DuplicateMsgID else cls.__name__
    assert f'xsi:type="b:{wire}"'.encode() in exchange.body
    assert type(reply.fault) is x.FAULTS.get(wire, cls).wire
    detail = reply.detail
    assert (detail.client_id, detail.terminal_id, detail.req_msg_id) == (
        message.client_id, message.terminal_id, message.msg_id)  # fmt: skip
    assert (detail.operator_msg, detail.cust_msg) == ("Tell the operator", "Sorry")
    x.xml_schema().assertValid(payload(exchange.body))
    assert b"secret-1" not in exchange.body  # credentials are never echoed


# ------------------------------------------------ backend contract examples
# The in-memory backend (xmlvend_fake.py) shows what the Tryton layer must do.
# These tests check what the core does with its answers (the round trip
# through SOAP), not the fake's own bookkeeping.
def test_contract_example_business_faults_round_trip():
    backend = FakeBackend(float_balance="100.00")
    short = call(backend, credit_vend(amount="100.01"))
    assert isinstance(short.fault, x.VendorCreditEx)
    assert fault_parts(short).detail.operator_msg == "Available credit 100.00"
    blocked = call(backend, credit_vend("99000000018", "10"))
    assert isinstance(blocked.fault, x.BlockedMeterEx)
    assert isinstance(fault_parts(blocked).fault, x.BlockedMeterEx.wire)


def test_contract_example_bad_credentials():
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


def test_a_request_to_run_again_is_no_server_error(caplog):
    "A serialisation failure the transport retries is logged as routine"

    class Busy(FakeBackend):
        def credit_vend(self, request):
            raise x.RunAgain()

    with caplog.at_level(logging.INFO):
        exchange = call(Busy(), credit_vend())
    assert exchange.status == 500 and isinstance(exchange.fault, x.SystemEx)
    assert "try again" in exchange.fault.desc
    assert "to run again" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


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
def test_request_fingerprint_ignores_what_a_retry_may_write_differently():
    message = credit_vend(amount="115.00")
    same = [
        replace(message, auth_cred=x.AuthCred(op_name="OPERATOR2", password="x")),
        replace(message, auth_cred=None),
        replace(message, msg_id=replace(message.msg_id, unique_number="000" +
                                        message.msg_id.unique_number)),
    ]  # fmt: skip
    for written, symbol in (("115", "R"), ("115.0", None), ("115.000", "ZAR")):
        amount = x.Currency(value=Decimal(written), symbol=symbol)
        same.append(
            replace(message, purchase_value=x.PurchaseValueCurrency(amt=amount))
        )
    fingerprint = x.request_fingerprint(message)
    assert all(x.request_fingerprint(other) == fingerprint for other in same)
    # As a till re-serialising it on the wire would send it.
    body = soap(message).replace(b'value="115.00" symbol="R"', b'value="115"')
    assert b'value="115"' in body
    assert x.request_fingerprint(x.read_request(body).message) == fingerprint


def test_request_fingerprint_tells_other_requests_apart():
    message = credit_vend(amount="115.00")
    others = [
        replace(message, id_method=by_msno("01234567890")),
        replace(message, purchase_value=x.PurchaseValueCurrency(
            amt=fake.currency("115.01"))),
        replace(message, terminal_id=x.GenericDeviceID(id="T-002")),
        replace(message, pay_type=x.Cash(tender_amt=fake.currency("120.00"))),
        replace(message, msg_id=replace(message.msg_id, unique_number="999")),
        x.TrialCreditVendReq(**{f: getattr(message, f)
                                for f in message.__dataclass_fields__}),
    ]  # fmt: skip
    fingerprints = {x.request_fingerprint(m) for m in [message, *others]}
    assert len(fingerprints) == len(others) + 1


def test_stored_answer_replays_byte_for_byte():
    exchange = call(FakeBackend(), credit_vend())
    stored = x.encode_payload(exchange.response)
    replayed = x.render_response(
        x.decode_payload(stored), x.OPERATIONS[3], x.SoapVersion.SOAP11
    )
    assert x.OPERATIONS[3].name == "CreditVendRequest"
    assert replayed == exchange.body


def test_contract_example_a_retry_gets_the_stored_answer():
    # The fake keeps answers by idempotency key and fingerprint, as the
    # Tryton layer must: a retry (leading zeros, other credentials) renders
    # byte for byte as the first answer; a reuse gets DuplicateMsgID.
    backend = FakeBackend()
    message = credit_vend()
    first = call(backend, message)
    padded = replace(
        message,
        msg_id=replace(
            message.msg_id, unique_number="000" + message.msg_id.unique_number
        ),
        auth_cred=x.AuthCred(op_name="OPERATOR2", password="secret-2"),
    )
    assert call(backend, message).body == call(backend, padded).body == first.body
    other = call(backend, replace(message, id_method=by_msno("01234567890")))
    assert isinstance(other.fault, x.DuplicateMsgID)


def test_contract_example_last_response_advice():
    backend = FakeBackend()
    vend = credit_vend()
    original = call(backend, vend)
    advice = call(
        backend, x.LastRespAdviceReq(**header(), advice_req_msg_id=vend.msg_id)
    )
    assert advice.response.last_response == original.response
    assert payload(original.body).find(".//{*}stsCipher").text in advice.body.decode()
    x.xml_schema().assertValid(payload(advice.body))
    missing = call(
        backend,
        x.LastRespAdviceReq(
            **header(),
            advice_req_msg_id=x.MsgID(date_time="20260301103000", unique_number="9"),
        ),
    )
    assert isinstance(missing.fault, x.LastResponseEx)
    assert fault_parts(missing).code == "Client"


@pytest.mark.parametrize("reversed_", [True, False])
def test_reversal_advice_answer_round_trips(reversed_):
    class Reversing:
        server_id = fake.SERVER_ID

        def reversal_advice(self, request):
            return x.ReversalAdviceResp(
                **x.reply_header(request, self.server_id, fake.NOW),
                advice_req_msg_id=request.advice_req_msg_id,
                tx_reversed=reversed_,
            )

    advised = x.MsgID(date_time="20260301103000", unique_number="0042")
    exchange = call(
        Reversing(), x.ReversalAdviceReq(**header(), advice_req_msg_id=advised)
    )
    x.xml_schema().assertValid(payload(exchange.body))
    answer = x.read_response(exchange.body)
    assert answer.tx_reversed is reversed_
    assert answer.advice_req_msg_id == advised  # echoed as sent, zeros kept


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


def test_redaction_masks_a_cheque_account_but_not_a_customer_account():
    cheque = x.Cheque(
        cheq_amt=fake.currency("115.00"),
        acc_holder_name="A Holder",
        acc_holder_id_no="8001015009087",
        acc_no="62001234567",
        bank_name="Demo Bank",
        branch_code="250655",
        cheq_no="000123",
        cheq_type="Personal",
        micr="c000123c250655a62001234567c",
    )
    # The secret fields come from the typed model; the module is reachable by
    # its name (the function of the same name once shadowed it).
    assert x.redaction.redact is x.redact
    assert x.redaction.SECRET_WITHIN == {"payType": frozenset({"accNo"})}
    message = replace(credit_vend(), pay_type=cheque)
    redacted = x.redact(soap(message))
    assert b"62001234567" not in redacted and b"c000123c" not in redacted
    assert b"000123" in redacted  # the cheque number is no secret
    assert x.read_request(redacted).message.pay_type.acc_no == "****"
    by_account = x.ConfirmCustomerReq(
        **header(),
        id_method=x.CustIDMethod(cust_identifier=x.CustAccountNo(acc_no="ACC00360")),
    )
    assert b'accNo="ACC00360"' in x.redact(soap(by_account))


UNPARSABLE = {
    "CDATA, then cut": b"<a><password><![CDATA[s3cret]]></password>",
    "comment in the value, bad UTF-8": b"<a><password>s3<!-- -->cret</password>\xff",
    "UTF-16": "<a><password>s3cret</password></a>".encode("utf-16"),
    "DOCTYPE": b'<!DOCTYPE a><a><b:password xmlns:b="u">s3cret</b:password></a>',
    "oversized": b"<a><password>s3cret</password>" + b"x" * (1 << 20) + b"</a>",
    "tag cut by a bad byte": b"<a><pass\xffword>s3cret</password></a>",
}


@pytest.mark.parametrize("body", UNPARSABLE.values(), ids=UNPARSABLE)
def test_a_body_that_cannot_be_parsed_is_not_stored(body):
    redacted = x.redact(body)
    assert b"s3" not in redacted and b"cret" not in redacted
    assert redacted.startswith(b"<!-- not stored: ")
    assert redacted.endswith(f"; {len(body)} bytes -->".encode())


def test_a_parsed_body_is_masked_whatever_the_password_is_written_as():
    for password in (b"<![CDATA[s3cret]]>", b"s3<!-- -->cret", b"s3<x>c</x>ret"):
        body = soap(credit_vend()).replace(b"secret-1", password)
        redacted = x.redact(body)
        assert b"s3" not in redacted and b"ret<" not in redacted, redacted
        assert b"OPERATOR1" in redacted


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
