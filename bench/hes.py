"""HES throughput benchmark: meter read jobs per second over loopback.

Job = TCP connect + association (+ HDLC SNRM when asked) + read clock +
read active energy import (value and scaler/unit) + last hour of the load
profile by range + release. The meter simulator runs in a separate process
(`python -m simulators.meter.cli`), the head-end is one asyncio process.

    .venv/bin/python bench/hes.py                 # all scenarios
    .venv/bin/python bench/hes.py --meters 200 --rounds 3 --skip-latency

Prints per-scenario medians over rounds; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections import Counter

from trytond.modules.prepaid_headend.dlms import operations as ops
from trytond.modules.prepaid_headend.dlms.counters import MemoryCounterStore
from trytond.modules.prepaid_headend.dlms.runner import (
    MeterJob,
    Operation,
    RetryPolicy,
    read_meters_async,
)
from trytond.modules.prepaid_headend.dlms.session import ConnectionSettings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Simulator:
    """The meter simulator in a child process, stopped on exit."""

    def __init__(self, meters: int, port: int, framing: str, latency_ms: float):
        self.cmd = [
            sys.executable, "-m", "simulators.meter.cli",
            "--meters", str(meters), "--port", str(port),
            "--framing", framing, "--latency-ms", str(latency_ms),
        ]  # fmt: skip
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Simulator:
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise RuntimeError(f"simulator did not start: {self.cmd}")
        self.info = json.loads(line)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# Per-model knowledge a real HES caches after the first read of a meter type.
_CACHE: dict[str, object] = {}


async def read_job(session, use_cache: bool = True):
    clock = await ops.read_clock(session)
    su = _CACHE.get("su") if use_cache else None
    if su is None:
        su = await ops.read_scaler_unit(session, ops.ENERGY_IMPORT)
        _CACHE["su"] = su
    energy = await ops.read_register(session, ops.ENERGY_IMPORT, scaler_unit=su)
    captures = _CACHE.get("captures") if use_cache else None
    if captures is None:
        captures = await ops.read_capture_objects(session, ops.LOAD_PROFILE)
        _CACHE["captures"] = captures
    _cols, rows = await ops.read_profile(
        session,
        ops.LOAD_PROFILE,
        clock - dt.timedelta(hours=1),
        clock,
        captures=captures,
    )
    return energy.value, len(rows)


def make_jobs(
    count: int, first_port: int, auth: str, framing: str, timeout: float, cache=True
):
    sap = {"lls": 32, "hls-gmac": 1, "none": 16}[auth]
    return [
        MeterJob(
            key=f"m{i}",
            settings=ConnectionSettings(
                port=first_port + i,
                framing=framing,
                client_address=sap,
                auth=auth,
                password="12345678" if auth == "lls" else None,
                timeout=timeout,
            ),
            operations=[Operation(read_job, {"use_cache": cache})],
        )
        for i in range(count)
    ]


async def run_round(jobs, concurrency: int, store) -> tuple[float, Counter, int]:
    t0 = time.perf_counter()
    results = await read_meters_async(
        jobs, concurrency=concurrency, counter_store=store,
        policy=RetryPolicy(retries=1, base_delay=0.2),
    )  # fmt: skip
    wall = time.perf_counter() - t0
    kinds = Counter(r.error_kind for r in results if not r.ok)
    trips = sum(r.round_trips for r in results)
    return wall, kinds, trips


def scenario(args, auth: str, latency_ms: float, meters: int, rounds: int) -> dict:
    store = MemoryCounterStore()
    timeout = max(5.0, latency_ms / 1000 * 20)
    with Simulator(meters, args.port, args.framing, latency_ms):
        jobs = make_jobs(
            meters, args.port, auth, args.framing, timeout, not args.no_cache
        )
        walls, errors = [], Counter()
        prof = cProfile.Profile() if args.profile else None
        for r in range(rounds):
            if prof and r == rounds - 1:
                prof.enable()
            wall, kinds, trips = asyncio.run(run_round(jobs, args.concurrency, store))
            if prof and r == rounds - 1:
                prof.disable()
            walls.append(wall)
            errors.update(kinds)
        med = statistics.median(walls)
        out = {
            "auth": auth,
            "framing": args.framing,
            "cached_metadata": not args.no_cache,
            "latency_ms": latency_ms,
            "meters": meters,
            "rounds": rounds,
            "wall_s_median": round(med, 3),
            "jobs_per_s_median": round(meters / med, 1),
            "round_trips_per_job": round(trips / meters, 1),
            "errors": dict(errors),
        }
        print(json.dumps(out), flush=True)
        if prof:
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--meters", type=int, default=300)
    p.add_argument("--latency-meters", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--port", type=int, default=21000)  # below ephemeral range
    p.add_argument("--framing", choices=["wrapper", "hdlc"], default="wrapper")
    p.add_argument("--concurrency", type=int, default=1000)
    p.add_argument("--auth", nargs="*", default=["lls", "hls-gmac"])
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="re-read scaler/unit and capture objects in every job",
    )
    p.add_argument("--profile", action="store_true", help="cProfile last round")
    args = p.parse_args(argv)
    for auth in args.auth:
        # Few concurrent associations suffice on loopback (CPU-bound).
        conc, args.concurrency = args.concurrency, min(args.concurrency, 50)
        scenario(args, auth, 0, args.meters, args.rounds)
        args.concurrency = conc
    if not args.skip_latency:
        for auth in args.auth:
            scenario(args, auth, 200, args.latency_meters, 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
