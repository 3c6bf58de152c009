"""XML namespaces of XMLVend 2.1 (NRS 009-6-10) and of the SOAP envelopes."""

from typing import Final

BASE: Final = "http://www.nrs.eskom.co.za/xmlvend/base/2.1/schema"
REVENUE: Final = "http://www.nrs.eskom.co.za/xmlvend/revenue/2.1/schema"
METER: Final = "http://www.nrs.eskom.co.za/xmlvend/meter/2.1/schema"
SERVICE: Final = "http://www.nrs.eskom.co.za/xmlvend/service/2.1"

XMLVEND: Final = frozenset({BASE, REVENUE, METER})

SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
XS: Final = "http://www.w3.org/2001/XMLSchema"
WSDL: Final = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP11: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12: Final = "http://schemas.xmlsoap.org/wsdl/soap12/"
XML: Final = "http://www.w3.org/XML/1998/namespace"

# Prefixes of the documents this package writes (any prefix is accepted on input).
PREFIXES: Final = {BASE: "b", REVENUE: "r", METER: "m"}
XSI_TYPE: Final = f"{{{XSI}}}type"


def split(tag: str) -> tuple[str | None, str]:
    "``{ns}local`` -> (ns, local); an unqualified tag has ns None"
    if tag[:1] == "{":
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag
