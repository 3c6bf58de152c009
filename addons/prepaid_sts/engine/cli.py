"""``prepaid-sts``: STS token command for staff, field engineers and tools.

Sub-commands: ``token`` (generate), ``decode`` (verify a customer's token),
``keychange`` (key change token set) and ``batch`` (JSON lines, the fixed
contract used by other tools):

* one JSON object per input line, exactly one JSON object per output line, in
  order; a failing line (bad JSON, a limit exceeded, an empty line, a bad
  field) gives ``{"error": "<reason>"}`` and processing goes on; exit status 0
  unless standard input cannot be read;
* ``{"op": "token", ...}`` -> ``{"token", "decoder_key" (when derived), "tid"}``;
* ``{"op": "key_change", ...}`` -> ``{"tokens": [...]}`` in entry order;
* ``{"op": "decode", "token": ..., ...}`` -> ``{"token_class", "subclass",
  "tid", "value16", "amount", "crc_ok", ...}``.

The line loop and its limits (line size, nesting, number length) are the ones
of ``prepaid-tariff quote`` (``prepaid_vending.inputs.jsonlines``, pure Python
like this engine); amounts are read by the same function as every other
entry point (``prepaid_vending.inputs.numbers``).  The answers to the lines of
each read are written with one write and a flush, so a driver may stream lines
or talk line by line.
"""

from __future__ import annotations

import json
import re
import sys
from typing import TYPE_CHECKING

from trytond.modules.prepaid_vending.inputs import jsonlines
from trytond.modules.prepaid_vending.inputs.numbers import (
    NumberError,
    parse_decimal,
    shown,
)

from .errors import AmountError, ParameterError, StsError
from .keys import derive_decoder_key
from .tid import parse_issued_at, tid_from_datetime

if TYPE_CHECKING:
    from typing import IO, Any

from .tokens import (
    build_token,
    class1_token,
    decode,
    get_cipher,
    key_change_blocks,
    render,
)

_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")


def _integer(text: str) -> int:
    "An option's integer: ASCII digits only, as in the batch lines"
    if not _INTEGER.fullmatch(text):
        import argparse

        raise argparse.ArgumentTypeError(f"{shown(repr(text))} is not an integer")
    return int(text)


