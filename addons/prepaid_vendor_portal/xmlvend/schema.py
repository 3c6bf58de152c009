"""The project's XSDs and WSDL for XMLVend 2.1, generated from the typed model.

The schemas are written from the bound dataclasses (:mod:`.base`,
:mod:`.revenue`, :mod:`.meter`, :mod:`.faults`), their simple types
(:mod:`.values`) and the operation list (:mod:`.operations`), so that what
the server reads and writes and what it publishes are one thing.  The
generated files live in ``schema/`` (a test keeps them current); regenerate
with::

    python -m trytond.modules.prepaid_vendor_portal.xmlvend.generate

The WSDL is document/literal (bare), with a SOAP 1.1 and a SOAP 1.2 binding
of the same port type; every operation declares the fault element
``xmlvendFaultResp``.  :func:`wsdl_document` gives the WSDL with the
schemas inlined and the endpoint address filled in, as the server publishes
it (one document: nothing else for a client to fetch).
"""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal
from importlib import resources

from lxml import etree

from . import base, faults, meter, revenue  # noqa: F401  (registers the types)
from .binding import REGISTRY, plan_of, xml_base
from .namespaces import (
    BASE,
    METER,
    PREFIXES,
    REVENUE,
    SERVICE,
    WSDL,
    WSDL_SOAP11,
    WSDL_SOAP12,
    XS,
)
from .operations import OPERATIONS
from .values import SIMPLE_TYPES, SimpleType

FILES = {
    BASE: "xmlvend-base.xsd",
    REVENUE: "xmlvend-revenue.xsd",
    METER: "xmlvend-meter.xsd",
}
WSDL_FILE = "xmlvend.wsdl"
SERVICE_NAME = "XMLVendService2.1"
PLACEHOLDER_ADDRESS = "https://vending.example/xmlvend"
ORDER = (BASE, METER, REVENUE)  # each namespace imports only earlier ones

_TITLES = {
    BASE: "common types, advice and faults",
    REVENUE: "sales, receipts, accounts, vendor statement, login and batches",
    METER: "meter confirmation",
}
_BUILTIN = {
    str: "string",
    int: "int",
    bool: "boolean",
    Decimal: "decimal",
    datetime: "dateTime",
}


def _xs(tag: str) -> str:
    return f"{{{XS}}}{tag}"


def _qname(ns: str, name: str) -> str:
    return f"{PREFIXES[ns]}:{name}"


def _builtin(py_type: type) -> str:
    return "xs:" + _BUILTIN[py_type]


def _doc(parent: etree._Element, text: str) -> None:
    if text:
        annotation = etree.SubElement(parent, _xs("annotation"))
        text = " ".join(text.replace("``", "").split())
        etree.SubElement(annotation, _xs("documentation")).text = text


def _class_doc(cls: type) -> str:
    doc = cls.__dict__.get("__doc__") or ""
    if doc.startswith(cls.__name__ + "("):  # dataclass's generated signature
        return ""
    return doc.strip().split("\n\n")[0]


def _own_fields(cls: type):
    own = cls.__dict__.get("__annotations__", {})
    plan = plan_of(cls)
    return [fp for fp in plan.elems if fp.name in own], [
        fp for fp in plan.attrs if fp.name in own
    ]


def _field_type(fp) -> str:
    if fp.is_complex:
        return _qname(fp.py_type.__xml_ns__, fp.py_type.__xml_name__)
    if fp.simple is not None:
        return _qname(fp.simple.ns, fp.simple.name)
    return _builtin(fp.py_type)


def _complex_type(schema: etree._Element, cls: type) -> None:
    node = etree.SubElement(schema, _xs("complexType"), name=cls.__xml_name__)
    if cls.__xml_abstract__:
        node.set("abstract", "true")
    _doc(node, _class_doc(cls))
    elems, attrs = _own_fields(cls)
    parent = xml_base(cls)
    holder = node
    if parent is not None:
        content = etree.SubElement(node, _xs("complexContent"))
        holder = etree.SubElement(
            content,
            _xs("extension"),
            base=_qname(parent.__xml_ns__, parent.__xml_name__),
        )
    if elems:
        sequence = etree.SubElement(holder, _xs("sequence"))
        for fp in elems:
            element = etree.SubElement(sequence, _xs("element"), name=fp.local)
            element.set("type", _field_type(fp))
            if fp.optional:
                element.set("minOccurs", "0")
            if fp.repeated:
                element.set("maxOccurs", "unbounded")
    for fp in attrs:
        attribute = etree.SubElement(holder, _xs("attribute"), name=fp.local)
        attribute.set("type", _field_type(fp))
        if fp.required:
            attribute.set("use", "required")


