"""Masking secrets before a request or response is stored for disputes.

Masked: operator passwords (``password``, ``newPassword``), payment card data
(``pan`` but its last four digits, ``expDate``, ``cvNum``), cheque MICR lines,
and the two tokens of a key change (``set1stMeterKey``/``set2ndMeterKey``).
Credit tokens stay: a dispute is about which token was sold, and reprint
shows them to the vendor anyway.

A body that cannot be parsed safely (hostile or broken) is stored cut to
``keep`` bytes, with anything that looks like a password masked by pattern.
"""

from __future__ import annotations

import re

from lxml import etree

from . import safexml
from .namespaces import split
from .safexml import RESPONSE_LIMITS, Limits, UnsafeXML

MASK = "****"
SECRET_ELEMENTS = frozenset({"password", "newPassword", "expDate", "cvNum", "micr"})
KEY_CHANGE_TOKENS = frozenset({"set1stMeterKey", "set2ndMeterKey"})
_SECRET_TEXT = re.compile(
    rb"(<(?:[\w.-]+:)?(?:password|newPassword|pan|expDate|cvNum|micr|stsCipher)\b[^>]*>)"
    rb"[^<]*",
    re.IGNORECASE,
)


def redact(
    document: bytes, *, limits: Limits = RESPONSE_LIMITS, keep: int = 4096
) -> bytes:
    "``document`` with its secrets masked"
    try:
        root = safexml.parse(document, limits)
    except UnsafeXML as error:
        head = _SECRET_TEXT.sub(rb"\1" + MASK.encode(), document[:keep])
        note = f"<!-- unparsed ({error}); {len(document)} bytes, first {keep} kept -->"
        return note.encode() + head
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        local = split(node.tag)[1]
        if local in SECRET_ELEMENTS:
            _mask(node, MASK)
        elif local == "pan":
            digits = (node.text or "").strip()
            _mask(node, MASK + digits[-4:] if len(digits) > 8 else MASK)
        elif local in KEY_CHANGE_TOKENS:
            for cipher in node.iter():
                if cipher is not node and isinstance(cipher.tag, str):
                    _mask(cipher, MASK)
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


def _mask(node: etree._Element, text: str) -> None:
    for child in list(node):
        node.remove(child)
    node.text = text