class _Batch:
    """State of one batch run: option values and per-run caches."""

    def __init__(self, tables: str | None):
        self.tables = tables
        # (ea, key hex) -> (cipher); avoids hex parsing and validation per line.
        self.ciphers: dict[tuple[str, str], Any] = {}

    # -- field helpers -------------------------------------------------------

    @staticmethod
    def _int(req: dict[str, Any], name: str, default: Any = ...) -> int:
        value = req.get(name, default)
        if value is ...:
            raise ParameterError(f"missing field {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ParameterError(
                f"field {name!r} must be an integer, got {shown(repr(value))}"
            )
        if isinstance(value, str):
            # ASCII digits only: int() would also read "1_000" and "١٠".
            if not _INTEGER.fullmatch(value):
                raise ParameterError(
                    f"field {name!r} must be an integer, got {shown(repr(value))}"
                )
            value = int(value, 10)
        return value

    @staticmethod
    def _str(req: dict[str, Any], name: str, default: Any = ...) -> str:
        value = req.get(name, default)
        if value is ...:
            raise ParameterError(f"missing field {name!r}")
        if isinstance(value, int) and not isinstance(value, bool):
            # Tolerate e.g. "krn"-like digits sent as numbers? No: codes with
            # leading zeros (SGC, TI, base date) must be strings.
            raise ParameterError(
                f"field {name!r} must be a string, got {shown(repr(value))}"
            )
        if not isinstance(value, str):
            raise ParameterError(
                f"field {name!r} must be a string, got {shown(repr(value))}"
            )
        return value

    @staticmethod
    def _hex(req: dict[str, Any], name: str) -> bytes:
        value = req.get(name)
        if not isinstance(value, str):
            raise ParameterError(f"missing or non-string hex field {name!r}")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ParameterError(f"field {name!r} is not a hex string") from None

    def _cipher(self, ea: str, key_hex: str) -> Any:
        cipher = self.ciphers.get((ea, key_hex))
        if cipher is None:
            try:
                key = bytes.fromhex(key_hex)
            except (ValueError, TypeError):
                raise ParameterError("decoder key is not a hex string") from None
            cipher = get_cipher(ea, key, self.tables)
            if len(self.ciphers) > 4096:
                self.ciphers.clear()
            self.ciphers[(ea, key_hex)] = cipher
        return cipher

    def _key(self, req: dict[str, Any], ea: str) -> tuple[str, bool]:
        """Return (decoder key hex, derived?) from decoder_key or key inputs."""
        key_hex = req.get("decoder_key")
        if key_hex is not None:
            if not isinstance(key_hex, str):
                raise ParameterError("field 'decoder_key' must be a hex string")
            return key_hex.lower(), False
        if "vending_key" not in req:
            raise ParameterError(
                "give 'decoder_key' or the key inputs 'vending_key', 'dkga', 'pan', "
                "'key_type', 'sgc', 'tariff_index', 'krn', 'base_date'"
            )
        key = derive_decoder_key(
            self._hex(req, "vending_key"),
            self._str(req, "dkga"),
            self._str(req, "pan"),
            self._int(req, "key_type"),
            self._str(req, "sgc"),
            self._str(req, "tariff_index"),
            self._int(req, "krn"),
            self._str(req, "base_date"),
            ea,
        )
        return key.hex(), True

    # -- operations ----------------------------------------------------------

    def op_token(self, req: dict[str, Any]) -> str:
        token_class = self._int(req, "token_class")
        subclass = self._int(req, "subclass")
        if token_class == 1:
            control = self._str(req, "control")
            try:
                control_value = int(control, 16)
            except ValueError:
                raise ParameterError("field 'control' must be a hex string") from None
            token = class1_token(subclass, control_value, self._int(req, "mfr_code"))
            return f'{{"token": "{token}", "tid": null}}'
        ea = req.get("ea", "07")
        key_hex, derived = self._key(req, ea)
        cipher = self._cipher(ea, key_hex)
        tid = req.get("tid")
        if tid is None:
            issued_at = req.get("issued_at")
            if issued_at is None:
                raise ParameterError("give 'tid' or 'issued_at' (with 'base_date')")
            tid = tid_from_datetime(
                parse_issued_at(issued_at), self._str(req, "base_date")
            )
        elif not isinstance(tid, int) or isinstance(tid, bool):
            tid = self._int(req, "tid")
        amount = req.get("amount")
        value16 = req.get("value16")
        if value16 is not None:
            if not isinstance(value16, str) or len(value16) != 4:
                raise ParameterError("field 'value16' must be 4 hex digits")
            try:
                value16 = int(value16, 16)
            except ValueError:
                raise ParameterError("field 'value16' must be 4 hex digits") from None
        if amount is not None:
            try:
                amount = parse_decimal(amount)
            except NumberError as exc:
                raise AmountError(f"field 'amount': {exc}") from None
        rnd = self._int(req, "rnd", 0)
        token = build_token(cipher, token_class, subclass, tid, value16, amount, rnd)
        if derived:
            return f'{{"token": "{token}", "decoder_key": "{key_hex}", "tid": {tid}}}'
        return f'{{"token": "{token}", "tid": {tid}}}'

    def op_key_change(self, req: dict[str, Any]) -> str:
        ea = req.get("ea", "07")
        cipher = self._cipher(ea, self._str(req, "old_decoder_key").lower())
        rollover = req.get("rollover", False)
        if not isinstance(rollover, bool):
            raise ParameterError("field 'rollover' must be true or false")
        sections = req.get("sections")
        if sections is not None:
            sections = self._int(req, "sections")
        blocks = key_change_blocks(
            self._hex(req, "new_decoder_key"),
            self._int(req, "new_krn"),
            self._int(req, "new_key_type"),
            self._str(req, "new_tariff_index"),
            self._str(req, "new_sgc"),
            self._int(req, "ken", 255),
            rollover,
            sections,
        )
        tokens = [render(2, cipher.encrypt(b)) for b in blocks]
        return json.dumps({"tokens": tokens})

    def op_decode(self, req: dict[str, Any]) -> str:
        token = self._str(req, "token")
        ea = req.get("ea", "07")
        key = None
        if not (req.get("decoder_key") is None and "vending_key" not in req):
            try:
                key = bytes.fromhex(self._key(req, ea)[0])
            except ValueError:
                raise ParameterError("decoder key is not a hex string") from None
        return json.dumps(decode(token, key, ea, self.tables).to_dict())

    def line(self, raw: bytes | jsonlines.TooLong) -> str:
        try:
            req = jsonlines.parse_line(raw)
        except jsonlines.LineError as exc:
            return jsonlines.error_line(str(exc))
        op = req.get("op")
        try:
            if op == "token":
                return self.op_token(req)
            if op == "key_change":
                return self.op_key_change(req)
            if op == "decode":
                return self.op_decode(req)
            return jsonlines.error_line(
                f"unknown op {shown(repr(op))}: use 'token', 'key_change' or 'decode'"
            )
        except StsError as exc:
            return jsonlines.error_line(str(exc))


def run_batch(stdin: IO[bytes], stdout: IO[str], tables: str | None = None) -> int:
    """Process JSON lines from ``stdin`` (binary) to ``stdout`` (text)."""
    batch = _Batch(tables)
    try:
        jsonlines.run(stdin, stdout, batch.line)
    except OSError as exc:
        print(f"prepaid-sts batch: cannot read standard input: {exc}", file=sys.stderr)
        return 2
    return 0


