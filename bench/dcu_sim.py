"""Concentrator simulator benchmark: a fleet's day, and reads through a DCU.

1. Fleet: ``--concentrators`` x ``--meters`` (default 100 x 1,000) in this
   process, reporting to a head-end (the real head-end service, with a
   backend that validates and counts but keeps nothing) in a child process
   over HTTPS with client certificates. Prints the time and memory to build
   the fleet, then the CPU time, wall time and bytes of one simulated day of
   collection and reports (15-minute load profile, daily and monthly values,
   events, meter lists, concentrator parameters and events).
2. On-demand reads of one meter 3 G3 hops away (the default G3 latencies, in
   real time): a synchronous ``Request`` (instantaneous values) and a DLMS
   read through the gateway pass-through (HLS-GMAC association, clock,
   release) with the head-end's own DLMS client; p50 and p95 over
   ``--reads`` reads, ``--concurrency`` at a time.

    .venv/bin/python bench/dcu_sim.py
    .venv/bin/python bench/dcu_sim.py --concentrators 10 --meters 300 --reads 50

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator.client import ConcentratorClient
from trytond.modules.prepaid_headend.concentrator.dlms_gateway import (
    GatewayTransport,
)
from trytond.modules.prepaid_headend.dlms import operations as ops
from trytond.modules.prepaid_headend.dlms.counters import MemoryCounterStore
from trytond.modules.prepaid_headend.dlms.session import (
    ConnectionSettings,
    DlmsSession,
)

from simulators.dcu import DcuSimulator, G3Config, TestPki
from simulators.dcu.testing import HeadEndStandIn

ROOT = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Sink:
    """The head-end service in a child process (its CPU is not ours), with
    its certificate from the bench's test CA."""

    def __init__(self, pki: TestPki) -> None:
        creds = pki.issue("HES")
        paths = [str(p) for p in (creds.cert, creds.key, pki.ca_cert, pki.crl)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SINK_MAIN, *paths],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.url = json.loads(self.proc.stdout.readline())["url"]

    def close(self) -> dict:
        out, _ = self.proc.communicate("stop\n", timeout=600)
        return json.loads(out.strip().splitlines()[-1])


_SINK_MAIN = """
import json, resource, sys
from simulators.dcu.headend import MemoryHeadEnd
from trytond.modules.prepaid_headend.concentrator.httpd import HttpsWsgiServer
from trytond.modules.prepaid_headend.concentrator.tls import server_context
from trytond.modules.prepaid_headend.concentrator.wsgi import HeadEndApp

class Counting(MemoryHeadEnd):
    rows = 0
    def _ingest(self, report):
        self.rows += len(report.rows)

backend = Counting()
server = HttpsWsgiServer(on_tls_error=backend.tls_refused)
listener = server.listen(HeadEndApp(backend), server_context(*sys.argv[1:5]))
with server:
    print(json.dumps({"url": f"https://127.0.0.1:{listener.port}/dcu"}), flush=True)
    sys.stdin.readline()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "rows": backend.rows, "files": len(backend.files),
    "reports": len(backend.reports), "rejections": len(backend.rejections),
    "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
    "peak_mib": round(usage.ru_maxrss / 1024),
}), flush=True)
"""


def fleet(args, pki: TestPki) -> None:
    sink = Sink(pki)
    try:
        rss0, t0 = rss_mib(), time.perf_counter()
        sim = DcuSimulator(
            args.concentrators, args.meters, pki=pki, headend_url=sink.url,
            latency_scale=0.0, seed=1,
        ).start()  # fmt: skip
        built = time.perf_counter() - t0
        rss_built = rss_mib()
        print(
            f"fleet: {args.concentrators} x {args.meters} meters built in "
            f"{built:.1f} s, RSS {rss_built - rss0:.0f} MiB "
            f"({(rss_built - rss0) * 1024 / (args.concentrators * args.meters):.2f} "
            "KiB per meter)"
        )
        sim.advance(minutes=50)  # the networks form (joins announced)
        dcs = list(sim.concentrators.values())
        for dc in dcs:
            dc.report_log.clear()
        c0, w0 = cpu(), time.perf_counter()
        sim.advance(hours=24)  # through the next midnight run: one day
        day_cpu, day_wall = cpu() - c0, time.perf_counter() - w0
        log = [entry for dc in dcs for entry in dc.report_log]
        raw = sum(e[2] for e in log)
        sent = sum(e[3] for e in log)
        rows = sum(e[1] for e in log)
        intervals = sum(e[1] for e in log if e[0] is m.ReportType.LOAD_PROFILE)
        store = sum(fm.store.nbytes() for dc in dcs for fm in dc.meters if fm.store)
        print(
            f"one day: {rows:,} rows ({intervals:,} load-profile intervals) in "
            f"{len(log):,} reports; CPU {day_cpu:.1f} s, wall {day_wall:.1f} s "
            f"({rows / day_cpu:,.0f} rows per CPU second); payload "
            f"{raw / 2**20:.1f} MiB, sent {sent / 2**20:.1f} MiB (gzip files)"
        )
        print(
            f"memory after the day: RSS {rss_mib():.0f} MiB, peak {peak_mib():.0f} "
            f"MiB; buffers {store / 2**20:.1f} MiB "
            f"(full depth, 4 days of profile: about {4 * store / 2**20:.0f} MiB); "
            f"meters materialised: {sum(dc.materialised() for dc in dcs)}; "
            f"outbox left: {sum(len(dc.outbox) for dc in dcs)}"
        )
        sim.stop()
    finally:
        totals = sink.close()
    print(f"head-end (child process): {totals}")


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[max(0, int(round(0.95 * len(values))) - 1)]
    return f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"


