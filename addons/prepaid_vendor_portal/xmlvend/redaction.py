"""Masking secrets before a request or response is stored for disputes.

What is secret is declared once, on the typed model: every field declared
with ``secret=True`` (:func:`.binding.elem`) is masked here.  That is the
operator's password and new password, a card's number (but its last four
digits), expiry date and code, a cheque's account number and MICR line, and
the two tokens of a key change.  An element name that is secret in every
type declaring it (``password``) is masked wherever it appears; one that is
secret in some types only (``accNo``: a cheque's, not a customer's account
number) is masked inside the elements that can hold such a type
(``payType``).  Credit tokens stay: a dispute is about which token was sold,
and reprint shows them to the vendor anyway.

A body that cannot be parsed safely (hostile, broken, not UTF-8, too large)
is not stored at all: only its size and why it was refused.  Masking by
pattern what a parser refused cannot be made safe (CDATA, comments inside a
value, UTF-16, a tag cut by an invalid byte all slip past a pattern), and a
digest of it would let whoever reads the log test guesses of the password
it holds.  Such a request was answered with a fault and sold nothing, so
there is nothing to dispute in it.
"""

from __future__ import annotations

from lxml import etree

# Every module that declares types, so that the registry is complete.
from . import base, faults, meter, revenue, safexml  # noqa: F401
from .binding import REGISTRY, plan_of
from .namespaces import XSI, split
from .safexml import RESPONSE_LIMITS, Limits, UnsafeXML

MASK = "****"
LAST_DIGITS_KEPT = frozenset({"pan"})  # a card number keeps its last four digits


def _secret_elements() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """(names secret wherever they appear, {container name: secret names in it})
    from the fields the typed model declares secret"""
    flags: dict[str, set[bool]] = {}
    for cls in REGISTRY.values():
        plan = plan_of(cls)
        for fp in plan.attrs:
            if fp.secret:
                raise TypeError(f"{cls.__name__}.{fp.name}: secret attributes are "
                                "not masked; make it an element")  # fmt: skip
        for fp in plan.elems:
            flags.setdefault(fp.local, set()).add(fp.secret)
    everywhere = frozenset(local for local, seen in flags.items() if seen == {True})
    within: dict[str, set[str]] = {}
    for cls in REGISTRY.values():
        partly = [
            fp.local for fp in plan_of(cls).elems
            if fp.secret and fp.local not in everywhere
        ]  # fmt: skip
        if not partly:
            continue
        for holder in REGISTRY.values():
            for fp in plan_of(holder).elems:
                if fp.is_complex and issubclass(cls, fp.py_type):
                    within.setdefault(fp.local, set()).update(partly)
    return everywhere, {name: frozenset(names) for name, names in within.items()}


SECRET_ELEMENTS, SECRET_WITHIN = _secret_elements()


def redact(document: bytes, *, limits: Limits = RESPONSE_LIMITS) -> bytes:
    "``document`` with its secrets masked (see the module)"
    try:
        root = safexml.parse(document, limits)
    except UnsafeXML as error:
        return f"<!-- not stored: {error}; {len(document)} bytes -->".encode()
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        local = split(node.tag)[1]
        if local in SECRET_ELEMENTS:
            _mask(node)
        inside = SECRET_WITHIN.get(local)
        if inside:
            for child in node:
                if isinstance(child.tag, str) and split(child.tag)[1] in inside:
                    _mask(child)
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


def _mask(node: etree._Element) -> None:
    "Mask every value in node and below: texts, tails and attributes"
    for element in node.iter():
        if not isinstance(element.tag, str):
            continue
        for name in element.attrib:
            if not name.startswith(f"{{{XSI}}}"):
                element.attrib[name] = MASK
        if len(element):
            element.text = None
            for child in element:
                child.tail = None
            continue
        text = (element.text or "").strip()
        keep = split(element.tag)[1] in LAST_DIGITS_KEPT and len(text) > 8
        element.text = MASK + text[-4:] if keep else MASK
