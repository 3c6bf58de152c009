"""AES-GCM for gurux-dlms through the `cryptography` package.

Why this module exists: gurux-dlms 1.0.203 decrypts ciphered APDUs with its
own pure-Python AES-GCM, built in "encrypt" mode, so the authentication tag
of a reply is *never verified* (a flipped ciphertext byte silently changes
the value read) and every APDU costs milliseconds of CPU (bench/README.md).
It also print()s "Encryption is applied." for each ciphered PDU.

Importing this module replaces the two class methods
`GXDLMSChippering.encryptAesGcm` / `decryptAesGcm` in place. The module is
reached through `sys.modules["gurux_dlms.GXDLMSChippering"]` because
`import gurux_dlms.GXDLMSChippering` yields the class re-exported by the
package `__init__`, not the module. Patching the class (rather than the
module attribute) reaches every caller, since gurux modules imported the
class object itself. Only security suite 0 (AES-128-GCM, 12-byte tags) with
authentication, or authentication and encryption, is supported; anything
else is refused with a clear error rather than processed unauthenticated.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TAG_LENGTH = 12  # DLMS suite 0 truncates the GCM tag to 96 bits.

SECURITY_AUTHENTICATION = 0x10
SECURITY_ENCRYPTION = 0x20
SECURITY_AUTHENTICATION_ENCRYPTION = 0x30

_GENERAL_CIPHERING_WITH_TITLE = (0xDB, 0xDC)  # general-glo, general-ded
_GENERAL_GLO = 0xDB
_DATA_NOTIFICATION = 0x0F
_GENERAL_CIPHERING = 0xDD
# Service-specific glo (0x21..0x2D, 0xC8..0xCF, 0xD0..0xDA ded) PDUs carry
# no system title: the peer's title from the AARE is used.
_SERVICE_SPECIFIC = frozenset(
    # glo-initiate/read/write/confirmed-service-error and ded counterparts
    [0x21, 0x25, 0x26, 0x28, 0x2C, 0x2D, 0x2E]
    + [0x41, 0x45, 0x46, 0x48, 0x4C, 0x4D, 0x4E]
    # glo get/set/event/action requests and responses, ded ones
    + list(range(0xC8, 0xD0))
    + list(range(0xD0, 0xD8))
)
# What a client may accept from a meter.  With one block cipher key in both
# directions, a request frame the client sent itself verifies too: a
# reflected or replayed request must not be taken for the meter's answer.
# The client uses logical names, global keys and no push services, so only
# these (and general-glo carrying the meter's own system title) are replies.
CLIENT_REPLY_TAGS = frozenset(
    [
        0x28,  # glo-initiate-response (AARE user-information)
        0x2E,  # glo-confirmed-service-error
        0xCC,  # glo-get-response
        0xCD,  # glo-set-response
        0xCF,  # glo-action-response
    ]
)


class GcmError(ValueError):
    """A ciphered APDU failed authentication or is not acceptable."""


class GcmTagError(GcmError):
    """The GCM authentication tag does not verify: tampered or wrong key."""


class GcmUnexpectedApdu(GcmError):
    """A ciphered APDU a client must not accept (a request, a foreign title)."""


def nonce(system_title: bytes, invocation_counter: int) -> bytes:
    """The 96-bit GCM IV: 8-byte system title || 32-bit invocation counter."""
    if len(system_title) != 8:
        raise GcmError(f"system title must be 8 bytes, got {len(system_title)}")
    if not 0 <= invocation_counter <= 0xFFFFFFFF:
        raise GcmError("invocation counter out of range")
    return bytes(system_title) + invocation_counter.to_bytes(4, "big")


def gcm_encrypt(
    key: bytes, iv: bytes, plaintext: bytes, aad: bytes
) -> tuple[bytes, bytes]:
    """Return (ciphertext, 12-byte tag)."""
    enc = Cipher(algorithms.AES(bytes(key)), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(aad)
    ciphertext = enc.update(plaintext) + enc.finalize()
    return ciphertext, enc.tag[:TAG_LENGTH]


def gcm_decrypt(
    key: bytes, iv: bytes, ciphertext: bytes, aad: bytes, tag: bytes
) -> bytes:
    """Decrypt and verify; raises GcmTagError when the tag does not verify."""
    dec = Cipher(
        algorithms.AES(bytes(key)),
        modes.GCM(iv, bytes(tag), min_tag_length=TAG_LENGTH),
    ).decryptor()
    dec.authenticate_additional_data(aad)
    try:
        return dec.update(ciphertext) + dec.finalize()
    except InvalidTag as exc:
        raise GcmTagError("GCM authentication tag does not verify") from exc


def _ber_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return bytes([0x81, n])
    if n <= 0xFFFF:
        return b"\x82" + n.to_bytes(2, "big")
    return b"\x84" + n.to_bytes(4, "big")


def _security_control(p: Any) -> int:
    sc = int(p.security) | int(p.securitySuite)
    if p.broadcast:
        sc |= 0x40
    if p.compression:
        sc |= 0x80
    return sc


def _check_suite0(security: int, suite: int) -> None:
    if suite != 0:
        raise GcmError(f"security suite {suite} is not supported (suite 0 only)")
    if security not in (SECURITY_AUTHENTICATION, SECURITY_AUTHENTICATION_ENCRYPTION):
        raise GcmError(
            f"security control 0x{security:02X} refused: only authenticated "
            "ciphering (0x10, 0x30) is accepted"
        )


def encrypt_aes_gcm(cls: Any, p: Any, plain: Any) -> bytearray:
    """Replacement for GXDLMSChippering.encryptAesGcm (same framing rules).

    `p.type_` is gurux's CountType: -1 = full packet; otherwise a bit mask of
    TAG (1) and DATA (2) selecting what is returned (HLS-GMAC uses TAG only).
    """
    from gurux_dlms.CountType import CountType

    plain = bytes(plain.array() if hasattr(plain, "array") else plain)
    security = int(p.security)
    _check_suite0(security, int(p.securitySuite))
    p.countTag = None
    sc = _security_control(p)
    ic = int(p.invocationCounter)
    iv = nonce(bytes(p.systemTitle), ic)
    ak = bytes(p.authenticationKey)
    packet = p.type_ == CountType.PACKET
    if security == SECURITY_AUTHENTICATION:
        _, tag = gcm_encrypt(p.blockCipherKey, iv, b"", bytes([sc]) + ak + plain)
        body = plain
    else:
        body, tag = gcm_encrypt(p.blockCipherKey, iv, plain, bytes([sc]) + ak)
    out = bytearray()
    if packet:
        out += bytes([sc]) + ic.to_bytes(4, "big")
    if packet or p.type_ & CountType.DATA:
        out += body
    if packet or p.type_ & CountType.TAG:
        p.countTag = bytearray(tag)
        out += tag
    if not packet:
        return out
    framed = bytearray([int(p.tag) & 0xFF])
    if int(p.tag) in (*_GENERAL_CIPHERING_WITH_TITLE, _DATA_NOTIFICATION):
        if p.ignoreSystemTitle:
            framed.append(0)
        else:
            framed += _ber_length(len(p.systemTitle)) + bytes(p.systemTitle)
    framed += _ber_length(len(out)) + out
    return framed


def decrypt_aes_gcm(cls: Any, settings: Any, p: Any, data: Any) -> bytearray:
    """Replacement for GXDLMSChippering.decryptAesGcm.

    Verifies the tag (raises GcmTagError otherwise) and, when the session set
    `settings.pps_reply_guard`, lets it check the peer's invocation counter
    (replay protection) after the tag has verified.

    Unless `settings.isServer` is true (gurux's server side), the APDU must be
    a reply (CLIENT_REPLY_TAGS) or a general-glo whose system title is the
    server's one from the AARE (`settings.sourceSystemTitle`); anything else
    raises GcmUnexpectedApdu before any decryption.
    """
    from gurux_dlms.internal._GXCommon import _GXCommon

    if data is None or len(data) - data.position < 2:
        raise GcmError("ciphered APDU too short")
    cmd = data.getUInt8()
    client = not getattr(settings, "isServer", False)
    if client and cmd not in CLIENT_REPLY_TAGS and cmd != _GENERAL_GLO:
        raise GcmUnexpectedApdu(
            f"ciphered APDU tag 0x{cmd:02X} is not a reply a client accepts "
            "(a request reflected back, or a dedicated/push APDU)"
        )
    if cmd in _GENERAL_CIPHERING_WITH_TITLE:
        n = _GXCommon.getObjectCount(data)
        title = bytearray(n)
        if n:
            data.get(title)
        if client:
            server = getattr(settings, "sourceSystemTitle", None)
            if not server or bytes(title) != bytes(server):
                raise GcmUnexpectedApdu(
                    "general-glo APDU with a system title other than the "
                    "meter's one from the AARE"
                )
        if n:
            p.systemTitle = title
    elif cmd == _GENERAL_CIPHERING:
        raise GcmError("general-ciphering (0xDD) APDUs are not supported")
    elif cmd not in _SERVICE_SPECIFIC:
        raise GcmError(f"unexpected ciphered APDU tag 0x{cmd:02X}")
    length = _GXCommon.getObjectCount(data)
    if length < 5 + TAG_LENGTH or length > len(data) - data.position:
        raise GcmError("ciphered APDU length is inconsistent")
    content = bytearray(length)
    data.get(content)
    p.cipheredContent = content
    sc = content[0]
    security, suite = sc & 0x30, sc & 0x03
    if sc & 0x40:
        raise GcmError("broadcast ciphering is not supported")
    _check_suite0(security, suite)
    p.security = security
    p.securitySuite = suite
    p.compression = bool(sc & 0x80)
    ic = int.from_bytes(content[1:5], "big")
    p.invocationCounter = ic
    if not p.blockCipherKey or not p.authenticationKey or not p.systemTitle:
        raise GcmError("ciphering keys or peer system title missing")
    iv = nonce(bytes(p.systemTitle), ic)
    ak = bytes(p.authenticationKey)
    body, tag = bytes(content[5:-TAG_LENGTH]), bytes(content[-TAG_LENGTH:])
    if security == SECURITY_AUTHENTICATION:
        gcm_decrypt(p.blockCipherKey, iv, b"", bytes([sc]) + ak + body, tag)
        plain = body
    else:
        plain = gcm_decrypt(p.blockCipherKey, iv, body, bytes([sc]) + ak, tag)
    guard = getattr(settings, "pps_reply_guard", None)
    if guard is not None:
        guard(bytes(p.systemTitle), ic)
    return bytearray(plain)


def install() -> None:
    """Patch gurux's cipher class (idempotent)."""
    importlib.import_module("gurux_dlms.GXDLMSChippering")
    cls = sys.modules["gurux_dlms.GXDLMSChippering"].GXDLMSChippering
    if getattr(cls, "_pps_patched", False):
        return
    cls.encryptAesGcm = classmethod(encrypt_aes_gcm)
    cls.decryptAesGcm = classmethod(decrypt_aes_gcm)
    cls._pps_patched = True


install()
