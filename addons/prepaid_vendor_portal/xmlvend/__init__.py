"""XMLVend 2.1 (NRS 009-6-10) protocol core, pure Python (no trytond import).

Sans-io: the transport hands :func:`handle` the POSTed bytes and sends back
what it returns; a :class:`Backend` answers each operation with typed,
immutable request and response objects (frozen dataclasses, Decimal amounts)
or raises one of the standard faults (:mod:`.faults`).  :func:`wsdl_document`
is what ``GET ...?wsdl`` serves.  :func:`redact` (of :mod:`.redaction`) masks
secrets before a message is stored.  See docs/xmlvend.md.
"""

from . import base, faults, meter, redaction, revenue
from .base import *  # noqa: F403
from .codec import (
    BadRequest,
    Request,
    ResponseFault,
    decode_payload,
    encode_payload,
    encode_request,
    fault_response,
    read_request,
    read_response,
    render_fault,
    render_response,
    request_fingerprint,
)
from .faults import *  # noqa: F403
from .meter import *  # noqa: F403
from .operations import OPERATIONS, Operation, Route
from .redaction import redact
from .revenue import *  # noqa: F403
from .safexml import REQUEST_LIMITS, RESPONSE_LIMITS, Limits, UnsafeXML
from .schema import wsdl_document, xml_schema
from .service import Backend, Exchange, RunAgain, handle, process
from .soap import SoapFault, SoapVersion

__all__ = [
    "OPERATIONS",
    "REQUEST_LIMITS",
    "RESPONSE_LIMITS",
    "BadRequest",
    "Backend",
    "Exchange",
    "Limits",
    "Operation",
    "Request",
    "ResponseFault",
    "Route",
    "RunAgain",
    "SoapFault",
    "SoapVersion",
    "UnsafeXML",
    "base",
    "decode_payload",
    "encode_payload",
    "encode_request",
    "fault_response",
    "faults",
    "handle",
    "meter",
    "process",
    "read_request",
    "read_response",
    "redact",
    "redaction",
    "render_fault",
    "render_response",
    "request_fingerprint",
    "revenue",
    "wsdl_document",
    "xml_schema",
]