def _simple_type(schema: etree._Element, simple: SimpleType) -> None:
    node = etree.SubElement(schema, _xs("simpleType"), name=simple.name)
    _doc(node, simple.doc)
    restriction = etree.SubElement(node, _xs("restriction"), base=f"xs:{simple.base}")
    facets = (
        ("minInclusive", simple.min_value),
        ("maxInclusive", simple.max_value),
        ("minLength", simple.min_length),
        ("maxLength", simple.max_length),
        ("pattern", simple.pattern),
    )
    for facet, value in facets:
        if value is not None:
            etree.SubElement(restriction, _xs(facet), value=str(value))
    for value in simple.enumeration:
        etree.SubElement(restriction, _xs("enumeration"), value=value)


def _references(cls: type) -> set[str]:
    "Namespaces that the definition of ``cls`` refers to"
    found = set()
    parent = xml_base(cls)
    if parent is not None:
        found.add(parent.__xml_ns__)
    elems, attrs = _own_fields(cls)
    for fp in elems + attrs:
        if fp.is_complex:
            found.add(fp.py_type.__xml_ns__)
        elif fp.simple is not None:
            found.add(fp.simple.ns)
    return found


def _elements(ns: str) -> list[tuple[str, type]]:
    found = {("xmlvendFaultResp", faults.XMLVendFaultResp)} if ns == BASE else set()
    for op in OPERATIONS:
        if op.request_ns == ns:
            found.add((op.request_element, op.request_type))
        if op.response_ns == ns:
            found.add((op.response_element, op.response_type))
    return sorted(found, key=lambda item: item[0])


def schema_element(ns: str, *, locations: bool = True) -> etree._Element:
    "The xs:schema of namespace ``ns``"
    nsmap = {"xs": XS} | {prefix: uri for uri, prefix in PREFIXES.items()}
    schema = etree.Element(
        _xs("schema"),
        nsmap=nsmap,
        targetNamespace=ns,
        elementFormDefault="qualified",
        attributeFormDefault="unqualified",
        version="2.1",
    )
    _doc(
        schema,
        f"XMLVend 2.1 (NRS 009-6-10), {_TITLES[ns]}: the prepaid platform's own "
        "schema, written from the standard's type and element names.",
    )
    classes = sorted(
        (c for c in REGISTRY.values() if c.__xml_ns__ == ns),
        key=lambda c: c.__xml_name__,
    )
    imports = set().union(*(_references(c) for c in classes)) - {ns}
    for other in ORDER:
        if other in imports:
            node = etree.SubElement(schema, _xs("import"), namespace=other)
            if locations:
                node.set("schemaLocation", FILES[other])
    for name, cls in _elements(ns):
        etree.SubElement(
            schema,
            _xs("element"),
            name=name,
            type=_qname(cls.__xml_ns__, cls.__xml_name__),
        )
    for cls in classes:
        _complex_type(schema, cls)
    for simple in sorted(SIMPLE_TYPES, key=lambda s: s.name):
        if simple.ns == ns:
            _simple_type(schema, simple)
    return schema


def _w(tag: str) -> str:
    return f"{{{WSDL}}}{tag}"


