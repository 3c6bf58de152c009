"""Known-answer and cross-check tests of the simulator's sans-io DLMS codec.

Sources of the byte strings are cited next to each vector. Cross-checks use the
independent dlms-cosem 25.1.0 library (its own encoders, not ours).
"""

from __future__ import annotations

import datetime as dt

import pytest
from dlms_cosem import dlms_data
from dlms_cosem.hdlc import address as cosem_address
from dlms_cosem.hdlc import frames as cosem_frames
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.meter import acse, axdr, framing, security, xdlms

# DLMS UA Green Book ed. 7 p. 285 (authenticated encryption example), as quoted
# in u9n/dlms-cosem tests/test_security.py and jDLMS's CoderXDlmsApdu tests.
GB_EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
GB_AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
GB_TITLE = bytes.fromhex("4D4D4D0000BC614E")
GB_IC = 0x01234567
GB_PLAIN_GET = bytes.fromhex("C0010000080000010000FF0200")
GB_CIPHERED = bytes.fromhex("411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B")
GB_GLO_GET = bytes.fromhex(
    "C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B"
)

# gvtret/gosem pkg/dlms/aarq_test.go and aare_test.go.
GOSEM_AARQ_LLS = bytes.fromhex(
    "6036A1090607608574050801018A0207808B0760857405080201AC0A8008313233343536"
    "3738BE10040E01000000065F1F040000181F0100"
)
GOSEM_AARQ_LLS_CIPHERED = bytes.fromhex(
    "6066A109060760857405080103A60A040843495200000000018A0207808B076085740508"
    "0201AC0A80084A7553363642435ABE340432213030000001078E6341442275404C816C6B"
    "ED3E33AE809EC51E1D0E428BE8F5F643E26C3DD89FD2E3F2220097124F58E0F4"
)
GOSEM_AARE_ACCEPTED = bytes.fromhex(
    "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F0400"
    "00101D00800007"
)
GOSEM_AARE_CIPHERED = bytes.fromhex(
    "6148A109060760857405080103A203020100A305A103020100A40A04084C475A20226048"
    "28BE230421281F300000003149963E23D6DA824A369644B66A9A17C60C3CA3F63E58608F"
    "A192"
)
GOSEM_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")

# Green Book v10 p. 444 AARQ without security, as quoted in u9n/dlms-cosem
# tests/test_acse/test_aarq.py.
GB_AARQ_NONE = bytes.fromhex(
    "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0"
)


# --- security ---------------------------------------------------------------


def test_gcm_green_book_encrypt() -> None:
    out = security.encrypt(0x30, GB_TITLE, GB_IC, GB_EK, GB_AK, GB_PLAIN_GET)
    assert out == GB_CIPHERED
    glo = security.build_glo(security.GLO_GET_REQUEST, 0x30, GB_IC, out)
    assert glo == GB_GLO_GET


def test_gcm_green_book_decrypt_and_parse() -> None:
    tag, title, sc, ic, ct = security.parse_glo(GB_GLO_GET)
    assert (tag, title, sc, ic) == (0xC8, None, 0x30, GB_IC)
    assert security.decrypt(sc, GB_TITLE, ic, GB_EK, GB_AK, ct) == GB_PLAIN_GET


@pytest.mark.parametrize("position", [0, 5, len(GB_CIPHERED) - 1])
def test_gcm_tampered_ciphertext_or_tag_is_refused(position: int) -> None:
    bad = bytearray(GB_CIPHERED)
    bad[position] ^= 0x01
    with pytest.raises(security.CipherError, match="does not verify"):
        security.decrypt(0x30, GB_TITLE, GB_IC, GB_EK, GB_AK, bytes(bad))


def test_gcm_wrong_invocation_counter_is_refused() -> None:
    with pytest.raises(security.CipherError):
        security.decrypt(0x30, GB_TITLE, GB_IC + 1, GB_EK, GB_AK, GB_CIPHERED)


def test_general_glo_round_trip_carries_system_title() -> None:
    ct = security.encrypt(0x30, GB_TITLE, 7, GB_EK, GB_AK, GB_PLAIN_GET)
    apdu = security.build_glo(security.GENERAL_GLO, 0x30, 7, ct, GB_TITLE)
    assert apdu[:10] == b"\xdb\x08" + GB_TITLE
    tag, title, sc, ic, ct2 = security.parse_glo(apdu)
    assert (tag, title, sc, ic, ct2) == (0xDB, GB_TITLE, 0x30, 7, ct)


