"""`prepaid-dlms`: talk to one meter from the command line.

Each sub-command prints one JSON object; errors print
{"error": ..., "kind": ...} and exit with status 2 (usage errors: 64).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import axdr
from . import operations as ops
from .counters import JsonFileCounterStore
from .errors import DlmsError
from .session import ConnectionSettings, DlmsSession

EXIT_DLMS_ERROR = 2
EXIT_USAGE = 64


def _hex(value: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hexadecimal: {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prepaid-dlms", description=__doc__)
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
    p.add_argument("--password", help="LLS password or HLS-MD5 secret")
    p.add_argument(
        "--system-title",
        type=_hex,
        default=None,
        help="client system title (hex, 8 bytes)",
    )
    p.add_argument("--block-cipher-key", type=_hex, default=None)
    p.add_argument("--auth-key", type=_hex, default=None)
    p.add_argument("--timeout", type=float, default=10.0)
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


def settings_from_args(args: argparse.Namespace) -> ConnectionSettings:
    default_sap = {"none": 16, "lls": 32, "hls-md5": 1, "hls-gmac": 1}[args.auth]
    kwargs: dict[str, Any] = dict(
        host=args.host,
        port=args.port,
        framing=args.framing,
        client_address=(
            args.client_address if args.client_address is not None else default_sap
        ),
        server_address=args.server_address,
        auth=args.auth,
        password=args.password,
        timeout=args.timeout,
    )
    if args.system_title is not None:
        kwargs["system_title"] = args.system_title
    if args.block_cipher_key is not None:
        kwargs["block_cipher_key"] = args.block_cipher_key
    if args.auth_key is not None:
        kwargs["authentication_key"] = args.auth_key
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
    try:
        result = asyncio.run(run_command(args))
    except DlmsError as exc:
        print(json.dumps({"error": str(exc), "kind": exc.kind}))
        return EXIT_DLMS_ERROR
    except (ValueError, OSError) as exc:  # bad OBIS/ISO/key, counter file
        print(json.dumps({"error": str(exc), "kind": "usage"}))
        return EXIT_USAGE
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