def reads(args, pki: TestPki) -> None:
    g3 = G3Config(never_join_fraction=0.0, flaky_fraction=0.0)
    with HeadEndStandIn(pki, name="HES") as hes:
        sim = DcuSimulator(
            1, args.concurrency * 2, pki=pki, headend_url=hes.url,
            latency_scale=1.0, g3=g3, collector_fraction=0.0,
        ).start()  # fmt: skip
        dc = sim.concentrator("DC0001")
        for fm in dc.meters:
            fm.hops = 3
        sim.advance(hours=1)
        rtt = 2 * dc.g3.one_way(3)
        print(
            f"reads: 3 hops, G3 round trip {rtt * 1000:.0f} ms on average "
            f"({g3.hop_latency_s * 1000:.0f} ms a hop, {g3.hop_loss:.0%} loss "
            f"before {g3.mac_retries} MAC retries), {args.reads} reads, "
            f"{args.concurrency} at a time"
        )
        context = hes.client_context()
        local = threading.local()

        def sync_read(k: int) -> float:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = ConcentratorClient(sim.url("DC0001"), context)
            meter = dc.meters[k % len(dc.meters)].meter_id
            t = time.perf_counter()
            answer = client.request(
                m.SyncRequest(k + 1, m.ReportType.INSTANT, (meter,))
            )
            assert answer.status is m.RequestStatus.OK, answer
            return time.perf_counter() - t

        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            took = list(pool.map(sync_read, range(args.reads)))
        print(f"  synchronous Request (instantaneous values): {percentiles(took)}")

        counters = MemoryCounterStore()

        async def gateway_read(k: int, sem: asyncio.Semaphore) -> float:
            fm = dc.meters[k % len(dc.meters)]
            settings = ConnectionSettings(
                framing="wrapper", client_address=1, auth="hls-gmac", timeout=20.0
            )
            async with sem:
                transport = GatewayTransport(
                    ConcentratorClient(sim.url("DC0001"), context), fm.pda
                )
                t = time.perf_counter()
                async with DlmsSession(
                    settings, transport=transport, counter_store=counters
                ) as session:
                    await ops.read_clock(session)
                took = time.perf_counter() - t
                transport.client.close()
                return took

        async def all_reads() -> list[float]:
            loop = asyncio.get_running_loop()
            loop.set_default_executor(
                concurrent.futures.ThreadPoolExecutor(args.concurrency * 2)
            )
            sem = asyncio.Semaphore(args.concurrency)
            return await asyncio.gather(
                *(gateway_read(k, sem) for k in range(args.reads))
            )

        took = asyncio.run(all_reads())
        print(
            "  DLMS through the gateway (HLS-GMAC association, clock, release: "
            f"4 round trips): {percentiles(took)}"
        )
        sim.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--concentrators", type=int, default=100)
    p.add_argument("--meters", type=int, default=1000)
    p.add_argument("--reads", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--skip-fleet", action="store_true")
    p.add_argument("--skip-reads", action="store_true")
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="dcu-bench-") as tmp:
        pki = TestPki(Path(tmp))  # test keys, deleted with the folder
        if not args.skip_fleet:
            fleet(args, pki)
        if not args.skip_reads:
            reads(args, pki)


if __name__ == "__main__":
    main()