def test_hls_md5_is_md5_of_challenge_and_secret() -> None:
    # RFC 1321 test suite: MD5("abc") = 900150983cd24fb0d6963f7d28e17f72.
    assert security.hls_md5_response(b"ab", b"c").hex() == (
        "900150983cd24fb0d6963f7d28e17f72"
    )


def test_hls_gmac_matches_dlms_cosem() -> None:
    from dlms_cosem.security import SecurityControlField, gmac

    challenge = bytes(range(32))
    ours = security.hls_gmac_response(GB_TITLE, 5, GB_EK, GB_AK, challenge)
    theirs = gmac(
        SecurityControlField(0, True, False), GB_TITLE, 5, GB_EK, GB_AK, challenge
    )
    assert ours == b"\x10" + (5).to_bytes(4, "big") + theirs


# --- ACSE ---------------------------------------------------------------------


def test_parse_green_book_aarq_without_security() -> None:
    aarq = acse.parse_aarq(GB_AARQ_NONE)
    assert (aarq.context, aarq.mechanism, aarq.auth_value) == (1, 0, None)
    init = acse.parse_initiate_request(aarq.user_information)
    assert (init.dlms_version, init.conformance, init.max_pdu_size) == (
        6,
        0x007E1F,
        0x04B0,
    )


def test_parse_gosem_lls_aarq() -> None:
    aarq = acse.parse_aarq(GOSEM_AARQ_LLS)
    assert aarq.context == acse.CONTEXT_LN
    assert aarq.mechanism == acse.MECH_LLS
    assert aarq.auth_value == b"12345678"
    init = acse.parse_initiate_request(aarq.user_information)
    assert (init.conformance, init.max_pdu_size) == (0x00181F, 0x0100)


def test_parse_and_decipher_gosem_ciphered_aarq() -> None:
    aarq = acse.parse_aarq(GOSEM_AARQ_LLS_CIPHERED)
    assert aarq.context == acse.CONTEXT_LN_CIPHERED
    assert aarq.calling_ap_title == bytes.fromhex("4349520000000001")
    assert aarq.auth_value == b"JuS66BCZ"
    tag, _, sc, ic, ct = security.parse_glo(aarq.user_information)
    assert (tag, sc, ic) == (security.GLO_INITIATE_REQUEST, 0x30, 0x107)
    plain = security.decrypt(sc, aarq.calling_ap_title, ic, GOSEM_KEY, GOSEM_KEY, ct)
    init = acse.parse_initiate_request(plain)
    assert init.dedicated_key == bytes.fromhex("E803739DBE338C3A790D8D1B12C63FE2")
    assert init.max_pdu_size == 512


def test_build_aare_matches_gosem_vector() -> None:
    aare = acse.build_aare(
        context=acse.CONTEXT_LN,
        result=acse.RESULT_ACCEPTED,
        diagnostic=acse.DIAG_NULL,
        user_information=acse.build_initiate_response(0x00101D, 0x0080),
    )
    assert aare == GOSEM_AARE_ACCEPTED


def test_gosem_ciphered_aare_deciphers_to_initiate_response() -> None:
    fields = acse.ber_tlvs(GOSEM_AARE_CIPHERED[2:])
    title = acse.ber_tlvs(fields[0xA4])[0x04]
    user = acse.ber_tlvs(fields[0xBE])[0x04]
    _, _, sc, ic, ct = security.parse_glo(user)
    plain = security.decrypt(sc, title, ic, GOSEM_KEY, GOSEM_KEY, ct)
    assert plain[:7] == b"\x08\x00\x06\x5f\x1f\x04\x00"


def test_rejected_aare_is_parsed_by_dlms_cosem() -> None:
    from dlms_cosem.enumerations import AssociationResult
    from dlms_cosem.protocol.acse import ApplicationAssociationResponse

    raw = acse.build_aare(
        context=1,
        result=acse.RESULT_REJECTED_PERMANENT,
        diagnostic=acse.DIAG_AUTHENTICATION_FAILURE,
    )
    aare = ApplicationAssociationResponse.from_bytes(raw)
    assert aare.result is AssociationResult.REJECTED_PERMANENT
    assert aare.result_source_diagnostics.value == 13


