"""The DLMS gateway pass-through (sans-io): WRAPPER frames and gateway APDUs.

The head-end speaks DLMS to a meter behind a concentrator by prefixing every
APDU with a gateway header, IEC 62056-5-3 annex C (DLMS UA Green Book, the
"gateway protocol"):

    gateway-request  = 0xE6 | network-id (1 byte) | PDA length (1 byte) | PDA | APDU
    gateway-response = 0xE7 | network-id (1 byte) | PDA length (1 byte) | PDA | APDU

The PDA (physical device address) is how the concentrator knows the meter:
here its system title, learnt when it joined. The concentrator forwards the
inner APDU unchanged and wraps the meter's answer, so the association (and
its keys) stays between the head-end and the meter: the concentrator never
holds a meter key.

Over IP every APDU travels in a WRAPPER frame (IEC 62056-47 / IEC 62056-9-7):
version 0x0001, source wPort, destination wPort, length, all 16-bit
big-endian.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ValidationError

GATEWAY_REQUEST = 0xE6
GATEWAY_RESPONSE = 0xE7
WRAPPER_VERSION = 1
WRAPPER_HEADER = 8
MAX_APDU = 65535
MAX_PDA = 127  # one length byte (longer lengths would need a BER length)


@dataclass(frozen=True)
class WrapperFrame:
    source: int  # wPort of the sender (client SAP or logical device)
    destination: int
    apdu: bytes


@dataclass(frozen=True)
class GatewayApdu:
    network_id: int
    pda: bytes
    apdu: bytes


def encode_wrapper(frame: WrapperFrame) -> bytes:
    if len(frame.apdu) > MAX_APDU:
        raise ValueError(f"APDU of {len(frame.apdu)} bytes does not fit a frame")
    for port in (frame.source, frame.destination):
        if not 0 <= port <= 0xFFFF:
            raise ValueError(f"wPort {port} out of range")
    return (
        WRAPPER_VERSION.to_bytes(2, "big")
        + frame.source.to_bytes(2, "big")
        + frame.destination.to_bytes(2, "big")
        + len(frame.apdu).to_bytes(2, "big")
        + frame.apdu
    )


def split_wrapper(data: bytes) -> tuple[list[WrapperFrame], bytes]:
    """Whole frames at the start of ``data`` and the incomplete rest."""
    frames = []
    view = bytes(data)
    while len(view) >= WRAPPER_HEADER:
        version = int.from_bytes(view[0:2], "big")
        if version != WRAPPER_VERSION:
            raise ValidationError(f"WRAPPER version {version}, 1 expected", "frame")
        size = int.from_bytes(view[6:8], "big")
        if len(view) < WRAPPER_HEADER + size:
            break
        frames.append(
            WrapperFrame(
                int.from_bytes(view[2:4], "big"),
                int.from_bytes(view[4:6], "big"),
                view[WRAPPER_HEADER : WRAPPER_HEADER + size],
            )
        )
        view = view[WRAPPER_HEADER + size :]
    return frames, view


def decode_wrapper(data: bytes) -> WrapperFrame:
    """Exactly one WRAPPER frame."""
    frames, rest = split_wrapper(data)
    if len(frames) != 1 or rest:
        raise ValidationError("expected exactly one complete WRAPPER frame", "frame")
    return frames[0]


def _wrap(tag: int, message: GatewayApdu) -> bytes:
    if not 0 <= message.network_id <= 0xFF:
        raise ValueError(f"network id {message.network_id} out of range")
    if not 1 <= len(message.pda) <= MAX_PDA:
        raise ValueError(f"PDA of {len(message.pda)} bytes (1 to {MAX_PDA})")
    return (
        bytes([tag, message.network_id, len(message.pda)])
        + bytes(message.pda)
        + bytes(message.apdu)
    )


def wrap_request(message: GatewayApdu) -> bytes:
    return _wrap(GATEWAY_REQUEST, message)


def wrap_response(message: GatewayApdu) -> bytes:
    return _wrap(GATEWAY_RESPONSE, message)


def _unwrap(tag: int, data: bytes) -> GatewayApdu:
    name = "request (0xE6)" if tag == GATEWAY_REQUEST else "response (0xE7)"
    if len(data) < 3 or data[0] != tag:
        raise ValidationError(f"not a gateway {name}", "apdu")
    size = data[2]
    if size == 0 or size > MAX_PDA:
        raise ValidationError(f"PDA length {size} (1 to {MAX_PDA})", "apdu")
    if len(data) < 3 + size + 1:
        raise ValidationError(f"gateway {name} truncated", "apdu")
    return GatewayApdu(data[1], bytes(data[3 : 3 + size]), bytes(data[3 + size :]))


def unwrap_request(data: bytes) -> GatewayApdu:
    return _unwrap(GATEWAY_REQUEST, data)


def unwrap_response(data: bytes) -> GatewayApdu:
    return _unwrap(GATEWAY_RESPONSE, data)
