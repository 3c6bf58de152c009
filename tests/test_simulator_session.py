"""Sans-io tests of one association: APDU bytes in, APDU bytes out (no sockets).

These cover the services the client libraries do not exercise: GET-with-list,
SET and ACTION with blocks, block-number errors, access rights, HLS-MD5.
"""

from __future__ import annotations

import datetime as dt

import pytest

from simulators.meter import MeterConfig, acse, security, xdlms
from simulators.meter.association import Meter, Session
from simulators.meter.axdr import decode, decode_all, encode, octets, struct_, u32
from simulators.meter.link import HdlcLink
from simulators.meter.testing import FakeClock

# AARQs quoted from gvtret/gosem pkg/dlms/aarq_test.go (LLS "12345678") and the
# Green Book v10 p. 444 no-security example (via u9n/dlms-cosem's tests).
AARQ_LLS = bytes.fromhex(
    "6036A1090607608574050801018A0207808B0760857405080201AC0A8008313233343536"
    "3738BE10040E01000000065F1F040000181F0100"
)
AARQ_NONE = bytes.fromhex(
    "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0"
)
LIMITER = b"\x00\x47" + bytes([0, 0, 17, 0, 0, 255])
ENERGY = b"\x00\x03" + bytes([1, 0, 1, 8, 0, 255])
CLOCK = b"\x00\x08" + bytes([0, 0, 1, 0, 0, 255])


@pytest.fixture
def meter() -> Meter:
    return Meter(MeterConfig(index=3, prepaid=False), FakeClock())


def associate(meter: Meter, sap: int, aarq: bytes) -> Session:
    session = Session(meter, sap)
    aare = session.handle(aarq)
    fields = acse.ber_tlvs(aare[2:])
    assert fields[0xA2] == b"\x02\x01\x00", "association refused"
    return session


def get(session: Session, descriptor: bytes, attr: int) -> bytes:
    return session.handle(b"\xc0\x01\xc1" + descriptor + bytes([attr, 0]))


def test_requests_before_association_get_an_exception(meter: Meter) -> None:
    session = Session(meter, 16)
    assert get(session, ENERGY, 2) == b"\xd8\x01\x01"


def test_public_sap_refuses_lls_and_unknown_sap_is_refused(meter: Meter) -> None:
    aare = Session(meter, 16).handle(AARQ_LLS)
    assert acse.ber_tlvs(aare[2:])[0xA2] == b"\x02\x01\x01"
    aare = Session(meter, 99).handle(AARQ_NONE)
    assert acse.ber_tlvs(aare[2:])[0xA2] == b"\x02\x01\x01"


def test_lls_sap_requires_a_password(meter: Meter) -> None:
    aare = Session(meter, 32).handle(AARQ_NONE)
    diag = acse.ber_tlvs(acse.ber_tlvs(aare[2:])[0xA3])[0xA1]
    assert diag == b"\x02\x01\x0e"  # authentication-required


def test_get_unknown_object_and_wrong_class(meter: Meter) -> None:
    s = associate(meter, 16, AARQ_NONE)
    missing = b"\x00\x03" + bytes([1, 0, 99, 99, 0, 255])
    assert get(s, missing, 2) == b"\xc4\x01\xc1\x01\x04"  # object-undefined
    wrong = b"\x00\x01" + ENERGY[2:]
    assert get(s, wrong, 2) == b"\xc4\x01\xc1\x01\x09"  # class inconsistent


def test_get_with_list(meter: Meter) -> None:
    s = associate(meter, 16, AARQ_NONE)
    req = b"\xc0\x03\xc1\x02" + ENERGY + b"\x02\x00" + ENERGY + b"\x03\x00"
    resp = s.handle(req)
    assert resp[:4] == b"\xc4\x03\xc1\x02"
    assert resp[4] == 0x00
    value, pos = decode(resp, 5)
    assert value.value == meter.config.initial_energy_wh
    assert resp[pos] == 0x00
    assert decode_all(resp[pos + 1 :]).py() == [0, 30]