def test_malformed_aarq_raises_clear_error() -> None:
    with pytest.raises(acse.AcseError):
        acse.parse_aarq(b"\x60\x05\xa1\x03\x06\x01\x00")
    with pytest.raises(acse.AcseError):
        acse.parse_aarq(GB_AARQ_NONE[:-3])


# --- xDLMS ------------------------------------------------------------------


def test_parse_green_book_get_request() -> None:
    req = xdlms.parse_request(GB_PLAIN_GET)
    assert req.service == xdlms.GET_REQUEST and req.kind == 1
    ref = req.attributes[0]
    assert (ref.class_id, ref.ln, ref.attribute, ref.selector) == (
        8,
        bytes.fromhex("0000010000FF"),
        2,
        None,
    )


def test_get_response_is_parsed_by_dlms_cosem() -> None:
    from dlms_cosem.protocol.xdlms import GetResponseFactory

    raw = xdlms.get_response_normal(0xC1, axdr.u32(123456))
    resp = GetResponseFactory.from_bytes(raw)
    assert resp.data == b"\x06\x00\x01\xe2\x40"


def test_truncated_request_raises() -> None:
    with pytest.raises(xdlms.XdlmsError):
        xdlms.parse_request(GB_PLAIN_GET[:8])


# --- A-XDR ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (axdr.u32(10001), dlms_data.DoubleLongUnsignedData(10001)),
        (axdr.i32(-5), dlms_data.DoubleLongData(-5)),
        (axdr.u16(5000), dlms_data.UnsignedLongData(5000)),
        (axdr.u8(7), dlms_data.UnsignedIntegerData(7)),
        (axdr.i8(-2), dlms_data.IntegerData(-2)),
        (axdr.enum(30), dlms_data.EnumData(30)),
        (axdr.octets(b"PPS1"), dlms_data.OctetStringData(b"PPS1")),
        (axdr.visible("abc"), dlms_data.VisibleStringData("abc")),
    ],
)
def test_axdr_encoding_matches_dlms_cosem(ours: axdr.Data, theirs) -> None:
    assert axdr.encode(ours) == theirs.to_bytes()


def test_axdr_boolean_and_nested_data_parse_in_dlms_cosem() -> None:
    from dlms_cosem.utils import parse_as_dlms_data

    value = axdr.struct_(axdr.boolean(True), axdr.array([axdr.u16(1), axdr.u16(2)]))
    assert parse_as_dlms_data(axdr.encode(value)) == [True, [1, 2]]


def test_axdr_long_length_uses_0x81_prefix() -> None:
    # A-XDR/BER definite length: 128..255 is 0x81 nn. (dlms-cosem 25.1.0 writes
    # a bare 0xC8 here, which is why this case is not in the cross-check.)
    assert axdr.encode(axdr.octets(bytes(200)))[:3] == b"\x09\x81\xc8"
    assert axdr.encode(axdr.octets(bytes(300)))[:4] == b"\x09\x82\x01\x2c"


def test_axdr_structure_known_bytes() -> None:
    # scaler_unit {0, Wh}: Blue Book register example 02 02 0F 00 16 1E.
    assert axdr.encode(axdr.struct_(axdr.i8(0), axdr.enum(30))) == bytes.fromhex(
        "02020F00161E"
    )
    # bit-string "10100" -> 04 05 A0
    assert axdr.encode(axdr.bits("10100")) == bytes.fromhex("0405A0")


def _data_trees():
    leaves = st.one_of(
        st.integers(0, 2**32 - 1).map(axdr.u32),
        st.integers(-(2**31), 2**31 - 1).map(axdr.i32),
        st.integers(0, 255).map(axdr.enum),
        st.booleans().map(axdr.boolean),
        st.binary(max_size=300).map(axdr.octets),
        st.text("01", max_size=40).map(axdr.bits),
        st.just(axdr.null()),
    )
    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.lists(kids, max_size=5).map(lambda xs: axdr.struct_(*xs)),
            st.lists(kids, max_size=5).map(axdr.array),
        ),
        max_leaves=20,
    )


