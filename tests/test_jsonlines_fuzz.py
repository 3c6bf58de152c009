"""Fuzz test of the JSON-lines commands ``prepaid-sts batch`` and
``prepaid-tariff quote`` (issue 11): whatever the input lines, each one gets
exactly one output line, and every output line is a JSON object."""

from __future__ import annotations

import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trytond.modules.prepaid_sts.engine.cli import run_batch
from trytond.modules.prepaid_vending.tariff.cli import _quote

KEY = "87f3ecbb2e46b48f"
TARIFF = {"vat_rate": "0.15", "prices_include_vat": True, "price": "1.60"}

# JSON values of every kind, numbers included at their extremes.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["1e30", "1_000", "\u0661\u0660", "NaN", "-0", "0.0000001"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def dumped(value) -> bytes:
    return json.dumps(value).encode()


STS_REQUESTS = st.builds(
    lambda op, fields: {"op": op, "decoder_key": KEY, **fields},
    st.sampled_from(["token", "decode", "key_change", "other"]),
    st.dictionaries(
        st.sampled_from(["token_class", "subclass", "tid", "amount", "value16",
                         "rnd", "token", "ea", "control", "mfr_code",
                         "new_decoder_key", "new_krn", "sections"]),
        VALUES,
        max_size=6,
    ),
)  # fmt: skip
TARIFF_REQUESTS = st.builds(
    lambda fields: {"tariff": TARIFF, "tender": "100", **fields},
    st.dictionaries(
        st.sampled_from(["tender", "kwh", "debt", "channel", "tariff",
                         "month_to_date_kwh", "emergency_credit_owed",
                         "first_vend_of_month", "meter_register"]),
        VALUES,
        max_size=4,
    ),
)  # fmt: skip
# Raw lines: any bytes but the newline, bracket runs, cut JSON.
RAW = (
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b""))
    | st.integers(0, 3000).map(lambda n: b"[" * n + b"]" * (n // 2))
    | VALUES.map(dumped).map(lambda b: b[: len(b) // 2])
)


def lines_of(requests):
    return st.lists(requests.map(dumped) | RAW | VALUES.map(dumped), max_size=12)


def answers(command, lines: list[bytes]) -> list[dict]:
    stdin = io.BytesIO(b"".join(line + b"\n" for line in lines))
    stdout = io.StringIO()
    assert command(stdin, stdout) == 0
    out = stdout.getvalue().splitlines()
    assert len(out) == len(lines)
    parsed = [json.loads(line) for line in out]
    assert all(isinstance(answer, dict) for answer in parsed)
    return parsed


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ
@given(lines_of(STS_REQUESTS))
def test_sts_batch_one_json_line_per_line(lines):
    answers(run_batch, lines)


@FUZZ
@given(lines_of(TARIFF_REQUESTS))
def test_tariff_quote_one_json_line_per_line(lines):
    for line, answer in zip(lines, answers(_quote, lines)):
        # A line is either answered or refused, never half of both.
        assert ("error" in answer) != ("total" in answer), (line, answer)


def test_answers_of_good_lines_follow_bad_ones():
    "The property above with lines whose answers are known"
    token = {"op": "token", "token_class": 0, "subclass": 0, "decoder_key": KEY,
             "tid": 85740, "rnd": 5, "value16": "0001"}  # fmt: skip
    out = answers(run_batch, [b"\xff", b"", dumped(token)])
    assert [sorted(a) for a in out[:2]] == [["error"], ["error"]]
    assert out[2] == {"token": "70630503470028726114", "tid": 85740}
    quote = {"tariff": TARIFF, "tender": "100"}
    out = answers(_quote, [b"[" * 100, dumped(quote)])
    assert "error" in out[0] and out[1]["total"] == "100.00"
