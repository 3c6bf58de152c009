"""ACSE APDUs (AARQ/AARE, RLRQ/RLRE, BER) and the xDLMS Initiate exchange.

Green Book 9.4 (COSEM application layer) and ISO 8650 ACSE; only the fields a
DLMS/COSEM association uses are handled.
"""

from __future__ import annotations

from dataclasses import dataclass

from .axdr import decode_length, encode_length

AARQ = 0x60
AARE = 0x61
RLRQ = 0x62
RLRE = 0x63

# Application context names: 2.16.756.5.8.1.{1 LN, 2 SN, 3 LN ciphered, 4 SN ciph}
_CONTEXT_PREFIX = bytes.fromhex("608574050801")
_MECHANISM_PREFIX = bytes.fromhex("608574050802")
CONTEXT_LN = 1
CONTEXT_LN_CIPHERED = 3

# Authentication mechanisms (2.16.756.5.8.2.x).
MECH_NONE = 0
MECH_LLS = 1
MECH_HLS_MD5 = 3
MECH_HLS_GMAC = 5

# AARE result and acse-service-user diagnostics.
RESULT_ACCEPTED = 0
RESULT_REJECTED_PERMANENT = 1
DIAG_NULL = 0
DIAG_NO_REASON = 1
DIAG_CONTEXT_NOT_SUPPORTED = 2
DIAG_MECHANISM_NOT_RECOGNISED = 11
DIAG_MECHANISM_REQUIRED = 12
DIAG_AUTHENTICATION_FAILURE = 13
DIAG_AUTHENTICATION_REQUIRED = 14

# Conformance bits (Green Book 9.5 "Conformance" BIT STRING, bit 0 = MSB).
CONF_GENERAL_PROTECTION = 1 << (23 - 1)
CONF_PRIORITY_MGMT = 1 << (23 - 9)
CONF_BLOCK_GET = 1 << (23 - 11)
CONF_BLOCK_SET = 1 << (23 - 12)
CONF_BLOCK_ACTION = 1 << (23 - 13)
CONF_MULTIPLE_REFERENCES = 1 << (23 - 14)
CONF_GET = 1 << (23 - 19)
CONF_SET = 1 << (23 - 20)
CONF_SELECTIVE_ACCESS = 1 << (23 - 21)
CONF_ACTION = 1 << (23 - 23)
SERVER_CONFORMANCE = (
    CONF_GENERAL_PROTECTION
    | CONF_PRIORITY_MGMT
    | CONF_BLOCK_GET
    | CONF_BLOCK_SET
    | CONF_BLOCK_ACTION
    | CONF_MULTIPLE_REFERENCES
    | CONF_GET
    | CONF_SET
    | CONF_SELECTIVE_ACCESS
    | CONF_ACTION
)


class AcseError(ValueError):
    """Malformed ACSE or Initiate APDU."""