@settings(max_examples=60, deadline=None)
@given(_data_trees())
def test_axdr_round_trip(value: axdr.Data) -> None:
    assert axdr.decode_all(axdr.encode(value)) == value


def test_axdr_truncated_and_trailing_bytes_raise() -> None:
    with pytest.raises(axdr.AxdrError):
        axdr.decode_all(b"\x06\x00\x01")
    with pytest.raises(axdr.AxdrError, match="trailing"):
        axdr.decode_all(b"\x11\x01\x00")
    with pytest.raises(axdr.AxdrError, match="unsupported"):
        axdr.decode_all(b"\x63")


def test_datetime_round_trip_and_unspecified() -> None:
    t = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    raw = axdr.encode_datetime(t)
    assert raw == bytes.fromhex("07EA0304030506070000000000"[:24])
    assert axdr.decode_datetime(raw) == t
    assert axdr.decode_datetime(b"\xff\xff\xff\xff" + bytes(8)) is None


def test_datetime_matches_dlms_cosem_parser() -> None:
    from dlms_cosem.time import datetime_from_bytes

    t = dt.datetime(2025, 12, 31, 23, 45, tzinfo=dt.UTC)
    parsed, _ = datetime_from_bytes(axdr.encode_datetime(t))
    # dlms-cosem returns a naive datetime for deviation 0; compare wall time.
    assert parsed.replace(tzinfo=None) == t.replace(tzinfo=None)


# --- framing ------------------------------------------------------------------


def test_fcs16_check_value() -> None:
    # CRC-16/IBM-SDLC (= X.25, the HDLC FCS) check value from the reveng CRC
    # catalogue: CRC("123456789") = 0x906E.
    assert framing.fcs16(b"123456789") == 0x906E


def test_hdlc_snrm_from_dlms_cosem_is_parsed() -> None:
    snrm = cosem_frames.SetNormalResponseModeFrame(
        destination_address=cosem_address.HdlcAddress(1, None, "server"),
        source_address=cosem_address.HdlcAddress(16, None, "client"),
    ).to_bytes()
    frame = framing.parse_hdlc(snrm)
    assert frame.control == framing.SNRM
    assert framing.hdlc_address_value(frame.destination) == 1
    assert framing.hdlc_address_value(frame.source) == 16


def test_hdlc_information_frame_is_parsed_by_dlms_cosem() -> None:
    raw = framing.build_hdlc(b"\x21", b"\x03", 0x30, b"\xe6\xe7\x00" + bytes(20))
    frame = cosem_frames.InformationFrame.from_bytes(raw)
    assert frame.payload == b"\xe6\xe7\x00" + bytes(20)
    assert framing.parse_hdlc(raw).info == b"\xe6\xe7\x00" + bytes(20)


def test_hdlc_corrupted_frame_is_refused() -> None:
    raw = bytearray(framing.build_hdlc(b"\x21", b"\x03", 0x30, b"hello"))
    raw[-4] ^= 0xFF
    with pytest.raises(framing.FramingError, match="FCS"):
        framing.parse_hdlc(bytes(raw))


def test_hdlc_decoder_splits_stream_with_shared_flags() -> None:
    a = framing.build_hdlc(b"\x21", b"\x03", 0x73)
    b = framing.build_hdlc(b"\x21", b"\x03", 0x53)
    stream = a + b[1:]  # frames sharing one flag
    dec = framing.HdlcDecoder()
    frames = dec.feed(stream[:5]) + dec.feed(stream[5:])
    assert [framing.parse_hdlc(f).control for f in frames] == [0x73, 0x53]


def test_wrapper_decoder_reassembles_and_rejects_bad_version() -> None:
    raw = framing.wrap(16, 1, b"\x60\x00") * 2
    dec = framing.WrapperDecoder()
    assert dec.feed(raw[:3]) == []
    frames = dec.feed(raw[3:])
    assert [(f.source, f.destination, f.apdu) for f in frames] == [
        (16, 1, b"\x60\x00")
    ] * 2
    with pytest.raises(framing.FramingError):
        framing.WrapperDecoder().feed(b"\x00\x02\x00\x10\x00\x01\x00\x00")
