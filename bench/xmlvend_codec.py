"""Cost of the XMLVend 2.1 codec per message (prints medians, no asserts).

Parsing a credit vend request (hardened parse, envelope, typed request),
rendering its response, the whole sans-io ``handle()`` with a backend that
answers at once, storing and replaying a response, redaction, the request
fingerprint that tells a retry from a reused msgID, and refusing hostile
bodies.  Compared with a bare ``lxml.etree.fromstring`` of the same
bytes, so the binding's own cost shows as a ratio.

Run: .venv/bin/python bench/xmlvend_codec.py
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from lxml import etree
from timing import per_call_us
from trytond.modules.prepaid_vendor_portal import xmlvend as x

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SERVER = x.EANDeviceID(ean="6009876543210")
NOW = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)

REQUEST = x.CreditVendReq(
    client_id=x.EANDeviceID(ean="6009990000012"),
    terminal_id=x.GenericDeviceID(id="T-001"),
    msg_id=x.MsgID(date_time="20260301103000", unique_number="42"),
    auth_cred=x.AuthCred(op_name="OPERATOR1", password="secret-1"),
    id_method=x.VendIDMethod(meter_identifier=x.MeterNumber(msno="14339800360")),
    purchase_value=x.PurchaseValueCurrency(
        amt=x.Currency(value=Decimal("115.00"), symbol="R")
    ),
)
BODY = (
    f'<soapenv:Envelope xmlns:soapenv="{SOAP11}"><soapenv:Body>'.encode()
    + x.encode_request(REQUEST)
    + b"</soapenv:Body></soapenv:Envelope>"
)


def money(value: str) -> x.Currency:
    return x.Currency(value=Decimal(value), symbol="R")


METER = x.MeterDetail(
    meter_type=x.MeterType(at="07", tt="02"),
    msno="14339800360",
    sgc="600727",
    krn=1,
    ti="01",
)
RESPONSE = x.CreditVendResp(
    **x.reply_header(REQUEST, SERVER, NOW),
    disp_header="CREDIT VEND - TAX INVOICE",
    client_status=x.ClientStatus(avail_credit=money("885.00")),
    utility=x.UtilityDetail(name="Demo Utility", address="1 Grid Street"),
    vendor=x.VendorDetail(name="Demo Vendor", address="2 Shop Road"),
    cust_vend_detail=x.CustVendDetail(name="A. Customer", address="1 Main Road"),
    credit_vend_receipt=x.CreditVendReceipt(
        receipt_no="1001",
        transactions=x.Transactions(
            tx=(
                x.CreditVendTx(
                    amt=money("100.00"),
                    tax=(x.VAT(amt=money("15.00"), rate=Decimal("0.15")),),
                    receipt_no="1001",
                    credit_token_issue=x.SaleCredTokenIssue(
                        desc="Credit token",
                        meter_detail=METER,
                        token=x.STS1Token(sts_cipher="31415926535897932384"),
                        units=x.Units(value=Decimal("62.5"), si_unit="kWh"),
                        resource=x.Electricity(),
                    ),
                    tariff=x.Tariff(name="Domestic"),
                ),
            ),
            tender_amt=money("115.00"),
            change=money("0.00"),
        ),
    ),
)
OPERATION = next(op for op in x.OPERATIONS if op.name == "CreditVendRequest")


class Instant:
    server_id = SERVER

    def credit_vend(self, request: x.CreditVendReq) -> x.CreditVendResp:
        return RESPONSE


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol">'
    + b"".join(
        b'<!ENTITY a%d "%s">' % (i, (b"&a%d;" % (i - 1) if i > 1 else b"&a;") * 10)
        for i in range(1, 10)
    )
    + b"]>"
    + BODY.replace(b"OPERATOR1", b"&a9;")
)
LARGEST = BODY.replace(
    b"</b:authCred>",
    b"</b:authCred>"
    + b'<e:pad xmlns:e="urn:pad">'
    + b"p" * (x.REQUEST_LIMITS.max_body - len(BODY) - 60)
    + b"</e:pad>",
)


def main() -> None:
    stored = x.encode_payload(RESPONSE)
    rendered = x.render_response(RESPONSE, OPERATION, x.SoapVersion.SOAP11)
    assert x.read_request(BODY).message == REQUEST
    assert len(LARGEST) <= x.REQUEST_LIMITS.max_body
    status = x.handle(LAUGHS, "text/xml", None, Instant())[0]
    assert status == 500
    rows = [
        ("lxml.etree.fromstring only", lambda: etree.fromstring(BODY), 2000),
        ("parse credit vend request", lambda: x.read_request(BODY, "text/xml"), 2000),
        (
            "render credit vend response",
            lambda: x.render_response(RESPONSE, OPERATION, x.SoapVersion.SOAP11),
            2000,
        ),
        (
            "handle(): parse + dispatch + render",
            lambda: x.handle(BODY, "text/xml", "CreditVendRequest", Instant()),
            1000,
        ),
        ("store response (encode_payload)", lambda: x.encode_payload(RESPONSE), 2000),
        ("replay stored response (decode)", lambda: x.decode_payload(stored), 2000),
        ("redact request for the log", lambda: x.redact(BODY), 2000),
        (
            "request fingerprint (idempotency)",
            lambda: x.request_fingerprint(REQUEST),
            2000,
        ),  # fmt: skip
        (
            "refuse billion laughs",
            lambda: x.handle(LAUGHS, "text/xml", None, Instant()),
            2000,
        ),
        (
            f"parse a {len(LARGEST) // 1024} KiB request (the limit)",
            lambda: x.read_request(LARGEST, "text/xml"),
            200,
        ),
    ]
    print(f"request {len(BODY)} bytes, response {len(rendered)} bytes")
    results = {}
    for name, func, calls in rows:
        results[name] = per_call_us(func, calls)
        print(f"{name:40} median {results[name]:9.1f} us/message")
    parse = results["parse credit vend request"]
    ratio = parse / results["lxml.etree.fromstring only"]
    print(f"parse / bare lxml parse ratio   {ratio:.1f}")
    both = parse + results["render credit vend response"]
    print(
        f"parse + render                  {both:.1f} us ({1e6 / both:,.0f} messages/s)"
    )


if __name__ == "__main__":
    main()
