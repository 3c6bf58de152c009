"""xDLMS GET/SET/ACTION request parsing and response encoding (LN referencing).

Green Book 9.5 (A-XDR encoding of the xDLMS APDUs). Requests are parsed into
small dataclasses; responses are built by plain functions returning bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .axdr import AxdrError, Data, decode, decode_length, encode, encode_length

GET_REQUEST = 0xC0
SET_REQUEST = 0xC1
ACTION_REQUEST = 0xC3
GET_RESPONSE = 0xC4
SET_RESPONSE = 0xC5
ACTION_RESPONSE = 0xC7
EXCEPTION_RESPONSE = 0xD8

# Data-access-result / action-result codes (Blue Book).
SUCCESS = 0
HARDWARE_FAULT = 1
TEMPORARY_FAILURE = 2
READ_WRITE_DENIED = 3
OBJECT_UNDEFINED = 4
OBJECT_CLASS_INCONSISTENT = 9
OBJECT_UNAVAILABLE = 11
TYPE_UNMATCHED = 12
SCOPE_OF_ACCESS_VIOLATED = 13
DATA_BLOCK_UNAVAILABLE = 14
LONG_GET_ABORTED = 15
NO_LONG_GET_IN_PROGRESS = 16
LONG_SET_ABORTED = 17
NO_LONG_SET_IN_PROGRESS = 18
DATA_BLOCK_NUMBER_INVALID = 19
OTHER_REASON = 250

# ExceptionResponse state-error / service-error.
STATE_SERVICE_NOT_ALLOWED = 1
STATE_SERVICE_UNKNOWN = 2
SERVICE_OPERATION_NOT_POSSIBLE = 1
SERVICE_NOT_SUPPORTED = 2
SERVICE_OTHER_REASON = 3
SERVICE_PDU_TOO_LONG = 4
SERVICE_DECIPHERING_ERROR = 5
SERVICE_INVOCATION_COUNTER_ERROR = 6


class XdlmsError(ValueError):
    """A request APDU that cannot be parsed."""


@dataclass(frozen=True)
class AttributeRef:
    class_id: int
    ln: bytes
    attribute: int
    selector: int | None = None
    parameters: Data | None = None


@dataclass(frozen=True)
class MethodRef:
    class_id: int
    ln: bytes
    method: int


@dataclass
class Request:
    """A parsed GET/SET/ACTION request. ``kind`` is the request CHOICE."""

    service: int  # GET_REQUEST, SET_REQUEST or ACTION_REQUEST
    kind: int
    invoke_id: int
    attributes: list[AttributeRef] = field(default_factory=list)
    method: MethodRef | None = None
    values: list[Data | None] = field(default_factory=list)
    block_number: int = 0
    last_block: bool = True
    raw_block: bytes = b""


def _descriptor(buf: bytes, pos: int) -> tuple[int, bytes, int, int]:
    if pos + 9 > len(buf):
        raise XdlmsError("truncated COSEM descriptor")
    class_id = int.from_bytes(buf[pos : pos + 2], "big")
    ln = bytes(buf[pos + 2 : pos + 8])
    member = int.from_bytes(buf[pos + 8 : pos + 9], "big", signed=True)
    return class_id, ln, member, pos + 9


def _attribute(buf: bytes, pos: int, with_selection: bool) -> tuple[AttributeRef, int]:
    class_id, ln, attr, pos = _descriptor(buf, pos)
    selector = params = None
    if with_selection:
        if pos >= len(buf):
            raise XdlmsError("missing access-selection flag")
        flag = buf[pos]
        pos += 1
        if flag:
            selector = buf[pos]
            params, pos = decode(buf, pos + 1)
    return AttributeRef(class_id, ln, attr, selector, params), pos


def _datablock_sa(buf: bytes, pos: int) -> tuple[bool, int, bytes, int]:
    """DataBlock-SA: last-block BOOLEAN, block-number u32, raw-data octet-string."""
    if pos + 5 > len(buf):
        raise XdlmsError("truncated data block")
    last = buf[pos] != 0
    number = int.from_bytes(buf[pos + 1 : pos + 5], "big")
    n, pos = decode_length(buf, pos + 5)
    raw = bytes(buf[pos : pos + n])
    if len(raw) != n:
        raise XdlmsError("truncated data block")
    return last, number, raw, pos + n


def parse_request(apdu: bytes) -> Request:
    try:
        return _parse_request(apdu)
    except (AxdrError, IndexError) as exc:
        raise XdlmsError(f"malformed request: {exc}") from exc


def _parse_request(apdu: bytes) -> Request:
    if len(apdu) < 3:
        raise XdlmsError("request too short")
    service, kind, invoke = apdu[0], apdu[1], apdu[2]
    req = Request(service, kind, invoke)
    pos = 3
    if service == GET_REQUEST:
        if kind == 1:
            ref, pos = _attribute(apdu, pos, True)
            req.attributes.append(ref)
        elif kind == 2:
            req.block_number = int.from_bytes(apdu[pos : pos + 4], "big")
        elif kind == 3:
            count, pos = decode_length(apdu, pos)
            for _ in range(count):
                ref, pos = _attribute(apdu, pos, True)
                req.attributes.append(ref)
        else:
            raise XdlmsError(f"unknown GET request kind {kind}")
    elif service == SET_REQUEST:
        if kind == 1:
            ref, pos = _attribute(apdu, pos, True)
            value, pos = decode(apdu, pos)
            req.attributes.append(ref)
            req.values.append(value)
        elif kind == 2:
            ref, pos = _attribute(apdu, pos, True)
            req.attributes.append(ref)
            req.last_block, req.block_number, req.raw_block, pos = _datablock_sa(
                apdu, pos
            )
        elif kind == 3:
            req.last_block, req.block_number, req.raw_block, pos = _datablock_sa(
                apdu, pos
            )
        elif kind == 4:
            count, pos = decode_length(apdu, pos)
            for _ in range(count):
                ref, pos = _attribute(apdu, pos, True)
                req.attributes.append(ref)
            count, pos = decode_length(apdu, pos)
            for _ in range(count):
                value, pos = decode(apdu, pos)
                req.values.append(value)
        else:
            raise XdlmsError(f"unsupported SET request kind {kind}")
    elif service == ACTION_REQUEST:
        if kind == 1:
            class_id, ln, method, pos = _descriptor(apdu, pos)
            req.method = MethodRef(class_id, ln, method)
            has_params = apdu[pos]
            pos += 1
            if has_params:
                value, pos = decode(apdu, pos)
                req.values.append(value)
            else:
                req.values.append(None)
        elif kind == 4:
            class_id, ln, method, pos = _descriptor(apdu, pos)
            req.method = MethodRef(class_id, ln, method)
            req.last_block, req.block_number, req.raw_block, pos = _datablock_sa(
                apdu, pos
            )
        elif kind == 6:
            req.last_block, req.block_number, req.raw_block, pos = _datablock_sa(
                apdu, pos
            )
        else:
            raise XdlmsError(f"unsupported ACTION request kind {kind}")
    else:
        raise XdlmsError(f"not a GET/SET/ACTION request: 0x{service:02X}")
    return req


# --- responses ---------------------------------------------------------------


def get_data_result(result: Data | int) -> bytes:
    """Get-Data-Result: 00 data | 01 data-access-result."""
    if isinstance(result, Data):
        return b"\x00" + encode(result)
    return bytes([0x01, result])


def get_response_normal(invoke_id: int, result: Data | int) -> bytes:
    return bytes([GET_RESPONSE, 0x01, invoke_id]) + get_data_result(result)


def get_response_normal_raw(invoke_id: int, encoded: bytes) -> bytes:
    return bytes([GET_RESPONSE, 0x01, invoke_id, 0x00]) + encoded


def get_response_block(
    invoke_id: int, last: bool, number: int, raw: bytes | None, error: int = 0
) -> bytes:
    head = bytes([GET_RESPONSE, 0x02, invoke_id, 0x01 if last else 0x00])
    head += number.to_bytes(4, "big")
    if raw is None:
        return head + bytes([0x01, error])
    return head + b"\x00" + encode_length(len(raw)) + raw


def get_response_list(invoke_id: int, results: list[bytes]) -> bytes:
    """``results`` are already-encoded Get-Data-Result items."""
    return (
        bytes([GET_RESPONSE, 0x03, invoke_id])
        + encode_length(len(results))
        + b"".join(results)
    )


def set_response_normal(invoke_id: int, result: int) -> bytes:
    return bytes([SET_RESPONSE, 0x01, invoke_id, result])


def set_response_block_ack(invoke_id: int, number: int) -> bytes:
    return bytes([SET_RESPONSE, 0x02, invoke_id]) + number.to_bytes(4, "big")


def set_response_last_block(invoke_id: int, result: int, number: int) -> bytes:
    return bytes([SET_RESPONSE, 0x03, invoke_id, result]) + number.to_bytes(4, "big")


def set_response_list(invoke_id: int, results: list[int]) -> bytes:
    return (
        bytes([SET_RESPONSE, 0x05, invoke_id])
        + encode_length(len(results))
        + bytes(results)
    )


def action_response_normal(
    invoke_id: int, result: int, data: Data | None = None
) -> bytes:
    out = bytes([ACTION_RESPONSE, 0x01, invoke_id, result])
    if data is None:
        return out + b"\x00"
    return out + b"\x01" + get_data_result(data)


def action_response_next_pblock(invoke_id: int, number: int) -> bytes:
    return bytes([ACTION_RESPONSE, 0x04, invoke_id]) + number.to_bytes(4, "big")


def exception_response(state_error: int, service_error: int) -> bytes:
    return bytes([EXCEPTION_RESPONSE, state_error, service_error])
