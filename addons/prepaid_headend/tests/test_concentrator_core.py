"""The concentrator interface core without a network: gateway framing
(known answers), SOAP envelopes, report payloads, report files and the
hardened XML parser."""

from __future__ import annotations

import datetime as dt
import gzip

import pytest
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXDLMSGateway, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_dlms.objects import GXDLMSClock
from trytond.modules.prepaid_headend.concentrator import (
    files,
    gateway,
    reports,
    soap,
    xmlsafe,
)
from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator.errors import (
    Refused,
    RefusedFault,
    SoapFault,
    TooLarge,
    UnsupportedVersion,
    ValidationError,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
PDA = b"PPS\x00\x00\x00\x00\x07"

# -- DLMS gateway framing ----------------------------------------------------
# Layout: IEC 62056-5-3 annex C (DLMS UA Green Book, gateway protocol) inside
# an IEC 62056-47 WRAPPER frame. The two requests below were produced by an
# independent implementation, gurux-dlms 1.0.203 (GXDLMSClient with
# settings.gateway = network id 1, PDA "PPS" 00 00 00 00 07, WRAPPER, client
# SAP 16, logical device 1): the AARQ of a public association and the
# GET-request of the clock's time (0.0.1.0.0.255, class 8, attribute 2).
GURUX_AARQ = bytes.fromhex(
    "000100100001002a"  # WRAPPER: version 1, wPort 16 -> 1, 42 bytes
    "e6010850505300000000 07".replace(" ", "")  # gateway request header
    + "601da109060760857405080101be10040e01000000065f1f0400401e5dffff"
)
GURUX_GET = bytes.fromhex(
    "0001001000010018e601085050530000000007c001c100080000010000ff0200"
)
# A GET-response (double-long-unsigned 0x12345678) wrapped as a gateway
# response, wPort 1 -> 16; gurux-dlms parses it back to 305419896 below.
GATEWAY_RESPONSE = bytes.fromhex(
    "0001000100100014e701085050530000000007c401c1000612345678"
)


def test_gateway_request_known_answer():
    apdu = bytes.fromhex("c001c100080000010000ff0200")
    wrapped = gateway.wrap_request(gateway.GatewayApdu(1, PDA, apdu))
    frame = gateway.encode_wrapper(gateway.WrapperFrame(16, 1, wrapped))
    assert frame == GURUX_GET
    outer = gateway.decode_wrapper(GURUX_AARQ)
    assert (outer.source, outer.destination) == (16, 1)
    inner = gateway.unwrap_request(outer.apdu)
    assert (inner.network_id, inner.pda) == (1, PDA)
    assert inner.apdu[0] == 0x60  # the AARQ itself, untouched


def test_gateway_response_known_answer():
    apdu = bytes.fromhex("c401c1000612345678")
    wrapped = gateway.wrap_response(gateway.GatewayApdu(1, PDA, apdu))
    assert gateway.encode_wrapper(gateway.WrapperFrame(1, 16, wrapped)) == (
        GATEWAY_RESPONSE
    )
    back = gateway.unwrap_response(gateway.decode_wrapper(GATEWAY_RESPONSE).apdu)
    assert back == gateway.GatewayApdu(1, PDA, apdu)


def _gurux_client() -> GXDLMSClient:
    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    gw = GXDLMSGateway()
    gw.networkId = 1
    gw.physicalDeviceAddress = bytearray(PDA)
    client.settings.gateway = gw
    return client


def test_gateway_framing_agrees_with_gurux_both_ways():
    client = _gurux_client()
    assert bytes(client.aarqRequest()[0]) == GURUX_AARQ
    assert bytes(client.read(GXDLMSClock("0.0.1.0.0.255"), 2)[0]) == GURUX_GET
    reply = GXReplyData()
    client.getData(GXByteBuffer(GATEWAY_RESPONSE), reply, GXReplyData())
    assert reply.value == 0x12345678


@pytest.mark.parametrize(
    "data, why",
    [
        (b"\xe7\x01\x08" + PDA + b"\xc4", "not a gateway request"),
        (b"\xe6\x01\x00\xc4", "PDA length 0"),
        (b"\xe6\x01\x80" + b"\x00" * 130, "PDA length 128"),
        (b"\xe6\x01\x08PPS", "truncated"),
    ],
)
def test_gateway_request_refusals_say_why(data, why):
    with pytest.raises(ValidationError, match=why):
        gateway.unwrap_request(data)


def test_wrapper_split_keeps_partial_frames_and_refuses_bad_versions():
    frames, rest = gateway.split_wrapper(GURUX_GET + GURUX_AARQ[:10])
    assert [f.apdu[0] for f in frames] == [0xE6] and rest == GURUX_AARQ[:10]
    frames, rest = gateway.split_wrapper(rest + GURUX_AARQ[10:])
    assert len(frames) == 1 and rest == b""
    with pytest.raises(ValidationError, match="version 2"):
        gateway.split_wrapper(b"\x00\x02" + GURUX_GET[2:])
    with pytest.raises(ValidationError, match="exactly one"):
        gateway.decode_wrapper(GURUX_GET + GURUX_GET)


# -- SOAP envelopes ----------------------------------------------------------
WINDOW = m.Window(end=NOW + dt.timedelta(hours=2), start=NOW)
MESSAGES = [
    m.SyncRequest(1, m.ReportType.INSTANT, ("M1", "M2"), priority=1),
    m.SyncResponse(1, m.RequestStatus.PARTIAL, "<Report/>", "no answer from M2"),
    m.AsyncRequest(2, m.ReportType.LOAD_PROFILE, (), NOW, NOW, 3, m.Source.METER),
    m.Accepted(2, m.RequestStatus.WORKING),
    m.ReportQuery(3, NOW, NOW, ("M1",), "disconnector", 50),
    m.ReportQueryAccepted(3, m.RequestStatus.UNKNOWN_METER, "no such meter"),
    m.Order(4, WINDOW, m.RelayOrder(m.RelayAction.ARM, ("M1",)), 1),
    m.Order(5, WINDOW, m.TimeSyncOrder(NOW, 30, True, ("M1",))),
    m.Order(6, WINDOW, m.MeterAddOrder((m.DirectoryEntry("M9", PDA, "X1"),))),
    m.Order(7, WINDOW, m.MeterRemoveOrder(("M9",))),
    m.Order(
        8,
        WINDOW,
        m.CollectionPlanOrder(
            (m.CollectionTask(m.ReportType.DAILY, m.Period.DAY, True, m.Delivery.FILE),)
        ),
    ),
    m.Order(
        9,
        WINDOW,
        m.FirmwareOrder(
            m.FirmwareTarget.METERS,
            "FW-2.0.0",
            b"\x00\x01image",
            b"\xaa" * 32,
            ("M1",),
            NOW,
        ),  # fmt: skip
    ),
    m.OrderAccepted(9, m.RequestStatus.EXPIRED, "too late"),
    m.GatewayRequest(GURUX_GET),
    m.GatewayResponse(m.RequestStatus.OK, GATEWAY_RESPONSE),
    m.ReportDelivery(
        0,
        "DC0001",
        17,
        m.RequestStatus.OK,
        m.ReportType.DAILY,
        "1.0",
        "<Report a='&amp;'/>",
    ),  # fmt: skip
    m.Ack(m.AckResult.DUPLICATE),
    m.RequestStatusUpdate(
        4,
        "DC0001",
        m.RequestStatus.PARTIAL,
        None,
        (
            m.MeterOutcome("M1", m.RequestStatus.OK, "disconnected"),
            m.MeterOutcome("M2", m.RequestStatus.METER_TIMEOUT),
        ),
    ),  # fmt: skip
    m.StatusAck(m.AckResult.ACCEPTED),
    m.MeterStatusUpdate(
        "DC0001",
        (
            m.MeterStatusItem(
                "M1", PDA, m.MeterStatus.JOINED, NOW, 12, 3, "DC0001-C001"
            ),
        ),
    ),
    m.MetersAck(
        m.AckResult.ACCEPTED,
        decisions=(m.MeterDecision("M1", m.Decision.PENDING),),
    ),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda x: type(x).__name__)
def test_every_message_round_trips_through_the_schema(message):
    data = soap.render(message)
    for service in (soap.CONCENTRATOR, soap.HEADEND):
        if type(message) in service.by_class:
            assert soap.parse_request(service, data) == message
            return
    for service in (soap.CONCENTRATOR, soap.HEADEND):
        for op in service.operations.values():
            if op.response is type(message):
                assert soap.parse_response(op, data) == message
                return
    raise AssertionError(f"{type(message).__name__} belongs to no operation")


def _order_xml(**replace: str) -> bytes:
    data = soap.render(MESSAGES[6]).decode()
    for old, new in replace.items():
        assert old in data
        data = data.replace(old, new)
    return data.encode()


@pytest.mark.parametrize(
    "replace, field, text",
    [
        (
            {"<Action>arm": "<Action>explode"},
            "Action",
            "'disconnect', 'reconnect', 'arm'",
        ),
        ({"T12:30:00Z</Start>": "T12:30:00</Start>"}, "Start", "not accepted by"),
        ({"<IdPet>4</IdPet>": ""}, "Priority", "Expected is ( IdPet )"),
        ({"<Meter>M1</Meter>": "<Meter>M 1</Meter>"}, "Meter", "not accepted by"),
        ({"T14:30:00Z</End>": "T11:30:00Z</End>"}, "Order", "ends before it starts"),
        ({"<Meter>M1</Meter>": ""}, "Order", "a Relay order names its meters"),
    ],
)
def test_invalid_orders_are_refused_naming_what_is_wrong(replace, field, text):
    with pytest.raises(ValidationError) as info:
        soap.parse_request(soap.CONCENTRATOR, _order_xml(**replace))
    assert info.value.field == field
    assert text in str(info.value)


def test_envelope_problems_are_refused():
    delivery = next(x for x in MESSAGES if isinstance(x, m.ReportDelivery))
    other = soap.render(delivery)  # a head-end operation
    with pytest.raises(ValidationError, match="has no operation 'Report'"):
        soap.parse_request(soap.CONCENTRATOR, other)
    with pytest.raises(ValidationError, match="not a SOAP 1.1 envelope"):
        soap.parse_request(soap.CONCENTRATOR, b"<Order/>")
    two = other.replace(b"</soap:Body>", b"<x/></soap:Body>")
    with pytest.raises(ValidationError, match="exactly one element"):
        soap.parse_request(soap.HEADEND, two)
    plan = m.CollectionTask(m.ReportType.DAILY, m.Period.DAY)
    with pytest.raises(ValueError, match="one task per report type"):
        soap.render(m.Order(1, WINDOW, m.CollectionPlanOrder((plan, plan))))


def test_a_refusal_fault_is_told_apart_from_a_bad_message():
    op = soap.HEADEND.operations["Report"]
    refused = soap.render_fault("refused: unknown concentrator", refused=True)
    assert b"<faultcode>soap:Client.Refused</faultcode>" in refused
    with pytest.raises(RefusedFault) as info:
        soap.parse_response(op, refused)
    assert isinstance(info.value, SoapFault) and isinstance(info.value, Refused)
    with pytest.raises(SoapFault) as info:
        soap.parse_response(op, soap.render_fault("bad", client=True))
    assert not isinstance(info.value, Refused)


def test_faults_carry_the_field_to_the_client():
    fault = soap.render_fault("bad End", client=True, field="End")
    op = soap.CONCENTRATOR.operations["Order"]
    with pytest.raises(SoapFault) as info:
        soap.parse_response(op, fault)
    assert info.value.faultcode == "soap:Client"
    assert (info.value.faultstring, info.value.field) == ("bad End", "End")


# -- the hardened parser -----------------------------------------------------
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""


@pytest.mark.parametrize(
    "data, error, text",
    [
        (BILLION_LAUGHS, ValidationError, "DTD or entity"),
        (EXTERNAL, ValidationError, "DTD or entity"),
        (b"<!doctype r><r/>", ValidationError, "DTD or entity"),
        ("<r/>".encode("utf-16"), ValidationError, "UTF-8"),
        (b'<?xml version="1.0" encoding="latin-1"?><r/>', ValidationError, "UTF-8"),
        (b"<r>" * 13 + b"</r>" * 13, TooLarge, "deeper than 12"),
        (b"<r>" + b"x" * 2000 + b"</r>", TooLarge, "exceeds the 1000"),
        (b"<r><unclosed></r>", ValidationError, "not well-formed"),
        (b"  ", ValidationError, "empty"),
    ],
)
def test_hostile_xml_is_refused_before_it_costs_anything(data, error, text):
    with pytest.raises(error, match=text):
        xmlsafe.parse(data, max_bytes=1000)


def test_parser_accepts_plain_documents_and_drops_processing_instructions():
    root = xmlsafe.parse(b'<?xml version="1.0" encoding="UTF-8"?><a><?pi x?><b/></a>')
    assert [c.tag for c in root] == ["b"]


# -- report payloads ---------------------------------------------------------
T = NOW
ROWS = {
    m.ReportType.INSTANT: [
        reports.InstantRow("M1", T, 1500, 0, 950, 2301, 415, True, 12000),
        reports.InstantRow("M2", T, 10, 0, 0, 2300, 0, False, None),
    ],
    m.ReportType.DAILY: [reports.DailyRow("M1", T, 1500, 0, 493, 0)],
    m.ReportType.MONTHLY: [
        reports.MonthlyRow("M1", T, 1500, 4500, T),
        reports.MonthlyRow("M1", T + dt.timedelta(days=31), 2500, 4200),
    ],
    m.ReportType.LOAD_PROFILE: [
        reports.IntervalRow("M1", T, 1500, 950, 0),
        reports.IntervalRow("M1", T + dt.timedelta(minutes=15), 1737, 948, 0x20),
        reports.IntervalRow("M2", T, 7, 0, 0x80),
    ],
    m.ReportType.METER_EVENTS: [reports.EventRow("M1", T, "disconnector", 50)],
    m.ReportType.RELAY_STATUS: [reports.RelayRow("M1", T, False, 2)],
    m.ReportType.METER_LIST: [
        reports.MeterEntry("M1", PDA, "joined", True, 5, 3, "DC1-C001", T, T, "FW1"),
        reports.MeterEntry("M2", PDA, "never_joined", True),
    ],
    m.ReportType.DC_EVENTS: [reports.DcEventRow(T, 4, 16, None, "HES <down> & \x07")],
    m.ReportType.DC_PARAMETERS: [
        reports.DcParameters(
            "DC1",
            "SIM",
            "1.0",
            T,
            3600,
            300,
            285,
            b"\x78\x1d",
            2,
            T,
            (reports.TaskRow("daily", "P1D", True, "file"),),
        )  # fmt: skip
    ],
}


# A load-profile payload as docs/concentrators.md section 4 shows it, written
# by hand: what each attribute means is fixed by the schema's major version.
LOAD_PROFILE_SAMPLE = (
    '<Report xmlns="urn:prepaid-platform:dcu:report:1" type="load_profile" '
    'version="1.0" dc="DC0001" idPet="0" generated="2026-01-16T00:05:00Z">'
    '<Meter id="00010000">'
    '<Interval t="2026-01-15T00:15:00Z" ai="3120417" p="1502" st="0"/>'
    '<Interval t="2026-01-15T00:30:00Z" ai="3120793" p="1504" st="32"/>'
    "</Meter>"
    '<Meter id="00010001">'
    '<Interval t="2026-01-15T00:15:00Z" ai="88" p="0" st="128"/>'
    "</Meter>"
    "</Report>"
)


def test_report_payload_known_answer():
    report = reports.parse(LOAD_PROFILE_SAMPLE)
    t = dt.datetime(2026, 1, 15, 0, 15, tzinfo=UTC)
    assert (report.report_type, report.dc_id, report.id_pet, report.version) == (
        m.ReportType.LOAD_PROFILE, "DC0001", 0, "1.0",
    )  # fmt: skip
    assert report.generated == dt.datetime(2026, 1, 16, 0, 5, tzinfo=UTC)
    assert report.rows == (
        reports.IntervalRow("00010000", t, 3120417, 1502, 0),
        reports.IntervalRow(
            "00010000", t + dt.timedelta(minutes=15), 3120793, 1504,
            reports.STATUS_CLOCK_ADJUSTED,
        ),
        reports.IntervalRow("00010001", t, 88, 0, reports.STATUS_POWER_DOWN),
    )  # fmt: skip
    assert reports.render(report) == LOAD_PROFILE_SAMPLE


@pytest.mark.parametrize(
    "text, why",
    [
        (LOAD_PROFILE_SAMPLE[: -len("</Report>")], "Premature end"),
        (LOAD_PROFILE_SAMPLE[:-40], "not well-formed"),
        (LOAD_PROFILE_SAMPLE + "<Report/>", "Extra content"),
        (LOAD_PROFILE_SAMPLE.replace('p="0"', 'p="-1"'), "Interval/@p"),
        ("<Other/>", "not a report of namespace"),
    ],
    ids=["cut-before-the-end", "cut-in-a-row", "two-roots", "bad-value", "root"],
)
def test_reports_read_as_a_stream_are_refused_when_cut_or_wrong(text, why):
    with pytest.raises(ValidationError, match=why):
        reports.parse(text)


def test_report_rows_are_bounded():
    assert len(reports.parse(LOAD_PROFILE_SAMPLE, max_rows=3).rows) == 3
    with pytest.raises(TooLarge, match="more than 2 rows"):
        reports.parse(LOAD_PROFILE_SAMPLE, max_rows=2)


@pytest.mark.parametrize("kind", list(m.ReportType))
def test_every_report_type_round_trips(kind):
    report = reports.Report(kind, "DC1", 5, NOW, tuple(ROWS[kind]))
    back = reports.parse(reports.render(report), expected_type=kind)
    if kind is m.ReportType.DC_EVENTS:  # a control character cannot travel
        row = ROWS[kind][0]
        assert back.rows[0].detail == "HES <down> & ?"
        assert back.rows[0].time == row.time
    else:
        assert back == report


def test_report_versions_and_extensions():
    text = reports.render(reports.Report(m.ReportType.DAILY, "DC1", 0, NOW,
                                         tuple(ROWS[m.ReportType.DAILY])))  # fmt: skip
    newer = text.replace('version="1.0"', 'version="1.7"').replace(
        ' re="0"', ' re="0" rq="12"'
    )
    assert reports.parse(newer).rows == reports.parse(text).rows
    with pytest.raises(UnsupportedVersion, match="version 2.0 is not supported"):
        reports.parse(text.replace('version="1.0"', 'version="2.0"'))
    with pytest.raises(ValidationError, match="a daily payload where load_profile"):
        reports.parse(text, expected_type=m.ReportType.LOAD_PROFILE)
    with pytest.raises(ValidationError) as info:
        reports.parse(text.replace(' ai="1500"', ' ai="-1"'))
    assert info.value.field == "Daily/@ai"
    with pytest.raises(ValidationError, match="Interval rows in a daily report"):
        reports.parse(text.replace("<Daily ", "<Interval st='0' p='1' ", 1))


# -- report files ------------------------------------------------------------
def test_file_names_round_trip_and_bad_names_are_refused():
    name = files.FileName("DC_01", 0, m.ReportType.LOAD_PROFILE, 2, NOW)
    assert str(name) == "DC_01_0_load_profile_2_20260301123000.xml.gz"
    assert files.parse_name(str(name)) == name
    numbered = files.FileName("DC_01", 0, m.ReportType.DAILY, 0, NOW, 4711)
    assert str(numbered) == "DC_01_0_daily_0_20260301123000_4711.xml.gz"
    assert files.parse_name(str(numbered)) == numbered
    for bad in ("DC1_0_bogus_0_20260301123000.xml.gz",
                "DC1_0_daily_0_20261301123000.xml.gz",
                "../etc/passwd", "DC1_0_daily_0_20260301123000.xml"):  # fmt: skip
        with pytest.raises(ValidationError):
            files.parse_name(bad)


def test_pack_is_deterministic_and_unpack_is_bounded():
    assert files.pack("<Report/>") == files.pack("<Report/>")
    assert files.unpack(files.pack("<Report/>")) == b"<Report/>"
    bomb = gzip.compress(b"\0" * 2_000_000)
    assert len(bomb) < 5000
    with pytest.raises(TooLarge, match="inflates beyond 1000000"):
        files.unpack(bomb, max_inflated=1_000_000)
    with pytest.raises(ValidationError, match="truncated"):
        files.unpack(files.pack("<Report/>")[:-8])
    with pytest.raises(ValidationError, match="after the end"):
        files.unpack(files.pack("a") + files.pack("b"))
    with pytest.raises(ValidationError, match="not a gzip file"):
        files.unpack(b"PK\x03\x04 a zip file")


def test_report_delivery_digest_is_of_its_payload():
    delivery = next(x for x in MESSAGES if isinstance(x, m.ReportDelivery))
    # printf "%s" "<Report a='&amp;'/>" | sha256sum
    assert delivery.sha256 == (
        "8761c4e4184a1a274a2cf0a3e774bfdcf4c641bfdef2bdce33729640be6e11e5"
    )


def test_content_digest_is_checked():
    data = files.pack("<Report/>")
    files.check_digest(files.content_digest(data), data)
    files.check_digest(None, data)
    with pytest.raises(ValidationError, match="does not match"):
        files.check_digest(files.content_digest(data + b"x"), data)