# -- interactive sub-commands -------------------------------------------------


def _add_key_options(p: Any) -> None:
    p.add_argument("--ea", default="07", choices=("07", "11"))
    p.add_argument("--decoder-key", help="decoder key (hex)")
    p.add_argument("--vending-key", help="vending key (hex) to derive the key")
    p.add_argument("--dkga", choices=("02", "04"))
    p.add_argument("--pan", help="meter PAN (18 digits)")
    p.add_argument("--key-type", type=_integer)
    p.add_argument("--sgc", help="supply group code (6 digits)")
    p.add_argument("--tariff-index", help="tariff index (2 digits)")
    p.add_argument("--krn", type=_integer)
    p.add_argument("--base-date", choices=("93", "14", "35"))


def _key_fields(args: Any) -> dict[str, Any]:
    fields = {"ea": args.ea}
    names = (
        "decoder_key",
        "vending_key",
        "dkga",
        "pan",
        "key_type",
        "sgc",
        "tariff_index",
        "krn",
        "base_date",
    )
    for name in names:
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    return fields


def _parser() -> Any:
    import argparse

    parser = argparse.ArgumentParser(
        prog="prepaid-sts", description="STS (IEC 62055-41) token tool"
    )
    parser.add_argument(
        "--tables",
        help="EA07 tables JSON file (default: $PREPAID_STS_TABLES or shipped)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    tok = sub.add_parser("token", help="generate a token")
    tok.add_argument("--class", dest="token_class", type=_integer, required=True)
    tok.add_argument("--subclass", type=_integer, required=True)
    _add_key_options(tok)
    tok.add_argument("--tid", type=_integer, help="TID in minutes since the base date")
    tok.add_argument("--issued-at", help="ISO 8601 UTC time, e.g. 2024-03-28T09:01Z")
    tok.add_argument("--rnd", type=_integer, default=0)
    tok.add_argument("--amount", help="kWh/m3/minutes, currency units or watts")
    tok.add_argument("--value16", help="raw 16-bit value (4 hex digits)")
    tok.add_argument("--control", help="class 1 control field (hex)")
    tok.add_argument("--mfr-code", type=_integer, help="class 1 manufacturer code")

    dec = sub.add_parser("decode", help="decode and verify a token")
    dec.add_argument("token")
    _add_key_options(dec)

    kc = sub.add_parser("keychange", help="generate a key change token set")
    kc.add_argument("--ea", default="07", choices=("07", "11"))
    kc.add_argument("--old-decoder-key", required=True)
    kc.add_argument("--new-decoder-key", required=True)
    kc.add_argument("--new-krn", type=_integer, required=True)
    kc.add_argument("--new-key-type", type=_integer, default=2)
    kc.add_argument("--new-tariff-index", required=True)
    kc.add_argument("--new-sgc", required=True)
    kc.add_argument("--ken", type=_integer, default=255)
    kc.add_argument("--rollover", action="store_true")
    kc.add_argument("--sections", type=_integer, choices=(2, 3, 4))

    sub.add_parser(
        "batch",
        help="JSON lines on stdin -> JSON lines on stdout",
        description="One JSON object per line on stdin, one JSON line per "
        'line on stdout, in order; a bad line gets {"error": ...}. '
        + jsonlines.LIMITS_HELP,
    )
    return parser


def _group(token: str) -> str:
    return " ".join(token[i : i + 4] for i in range(0, 20, 4))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "batch":
        return run_batch(
            getattr(sys.stdin, "buffer", sys.stdin), sys.stdout, args.tables
        )
    batch = _Batch(args.tables)
    if args.command == "token":
        req: dict[str, Any] = {
            "op": "token",
            "token_class": args.token_class,
            "subclass": args.subclass,
            "rnd": args.rnd,
            **_key_fields(args),
        }
        for name in ("tid", "issued_at", "amount", "value16", "control", "mfr_code"):
            value = getattr(args, name)
            if value is not None:
                req[name] = value
    elif args.command == "decode":
        req = {"op": "decode", "token": args.token, **_key_fields(args)}
    else:
        req = {"op": "key_change", **vars(args)}
        req.pop("command")
    result = json.loads(batch.line(json.dumps(req).encode()))
    if "error" in result:
        print(f"prepaid-sts: error: {result['error']}", file=sys.stderr)
        return 1
    if "token" in result:
        print(_group(result["token"]))
    elif "tokens" in result:
        for i, token in enumerate(result["tokens"], 1):
            print(f"{i}: {_group(token)}")
    for key, value in result.items():
        if key not in ("token", "tokens"):
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