def test_block_get_wrong_block_number_aborts(meter: Meter) -> None:
    s = associate(meter, 16, AARQ_NONE)
    profile = b"\x00\x07" + bytes([1, 0, 99, 1, 0, 255])
    first = get(s, profile, 2)
    assert first[:4] == b"\xc4\x02\xc1\x00"  # first block, not last
    assert first[4:8] == b"\x00\x00\x00\x01"
    bad = s.handle(b"\xc0\x02\xc1\x00\x00\x00\x05")
    assert bad[3] == 0x01 and bad[-2:] == b"\x01\x13"  # data-block-number-invalid
    again = s.handle(b"\xc0\x02\xc1\x00\x00\x00\x01")
    assert again[-2:] == b"\x01\x10"  # no-long-get-in-progress


def test_full_block_get_reassembles(meter: Meter) -> None:
    s = associate(meter, 16, AARQ_NONE)
    profile = b"\x00\x07" + bytes([1, 0, 99, 1, 0, 255])
    resp = get(s, profile, 2)
    data = bytearray()
    while True:
        last, number = resp[3], int.from_bytes(resp[4:8], "big")
        length_prefix = resp[9]
        start = 10 + (length_prefix & 0x7F if length_prefix & 0x80 else 0)
        data += resp[start:]
        if last:
            break
        resp = s.handle(b"\xc0\x02\xc1" + number.to_bytes(4, "big"))
    assert len(decode_all(bytes(data)).value) == 192


def test_set_with_blocks(meter: Meter) -> None:
    s = associate(meter, 32, AARQ_LLS)
    raw = encode(u32(777))
    head = b"\xc1\x02\xc1" + LIMITER + b"\x03\x00"
    first = s.handle(head + b"\x00\x00\x00\x00\x01" + bytes([2]) + raw[:2])
    assert first == b"\xc5\x02\xc1\x00\x00\x00\x01"
    last = s.handle(b"\xc1\x03\xc1\x01\x00\x00\x00\x02" + bytes([3]) + raw[2:])
    assert last == b"\xc5\x03\xc1\x00\x00\x00\x00\x02"
    assert meter.state.limiter_threshold_active_w == 777
    # A block out of sequence is refused.
    out = s.handle(b"\xc1\x03\xc1\x01\x00\x00\x00\x09\x01\x00")
    assert out[3] == xdlms.NO_LONG_SET_IN_PROGRESS


def test_public_set_and_lls_action_are_denied(meter: Meter) -> None:
    s = associate(meter, 16, AARQ_NONE)
    resp = s.handle(b"\xc1\x01\xc1" + LIMITER + b"\x03\x00" + encode(u32(1)))
    assert resp == b"\xc5\x01\xc1\x03"
    s = associate(meter, 32, AARQ_LLS)
    method = b"\x00\x46" + bytes([0, 0, 96, 3, 10, 255]) + b"\x01"
    assert s.handle(b"\xc3\x01\xc1" + method + b"\x01\x0f\x00") == (
        b"\xc7\x01\xc1\x03\x00"
    )


def _md5_aarq(ctos: bytes) -> bytes:
    body = acse.ber(0xA1, b"\x06\x07\x60\x85\x74\x05\x08\x01\x01")
    body += acse.ber(0x8A, b"\x07\x80")
    body += acse.ber(0x8B, b"\x60\x85\x74\x05\x08\x02\x03")
    body += acse.ber(0xAC, acse.ber(0x80, ctos))
    body += acse.ber(
        0xBE, acse.ber(0x04, bytes.fromhex("01000000065F1F0400001E1DFFFF"))
    )
    return acse.ber(0x60, body)


def hls_md5(meter: Meter, secret: bytes = b"Gurux") -> tuple[Session, bytes]:
    ctos = b"C" * 16
    s = Session(meter, 1)
    aare = s.handle(_md5_aarq(ctos))
    stoc = acse.ber_tlvs(acse.ber_tlvs(aare[2:])[0xAA])[0x80]
    reply = encode(octets(security.hls_md5_response(stoc, secret)))
    method = b"\x00\x0f" + bytes([0, 0, 40, 0, 0, 255]) + b"\x01"
    return s, s.handle(b"\xc3\x01\xc1" + method + b"\x01" + reply)


