"""The ``prepaid-import`` command: import a workbook of customers, service
points and meters into a database, without the web client.

    prepaid-import -c trytond.conf -d DB FILE [--mode all|valid]
        [--rejects OUT.xlsx] [--user LOGIN]
    prepaid-import [-c trytond.conf -d DB] --template OUT.xlsx
    prepaid-import -c trytond.conf -d DB --demo [--seed 8000] [--customers 200]

The column layout is documented in ``excel_import``.  The import is recorded
as an import job (visible in the back office) and runs in one transaction:
with ``--mode all`` (the default) any rejected row means nothing is written.
The file is refused before any work when it is empty, larger than the import
size limit or holds more rows than the row limit (system parameters, within the
server's ``[prepaid] import_max_megabytes`` and ``import_max_rows``).
Exit status: 0 every row imported, 2 rows were rejected (see ``--rejects``),
1 the file or the database could not be used.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

EXIT_OK, EXIT_ERROR, EXIT_REJECTED = 0, 1, 2
SHOWN_REJECTS = 20


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='prepaid-import',
        description="Import customers, service points and meters from an "
        ".xlsx or .xls workbook.",
    )
    parser.add_argument(
        '-c',
        '--config',
        dest='config',
        default=os.environ.get('TRYTOND_CONFIG'),
        help="trytond configuration file (default $TRYTOND_CONFIG)",
    )
    parser.add_argument('-d', '--database', dest='database', help="database name")
    parser.add_argument('file', nargs='?', help="workbook to import")
    parser.add_argument(
        '--mode',
        choices=['all', 'valid'],
        default='all',
        help="all: nothing is written if a row is rejected (default); "
        "valid: the valid rows are written",
    )
    parser.add_argument(
        '--rejects',
        metavar='OUT.xlsx',
        help="write the rejected rows with their reasons to this workbook",
    )
    parser.add_argument(
        '--user',
        default='admin',
        help="login of the user recorded on the import (default admin)",
    )
    parser.add_argument(
        '--template',
        metavar='OUT.xlsx',
        help="write an empty workbook with the expected columns and exit "
        "(with -d, the columns of the database's modules, e.g. STS)",
    )
    parser.add_argument(
        '--demo',
        action='store_true',
        help="create the deterministic demo data instead of importing a file",
    )
    parser.add_argument(
        '--seed', type=int, default=8000, help="seed of the demo data (default 8000)"
    )
    parser.add_argument(
        '--customers',
        type=int,
        default=200,
        help="number of demo customers (default 200)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.template and not options.database:
        from .excel_import import COLUMNS, template_workbook

        with open(options.template, 'wb') as out:
            out.write(template_workbook(COLUMNS))
        print(
            f"template written to {options.template} (columns of prepaid_vending; "
            "give -d DB for the columns of the database's modules)"
        )
        return EXIT_OK
    if not options.database:
        parser.error("-d/--database is required")
    if not options.template and not options.demo and not options.file:
        parser.error("give the workbook to import (or --template / --demo)")

    from trytond import config

    config.update_etc(options.config)
    data = b''
    if options.file and not options.template and not options.demo:
        try:
            data = _read_file(options.file)
        except (OSError, ValueError) as exception:
            print(f"prepaid-import: {exception}", file=sys.stderr)
            return EXIT_ERROR
    from trytond.exceptions import UserError
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    pool = Pool(options.database)
    try:
        with Transaction().start(options.database, 0, readonly=True):
            pool.init()
            User = pool.get('res.user')
            users = User.search([('login', '=', options.user)])
            if not users:
                print(
                    f"prepaid-import: no user with login {options.user!r}",
                    file=sys.stderr,
                )
                return EXIT_ERROR
            user_id = users[0].id
            context = User.get_preferences(context_only=True)
    except Exception as exception:  # unknown database, bad configuration
        print(f"prepaid-import: {exception}", file=sys.stderr)
        return EXIT_ERROR

    try:
        with Transaction().start(options.database, user_id, context=context):
            if options.template:
                return _template(options)
            if options.demo:
                return _demo(options)
            return _import(options, data)
    except UserError as exception:
        print(f"prepaid-import: {exception.message}", file=sys.stderr)
        return EXIT_ERROR


def _read_file(path: str) -> bytes:
    "The file's bytes, refused unread when above the server's size ceiling"
    from .excel_import.sheet import server_limits

    limit = server_limits().max_bytes
    size = os.path.getsize(path)
    if not size:
        raise ValueError(f"{path} is empty: nothing to import")
    if size > limit:
        raise ValueError(
            f"{path} is larger than the import limit of {limit >> 20} MB: "
            "split it into smaller workbooks"
        )
    with open(path, 'rb') as source:
        return source.read(limit + 1)


def _template(options: argparse.Namespace) -> int:
    from .excel_import import template_workbook

    with open(options.template, 'wb') as out:
        out.write(template_workbook())
    print(f"template written to {options.template}")
    return EXIT_OK


def _demo(options: argparse.Namespace) -> int:
    # The demo generator is not part of the module (prepaid_demo, installed
    # with the project): imported only when asked for.
    from prepaid_demo.vending import create_demo_data

    counts = create_demo_data(seed=options.seed, customers=options.customers)
    if not counts.get('created'):
        print("demo data already present: nothing done")
    else:
        print(
            ', '.join(
                f"{k}: {v}"
                for k, v in counts.items()
                if k not in {'created', 'meter_ids'}
            )
        )
    return EXIT_OK


def _import(options: argparse.Namespace, data: bytes) -> int:
    from trytond.pool import Pool

    from .excel_import import check_upload, import_limits

    Job = Pool().get('prepaid.import.job')
    # Refused before a job is recorded (empty, too large, too many rows).
    check_upload(data, import_limits())
    job = Job(filename=os.path.basename(options.file), file=data, mode=options.mode)
    job.save()
    Job.process([job])
    job = Job(job.id)
    print(
        f"job {job.id}: {job.state}; rows: {job.total_rows}, imported: "
        f"{job.imported_rows}, rejected: {job.rejected_rows}; customers: "
        f"{job.parties_created}, service points: {job.service_points_created}, "
        f"meters: {job.meters_created}"
    )
    if job.message:
        print(job.message)
    if not job.rejected_rows:
        return EXIT_OK
    if options.rejects:
        with open(options.rejects, 'wb') as out:
            out.write(job.rejects)
        print(f"rejected rows written to {options.rejects}")
    _print_rejects(job.rejects)
    return EXIT_REJECTED


def _print_rejects(data: bytes) -> None:
    import io

    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    rows = workbook.worksheets[0].iter_rows(min_row=2, values_only=True)
    for count, row in enumerate(rows):
        if count == SHOWN_REJECTS:
            print("...", file=sys.stderr)
            break
        print(f"row {row[0]}: {row[1]}", file=sys.stderr)
    workbook.close()


if __name__ == '__main__':
    sys.exit(main())
