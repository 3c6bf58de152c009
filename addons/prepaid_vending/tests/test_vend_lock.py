"""The vend's meter lock and per-process caches.

- PostgreSQL: a vend that finds its meter held by another vend waits for it,
  then restarts once with the latest month position (never a failure); a vend
  held longer than the lock timeout gets a clear "meter busy" error; vends on
  other meters do not wait.
- Both backends: the cached tariff calculator and vend configuration follow
  every change of the tariff version, its lines or the configuration.
"""

import datetime as dt
import threading
import unittest
from decimal import Decimal as D
from unittest.mock import patch

from trytond import backend
from trytond.modules.prepaid_vending import locking
from trytond.modules.prepaid_vending.exceptions import VendError
from trytond.modules.prepaid_vending.locking import MeterBusy
from trytond.pool import Pool
from trytond.tests.test_tryton import (
    DB_NAME,
    activate_module,
    drop_db,
    with_transaction,
)
from trytond.transaction import Transaction

from .tools import dispatch
from .vend_fixtures import (
    committed_vending,
    new_meter,
    new_point,
    setup_vending,
    wait_for_lock,
    with_vending,
)


def vend_until_done(context, meter_id, key, restarts, hold=None):
    """The dispatcher's loop; hold (an Event) delays the commit until set."""

    def vend(transaction):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Meter = pool.get('prepaid.meter')
        vend = Vend.vend(Meter(meter_id), D('100.00'), 'card', None, key, channel='api')
        if hold is not None:
            hold.wait(30)
        return vend.id

    return dispatch(context, vend, restarts)


@unittest.skipUnless(
    backend.name == 'postgresql',
    'row locks and concurrent transactions need PostgreSQL '
    '(SQLite serialises every writer)',
)
class VendLockTestCase(unittest.TestCase):
    "Meter lock of the vend"

    @classmethod
    def setUpClass(cls):
        drop_db()  # committed fixtures below: start from the cached template
        activate_module('prepaid_vending')

        def build():
            env = setup_vending()
            meters = [
                new_meter(f'0600000000{i}', new_point(env, f'L{i}')) for i in range(3)
            ]
            return {'meters': [m.id for m in meters]}

        cls.context, built = committed_vending(build)
        cls.meter_ids = built['meters']
        # The first move of a period creates its journal period under a table
        # lock: done here so that the tests see only the meter lock.
        vend_until_done(cls.context, cls.meter_ids[2], 'lock-warm', [])

    @classmethod
    def tearDownClass(cls):
        drop_db()

    def hold_first(self, meter_id, key):
        "Start a vend on meter_id that keeps its lock until the event is set"
        hold, restarts, ids = threading.Event(), [], []
        thread = threading.Thread(
            target=lambda: ids.append(
                vend_until_done(self.context, meter_id, key, restarts, hold)
            )
        )
        thread.start()
        wait_for_lock('prepaid_meter')  # the first vend's UPDATE is done
        return hold, thread, ids

    def test_waiting_vend_restarts_with_latest_position(self):
        "A second vend on a held meter waits, restarts once, starts where it ends"
        meter = self.meter_ids[0]
        hold, first, first_ids = self.hold_first(meter, 'lock-a')
        restarts, second_ids = [], []
        second = threading.Thread(
            target=lambda: second_ids.append(
                vend_until_done(self.context, meter, 'lock-b', restarts)
            )
        )
        second.start()
        second.join(0.5)
        self.assertTrue(second.is_alive(), "the second vend must wait")
        hold.set()
        first.join(30)
        second.join(30)
        self.assertIn(MeterBusy, restarts)
        with Transaction().start(DB_NAME, 1, context=self.context):
            Vend = Pool().get('prepaid.vend')
            a, b = Vend(first_ids[0]), Vend(second_ids[0])
            self.assertEqual(b.month_kwh_before, a.month_kwh_after)
            self.assertTrue(b.meter.last_vend_date)

    def test_other_meter_does_not_wait(self):
        "A vend on another meter completes while the first meter is held"
        hold, first, _ = self.hold_first(self.meter_ids[1], 'lock-c')
        try:
            restarts = []
            vend_until_done(self.context, self.meter_ids[2], 'lock-d', restarts)
            self.assertEqual(restarts, [])
        finally:
            hold.set()
            first.join(30)

    def test_lock_timeout_is_a_clear_error(self):
        "Held longer than the lock timeout: a 'meter busy' error, nothing charged"
        meter = self.meter_ids[1]
        hold, first, _ = self.hold_first(meter, 'lock-e')
        try:
            with patch.object(locking, 'lock_timeout', lambda: 1):
                with self.assertRaises(VendError) as cm:
                    vend_until_done(self.context, meter, 'lock-f', [])
            self.assertIn('busy', str(cm.exception))
        finally:
            hold.set()
            first.join(30)
        with Transaction().start(DB_NAME, 1, context=self.context):
            Vend = Pool().get('prepaid.vend')
            self.assertEqual(Vend.search([('idempotency_key', '=', 'lock-f')]), [])


class VendCacheTestCase(unittest.TestCase):
    "Per-process caches of the vend"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_calculator_follows_version_changes(self):
        "A changed block price is used by the next quote"
        pool = Pool()
        Block = pool.get('prepaid.tariff.block')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            version = env.tariff.version_at(dt.date.today())
            before = Vend.trial(env.meter, D('100.00'), channel='api')
            (block,) = [b for b in version.blocks if b.sequence == 1]
            Block.write([block], {'price': D('2.40')})
            after = Vend.trial(env.meter, D('100.00'), channel='api')
            self.assertLess(after.units_kwh, before.units_kwh)

    @with_transaction()
    def test_vend_config_follows_configuration(self):
        "A new maximum tender applies at once"
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        Vend = pool.get('prepaid.vend')
        with with_vending() as env:
            Vend.vend(env.meter, D('200.00'), 'card', None, 'cfg-1', channel='api')
            config_ = Configuration(1)
            config_.max_vend_amount = D('150.00')
            config_.save()
            with self.assertRaises(VendError):
                Vend.vend(env.meter, D('200.00'), 'card', None, 'cfg-2', channel='api')
