"""How deep a JSON line nests, measured before parsing (inputs/jsonlines.py)."""

import pytest
from trytond.modules.prepaid_vending.inputs.jsonlines import (
    MAX_DEPTH,
    LineError,
    nesting,
    parse_line,
)


@pytest.mark.parametrize(
    "raw, depth",
    [
        (b'{"a": [1, {"b": 2}]}', 3),
        (b'{"a": "[[[[ {{{{"}', 1),  # brackets inside a string do not count
        (b'{"a": "\\"[[["}', 1),  # nor after an escaped quote
        (b'[[["unterminated [[[', 3),  # an open string runs to the end
        (b'[["lone backslash \\', 2),
        (b"", 0),
    ],
)
def test_nesting(raw, depth):
    assert nesting(raw) == depth


def test_escaped_quotes_in_an_unterminated_string_are_scanned_once():
    # Enough brackets to need the scan, then 1 MiB of \" with no closing
    # quote: the scan must treat it as one string (it was quadratic).
    raw = b"[" * (MAX_DEPTH + 1) + b'"' + b'\\"' * (1 << 19)
    assert nesting(raw) == MAX_DEPTH + 1
    with pytest.raises(LineError, match="nested more than"):
        parse_line(raw)
