"""Reading requests: every well-formed variant seen on the wire, and the
accept-or-fault decision on each quirk (docs/xmlvend.md section 5)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from trytond.modules.prepaid_vendor_portal import xmlvend as x

from .xmlvend_fake import envelope

B = "http://www.nrs.eskom.co.za/xmlvend/base/2.1/schema"
R = "http://www.nrs.eskom.co.za/xmlvend/revenue/2.1/schema"
M = "http://www.nrs.eskom.co.za/xmlvend/meter/2.1/schema"
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def vend_xml(
    *,
    date_time: str = "20260301103000",
    unique: str = "42",
    amount: str = "value=\"115.00\" symbol=\"R\"",
    resource: str = '<b:resource xsi:type="b:Electricity"/>',
    purchase: str | None = None,
    id_method: str | None = None,
    extra: str = "",
) -> str:
    "A credit vend request element in the b:/r: prefix style"
    purchase = purchase or (
        f'<r:purchaseValue xsi:type="r:PurchaseValueCurrency"><r:amt {amount}/>'
        "</r:purchaseValue>"
    )
    id_method = id_method or (
        '<b:idMethod xsi:type="b:VendIDMethod">'
        '<b:meterIdentifier xsi:type="b:MeterNumber" msno="14339800360"/></b:idMethod>'
    )
    return (
        f'<r:creditVendReq xmlns:r="{R}" xmlns:b="{B}" {XSI}>'
        '<b:clientID xsi:type="b:EANDeviceID" ean="6009990000012"/>'
        '<b:terminalID xsi:type="b:GenericDeviceID" id="T-001"/>'
        f'<b:msgID dateTime="{date_time}" uniqueNumber="{unique}"/>'
        "<b:authCred><b:opName>OPERATOR1</b:opName><b:password>secret-1</b:password>"
        f"</b:authCred>{resource}{id_method}{purchase}{extra}</r:creditVendReq>"
    )


EXPECTED = x.CreditVendReq(
    client_id=x.EANDeviceID(ean="6009990000012"),
    terminal_id=x.GenericDeviceID(id="T-001"),
    msg_id=x.MsgID(date_time="20260301103000", unique_number="42"),
    auth_cred=x.AuthCred(op_name="OPERATOR1", password="secret-1"),
    resource=x.Electricity(),
    id_method=x.VendIDMethod(meter_identifier=x.MeterNumber(msno="14339800360")),
    purchase_value=x.PurchaseValueCurrency(
        amt=x.Currency(value=Decimal("115.00"), symbol="R")
    ),
)


def read(body: bytes | str, content_type: str = "text/xml") -> x.BaseReq:
    if isinstance(body, str):
        body = body.encode()
    return x.read_request(body, content_type).message


def refused(body: bytes | str, content_type: str = "text/xml") -> x.BadRequest:
    if isinstance(body, str):
        body = body.encode()
    with pytest.raises(x.BadRequest) as info:
        x.read_request(body, content_type)
    return info.value


# ----------------------------------------------------------- prefix styles
STYLES = {
    "b/r prefixes": envelope(vend_xml()),
    "soap 1.2": envelope(vend_xml(), "1.2"),
    "zeep ns0..nsN per element": (
        '<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soap-env:Body><ns0:creditVendReq xmlns:ns0="{R}">'
        f'<ns1:clientID xmlns:ns1="{B}" {XSI} ean="6009990000012" '
        'xsi:type="ns1:EANDeviceID"/>'
        f'<ns2:terminalID xmlns:ns2="{B}" {XSI} id="T-001" '
        'xsi:type="ns2:GenericDeviceID"/>'
        f'<ns3:msgID xmlns:ns3="{B}" dateTime="20260301103000" uniqueNumber="42"/>'
        f'<ns4:authCred xmlns:ns4="{B}"><ns4:opName>OPERATOR1</ns4:opName>'
        "<ns4:password>secret-1</ns4:password></ns4:authCred>"
        f'<ns5:resource xmlns:ns5="{B}" {XSI} xsi:type="ns5:Electricity"/>'
        f'<ns6:idMethod xmlns:ns6="{B}"><ns6:meterIdentifier {XSI} msno="14339800360" '
        'xsi:type="ns6:MeterNumber"/></ns6:idMethod>'
        f'<ns0:purchaseValue {XSI} xsi:type="ns0:PurchaseValueCurrency">'
        '<ns0:amt value="115.00" symbol="R"/></ns0:purchaseValue>'
        "</ns0:creditVendReq></soap-env:Body></soap-env:Envelope>"
    ).encode(),
    "soapui soapenv/sch/base": (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:sch="{R}" xmlns:base="{B}" {XSI}><soapenv:Header/><soapenv:Body>'
        "<sch:creditVendReq>"
        '<base:clientID xsi:type="base:EANDeviceID" ean="6009990000012"/>'
        '<base:terminalID xsi:type="base:GenericDeviceID" id="T-001"/>'
        '<base:msgID dateTime="20260301103000" uniqueNumber="42"/>'
        "<base:authCred><base:opName>OPERATOR1</base:opName>"
        "<base:password>secret-1</base:password></base:authCred>"
        '<base:resource xsi:type="base:Electricity"/>'
        '<base:idMethod xsi:type="base:VendIDMethod">'
        '<base:meterIdentifier xsi:type="base:MeterNumber" msno="14339800360"/>'
        "</base:idMethod>"
        '<sch:purchaseValue xsi:type="sch:PurchaseValueCurrency">'
        '<sch:amt value="115.00" symbol="R"/></sch:purchaseValue>'
        "</sch:creditVendReq></soapenv:Body></soapenv:Envelope>"
    ).encode(),
    ".NET xmlns on every element, unprefixed xsi:type, any order": (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<creditVendReq xmlns="{R}" {XSI}>'
        f'<purchaseValue xsi:type="PurchaseValueCurrency"><amt value="115.00" '
        'symbol="R"/></purchaseValue>'
        f'<idMethod xmlns="{B}" xsi:type="VendIDMethod"><meterIdentifier '
        'xsi:type="MeterNumber" msno="14339800360"/></idMethod>'
        f'<resource xmlns="{B}" xsi:type="Electricity">  \n </resource>'
        f'<authCred xmlns="{B}"><password>secret-1</password><opName> OPERATOR1 '
        "</opName></authCred>"
        f'<msgID xmlns="{B}" uniqueNumber="42" dateTime="20260301103000"/>'
        f'<terminalID xmlns="{B}" xsi:type="GenericDeviceID" id="T-001"/>'
        f'<clientID xmlns="{B}" xsi:type="EANDeviceID" ean="6009990000012"/>'
        "</creditVendReq></s:Body></s:Envelope>"
    ).encode(),
    "unprefixed xsi:type under a foreign default namespace": envelope(
        vend_xml(
            id_method=(
                '<b:idMethod xmlns="urn:elsewhere" xsi:type="VendIDMethod">'
                '<b:meterIdentifier xsi:type="MeterNumber" msno="14339800360"/>'
                "</b:idMethod>"
            )
        )
    ),
    "no xsi:type at all (inferred)": envelope(
        vend_xml(
            resource="<b:resource/>",
            id_method=(
                '<b:idMethod><b:meterIdentifier msno="14339800360"/></b:idMethod>'
            ),
            purchase=(
                '<r:purchaseValue><r:amt value="115.00" symbol="R"/></r:purchaseValue>'
            ),
        )
        .replace(' xsi:type="b:EANDeviceID"', "")
        .replace(' xsi:type="b:GenericDeviceID"', "")
    ),
    "comments, processing instructions, CDATA and an XML declaration": (
        b"<?xml version='1.0' encoding='UTF-8'?>\n<!-- a client's comment -->\n"
        + envelope(
            vend_xml().replace(
                "<b:password>secret-1</b:password>",
                "<?pi x?><b:password><![CDATA[secret-1]]></b:password><!-- c -->",
            )
        )
    ),
    "UTF-8 byte order mark and a non-mandatory header": b"\xef\xbb\xbf"
    + envelope(vend_xml()).replace(
        b"<soapenv:Body>",
        b'<soapenv:Header><t:trace xmlns:t="urn:trace" '
        b'soapenv:mustUnderstand="0">1</t:trace></soapenv:Header><soapenv:Body>',
    ),
}


@pytest.mark.parametrize("style", STYLES)
def test_prefix_styles_read_the_same(style):
    body = STYLES[style]
    content_type = "application/soap+xml" if style == "soap 1.2" else "text/xml"
    parsed = x.read_request(body, content_type)
    assert parsed.message == EXPECTED
    assert parsed.operation.name == "CreditVendRequest"
    expected_version = (
        x.SoapVersion.SOAP12 if style == "soap 1.2" else x.SoapVersion.SOAP11
    )
    assert parsed.version is expected_version


def test_envelope_namespace_decides_the_version_not_the_content_type():
    parsed = x.read_request(envelope(vend_xml(), "1.2"), "text/xml")
    assert parsed.version is x.SoapVersion.SOAP12


def test_child_namespaces_may_differ_between_clients():
    # confirmCustomerReq's idMethod is revenue in the standard; clients also
    # send it in the base namespace (as in vend requests) or unqualified.
    for ns in (f'xmlns:n="{R}"', f'xmlns:n="{B}"', 'xmlns:n="urn:x"'):
        prefix = "n:" if "urn:x" not in ns else ""
        body = envelope(
            f'<r:confirmCustomerReq xmlns:r="{R}" xmlns:b="{B}" {XSI} {ns}>'
            '<b:clientID xsi:type="b:EANDeviceID" ean="1"/>'
            '<b:terminalID xsi:type="b:GenericDeviceID" id="T"/>'
            '<b:msgID dateTime="20260301103000" uniqueNumber="1"/>'
            f'<{prefix}idMethod xsi:type="b:CustIDMethod"><b:custIdentifier '
            f'xsi:type="b:CustAccountNo" accNo="AC-1"/></{prefix}idMethod>'
            "</r:confirmCustomerReq>"
        )
        assert read(body).id_method == x.CustIDMethod(
            cust_identifier=x.CustAccountNo(acc_no="AC-1")
        )


# ------------------------------------------------------------------- quirks
@pytest.mark.parametrize(
    "date_time, when",
    [
        ("202603011030", datetime(2026, 3, 1, 10, 30)),  # 12 digits
        ("20260301103000", datetime(2026, 3, 1, 10, 30)),  # the standard's 14
        ("202603011030001", datetime(2026, 3, 1, 10, 30)),  # 15
        ("20260301103000123", datetime(2026, 3, 1, 10, 30)),  # 17 (milliseconds)
        ("01032026103000", datetime(2026, 3, 1, 10, 30)),  # day first
        ("02603011016307", None),  # a digit lost: kept, not a date
        ("99999999999999999", None),
    ],
)
def test_msg_id_date_times_are_accepted_and_kept_verbatim(date_time, when):
    message = read(envelope(vend_xml(date_time=date_time)))
    assert message.msg_id.date_time == date_time
    assert message.msg_id.timestamp == when


@pytest.mark.parametrize(
    "date_time",
    ["", "20260301", "20260301103", "202603011030001234", "2026-03-01T10:30"],
)
def test_other_msg_id_date_times_are_refused(date_time):
    bad = refused(envelope(vend_xml(date_time=date_time)))
    assert bad.header is None  # the header itself is unreadable: bare SOAP fault
    assert bad.fault.code == "Client" and "dateTime" in bad.fault.reason


def test_unique_number_leading_zeros_kept_but_same_identity():
    padded = read(envelope(vend_xml(unique="000042")))
    plain = read(envelope(vend_xml(unique="42")))
    assert padded.msg_id.unique_number == "000042"
    assert padded.idempotency_key == plain.idempotency_key
    assert x.request_fingerprint(padded) == x.request_fingerprint(plain)
    for bad in ("", "4a2", "-42", "1" * 21):
        assert refused(envelope(vend_xml(unique=bad))).fault.code == "Client"


def test_request_without_resource_is_for_electricity():
    message = read(envelope(vend_xml(resource="")))
    assert message.resource == x.Electricity()
    water = read(envelope(vend_xml(resource='<b:resource xsi:type="b:Water"/>')))
    assert (
        water.resource == x.Water()
    )  # kept: the backend refuses what it does not sell


@pytest.mark.parametrize("text", ["10", "87.72", "900.00000000", ".5", "+12.5"])
def test_amount_formats(text):
    message = read(envelope(vend_xml(amount=f'value="{text}" symbol="R"')))
    assert message.purchase_value.amt.value == Decimal(text)


@pytest.mark.parametrize(
    "text",
    ["1e3", "NaN", "Infinity", "10,50", "1 000", "", "0", "-10", "0.00", "1" * 16],
)
def test_amounts_that_are_refused(text):
    bad = refused(envelope(vend_xml(amount=f'value="{text}" symbol="R"')))
    assert isinstance(bad.fault, x.XMLVendSchemaEx)
    assert bad.header is not None  # the fault will carry the response header
    assert "purchaseValue" in bad.fault.desc


def test_currency_symbol_is_kept_as_sent_and_may_be_absent():
    assert (
        read(
            envelope(vend_xml(amount='value="5" symbol="AZM"'))
        ).purchase_value.amt.symbol
        == "AZM"
    )
    assert (
        read(envelope(vend_xml(amount='value="5"'))).purchase_value.amt.symbol is None
    )


@pytest.mark.parametrize("unit", ["kWh", "KWh", "KWH", "kwh"])
def test_si_unit_spellings(unit):
    purchase = (
        '<r:purchaseValue xsi:type="r:PurchaseValueUnits">'
        f'<r:units value="25" siUnit="{unit}"/></r:purchaseValue>'
    )
    message = read(envelope(vend_xml(purchase=purchase)))
    assert message.purchase_value == x.PurchaseValueUnits(
        units=x.Units(value=Decimal(25), si_unit="kWh")
    )


def test_pay_types():
    cash = '<r:payType xsi:type="b:Cash"><b:tenderAmt value="120.00"/></r:payType>'
    assert read(envelope(vend_xml(extra=cash))).pay_type == x.Cash(
        tender_amt=x.Currency(value=Decimal("120.00"))
    )
    assert read(envelope(vend_xml(extra="<r:payType/>"))).pay_type == x.Unknown()
    card = (
        '<r:payType xsi:type="b:DebitCard"><b:cardAmt value="1"/><b:accHolderName>A'
        "</b:accHolderName><b:pan>4111111111111111</b:pan><b:expDate>12/29</b:expDate>"
        "<b:cvNum>123</b:cvNum><b:clearingHouse>X</b:clearingHouse></r:payType>"
    )
    message = read(envelope(vend_xml(extra=card)))
    assert message.pay_type.pan == "4111111111111111"
    assert "4111" not in repr(message) and "secret-1" not in repr(message)


def test_abstract_type_without_xsi_type_and_ambiguous_content_is_refused():
    advice = envelope(
        f'<b:adviceReq xmlns:b="{B}" {XSI}>'
        '<b:clientID xsi:type="b:EANDeviceID" ean="1"/>'
        '<b:terminalID xsi:type="b:GenericDeviceID" id="T"/>'
        '<b:msgID dateTime="20260301103000" uniqueNumber="2"/>'
        '<b:adviceReqMsgID dateTime="20260301103000" uniqueNumber="1"/></b:adviceReq>'
    )
    bad = refused(advice)
    assert isinstance(bad.fault, x.XMLVendSchemaEx)
    assert "LastRespAdviceReq" in bad.fault.desc
    typed = advice.replace(
        b"<b:adviceReq ", b'<b:adviceReq xsi:type="b:ReversalAdviceReq" '
    )
    assert type(read(typed)) is x.ReversalAdviceReq


@pytest.mark.parametrize(
    "xsi_type, reason",
    [
        ("q:MeterNumber", "prefix 'q' is not declared"),
        ("xs:string", "not an XMLVend type"),
        ("b:CustIDMethod", "not a kind of MeterIdentifier"),
        ("b:MeterConfig", "abstract"),
        ("b:NoSuchType", "not a kind of MeterIdentifier"),
    ],
)
def test_bad_xsi_types_are_refused(xsi_type, reason):
    id_method = (
        f'<b:idMethod xmlns:xs="http://www.w3.org/2001/XMLSchema"><b:meterIdentifier '
        f'xsi:type="{xsi_type}" msno="14339800360"/></b:idMethod>'
    )
    bad = refused(envelope(vend_xml(id_method=id_method)))
    assert reason in bad.fault.desc and "idMethod/meterIdentifier" in bad.fault.desc


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"id_method": "<b:other/>"}, "element 'idMethod' is missing"),
        (
            {"extra": '<r:purchaseValue><r:amt value="1"/></r:purchaseValue>'},
            "more than once",
        ),
        ({"extra": "stray text"}, "text is not allowed"),
        (
            {
                "id_method": '<b:idMethod><b:meterIdentifier msno="14-339"/>'
                "</b:idMethod>"
            },
            "MSNO",
        ),
        (
            {"id_method": "<b:idMethod><b:meterIdentifier/></b:idMethod>"},
            "xsi:type is needed",
        ),
    ],
)
def test_schema_faults_name_the_place(change, reason):
    bad = refused(envelope(vend_xml(**change)))
    assert isinstance(bad.fault, x.XMLVendSchemaEx)
    assert reason in bad.fault.desc
    assert bad.header.msg_id.unique_number == "42"


def test_unknown_children_and_attributes_are_ignored():
    extension = (
        '<e:loyalty xmlns:e="urn:vendor-ext">42</e:loyalty><b:unknownThing a="1"/>'
    )
    assert read(envelope(vend_xml(extra=extension))) == EXPECTED


def test_password_whitespace_is_kept():
    body = envelope(vend_xml()).replace(b">secret-1<", b"> secret-1 <")
    assert read(body).auth_cred.password == " secret-1 "


def test_request_round_trip_through_our_writer():
    assert read(envelope(x.encode_request(EXPECTED))) == EXPECTED


# ------------------------------------------------------------ envelope level
def test_dispatch_is_on_the_body_element():
    for element, kind in (
        ("trialCreditVendReq", x.TrialCreditVendReq),
        ("creditVendReq", x.CreditVendReq),
    ):
        body = vend_xml().replace("creditVendReq", element)
        assert type(read(envelope(body))) is kind


def test_unknown_xmlvend_operation_with_readable_header():
    body = envelope(vend_xml().replace("creditVendReq", "cancelVendReq"))
    bad = refused(body)
    assert isinstance(bad.fault, x.UseCaseSupportEx)
    assert bad.header.client_id == x.EANDeviceID(ean="6009990000012")


@pytest.mark.parametrize(
    "body, code, reason",
    [
        (envelope(vend_xml()).replace(b'"0"', b'"1"'), None, None),
        (
            b'<soapenv:Envelope xmlns:soapenv="urn:not-soap"><soapenv:Body/>'
            b"</soapenv:Envelope>",
            "VersionMismatch",
            "namespace",
        ),
        (
            b'<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"/>',
            "Client",
            "no Body",
        ),
        (envelope(""), "Client", "Body is empty"),
        (envelope(vend_xml() + vend_xml()), "Client", "more than one"),
        (envelope("text" + vend_xml()), "Client", "text is not allowed"),
        (
            envelope('<r:creditVendReq xmlns:r="urn:other"/>'),
            "Client",
            "unknown operation",
        ),
        (envelope(f'<r:creditVendReq xmlns:r="{R}"/>'), "Client", "clientID"),
    ],
)
def test_envelope_faults(body, code, reason):
    if code is None:  # a mandatory header nobody here understands
        body = envelope(vend_xml()).replace(
            b"<soapenv:Body>",
            b'<soapenv:Header><t:trace xmlns:t="urn:trace" soapenv:mustUnderstand="1"/>'
            b"</soapenv:Header><soapenv:Body>",
        )
        code, reason = "MustUnderstand", "trace"
    bad = refused(body)
    assert isinstance(bad.fault, x.SoapFault) and bad.header is None
    assert bad.fault.code == code and reason in bad.fault.reason
