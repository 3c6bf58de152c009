"""Receipt numbers: a gapless series per sales point.

- Both backends: each sales point has its own series; vends without a sales
  point (API) keep the configured sequence.
- PostgreSQL: a vend rolled back does not consume a number; a vend at another
  sales point does not wait for a held one.
"""

import threading
import unittest
from decimal import Decimal as D
from unittest.mock import patch

from trytond import backend
from trytond.modules.prepaid_vending import locking
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


def second_sales_point(env, code='K2'):
    SalesPoint = Pool().get('prepaid.sales_point')
    point = SalesPoint(
        name=f'Kiosk {code}',
        code=code,
        kind='office',
        cash_account=env.cash,
        bank_account=env.cash,
    )
    point.save()
    return point


class VendNumberingTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_transaction()
    def test_series_per_sales_point(self):
        "HO and K2 count separately; an API vend uses the sequence"
        Vend = Pool().get('prepaid.vend')
        with with_vending() as env:
            kiosk = second_sales_point(env)

            def sell(point, key):
                return Vend.vend(
                    env.meter, D('100.00'), 'card', point, key, channel='api'
                )

            numbers = [
                sell(env.sales_point, 'n1').number,
                sell(kiosk, 'n2').number,
                sell(env.sales_point, 'n3').number,
                sell(kiosk, 'n4').number,
            ]
            self.assertEqual(
                numbers, ['HO-00000001', 'K2-00000001', 'HO-00000002', 'K2-00000002']
            )
            api = sell(None, 'n5')
            self.assertTrue(api.number.startswith('R'), api.number)
            self.assertIsNone(api.receipt_sequence)
            # Each series is the sales point's strict sequence.
            for point, code in ((env.sales_point, 'HO'), (kiosk, 'K2')):
                sequence = point.receipt_sequence
                self.assertEqual(sequence.__name__, 'ir.sequence.strict')
                self.assertEqual(sequence.prefix, f'{code}-')
                self.assertEqual(sequence.number_next, 3)

    @with_transaction()
    def test_sales_point_older_than_its_series(self):
        "A sales point without a series gets one that continues its numbers"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        SalesPoint = pool.get('prepaid.sales_point')
        with with_vending() as env:
            for key in ('o1', 'o2'):
                Vend.vend(
                    env.meter, D('100.00'), 'card', env.sales_point, key, channel='api'
                )
            # As a database upgraded from the max + 1 numbering has it.
            old = env.sales_point.receipt_sequence
            SalesPoint.write([env.sales_point], {'receipt_sequence': None})
            point = SalesPoint(env.sales_point.id)
            self.assertIsNone(point.receipt_sequence)
            vend = Vend.vend(env.meter, D('100.00'), 'card', point, 'o3', channel='api')
            self.assertEqual(vend.number, 'HO-00000003')
            self.assertNotEqual(SalesPoint(point.id).receipt_sequence, old)
            again = Vend.vend(
                env.meter, D('100.00'), 'card', point, 'o4', channel='api'
            )
            self.assertEqual(again.number, 'HO-00000004')


def vend_until_done(context, meter_id, point_id, key, restarts, hold=None):
    "The dispatcher's loop; hold (an Event) delays the commit until set"

    def vend(transaction):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        meter = pool.get('prepaid.meter')(meter_id)
        point = pool.get('prepaid.sales_point')(point_id)
        number = Vend.vend(meter, D('100.00'), 'card', point, key, channel='api').number
        if hold is not None:
            hold.wait(30)
            if hold.rollback:
                transaction.rollback()  # nothing left for dispatch to commit
        return number

    return dispatch(context, vend, restarts)


@unittest.skipUnless(
    backend.name == 'postgresql',
    'concurrent transactions need PostgreSQL (SQLite serialises every writer)',
)
class VendNumberingConcurrencyTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        drop_db()  # committed fixtures below: start from the cached template
        activate_module('prepaid_vending')

        def build():
            env = setup_vending()
            kiosk = second_sales_point(env)
            meters = [
                new_meter(f'0700000000{i}', new_point(env, f'N{i}')) for i in range(3)
            ]
            return {
                'points': [env.sales_point.id, kiosk.id],
                'meters': [m.id for m in meters],
            }

        cls.context, built = committed_vending(build)
        cls.point_ids = built['points']
        cls.meter_ids = built['meters']

    @classmethod
    def tearDownClass(cls):
        drop_db()

    def hold(self, meter_id, point_id, key, rollback):
        "A vend in a thread that keeps its locks until the returned event is set"
        event, result = threading.Event(), []
        event.rollback = rollback
        thread = threading.Thread(
            target=lambda: result.append(
                vend_until_done(self.context, meter_id, point_id, key, [], event)
            )
        )
        thread.start()
        wait_for_lock('ir_sequence_strict')  # its number is taken
        return event, thread, result

    def test_rolled_back_vend_leaves_no_gap(self):
        "A vend rolled back gives its number to the next vend; others don't wait"
        ho, kiosk = self.point_ids
        first = vend_until_done(self.context, self.meter_ids[0], ho, 'g1', [])
        event, thread, held = self.hold(self.meter_ids[1], ho, 'g2', rollback=True)
        try:
            # Another sales point sells while HO's series is held, and would
            # time out after 1 s if it waited for it.
            with patch.object(locking, 'lock_timeout', lambda: 1):
                restarts = []
                other = vend_until_done(
                    self.context, self.meter_ids[2], kiosk, 'g3', restarts
                )
            self.assertEqual(restarts, [])
            self.assertEqual(other, 'K2-00000001')
        finally:
            event.set()
            thread.join(30)
        (rolled_back,) = held
        self.assertEqual(first, 'HO-00000001')
        self.assertEqual(rolled_back, 'HO-00000002')
        after = vend_until_done(self.context, self.meter_ids[1], ho, 'g4', [])
        self.assertEqual(after, 'HO-00000002')  # the number was not consumed
        with Transaction().start(DB_NAME, 1, context=self.context):
            Vend = Pool().get('prepaid.vend')
            self.assertEqual(Vend.search([('idempotency_key', '=', 'g2')]), [])

    def test_two_vends_at_one_sales_point_get_consecutive_numbers(self):
        "The second waits for the first's commit, restarts and takes the next"
        ho, kiosk = self.point_ids
        event, thread, held = self.hold(self.meter_ids[0], kiosk, 'c1', rollback=False)
        second, restarts = [], []
        waiter = threading.Thread(
            target=lambda: second.append(
                vend_until_done(self.context, self.meter_ids[2], kiosk, 'c2', restarts)
            )
        )
        waiter.start()
        threading.Event().wait(0.5)  # the second vend is now waiting on the lock
        event.set()
        thread.join(30)
        waiter.join(60)
        (first,) = held
        (later,) = second
        prefix, number = first.rsplit('-', 1)
        self.assertEqual(prefix, 'K2')
        self.assertEqual(later, f'K2-{int(number) + 1:08d}')
