"""Both services over real HTTPS on 127.0.0.1 with client certificates on both
sides: interoperability (our clients, and zeep reading our WSDLs), refused
certificates (unknown CA, revoked, none, wrong identity) and the head-end
service's handling of report files and malformed or oversized input."""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import ssl
import time

import pytest
import requests
import zeep
from trytond.modules.prepaid_headend.concentrator import (
    files,
    gateway,
    reports,
    soap,
    xmlsafe,
)
from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator.client import (
    ConcentratorClient,
    HeadEndClient,
)
from trytond.modules.prepaid_headend.concentrator.errors import (
    Refused,
    RefusedFault,
    Rejected,
    SoapFault,
    TransportError,
)
from trytond.modules.prepaid_headend.concentrator.httpd import HttpsWsgiServer
from trytond.modules.prepaid_headend.concentrator.tls import (
    Peer,
    PeerPin,
    client_context,
    server_context,
)
from trytond.modules.prepaid_headend.concentrator.wsgi import HeadEndApp, SoapApp

from simulators.dcu import DcuSimulator, MemoryHeadEnd, TestPki
from simulators.dcu.testing import HeadEndStandIn

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
# A gateway request (GET of a meter's clock) in its WRAPPER frame.
GATEWAY_FRAME = gateway.encode_wrapper(
    gateway.WrapperFrame(
        16, 1,
        gateway.wrap_request(
            gateway.GatewayApdu(0, b"PPS\x00\x00\x00\x27\x10",
                                bytes.fromhex("c001c100080000010000ff0200"))
        ),
    )
)  # fmt: skip


@pytest.fixture
def sim(pki, hes):
    with DcuSimulator(2, 10, pki=pki, headend_url=hes.url, latency_scale=0) as s:
        yield s


def dc_client(pki, name: str) -> HeadEndClient:
    """A concentrator's client of the head-end."""
    creds = pki.issue(name)
    return HeadEndClient(
        "https://127.0.0.1/dcu",
        client_context(creds.cert, creds.key, pki.ca_cert, pki.crl),
        peer="HES",
    )


def to(client, url: str):
    client.url = url
    client.port = int(url.split(":")[2].split("/")[0])
    return client


