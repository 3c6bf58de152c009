"""Hardened XML parsing for everything that comes from outside.

Concentrators and head-ends are reached over networks an attacker may share,
so every document is treated as hostile:

- a size bound is checked before parsing (``max_bytes``);
- only UTF-8 is accepted (a UTF-16 document could hide a DOCTYPE from the
  byte scan below);
- any DOCTYPE or ENTITY, ELEMENT, ATTLIST or NOTATION declaration is
  refused outright, before libxml2 sees the document, and the parser itself
  runs with entity resolution, DTD loading and network access off (defence
  in depth against billion-laughs and external entities); comments and
  processing instructions are dropped by the parser;
- the nesting depth is bounded (``max_depth``);
- schema errors are reported with the element they concern.

:func:`parse` builds the whole tree (SOAP messages); :class:`Stream` reads a
large document (a report file) element by element, validating it against
its schema as it goes, so that memory follows what the caller keeps, not
the size of the document.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
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


def _checked(data: bytes, max_bytes: int, what: str) -> bytes:
    """The checks made on the bytes before any parser sees them."""
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
    return data


def parse(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    what: str = "document",
) -> etree._Element:
    """Parse ``data`` (bytes, UTF-8) into an element tree, or raise
    :class:`ValidationError` / :class:`TooLarge` saying why not."""
    data = _checked(data, max_bytes, what)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise ValidationError(f"{what} is not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise ValidationError(f"{what} contains a DTD (refused)")
    if root.xpath("boolean(" + "/*" * (max_depth + 1) + ")"):
        raise TooLarge(f"{what} nests deeper than {max_depth} elements")
    return root


_BYTES_MESSAGE = re.compile(r"line \d+: b(['\"])(.*)\1")


def _message(exc: etree.XMLSyntaxError) -> str:
    """The parser's message (iterparse wraps some as "line 1: b'...'")."""
    text = exc.msg or str(exc)
    match = _BYTES_MESSAGE.fullmatch(text)
    return match.group(2) if match else text


# Not resolve_entities=False here: lxml 6's iterparse, given that and a
# schema, stops without an error at a premature end of data. The byte scan
# has refused any DTD already, so there is no entity to resolve anyway.
_ITER_OPTIONS = dict(
    load_dtd=False,
    dtd_validation=False,
    no_network=True,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
    collect_ids=False,
)


class Stream:
    """A large document read element by element.

        stream = Stream(data, xsd="report-1.xsd", max_depth=4, what="report")
        stream.root                      # the root's tag and attributes
        for depth, element in stream:    # each element once complete
            ...
            Stream.release(element)      # what is read is dropped

    ``root`` is read before the schema is applied, so that the caller can
    refuse a document of another version with its own message. Iterating
    validates against ``xsd`` as it parses; schema errors name the element
    as :func:`validate` does."""

    def __init__(
        self,
        data: bytes,
        *,
        xsd: str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
        what: str = "document",
    ) -> None:
        self.data = _checked(data, max_bytes, what)
        self.xsd = xsd
        self.max_depth = max_depth
        self.what = what
        try:
            events = etree.iterparse(
                io.BytesIO(self.data), events=("start",), **_ITER_OPTIONS
            )
            _, self.root = next(events)
        except etree.XMLSyntaxError as exc:
            raise ValidationError(f"{what} is not well-formed XML: {exc}") from None
        except StopIteration:
            raise ValidationError(f"{what} is empty") from None

    def __iter__(self) -> Iterator[tuple[int, etree._Element]]:
        """(depth, element) as each element ends; the root is depth 0."""
        events = etree.iterparse(
            io.BytesIO(self.data), events=("end",), schema=schema(self.xsd),
            **_ITER_OPTIONS,
        )  # fmt: skip
        depth = -1
        try:
            for _, element in events:
                depth, parent = 0, element.getparent()
                while parent is not None:
                    depth += 1
                    parent = parent.getparent()
                if depth >= self.max_depth:
                    raise TooLarge(
                        f"{self.what} nests deeper than {self.max_depth} elements"
                    )
                yield depth, element
            if depth != 0:  # never let a parser quirk pass a cut document
                raise ValidationError(
                    f"{self.what} is not well-formed XML: it ends inside an element"
                )
        except etree.XMLSyntaxError as exc:
            message = _NAMESPACE.sub("", _message(exc))
            field = _element_name(message)
            if field is None:
                message = f"{self.what} is not well-formed XML: {message}"
            raise ValidationError(message, field) from None

    def check_well_formed(self) -> None:
        """Parse it all without the schema (to say that a document is not
        well-formed before saying that it is not of the expected kind)."""
        try:
            for _ in etree.iterparse(io.BytesIO(self.data), **_ITER_OPTIONS):
                pass
        except etree.XMLSyntaxError as exc:
            raise ValidationError(
                f"{self.what} is not well-formed XML: {_message(exc)}"
            ) from None

    @staticmethod
    def release(element: etree._Element) -> None:
        """Drop ``element`` and the siblings read before it."""
        element.clear()
        parent = element.getparent()
        if parent is not None:
            while element.getprevious() is not None:
                del parent[0]


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
