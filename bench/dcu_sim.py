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
3. Relay orders: ``--relays`` (default 1,000) disconnect orders, one meter
   each, to the meters of 10 concentrators over mutual TLS, one client per
   concentrator; the wall time until every order is accepted, then until the
   head-end has every confirmation (request status and relay_status report)
   and the simulated G3 time each took. The simulator does not model PLC
   contention, so that simulated time is per order, not a queue.
4. Report file parsing: one file of 512 meters x 4 days of load profile
   (196,608 intervals, the largest part a concentrator sends) inflated and
   parsed in a child process: time and peak memory, against the 500 MB a
   worker may use.

    .venv/bin/python bench/dcu_sim.py
    .venv/bin/python bench/dcu_sim.py --concentrators 10 --meters 300 --reads 50

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime as dt
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

from trytond.modules.prepaid_headend.concentrator import files, reports
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

from simulators.dcu import DcuSimulator, G3Config, MemoryHeadEnd, TestPki
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
                client = local.client = ConcentratorClient(
                    sim.url("DC0001"), context, peer="DC0001"
                )
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
                    ConcentratorClient(sim.url("DC0001"), context, peer="DC0001"),
                    fm.pda,
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


def relays(args, pki: TestPki) -> None:
    g3 = G3Config(never_join_fraction=0.0, flaky_fraction=0.0)
    per_dc = args.relays // 10
    confirmed_at: list[float] = []  # simulated time of each confirmation

    class Timed(MemoryHeadEnd):
        def request_status(self, update):
            confirmed_at.append(sim.clock.time())
            super().request_status(update)

    with HeadEndStandIn(pki, name="HES", backend=Timed()) as hes:
        sim = DcuSimulator(
            10, per_dc, pki=pki, headend_url=hes.url, latency_scale=0.0, g3=g3
        ).start()
        sim.advance(hours=1)  # every meter joined
        for dc in sim.concentrators.values():
            dc.set_plan(())  # nothing but the orders on the backhaul
        end = sim.clock.now() + dt.timedelta(hours=2)
        started_at = sim.clock.time()
        accepted: list[float] = []

        def send(name: str) -> None:
            dc = sim.concentrator(name)
            client = hes.client(sim, name)
            for fm in dc.meters:
                order = m.Order(
                    fm.index, m.Window(end=end),
                    m.RelayOrder(m.RelayAction.DISCONNECT, (fm.meter_id,)),
                )  # fmt: skip
                t = time.perf_counter()
                answer = client.order(order)
                accepted.append(time.perf_counter() - t)
                assert answer.status is m.RequestStatus.WORKING, answer
            client.close()

        w0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            list(pool.map(send, sim.concentrators))
        sent = time.perf_counter() - w0
        sim.advance(minutes=5)  # the orders run and their confirmations go out
        done = time.perf_counter() - w0
        confirmed = [
            status
            for (dc, _), updates in hes.backend.request_statuses.items()
            for status in updates
        ]
        ok = sum(1 for s in confirmed if s.status is m.RequestStatus.OK)
        relay_rows = len(hes.backend.rows("relay"))
        g3_s = [t - started_at for t in confirmed_at]
        print(
            f"relay orders: {len(accepted)} to 10 concentrators x {per_dc} meters, "
            f"10 clients at once: all accepted in {sent:.1f} s wall "
            f"(one order {percentiles(accepted)}); {len(confirmed)} confirmations "
            f"({ok} ok, {relay_rows} relay_status rows) at the head-end "
            f"{done:.1f} s after the first order; simulated G3 time an order "
            f"{percentiles(g3_s)}"
        )
        sim.stop()


_PARSE_MAIN = """
import json, sys, time
from trytond.modules.prepaid_headend.concentrator import files, reports

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024

data = open(sys.argv[1], "rb").read()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) starts again from here
before = status("VmRSS:")
t = time.perf_counter()
report = reports.parse(files.unpack(data))
took = time.perf_counter() - t
print(json.dumps({"rows": len(report.rows), "s": round(took, 2),
                  "before_mib": round(before),
                  "peak_mib": round(status("VmHWM:"))}))
"""


def parse_file(args, tmp: Path) -> None:
    start = dt.datetime(2026, 1, 11, tzinfo=dt.UTC)
    times = [start + dt.timedelta(minutes=15 * k) for k in range(4 * 96)]
    rows = tuple(
        reports.IntervalRow(f"{i:08d}", t, 3_000_000 + 40 * k, 900 + i % 700, 0)
        for i in range(512)
        for k, t in enumerate(times)
    )
    report = reports.Report(m.ReportType.LOAD_PROFILE, "DC0001", 0, start, rows)
    payload = reports.render(report).encode()
    path = tmp / "load_profile.xml.gz"
    path.write_bytes(files.pack(payload))
    del rows, report
    out = subprocess.run(
        [sys.executable, "-c", _PARSE_MAIN, str(path)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    figures = json.loads(out)
    print(
        f"report file: {figures['rows']:,} intervals, {len(payload) / 2**20:.1f} MiB "
        f"of XML in {path.stat().st_size / 2**20:.1f} MiB of gzip: inflated and "
        f"parsed in {figures['s']} s; RSS {figures['before_mib']} MiB before, "
        f"peak {figures['peak_mib']} MiB"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--concentrators", type=int, default=100)
    p.add_argument("--meters", type=int, default=1000)
    p.add_argument("--reads", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--relays", type=int, default=1000)
    p.add_argument("--skip-fleet", action="store_true")
    p.add_argument("--skip-reads", action="store_true")
    p.add_argument("--skip-relays", action="store_true")
    p.add_argument("--skip-parse", action="store_true")
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="dcu-bench-") as tmp:
        pki = TestPki(Path(tmp))  # test keys, deleted with the folder
        if not args.skip_fleet:
            fleet(args, pki)
        if not args.skip_reads:
            reads(args, pki)
        if not args.skip_relays:
            relays(args, pki)
        if not args.skip_parse:
            parse_file(args, Path(tmp))


if __name__ == "__main__":
    main()
