"""The ``prepaid-tariff`` command.

``prepaid-tariff quote``: reads one JSON request per line on stdin and writes one
JSON result per line on stdout. A request with ``kwh`` instead of ``tender`` asks
for the tender that buys that many kWh. A bad line yields ``{"error": "..."}``
and processing continues; the exit status is 0.

``prepaid-tariff check [FILE]``: validates a tariff (JSON from FILE or stdin) and
prints it normalised, so staff can test a tariff before activating it. Exit 0 when
valid, 1 with the error on stderr otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import IO, Any

from .errors import TariffError
from .serialize import (
    quote_to_dict,
    request_from_dict,
    tariff_from_dict,
    tariff_to_dict,
)
from .vend import quote_vend, tender_for_kwh


def _loads(text: str) -> Any:
    # Decimal for JSON numbers so 1.2 stays exactly 1.2.
    return json.loads(text, parse_float=Decimal)


def quote_line(line: str) -> dict[str, Any]:
    """One request line to one result object (never raises on bad input)."""
    try:
        tariff, request, kwh = request_from_dict(_loads(line))
        if kwh is None:
            quote = quote_vend(tariff, request)
        else:
            quote = tender_for_kwh(tariff, kwh, request)
        return quote_to_dict(quote)
    except json.JSONDecodeError as exc:
        return {"error": f"invalid JSON: {exc.msg} at column {exc.colno}"}
    except TariffError as exc:
        return {"error": str(exc)}


def _quote(stdin: IO[str], stdout: IO[str]) -> int:
    for line in stdin:
        if not line.strip():
            continue
        stdout.write(json.dumps(quote_line(line)) + "\n")
        stdout.flush()  # a caller reading line by line sees each result at once
    return 0


def _check(path: str | None, stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> int:
    try:
        if path is None:
            text = stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        tariff = tariff_from_dict(_loads(text))
    except OSError as exc:
        stderr.write(f"prepaid-tariff check: cannot read {path}: {exc.strerror}\n")
        return 1
    except json.JSONDecodeError as exc:
        stderr.write(f"prepaid-tariff check: invalid JSON: {exc}\n")
        return 1
    except TariffError as exc:
        stderr.write(f"prepaid-tariff check: invalid tariff: {exc}\n")
        return 1
    stdout.write(json.dumps(tariff_to_dict(tariff), indent=2) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="prepaid-tariff", description="Prepaid tariff calculator."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "quote", help="quote vends: JSON lines on stdin -> JSON lines on stdout"
    )
    check = commands.add_parser("check", help="validate and normalise a tariff")
    check.add_argument("file", nargs="?", help="tariff JSON file (default: stdin)")
    args = parser.parse_args(argv)
    if args.command == "quote":
        return _quote(sys.stdin, sys.stdout)
    return _check(args.file, sys.stdin, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
