"""The prepaid-tariff command, run as a subprocess."""

import json
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

from .test_tariff_model import TARIFF_JSON

MODULE = "trytond.modules.prepaid_vending.tariff.cli"

EXAMPLE = {
    "tariff": TARIFF_JSON,
    "tender": "300.00",
    "month_to_date_kwh": "0",
    "first_vend_of_month": True,
    "first_vend_of_year": False,
    "debt": {"balance": "40.00", "recovery_percent": "25"},
    "emergency_credit_owed": "0.00",
}


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", MODULE, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_quote_lines_with_an_error_in_the_middle():
    example_c = json.loads(json.dumps(EXAMPLE))
    example_c["tariff"]["charges"] = example_c["tariff"]["charges"][:1]
    inverse = {**example_c, "kwh": "122.5"}
    del inverse["tender"]
    lines = [
        json.dumps(EXAMPLE),
        "{not json",
        json.dumps({**EXAMPLE, "tender": "10.00"}),  # does not cover the charges
        "",  # an empty line gets its own error line
        # JSON numbers are read as Decimal, not float
        '{"tariff": {"vat_rate": 0.15, "prices_include_vat": true, "price": 2.3},'
        ' "tender": 23.00}',
        json.dumps(example_c),
        json.dumps(inverse),
    ]
    result = run("quote", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 7
    levy, bad_json, too_small, empty, numbers, c, inv = out
    assert empty == {"error": "empty line: expected a JSON object"}
    # the levy example, computed by hand in test_tariff_vend
    assert levy["units_kwh"] == "118.8"
    assert (levy["energy_amount"], levy["energy_vat"]) == ("170.09", "25.51")
    assert levy["charges"] == [
        {"name": "Service charge", "amount": "50.00", "vat": "7.50"},
        {"name": "Levy", "amount": "6.00", "vat": "0.90"},
    ]
    assert (levy["debt_recovered"], levy["emergency_credit_recovered"]) == (
        "40.00",
        "0.00",
    )
    assert levy["blocks"] == [
        {"block": 1, "kwh": "50.0", "price": "1.20", "amount": "60.00"},
        {"block": 2, "kwh": "68.8", "price": "1.60", "amount": "110.09"},
    ]
    assert levy["total"] == "300.00"
    assert bad_json["error"].startswith("invalid JSON")
    assert "does not cover" in too_small["error"]
    assert numbers["units_kwh"] == "10.0"
    # docs/vending.md Example C exactly
    assert (c["units_kwh"], c["energy_amount"], c["energy_vat"]) == (
        "122.5",
        "176.09",
        "26.41",
    )
    assert D(inv["units_kwh"]) >= D("122.5") and D(inv["tender"]) <= D("300.00")


def test_check_normalises_a_tariff(tmp_path: Path):
    path = tmp_path / "tariff.json"
    path.write_text(json.dumps(EXAMPLE["tariff"]))
    result = run("check", str(path))
    assert result.returncode == 0, result.stderr
    normal = json.loads(result.stdout)
    assert normal["kind"] == "step"
    assert normal["blocks"][1] == {"from_kwh": "50", "to_kwh": "350", "price": "1.60"}
    # the normalised form is itself a valid tariff that normalises to itself
    again = run("check", stdin=result.stdout)
    assert json.loads(again.stdout) == normal


def test_check_rejects_bad_tariffs(tmp_path: Path):
    broken = dict(EXAMPLE["tariff"])
    broken["blocks"] = [
        {"to_kwh": "50", "price": "1.20"},
        {"to_kwh": "40", "price": "2"},
    ]
    result = run("check", stdin=json.dumps(broken))
    assert result.returncode == 1
    assert "invalid tariff" in result.stderr and "bounds must increase" in result.stderr
    assert result.stdout == ""
    missing = run("check", str(tmp_path / "missing.json"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    assert run("check", stdin="[").returncode == 1
    assert run().returncode == 2  # argparse: a sub-command is required


def test_quote_survives_hostile_lines():
    """Each bad line gets its own error line and the next line is answered,
    for the lines that stopped the command before (issue 11 section 8)."""
    good = json.dumps(EXAMPLE).encode()
    bad = {
        "nested": b"[" * 5000 + b"]" * 5000,
        "integer": b'{"tender": ' + b"9" * 5000 + b"}",
        "exponent": json.dumps({**EXAMPLE, "tender": "1e30"}).encode(),
        "json exponent": json.dumps(EXAMPLE).replace('"300.00"', "1e30").encode(),
        "underscore": json.dumps({**EXAMPLE, "tender": "1_000"}).encode(),
        "arabic digits": json.dumps({**EXAMPLE, "tender": "\u0661\u0660"}).encode(),
        "nan": json.dumps(EXAMPLE).replace('"300.00"', "NaN").encode(),
        "places": json.dumps({**EXAMPLE, "tender": "1.000000001"}).encode(),
        "not json": b"{not json",
        "not utf-8": b'{"tender": "\xff"}',
        "empty": b"   ",
        "huge": b'{"tender": "' + b"1" * (3 << 20) + b'"}',
    }
    stdin = b"".join(line + b"\n" + good + b"\n" for line in bad.values())
    result = subprocess.run(
        [sys.executable, "-m", MODULE, "quote"],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 2 * len(bad)
    errors = {name: answer.get("error") for name, answer in zip(bad, out[0::2])}
    assert all(answer["total"] == "300.00" for answer in out[1::2])
    assert errors["nested"] == "JSON nested more than 20 levels deep"
    assert "numbers longer than 20 characters" in errors["integer"]
    for name in ("exponent", "underscore", "arabic digits"):
        assert errors[name].startswith("tender: "), name
        assert "write it with the digits 0-9" in errors[name], name
    assert errors["json exponent"] == (
        "tender: 1E+30 is too large: at most 12 digits before the decimal point"
    )
    assert errors["nan"] == "NaN is not a number"
    assert errors["places"] == "tender: 1.000000001 has more than 8 decimal places"
    assert errors["not json"].startswith("invalid JSON")
    assert errors["not utf-8"] == "line is not UTF-8 text (byte 12)"
    assert errors["empty"] == "empty line: expected a JSON object"
    assert "longer than the limit" in errors["huge"]
    help_text = " ".join(run("quote", "--help").stdout.split())
    assert "at most 12 digits before the point" in help_text
    assert "nested at most 20 levels" in help_text
