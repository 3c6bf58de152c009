"""Hardened XML parsing for everything that comes from outside.

Concentrators and head-ends are reached over networks an attacker may share,
so every document is treated as hostile:

- a size bound is checked before parsing (``max_bytes``);
- only UTF-8 is accepted (a UTF-16 document could hide a DOCTYPE from the
  byte scan below);
- any DOCTYPE, ENTITY or processing instruction other than the XML
  declaration is refused outright, before libxml2 sees the document, and the
  parser itself runs with entity resolution, DTD loading and network access
  off (defence in depth against billion-laughs and external entities);
- the nesting depth is bounded (``max_depth``) with an XPath that matches any
  element deeper than the bound;
- schema errors are reported with the element they concern.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from lxml import etree

from .errors import TooLarge, ValidationError

SCHEMA_DIR = Path(__file__).parent / "schema"

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_DEPTH = 12

_FORBIDDEN = re.compile(rb"<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.I)
_DECLARATION = re.compile(rb"^<\?xml[^>]*\?>")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_NAMESPACE = re.compile(r"\{(?:urn|https?):[^}]*\}")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def parse(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    what: str = "document",
) -> etree._Element:
    """Parse ``data`` (bytes, UTF-8) into an element tree, or raise
    :class:`ValidationError` / :class:`TooLarge` saying why not."""
    if not isinstance(data, (bytes, bytearray)):
        raise ValidationError(f"{what} must be bytes, not {type(data).__name__}")
    if len(data) > max_bytes:
        raise TooLarge(f"{what} of {len(data)} bytes exceeds the {max_bytes} limit")
    if not data.strip():
        raise ValidationError(f"{what} is empty")
    data = bytes(data)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
        raise ValidationError(f"{what} must be UTF-8 encoded")
    declaration = _DECLARATION.match(data.lstrip())
    if declaration:
        enc = _ENCODING.search(declaration.group(0))
        if enc and enc.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
            name = enc.group(1).decode("ascii", "replace")
            raise ValidationError(f"{what} must be UTF-8 encoded, not {name}")
    if _FORBIDDEN.search(data):
        raise ValidationError(f"{what} contains a DTD or entity declaration (refused)")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise ValidationError(f"{what} is not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise ValidationError(f"{what} contains a DTD (refused)")
    if root.xpath("boolean(" + "/*" * (max_depth + 1) + ")"):
        raise TooLarge(f"{what} nests deeper than {max_depth} elements")
    return root


@cache
def schema(name: str) -> etree.XMLSchema:
    """The project's XSD ``schema/<name>`` (parsed once; imports resolved
    from the same folder only)."""
    path = SCHEMA_DIR / name
    doc = etree.parse(str(path), _parser())
    return etree.XMLSchema(doc)


def validate(element: etree._Element, xsd: str) -> None:
    """Validate ``element`` (as a document root) against ``schema/<xsd>``;
    the first error names the element and what is wrong with it."""
    checker = schema(xsd)
    if checker.validate(element):
        return
    error = checker.error_log.filter_from_errors()[0]
    message = _NAMESPACE.sub("", error.message)
    field = _element_name(message) or etree.QName(element).localname
    raise ValidationError(message, field)


def _element_name(message: str) -> str | None:
    match = re.match(r"Element '([^']+)'(?:, attribute '([^']+)')?", message)
    if not match:
        return None
    element, attribute = match.groups()
    return f"{element}/@{attribute}" if attribute else element


def local(element: etree._Element) -> str:
    return etree.QName(element).localname
