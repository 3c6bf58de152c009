"""Excel import benchmark: rows per second on SQLite (in-memory database).

Builds an .xlsx workbook of N valid rows (a customer, service point and meter
each), then times reading the workbook and the whole import (validation and
batch writes of parties, service points, meters, installations and state
history) in one transaction, as the import job does.  Each size runs in a
rolled-back transaction, so the sizes do not affect each other.

    .venv/bin/python bench/import_rows.py                # 1k and 10k rows
    .venv/bin/python bench/import_rows.py --rows 1000 10000 100000
    .venv/bin/python bench/import_rows.py --orm          # the ORM path
    TRYTOND_DATABASE_URI=postgresql://postgres@127.0.0.1:5432/ \
        .venv/bin/python bench/import_rows.py            # PostgreSQL

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
import statistics
import time

os.environ.setdefault('TRYTOND_DATABASE_URI', 'sqlite://')
os.environ.setdefault(
    'DB_NAME',
    ':memory:'
    if os.environ['TRYTOND_DATABASE_URI'].startswith('sqlite')
    else 'bench_import',
)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rows', type=int, nargs='+', default=[1000, 10000])
    parser.add_argument(
        '--rounds', type=int, default=1, help="runs per size (median printed)"
    )
    parser.add_argument(
        '--orm', action='store_true', help="write through Model.create instead"
    )
    options = parser.parse_args()

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
        f"{'rows/s':>8} {'read rows/s':>12}"
    )
    for rows in options.rows:
        data = workbook(rows)
        reads, imports = [], []
        for _ in range(options.rounds):
            with Transaction().start(DB_NAME, USER) as transaction:
                network()
                started = time.perf_counter()
                header, table = read_workbook(data)
                read = time.perf_counter() - started
                result = import_rows(header, table, mode='all', orm=options.orm)
                total = time.perf_counter() - started
                assert result.imported == rows, result.rejected[:3]
                transaction.rollback()
            reads.append(read)
            imports.append(total)
        read, total = statistics.median(reads), statistics.median(imports)
        print(
            f"{rows:>8} {len(data) / 1e6:>8.2f} {read:>8.2f} {total:>9.2f} "
            f"{rows / total:>8.0f} {rows / read:>12.0f}"
        )


if __name__ == '__main__':
    main()
