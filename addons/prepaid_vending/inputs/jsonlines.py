"""The JSON-lines loop shared by ``prepaid-sts batch`` and ``prepaid-tariff
quote``: one JSON object per input line, exactly one JSON line per input line,
in order, whatever the input.

A line that cannot be answered gets ``{"error": "<reason>"}`` and the next
line is read.  The limits below keep one line from hanging or exhausting the
process; they are the same for both commands and documented in their help:

* a line is at most ``MAX_LINE_BYTES`` bytes (the newline excluded); a longer
  line is skipped as it streams in, never held in memory;
* a line is UTF-8 text holding one JSON object, nested at most ``MAX_DEPTH``
  levels deep;
* a JSON integer is at most ``MAX_INTEGER_CHARS`` characters long, any other
  JSON number at most ``MAX_NUMBER_CHARS``; ``NaN`` and ``Infinity`` are not
  numbers (amounts are then checked by ``numbers.parse_decimal``);
* an empty (or blank) line is an error line too, so that output line N always
  answers input line N.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import IO, Any

MAX_LINE_BYTES = 1 << 20
MAX_DEPTH = 20
MAX_NUMBER_CHARS = 40
MAX_INTEGER_CHARS = 20
READ_CHUNK = 1 << 16

# Strings (skipped whole, with their escapes) and brackets: enough to measure
# how deep a line nests without parsing it.  An unterminated string runs to
# the end of the line (a lone backslash included): were it to fail instead,
# the scan would try again from each escaped quote inside it, which is
# quadratic in the line (a 1 MiB line of \" took hours).
_NESTING = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)

LIMITS_HELP = (
    f"Limits: a line is at most {MAX_LINE_BYTES // 1024} KiB of UTF-8 JSON, "
    f"nested at most {MAX_DEPTH} levels; a JSON integer has at most "
    f"{MAX_INTEGER_CHARS} characters, another JSON number at most "
    f"{MAX_NUMBER_CHARS}; NaN and Infinity are refused. A line beyond a "
    "limit, an empty line or a line that is not a JSON object gets its own "
    '{"error": ...} line.'
)


class LineError(ValueError):
    "A line that is not an acceptable JSON object (the message says why)"


class TooLong:
    "Stands for a line longer than the limit, skipped as it came in"

    def __init__(self, size: int):
        self.size = size


def read_lines(
    stream: IO[bytes], max_bytes: int = MAX_LINE_BYTES, chunk: int = READ_CHUNK
) -> Iterator[list[bytes | TooLong]]:
    """The lines of a binary stream, grouped as they arrive (one list per
    read), without their newline.  A line over max_bytes comes as a TooLong;
    only max_bytes of it are ever held.  A last line without a newline
    counts if it is not empty."""
    read = getattr(stream, "read1", stream.read)
    pending = b""
    skipping = 0  # > 0: inside a line that is too long, bytes seen so far
    while True:
        data = read(chunk)
        if not data:
            break
        lines: list[bytes | TooLong] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if skipping:
                lines.append(TooLong(skipping + end - start))
                skipping = 0
            else:
                line = pending + data[start:end] if pending else data[start:end]
                pending = b""
                lines.append(line if len(line) <= max_bytes else TooLong(len(line)))
            start = end + 1
        rest = data[start:]
        if skipping:
            skipping += len(rest)
        elif len(pending) + len(rest) > max_bytes:
            skipping = len(pending) + len(rest)
            pending = b""
        else:
            pending += rest
        if lines:
            yield lines
    if skipping:
        yield [TooLong(skipping)]
    elif pending:
        yield [pending]


def _number_text(text: str, limit: int = MAX_NUMBER_CHARS) -> str:
    if len(text) > limit:
        raise LineError(
            f"a number of {len(text)} characters: numbers longer than {limit} "
            "characters are refused"
        )
    return text


def _int(text: str) -> int:
    return int(_number_text(text, MAX_INTEGER_CHARS))


def _constant(name: str) -> Any:
    raise LineError(f"{name} is not a number")


def _decoder(parse_float: Callable[[str], Any]) -> json.JSONDecoder:
    return json.JSONDecoder(
        parse_int=_int,
        parse_float=lambda text: parse_float(_number_text(text)),
        parse_constant=_constant,
    )


#: JSON numbers with a fraction or exponent as Decimal (amounts) or float.
DECIMAL_NUMBERS = _decoder(Decimal)
FLOAT_NUMBERS = _decoder(float)


def nesting(raw: bytes) -> int:
    "How deep the brackets of a JSON text nest (outside strings)"
    depth = deepest = 0
    for match in _NESTING.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def parse_line(
    raw: bytes | TooLong, decoder: json.JSONDecoder = DECIMAL_NUMBERS
) -> dict[str, Any]:
    "One input line as a JSON object, or LineError saying what is wrong"
    if isinstance(raw, TooLong):
        raise LineError(
            f"line of {raw.size} bytes is longer than the limit of "
            f"{MAX_LINE_BYTES} bytes: skipped"
        )
    if not raw.strip():
        raise LineError("empty line: expected a JSON object")
    # Counting brackets is cheap; the exact measure only when it may matter.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and nesting(raw) > MAX_DEPTH:
        raise LineError(f"JSON nested more than {MAX_DEPTH} levels deep")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(f"line is not UTF-8 text (byte {exc.start})") from None
    try:
        request = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise LineError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:  # not reached under MAX_DEPTH; kept as a guard
        raise LineError(f"JSON nested more than {MAX_DEPTH} levels deep") from None
    if not isinstance(request, dict):
        raise LineError("each line must be a JSON object")
    return request


def error_line(message: str) -> str:
    return json.dumps({"error": message})


def run(
    stdin: IO[bytes],
    stdout: IO[str],
    answer: Callable[[bytes | TooLong], str],
) -> None:
    """Answer every line of stdin on stdout, in order, one line each.

    answer returns one line of JSON (without newline); an exception it lets
    through becomes an error line, so that one line never stops the others.
    The answers to the lines of each read are written at once and flushed:
    a program that talks line by line gets each answer when it is ready."""
    for lines in read_lines(stdin):
        out = []
        for raw in lines:
            try:
                out.append(answer(raw))
            except LineError as exc:
                out.append(error_line(str(exc)))
            except Exception as exc:  # one line must never stop the batch
                out.append(error_line(f"cannot answer this line: {exc!r}"[:500]))
        out.append("")
        stdout.write("\n".join(out))
        stdout.flush()
