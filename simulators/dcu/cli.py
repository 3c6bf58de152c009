"""``prepaid-dcu-sim``: simulated concentrators with their meters.

    prepaid-dcu-sim --concentrators 2 --meters 300 --pki-dir var/dcu-pki \
        --headend-sink --speed 60

prints one JSON line (the concentrators' URLs, the certificate files, the
head-end's URL) and runs until SIGINT/SIGTERM, simulated time moving
``--speed`` times faster than the wall clock. ``--headend URL`` sends the
reports to a real head-end instead; ``--headend-sink`` starts an in-memory
one on a free port (its totals are printed at exit; it keeps the last
200,000 readings, enough to look at, and counts them all). The test CA and every
certificate (the head-end's too, CN ``HES``) are written to ``--pki-dir``:
test keys, never for production.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time

from trytond.modules.prepaid_headend.concentrator.httpd import HttpsWsgiServer
from trytond.modules.prepaid_headend.concentrator.tls import Reloading, server_context
from trytond.modules.prepaid_headend.concentrator.wsgi import HeadEndApp

from .headend import MemoryHeadEnd
from .pki import TestPki
from .simulator import DcuSimulator

SINK_READINGS = 200_000  # readings the in-memory head-end keeps


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prepaid-dcu-sim",
        description="Simulated data concentrators (SOAP over mutual TLS) with "
        "their G3-PLC meters, on 127.0.0.1.",
    )
    p.add_argument("--concentrators", type=int, default=1)
    p.add_argument("--meters", type=int, default=300, help="per concentrator")
    p.add_argument("--port", type=int, default=0, help="first port (0: any free)")
    p.add_argument("--pki-dir", default=None, help="where the test CA is written")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--headend", default=None, help="https://host:port/dcu")
    target.add_argument("--headend-sink", action="store_true")
    p.add_argument("--speed", type=float, default=1.0, help="simulated s per real s")
    p.add_argument("--latency-scale", type=float, default=1.0)
    p.add_argument(
        "--directory", choices=("provisioned", "empty"), default="provisioned"
    )
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.concentrators <= 1000 or args.speed <= 0:
        print("prepaid-dcu-sim: 1 to 1000 concentrators, speed > 0", file=sys.stderr)
        return 2
    pki = TestPki(args.pki_dir or tempfile.mkdtemp(prefix="dcu-pki-"))
    hes = pki.issue("HES")
    sink_server = sink = None
    url = args.headend
    try:
        if args.headend_sink:
            sink = MemoryHeadEnd(max_readings=SINK_READINGS)
            sink_server = HttpsWsgiServer(on_tls_error=sink.tls_refused)
            listener = sink_server.listen(
                HeadEndApp(sink),
                Reloading(server_context, hes.cert, hes.key, pki.ca_cert, pki.crl),
            )
            sink_server.start()
            url = f"https://127.0.0.1:{listener.port}/dcu"
        sim = DcuSimulator(
            args.concentrators,
            args.meters,
            pki=pki,
            headend_url=url,
            seed=args.seed,
            latency_scale=args.latency_scale,
            first_port=args.port,
            directory=args.directory,
        ).start()
    except (ValueError, OSError) as exc:
        print(f"prepaid-dcu-sim: {exc}", file=sys.stderr)
        if sink_server:
            sink_server.stop()
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(
        json.dumps(
            {
                "concentrators": sim.describe(),
                "ca": str(pki.ca_cert),
                "crl": str(pki.crl),
                "headend": url,
                "headend_cert": str(hes.cert),
                "headend_key": str(hes.key),
            }
        ),
        flush=True,
    )
    try:
        wall, virtual = time.monotonic(), sim.clock.time()
        while not stop.wait(1.0):
            sim.clock.advance_to(virtual + (time.monotonic() - wall) * args.speed)
    finally:
        sim.stop()
        if sink_server:
            sink_server.stop()
        if sink is not None:
            print(
                json.dumps(
                    {
                        "reports": len(sink.reports),
                        "files": len(sink.files),
                        "readings": sink.ingested,
                        "rejections": len(sink.rejections),
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
