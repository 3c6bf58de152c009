"""AES-GCM shim for gurux-dlms: known answers and tag verification.

Known-answer vectors: DLMS UA Green Book (DLMS UA 1000-2 Ed. 8), Table 40
"ciphered glo-get-request" example: system title 4D4D4D0000BC614E,
IC 0x01234567, EK 000102..0F, AK D0D1..DF, APDU C0010000080000010000FF0200
(get-request clock attr 2). The same values are used in the test suites of
dlms-cosem (u9n/dlms-cosem tests/test_security.py) and Gurux.
"""

from types import SimpleNamespace

import pytest
from trytond.modules.prepaid_headend.dlms import gcm  # installs the shim

from gurux_dlms import GXByteBuffer  # isort: skip
from gurux_dlms.AesGcmParameter import AesGcmParameter  # isort: skip
from gurux_dlms.GXDLMSChippering import GXDLMSChippering  # isort: skip

SYSTEM_TITLE = bytes.fromhex("4D4D4D0000BC614E")
IC = 0x01234567
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
APDU = bytes.fromhex("C0010000080000010000FF0200")
GB_AUTH_ENC = bytes.fromhex(
    "C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B"
)
GB_AUTH_ONLY = bytes.fromhex(
    "C81E1001234567C0010000080000010000FF020006725D910F9221D263877516"
)


def _param(security: int) -> AesGcmParameter:
    p = AesGcmParameter(0xC8, bytearray(SYSTEM_TITLE), bytearray(EK), bytearray(AK))
    p.security = security
    p.invocationCounter = IC
    return p


def _decrypt(frame: bytes, guard=None) -> bytes:
    """Decrypt as the meter (server) would: the Green Book vectors are requests."""
    p = AesGcmParameter(0, bytearray(SYSTEM_TITLE), bytearray(EK), bytearray(AK))
    settings = SimpleNamespace(pps_reply_guard=guard, isServer=True)
    return bytes(GXDLMSChippering.decryptAesGcm(settings, p, GXByteBuffer(frame)))


def _client_decrypt(frame: bytes, server_title: bytes | None = SYSTEM_TITLE) -> bytes:
    """Decrypt as the head-end client: the AARE gave the meter's system title."""
    p = AesGcmParameter(0, bytearray(SYSTEM_TITLE), bytearray(EK), bytearray(AK))
    settings = SimpleNamespace(isServer=False, sourceSystemTitle=server_title)
    return bytes(GXDLMSChippering.decryptAesGcm(settings, p, GXByteBuffer(frame)))


def _frame(tag: int, apdu: bytes, title: bytes = SYSTEM_TITLE) -> bytes:
    p = AesGcmParameter(tag, bytearray(title), bytearray(EK), bytearray(AK))
    p.security = 0x30
    p.invocationCounter = IC
    return bytes(GXDLMSChippering.encryptAesGcm(p, apdu))


def test_shim_installed_on_gurux_class():
    assert GXDLMSChippering._pps_patched is True
    assert GXDLMSChippering.decryptAesGcm.__func__ is gcm.decrypt_aes_gcm


def test_encrypt_green_book_authenticated_encryption():
    assert bytes(GXDLMSChippering.encryptAesGcm(_param(0x30), APDU)) == GB_AUTH_ENC


def test_encrypt_green_book_authentication_only():
    assert bytes(GXDLMSChippering.encryptAesGcm(_param(0x10), APDU)) == GB_AUTH_ONLY


def test_decrypt_green_book_vectors():
    assert _decrypt(GB_AUTH_ENC) == APDU
    assert _decrypt(GB_AUTH_ONLY) == APDU


@pytest.mark.parametrize("index", [7, 10, 19, len(GB_AUTH_ENC) - 1])
def test_flipped_byte_is_rejected(index):
    # Index 7.. = ciphertext, last = tag. gurux 1.0.203 accepted these.
    tampered = bytearray(GB_AUTH_ENC)
    tampered[index] ^= 0x01
    with pytest.raises(gcm.GcmTagError):
        _decrypt(bytes(tampered))


def test_authentication_only_tampered_plaintext_rejected():
    tampered = bytearray(GB_AUTH_ONLY)
    tampered[10] ^= 0x80
    with pytest.raises(gcm.GcmTagError):
        _decrypt(bytes(tampered))


