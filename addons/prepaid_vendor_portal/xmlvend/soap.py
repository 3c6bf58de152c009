"""SOAP 1.1 and 1.2 envelopes: opening a request, writing a response or fault.

The version is the envelope's namespace; a response or fault uses the
request's version.  When the envelope could not be read, the version comes
from the Content-Type (``application/soap+xml`` is SOAP 1.2, anything else
1.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from lxml import etree

from .namespaces import SOAP11, SOAP12, XML, split


class SoapVersion(Enum):
    SOAP11 = "1.1"
    SOAP12 = "1.2"

    @property
    def namespace(self) -> str:
        return SOAP11 if self is SoapVersion.SOAP11 else SOAP12

    @property
    def content_type(self) -> str:
        if self is SoapVersion.SOAP11:
            return "text/xml; charset=utf-8"
        return "application/soap+xml; charset=utf-8"

    @classmethod
    def from_content_type(cls, content_type: str | None) -> SoapVersion:
        media = (content_type or "").split(";", 1)[0].strip().lower()
        return cls.SOAP12 if media == "application/soap+xml" else cls.SOAP11


class SoapFault(Exception):
    """A fault at the SOAP level, before an XMLVend request could be read:
    answered without an XMLVend detail.

    ``code`` is the SOAP 1.1 name: Client, Server, VersionMismatch or
    MustUnderstand (mapped to Sender/Receiver for SOAP 1.2)."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Envelope:
    version: SoapVersion
    payload: etree._Element  # the Body's only child


_ROLE_NONE = "http://www.w3.org/2003/05/soap-envelope/role/none"


def open_envelope(root: etree._Element) -> Envelope:
    "The SOAP version and the Body's child element, or SoapFault"
    ns, local = split(root.tag)
    if local != "Envelope":
        raise SoapFault("Client", f"expected a SOAP Envelope, not {local!r}")
    if ns == SOAP11:
        version = SoapVersion.SOAP11
    elif ns == SOAP12:
        version = SoapVersion.SOAP12
    else:
        raise SoapFault("VersionMismatch", "unknown SOAP envelope namespace")
    body = None
    for child in root:
        child_ns, child_local = split(child.tag)
        if child_ns == ns and child_local == "Header" and body is None:
            _check_headers(child, version)
        elif child_ns == ns and child_local == "Body" and body is None:
            body = child
        else:
            raise SoapFault("Client", f"unexpected {child_local!r} in the Envelope")
    if body is None:
        raise SoapFault("Client", "the Envelope has no Body")
    payload = [child for child in body if isinstance(child.tag, str)]
    if (body.text and body.text.strip()) or any(
        child.tail and child.tail.strip() for child in body
    ):
        raise SoapFault("Client", "text is not allowed in the Body")
    if not payload:
        raise SoapFault("Client", "the Body is empty")
    if len(payload) > 1:
        raise SoapFault("Client", "the Body holds more than one element")
    return Envelope(version, payload[0])


def _check_headers(header: etree._Element, version: SoapVersion) -> None:
    "No header block is processed, so none may be mandatory (SOAP rule)"
    ns = version.namespace
    for block in header:
        must = (block.get(f"{{{ns}}}mustUnderstand") or "").strip()
        if must not in ("1", "true"):
            continue
        if version is SoapVersion.SOAP12 and block.get(f"{{{ns}}}role") == _ROLE_NONE:
            continue
        raise SoapFault(
            "MustUnderstand", f"header {split(block.tag)[1]!r} not understood"
        )


def _envelope(version: SoapVersion) -> tuple[etree._Element, etree._Element]:
    ns = version.namespace
    envelope = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap": ns})
    return envelope, etree.SubElement(envelope, f"{{{ns}}}Body")


def _serialise(envelope: etree._Element) -> bytes:
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def response_envelope(version: SoapVersion, payload: etree._Element) -> bytes:
    envelope, body = _envelope(version)
    body.append(payload)
    return _serialise(envelope)


_SOAP12_CODES = {"Client": "Sender", "Server": "Receiver"}


def fault_envelope(
    version: SoapVersion, code: str, reason: str, detail: etree._Element | None
) -> bytes:
    "A SOAP Fault; ``detail`` (an xmlvendFaultResp) goes into its detail"
    envelope, body = _envelope(version)
    ns = version.namespace
    fault = etree.SubElement(body, f"{{{ns}}}Fault")
    if version is SoapVersion.SOAP11:
        etree.SubElement(fault, "faultcode").text = f"soap:{code}"
        etree.SubElement(fault, "faultstring").text = reason
        if detail is not None:
            etree.SubElement(fault, "detail").append(detail)
    else:
        value = etree.SubElement(
            etree.SubElement(fault, f"{{{ns}}}Code"), f"{{{ns}}}Value"
        )
        value.text = f"soap:{_SOAP12_CODES.get(code, code)}"
        text = etree.SubElement(
            etree.SubElement(fault, f"{{{ns}}}Reason"), f"{{{ns}}}Text"
        )
        text.set(f"{{{XML}}}lang", "en")
        text.text = reason
        if detail is not None:
            etree.SubElement(fault, f"{{{ns}}}Detail").append(detail)
    return _serialise(envelope)


def http_status(version: SoapVersion, code: str | None) -> int:
    """200 for a response; a fault is 500 in SOAP 1.1 (WS-I Basic Profile),
    400 for a sender's fault and 500 otherwise in SOAP 1.2"""
    if code is None:
        return 200
    return 400 if version is SoapVersion.SOAP12 and code == "Client" else 500


@dataclass(frozen=True)
class FaultReply:
    "A SOAP fault as read back: code, reason and the detail's first element"

    code: str
    reason: str
    detail: etree._Element | None


def read_fault(payload: etree._Element, version: SoapVersion) -> FaultReply:
    "Read a SOAP Fault element (either version)"

    def find(*path: str) -> etree._Element | None:
        node = payload
        for name in path:
            node = next(
                (c for c in node if isinstance(c.tag, str) and split(c.tag)[1] == name),
                None,
            )
            if node is None:
                return None
        return node

    if version is SoapVersion.SOAP11:
        code_node, reason_node, detail = (
            find("faultcode"),
            find("faultstring"),
            find("detail"),
        )
    else:
        code_node, reason_node = find("Code", "Value"), find("Reason", "Text")
        detail = find("Detail")
    code = (code_node.text or "").strip() if code_node is not None else ""
    code = code.rpartition(":")[2]
    reason = (reason_node.text or "").strip() if reason_node is not None else ""
    first = None
    if detail is not None:
        first = next((c for c in detail if isinstance(c.tag, str)), None)
    return FaultReply(code, reason, first)
