"""Activate the prepaid modules in a database and load the demo utility.

Idempotent: modules already active are left alone, the company and its books are
created once, the demo data generator does nothing when its data exists, and
the sales set-up (tariffs, sales point, system defaults, vending key, STS meter
parameters, admin as cashier) adds only what is missing.

The demo's smart meters talk to ``prepaid-meter-sim``: ``--meter-port`` points
their channels at the simulator's meters from that port on (a channel moves
only when the port changed), and ``--simulator-keys FILE`` writes the STS
decoder key of each simulated meter, for ``prepaid-meter-sim --decoder-keys``
(mode 0600: the file holds keys).
"""

import argparse
import json
import os
import urllib.parse

from proteus import Model, Wizard
from proteus import config as pconfig

MODULES = ['prepaid_vending', 'prepaid_sts', 'prepaid_headend', 'prepaid_vendor_portal']
DEFAULT_CUSTOMERS = 200


def activate(modules):
    Module = Model.get('ir.module')
    todo = Module.find([('name', 'in', modules), ('state', '!=', 'activated')])
    if todo:
        Module.click(todo, 'activate')
        Wizard('ir.module.activate_upgrade').execute('upgrade')


def load_demo_data(database, customers, meter_port):
    """Create or complete the demo data in one transaction; returns the counts
    and the simulator's table of meters (prepaid_demo.headend)."""
    from trytond.pool import Pool
    from trytond.transaction import Transaction, TransactionError

    extras = {}
    while True:
        with Transaction().start(database, 0, **extras) as transaction:
            try:
                result = _load(Pool(), customers, meter_port)
            except TransactionError as error:
                # A table lock (e.g. journal periods) must be taken when the
                # transaction starts: roll back and start again with it.
                transaction.rollback()
                error.fix(extras)
                continue
            transaction.commit()
        return result


def _load(pool, customers, meter_port):
    from trytond.transaction import Transaction

    from prepaid_demo import headend as headend_demo
    from prepaid_demo import vending as demo

    User = pool.get('res.user')
    (admin,) = User.search([('login', '=', 'admin')])
    with Transaction().set_context(
        company=admin.company.id, companies=[admin.company.id]
    ):
        counts = demo.create_demo_data(customers=customers)
        counts.pop('meter_ids', None)
        # Every run: a demo database made before the sales set-up existed
        # gets it too (each step skips what exists).
        counts.update(demo.setup_demo_vending())
        counts['meter_channels_moved'] = headend_demo.point_demo_channels(meter_port)
        simulator = headend_demo.simulator_meters(meter_port)
    return counts, simulator


def write_private(path, text):
    "Write text to path readable by its owner only, also when it exists"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, 'w', encoding='utf-8') as file:
        file.write(text)


def database_uri(name, config_file=None):
    """The database URI proteus needs: the server's own database URI with the
    database name as its path.

    proteus takes a bare name as a whole URI when ``TRYTOND_DATABASE_URI`` is
    unset (trytond then finds no backend named ``''``), so the base comes from
    trytond's configuration as the server reads it: ``TRYTOND_DATABASE__URI``,
    ``TRYTOND_DATABASE_URI``, the configuration file, ``sqlite://`` otherwise.
    """
    from trytond import config

    config.update_etc(config_file)
    base = urllib.parse.urlparse(config.get('database', 'uri'))
    if not base.scheme:
        raise SystemExit(f'database URI without a scheme: {base.geturl()!r}')
    return urllib.parse.urlunparse(base._replace(path='/' + name))


def customer_count():
    "PREPAID_DEMO_CUSTOMERS: how many customers a new demo database gets"
    text = os.environ.get('PREPAID_DEMO_CUSTOMERS') or str(DEFAULT_CUSTOMERS)
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise SystemExit(
            f'PREPAID_DEMO_CUSTOMERS must be a number from 1 to 100000, not {text!r}'
        )
    return int(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--database', '-d', required=True)
    parser.add_argument('--config', '-c', default=os.environ.get('TRYTOND_CONFIG'))
    parser.add_argument(
        '--meter-port',
        type=int,
        help='port of the first simulated meter (default: the demo channels\' 4061)',
    )
    parser.add_argument(
        '--simulator-keys',
        metavar='FILE',
        help='write the decoder key of each simulated meter to FILE (JSON)',
    )
    args = parser.parse_args()
    customers = customer_count()

    pconfig.set_trytond(
        database=database_uri(args.database, args.config), config_file=args.config
    )
    # Modules are imported once trytond is configured (proteus does it).
    from prepaid_demo.company import setup_company
    from prepaid_demo.headend import DEMO_FIRST_PORT

    activate(MODULES)
    setup_company()
    meter_port = args.meter_port or DEMO_FIRST_PORT
    counts, simulator = load_demo_data(args.database, customers, meter_port)
    print('Demo data:', ', '.join(f'{k} {v}' for k, v in counts.items()))
    if args.simulator_keys:
        keys = [meter['decoder_key'] for meter in simulator]
        write_private(args.simulator_keys, json.dumps(keys) + '\n')


if __name__ == '__main__':
    main()
