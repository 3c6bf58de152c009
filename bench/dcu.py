"""A day of concentrator report files ingested on PostgreSQL by the queue
workers (prints figures, no asserts).

Creates (or reuses) a PostgreSQL database marked as this bench's, activates
prepaid_headend, builds bench/vend.py's fixtures (company, chart, tariff)
and partitions the reading tables by month as in production
(``prepaid-partition-readings``).  Registers ``--concentrators`` x
``--meters`` meters (default 100 x 1,000), each concentrator with its own
client certificate, then per concentrator generates one day of report files
with the concentrator's report encoder (``reports.render``, ``files.pack``;
512 meters a part, as the simulator splits them): the daily registers
(4 values a meter) and the 96 load-profile intervals of every meter (energy
register and power: 192 values a meter), and PUTs them through the head-end's
file route (``/<db>/concentrator/files/<name>``, the route's WSGI
application called in this process, the certificate in ``SSL_CLIENT_CERT``
as a TLS terminator hands it).  The route checks each file whole and keeps
it; with ``[queue] worker`` set its readings are queued, not written.

Then runs ``trytond-worker -n --workers`` until the queue is empty and
prints the values ingested, the wall time, values/s (the median over the
files, each timed from its task's start to its end, and overall) and the
peak RSS of each worker process; then the same ingestion again with one
worker (readings truncated, the files queued again) and the ratio of the
two throughputs (``--no-scaling`` skips it).

Run: .venv/bin/python bench/dcu.py [--concentrators 100] [--meters 1000]
     [--workers 2] [--fresh] [--no-scaling]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import timing  # noqa: E402  (bench/timing.py)
import vend  # noqa: E402  (bench/vend.py: database, fixtures, processes)

OWNER = "bench/dcu.py"
METERS_PER_FILE = 512
INTERVALS = 96
READING_TABLES = (
    "prepaid_headend_interval",
    "prepaid_headend_register",
    "prepaid_headend_billing",
    "prepaid_headend_event",
)


def dc_id(number: int) -> str:
    return f"BDC{number:04d}"


def serials(number: int, meters: int) -> list[str]:
    return [f"B{number:04d}M{j:05d}" for j in range(meters)]


def register(db: str, concentrators: int, meters: int, pki) -> dict[str, str]:
    """The concentrators (with the fingerprint of this run's certificates)
    and their meters, created when missing; {dc_id: client certificate PEM}"""
    from trytond.modules.prepaid_headend.concentrator.tls import Peer
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    pems = {}
    for number in range(concentrators):
        name = dc_id(number)
        pems[name] = pki.issue(name).cert.read_text()
    started = time.perf_counter()
    created = 0
    for number in range(concentrators):
        name = dc_id(number)
        with Transaction().start(db, 0) as transaction:
            pool = Pool()
            Company = pool.get("company.company")
            Concentrator = pool.get("prepaid.concentrator")
            Meter = pool.get("prepaid.meter")
            (company,) = Company.search([], limit=1)
            fingerprint = Peer.from_pem(pems[name]).fingerprint
            with transaction.set_context(company=company.id):
                found = Concentrator.search([("dc_id", "=", name)])
                if found:
                    Concentrator.write(found, {"certificate_fingerprint": fingerprint})
                else:
                    Concentrator.create([{"company": company.id, "dc_id": name,
                        "certificate_fingerprint": fingerprint}])  # fmt: skip
                wanted = serials(number, meters)
                with transaction.set_context(active_test=False):
                    have = {m.serial for m in Meter.search([("serial", "in", wanted)])}
                new = [s for s in wanted if s not in have]
                for start in range(0, len(new), 1000):
                    Meter.create([{"serial": s, "model": "SIM-1"}
                        for s in new[start : start + 1000]])  # fmt: skip
                created += len(new)
            transaction.commit()
    spent = time.perf_counter() - started
    print(f"registered {concentrators} concentrators x {meters} meters"
        f" ({created} meters created) in {spent:.0f} s")  # fmt: skip
    return pems


def day_files(name: str, meters: list[str], day: dt.datetime):
    """(file name, gzip bytes, values) of one day of a concentrator: daily
    registers and load profile, 512 meters a part"""
    from trytond.modules.prepaid_headend.concentrator import files, reports
    from trytond.modules.prepaid_headend.concentrator import messages as m

    generated = day + dt.timedelta(days=1, minutes=5)
    seq = 0
    for kind in (m.ReportType.DAILY, m.ReportType.LOAD_PROFILE):
        for part, start in enumerate(range(0, len(meters), METERS_PER_FILE)):
            chunk = meters[start : start + METERS_PER_FILE]
            rows: list = []
            for index, serial in enumerate(chunk):
                base = 1_000_000 + 10_000 * (start + index)
                if kind is m.ReportType.DAILY:
                    rows.append(reports.DailyRow(serial, day + dt.timedelta(days=1),
                        base + 9_600, 0, base // 10, 0))  # fmt: skip
                    continue
                for k in range(INTERVALS):
                    when = day + dt.timedelta(minutes=15 * (k + 1))
                    rows.append(reports.IntervalRow(serial, when, base + 100 * k,
                        300 + (k * 37 + index) % 500))  # fmt: skip
            report = reports.Report(kind, name, 0, generated, tuple(rows))
            seq += 1
            file_name = files.FileName(name, 0, kind, part, generated, seq)
            values = len(rows) * (4 if kind is m.ReportType.DAILY else 2)
            yield str(file_name), files.pack(reports.render(report)), values


def upload_all(db: str, pems: dict[str, str], meters: int, day: dt.datetime):
    """PUT every concentrator's files through the route; returns (files,
    values, bytes, seconds, one file for the duplicate timing)"""
    from trytond.modules.prepaid_headend.concentrator import files
    from trytond.wsgi import app
    from werkzeug.test import Client

    client = Client(app)
    count = values = size = 0
    spent = 0.0
    sample = None
    for number, (name, pem) in enumerate(pems.items()):
        for file_name, data, n in day_files(name, serials(number, meters), day):
            started = time.perf_counter()
            answer = client.put(f"/{db}/concentrator/files/{file_name}", data=data,
                headers={"Content-Digest": files.content_digest(data)},
                environ_base={"SSL_CLIENT_CERT": pem})  # fmt: skip
            spent += time.perf_counter() - started
            if answer.status_code not in (200, 201):
                sys.exit(f"{file_name}: {answer.status_code} {answer.text}")
            count, values, size = count + 1, values + n, size + len(data)
            sample = sample or (client, file_name, data, pem)
    return count, values, size, spent, sample


def pending(conn) -> int:
    (count,) = conn.execute(
        "SELECT count(*) FROM ir_queue WHERE finished_at IS NULL"
    ).fetchone()
    return count


def children(pid: int) -> list[int]:
    "The processes whose parent is pid (trytond-worker's pool)"
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def peak_rss_mib(pid: int) -> float:
    "VmHWM: the most memory the process has held resident"
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def ingest(db: str, conf: str, workers: int, log: str) -> dict:
    """Run trytond-worker with ``workers`` processes until the queue is
    empty; the figures"""
    import psycopg

    env = dict(os.environ, TRYTOND_CONFIG=conf, TRYTOND_QUEUE__WORKER="True")
    args = [*vend.script("trytond-worker"), "-c", conf, "-d", db, "-n", str(workers)]
    with psycopg.connect(vend.PG + db, autocommit=True) as conn:
        queued = pending(conn)
        (first_id,) = conn.execute("SELECT coalesce(max(id), 0) FROM ir_queue"
            " WHERE finished_at IS NOT NULL").fetchone()  # fmt: skip
        out = open(log, "a")
        started = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=out, env=env,
            start_new_session=True)  # fmt: skip
        peaks: dict[int, float] = {}
        try:
            while pending(conn):
                if process.poll() is not None:
                    sys.exit(f"trytond-worker ended (see {log})")
                for child in children(process.pid):
                    peaks[child] = max(peaks.get(child, 0.0), peak_rss_mib(child))
                time.sleep(0.5)
            wall = time.perf_counter() - started
            for child in children(process.pid):
                peaks[child] = max(peaks.get(child, 0.0), peak_rss_mib(child))
        finally:
            vend.stop([process])
            out.close()
        tasks = conn.execute(
            "SELECT q.dequeued_at, q.finished_at, r.stored FROM ir_queue q"
            " JOIN prepaid_concentrator_report r"
            " ON r.id = (q.data::json->'instances'->>0)::int"
            " WHERE q.id > %s AND q.finished_at IS NOT NULL",
            (first_id,),
        ).fetchall()
        (failed,) = conn.execute("SELECT count(*) FROM prepaid_concentrator_report"
            " WHERE kind = 'file' AND stored IS NULL").fetchone()  # fmt: skip
    rates = [s / (e - d).total_seconds() for d, e, s in tasks if e > d and s]
    values = sum(s or 0 for *_, s in tasks)
    span = (max(e for _, e, _ in tasks) - min(d for d, _, _ in tasks)).total_seconds()
    return {"workers": workers, "tasks": queued, "values": values, "wall": wall,
        "span": span, "median": statistics.median(rates) if rates else 0.0,
        "overall": values / wall, "peaks": sorted(peaks.values()),
        "not_ingested": failed}  # fmt: skip


def requeue(db: str) -> None:
    """Readings gone, every kept file not ingested and queued again (the
    same tasks the route queued)"""
    import psycopg
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    with psycopg.connect(vend.PG + db, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(READING_TABLES)}")
        conn.execute("UPDATE prepaid_concentrator_report SET stored = NULL,"
            " unknown_meters = NULL WHERE kind = 'file'")  # fmt: skip
    with Transaction().start(db, 0) as transaction:
        Received = Pool().get("prepaid.concentrator.report")
        with transaction.set_context(queue_name="headend"):
            for record in Received.search([("kind", "=", "file")]):
                Received.__queue__.ingest([record])
        transaction.commit()


def show(figures: dict) -> None:
    peaks = ", ".join(f"{p:.0f}" for p in figures["peaks"]) or "?"
    print(f"  {figures['workers']} worker(s): {figures['values']:,} values from"
        f" {figures['tasks']} files in {figures['wall']:.1f} s wall"
        f" ({figures['span']:.1f} s first task start to last end)")  # fmt: skip
    print(f"    values/s: median per file {figures['median']:,.0f},"
        f" overall {figures['overall']:,.0f}")  # fmt: skip
    print(f"    peak RSS per worker process (MiB): {peaks};"
        f" files not ingested: {figures['not_ingested']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="bench_dcu")
    parser.add_argument("--concentrators", type=int, default=100)
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--no-scaling", action="store_true",
        help="no second run with one worker")  # fmt: skip
    parser.add_argument("--log", default=os.path.join(tempfile.gettempdir(),
        "bench_dcu_worker.log"), help="trytond-worker's log")  # fmt: skip
    args = parser.parse_args()
    conf = os.path.join(tempfile.gettempdir(), f"bench_dcu_{args.db}.conf")
    with open(conf, "w") as f:
        f.write(f"[database]\nuri = {vend.PG}\n[queue]\nworker = True\n"
            f"[prepaid]\nmaster_key = {vend.BENCH_MASTER_KEY}\n")  # fmt: skip
    os.environ.pop("TRYTOND_PREPAID__MASTER_KEY", None)
    open(args.log, "w").close()
    vend.prepare(args.db, 1, conf, args.fresh, False, module="prepaid_headend",
        owner=OWNER)  # fmt: skip
    from trytond.modules.prepaid_headend import partition

    # Monthly partitions, as production runs (the conversion is idempotent).
    with open(os.devnull, "w") as null:
        sys.stdout, saved = null, sys.stdout
        try:
            partition.main(["-c", conf, args.db])
        finally:
            sys.stdout = saved
    import psycopg

    with psycopg.connect(vend.PG + args.db, autocommit=True) as conn:
        # A previous run's readings, files and tasks: this run starts empty.
        conn.execute(f"TRUNCATE {', '.join(READING_TABLES)}")
        conn.execute("DELETE FROM prepaid_concentrator_report")
        conn.execute("DELETE FROM ir_queue")
    from simulators.dcu import TestPki

    with tempfile.TemporaryDirectory() as tmp:
        pems = register(args.db, args.concentrators, args.meters, TestPki(tmp))
    day = dt.datetime.combine(dt.date.today() - dt.timedelta(days=1), dt.time(), dt.UTC)
    count, values, size, spent, sample = upload_all(args.db, pems, args.meters, day)
    print(f"uploaded {count} files ({size / 2**20:.1f} MiB gzip, {values:,} values)"
        f" in {spent:.1f} s through the route (checked, kept, queued):"
        f" {spent / count * 1000:.0f} ms a file")  # fmt: skip
    client, file_name, data, pem = sample

    def again() -> None:
        client.put(f"/{args.db}/concentrator/files/{file_name}", data=data,
            environ_base={"SSL_CLIENT_CERT": pem})  # fmt: skip

    duplicate = timing.per_call_us(again, 3, rounds=3)
    print(f"the same file again (answered duplicate): {duplicate / 1000:.0f} ms")
    print("ingestion by the queue workers (machine shared: slow figures):")
    first = ingest(args.db, conf, args.workers, args.log)
    show(first)
    if not args.no_scaling and args.workers != 1:
        requeue(args.db)
        one = ingest(args.db, conf, 1, args.log)
        show(one)
        if one["overall"]:
            print(f"  {args.workers} workers / 1 worker throughput ="
                f" {first['overall'] / one['overall']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
