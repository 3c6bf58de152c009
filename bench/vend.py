"""Vends per second through the back-office JSON-RPC API (prints figures, no asserts).

Creates (or reuses) a PostgreSQL database, activates prepaid_vending (and
prepaid_sts with ``--sts``), builds the fixtures of the tests (company, chart,
Example C tariff) with ``--meters`` meters, starts trytond on 127.0.0.1 (the
werkzeug dev server, or gunicorn as in production) and runs CLIENTS threads
calling ``model.prepaid.vend.rpc_vend``, each vend on a random meter (as at a
utility) or all on one meter (``--same-meter``, the worst case).  Prints
vends/s, median and p99 latency, failures and the server-side retries.

``--profile N`` runs N vends in-process instead (no HTTP) and prints the time
and SQL statements per vend and the cProfile top: where the time goes.

``--orm`` runs the same vends a second time with the fast path off (the
server started with ``TRYTOND_PREPAID__FAST_PATH=False``: the pipeline's
writes go through the ORM, ``fastpath.through_orm``) and prints the ratio of
the two throughputs (or in-process times): the fast path's gain, in one run.

The server runs with one trytond-worker for the queued tasks (the booking
of the vends into the accounts), as in production; ``--no-queue-worker``
leaves them to the requests that queue them.  ``CALLERS=regex`` adds the
callers of the matching functions to ``--profile``'s output.

Run: .venv/bin/python bench/vend.py [--server gunicorn] [--clients 8]
     [--vends 800] [--meters 200] [--same-meter] [--sts] [--fresh] [--orm]
     [--no-queue-worker]
     .venv/bin/python bench/vend.py --profile 50 [--orm]
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

PG = "postgresql://postgres@127.0.0.1:5432/"
VENV = os.path.dirname(sys.executable)
# A fixed bench-only master key (never a production key): the STS fixtures
# encrypt the public STS test vending key with it.
BENCH_MASTER_KEY = "QmVuY2hPbmx5TWFzdGVyS2V5Tm90Rm9yUHJvZHVjdGk="
STS_VK = "abababababababab949494949494949401234567"  # STS 531-1-07 CTSA01


def script(name: str) -> list[str]:
    """The virtualenv's console script name run by this Python: a copied
    virtualenv (a git worktree's) keeps the shebang of the one it was
    copied from, whose modules would be measured instead of these"""
    return [sys.executable, os.path.join(VENV, name)]


def sh(*args: str, env: dict | None = None) -> None:
    subprocess.run(args, check=True, env=env)


def serials_for(meters: int) -> list[str]:
    return [f"09{i:09d}" for i in range(meters)]


def prepare(
    db: str,
    meters: int,
    conf: str,
    fresh: bool,
    sts: bool,
    module: str | None = None,
    owner: str | None = None,
) -> list[str]:
    """The database db with module activated (prepaid_sts or prepaid_vending
    by sts unless given) and the fixtures' meters; their serials.  With
    owner (the bench's name), the database is marked as the bench's when
    created, and ``fresh`` drops only a database with that mark."""
    import psycopg

    with psycopg.connect(PG + "postgres", autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (db,)
        ).fetchone()
        if exists and fresh:
            if owner is not None:
                (mark,) = conn.execute(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                    " WHERE datname = %s",
                    (db,),
                ).fetchone()
                if mark != owner:
                    sys.exit(f"--fresh: database {db} was not created by {owner}:"
                        " not dropped (choose another --db)")  # fmt: skip
            conn.execute(f'DROP DATABASE "{db}"')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{db}"')
            if owner is not None:
                conn.execute(f"COMMENT ON DATABASE \"{db}\" IS '{owner}'")
            fresh = True
    if not fresh:  # sessions left by an interrupted run would slow every check
        with psycopg.connect(PG + db, autocommit=True) as conn:
            conn.execute("DELETE FROM ir_session")
    serials = serials_for(meters)
    module = module or ("prepaid_sts" if sts else "prepaid_vending")
    if fresh:
        env = dict(os.environ, TRYTONPASSFILE=_passfile())
        admin = script("trytond-admin")
        sh(*admin, "-c", conf, "-d", db, "--all", "--email", "a@example.com",
            env=env)  # fmt: skip
        sh(*admin, "-c", conf, "-d", db, "-u", module, "--activate-dependencies",
            env=env)  # fmt: skip
    os.environ["TRYTOND_CONFIG"] = conf
    from trytond.pool import Pool
    from trytond.transaction import Transaction, TransactionError

    Pool(db).init()
    extras: dict = {}
    while True:  # restart with the table locks trytond asks for
        with Transaction().start(db, 0, **extras) as transaction:
            pool = Pool()
            Meter = pool.get("prepaid.meter")
            if Meter.search([("serial", "=", serials[-1])]):
                return serials
            try:
                _fixtures(pool, transaction, serials, sts)
            except TransactionError as exc:
                transaction.rollback()
                exc.fix(extras)
                continue
            transaction.commit()
            return serials


def _fixtures(pool, transaction, serials: list[str], sts: bool) -> None:
    from trytond.modules.company.tests import create_company
    from trytond.modules.prepaid_vending.tests.vend_fixtures import (
        new_meter,
        new_point,
        setup_vending,
    )

    User = pool.get("res.user")
    company = create_company()
    (admin_user,) = User.search([("login", "=", "admin")])
    # The bench sells as a gateway (no sales point, no shift): an API
    # terminal login.
    terminal = pool.get("ir.model.data").get_id("prepaid_vending", "group_api_terminal")
    User.write([admin_user], {"companies": [("add", [company.id])],
            "company": company.id,
            "groups": [("add", [terminal])]})  # fmt: skip
    with transaction.set_context(company=company.id):
        env = setup_vending()
        kind = "smart_prepaid"
        if sts:
            from trytond.modules.prepaid_sts.tests.tools import create_vending_key

            create_vending_key(key=STS_VK)
            kind = "sts_keypad"
        for i, serial in enumerate(serials):
            meter = new_meter(serial, new_point(env, f"B{i}"), kind)
            if sts:
                pan = f"6007270{i:010d}"
                pan += str(_luhn(pan))
                meter.sts_pan = pan
                meter.sts_sgc = "201457"
                meter.sts_krn = 1
                meter.sts_tariff_index = "01"
                meter.sts_key_type = "2"
                meter.sts_base_date = "14"
                meter.sts_ea = "07"
                meter.save()


def _luhn(digits: str) -> int:
    "The Luhn check digit of digits (the STS PAN's last digit)"
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def _passfile() -> str:
    path = os.path.join(tempfile.gettempdir(), "bench_vend_pass")
    with open(path, "w") as f:
        f.write("admin\n")
    return path


class Client:
    """One login (as a point-of-sale gateway has) shared by the client threads:
    trytond checks a request against every live session of its user, so a
    session per thread would measure the bench's own logins."""

    def __init__(self, url: str) -> None:
        self.url = url
        # 8.0 answers [user id, session key, ...]
        uid, session = self.call(
            "common.db.login", ["admin", {"password": "admin"}, "en"]
        )[:2]
        token = base64.b64encode(f"admin:{uid}:{session}".encode()).decode()
        self.auth = f"Session {token}"
        self.context = self.call("model.res.user.get_preferences", [True, {}])

    def logout(self) -> None:
        self.call("common.db.logout", [])

    def call(self, method: str, params: list):
        body = json.dumps({"id": 1, "method": method, "params": params}).encode()
        request = urllib.request.Request(self.url, body, method="POST")
        request.add_header("Content-Type", "application/json")
        if hasattr(self, "auth"):
            request.add_header("Authorization", self.auth)
        with urllib.request.urlopen(request, timeout=60) as response:
            data = json.loads(response.read())
        if data.get("error"):
            raise RuntimeError(data["error"])
        return data["result"]


def run(url: str, clients: int, serials: list[str], vends: int) -> float:
    "Run the vends; print and return the throughput (vends/s)"
    latencies: list[float] = []
    errors: list[str] = []
    per_client = vends // clients
    client = Client(url)

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(per_client):
            serial = rnd.choice(serials)
            start = time.perf_counter()
            try:
                client.call("model.prepaid.vend.rpc_vend", [
                    serial, "100.00", "card", None, uuid.uuid4().hex, None,
                    "api", client.context])  # fmt: skip
            except urllib.error.HTTPError as exc:  # counted, not fatal
                body = exc.read().decode(errors="replace")
                errors.append(f"HTTP {exc.code} {body[-160:]}")
                continue
            except Exception as exc:
                errors.append(str(exc)[:200])
                continue
            latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    client.logout()
    latencies.sort()
    print(f"clients {clients}, meters {len(serials)}, vends {len(latencies)},"
        f" failures {len(errors)}")  # fmt: skip
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"throughput {len(latencies) / elapsed:.1f} vends/s")
        print(f"latency median {statistics.median(latencies) * 1000:.0f} ms,"
            f" p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")  # fmt: skip
    for error, count in collections.Counter(errors).most_common(3):
        print(f"failure x{count}: {error}")
    return len(latencies) / elapsed


def start_server(
    kind: str,
    conf: str,
    db: str,
    port: int,
    log: str,
    workers: str,
    orm: bool,
    queue: bool,
) -> list[subprocess.Popen]:
    """The server, and with queue one trytond-worker running the queued tasks
    (the vends' booking) as in production; without it the booking runs in
    the request that queued it, before its answer."""
    env = dict(os.environ, TRYTOND_CONFIG=conf)
    if orm:  # the same pipeline, writing through the ORM (fastpath switch)
        env["TRYTOND_PREPAID__FAST_PATH"] = "False"
    out = open(log, "w")  # closed when the bench ends
    started = []
    if queue:
        env["TRYTOND_QUEUE__WORKER"] = "True"
        worker = [*script("trytond-worker"), "-c", conf, "-d", db, "-n", "1"]
        started.append(
            subprocess.Popen(
                worker, stdout=out, stderr=out, env=env, start_new_session=True
            )
        )
    if kind == "gunicorn":
        processes, threads = workers.split("x")
        args = [*script("gunicorn"), "-w", processes,
            "--threads", threads, "-b", f"127.0.0.1:{port}",
            "trytond.application:app"]  # fmt: skip
    else:
        args = [*script("trytond"), "-c", conf, "-d", db]
        if log != os.devnull:
            args += ["--logconf", _logconf()]
    started.append(
        subprocess.Popen(args, stdout=out, stderr=out, env=env, start_new_session=True)
    )
    return started


def stop(servers: list[subprocess.Popen]) -> None:
    """End the servers' process groups (trytond-worker's pool processes and
    gunicorn's workers outlive their parent otherwise, and would take the
    next run's tasks or port): SIGTERM, then SIGKILL after 10 s"""
    for server in servers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
    for server in servers:
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


@contextlib.contextmanager
def serving(*args, **kwargs):
    """start_server's processes, ended however the block ends (an error,
    Ctrl-C, or SIGTERM to the bench, made an exit here)"""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    servers: list[subprocess.Popen] = []
    try:
        servers = start_server(*args, **kwargs)
        yield servers
    finally:
        stop(servers)


def port_free(port: int) -> bool:
    "Nothing listens on 127.0.0.1:port (the bench must not measure another server)"
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait_ready(url: str, servers: list[subprocess.Popen], seconds: int = 60) -> None:
    "Wait until the server answers a login at url; exit if a server died"
    for _ in range(seconds):
        if any(server.poll() is not None for server in servers):
            sys.exit("a server process ended at start (see --log)")
        try:
            Client(url).logout()
            return
        except Exception:
            time.sleep(1)
    sys.exit(f"no answer from {url} in {seconds} s (see --log)")


def _logconf() -> str:
    path = os.path.join(tempfile.gettempdir(), "bench_vend_log.conf")
    with open(path, "w") as f:
        f.write(
            "[formatters]\nkeys=simple\n[handlers]\nkeys=err\n[loggers]\nkeys=root\n"
            "[formatter_simple]\nformat=%(asctime)s %(levelname)s %(name)s %(message)s"
            "\n[handler_err]\nclass=StreamHandler\nformatter=simple\nargs=(sys.stderr,)"
            "\n[logger_root]\nlevel=WARNING\nhandlers=err\n"
        )
    return path


def measure(one, serials: list[str], vends: int):
    """Time ``vends`` calls of ``one(serial)`` (wall and Python CPU), then run
    as many again counting the SQL statements and under cProfile: returns
    (timings, cpu, queries, profiler).  The caller warms the caches."""
    import cProfile

    import psycopg

    queries: collections.Counter = collections.Counter()
    execute = psycopg.Cursor.execute

    def counting(self, query, params=None, *args, **kwargs):
        queries[str(query)[:100]] += 1
        return execute(self, query, params, *args, **kwargs)

    timings, cpu = [], []
    for i in range(vends):
        start, start_cpu = time.perf_counter(), time.process_time()
        one(serials[i % len(serials)])
        timings.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    psycopg.Cursor.execute = counting
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        for i in range(vends):
            one(serials[i % len(serials)])
    finally:
        profiler.disable()
        psycopg.Cursor.execute = execute
    return timings, cpu, queries, profiler


def profile(db: str, serials: list[str], vends: int) -> float:
    """In-process: ms and SQL statements per vend, and the cProfile top;
    returns the median seconds per vend"""
    import pstats

    from trytond.pool import Pool
    from trytond.transaction import Transaction, TransactionError

    pool = Pool(db)
    with Transaction().start(db, 0):
        (user,) = pool.get("res.user").search([("login", "=", "admin")])
        user = user.id
    with Transaction().start(db, user):
        context = pool.get("res.user").get_preferences(context_only=True)
    restarts = 0

    def one(serial: str) -> None:
        nonlocal restarts
        extras: dict = {}
        while True:
            with Transaction().start(db, user, context=context, **extras) as tr:
                try:
                    pool.get("prepaid.vend").rpc_vend(
                        serial, "100.00", "card", None, uuid.uuid4().hex, None, "api"
                    )
                except TransactionError as exc:
                    tr.rollback()
                    exc.fix(extras)
                    restarts += 1
                    continue
                tr.commit()
                return

    for serial in serials[:3]:  # warm the caches
        one(serial)
    restarts = 0
    timings, cpu, queries, profiler = measure(one, serials, vends)
    # CPU time of this process (Python side, PostgreSQL excluded) is the figure
    # least disturbed by other work on a shared machine.
    print(f"{vends} vends in-process: median {statistics.median(timings) * 1000:.1f}"
        f" ms/vend, Python CPU {statistics.median(cpu) * 1000:.1f} ms/vend,"
        f" {sum(queries.values()) / vends:.1f} SQL statements/vend,"
        f" {restarts / vends / 2:.2f} restarts/vend")  # fmt: skip
    for query, count in queries.most_common(25):
        print(f"{count / vends:5.1f}  {query}")
    stats = pstats.Stats(profiler).sort_stats("cumulative")
    stats.print_stats(40)
    callees = r"vend_pipeline.py:\d+\((_sell|prepare)\)"
    stats.print_callees(os.environ.get("CALLEES", callees))
    if callers := os.environ.get("CALLERS"):  # e.g. "modelsql.py:\d+\(read\)"
        stats.print_callers(callers)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default=None)
    parser.add_argument("--server", choices=["werkzeug", "gunicorn"],
        default="gunicorn")  # fmt: skip
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--vends", type=int, default=800)
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--same-meter", action="store_true")
    parser.add_argument("--sts", action="store_true", help="STS keypad meters")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--workers", default="4x4",
        help="gunicorn processes x threads")  # fmt: skip
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--log", default=os.devnull, help="server log file")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--no-queue-worker", action="store_true",
        help="no trytond-worker: queued tasks run in the requests")  # fmt: skip
    parser.add_argument("--orm", action="store_true",
        help="then the same through the ORM, and the ratio")  # fmt: skip
    args = parser.parse_args()
    db = args.db or ("bench_vend_sts" if args.sts else "bench_vend")
    conf = os.path.join(tempfile.gettempdir(), f"bench_vend_{db}.conf")
    with open(conf, "w") as f:
        f.write(f"[database]\nuri = {PG}\n[web]\nlisten = 127.0.0.1:{args.port}\n"
            f"[prepaid]\nmaster_key = {BENCH_MASTER_KEY}\n")  # fmt: skip
    os.environ.pop("TRYTOND_PREPAID__MASTER_KEY", None)
    serials = prepare(db, args.meters, conf, args.fresh, args.sts)
    if args.same_meter:
        serials = serials[:1]
    if args.profile:
        fast = profile(db, serials, args.profile)
        if args.orm:
            from trytond.modules.prepaid_vending import fastpath

            print("\n--- the same, through the ORM (fast path off)")
            with fastpath.through_orm():
                orm = profile(db, serials, args.profile)
            print(f"in-process ms/vend: fast path {fast * 1000:.1f}, ORM"
                f" {orm * 1000:.1f}: ORM / fast path = {orm / fast:.2f}")  # fmt: skip
        return
    if not port_free(args.port):
        sys.exit(f"port {args.port} is in use: choose another --port")
    os.environ["TRYTOND_DATABASE_NAMES"] = db
    throughputs = {}
    for mode in ["fast path", "ORM"] if args.orm else ["fast path"]:
        with serving(
            args.server,
            conf,
            db,
            args.port,
            args.log,
            args.workers,
            mode == "ORM",
            not args.no_queue_worker,
        ) as servers:
            url = f"http://127.0.0.1:{args.port}/{db}/rpc/"
            wait_ready(url, servers)
            print(f"server {args.server}{', STS meters' if args.sts else ''},"
                f" writes: {mode}")  # fmt: skip
            throughputs[mode] = run(url, args.clients, serials, args.vends)
    if len(throughputs) == 2 and throughputs["ORM"]:
        ratio = throughputs["fast path"] / throughputs["ORM"]
        print(f"fast path / ORM throughput = {ratio:.2f}")


if __name__ == "__main__":
    main()