def test_hls_md5_pass_3_and_4(meter: Meter) -> None:
    s, resp = hls_md5(meter)
    assert resp[:6] == b"\xc7\x01\xc1\x00\x01\x00"
    answer = decode_all(resp[6:]).value
    assert answer == security.hls_md5_response(b"C" * 16, b"Gurux")
    assert s.associated


def test_hls_md5_wrong_secret_refused_and_nothing_else_allowed(meter: Meter) -> None:
    s = Session(meter, 1)
    s.handle(_md5_aarq(b"C" * 16))
    assert get(s, ENERGY, 2) == b"\xd8\x01\x01"  # only reply_to_HLS while pending
    s, resp = hls_md5(meter, b"wrong")
    assert resp == b"\xc7\x01\xc1\x03\x00"
    assert not s.associated
    assert get(s, ENERGY, 2) == b"\xd8\x01\x01"


def test_action_with_parameter_blocks(meter: Meter) -> None:
    s, _ = hls_md5(meter)
    method = b"\x00\x12" + bytes([0, 0, 44, 0, 0, 255]) + b"\x01"
    param = encode(struct_(octets(b"FW-3"), u32(100)))
    first = s.handle(b"\xc3\x04\xc1" + method + b"\x00\x00\x00\x00\x01\x05" + param[:5])
    assert first == b"\xc7\x04\xc1\x00\x00\x00\x01"
    rest = param[5:]
    last = s.handle(b"\xc3\x06\xc1\x01\x00\x00\x00\x02" + bytes([len(rest)]) + rest)
    assert last == b"\xc7\x01\xc1\x00\x00"
    assert meter.state.image.identifier == b"FW-3" and meter.state.image.size == 100


def test_set_clock_logs_adjustment_events(meter: Meter) -> None:
    s = associate(meter, 32, AARQ_LLS)
    new = dt.datetime(2026, 2, 1, 0, 0, tzinfo=dt.UTC)
    from simulators.meter.axdr import datetime_data

    resp = s.handle(b"\xc1\x01\xc1" + CLOCK + b"\x02\x00" + encode(datetime_data(new)))
    assert resp == b"\xc5\x01\xc1\x00"
    assert meter.state.meter_time() == new
    assert [r.values[0] for r in meter.state.events][-2:] == [4, 5]


def test_release_ends_the_association(meter: Meter) -> None:
    s = associate(meter, 16, AARQ_NONE)
    assert s.handle(b"\x62\x03\x80\x01\x00") == b"\x63\x03\x80\x01\x00"
    assert get(s, ENERGY, 2) == b"\xd8\x01\x01"


def test_hdlc_link_segments_long_replies(meter: Meter) -> None:
    from simulators.meter import framing

    link = HdlcLink(meter)
    server, client = b"\x03", b"\x21"  # logical device 1, client SAP 16
    ua = link.feed(framing.build_hdlc(server, client, framing.SNRM))
    assert framing.parse_hdlc(ua[0]).control == framing.UA
    aarq = framing.LLC_REQUEST + AARQ_NONE
    link.feed(framing.build_hdlc(server, client, 0x10, aarq))
    profile = b"\x00\x07" + bytes([1, 0, 99, 1, 0, 255])
    req = framing.LLC_REQUEST + b"\xc0\x01\xc1" + profile + b"\x02\x00"
    frames = link.feed(framing.build_hdlc(server, client, 0x32, req))
    first = framing.parse_hdlc(frames[0])
    assert first.segmented and len(first.info) == 128
    rr = framing.build_hdlc(server, client, 0x51)  # RR N(R)=2
    second = framing.parse_hdlc(link.feed(rr)[0])
    assert second.ssn == first.ssn + 1
    disc = link.feed(framing.build_hdlc(server, client, framing.DISC))
    assert framing.parse_hdlc(disc[0]).control == framing.UA
    assert not link.connected
