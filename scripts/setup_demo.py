"""Activate the prepaid modules in a database and load the demo utility.

Idempotent: modules already active are left alone, the company and its books are
created once, the demo data generator does nothing when its data exists, and
the sales set-up (tariffs, sales point, vending key, STS meter parameters, admin
as cashier) adds only what is missing.
"""

import argparse
import importlib
import os
import urllib.parse

from proteus import Model, Wizard
from proteus import config as pconfig

MODULES = ['prepaid_vending', 'prepaid_sts', 'prepaid_headend']


def activate(modules):
    Module = Model.get('ir.module')
    todo = Module.find([('name', 'in', modules), ('state', '!=', 'activated')])
    if todo:
        Module.click(todo, 'activate')
        Wizard('ir.module.activate_upgrade').execute('upgrade')


def load_demo_data(database):
    try:
        demo = importlib.import_module('trytond.modules.prepaid_vending.demo')
    except ImportError:
        return None
    from trytond.pool import Pool
    from trytond.transaction import Transaction, TransactionError

    extras = {}
    while True:
        with Transaction().start(database, 0, **extras) as transaction:
            try:
                counts = _load(demo, Pool())
            except TransactionError as error:
                # A table lock (e.g. journal periods) must be taken when the
                # transaction starts: roll back and start again with it.
                transaction.rollback()
                error.fix(extras)
                continue
            transaction.commit()
        return counts


def _load(demo, pool):
    from trytond.transaction import Transaction

    User = pool.get('res.user')
    (admin,) = User.search([('login', '=', 'admin')])
    with Transaction().set_context(
        company=admin.company.id, companies=[admin.company.id]
    ):
        customers = int(os.environ.get('PREPAID_DEMO_CUSTOMERS', 200))
        counts = demo.create_demo_data(customers=customers)
        counts.pop('meter_ids', None)
        # Every run: a demo database made before the sales set-up existed
        # gets it too (each step skips what exists).
        counts.update(demo.setup_demo_vending())
    return counts


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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--database', '-d', required=True)
    parser.add_argument('--config', '-c', default=os.environ.get('TRYTOND_CONFIG'))
    args = parser.parse_args()

    pconfig.set_trytond(
        database=database_uri(args.database, args.config), config_file=args.config
    )
    from trytond.modules.prepaid_vending.company_setup import setup_company

    activate(MODULES)
    setup_company()
    counts = load_demo_data(args.database)
    if counts:
        print('Demo data:', ', '.join(f'{k} {v}' for k, v in counts.items()))


if __name__ == '__main__':
    main()
