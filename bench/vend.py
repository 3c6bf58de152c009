"""Vends per second through the back-office JSON-RPC API (prints figures, no asserts).

Creates (or reuses) a PostgreSQL database, activates prepaid_vending, builds the
fixtures of the tests (company, chart, Example C tariff) with one meter per
client, starts ``trytond`` on 127.0.0.1 and runs CLIENTS threads calling
``model.prepaid.vend.rpc_vend``.  Prints vends/s, median and p99 latency.

Run: .venv/bin/python bench/vend.py [--clients 8] [--vends 400] [--fresh]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

PG = "postgresql://postgres@127.0.0.1:5432/"
VENV = os.path.dirname(sys.executable)


def sh(*args: str, env: dict | None = None) -> None:
    subprocess.run(args, check=True, env=env)


def prepare(db: str, clients: int, conf: str, fresh: bool) -> list[str]:
    import psycopg

    with psycopg.connect(PG + "postgres", autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (db,)
        ).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{db}"')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{db}"')
            fresh = True
    serials = [f"09{i:09d}" for i in range(clients)]
    if fresh:
        env = dict(os.environ, TRYTONPASSFILE=_passfile())
        admin = os.path.join(VENV, "trytond-admin")
        sh(admin, "-c", conf, "-d", db, "--all", "--email", "a@example.com", env=env)
        sh(admin, "-c", conf, "-d", db, "-u", "prepaid_vending",
            "--activate-dependencies", env=env)  # fmt: skip
    os.environ["TRYTOND_CONFIG"] = conf
    from trytond.modules.company.tests import create_company
    from trytond.modules.prepaid_vending.tests.vend_fixtures import (
        new_meter,
        new_point,
        setup_vending,
    )
    from trytond.pool import Pool
    from trytond.transaction import Transaction, TransactionError

    Pool(db).init()
    extras: dict = {}
    while True:  # restart with the table locks trytond asks for
        with Transaction().start(db, 0, **extras) as transaction:
            pool = Pool()
            if pool.get("prepaid.meter").search([("serial", "=", serials[-1])]):
                return serials
            try:
                User = pool.get("res.user")
                company = create_company()
                (admin_user,) = User.search([("login", "=", "admin")])
                User.write([admin_user], {"companies": [("add", [company.id])],
                        "company": company.id})  # fmt: skip
                with transaction.set_context(company=company.id):
                    env_ = setup_vending()
                    for i, serial in enumerate(serials):
                        new_meter(serial, new_point(env_, f"B{i}"))
            except TransactionError as exc:
                transaction.rollback()
                exc.fix(extras)
                continue
            transaction.commit()
            return serials


def _passfile() -> str:
    path = os.path.join(tempfile.gettempdir(), "bench_vend_pass")
    with open(path, "w") as f:
        f.write("admin\n")
    return path


class Client:
    def __init__(self, url: str) -> None:
        self.url = url
        # 8.0 answers [user id, session key, ...]
        uid, session = self.call(
            "common.db.login", ["admin", {"password": "admin"}, "en"]
        )[:2]
        token = base64.b64encode(f"admin:{uid}:{session}".encode()).decode()
        self.auth = f"Session {token}"
        self.context = self.call("model.res.user.get_preferences", [True, {}])

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


def run(url: str, serials: list[str], vends: int) -> None:
    latencies: list[float] = []
    errors: list[str] = []
    per_client = vends // len(serials)
    barrier = threading.Barrier(len(serials))

    def worker(serial: str) -> None:
        client = Client(url)
        barrier.wait()
        for _ in range(per_client):
            start = time.perf_counter()
            try:
                client.call("model.prepaid.vend.rpc_vend", [
                    serial, "100.00", "card", None, uuid.uuid4().hex, None,
                    "api", client.context])  # fmt: skip
            except Exception as exc:  # counted, not fatal
                errors.append(str(exc)[:200])
                continue
            latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(s,)) for s in serials]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    print(f"clients {len(serials)}, vends {len(latencies)}, errors {len(errors)}")
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"throughput {len(latencies) / elapsed:.1f} vends/s")
        print(f"latency median {statistics.median(latencies) * 1000:.0f} ms,"
            f" p99 {p99 * 1000:.0f} ms")  # fmt: skip
    for error in errors[:3]:
        print("error:", error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="bench_vend")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--vends", type=int, default=400)
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    conf = os.path.join(tempfile.gettempdir(), "bench_vend.conf")
    with open(conf, "w") as f:
        f.write(f"[database]\nuri = {PG}\n[web]\nlisten = 127.0.0.1:{args.port}\n")
    serials = prepare(args.db, args.clients, conf, args.fresh)
    server = subprocess.Popen(
        [os.path.join(VENV, "trytond"), "-c", conf, "-d", args.db],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{args.port}/{args.db}/rpc/"
        for _ in range(60):
            try:
                Client(url)
                break
            except Exception:
                time.sleep(1)
        run(url, serials, args.vends)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
