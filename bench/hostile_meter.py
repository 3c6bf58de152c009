"""How fast the head-end lets go of a misbehaving meter, and what it costs.

For each behaviour of the test suite's hostile meter (a fake meter on a
loopback socket, in this process's threads): the time from the start of the
read to the cut-off, minus the deadline that should stop it (the overshoot),
the bytes the meter managed to send, and the growth of this process's peak
memory.  Then ``prepaid-dlms`` against a 50 MB flood in a child process: wall
time, exit status, and its peak memory.

    .venv/bin/python bench/hostile_meter.py [--rounds 5] [--deadline 2]

Prints medians over rounds; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time

from trytond.modules.prepaid_headend.dlms import operations as ops
from trytond.modules.prepaid_headend.dlms.session import (
    ConnectionSettings,
    DlmsSession,
)
from trytond.modules.prepaid_headend.tests.hostile_meter import HostileMeter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def read_clock(settings: ConnectionSettings) -> str:
    try:
        async with DlmsSession(settings) as session:
            await ops.read_clock(session)
        return "ok"
    except Exception as exc:  # the kind is the figure
        return getattr(exc, "kind", type(exc).__name__)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(behaviour: str, deadline: float) -> tuple[float, str, int]:
    interval = 0.05 if behaviour == "paced flood" else None
    name = "flood" if behaviour == "paced flood" else behaviour
    flood = 10**9 if behaviour == "paced flood" else 50 * 1024 * 1024
    with HostileMeter(name, interval=interval, flood_bytes=flood) as meter:
        settings = ConnectionSettings(port=meter.port, timeout=1.0, deadline=deadline)
        start = time.perf_counter()
        kind = asyncio.run(read_clock(settings))
        return time.perf_counter() - start, kind, meter.sent


def cli_flood() -> tuple[float, int, float]:
    with HostileMeter("flood") as meter:
        start = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable, "-m", "trytond.modules.prepaid_headend.dlms.cli",
                "--port", str(meter.port), "clock", "get",
            ],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return elapsed, proc.returncode, child


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--deadline", type=float, default=2.0)
    args = p.parse_args()
    print(f"exchange deadline {args.deadline:g} s, round-trip timeout 1 s")
    for behaviour in ("trickle", "paced flood", "flood", "garbage", "silent"):
        before = peak_mib()
        runs = [one(behaviour, args.deadline) for _ in range(args.rounds)]
        times = [t for t, _, _ in runs]
        kinds = sorted({k for _, k, _ in runs})
        sent = statistics.median(s for _, _, s in runs)
        overshoot = statistics.median(times) - args.deadline
        print(
            f"{behaviour:12} cut off as {'/'.join(kinds):10} "
            f"after {statistics.median(times):6.3f} s median "
            f"(max {max(times):6.3f}; overshoot {overshoot:+.3f} s), "
            f"meter sent {sent / 2**20:7.2f} MiB, "
            f"peak memory +{peak_mib() - before:.1f} MiB"
        )
    elapsed, status, child = cli_flood()
    print(
        f"prepaid-dlms against a 50 MB flood: exit {status} in {elapsed:.2f} s, "
        f"child peak memory {child:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