def wsdl_element(
    address: str = PLACEHOLDER_ADDRESS, *, inline: bool = False
) -> etree._Element:
    "The WSDL; ``inline`` puts the schemas in its types section"
    nsmap = {
        "wsdl": WSDL,
        "soap": WSDL_SOAP11,
        "soap12": WSDL_SOAP12,
        "xs": XS,
        "tns": SERVICE,
    } | {prefix: uri for uri, prefix in PREFIXES.items()}
    root = etree.Element(
        _w("definitions"), nsmap=nsmap, name=SERVICE_NAME, targetNamespace=SERVICE
    )
    documentation = etree.SubElement(root, _w("documentation"))
    documentation.text = (
        "XMLVend 2.1 (NRS 009-6-10) online vending service of the prepaid platform: "
        "document/literal, SOAP 1.1 and SOAP 1.2."
    )
    types = etree.SubElement(root, _w("types"))
    if inline:
        for ns in ORDER:
            types.append(schema_element(ns, locations=False))
    else:
        holder = etree.SubElement(types, _xs("schema"), targetNamespace=SERVICE)
        for ns in ORDER:
            etree.SubElement(
                holder, _xs("import"), namespace=ns, schemaLocation=FILES[ns]
            )
    fault_message = etree.SubElement(root, _w("message"), name="XMLVendFault")
    etree.SubElement(
        fault_message, _w("part"), name="fault", element="b:xmlvendFaultResp"
    )
    for op in OPERATIONS:
        for suffix, ns, element in (
            ("Input", op.request_ns, op.request_element),
            ("Output", op.response_ns, op.response_element),
        ):
            message = etree.SubElement(root, _w("message"), name=op.name + suffix)
            etree.SubElement(
                message, _w("part"), name="body", element=_qname(ns, element)
            )
    port_type = etree.SubElement(root, _w("portType"), name="XMLVendServicePortType")
    for op in OPERATIONS:
        operation = etree.SubElement(port_type, _w("operation"), name=op.name)
        etree.SubElement(operation, _w("documentation")).text = op.summary
        etree.SubElement(operation, _w("input"), message=f"tns:{op.name}Input")
        etree.SubElement(operation, _w("output"), message=f"tns:{op.name}Output")
        etree.SubElement(
            operation, _w("fault"), name="XMLVendFault", message="tns:XMLVendFault"
        )
    bindings = (
        ("XMLVendServiceSoap11", "XMLVendServicePort", WSDL_SOAP11),
        ("XMLVendServiceSoap12", "XMLVendServiceSoap12Port", WSDL_SOAP12),
    )
    for binding_name, _, soap_ns in bindings:
        node = etree.SubElement(
            root, _w("binding"), name=binding_name, type="tns:XMLVendServicePortType"
        )
        etree.SubElement(
            node,
            f"{{{soap_ns}}}binding",
            style="document",
            transport="http://schemas.xmlsoap.org/soap/http",
        )
        for op in OPERATIONS:
            operation = etree.SubElement(node, _w("operation"), name=op.name)
            etree.SubElement(
                operation,
                f"{{{soap_ns}}}operation",
                soapAction=op.name,
                style="document",
            )
            for direction in ("input", "output"):
                holder = etree.SubElement(operation, _w(direction))
                etree.SubElement(holder, f"{{{soap_ns}}}body", use="literal")
            fault = etree.SubElement(operation, _w("fault"), name="XMLVendFault")
            etree.SubElement(
                fault, f"{{{soap_ns}}}fault", name="XMLVendFault", use="literal"
            )
    service = etree.SubElement(root, _w("service"), name=SERVICE_NAME)
    for binding_name, port_name, soap_ns in bindings:
        port = etree.SubElement(
            service, _w("port"), name=port_name, binding=f"tns:{binding_name}"
        )
        etree.SubElement(port, f"{{{soap_ns}}}address", location=address)
    return root


def _bytes(element: etree._Element) -> bytes:
    return etree.tostring(
        element, pretty_print=True, xml_declaration=True, encoding="utf-8"
    )


def generated_files() -> dict[str, bytes]:
    "File name -> content of every schema file, as generated now"
    files = {FILES[ns]: _bytes(schema_element(ns)) for ns in ORDER}
    files[WSDL_FILE] = _bytes(wsdl_element())
    return files


def schema_file(name: str) -> bytes:
    "A shipped schema file (xmlvend-base.xsd, ..., xmlvend.wsdl)"
    if name not in set(FILES.values()) | {WSDL_FILE}:
        raise KeyError(name)
    return resources.files(__package__).joinpath("schema", name).read_bytes()


@functools.cache
def wsdl_document(address: str) -> bytes:
    "The WSDL as served: schemas inlined, ``address`` as the endpoint"
    return _bytes(wsdl_element(address, inline=True))


@functools.cache
def xml_schema() -> etree.XMLSchema:
    "An lxml validator for all three namespaces (responses, stored payloads)"
    folder = resources.files(__package__).joinpath("schema")
    driver = etree.Element(_xs("schema"), nsmap={"xs": XS})
    for ns in ORDER:
        etree.SubElement(
            driver,
            _xs("import"),
            namespace=ns,
            schemaLocation=str(folder.joinpath(FILES[ns])),
        )
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.fromstring(etree.tostring(driver), parser))
