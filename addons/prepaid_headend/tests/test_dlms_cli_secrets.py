"""`prepaid-dlms` takes secrets from files and the environment, and warns
when they are given on the command line (visible to every local user)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from unittest import mock

import pytest
from trytond.modules.prepaid_headend.dlms.cli import main

from simulators.meter import MeterConfig, MeterSimulator
from simulators.meter.model import DEFAULT_AK, DEFAULT_EK

WARNING = "can be seen by other local users"


@pytest.fixture(scope="module")
def meter_port():
    with MeterSimulator([MeterConfig(index=0, port=0, seed=7)]) as sim:
        yield sim.port(0)


def cli(port: int, *args: str, env: dict[str, str] | None = None):
    """Run prepaid-dlms in this process: (exit status, JSON answer, stderr)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PREPAID_DLMS_")}
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, {**environ, **(env or {})}, clear=True),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        rc = main(["--port", str(port), *args])
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, out.getvalue()
    return rc, json.loads(lines[0]), err.getvalue()


def secret_file(tmp_path, name: str, text: str, mode: int = 0o600):
    path = tmp_path / name
    path.write_text(text + "\n")
    path.chmod(mode)
    return str(path)


def test_password_from_a_file(meter_port, tmp_path):
    path = secret_file(tmp_path, "lls", "12345678")
    rc, out, err = cli(
        meter_port, "--auth", "lls", "--password-file", path, "clock", "get"
    )
    assert rc == 0 and "time" in out
    assert err == ""


def test_wrong_password_from_a_file_is_used(meter_port, tmp_path):
    path = secret_file(tmp_path, "lls", "not-this")
    rc, out, _ = cli(
        meter_port, "--auth", "lls", "--password-file", path, "relay", "status"
    )
    assert rc == 2 and out["kind"] == "authentication"


def test_password_from_the_environment(meter_port):
    rc, out, err = cli(
        meter_port, "--auth", "lls", "clock", "get",
        env={"PREPAID_DLMS_PASSWORD": "12345678"},
    )  # fmt: skip
    assert rc == 0 and err == ""


def test_password_on_the_command_line_works_with_a_warning(meter_port):
    rc, out, err = cli(
        meter_port, "--auth", "lls", "--password", "12345678", "clock", "get"
    )
    assert rc == 0 and "time" in out
    assert "--password" in err and WARNING in err
    assert "12345678" not in err


def test_option_wins_over_the_environment(meter_port, tmp_path):
    path = secret_file(tmp_path, "lls", "12345678")
    rc, _, _ = cli(
        meter_port, "--auth", "lls", "--password-file", path, "clock", "get",
        env={"PREPAID_DLMS_PASSWORD": "wrong"},
    )  # fmt: skip
    assert rc == 0


def test_gmac_keys_from_files_and_environment(meter_port, tmp_path):
    key_file = secret_file(tmp_path, "ek", DEFAULT_EK.hex())
    counters = str(tmp_path / "counters.json")
    rc, out, err = cli(
        meter_port, "--auth", "hls-gmac", "--system-title", "5050534354533031",
        "--block-cipher-key-file", key_file, "--counter-file", counters,
        "relay", "status",
        env={"PREPAID_DLMS_AUTH_KEY": DEFAULT_AK.hex()},
    )  # fmt: skip
    assert rc == 0 and "output_state" in out, out
    assert err == ""


def test_readable_secret_file_warns(meter_port, tmp_path):
    path = secret_file(tmp_path, "lls", "12345678", mode=0o644)
    rc, _, err = cli(
        meter_port, "--auth", "lls", "--password-file", path, "clock", "get"
    )
    assert rc == 0 and "chmod 600" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--password", "x", "--password-file", "{file}"],
        ["--password-file", "{missing}"],
        ["--password-file", "{dir}"],
        ["--block-cipher-key-file", "{file}"],  # not hexadecimal
        ["--password-file", "{empty}"],
    ],
)
def test_bad_secret_options_are_usage_errors(meter_port, tmp_path, args):
    names = {
        "file": secret_file(tmp_path, "p", "Zq9-value"),
        "missing": str(tmp_path / "missing"),
        "dir": str(tmp_path),
        "empty": secret_file(tmp_path, "e", ""),
    }
    args = [a.format(**names) for a in args]
    rc, out, _ = cli(meter_port, "--auth", "lls", *args, "clock", "get")
    assert rc == 64 and out["kind"] == "usage", out
    assert "Zq9" not in out["error"]  # the value never echoed
