"""One vendor's vends per second through the XMLVend SOAP route (prints
figures, no asserts): issue 13, a bank with hundreds of tills must reach the
vending throughput target by itself.

Creates (or reuses) a PostgreSQL database marked as this bench's, activates
prepaid_vendor_portal, builds bench/vend.py's fixtures (company, chart,
Example C tariff, ``--meters`` smart meters) and one vendor, "BENCH-BANK",
with an outlet and ``--tills`` terminals, each with its own client ID,
terminal ID and API token (a service terminal: the token is the authCred
password), its float topped up to cover the run.  Starts trytond (gunicorn
as in production, or werkzeug) with one trytond-worker for the queued
booking, and runs one thread per till posting credit vends
(``POST /<db>/xmlvend``, SOAP 1.1, a new msgID per request) on random
meters: each sale draws on the one vendor's float (vendor_float.py).

Prints vends/s, median and p99 latency, the faults by type, the
transactions the server rolled back (retries and faults, from
pg_stat_database) and the float's draws given back, the float before and
after with the check that it fell by exactly the sales (a printed check,
not an assert), then the same number of vends through bench/vend.py's
JSON-RPC path on the same server (``--tills`` client threads sharing one
login) and the ratio of the two throughputs (``--no-compare`` skips it).

Run: .venv/bin/python bench/xmlvend.py [--tills 16] [--vends 400]
     [--server gunicorn] [--port 8127] [--fresh] [--no-compare]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import vend  # noqa: E402  (bench/vend.py: database, fixtures, server, JSON-RPC)

OWNER = "bench/xmlvend.py"
VENDOR_CODE = "BENCH-BANK"
AMOUNT = Decimal("100.00")
SOAP_11 = "text/xml; charset=utf-8"
SOAP_ENV = b"http://schemas.xmlsoap.org/soap/envelope/"


class Till:
    "A terminal of the bench's vendor: its XMLVend identity and API token"

    def __init__(self, number: int) -> None:
        self.client_id = f"6009{number:06d}"
        self.terminal_id = f"BENCH-T{number:04d}"
        # Bench-only tokens (a real one is random): a run on a reused
        # database must know them again.
        self.token = f"bench-xmlvend-till-{number:04d}".ljust(40, "x")


def setup_vendor(db: str, tills: int, needed: Decimal) -> int:
    """The bench's vendor with at least ``tills`` active terminals and at
    least ``needed`` available on its float (topped up when short); its id"""
    from trytond.transaction import Transaction, TransactionError

    extras: dict = {}
    while True:  # restart with the locks trytond asks for (the top-up's post)
        with Transaction().start(db, 0, **extras) as transaction:
            try:
                vendor_id = _vendor(transaction, tills, needed)
            except TransactionError as exc:
                transaction.rollback()
                exc.fix(extras)
                continue
            transaction.commit()
            return vendor_id


def _vendor(transaction, tills: int, needed: Decimal) -> int:
    "setup_vendor in transaction"
    from trytond.modules.prepaid_vendor_portal.vendor_float import top_up
    from trytond.pool import Pool

    pool = Pool()
    Company = pool.get("company.company")
    Vendor = pool.get("prepaid.vendor")
    Outlet = pool.get("prepaid.vendor.outlet")
    Terminal = pool.get("prepaid.vendor.terminal")
    Position = pool.get("prepaid.vendor.float")
    (company,) = Company.search([], limit=1)
    with transaction.set_context(company=company.id):
        config = pool.get("prepaid.configuration")(1)
        vendors = Vendor.search([("code", "=", VENDOR_CODE)])
        if vendors:
            (vendor,) = vendors
            (outlet,) = Outlet.search([("vendor", "=", vendor.id)], limit=1)
        else:
            party = pool.get("party.party")(name="Bench Bank")
            party.save()
            # The float account of the fixtures: the payable account
            # with a party (the vending configuration's prepayments).
            vendor = Vendor(name="Bench Bank", code=VENDOR_CODE, party=party,
                float_account=config.prepayment_account)  # fmt: skip
            vendor.save()
            outlet = Outlet(vendor=vendor, name="Head Office", code="BENCH-B1")
            outlet.save()
            Vendor.activate([vendor])
            Outlet.activate([outlet])
        existing = {
            t.terminal_id for t in Terminal.search([("outlet", "=", outlet.id)])
        }
        new = []
        for number in range(tills):
            till = Till(number)
            if till.terminal_id in existing:
                continue
            terminal = Terminal(outlet=outlet, name=f"Till {number}",
                client_id=till.client_id, terminal_id=till.terminal_id)  # fmt: skip
            terminal.api_token = till.token
            new.append(terminal)
        if new:
            Terminal.save(new)
            Terminal.activate(new)
        available = Position.positions([vendor])[vendor.id].available
        if available < needed:
            top_up(vendor, needed - available, config.bank_account,
                dt.date.today(), "bench float")  # fmt: skip
    return vendor.id


def float_available(db: str, vendor_id: int) -> Decimal:
    "What the vendor may still sell (the committed position)"
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    with Transaction().start(db, 0, readonly=True):
        pool = Pool()
        vendor = pool.get("prepaid.vendor")(vendor_id)
        return pool.get("prepaid.vendor.float").positions([vendor])[vendor_id].available


def counters(db: str, vendor_id: int) -> dict:
    """The vendor's sales so far (count, tender, commission at sale) and its
    draws given back"""
    import psycopg

    with psycopg.connect(vend.PG + db, autocommit=True) as conn:
        sales, tender, commission = conn.execute(
            "SELECT count(*), coalesce(sum(v.tender), 0),"
            " coalesce(sum(s.commission), 0) FROM prepaid_vendor_sale s"
            " JOIN prepaid_vend v ON v.id = s.vend WHERE s.vendor = %s",
            (vendor_id,),
        ).fetchone()
        (released,) = conn.execute(
            "SELECT count(*) FROM prepaid_vendor_float_reservation"
            " WHERE vendor = %s AND state = 'released'",
            (vendor_id,),
        ).fetchone()
    return {"sales": sales, "tender": Decimal(tender),
        "commission": Decimal(commission), "released": released}  # fmt: skip


def retry_log() -> str:
    """A logging configuration for gunicorn's trytond (TRYTOND_LOGGING_CONFIG)
    writing the retries of the routes' requests (the XMLVend route's: the
    only debug line of trytond.protocols.wrappers) and the errors to a file
    of their own (``restarts``); its path.  The JSON-RPC dispatcher's retries are not
    counted: its debug level logs every call and its result."""
    path = os.path.join(tempfile.gettempdir(), "bench_xmlvend_retries.log")
    open(path, "w").close()
    conf = path + ".conf"
    with open(conf, "w") as f:
        f.write(
            "[formatters]\nkeys=simple\n[handlers]\nkeys=file\n"
            "[loggers]\nkeys=root,wrappers\n"
            "[formatter_simple]\nformat=%(asctime)s %(levelname)s %(name)s"
            " %(message)s\n[handler_file]\nclass=FileHandler\n"
            f"formatter=simple\nargs=({path!r}, 'a')\n"
            "[logger_root]\nlevel=ERROR\nhandlers=file\n"
            "[logger_wrappers]\nlevel=DEBUG\nhandlers=file\npropagate=0\n"
            "qualname=trytond.protocols.wrappers\n"
        )
    os.environ["TRYTOND_LOGGING_CONFIG"] = conf
    return path


def restarts(path: str) -> int:
    """The sales interrupted so far by a database error (a serialisation
    failure, a busy meter or float): trytond's "Retry" lines and the XMLVend
    core's "failed" lines (it logs every exception it turns into a fault,
    and the route then raises the database's to restart the transaction;
    a restart by TransactionError, as MeterBusy, trytond does not log).
    The SystemEx faults the tills saw are among the "failed" lines."""
    with open(path) as f:
        return sum(" Retry: " in line or " failed (reference " in line for line in f)


def wait_queue(db: str, seconds: int = 120) -> None:
    "Let the trytond-worker finish the queued tasks (the booking) first"
    import psycopg

    with psycopg.connect(vend.PG + db, autocommit=True) as conn:
        for _ in range(seconds):
            (left,) = conn.execute(
                "SELECT count(*) FROM ir_queue WHERE finished_at IS NULL"
            ).fetchone()
            if not left:
                return
            time.sleep(1)
    print(f"(queue: {left} tasks still pending after {seconds} s)")


def envelope(till: Till, serial: str, stamp: str, unique: int) -> bytes:
    "A credit vend of AMOUNT on serial from till, msgID (stamp, unique), SOAP 1.1"
    from trytond.modules.prepaid_vendor_portal import xmlvend as x

    request = x.CreditVendReq(
        client_id=x.EANDeviceID(ean=till.client_id),
        terminal_id=x.GenericDeviceID(id=till.terminal_id),
        msg_id=x.MsgID(date_time=stamp, unique_number=str(unique)),
        auth_cred=x.AuthCred(op_name="TILL", password=till.token),
        id_method=x.VendIDMethod(meter_identifier=x.MeterNumber(msno=serial)),
        purchase_value=x.PurchaseValueCurrency(
            amt=x.Currency(value=AMOUNT, symbol="R")
        ),
    )
    payload = x.encode_request(request)
    return b'<s:Envelope xmlns:s="%s"><s:Body>%s</s:Body></s:Envelope>' % (
        SOAP_ENV,
        payload,
    )


def msg_stamp() -> str:
    """The msgID dateTime of a run (to the hundred microseconds): with a
    counter per till, unique across runs (the idempotency key is the client
    ID and the msgID)"""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")[:17]


def run(url: str, tills: int, serials: list[str], vends: int) -> dict:
    "Each till sells vends // tills credit vends; prints and returns figures"
    from trytond.modules.prepaid_vendor_portal import xmlvend as x

    latencies: list[float] = []
    faults: collections.Counter = collections.Counter()
    sold: list[Decimal] = []
    stamp = msg_stamp()

    def worker(number: int) -> None:
        till, rnd = Till(number), random.Random(number)
        for unique in range(1, vends // tills + 1):
            body = envelope(till, rnd.choice(serials), stamp, unique)
            request = urllib.request.Request(url, body, method="POST")
            request.add_header("Content-Type", SOAP_11)
            request.add_header("SOAPAction", '""')
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    data = response.read()
            except urllib.error.HTTPError as exc:  # a SOAP fault is HTTP 500
                data = exc.read()
            except Exception as exc:
                faults[f"transport {type(exc).__name__}: {str(exc)[:80]}"] += 1
                continue
            elapsed = time.perf_counter() - start
            try:
                answer = x.read_response(data)
            except ValueError:
                faults[f"unreadable answer {data[:80]!r}"] += 1
                continue
            if isinstance(answer, x.ResponseFault):
                faults[f"{type(answer.fault).__name__}: {answer.reason[:80]}"] += 1
                continue
            latencies.append(elapsed)
            sold.append(answer.credit_vend_receipt.transactions.tender_amt.value)

    threads = [
        threading.Thread(target=worker, args=(i,), daemon=True) for i in range(tills)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    system = sum(n for fault, n in faults.items() if fault.startswith("SystemEx"))
    figures = {"throughput": len(latencies) / elapsed, "system": system,
        "vends": len(latencies), "faults": sum(faults.values()),
        "sold": sum(sold, Decimal(0))}  # fmt: skip
    print(f"XMLVend: tills {tills}, meters {len(serials)}, vends {len(latencies)},"
        f" faults {figures['faults']}, {elapsed:.1f} s")  # fmt: skip
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"throughput {figures['throughput']:.1f} vends/s")
        print(f"latency median {statistics.median(latencies) * 1000:.0f} ms,"
            f" p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")  # fmt: skip
    for fault, count in faults.most_common():
        print(f"fault x{count}: {fault}")
    return figures


def profile(db: str, serials: list[str], vends: int) -> None:
    """In-process (werkzeug's test client on trytond's WSGI application, one
    till, no HTTP): ms and Python CPU per sale, SQL statements per sale, and
    the cProfile top"""
    import pstats

    from trytond.wsgi import app
    from werkzeug.test import Client as TestClient

    client, till, stamp = TestClient(app), Till(0), msg_stamp()
    headers = {"Content-Type": SOAP_11, "SOAPAction": '""'}
    address = {"REMOTE_ADDR": "127.0.0.1"}
    count = iter(range(1, 10**9))

    def one(serial: str) -> None:
        body = envelope(till, serial, stamp, next(count))
        reply = client.post(f"/{db}/xmlvend", data=body, headers=headers,
            environ_base=address)  # fmt: skip
        if reply.status_code != 200:
            raise RuntimeError(reply.data[-300:])

    for serial in serials[:3]:  # warm the caches
        one(serial)
    timings, cpu, queries, profiler = vend.measure(one, serials, vends)
    print(f"{vends} XMLVend sales in-process: median"
        f" {statistics.median(timings) * 1000:.1f} ms/sale, Python CPU"
        f" {statistics.median(cpu) * 1000:.1f} ms/sale,"
        f" {sum(queries.values()) / vends:.1f} SQL statements/sale")  # fmt: skip
    for query, n in queries.most_common(25):
        print(f"{n / vends:5.1f}  {query}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="bench_xmlvend")
    parser.add_argument("--server", choices=["werkzeug", "gunicorn"],
        default="gunicorn")  # fmt: skip
    parser.add_argument("--tills", type=int, default=16)
    parser.add_argument("--vends", type=int, default=400)
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--port", type=int, default=8127)
    parser.add_argument("--workers", default="4x4",
        help="gunicorn processes x threads")  # fmt: skip
    parser.add_argument("--fresh", action="store_true",
        help="drop and rebuild the database (only one this bench created)")  # fmt: skip
    parser.add_argument("--log", default=os.devnull, help="server log file")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
        help="N sales in-process instead: time, SQL, cProfile")  # fmt: skip
    parser.add_argument("--no-compare", action="store_true",
        help="skip the same vends through the JSON-RPC path")  # fmt: skip
    args = parser.parse_args()
    if args.vends < args.tills:
        sys.exit("--vends must be at least --tills (vends // tills per till)")
    if not vend.port_free(args.port):
        sys.exit(f"port {args.port} is in use: choose another --port")
    db = args.db
    conf = os.path.join(tempfile.gettempdir(), f"bench_xmlvend_{db}.conf")
    with open(conf, "w") as f:
        f.write(f"[database]\nuri = {vend.PG}\n[web]\n"
            f"listen = 127.0.0.1:{args.port}\n"
            f"[prepaid]\nmaster_key = {vend.BENCH_MASTER_KEY}\n")  # fmt: skip
    os.environ.pop("TRYTOND_PREPAID__MASTER_KEY", None)
    serials = vend.prepare(db, args.meters, conf, args.fresh, False,
        module="prepaid_vendor_portal", owner=OWNER)  # fmt: skip
    vendor_id = setup_vendor(db, args.tills, AMOUNT * max(args.vends, args.profile) * 3)
    if args.profile:
        profile(db, serials, args.profile)
        return
    os.environ["TRYTOND_DATABASE_NAMES"] = db
    log = retry_log() if args.server == "gunicorn" else None
    with vend.serving(args.server, conf, db, args.port, args.log, args.workers,
            orm=False, queue=True) as servers:  # fmt: skip
        base = f"http://127.0.0.1:{args.port}/{db}"
        vend.wait_ready(f"{base}/rpc/", servers)
        wait_queue(db)
        start, before = float_available(db, vendor_id), counters(db, vendor_id)
        restarted_before = restarts(log) if log else 0
        print(f"server {args.server} {args.workers}, one vendor, smart meters")
        figures = run(f"{base}/xmlvend", args.tills, serials, args.vends)
        end, after = float_available(db, vendor_id), counters(db, vendor_id)
        sales = after["tender"] - before["tender"]
        commission = after["commission"] - before["commission"]
        if log:
            restarted = restarts(log) - restarted_before - figures["system"]
        else:
            restarted = "(not counted)"
        released = after["released"] - before["released"]
        print(f"server: {restarted} sales restarted after a database error,"
            f" {released} draws given back (rolled back after the draw)")  # fmt: skip
        print(f"float: start {start}, end {end}; {after['sales'] - before['sales']}"
            f" sales recorded for {sales} (answered: {figures['vends']} for"
            f" {figures['sold']}), commission at sale {commission}")  # fmt: skip
        expected = start - sales + commission
        if end != expected:
            verdict = f"FAILS by {end - expected}"
        elif sales != figures["sold"]:
            verdict = f"holds, but the tills were answered {figures['sold']}"
        else:
            verdict = "holds"
        print(f"float end = start - sales + commission: {expected}: {verdict}")
        if not args.no_compare:
            wait_queue(db)
            print(f"\nthe same through JSON-RPC (bench/vend.py), {args.tills} clients:")
            rpc = vend.run(f"{base}/rpc/", args.tills, serials, args.vends)
            if rpc:
                print(
                    f"XMLVend / JSON-RPC throughput = {figures['throughput'] / rpc:.2f}"
                )


if __name__ == "__main__":
    main()