def test_wrong_key_is_rejected():
    p = AesGcmParameter(0, bytearray(SYSTEM_TITLE), bytearray(16), bytearray(AK))
    settings = SimpleNamespace(isServer=True)
    with pytest.raises(gcm.GcmTagError):
        GXDLMSChippering.decryptAesGcm(settings, p, GXByteBuffer(GB_AUTH_ENC))


def test_encryption_without_authentication_refused():
    frame = bytes.fromhex("C8122001234567411312FF935A47566827C467BC")
    with pytest.raises(gcm.GcmError, match="only authenticated"):
        _decrypt(frame)
    with pytest.raises(gcm.GcmError):
        GXDLMSChippering.encryptAesGcm(_param(0x20), APDU)


def test_truncated_frame_refused():
    with pytest.raises(gcm.GcmError, match="length"):
        _decrypt(GB_AUTH_ENC[:-3])


def test_general_glo_ciphering_round_trip_uses_title_from_frame():
    p = _param(0x30)
    p.tag = 0xDB
    frame = bytes(GXDLMSChippering.encryptAesGcm(p, APDU))
    assert frame[:10] == b"\xdb\x08" + SYSTEM_TITLE
    other = AesGcmParameter(0, bytearray(b"XXXXXXXX"), bytearray(EK), bytearray(AK))
    settings = SimpleNamespace(isServer=False, sourceSystemTitle=SYSTEM_TITLE)
    plain = GXDLMSChippering.decryptAesGcm(settings, other, GXByteBuffer(frame))
    assert bytes(plain) == APDU and bytes(other.systemTitle) == SYSTEM_TITLE


def test_reply_guard_sees_counter_after_verification():
    seen = []
    assert _decrypt(GB_AUTH_ENC, guard=lambda t, ic: seen.append((t, ic))) == APDU
    assert seen == [(SYSTEM_TITLE, IC)]


def test_nonce_validation():
    assert gcm.nonce(SYSTEM_TITLE, 1) == SYSTEM_TITLE + b"\x00\x00\x00\x01"
    with pytest.raises(gcm.GcmError):
        gcm.nonce(b"short", 1)
    with pytest.raises(gcm.GcmError):
        gcm.nonce(SYSTEM_TITLE, 2**32)


def test_no_encryption_print(capsys):
    _decrypt(GB_AUTH_ENC)
    assert capsys.readouterr().out == ""


# --- review fix: the client accepts replies only ----------------------------
# glo-get-response (0xCC) to the Green Book request: invoke-id 0x81, data
# octet-string of 12 bytes (a COSEM date-time) -- hand-built, see docs/dlms.md
# section 5.
RESPONSE = bytes.fromhex("C4018100090C07E6010102000000FF800000")


def test_client_accepts_glo_get_response():
    assert _client_decrypt(_frame(0xCC, RESPONSE)) == RESPONSE


@pytest.mark.parametrize("tag", [0xC8, 0xC9, 0xCA, 0xCB, 0x21, 0xD0, 0xD4, 0xDC])
def test_client_refuses_reflected_requests_and_non_reply_tags(tag):
    # With one key in both directions these frames verify: only the tag says
    # they are not the meter's answer.  Before the fix they were decrypted.
    frame = _frame(tag, APDU)
    with pytest.raises(gcm.GcmUnexpectedApdu, match=f"0x{tag:02X}"):
        _client_decrypt(frame)


def test_client_refuses_green_book_request_vector():
    with pytest.raises(gcm.GcmUnexpectedApdu):
        _client_decrypt(GB_AUTH_ENC)


def test_client_refuses_general_glo_with_foreign_system_title():
    client_title = b"PPSHES01"
    frame = _frame(0xDB, RESPONSE, title=client_title)  # our own frame reflected
    with pytest.raises(gcm.GcmUnexpectedApdu, match="system title"):
        _client_decrypt(frame, server_title=SYSTEM_TITLE)
    with pytest.raises(gcm.GcmUnexpectedApdu):
        _client_decrypt(frame, server_title=None)  # no AARE title: refuse


def test_client_accepts_general_glo_from_the_meter():
    frame = _frame(0xDB, RESPONSE, title=SYSTEM_TITLE)
    assert _client_decrypt(frame, server_title=SYSTEM_TITLE) == RESPONSE
