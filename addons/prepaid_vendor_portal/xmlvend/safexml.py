"""Parsing untrusted XML within fixed bounds.

A request body is refused, before any parsing, when it is empty, larger than
``max_body``, not valid UTF-8, declares another encoding, or contains a
document type declaration (``<!DOCTYPE``) or an entity declaration: no DTD
means no entity expansion (billion laughs), no external entities (XXE) and no
external DTD fetch.  lxml then parses with entity resolution, DTD loading and
network access off, comments and processing instructions dropped; the tree is
walked once to bound its depth and element count.  Every step is linear in
the body's size, so time and memory are bounded by ``max_body``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from lxml import etree


@dataclass(frozen=True)
class Limits:
    "Bounds on an untrusted document"

    max_body: int = 64 * 1024
    max_depth: int = 24
    max_elements: int = 1000


REQUEST_LIMITS = Limits()
# Stored responses (a reprint holds several receipts) are ours but still
# bounded: the redaction helper and the response reader use these.
RESPONSE_LIMITS = Limits(max_body=1024 * 1024, max_depth=32, max_elements=20000)


class UnsafeXML(ValueError):
    "The document is refused; the message is safe to show to the client"


_DECLARED_ENCODING = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)")
_UTF8_NAMES = {b"utf-8", b"utf8", b"us-ascii", b"ascii"}
_BOM = b"\xef\xbb\xbf"
_local = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parsers must not be shared between threads.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            load_dtd=False,
            dtd_validation=False,
            no_network=True,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            collect_ids=False,
            encoding="utf-8",
        )
        _local.parser = parser
    return parser


def check_body(body: bytes, limits: Limits) -> bytes:
    "The body without a UTF-8 byte order mark, or UnsafeXML"
    if not body or not body.strip():
        raise UnsafeXML("empty request body")
    if len(body) > limits.max_body:
        raise UnsafeXML(f"request body larger than {limits.max_body} bytes")
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeXML("request body is not valid UTF-8") from None
    declared = _DECLARED_ENCODING.match(body.lstrip())
    if declared and declared.group(1).lower() not in _UTF8_NAMES:
        raise UnsafeXML("only UTF-8 is accepted")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise UnsafeXML("document type declarations are not accepted")
    return body


def parse(body: bytes, limits: Limits = REQUEST_LIMITS) -> etree._Element:
    "The root element of an untrusted document, or UnsafeXML"
    body = check_body(body, limits)
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as error:
        raise UnsafeXML(f"not well-formed XML (line {error.lineno})") from None
    if root.getroottree().docinfo.doctype:
        raise UnsafeXML("document type declarations are not accepted")
    _check_shape(root, limits)
    return root


def _check_shape(root: etree._Element, limits: Limits) -> None:
    depth = count = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        count += 1
        if depth > limits.max_depth:
            raise UnsafeXML(f"elements nested deeper than {limits.max_depth}")
        if count > limits.max_elements:
            raise UnsafeXML(f"more than {limits.max_elements} elements")
