"""The ``prepaid-tariff`` command.

``prepaid-tariff quote``: reads one JSON request per line on stdin and writes one
JSON result per line on stdout, exactly one per input line, in order. A request
with ``kwh`` instead of ``tender`` asks for the tender that buys that many kWh. A
bad line (bad JSON, a limit exceeded, an empty line, a bad field) yields
``{"error": "..."}`` and processing continues; the exit status is 0. The line
loop and its limits are those of ``prepaid-sts batch`` (``inputs.jsonlines``).

``prepaid-tariff check [FILE]``: validates a tariff (JSON from FILE or stdin) and
prints it normalised, so staff can test a tariff before activating it. Exit 0 when
valid, 1 with the error on stderr otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import IO, Any

from ..inputs import jsonlines
from ..inputs.numbers import MAX_INTEGER_DIGITS, MAX_PLACES
from .errors import TariffError
from .serialize import (
    quote_to_dict,
    request_from_dict,
    tariff_from_dict,
    tariff_to_dict,
)
from .vend import quote_vend, tender_for_kwh


def quote_line(line: bytes | str | jsonlines.TooLong) -> dict[str, Any]:
    """One request line to one result object (never raises on bad input)."""
    raw = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
    try:
        tariff, request, kwh = request_from_dict(jsonlines.parse_line(raw))
        if kwh is None:
            quote = quote_vend(tariff, request)
        else:
            quote = tender_for_kwh(tariff, kwh, request)
        return quote_to_dict(quote)
    except (jsonlines.LineError, TariffError) as exc:
        return {"error": str(exc)}
    except ArithmeticError:
        # Every input is bounded (inputs.numbers); kept so that a combination
        # of extreme values still answers with a line of its own.
        return {"error": "the numbers of this request are too large to compute"}


def _quote(stdin: IO[bytes], stdout: IO[str]) -> int:
    jsonlines.run(stdin, stdout, lambda raw: json.dumps(quote_line(raw)))
    return 0


def _check(path: str | None, stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    "The tariff file is read as one JSON text, within the limits of a line"
    limit = jsonlines.MAX_LINE_BYTES
    try:
        if path is None:
            data = stdin.read(limit + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
        raw = data if len(data) <= limit else jsonlines.TooLong(len(data))
        tariff = tariff_from_dict(jsonlines.parse_line(raw))
    except OSError as exc:
        stderr.write(f"prepaid-tariff check: cannot read {path}: {exc.strerror}\n")
        return 1
    except jsonlines.LineError as exc:
        stderr.write(f"prepaid-tariff check: {exc}\n")
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
        "quote",
        help="quote vends: JSON lines on stdin -> JSON lines on stdout",
        description="One JSON request per line on stdin, one JSON result per "
        'line on stdout, in order; a bad line gets {"error": ...}. '
        "Amounts are decimal strings in plain notation (150.50) or JSON "
        f"numbers, at most {MAX_INTEGER_DIGITS} digits before the point and "
        f"{MAX_PLACES} after. " + jsonlines.LIMITS_HELP,
    )
    check = commands.add_parser("check", help="validate and normalise a tariff")
    check.add_argument("file", nargs="?", help="tariff JSON file (default: stdin)")
    args = parser.parse_args(argv)
    if args.command == "quote":
        return _quote(getattr(sys.stdin, "buffer", sys.stdin), sys.stdout)
    return _check(
        args.file, getattr(sys.stdin, "buffer", sys.stdin), sys.stdout, sys.stderr
    )


if __name__ == "__main__":
    sys.exit(main())
