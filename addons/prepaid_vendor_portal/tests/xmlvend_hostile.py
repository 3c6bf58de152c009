"""Hostile request bodies, and a runner that answers each of them.

The test runs this module in a child process under a memory limit and a
time-out (``python -m trytond.modules.prepaid_vendor_portal.tests.xmlvend_hostile``):
an expanded entity or an unbounded parse would exceed them.  It prints one
JSON line per case.
"""

from __future__ import annotations

import json
import resource
import time

from trytond.modules.prepaid_vendor_portal import xmlvend as x

from .xmlvend_fake import FakeBackend, credit_vend, envelope, soap

MAX_BODY = x.REQUEST_LIMITS.max_body
LAUGHS = (
    b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b"<!ENTITY lol%d \"%s\">"
        % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>"
)


def cases() -> dict[str, bytes]:
    valid = soap(credit_vend())
    declaration = b'<?xml version="1.0"?>'
    nested = "<a>" * 5000 + "</a>" * 5000
    return {
        "control: a valid request": valid,
        "external entity (XXE)": declaration
        + b'<!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        + valid.replace(b"OPERATOR1", b"&xxe;"),
        "entity expansion (billion laughs)": declaration
        + LAUGHS
        + valid.replace(b"OPERATOR1", b"&lol9;"),
        "internal DTD": b"<!DOCTYPE Envelope []>" + valid,
        "external DTD": b'<!DOCTYPE Envelope SYSTEM "http://127.0.0.1:9/evil.dtd">'
        + valid,
        "parameter entity": b"<!DOCTYPE e [<!ENTITY % p SYSTEM "
        b'"http://127.0.0.1:9/p"> %p;]>' + valid,
        "oversized body": valid.replace(
            b"<soapenv:Body>", b"<soapenv:Body><!--" + b"x" * MAX_BODY + b"-->"
        ),
        "deep nesting (beyond the parser's own limit)": envelope(nested),
        "deep nesting (beyond ours)": valid.replace(
            b"secret-1", b"<q>" * 40 + b"</q>" * 40
        ),
        "too many elements": valid.replace(b"secret-1", b"<q/>" * 5000),
        "invalid UTF-8": valid.replace(b"OPERATOR1", b"OPER\xff\xfeATOR1"),
        "UTF-16": valid.decode().encode("utf-16"),
        "declared Latin-1": b"<?xml version='1.0' encoding='ISO-8859-1'?>" + valid,
        "NUL byte": valid.replace(b"OPERATOR1", b"OPER\x00ATOR1"),
        "not XML": b"hello, world",
        "JSON": b'{"creditVendReq": {"msno": "14339800360"}}',
        "empty body": b"",
        "blank body": b" \r\n\t",
        "truncated": valid[:-30],
        "wrong root": b"<creditVendReq/>",
        "unknown operation": envelope('<f:fooReq xmlns:f="urn:foo"><f:a/></f:fooReq>'),
        "XInclude": valid.replace(
            b"<b:opName>OPERATOR1</b:opName>",
            b'<b:opName><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
            b'href="file:///etc/passwd" parse="text"/></b:opName>',
        ),
        "huge attribute": valid.replace(
            b'msno="14339800360"', b'msno="' + b"1" * (MAX_BODY - 2000) + b'"'
        ),
    }


def main() -> None:
    backend = FakeBackend()
    for name, body in cases().items():
        start = time.perf_counter()
        status, content_type, answer = x.handle(body, "text/xml", None, backend)
        elapsed = time.perf_counter() - start
        print(
            json.dumps(
                {
                    "case": name,
                    "status": status,
                    "content_type": content_type,
                    "body": answer.decode(),
                    "ms": round(elapsed * 1000, 3),
                    "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                }
            )
        )


if __name__ == "__main__":
    main()
