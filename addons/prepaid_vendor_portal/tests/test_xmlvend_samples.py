"""The wire samples (tests/data/xmlvend, sources in its README): every request
reads as the right typed request, every response is readable, and what we
write back from it validates against our schema."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from trytond.modules.prepaid_vendor_portal import xmlvend as x

DATA = Path(__file__).parent / "data" / "xmlvend"
SAMPLES = sorted(p.name for p in DATA.glob("*.xml"))
REQUESTS = [name for name in SAMPLES if "Req-" in name]
RESPONSES = [name for name in SAMPLES if name not in REQUESTS]
SAST = timezone(timedelta(hours=2))


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def request(name: str) -> x.BaseReq:
    parsed = x.read_request(read(name), "text/xml")
    assert parsed.version is x.SoapVersion.SOAP11
    return parsed.message


def test_every_sample_is_covered():
    assert len(REQUESTS) == 8 and len(RESPONSES) == 12
    tested = {name for name in REQUESTS if f'"{name}"' in Path(__file__).read_text()}
    assert tested == set(REQUESTS)


HEXING_CLIENT = x.EANDeviceID(ean="6009990000012")
CASHIER = x.AuthCred(op_name="CASHIER7", password="pass-7")


def test_confirm_customer_request():
    req = request("confirmCustomerReq-hexing-style-1.xml")
    assert req == x.ConfirmCustomerReq(
        client_id=HEXING_CLIENT,
        terminal_id=x.GenericDeviceID(id="000771"),
        msg_id=x.MsgID(date_time="20260301101500", unique_number="000417"),
        auth_cred=CASHIER,
        id_method=x.VendIDMethod(meter_identifier=x.MeterNumber(msno="37112345678")),
    )
    assert req.msg_id.key == "20260301101500:417"
    assert req.msg_id.timestamp == datetime(2026, 3, 1, 10, 15)


def test_confirm_meter_request_from_zeep_style_client():
    req = request("confirmMeterReq-eskom-ovs-mock-1.xml")
    assert req == x.ConfirmMeterReq(
        client_id=x.GenericDeviceID(id="6004708001981"),
        terminal_id=x.GenericDeviceID(id="0000000000001"),
        msg_id=x.MsgID(date_time="22222222222222222", unique_number="2222222"),
        id_method=x.VendIDMethod(meter_identifier=x.MeterNumber(msno="01234567890")),
    )
    assert req.auth_cred is None
    assert req.msg_id.timestamp is None  # 17 digits, but not a date: still accepted


def _vend_fields(unique: str, date_time: str) -> dict:
    return dict(
        client_id=HEXING_CLIENT,
        terminal_id=x.GenericDeviceID(id="6009990000012"),
        msg_id=x.MsgID(date_time=date_time, unique_number=unique),
        auth_cred=CASHIER,
        id_method=x.VendIDMethod(meter_identifier=x.MeterNumber(msno="37112345678")),
    )


def test_credit_vend_request():
    req = request("creditVendReq-hexing-style-1.xml")
    assert req == x.CreditVendReq(
        **_vend_fields("5120", "202603011016307"),
        resource=x.Electricity(),
        purchase_value=x.PurchaseValueCurrency(
            amt=x.Currency(value=Decimal("115.00"), symbol="AZM")
        ),
    )
    assert req.msg_id.timestamp == datetime(2026, 3, 1, 10, 16, 30)
    assert req.idempotency_key == "ean:6009990000012/202603011016307:5120"


def test_trial_credit_vend_request():
    req = request("trialCreditVendReq-hexing-style-1.xml")
    assert type(req) is x.TrialCreditVendReq
    assert req.msg_id == x.MsgID(date_time="02603011016307", unique_number="5119")
    assert req.purchase_value.amt.value == Decimal("115.00")


def test_fbe_request_without_resource_is_for_electricity():
    req = request("fbeReq-hexing-style-1.xml")
    assert req == x.FBEReq(
        **_vend_fields("5121", "02603011017107"), resource=x.Electricity()
    )


def test_last_response_advice_request():
    req = request("lastRespAdviceReq-hexing-style-1.xml")
    assert type(req) is x.LastRespAdviceReq
    assert req.msg_id == x.MsgID(date_time="202603011018001", unique_number="5122")
    vend = request("creditVendReq-hexing-style-1.xml")
    assert req.advice_req_msg_id == vend.msg_id


def test_login_request():
    req = request("loginReq-hexing-style-1.xml")
    assert req == x.LoginReq(
        client_id=HEXING_CLIENT,
        terminal_id=x.GenericDeviceID(id="000771"),
        msg_id=x.MsgID(date_time="20260301080000", unique_number="000001"),
        auth_cred=CASHIER,
    )


def test_reprint_request():
    req = request("reprintReq-hexing-style-1.xml")
    assert type(req) is x.ReprintReq
    assert req.terminal_id == x.GenericDeviceID(id="T2026,03")
    assert req.id_method.msno == "37112345678"


# ------------------------------------------------------------------ responses
@pytest.mark.parametrize("name", RESPONSES)
def test_response_is_readable_and_written_back_valid(name):
    reply = x.read_response(read(name))
    if isinstance(reply, x.ResponseFault):
        if reply.detail is None:
            return  # checked below
        reply = reply.detail
    stored = x.encode_payload(reply)
    x.xml_schema().assertValid(etree.fromstring(stored))
    assert x.decode_payload(stored) == reply
    assert x.encode_payload(x.decode_payload(stored)) == stored


def test_credit_vend_responses():
    one = x.read_response(read("creditVendResp-hexing-style-1.xml"))
    assert type(one) is x.CreditVendResp
    assert one.utility.address == ""  # " " on the wire
    assert one.client_status.avail_credit == x.Currency(
        value=Decimal("-1115.00"), symbol="R"
    )
    (tx,) = one.credit_vend_receipt.transactions.tx
    assert tx.credit_token_issue.token == x.STS1Token(sts_cipher="31415926535897932384")
    assert tx.credit_token_issue.units == x.Units(value=Decimal("62.5"), si_unit="kWh")
    assert tx.tax == (
        x.VAT(
            amt=x.Currency(value=Decimal("15.00"), symbol="R"), rate=Decimal("0.1500")
        ),
    )

    two = x.read_response(read("creditVendResp-hexing-style-2.xml"))
    sale, fee = two.credit_vend_receipt.transactions.tx
    assert type(fee) is x.ServiceChrgTx and fee.amt.value == Decimal("35.00")
    assert fee.acc_desc == "ServiceFee" and fee.receipt_no is None

    three = x.read_response(read("creditVendResp-hexing-style-3.xml"))
    fbe, sale = three.credit_vend_receipt.transactions.tx
    assert type(fbe.credit_token_issue) is x.FBECredTokenIssue
    assert fbe.credit_token_issue.units.value == Decimal("50.0")
    kct = sale.kc_token_issue
    assert kct.token == x.KCToken(
        set_1st_meter_key=x.STS1Token(sts_cipher="17320508075688772935"),
        set_2nd_meter_key=x.STS1Token(sts_cipher="22360679774997896964"),
    )
    assert (kct.kct_data.from_krn, kct.kct_data.to_krn) == (1, 2)


def test_other_responses():
    customer = x.read_response(read("confirmCustomerResp-hexing-style-1.xml"))
    (result,) = customer.confirm_cust_result
    assert customer.disp_header == ""
    assert result.cust_vend_config.fbe_due is True
    assert result.meter_detail.krn == 2  # vendor-specific children ignored

    meter = x.read_response(read("confirmMeterResp-eskom-ovs-mock-1.xml"))
    detail = meter.confirm_meter_result.meter_detail
    assert type(detail) is x.ExtMeterDetail and detail.sgc == "100836"
    assert meter.resp_date_time == datetime(2025, 7, 10, 2, 39, 6, 951608)

    trial = x.read_response(read("trialCreditVendResp-hexing-style-1.xml"))
    assert type(trial) is x.TrialCreditVendResp
    token = trial.credit_vend_receipt.transactions.tx[0].credit_token_issue.token
    assert token.sts_cipher == "0" * 20

    advice = x.read_response(read("lastRespAdviceResp-hexing-style-1.xml"))
    original = x.read_response(read("creditVendResp-hexing-style-1.xml"))
    assert type(advice) is x.LastRespAdviceResp
    assert advice.last_response == original

    reprint = x.read_response(read("reprintResp-hexing-style-1.xml"))
    assert [r.credit_vend_receipt.receipt_no for r in reprint.reprint] == [
        "000000000000250",
        "000000000000310",
    ]

    user = x.read_response(read("loginResp-hexing-style-1.xml"))
    assert user == x.LoginUser(
        id=71,
        tid=771,
        cdu_id=12,
        cdu_name="Corner Spaza 12",
        cdu_balance=Decimal("4250.75"),
        min_vend_amt=Decimal("10.00"),
        max_vend_amt=Decimal("2000.00"),
        login_time=datetime(2026, 3, 1, 8, 0, 1, tzinfo=SAST),
    )


def test_fault_responses():
    eskom = x.read_response(read("fault-UnknownMeterEx-eskom-ovs-mock-1.xml"))
    assert (eskom.code, eskom.reason) == (
        "Server",
        "010038 Meter information not found",
    )
    assert isinstance(eskom.fault, x.UnknownMeterEx.wire)
    assert eskom.detail.cust_msg == "Meter not found.Contact Eskom to register meter"

    hexing = x.read_response(read("fault-SystemEx-hexing-style-1.xml"))
    assert hexing.detail is None  # no header in Hexing's detail
    assert isinstance(hexing.fault, x.SystemEx.wire)
    assert hexing.fault.fault_code == "VD.90000001"

    bare = x.read_response(read("fault-soapClient-eskom-ovs-mock-1.xml"))
    assert bare == x.ResponseFault("Client", "Invalid meter number format", None, None)
