"""`prepaid-dlms`: talk to one meter from the command line.

Each sub-command prints one JSON object on standard output, and nothing
else, whatever the meter sends; errors print {"error": ..., "kind": ...}.

Exit status: 0 done; 2 the meter refused or failed (kind: timeout,
connection, authentication, refused, access_denied, service, malformed);
3 cut off at the deadline (kind "deadline": the meter answers too slowly or
keeps sending); 4 cut off because the meter sent more than any reply may
hold (kind "oversize", a flood); 64 usage error (kind "usage"); 70 a bug
(kind "internal", traceback on standard error).

Secrets (LLS password / HLS secret, block cipher key, authentication key)
come from --password-file / --block-cipher-key-file / --auth-key-file (the
first line of the file; keep it chmod 600), from the environment variables
PREPAID_DLMS_PASSWORD / PREPAID_DLMS_BLOCK_CIPHER_KEY / PREPAID_DLMS_AUTH_KEY,
or from --password / --block-cipher-key / --auth-key; an option wins over
the environment.  A value on the command line is visible to every local
user (ps, /proc): it works, with a warning.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import stat
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import axdr
from . import operations as ops
from .counters import JsonFileCounterStore
from .errors import DeadlineExceeded, DlmsError, ReplyTooLarge
from .session import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, ConnectionSettings, DlmsSession

EXIT_DLMS_ERROR = 2
EXIT_DEADLINE = 3
EXIT_OVERSIZE = 4
EXIT_USAGE = 64
EXIT_INTERNAL = 70

#: secret -> (option, file option, environment variable, hexadecimal?)
SECRETS = {
    "password": ("--password", "--password-file", "PREPAID_DLMS_PASSWORD", False),
    "block_cipher_key": (
        "--block-cipher-key",
        "--block-cipher-key-file",
        "PREPAID_DLMS_BLOCK_CIPHER_KEY",
        True,
    ),
    "auth_key": ("--auth-key", "--auth-key-file", "PREPAID_DLMS_AUTH_KEY", True),
}
#: A secret file is one short line; anything bigger is the wrong file.
MAX_SECRET_FILE = 4096


class UsageError(ValueError):
    """Bad arguments found after parsing (secrets, files)."""


def _hex(value: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hexadecimal: {value!r}") from None


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= 86400:  # also refuses NaN and infinity
        raise argparse.ArgumentTypeError(
            f"not a number of seconds between 0 and 86400: {value!r}"
        )
    return seconds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prepaid-dlms",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4059)
    p.add_argument("--framing", choices=["wrapper", "hdlc"], default="wrapper")
    p.add_argument(
        "--client-address",
        type=int,
        default=None,
        help="client SAP (default: 16 none, 32 LLS, 1 HLS)",
    )
    p.add_argument("--server-address", type=int, default=1)
    p.add_argument(
        "--auth", choices=["none", "lls", "hls-md5", "hls-gmac"], default="none"
    )
    p.add_argument(
        "--password",
        help="LLS password or HLS-MD5 secret (visible to other users: "
        "prefer --password-file or PREPAID_DLMS_PASSWORD)",
    )
    p.add_argument("--password-file", help="file whose first line is the password")
    p.add_argument(
        "--system-title",
        type=_hex,
        default=None,
        help="client system title (hex, 8 bytes)",
    )
    p.add_argument(
        "--block-cipher-key",
        help="hex, 16 bytes (prefer --block-cipher-key-file or "
        "PREPAID_DLMS_BLOCK_CIPHER_KEY)",
    )
    p.add_argument("--block-cipher-key-file", help="file holding the key in hex")
    p.add_argument(
        "--auth-key",
        help="hex, 16 bytes (prefer --auth-key-file or PREPAID_DLMS_AUTH_KEY)",
    )
    p.add_argument("--auth-key-file", help="file holding the key in hex")
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        help="longest silence of the meter within one round trip "
        f"(default {DEFAULT_TIMEOUT:g} s)",
    )
    p.add_argument(
        "--deadline",
        type=_seconds,
        default=DEFAULT_DEADLINE,
        help="longest the whole command may take, connection to release, "
        f"whatever the meter sends (default {DEFAULT_DEADLINE:g} s)",
    )
    p.add_argument(
        "--counter-file",
        default=None,
        help="JSON file keeping the client invocation counters "
        "(HLS-GMAC); default $PREPAID_DLMS_COUNTERS or "
        "~/.local/state/prepaid-dlms/invocation-counters.json",
    )
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("read", help="GET one attribute")
    r.add_argument("obis")
    r.add_argument("--class", dest="class_id", type=int, required=True)
    r.add_argument("--attr", type=int, required=True)

    c = sub.add_parser("clock", help="read or set the meter clock (UTC)")
    c.add_argument("action", choices=["get", "set"])
    c.add_argument("time", nargs="?", help="ISO 8601 (default now, UTC)")

    rl = sub.add_parser("relay", help="disconnect control")
    rl.add_argument("action", choices=["status", "disconnect", "reconnect"])

    pr = sub.add_parser("profile", help="profile rows by range")
    pr.add_argument("obis")
    pr.add_argument("--from", dest="start", required=True)
    pr.add_argument("--to", dest="end", required=True)

    t = sub.add_parser("token", help="enter an STS token (class 115)")
    t.add_argument("token")
    return p  # fmt: skip


def _read_secret_file(path: str, option: str) -> str:
    """First line of a secret file; warn when other users may read it."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UsageError(f"{option}: {path} is not a regular file")
            data = handle.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_SECRET_FILE:
        raise UsageError(f"{option}: {path} is too big for a secret file")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        _warn(f"{option}: {path} can be read by other users (chmod 600 it)")
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"{option}: {path} is not UTF-8 text") from None
    if not lines or not lines[0]:
        raise UsageError(f"{option}: the first line of {path} is empty")
    return lines[0]


