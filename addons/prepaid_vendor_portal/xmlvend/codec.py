"""Requests in, responses and faults out, as bytes; and the response reader.

- :func:`read_request`: a request body to a typed request, or
  :class:`BadRequest` saying which fault to answer;
- :func:`render_response`, :func:`render_fault`: typed objects to a SOAP
  message in the request's SOAP version, in the standard namespaces and the
  NRS element order;
- :func:`encode_payload`, :func:`decode_payload`: a response without its
  envelope, for the dispute log and for replaying a stored answer;
- :func:`read_response`: any XMLVend response envelope (ours or another
  server's) to a typed response or a :class:`ResponseFault`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from lxml import etree

from . import binding, safexml
from .base import BaseReq, BaseResp, Currency, DeviceID, MsgID, reply_header
from .binding import BindingError
from .faults import (
    Fault,
    UseCaseSupportEx,
    XMLVendError,
    XMLVendFaultResp,
    XMLVendSchemaEx,
)
from .namespaces import BASE, XMLVEND, split
from .operations import BY_ELEMENT, BY_RESPONSE_ELEMENT, Operation
from .revenue import LoginUser
from .safexml import REQUEST_LIMITS, RESPONSE_LIMITS, Limits, UnsafeXML
from .soap import (
    SoapFault,
    SoapVersion,
    fault_envelope,
    open_envelope,
    read_fault,
    response_envelope,
)

Response = BaseResp | LoginUser


@dataclass(frozen=True)
class Request:
    "A request that was read: its SOAP version, operation and typed message"

    version: SoapVersion
    operation: Operation
    message: BaseReq


class BadRequest(Exception):
    """The request cannot be served; answer ``fault`` in ``version``.

    ``header`` is the request's header when it could be read, so that the
    fault carries the standard response header; without it the answer is a
    plain SOAP Client fault."""

    def __init__(
        self,
        version: SoapVersion,
        fault: XMLVendError | SoapFault,
        header: BaseReq | None = None,
        element: str | None = None,
    ):
        super().__init__(str(fault))
        self.version = version
        self.fault = fault
        self.header = header
        self.element = element


def _header(payload: etree._Element) -> BaseReq | None:
    try:
        return binding.read_fields(payload, BaseReq, split(payload.tag)[1], text=False)
    except BindingError:
        return None


def read_request(
    body: bytes, content_type: str | None = None, limits: Limits = REQUEST_LIMITS
) -> Request:
    "The typed request in ``body``, or BadRequest"
    version = SoapVersion.from_content_type(content_type)
    try:
        envelope = open_envelope(safexml.parse(body, limits))
    except UnsafeXML as error:
        raise BadRequest(version, SoapFault("Client", str(error))) from None
    except SoapFault as fault:
        raise BadRequest(version, fault) from None
    version, payload = envelope.version, envelope.payload
    ns, local = split(payload.tag)
    operation = BY_ELEMENT.get(local) if ns in XMLVEND else None
    if operation is None:
        reason = f"unknown operation {local!r}"
        header = _header(payload) if ns in XMLVEND else None
        if header is None:
            raise BadRequest(version, SoapFault("Client", reason), element=local)
        raise BadRequest(version, UseCaseSupportEx(reason), header, local)
    try:
        message = binding.read(payload, operation.request_type, local)
    except BindingError as error:
        # The header, when it can be read, goes back in the fault.
        header = _header(payload)
        if header is None:
            fault = SoapFault("Client", str(error))
            raise BadRequest(version, fault, None, local) from None
        raise BadRequest(version, XMLVendSchemaEx(str(error)), header, local) from None
    return Request(version, operation, message)


def render_response(
    response: Response, operation: Operation, version: SoapVersion
) -> bytes:
    return response_envelope(version, _payload(response, operation))


def _payload(response: Response, operation: Operation) -> etree._Element:
    return binding.write(
        response,
        operation.response_ns,
        operation.response_element,
        operation.response_type,
    )


def fault_response(
    fault: XMLVendError, header: BaseReq, server_id: DeviceID, at: datetime
) -> XMLVendFaultResp:
    "The xmlvendFaultResp answering ``header`` with ``fault``"
    return XMLVendFaultResp(
        **reply_header(header, server_id, at),
        disp_header=fault.disp_header,
        operator_msg=fault.operator_msg,
        cust_msg=fault.cust_msg,
        fault=fault.to_wire(),
    )


def render_fault(
    fault: XMLVendError | SoapFault,
    version: SoapVersion,
    header: BaseReq | None,
    server_id: DeviceID,
    at: datetime,
) -> bytes:
    """A SOAP fault.  An XMLVend fault answering a readable header carries
    ``xmlvendFaultResp`` in its detail; any other is a bare SOAP fault."""
    if isinstance(fault, SoapFault):
        return fault_envelope(version, fault.code, fault.reason, None)
    detail = None
    if header is not None:
        detail = binding.write(
            fault_response(fault, header, server_id, at), BASE, "xmlvendFaultResp"
        )
    return fault_envelope(version, fault.soap_code, fault.desc, detail)


# ------------------------------------------------------------------ payloads
def encode_request(message: BaseReq) -> bytes:
    "A typed request as its element alone (a client's view; tests, fingerprints)"
    operation = _operation_of_request(message)
    element = binding.write(
        message, operation.request_ns, operation.request_element, operation.request_type
    )
    return etree.tostring(element, encoding="utf-8")


def _operation_of_request(message: BaseReq) -> Operation:
    for op in BY_ELEMENT.values():
        if isinstance(message, op.request_type):
            return op
    raise TypeError(f"{type(message).__name__} is not the request of an operation")


def request_fingerprint(message: BaseReq) -> str:
    """A digest of what a request asks, to tell a retry of the same request
    (same fingerprint: answer it again) from another request that reuses its
    msgID (a fault).

    What a till may write differently when it sends the same request again
    does not count: the credentials, the msgID's leading zeros, how an amount
    is written (``100``, ``100.00``), a currency symbol (or its absence: the
    currency is the vendor's) and the offset a time is written with."""
    canonical = replace(
        _canonical(message),
        auth_cred=None,
        msg_id=MsgID(
            date_time=message.msg_id.date_time,
            unique_number=str(int(message.msg_id.unique_number)),
        ),
    )
    return hashlib.sha256(encode_request(canonical)).hexdigest()


def _canonical(value: object) -> object:
    "value with its amounts, currencies and times in one written form"
    if isinstance(value, Decimal):
        return (value + 0).normalize()  # 100.00 and 1E+2 are 100; -0 is 0
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if isinstance(value, tuple):
        return tuple(_canonical(item) for item in value)
    if is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _canonical(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, Currency):
            changes["symbol"] = None
        return replace(value, **changes)
    return value


def encode_payload(response: Response | XMLVendFaultResp) -> bytes:
    "The response element alone (no envelope), to store and replay"
    if isinstance(response, XMLVendFaultResp):
        element = binding.write(response, BASE, "xmlvendFaultResp")
    else:
        element = _payload(response, _operation_of(response))
    return etree.tostring(element, encoding="utf-8")


def _operation_of(response: Response) -> Operation:
    for op in BY_RESPONSE_ELEMENT.values():
        if any(type(response) is route.response for route in op.routes):
            return op
    raise TypeError(f"{type(response).__name__} is not the response of an operation")


def decode_payload(
    data: bytes, limits: Limits = RESPONSE_LIMITS
) -> Response | XMLVendFaultResp:
    "A stored response element back to its typed object"
    return _read_payload(safexml.parse(data, limits))


def _read_payload(element: etree._Element) -> Response | XMLVendFaultResp:
    local = split(element.tag)[1]
    if local.lower() == "xmlvendfaultresp":
        return binding.read(element, XMLVendFaultResp, local)
    operation = BY_RESPONSE_ELEMENT.get(local)
    if operation is None:
        raise BindingError(local, "not an XMLVend response element")
    return binding.read(element, operation.response_type, local)


# ------------------------------------------------------------- response reader
@dataclass(frozen=True)
class ResponseFault:
    """A SOAP fault as a client sees it.

    ``detail`` is the full ``xmlvendFaultResp`` when the server sent one with
    its header; ``fault`` is its ``fault`` element, also read when the header
    is missing (Hexing sends only the fault)."""

    code: str
    reason: str
    detail: XMLVendFaultResp | None
    fault: Fault | None


def read_response(
    body: bytes, limits: Limits = RESPONSE_LIMITS
) -> Response | ResponseFault:
    "The typed response or fault in a response envelope, or ValueError"
    try:
        envelope = open_envelope(safexml.parse(body, limits))
    except SoapFault as error:
        raise ValueError(error.reason) from None
    payload = envelope.payload
    if split(payload.tag)[1] != "Fault":
        return _read_payload(payload)
    reply = read_fault(payload, envelope.version)
    detail = fault = None
    if reply.detail is not None:
        try:
            detail = binding.read(reply.detail, XMLVendFaultResp, "xmlvendFaultResp")
            fault = detail.fault
        except BindingError:
            node = next(
                (
                    c
                    for c in reply.detail
                    if isinstance(c.tag, str) and split(c.tag)[1] == "fault"
                ),
                None,
            )
            if node is not None:
                fault = binding.read(node, Fault, "xmlvendFaultResp/fault")
    return ResponseFault(reply.code, reply.reason, detail, fault)
