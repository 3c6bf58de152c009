"""SOAP 1.1 envelopes of both services (sans-io: bytes in, objects out).

A :class:`Service` lists its operations; ``render_*`` turns a message object
into the bytes of an envelope and ``parse_*`` turns received bytes back into
an object after the hardened parse (``xmlsafe``), the schema check
(``dcu-1.xsd``) and the cross-field rules (``messages.check``). Anything
wrong raises :class:`ValidationError` naming the element concerned; a SOAP
fault received by a client raises :class:`SoapFault`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from . import messages as m
from . import xmlsafe
from .errors import REFUSED_FAULTCODE, RefusedFault, SoapFault, ValidationError

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSD = "dcu-1.xsd"
CONTENT_TYPE = "text/xml; charset=utf-8"
_E = f"{{{SOAP_NS}}}"
_M = f"{{{m.NS}}}"


@dataclass(frozen=True)
class Operation:
    name: str
    request: type[m.Message]
    response: type[m.Message]

    @property
    def action(self) -> str:
        return f"{m.NS}#{self.name}"


class Service:
    def __init__(self, name: str, wsdl: str, operations: list[Operation]) -> None:
        self.name = name
        self.wsdl = wsdl
        self.operations = {op.request.TAG: op for op in operations}
        self.by_class = {op.request: op for op in operations}

    def operation_for(self, message: m.Message) -> Operation:
        try:
            return self.by_class[type(message)]
        except KeyError:
            name = type(message).__name__
            raise TypeError(f"{name} is not a {self.name} request") from None


CONCENTRATOR = Service(
    "concentrator",
    "concentrator.wsdl",
    [
        Operation("Request", m.SyncRequest, m.SyncResponse),
        Operation("AsyncRequest", m.AsyncRequest, m.Accepted),
        Operation("ReportQuery", m.ReportQuery, m.ReportQueryAccepted),
        Operation("Order", m.Order, m.OrderAccepted),
        Operation("Gateway", m.GatewayRequest, m.GatewayResponse),
    ],
)
HEADEND = Service(
    "headend",
    "headend.wsdl",
    [
        Operation("Report", m.ReportDelivery, m.Ack),
        Operation("UpdateRequestStatus", m.RequestStatusUpdate, m.StatusAck),
        Operation("UpdateMetersStatus", m.MeterStatusUpdate, m.MetersAck),
    ],
)


# -- values ------------------------------------------------------------------
def format_time(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("times must be aware (UTC)")
    value = value.astimezone(dt.UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_time(text: str) -> dt.datetime:
    """An xs:dateTime with its zone (Z or an offset), as an aware UTC time."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (times are UTC: end with Z)")
    return value.astimezone(dt.UTC)


