"""Excel import benchmark: rows per second and peak memory.

Default: builds .xlsx workbooks of N valid rows (a customer, service point and
meter each) and times reading them and the whole import (validation and batch
writes of parties, service points, meters, installations and state history)
in one transaction, as the import job does, on SQLite in memory.  Each size
runs in a rolled-back transaction, so the sizes do not affect each other.

    .venv/bin/python bench/import_rows.py                # 1k and 10k rows
    .venv/bin/python bench/import_rows.py --rows 1000 10000 100000
    .venv/bin/python bench/import_rows.py --orm          # the ORM path
    TRYTOND_DATABASE_URI=postgresql://postgres@127.0.0.1:5432/ \\
        .venv/bin/python bench/import_rows.py            # PostgreSQL

--limits: the largest files the import accepts (issue 11 section 7), each
imported through the import job (Sheet streamed from the file, as the queued
task does) in a process of its own on a SQLite file database, printing rows/s
(wall and CPU) and the process's peak RSS (VmHWM), the figure that must stay
below 300 MB:

    .venv/bin/python bench/import_rows.py --limits                 # all three
    .venv/bin/python bench/import_rows.py --limits identical short

  identical  10,000 identical rows: every row rejected as a duplicate
  short      200,000 short rows (the mandatory columns and a category)
  maxsize    a file of the size limit: 200,000 rows of every column with
             varied text, the rows whose serial repeats are rejected

The default write path is set-based (bulk_create); --orm measures the
reference path through Model.create, 7 to 15 times slower.

Set DB_CACHE=/tmp/some-dir to reuse the activated database between runs.
Prints figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TRYTOND_DATABASE_URI', 'sqlite://')
os.environ.setdefault(
    'DB_NAME',
    ':memory:'
    if os.environ['TRYTOND_DATABASE_URI'].startswith('sqlite')
    else 'bench_import',
)
LIMIT_CASES = ('identical', 'short', 'maxsize')


def workbook(rows: int) -> bytes:
    import openpyxl
    from trytond.modules.prepaid_vending.excel_import import COLUMN_NAMES

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet('customers')
    sheet.append(list(COLUMN_NAMES))
    index = {name: i for i, name in enumerate(COLUMN_NAMES)}
    for n in range(rows):
        row: list = [None] * len(COLUMN_NAMES)
        row[index['customer_name']] = f'Customer {n}'
        row[index['national_id']] = f'{7001010000000 + n}'
        row[index['phone']] = f'+27 82 {n % 1000:03d} {n % 10000:04d}'
        row[index['category']] = 'RESIDENTIAL'
        row[index['street']] = f'{n % 400 + 1} Marula Road'
        row[index['city']] = 'Polokwane'
        row[index['latitude']] = -23.9 + (n % 100) / 10000
        row[index['longitude']] = 29.46 + (n % 100) / 10000
        row[index['transformer_code']] = f'TX-B{n % 12:02d}'
        row[index['meter_serial']] = f'B{n:010d}'
        row[index['meter_kind']] = 'sts_keypad'
        row[index['manufacturer']] = 'Hexing'
        row[index['phases']] = 1
        row[index['installed_on']] = dt.datetime(2020, 1, 1)
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def limit_workbook(case: str, max_bytes: int, max_rows: int) -> bytes:
    "The largest workbook of a case that the default limits accept"
    import openpyxl
    from trytond.modules.prepaid_vending.excel_import import COLUMN_NAMES

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet('customers')
    if case == 'identical':
        sheet.append(list(COLUMN_NAMES))
        row = [None] * len(COLUMN_NAMES)
        for name, value in {
            'customer_name': 'Thandiwe Nkosi',
            'national_id': '8001015009087',
            'category': 'RESIDENTIAL',
            'street': '12 Acacia Road',
            'city': 'Polokwane',
            'transformer_code': 'TX-B01',
            'meter_serial': '04123456789',
        }.items():
            row[COLUMN_NAMES.index(name)] = value
        for _ in range(10_000):
            sheet.append(row)
    elif case == 'short':
        header = [
            'customer_name', 'category', 'street', 'city', 'transformer_code',
            'meter_serial',
        ]  # fmt: skip
        sheet.append(header)
        for n in range(max_rows):
            sheet.append([f'C{n}', 'RESIDENTIAL', 'Main Rd', 'Tzaneen',
                          f'TX-B{n % 12:02d}', f'S{n}'])  # fmt: skip
    else:
        # Every column, varied text (it compresses like real data), as many
        # rows as fit in the size limit (measured on a sample), at most the
        # row limit.  One serial in 50 repeats an earlier one (rejected).
        sample = len(_full_rows_workbook(2000))
        rows = min(max_rows, int(max_bytes * 0.97 * 2000 / sample))
        return _full_rows_workbook(rows)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _full_rows_workbook(rows: int) -> bytes:
    import openpyxl
    from trytond.modules.prepaid_vending.excel_import import COLUMN_NAMES

    rng = random.Random(11)
    words = [
        ''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(8))
        for _ in range(5000)
    ]
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet('customers')
    sheet.append(list(COLUMN_NAMES))
    for n in range(rows):
        serial = f'M{n:09d}' if n % 50 else f'M{n // 2:09d}'
        sheet.append([
            f'{rng.choice(words).title()} {rng.choice(words).title()}',
            f'{7001010000000 + n}', None, f'+27 82 {rng.randrange(10**7):07d}',
            f'{rng.choice(words)}@{rng.choice(words)}.example', 'RESIDENTIAL',
            'en', f'{rng.randrange(1, 999)} {rng.choice(words).title()} Road',
            rng.choice(words).title(), f'{rng.randrange(10000):04d}',
            round(-23.9 + rng.random() / 10, 6), round(29.4 + rng.random() / 10, 6),
            None, f'TX-B{n % 12:02d}', serial, 'sts_keypad', None,
            rng.choice(words), rng.choice(words), 1, 1, 60, None,
            dt.datetime(2020, 1, 1), rng.randrange(100000),
        ])  # fmt: skip
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def network() -> None:
    from decimal import Decimal

    from trytond.pool import Pool

    pool = Pool()
    Substation = pool.get('prepaid.substation')
    Feeder = pool.get('prepaid.feeder')
    Transformer = pool.get('prepaid.transformer')
    (substation,) = Substation.create([{'code': 'SS-B', 'name': 'Bench'}])
    (feeder,) = Feeder.create(
        [{'code': 'FD-B', 'name': 'Bench', 'substation': substation.id}]
    )
    Transformer.create(
        [
            {
                'code': f'TX-B{i:02d}',
                'name': f'T{i}',
                'feeder': feeder.id,
                'rated_kva': Decimal(200),
            }
            for i in range(12)
        ]
    )


def in_company():
    "A new utility as the context's company: the network records need one"
    from trytond.modules.company.tests import create_company, set_company

    return set_company(create_company())


def peak_rss_mb() -> float:
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def run_limit_case(path: str) -> None:
    "In a process of its own: import the file through the job, print figures"
    from trytond.pool import Pool
    from trytond.tests.test_tryton import DB_NAME, USER, activate_module
    from trytond.transaction import Transaction

    activate_module('prepaid_vending')
    before = peak_rss_mb()
    with Transaction().start(DB_NAME, USER) as transaction, in_company():
        network()
        Job = Pool().get('prepaid.import.job')
        with open(path, 'rb') as source:
            # As the wizard does: the job holds the upload, read from it.
            job = Job(filename='bench.xlsx', file=source.read(), mode='valid')
        job.save()
        job = Job(job.id)
        wall, cpu = time.perf_counter(), time.process_time()
        Job.process([job])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        job = Job(job.id)
        figures = (
            f"{job.total_rows} {job.imported_rows} {job.rejected_rows} "
            f"{len(job.rejects or b'')} {wall:.1f} {cpu:.1f} {before:.0f} "
            f"{peak_rss_mb():.0f}"
        )
        transaction.rollback()
    print(figures)


def limits(cases: list[str]) -> None:
    from trytond.modules.prepaid_vending.excel_import.sheet import server_limits

    ceiling = server_limits()
    print(
        f"limits: {ceiling.max_rows} rows, {ceiling.megabytes} MB; "
        f"SQLite file database, one process per case, mode 'valid'"
    )
    print(
        f"{'case':>10} {'file MB':>8} {'rows':>8} {'written':>8} {'rejected':>8} "
        f"{'rejects MB':>10} {'wall s':>7} {'CPU s':>6} {'rows/s':>7} "
        f"{'CPU rows/s':>10} {'RSS start':>9} {'peak RSS':>9}"
    )
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as folder:
        env['TRYTOND_DATABASE__PATH'] = folder
        env['DB_NAME'] = 'bench_import'
        env.setdefault('DB_CACHE', os.path.join(folder, 'cache'))
        for case in cases:
            data = limit_workbook(case, ceiling.max_bytes, ceiling.max_rows)
            path = os.path.join(folder, f'{case}.xlsx')
            with open(path, 'wb') as out:
                out.write(data)
            child = subprocess.run(
                [sys.executable, __file__, '--limit-case', path],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if child.returncode:
                print(f"{case:>10} failed:\n{child.stderr[-2000:]}")
                continue
            total, written, rejected, rejects, wall, cpu, start, peak = (
                child.stdout.split()[-8:]
            )
            print(
                f"{case:>10} {len(data) / 1e6:>8.2f} {total:>8} {written:>8} "
                f"{rejected:>8} {int(rejects) / 1e6:>10.2f} {wall:>7} {cpu:>6} "
                f"{int(total) / float(wall):>7.0f} {int(total) / float(cpu):>10.0f} "
                f"{start:>9} {peak:>9}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rows', type=int, nargs='+', default=[1000, 10000])
    parser.add_argument(
        '--rounds', type=int, default=1, help="runs per size (median printed)"
    )
    parser.add_argument(
        '--orm', action='store_true', help="write through Model.create instead"
    )
    parser.add_argument(
        '--limits',
        nargs='*',
        choices=LIMIT_CASES,
        help="the largest accepted files, peak RSS (all cases if none named)",
    )
    parser.add_argument('--limit-case', help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.limit_case:
        run_limit_case(options.limit_case)
        return
    if options.limits is not None:
        limits(options.limits or list(LIMIT_CASES))
        return

    from trytond import backend
    from trytond.modules.prepaid_vending.excel_import import import_rows, read_workbook
    from trytond.tests.test_tryton import DB_NAME, USER, activate_module
    from trytond.transaction import Transaction

    started = time.perf_counter()
    activate_module('prepaid_vending')
    print(f"database ready in {time.perf_counter() - started:.1f} s")
    print(
        f"backend {backend.name}, "
        f"{'ORM (Model.create)' if options.orm else 'set-based'} write path"
    )
    print(
        f"{'rows':>8} {'file MB':>8} {'read s':>8} {'import s':>9} "
        f"{'rows/s':>8} {'read rows/s':>12} {'CPU s':>7} {'CPU rows/s':>11}"
    )
    for rows in options.rows:
        data = workbook(rows)
        reads, imports, cpus = [], [], []
        for _ in range(options.rounds):
            with Transaction().start(DB_NAME, USER) as transaction, in_company():
                network()
                started = time.perf_counter()
                cpu = time.process_time()
                header, table = read_workbook(data)
                read = time.perf_counter() - started
                result = import_rows(header, table, mode='all', orm=options.orm)
                total = time.perf_counter() - started
                # This process only (read, validation, writes), not the
                # database server's: on a busy machine the wall time
                # mostly measures the wait for a core.
                cpu = time.process_time() - cpu
                assert result.imported == rows, result.rejected[:3]
                transaction.rollback()
            reads.append(read)
            imports.append(total)
            cpus.append(cpu)
        read, total = statistics.median(reads), statistics.median(imports)
        cpu = statistics.median(cpus)
        print(
            f"{rows:>8} {len(data) / 1e6:>8.2f} {read:>8.2f} {total:>9.2f} "
            f"{rows / total:>8.0f} {rows / read:>12.0f} {cpu:>7.2f} {rows / cpu:>11.0f}"
        )


if __name__ == '__main__':
    main()
