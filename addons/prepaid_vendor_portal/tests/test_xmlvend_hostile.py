"""Hostile input gets a SOAP Client fault, within bounded time and memory.

Every case runs in one child process limited to 1 GiB of address space and
60 s (``bounded.run_bounded``): an expanded entity (billion laughs is 3 GB)
or an unbounded parse would break those bounds and fail the test.  Timings
are printed by bench/xmlvend_codec.py, never asserted here.
"""

from __future__ import annotations

import json

import pytest
from lxml import etree
from trytond.modules.prepaid_vendor_portal.xmlvend import safexml

from .bounded import run_bounded
from .xmlvend_hostile import cases

CASES = list(cases())


@pytest.fixture(scope="module")
def answers() -> dict[str, dict]:
    run = run_bounded(
        "-m", "trytond.modules.prepaid_vendor_portal.tests.xmlvend_hostile"
    )
    assert run.returncode == 0, run.stderr[-2000:].decode(errors="replace")
    lines = run.stdout.decode().splitlines()
    return {line["case"]: line for line in map(json.loads, lines)}


@pytest.mark.parametrize("case", CASES)
def test_hostile_body_gets_a_client_fault(answers, case):
    answer = answers[case]
    body = answer["body"]
    if case.startswith("control"):
        assert answer["status"] == 200 and "creditVendResp" in body
        return
    assert answer["status"] == 500
    assert answer["content_type"] == "text/xml; charset=utf-8"
    envelope = etree.fromstring(body.encode())
    assert envelope.findtext(".//faultcode") == "soap:Client"
    for leak in ("root:", "Traceback", 'File "', "lol" * 5):
        assert leak not in body


def test_only_a_request_with_a_readable_header_gets_the_xmlvend_detail(answers):
    with_detail = {
        case for case, answer in answers.items() if "xmlvendFaultResp" in answer["body"]
    }
    assert with_detail == {"huge attribute"}


def test_the_parser_itself_resolves_no_entity_and_fetches_nothing(monkeypatch):
    # Defence in depth: even past the DOCTYPE pre-check, lxml is configured
    # not to resolve entities or load a DTD, and the tree is refused.
    monkeypatch.setattr(safexml, "check_body", lambda body, limits: body)
    xxe = b'<!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><e>&xxe;</e>'
    tree = etree.fromstring(xxe, safexml._parser())
    assert "root:" not in etree.tostring(tree).decode()
    with pytest.raises(safexml.UnsafeXML, match="document type"):
        safexml.parse(xxe)