def _warn(message: str) -> None:
    print(f"prepaid-dlms: warning: {message}", file=sys.stderr)


def secrets_from_args(
    args: argparse.Namespace, environ: dict[str, str] | None = None
) -> dict[str, str | bytes]:
    """The secrets given, from a file, the environment or the command line."""
    environ = dict(os.environ if environ is None else environ)
    found: dict[str, str | bytes] = {}
    for name, (option, file_option, variable, is_hex) in SECRETS.items():
        attr = option[2:].replace("-", "_")
        value = getattr(args, attr)
        path = getattr(args, attr + "_file")
        if value is not None and path is not None:
            raise UsageError(f"give {option} or {file_option}, not both")
        if path is not None:
            value = _read_secret_file(path, file_option)
        elif value is not None:
            _warn(
                f"{option} on the command line can be seen by other local "
                f"users; use {file_option} or {variable}"
            )
        else:
            value = environ.get(variable) or None
        if value is None:
            continue
        if is_hex:
            try:
                found[name] = bytes.fromhex(value.strip())
            except ValueError:
                raise UsageError(f"{option}: not hexadecimal") from None
        else:
            found[name] = value
    return found


def settings_from_args(args: argparse.Namespace) -> ConnectionSettings:
    default_sap = {"none": 16, "lls": 32, "hls-md5": 1, "hls-gmac": 1}[args.auth]
    secrets = secrets_from_args(args)
    kwargs: dict[str, Any] = dict(
        host=args.host,
        port=args.port,
        framing=args.framing,
        client_address=(
            args.client_address if args.client_address is not None else default_sap
        ),
        server_address=args.server_address,
        auth=args.auth,
        password=secrets.get("password"),
        timeout=args.timeout,
        deadline=args.deadline,
    )
    if args.system_title is not None:
        kwargs["system_title"] = args.system_title
    if "block_cipher_key" in secrets:
        kwargs["block_cipher_key"] = secrets["block_cipher_key"]
    if "auth_key" in secrets:
        kwargs["authentication_key"] = secrets["auth_key"]
    return ConnectionSettings(**kwargs)


def counter_store(args: argparse.Namespace) -> JsonFileCounterStore:
    """Every run is a new process, so the counters must live in a file: a
    meter refuses a counter it has already seen (and GCM forbids reuse)."""
    path = args.counter_file or os.environ.get("PREPAID_DLMS_COUNTERS")
    if not path:
        path = Path.home() / ".local/state/prepaid-dlms/invocation-counters.json"
    return JsonFileCounterStore(path)


async def run_command(args: argparse.Namespace) -> dict[str, Any]:
    settings = settings_from_args(args)
    store = counter_store(args) if settings.ciphered else None
    try:
        async with asyncio.timeout(args.deadline):
            return await _talk(args, settings, store)
    except TimeoutError:
        raise DeadlineExceeded(
            f"command not finished within its {args.deadline:g} s deadline: cut off",
            scope="job",
        ) from None


async def _talk(
    args: argparse.Namespace,
    settings: ConnectionSettings,
    store: JsonFileCounterStore | None,
) -> dict[str, Any]:
    async with DlmsSession(settings, counter_store=store) as s:
        if args.command == "read":
            value = await s.get(args.obis, args.class_id, args.attr)
            if args.class_id == ops.CLASS_CLOCK and args.attr == 2:
                value = ops._datetime(value)
            return {
                "obis": args.obis,
                "class": args.class_id,
                "attr": args.attr,
                "value": ops.jsonable(value),
            }
        if args.command == "clock":
            if args.action == "get":
                when = await ops.read_clock(s)
            else:
                target = axdr.parse_iso(args.time) if args.time else None
                when = await ops.set_clock(s, target)
            return {"time": ops.jsonable(when)}
        if args.command == "relay":
            fn = {
                "status": ops.relay_status,
                "disconnect": ops.disconnect,
                "reconnect": ops.reconnect,
            }[args.action]
            state = await fn(s)
            return {
                "output_state": state.output_state,
                "control_state": state.control_state,
            }
        if args.command == "profile":
            cols, rows = await ops.read_profile(
                s, args.obis, axdr.parse_iso(args.start), axdr.parse_iso(args.end)
            )
            return {"columns": cols, "rows": ops.jsonable(rows)}
        if args.command == "token":
            st = await ops.enter_token(s, args.token)
            return {"status": st.status, "name": st.name, "data": st.data}
    raise AssertionError(f"unhandled command {args.command}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    output = sys.stdout
    # Standard output carries the one JSON answer: anything else a library
    # might print while parsing what the meter sent goes to standard error.
    with contextlib.redirect_stdout(sys.stderr):
        status, answer = _run(args)
    print(json.dumps(answer), file=output)
    return status


def _run(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    try:
        return 0, asyncio.run(run_command(args))
    except DlmsError as exc:
        status = EXIT_DLMS_ERROR
        if isinstance(exc, DeadlineExceeded):
            status = EXIT_DEADLINE
        elif isinstance(exc, ReplyTooLarge):
            status = EXIT_OVERSIZE
        return status, {"error": str(exc), "kind": exc.kind}
    except (ValueError, OSError) as exc:  # bad OBIS/ISO/key, counter file
        return EXIT_USAGE, {"error": str(exc), "kind": "usage"}
    except Exception as exc:  # a bug: still one JSON answer
        traceback.print_exc(file=sys.stderr)
        return EXIT_INTERNAL, {"error": f"internal error: {exc!r}", "kind": "internal"}


if __name__ == "__main__":
    sys.exit(main())
