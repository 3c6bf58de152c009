"""``prepaid-meter-sim``: serve N simulated meters until interrupted."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .model import MeterConfig
from .server import MeterSimulator


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prepaid-meter-sim",
        description="Simulated DLMS/COSEM prepayment meters on 127.0.0.1.",
    )
    p.add_argument("--meters", type=int, default=1, help="number of meters")
    p.add_argument("--port", type=int, default=4059, help="port of meter 0")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--framing", choices=("wrapper", "hdlc"), default="wrapper")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--drop-rate", type=float, default=0.0)
    p.add_argument("--load-kw", type=float, default=1.0)
    p.add_argument("--decoder-key", default=None, help="STS decoder key (hex)")
    p.add_argument(
        "--decoder-keys",
        metavar="FILE",
        default=None,
        help="JSON list of STS decoder keys (hex or null), one per meter from "
        "meter 0; kept in a file, not on the command line other users can read",
    )
    p.add_argument("--sts-ea", choices=("07", "11"), default="07")
    p.add_argument("--credit-kwh", type=float, default=50.0)
    p.add_argument("--postpaid", action="store_true", help="credit mode meters")
    p.add_argument("--seed", type=int, default=0)
    return p


def read_decoder_keys(
    path: str | None, count: int, default: bytes | None
) -> list[bytes | None]:
    """The decoder key of each meter: entry i of the JSON list in path (hex or
    null), default for the meters beyond the list or without a file."""
    keys: list[bytes | None] = [default] * count
    if path is None:
        return keys
    with open(path, encoding="utf-8") as file:
        try:
            entries = json.load(file)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(entries, list) or len(entries) > count:
        raise ValueError(f"{path}: expected a JSON list of at most {count} keys")
    for index, entry in enumerate(entries):
        try:
            keys[index] = None if entry is None else bytes.fromhex(entry)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: entry {index} is neither hex nor null") from None
    return keys


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.meters < 1:
        print("--meters must be at least 1", file=sys.stderr)
        return 2
    try:
        key = bytes.fromhex(args.decoder_key) if args.decoder_key else None
        keys = read_decoder_keys(args.decoder_keys, args.meters, key)
        configs = [
            MeterConfig(
                index=i,
                port=args.port + i if args.port else 0,
                framing=args.framing,
                latency_ms=args.latency_ms,
                drop_rate=args.drop_rate,
                load_kw=args.load_kw,
                decoder_key=keys[i],
                sts_ea=args.sts_ea,
                initial_credit_kwh=args.credit_kwh,
                prepaid=not args.postpaid,
                seed=args.seed + i,
            )
            for i in range(args.meters)
        ]
        sim = MeterSimulator(configs, host=args.host).start()
    except (ValueError, OSError) as exc:
        print(f"prepaid-meter-sim: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(json.dumps({"meters": sim.describe()}), flush=True)
    try:
        stop.wait()
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