def ber_tlvs(data: bytes) -> dict[int, bytes]:
    """Split BER TLVs at one level into {tag: value}."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        tag = data[pos]
        try:
            length, pos = decode_length(data, pos + 1)
        except ValueError as exc:
            raise AcseError(str(exc)) from exc
        if pos + length > len(data):
            raise AcseError(f"BER field 0x{tag:02X} overruns the APDU")
        out[tag] = bytes(data[pos : pos + length])
        pos += length
    return out


def ber(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(value)) + value


def _unwrap(apdu: bytes, tag: int) -> bytes:
    if not apdu or apdu[0] != tag:
        raise AcseError(f"expected APDU tag 0x{tag:02X}")
    length, pos = decode_length(apdu, 1)
    if pos + length != len(apdu):
        raise AcseError("APDU length does not match its content")
    return bytes(apdu[pos:])


@dataclass
class Aarq:
    context: int
    mechanism: int
    calling_ap_title: bytes | None
    auth_value: bytes | None
    user_information: bytes | None  # xDLMS InitiateRequest (plain or glo)


def parse_aarq(apdu: bytes) -> Aarq:
    fields = ber_tlvs(_unwrap(apdu, AARQ))
    ctx = fields.get(0xA1)
    if not ctx or len(ctx) != 9 or ctx[:2] != b"\x06\x07":
        raise AcseError("missing application-context-name")
    if ctx[2:8] != _CONTEXT_PREFIX:
        raise AcseError("unknown application context")
    mechanism = MECH_NONE
    if 0x8B in fields:
        mech = fields[0x8B]
        if len(mech) != 7 or mech[:6] != _MECHANISM_PREFIX:
            raise AcseError("unknown mechanism-name")
        mechanism = mech[6]
    title = None
    if 0xA6 in fields:
        inner = ber_tlvs(fields[0xA6])
        title = inner.get(0x04)
    auth = None
    if 0xAC in fields:
        inner = ber_tlvs(fields[0xAC])
        auth = inner.get(0x80)
    user = None
    if 0xBE in fields:
        inner = ber_tlvs(fields[0xBE])
        user = inner.get(0x04)
    return Aarq(ctx[8], mechanism, title, auth, user)


def build_aare(
    *,
    context: int,
    result: int,
    diagnostic: int,
    mechanism: int = MECH_NONE,
    responding_ap_title: bytes | None = None,
    auth_value: bytes | None = None,
    user_information: bytes | None = None,
) -> bytes:
    body = ber(0xA1, b"\x06\x07" + _CONTEXT_PREFIX + bytes([context]))
    body += ber(0xA2, b"\x02\x01" + bytes([result]))
    # result-source-diagnostic: acse-service-user [1] INTEGER.
    body += ber(0xA3, ber(0xA1, b"\x02\x01" + bytes([diagnostic])))
    if responding_ap_title is not None:
        body += ber(0xA4, ber(0x04, responding_ap_title))
    if mechanism != MECH_NONE and result == RESULT_ACCEPTED:
        body += ber(0x88, b"\x07\x80")  # responder-acse-requirements: authentication
        body += ber(0x89, _MECHANISM_PREFIX + bytes([mechanism]))
        if auth_value is not None:
            body += ber(0xAA, ber(0x80, auth_value))
    if user_information is not None:
        body += ber(0xBE, ber(0x04, user_information))
    return ber(AARE, body)


def parse_rlrq(apdu: bytes) -> dict[int, bytes]:
    return ber_tlvs(_unwrap(apdu, RLRQ)) if len(apdu) > 2 else {}


def build_rlre(reason: int = 0, user_information: bytes | None = None) -> bytes:
    body = ber(0x80, bytes([reason]))
    if user_information is not None:
        body += ber(0xBE, ber(0x04, user_information))
    return ber(RLRE, body)


@dataclass
class InitiateRequest:
    dedicated_key: bytes | None
    dlms_version: int
    conformance: int
    max_pdu_size: int


def parse_initiate_request(data: bytes) -> InitiateRequest:
    """A-XDR InitiateRequest (tag 0x01), Green Book 9.5."""
    try:
        if data[0] != 0x01:
            raise AcseError("not an InitiateRequest")
        pos = 1
        key = None
        if data[pos]:
            n = data[pos + 1]
            key = bytes(data[pos + 2 : pos + 2 + n])
            pos += 2 + n
        else:
            pos += 1
        pos += 2 if data[pos] else 1  # response-allowed (DEFAULT TRUE)
        pos += 2 if data[pos] else 1  # proposed-quality-of-service
        version = data[pos]
        pos += 1
        if data[pos : pos + 4] != b"\x5f\x1f\x04\x00":
            raise AcseError("bad conformance block")
        conformance = int.from_bytes(data[pos + 4 : pos + 7], "big")
        pos += 7
        max_pdu = int.from_bytes(data[pos : pos + 2], "big")
        if pos + 2 > len(data):
            raise AcseError("truncated InitiateRequest")
    except IndexError as exc:
        raise AcseError("truncated InitiateRequest") from exc
    return InitiateRequest(key, version, conformance, max_pdu)


def build_initiate_response(conformance: int, max_pdu_size: int) -> bytes:
    return (
        b"\x08\x00\x06\x5f\x1f\x04\x00"
        + conformance.to_bytes(3, "big")
        + max_pdu_size.to_bytes(2, "big")
        + b"\x00\x07"  # vaa-name for LN referencing
    )


def build_confirmed_service_error_initiate(reason: int) -> bytes:
    """ConfirmedServiceError (0x0E), service initiateError(1), error initiate(6)."""
    return bytes([0x0E, 0x01, 0x06, reason])
