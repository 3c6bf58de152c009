"""DLMS security suite 0 (AES-128-GCM, 12-byte tag) and HLS f() functions.

Uses the ``cryptography`` package, so a ciphertext or tag that does not verify
raises :class:`CipherError` (unlike gurux-dlms 1.0.203, which never checks tags).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .axdr import decode_length, encode_length

TAG_LEN = 12
SC_AUTH = 0x10
SC_ENC = 0x20
SC_AUTH_ENC = 0x30

# Ciphered xDLMS APDU tags (Green Book 9.5, "glo-" service-specific ciphering).
GLO_INITIATE_REQUEST = 0x21
GLO_INITIATE_RESPONSE = 0x28
GLO_GET_REQUEST = 0xC8
GLO_SET_REQUEST = 0xC9
GLO_ACTION_REQUEST = 0xCB
GLO_GET_RESPONSE = 0xCC
GLO_SET_RESPONSE = 0xCD
GLO_ACTION_RESPONSE = 0xCF
GENERAL_GLO = 0xDB

# Plain request tag -> glo request tag and plain response tag -> glo response tag.
GLO_FOR_PLAIN = {
    0xC0: GLO_GET_REQUEST,
    0xC1: GLO_SET_REQUEST,
    0xC3: GLO_ACTION_REQUEST,
    0xC4: GLO_GET_RESPONSE,
    0xC5: GLO_SET_RESPONSE,
    0xC7: GLO_ACTION_RESPONSE,
    0x01: GLO_INITIATE_REQUEST,
    0x08: GLO_INITIATE_RESPONSE,
}
SERVICE_SPECIFIC_REQUESTS = {GLO_GET_REQUEST, GLO_SET_REQUEST, GLO_ACTION_REQUEST}


class CipherError(ValueError):
    """GCM tag did not verify, or a ciphered APDU is malformed."""


def _iv(system_title: bytes, ic: int) -> bytes:
    if len(system_title) != 8:
        raise CipherError("system title must be 8 bytes")
    return system_title + ic.to_bytes(4, "big")


def encrypt(
    sc: int, system_title: bytes, ic: int, ek: bytes, ak: bytes, plain: bytes
) -> bytes:
    """Return ciphertext || 12-byte tag (security control 0x30 only)."""
    if sc & 0x30 != SC_AUTH_ENC:
        raise CipherError(f"security control 0x{sc:02X} not supported")
    out = AESGCM(ek).encrypt(_iv(system_title, ic), plain, bytes([sc]) + ak)
    return out[:-16] + out[-16:][:TAG_LEN]


def decrypt(
    sc: int, system_title: bytes, ic: int, ek: bytes, ak: bytes, data: bytes
) -> bytes:
    if sc & 0x30 != SC_AUTH_ENC:
        raise CipherError(f"security control 0x{sc:02X} not supported")
    if len(data) < TAG_LEN:
        raise CipherError("ciphered text shorter than the tag")
    ct, tag = data[:-TAG_LEN], data[-TAG_LEN:]
    # AESGCM only accepts 16-byte tags; the Cipher API allows DLMS's 12 bytes.
    dec = Cipher(
        algorithms.AES(ek), modes.GCM(_iv(system_title, ic), tag, min_tag_length=12)
    ).decryptor()
    dec.authenticate_additional_data(bytes([sc]) + ak)
    try:
        return dec.update(ct) + dec.finalize()
    except InvalidTag as exc:
        raise CipherError("GCM tag does not verify") from exc


def gmac(system_title: bytes, ic: int, ek: bytes, ak: bytes, challenge: bytes) -> bytes:
    """GMAC(SC=0x10 || AK || challenge), 12-byte tag (HLS mechanism 5)."""
    out = AESGCM(ek).encrypt(
        _iv(system_title, ic), b"", bytes([SC_AUTH]) + ak + challenge
    )
    return out[:TAG_LEN]


def hls_gmac_response(
    system_title: bytes, ic: int, ek: bytes, ak: bytes, challenge: bytes
) -> bytes:
    """f(challenge) = SC || IC || GMAC, as sent in reply_to_HLS_authentication."""
    return (
        bytes([SC_AUTH])
        + ic.to_bytes(4, "big")
        + gmac(system_title, ic, ek, ak, challenge)
    )


def hls_md5_response(challenge: bytes, secret: bytes) -> bytes:
    """HLS mechanism 3: f(challenge) = MD5(challenge || secret)."""
    return hashlib.md5(challenge + secret, usedforsecurity=False).digest()


def split_ciphered(content: bytes) -> tuple[int, int, bytes]:
    """SC || IC || ciphertext -> (sc, ic, ciphertext)."""
    if len(content) < 5 + TAG_LEN:
        raise CipherError("ciphered content too short")
    return content[0], int.from_bytes(content[1:5], "big"), bytes(content[5:])


def parse_glo(apdu: bytes) -> tuple[int, bytes | None, int, int, bytes]:
    """Parse a glo (service-specific) or general-glo APDU.

    Returns (tag, system_title or None, sc, ic, ciphertext).
    """
    if not apdu:
        raise CipherError("empty APDU")
    tag = apdu[0]
    pos = 1
    title: bytes | None = None
    if tag == GENERAL_GLO:
        n, pos = decode_length(apdu, pos)
        title = bytes(apdu[pos : pos + n])
        pos += n
    first = apdu[pos] if pos < len(apdu) else 0
    try:
        n, body = decode_length(apdu, pos)
    except ValueError:
        n, body = -1, pos
    if body + n != len(apdu) and first >= 0x80 and len(apdu) - pos - 1 == first:
        # dlms-cosem 25.1.0 writes lengths 128-255 as one bare byte; accept that
        # form when it is the only reading that matches the APDU size.
        n, body = first, pos + 1
    content = apdu[body : body + n]
    if n < 0 or len(content) != n:
        raise CipherError("truncated ciphered APDU")
    sc, ic, ct = split_ciphered(content)
    return tag, title, sc, ic, ct


def build_glo(
    tag: int, sc: int, ic: int, ciphertext: bytes, system_title: bytes | None = None
) -> bytes:
    content = bytes([sc]) + ic.to_bytes(4, "big") + ciphertext
    head = bytes([tag])
    if tag == GENERAL_GLO:
        title = system_title or b""
        head += encode_length(len(title)) + title
    return head + encode_length(len(content)) + content