def wait_for(condition, timeout: float = 5.0) -> bool:
    """The server reports a refused handshake from its own thread."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def meter_list(id_pet: int = 1) -> m.SyncRequest:
    return m.SyncRequest(id_pet, m.ReportType.METER_LIST)


# -- mutual TLS --------------------------------------------------------------
def test_head_end_and_concentrator_talk_over_mutual_tls(sim, hes):
    client = hes.client(sim, "DC0001")
    answer = client.request(meter_list())
    assert answer.status is m.RequestStatus.OK
    report = reports.parse(answer.payload, expected_type=m.ReportType.METER_LIST)
    assert report.dc_id == "DC0001" and len(report.rows) == 10
    # the same connection serves the next call (keep-alive)
    assert client.request(meter_list(2)).status is m.RequestStatus.OK
    assert sim.tls_refusals == []


def test_certificate_of_another_ca_is_refused_both_ways(sim, hes, tmp_path):
    stranger = TestPki(tmp_path / "other", name="Other CA")
    creds = stranger.issue("HES")
    # a client with a certificate the concentrator's CA did not sign
    rogue = client_context(creds.cert, creds.key, hes.pki.ca_cert, None)
    with pytest.raises(TransportError, match="TLS refused|EOF|reset"):
        ConcentratorClient(sim.url("DC0001"), rogue, peer="DC0001", timeout=5).request(
            meter_list()
        )
    assert wait_for(lambda: sim.tls_refusals)
    listener, _peer, reason = sim.tls_refusals[-1]
    assert listener == "DC0001" and "unable to get local issuer" in reason
    # a head-end that trusts only the other CA refuses the concentrator
    picky = client_context(creds.cert, creds.key, stranger.ca_cert, stranger.crl)
    with pytest.raises(TransportError, match="certificate verify failed"):
        ConcentratorClient(sim.url("DC0001"), picky, peer="DC0001", timeout=5).request(
            meter_list()
        )


def test_revoked_client_certificate_is_refused_and_alarmed(tmp_path):
    local = TestPki(tmp_path / "ca")
    with HeadEndStandIn(local) as hes:
        good, bad = local.issue("DC0001"), local.issue("DC0002")
        revoked = HeadEndClient(
            hes.url,
            client_context(bad.cert, bad.key, local.ca_cert, local.crl),
            peer="HES",
        )
        update2 = m.RequestStatusUpdate(1, "DC0002", m.RequestStatus.OK)
        assert revoked.request_status(update2).result is m.AckResult.ACCEPTED
        # the CA publishes a new CRL while the head-end runs: it takes it up
        # from the next connection on, nothing restarted or rebuilt by hand
        local.revoke(bad)
        ok = HeadEndClient(
            hes.url,
            client_context(good.cert, good.key, local.ca_cert, local.crl),
            peer="HES",
        )
        update = m.RequestStatusUpdate(1, "DC0001", m.RequestStatus.OK)
        assert ok.request_status(update).result is m.AckResult.ACCEPTED
        with pytest.raises(TransportError):
            revoked.request_status(
                m.RequestStatusUpdate(1, "DC0002", m.RequestStatus.OK)
            )
        assert wait_for(lambda: hes.backend.tls_refusals)
        reasons = [reason for _, _, reason in hes.backend.tls_refusals]
        assert any("revoked" in r for r in reasons), reasons


def test_revoked_server_certificate_is_refused_by_the_client(tmp_path):
    local = TestPki(tmp_path / "ca")
    hes_creds = local.issue("HES")
    with HeadEndStandIn(local, name="HEADEND") as hes:
        local.revoke(hes.credentials)
        context = client_context(
            hes_creds.cert, hes_creds.key, local.ca_cert, local.crl
        )
        client = HeadEndClient(hes.url, context, peer="HEADEND", timeout=5)
        with pytest.raises(TransportError, match="revoked"):
            client.request_status(m.RequestStatusUpdate(1, "HES", m.RequestStatus.OK))


def test_client_without_certificate_is_refused_and_alarmed(sim, pki):
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    conn = http.client.HTTPSConnection("127.0.0.1", sim.listeners["DC0001"].port,
                                       context=context, timeout=5)  # fmt: skip
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        conn.request("POST", "/dcu", body=b"<x/>")
        conn.getresponse().read()
    assert wait_for(lambda: sim.tls_refusals)
    listener, _peer, reason = sim.tls_refusals[-1]
    assert listener == "DC0001" and "certificate" in reason, reason


def test_a_concentrator_may_not_call_another_or_speak_for_it(sim, hes, pki):
    creds = sim.credentials["DC0002"]
    as_dc2 = client_context(creds.cert, creds.key, pki.ca_cert, pki.crl)
    with pytest.raises(SoapFault, match="DC0002 may not call concentrator DC0001"):
        ConcentratorClient(sim.url("DC0001"), as_dc2, peer="DC0001").request(
            meter_list()
        )
    dc2 = HeadEndClient(hes.url, as_dc2, peer="HES")
    with pytest.raises(RefusedFault, match="certificate of 'DC0002' used to speak"):
        dc2.request_status(m.RequestStatusUpdate(1, "DC0001", m.RequestStatus.OK))
    assert hes.backend.rejections[-1].what == "identity"
    assert hes.backend.request_statuses == {}


# -- zeep, an independent SOAP client, reads our WSDL ------------------------
def _session(hes) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # a CA bundle in the environment would win
    session.cert = (str(hes.credentials.cert), str(hes.credentials.key))
    session.verify = str(hes.pki.ca_cert)
    return session


def test_zeep_calls_the_concentrator_from_the_wsdl(sim, hes):
    session = _session(hes)
    client = zeep.Client(
        str(xmlsafe.SCHEMA_DIR / "concentrator.wsdl"),
        transport=zeep.Transport(session=session),
    )
    service = client.create_service(
        "{urn:prepaid-platform:concentrator:1}ConcentratorBinding", sim.url("DC0001")
    )
    answer = service.Request(IdPet=9, ReportType="dc_parameters")
    assert answer.Status == "ok"
    report = reports.parse(answer.Payload)
    assert report.rows[0].dc_id == "DC0001" and report.rows[0].meters == 10
    accepted = service.Order(
        IdPet=10,
        Window={"End": NOW + dt.timedelta(days=1)},
        MeterRemove={"Meters": {"Meter": ["00010003"]}},
    )
    assert accepted.Status == "working"
    hes_wsdl = zeep.Client(str(xmlsafe.SCHEMA_DIR / "headend.wsdl"))
    assert {"Report", "UpdateRequestStatus", "UpdateMetersStatus"} <= set(
        hes_wsdl.service._binding._operations
    )


def test_wsdl_and_schema_are_served(sim, hes):
    session = _session(hes)
    wsdl = session.get(sim.url("DC0001") + "?wsdl", timeout=5)
    assert wsdl.status_code == 200 and b"ConcentratorService" in wsdl.content
    xsd = session.get(hes.url + "/soap?xsd", timeout=5)
    assert xsd.status_code == 200 and b"UpdateMetersStatus" in xsd.content


# -- the head-end's service: report files and malformed input ----------------
def _lp_payload(dc: str, values=(1500, 1737), day: int = 0) -> str:
    start = NOW + dt.timedelta(days=day)
    rows = tuple(
        reports.IntervalRow("00010000", start + dt.timedelta(minutes=15 * k), v, 950)
        for k, v in enumerate(values)
    )
    return reports.render(reports.Report(m.ReportType.LOAD_PROFILE, dc, 0, NOW, rows))


def _name(dc: str = "DC0001", part: int = 0) -> str:
    return str(files.FileName(dc, 0, m.ReportType.LOAD_PROFILE, part, NOW))


def test_report_file_ingested_once_and_kept(hes, pki):
    client = to(dc_client(pki, "DC0001"), hes.url)
    data = files.pack(_lp_payload("DC0001"))
    first, again = client.upload(_name(), data), client.upload(_name(), data)
    assert (first.status, again.status) == (201, 200)
    assert again.text == "duplicate"
    # the same readings under another name: a new file, the same readings
    renamed = client.upload(_name(part=1), data)
    assert renamed.status == 200
    backend = hes.backend
    assert len(backend.files) == 1 and backend.duplicates == 2
    assert len(backend.rows("interval")) == 2
    name, raw = next(iter(backend.files.values()))
    assert (name, raw) == (_name(), data)  # kept as received, for audit
    # other content under a name used before (the concentrator's clock was
    # set back, or it restarted): another file, stored and ingested
    other = files.pack(_lp_payload("DC0001", (1500, 1800), day=1))
    assert client.upload(_name(), other).status == 201
    assert backend.names[_name()] == [files.sha256(data), files.sha256(other)]
    assert len(backend.files) == 2 and len(backend.rows("interval")) == 4


@pytest.mark.parametrize(
    "body, status, reason",
    [
        (b"not gzip at all", 400, "not a gzip file"),
        (files.pack("<Report"), 400, "not well-formed"),
        (files.pack(_lp_payload("DC0002")), 400, "payload of 'DC0002' sent by"),
        (files.pack(_lp_payload("DC0001").replace('ai="1737"', 'ai="x"')), 400,
         "Interval/@ai"),
        (gzip.compress(b"<" * 3_000_000), 413, "inflates beyond"),
    ],
    ids=["not-gzip", "not-xml", "other-dc", "bad-value", "zip-bomb"],
)  # fmt: skip
def test_bad_files_are_refused_and_kept_without_losing_good_ones(
    pki, body, status, reason
):
    backend = MemoryHeadEnd()
    app = HeadEndApp(backend, max_inflated=2_000_000)
    creds = pki.issue("HES")
    server = HttpsWsgiServer()
    listener = server.listen(
        app, server_context(creds.cert, creds.key, pki.ca_cert, pki.crl)
    )
    with server:
        client = to(dc_client(pki, "DC0001"), f"https://127.0.0.1:{listener.port}/dcu")
        good = client.upload(_name(part=1), files.pack(_lp_payload("DC0001")))
        bad = client.upload(_name(part=2), body)
        next_day = files.pack(_lp_payload("DC0001", (9, 10), day=1))
        after = client.upload(_name(part=3), next_day)
    assert (good.status, bad.status, after.status) == (201, status, 201)
    assert reason in bad.text
    assert len(backend.files) == 2 and len(backend.rows("interval")) == 4
    assert backend.rejections[-1].what == "file"
    rejection = backend.rejections[-1]
    assert reason in f"{rejection.reason} {rejection.field}"


def test_file_too_large_and_wrong_sender_are_refused(hes, pki):
    client = to(dc_client(pki, "DC0001"), hes.url)
    assert client.upload(_name("DC0002"), files.pack(_lp_payload("DC0002"))).status == (
        403
    )
    hes.app.max_file_bytes = 100
    assert client.upload(_name(), files.pack(_lp_payload("DC0001"))).status == 413
    assert [r.what for r in hes.backend.rejections] == ["identity", "file"]


def test_malformed_report_is_refused_and_the_next_one_accepted(hes, pki):
    client = to(dc_client(pki, "DC0001"), hes.url)

    def deliver(report_id: int, payload: str) -> m.Ack:
        return client.report(
            m.ReportDelivery(0, "DC0001", report_id, m.RequestStatus.OK,
                             m.ReportType.LOAD_PROFILE, "1.0", payload)
        )  # fmt: skip

    bad = deliver(1, _lp_payload("DC0001").replace('ai="1737"', 'ai="-3"'))
    assert bad.result is m.AckResult.MALFORMED and "Interval/@ai" in bad.message
    assert deliver(2, _lp_payload("DC0001")).result is m.AckResult.ACCEPTED
    assert deliver(2, _lp_payload("DC0001")).result is m.AckResult.DUPLICATE
    newer = _lp_payload("DC0001").replace('version="1.0"', 'version="2.0"')
    assert "not supported" in deliver(3, newer).message
    assert len(hes.backend.rows("interval")) == 2
    rejection = hes.backend.rejections[0]
    assert rejection.what == "report" and b'ai="-3"' in rejection.raw


def test_oversized_soap_message_is_rejected_for_good(hes, pki):
    hes.app.soap_app.max_bytes = 2000
    client = to(dc_client(pki, "DC0001"), hes.url)
    with pytest.raises(Rejected, match="HTTP 413") as info:
        client.report(
            m.ReportDelivery(0, "DC0001", 1, m.RequestStatus.OK,
                             m.ReportType.DAILY, "1.0", "x" * 5000)
        )  # fmt: skip
    # not a TransportError: sending it again would never help
    assert info.value.status == 413 and not isinstance(info.value, TransportError)
    assert hes.backend.rejections[-1].reason.startswith("body of")


def test_a_report_id_used_again_with_other_content_is_another_report(hes, pki):
    """A concentrator that restarted counts its ReportIds from 1 again."""
    client = to(dc_client(pki, "DC0001"), hes.url)

    def deliver(payload: str) -> m.Ack:
        return client.report(
            m.ReportDelivery(0, "DC0001", 1, m.RequestStatus.OK,
                             m.ReportType.LOAD_PROFILE, "1.0", payload)
        )  # fmt: skip

    before, after = _lp_payload("DC0001"), _lp_payload("DC0001", day=1)
    assert deliver(before).result is m.AckResult.ACCEPTED
    assert deliver(after).result is m.AckResult.ACCEPTED  # not a duplicate
    assert deliver(before).result is m.AckResult.DUPLICATE
    assert len(hes.backend.rows("interval")) == 4 and hes.backend.duplicates == 1


def test_meter_status_is_the_latest_whatever_the_order_of_arrival(hes, pki):
    client = to(dc_client(pki, "DC0001"), hes.url)
    pda = b"PPS\x00\x00\x00\x27\x10"

    def item(status, minutes):
        return m.MeterStatusItem(
            "00010000", pda, status, NOW + dt.timedelta(minutes=minutes)
        )

    lost, back = item(m.MeterStatus.LOST, 0), item(m.MeterStatus.JOINED, 30)
    client.meters_status(m.MeterStatusUpdate("DC0001", (back,)))
    client.meters_status(m.MeterStatusUpdate("DC0001", (lost,)))  # overtaken
    assert hes.backend.directory["DC0001", "00010000"] == back
    assert [i for _, i in hes.backend.meter_statuses] == [back, lost]  # history


# -- who answered, registered certificates, revocation -----------------------
def test_clients_refuse_a_server_that_is_not_the_one_they_called(sim, hes, pki):
    # another concentrator's valid certificate, posing as the head-end
    creds = sim.credentials["DC0002"]
    impostor = HttpsWsgiServer()
    listener = impostor.listen(
        HeadEndApp(MemoryHeadEnd()),
        server_context(creds.cert, creds.key, pki.ca_cert, pki.crl),
    )
    with impostor:
        url = f"https://127.0.0.1:{listener.port}/dcu"
        dc1 = to(dc_client(pki, "DC0001"), url)
        with pytest.raises(Refused, match="answered by 'DC0002', not HES"):
            dc1.request_status(m.RequestStatusUpdate(1, "DC0001", m.RequestStatus.OK))
    # the head-end calling DC0001 but reaching DC0002
    wrong = ConcentratorClient(sim.url("DC0002"), hes.client_context(), peer="DC0001")
    with pytest.raises(Refused, match="answered by 'DC0002'"):
        wrong.request(meter_list())
    # pinned to the certificate registered for DC0001: its fingerprint
    registered = Peer.from_pem(sim.credentials["DC0001"].cert.read_bytes())
    pin = PeerPin(frozenset({"DC0001"}), frozenset({registered.fingerprint}))
    right = ConcentratorClient(sim.url("DC0001"), hes.client_context(), peer=pin)
    assert right.request(meter_list()).status is m.RequestStatus.OK
    other = PeerPin(frozenset({"DC0001"}), frozenset({"00" * 32}))
    with pytest.raises(Refused, match="not the one registered"):
        ConcentratorClient(sim.url("DC0001"), hes.client_context(), peer=other).request(
            meter_list()
        )


def test_head_end_refuses_a_certificate_that_is_not_the_registered_one(tmp_path):
    local = TestPki(tmp_path / "ca")
    registered = local.issue("DC0001")
    fingerprint = Peer.from_pem(registered.cert.read_bytes()).fingerprint
    backend = MemoryHeadEnd({"DC0001"}, fingerprints={"DC0001": fingerprint})
    with HeadEndStandIn(local, backend=backend) as hes:
        update = m.RequestStatusUpdate(1, "DC0001", m.RequestStatus.OK)
        good = HeadEndClient(
            hes.url,
            client_context(registered.cert, registered.key, local.ca_cert, local.crl),
            peer="HES",
        )
        assert good.request_status(update).result is m.AckResult.ACCEPTED
        twin = local.issue("DC0001")  # same CA, same name, another key
        forged = HeadEndClient(
            hes.url,
            client_context(twin.cert, twin.key, local.ca_cert, local.crl),
            peer="HES",
        )
        with pytest.raises(RefusedFault, match="not the one registered"):
            forged.request_status(update)
    assert len(backend.request_statuses["DC0001", 1]) == 1
    assert backend.rejections[-1].what == "identity"


def test_an_expired_crl_refuses_every_certificate_and_says_so(tmp_path, caplog):
    local = TestPki(tmp_path / "ca")
    dc = local.issue("DC0001")
    with HeadEndStandIn(local) as hes:
        local.write_crl(next_update=local.now - dt.timedelta(hours=1))
        client = HeadEndClient(
            hes.url,
            client_context(dc.cert, dc.key, local.ca_cert, None),
            peer="HES",
            timeout=5,
        )
        with caplog.at_level("ERROR"), pytest.raises(TransportError):
            client.request_status(
                m.RequestStatusUpdate(1, "DC0001", m.RequestStatus.OK)
            )
        assert wait_for(lambda: hes.backend.tls_refusals)
    assert "CRL has expired" in hes.backend.tls_refusals[-1][2]
    assert any("expired" in r.message and "CRL" in r.message for r in caplog.records)


# -- the HTTPS plumbing ------------------------------------------------------
class _Recorder:
    """A concentrator's SOAP service that counts its calls and, when told,
    cuts the connection after a call arrived and before it is answered."""

    def __init__(self):
        self.calls = 0
        self.cut_next = False
        self.server: HttpsWsgiServer | None = None
        self.listener = None

    def __call__(self, request, peer):
        self.calls += 1
        if self.cut_next:
            self.cut_next = False
            self.server.drop_connections(self.listener)
            raise ConnectionError("cut")
        if isinstance(request, m.GatewayRequest):
            return m.GatewayResponse(m.RequestStatus.OK, request.frame)
        return m.SyncResponse(request.id_pet, m.RequestStatus.OK)


@pytest.fixture
def recorder(pki):
    creds = pki.issue("DC0009")
    service = _Recorder()
    service.server = HttpsWsgiServer()
    service.listener = service.server.listen(
        SoapApp(soap.CONCENTRATOR, service),
        server_context(creds.cert, creds.key, pki.ca_cert, pki.crl),
    )
    with service.server:
        yield service


def test_a_gateway_frame_is_never_sent_twice(recorder, hes):
    url = f"https://127.0.0.1:{recorder.listener.port}/dcu"
    client = ConcentratorClient(url, hes.client_context(), peer="DC0009", timeout=5)
    frame = GATEWAY_FRAME
    assert client.gateway(frame).status is m.RequestStatus.OK  # kept alive now
    recorder.cut_next = True
    with pytest.raises(TransportError):
        client.gateway(frame)
    assert recorder.calls == 2  # the meter would have seen it once: no resend
    # a request with an IdPet, cut the same way on a kept-alive connection,
    # is sent again on a fresh one
    assert client.request(meter_list(1)).status is m.RequestStatus.OK
    recorder.cut_next = True
    assert client.request(meter_list(2)).status is m.RequestStatus.OK
    assert recorder.calls == 5


def test_an_application_that_fails_answers_500_and_stop_waits(pki):
    creds = pki.issue("HES")

    def broken(environ, start):
        raise RuntimeError("a bug")

    server = HttpsWsgiServer()
    listener = server.listen(
        broken, server_context(creds.cert, creds.key, pki.ca_cert, pki.crl)
    )
    with server:
        client = to(dc_client(pki, "DC0001"), f"https://127.0.0.1:{listener.port}/")
        assert client.exchange("GET", "/", b"", {})[0] == 500
        assert client.exchange("GET", "/", b"", {})[0] == 500  # still served
        threads = list(server._threads)
        assert threads
    assert not any(t.is_alive() for t in threads)  # stop() waited for them
