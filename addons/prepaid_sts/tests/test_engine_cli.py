"""The ``prepaid-sts`` command, including the fixed ``batch`` JSON-lines contract."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from pathlib import Path

import pytest
from trytond.modules.prepaid_sts.engine import cli, decode_token

ROOT = Path(__file__).resolve().parents[3]
MODULE = "trytond.modules.prepaid_sts.engine.cli"
KEY = "87f3ecbb2e46b48f"
KEY_INPUTS = {
    "vending_key": "abababababababab949494949494949401234567",
    "dkga": "04",
    "pan": "600727000000000009",
    "key_type": 2,
    "sgc": "201457",
    "tariff_index": "01",
    "krn": 1,
    "base_date": "14",
}


def run_batch(lines: list[str]) -> tuple[list[dict], subprocess.CompletedProcess]:
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, "batch"],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return [json.loads(x) for x in proc.stdout.splitlines()], proc


def test_batch_contract():
    lines = [
        # STS 531-1-07 CTSA01 step 1 with a known decoder key and a raw value.
        json.dumps({"op": "token", "token_class": 0, "subclass": 0,
                    "decoder_key": KEY, "tid": 85740, "rnd": 5, "value16": "0001"}),
        # The same from the key inputs, issue time and amount.
        json.dumps({"op": "token", "token_class": 0, "subclass": 0, "ea": "07",
                    "issued_at": "2014-03-01T13:00:00Z", "rnd": 5, "amount": "0.1",
                    **KEY_INPUTS}),
        # An error in the middle: amount too large.
        json.dumps({"op": "token", "token_class": 0, "subclass": 0,
                    "decoder_key": KEY, "tid": 1, "amount": "99999999"}),
        "{not json",
        "[1, 2]",
        json.dumps({"op": "launch"}),
        json.dumps({"op": "decode", "token": "70630503470028726114",
                    "decoder_key": KEY}),
        json.dumps({"op": "decode", "token": "56493153725450313471"}),
        json.dumps({"op": "key_change", "ea": "07", "old_decoder_key": KEY,
                    "new_decoder_key": "7f78cdd220be39b8", "new_krn": 1,
                    "new_key_type": 2, "new_tariff_index": "02",
                    "new_sgc": "201457", "ken": 255, "rollover": False,
                    "sections": 3}),
        json.dumps({"op": "token", "token_class": 1, "subclass": 0,
                    "control": "fffffffff", "mfr_code": 0}),
        json.dumps({"op": "token", "token_class": 0, "subclass": 0,
                    "issued_at": "2024-11-25T00:00:00Z", "decoder_key": KEY,
                    "base_date": "93", "amount": "1"}),
        json.dumps({"op": "token", "token_class": 0, "subclass": 0,
                    "ea": "11", "tid": 1, "amount": "1", **KEY_INPUTS}),
        json.dumps({"op": "token", "token_class": 0, "subclass": 0,
                    "decoder_key": KEY, "amount": "1"}),
    ]  # fmt: skip
    out, proc = run_batch(lines)
    assert proc.returncode == 0, proc.stderr
    assert len(out) == len(lines)
    assert out[0] == {"token": "70630503470028726114", "tid": 85740}
    assert out[1] == {
        "token": "70630503470028726114",
        "decoder_key": KEY,
        "tid": 85740,
    }
    assert "too large" in out[2]["error"]
    assert out[3]["error"].startswith("invalid JSON")
    assert out[4] == {"error": "each line must be a JSON object"}
    assert "unknown op 'launch'" in out[5]["error"]
    assert out[6]["token_class"] == 0 and out[6]["crc_ok"] is True
    assert (out[6]["tid"], out[6]["value16"], out[6]["amount"]) == (
        85740,
        "0001",
        "0.1",
    )
    assert out[7]["token_class"] == 1 and out[7]["crc_ok"] is True
    assert out[8] == {
        "tokens": [
            "52506022850399603630",
            "22979178279997208272",
            "39620459059615037790",
        ]
    }
    assert out[9]["token"] == "56493153725450313471"
    assert "newer base date" in out[10]["error"]
    assert len(out[11]["decoder_key"]) == 32  # EA11 derives a 128-bit key
    derived = bytes.fromhex(out[11]["decoder_key"])
    assert decode_token(out[11]["token"], derived, "11").crc_ok
    assert "give 'tid' or 'issued_at'" in out[12]["error"]


def test_batch_survives_hostile_lines():
    """Each bad line gets its own error line and the next line is answered,
    for the lines that stopped the batch before (issue 11 section 8)."""
    good = json.dumps({"op": "token", "token_class": 0, "subclass": 0,
                       "decoder_key": KEY, "tid": 85740, "rnd": 5,
                       "value16": "0001"}).encode()  # fmt: skip
    token = {"op": "token", "token_class": 0, "subclass": 0, "tid": 1}

    def amount(text: str) -> bytes:
        return json.dumps({**token, "decoder_key": KEY, "amount": text}).encode()

    bad = {
        "nested": b"[" * 5000 + b"]" * 5000,
        "integer": b'{"op": "token", "tid": ' + b"9" * 5000 + b"}",
        "exponent": amount("1e30"),
        "underscore": amount("1_000"),
        "arabic digits": amount("\u0661\u0660"),
        "not json": b"{not json",
        "not utf-8": b'{"op": "\xff\xfe"}',
        "empty": b"",
        "huge": b'{"op": "' + b"x" * (3 << 20) + b'"}',
        "dkga": json.dumps({**token, **KEY_INPUTS, "dkga": "99"}).encode(),
        "arabic tid": json.dumps(
            {**token, "decoder_key": KEY, "amount": "1", "tid": "\u0661\u0660"}
        ).encode(),
    }
    stdin = b"".join(line + b"\n" + good + b"\n" for line in bad.values())
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, "batch"],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 2 * len(bad)
    errors = dict(zip(bad, out[0::2]))
    assert all(answer == {"token": "70630503470028726114", "tid": 85740}
               for answer in out[1::2])  # fmt: skip
    assert errors["nested"] == {"error": "JSON nested more than 20 levels deep"}
    assert "numbers longer than 20 characters" in errors["integer"]["error"]
    for name in ("exponent", "underscore", "arabic digits"):
        message = errors[name]["error"]
        assert "is not a number: write it with the digits 0-9" in message, name
    assert errors["not json"]["error"].startswith("invalid JSON")
    assert errors["not utf-8"] == {"error": "line is not UTF-8 text (byte 8)"}
    assert errors["empty"] == {"error": "empty line: expected a JSON object"}
    assert "longer than the limit of 1048576 bytes" in errors["huge"]["error"]
    assert errors["arabic tid"]["error"].startswith(
        "field 'tid' must be an integer, got '\u0661\u0660'"
    )
    dkga = errors["dkga"]["error"]
    assert "unknown decoder key generation algorithm DKGA '99'" in dkga
    # The help states the limits.
    help_text = subprocess.run(
        [sys.executable, "-m", MODULE, "batch", "--help"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout  # fmt: skip
    assert "1024 KiB" in " ".join(help_text.split())


def test_batch_streams_line_by_line():
    """A driver can write one line and read its answer before sending more."""
    proc = subprocess.Popen(
        [sys.executable, "-m", MODULE, "batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        for tid in (1, 2):
            req = {"op": "token", "token_class": 0, "subclass": 0,
                   "decoder_key": KEY, "tid": tid, "amount": "5"}  # fmt: skip
            proc.stdin.write(json.dumps(req) + "\n")
            proc.stdin.flush()
            # Guard against a hang only; no timing is asserted.
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, "no answer to a single line"
            assert json.loads(proc.stdout.readline())["tid"] == tid
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0


def test_batch_last_line_without_newline(tmp_path):
    req = {"op": "decode", "token": "56493153725450313471"}
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, "batch"],
        input=json.dumps(req),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["crc_ok"] is True


def test_token_subcommand(capsys):
    argv = ["token", "--class", "0", "--subclass", "0", "--decoder-key", KEY,
            "--tid", "85740", "--rnd", "5", "--amount", "0.1"]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "7063 0503 4700 2872 6114"


def test_decode_subcommand(capsys):
    argv = ["decode", "7063 0503 4700 2872 6114", "--decoder-key", KEY]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "crc_ok: True" in out and "amount: 0.1" in out


def test_keychange_subcommand(capsys):
    argv = ["keychange", "--old-decoder-key", KEY, "--new-decoder-key",
            "7f78cdd220be39b8", "--new-krn", "1", "--new-tariff-index", "02",
            "--new-sgc", "201457"]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["1: 0651 0894 1414 5301 8386", "2: 2297 9178 2799 9720 8272"]


def test_subcommand_error(capsys):
    argv = ["token", "--class", "0", "--subclass", "0", "--decoder-key", "abcd",
            "--tid", "1", "--amount", "1"]  # fmt: skip
    assert cli.main(argv) == 1
    assert "64-bit decoder key" in capsys.readouterr().err


@pytest.mark.parametrize("field, value", [("decoder_key", "zz"), ("value16", "12")])
def test_batch_bad_fields_in_process(field, value):
    batch = cli._Batch(None)
    req = {"op": "token", "token_class": 0, "subclass": 0, "decoder_key": KEY,
           "tid": 1, "value16": "0001", field: value}  # fmt: skip
    assert "error" in json.loads(batch.line(json.dumps(req).encode()))


def test_batch_tables_option():
    """--tables selects the EA07 tables (here the IEC sample tables)."""
    from trytond.modules.prepaid_sts.engine.sta import SAMPLE_TABLES

    req = {"op": "token", "token_class": 0, "subclass": 0,
           "decoder_key": "0abc12def3456789", "tid": 0x19EB23, "rnd": 11,
           "value16": "0100"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, "--tables", str(SAMPLE_TABLES), "batch"],
        input=json.dumps(req) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    # sta_sample_tables vector of sts_vectors.json.
    assert json.loads(proc.stdout)["token"] == "51043465443420856213"
