"""``prepaid-mqtt-ingest`` on a Tryton database (the console script).

The command itself (options, signals, the batch loop) is the pure
``mqtt/cli.py``; this module gives it the database side: the storing user,
the broker settings of the head-end and a ``store`` committing each batch
(``mqtt_bridge.transactional_store``).  The trytond imports wait until the
configuration file is loaded: trytond reads the database backend from it when
``trytond.backend`` is first imported.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

from .mqtt import cli


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, open_database)


def open_database(options: argparse.Namespace):
    "The store, broker settings and site for the database named by the options"
    from trytond import config

    if options.config:
        config.update_etc(options.config)
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    from . import mqtt_bridge

    database = options.database
    if database not in Pool.database_list():
        with Transaction().start(database, 0, readonly=True):
            Pool(database).init()
    pool = Pool(database)
    with Transaction().start(database, 0, readonly=True):
        User = pool.get('res.user')
        users = User.search([('login', '=', options.user)])
        if not users:
            raise LookupError(f"no user with login {options.user!r}")
        user_id = users[0].id
        settings = pool.get('prepaid.headend.communication')(1)
        broker = settings.mqtt_broker()
        site = options.site or settings.mqtt_site or 'main'
    overrides = {
        k: v
        for k, v in (('host', options.host), ('port', options.port))
        if v is not None
    }
    if overrides:
        broker = dataclasses.replace(broker, **overrides)
    return mqtt_bridge.transactional_store(database, user_id), broker, site


if __name__ == '__main__':
    raise SystemExit(main())