def to_text(kind: Any, value: Any) -> str:
    """The XML text of ``value`` of type ``kind`` (times in UTC, ``Hex``
    as hexBinary, bytes as base64)."""
    if kind is dt.datetime:
        return format_time(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is m.Hex:
        return bytes(value).hex().upper()
    if kind is bytes:
        return base64.b64encode(value).decode("ascii")
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return str(kind(value).value)
    return str(value)


def _bool(text: str) -> bool:
    return text in ("true", "1")


def _base64(text: str) -> bytes:
    return base64.b64decode("".join(text.split()).encode("ascii"), validate=True)


def converter(kind: Any) -> Callable[[str], Any]:
    """The function that reads a value of type ``kind`` from XML text
    (raising ValueError when it is not one)."""
    if kind is dt.datetime:
        return parse_time
    if kind is bool:
        return _bool
    if kind is int:
        return int
    if kind is m.Hex:
        return bytes.fromhex
    if kind is bytes:
        return _base64
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind
    return str


def from_text(kind: Any, text: str) -> Any:
    """The value of type ``kind`` in XML ``text`` (ValueError if it is not)."""
    return converter(kind)(text)


# -- objects <-> elements ----------------------------------------------------
def to_element(message: m.Message) -> etree._Element:
    el = etree.Element(_M + message.TAG, nsmap={None: m.NS})
    _fill(el, message)
    return el


def _fill(el: etree._Element, message: m.Message) -> None:
    for spec in message.FIELDS:
        value = getattr(message, spec.name)
        if spec.tag == "*":  # a choice: the element is named by the value's class
            child = etree.SubElement(el, _M + value.TAG)
            _fill(child, value)
            continue
        if spec.many:
            if spec.wrapper:
                if not value:
                    continue  # an absent list: "all meters" where allowed
                parent = etree.SubElement(el, _M + spec.wrapper)
            else:
                parent = el
            for item in value:
                _add(parent, spec, item)
            continue
        if value is None:
            continue
        _add(el, spec, value)


def _add(parent: etree._Element, spec: m.F, value: Any) -> None:
    child = etree.SubElement(parent, _M + spec.tag)
    if isinstance(spec.kind, type) and issubclass(spec.kind, m.Message):
        _fill(child, value)
    else:
        child.text = to_text(spec.kind, value)


def from_element(cls: type[m.Message], el: etree._Element) -> m.Message:
    children: dict[str, list[etree._Element]] = {}
    for child in el:
        children.setdefault(xmlsafe.local(child), []).append(child)
    values: dict[str, Any] = {}
    for spec in cls.FIELDS:
        where = f"{cls.TAG}/{spec.tag}"
        try:
            if spec.tag == "*":
                choice = _choice(spec.kind, children)
                values[spec.name] = from_element(choice, children[choice.TAG][0])
            elif spec.wrapper:
                if spec.wrapper in children:
                    items = children[spec.wrapper][0]
                    values[spec.name] = tuple(
                        _value(spec, c) for c in items if xmlsafe.local(c) == spec.tag
                    )
            elif spec.repeated:
                found = children.get(spec.tag, [])
                values[spec.name] = tuple(_value(spec, c) for c in found)
            elif spec.tag in children:
                values[spec.name] = _value(spec, children[spec.tag][0])
        except ValidationError:
            raise
        except (ValueError, binascii.Error, TypeError) as exc:
            raise ValidationError(str(exc), where) from None
    try:
        return cls(**values)
    except TypeError as exc:
        raise ValidationError(f"incomplete {cls.TAG}: {exc}", cls.TAG) from None


def _choice(kinds: tuple[type[m.Message], ...], children) -> type[m.Message]:
    for kind in kinds:
        if kind.TAG in children:
            return kind
    raise ValueError("no order body")


def _value(spec: m.F, el: etree._Element) -> Any:
    if isinstance(spec.kind, type) and issubclass(spec.kind, m.Message):
        return from_element(spec.kind, el)
    return from_text(spec.kind, el.text or "")


# -- envelopes ---------------------------------------------------------------
def envelope(body: etree._Element) -> bytes:
    env = etree.Element(_E + "Envelope", nsmap={"soap": SOAP_NS})
    etree.SubElement(env, _E + "Body").append(body)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def render(message: m.Message) -> bytes:
    """The envelope of a request or a response."""
    m.check(message)
    return envelope(to_element(message))


def render_fault(
    faultstring: str,
    *,
    client: bool = True,
    field: str | None = None,
    refused: bool = False,
) -> bytes:
    """A SOAP fault: the client's message is wrong (``client``), or the
    client may not send it (``refused``: ``soap:Client.Refused``), or the
    server failed."""
    fault = etree.Element(_E + "Fault", nsmap={"soap": SOAP_NS})
    if refused:
        code = f"soap:{REFUSED_FAULTCODE}"
    else:
        code = "soap:Client" if client else "soap:Server"
    etree.SubElement(fault, "faultcode").text = code
    etree.SubElement(fault, "faultstring").text = faultstring
    if field:
        detail = etree.SubElement(fault, "detail")
        error = etree.SubElement(detail, _M + "Error", nsmap={None: m.NS})
        etree.SubElement(error, _M + "Field").text = field
    return envelope(fault)


def _body_child(data: bytes, max_bytes: int) -> etree._Element:
    root = xmlsafe.parse(data, max_bytes=max_bytes, what="SOAP message")
    if root.tag != _E + "Envelope":
        raise ValidationError("not a SOAP 1.1 envelope", xmlsafe.local(root))
    bodies = root.findall(_E + "Body")
    if len(bodies) != 1:
        raise ValidationError("a SOAP envelope has exactly one Body", "Envelope")
    children = list(bodies[0])
    if len(children) != 1:
        raise ValidationError("the SOAP Body holds exactly one element", "Body")
    return children[0]


def _decode(cls: type[m.Message], el: etree._Element) -> m.Message:
    xmlsafe.validate(el, XSD)
    message = from_element(cls, el)
    try:
        m.check(message)
    except ValueError as exc:
        raise ValidationError(str(exc), cls.TAG) from None
    return message


def parse_request(
    service: Service, data: bytes, max_bytes: int = xmlsafe.DEFAULT_MAX_BYTES
) -> m.Message:
    """Server side: the request object in ``data``."""
    el = _body_child(data, max_bytes)
    if el.tag.startswith(_M):
        op = service.operations.get(el.tag[len(_M) :])
    else:
        op = None
    if op is None:
        raise ValidationError(
            f"{service.name} service has no operation {xmlsafe.local(el)!r}",
            xmlsafe.local(el),
        )
    return _decode(op.request, el)


def parse_response(
    operation: Operation, data: bytes, max_bytes: int = xmlsafe.DEFAULT_MAX_BYTES
) -> m.Message:
    """Client side: the response object, or :class:`SoapFault`."""
    el = _body_child(data, max_bytes)
    if el.tag == _E + "Fault":
        code = el.findtext("faultcode") or "soap:Server"
        text = el.findtext("faultstring") or "(no faultstring)"
        field = el.findtext(f"detail/{_M}Error/{_M}Field")
        if code.rpartition(":")[2] == REFUSED_FAULTCODE:
            raise RefusedFault(code, text, field)
        raise SoapFault(code, text, field)
    if el.tag != _M + operation.response.TAG:
        raise ValidationError(
            f"expected {operation.response.TAG}, got {xmlsafe.local(el)}",
            xmlsafe.local(el),
        )
    return _decode(operation.response, el)
