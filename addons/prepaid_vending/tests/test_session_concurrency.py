"""A shift closed during a vend, with real concurrent transactions
(PostgreSQL): a vend that read the shift as open before it was closed and
committed must not land in it."""

import threading
import unittest
from decimal import Decimal as D

from trytond import backend
from trytond.exceptions import UserError
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module, drop_db
from trytond.transaction import Transaction, TransactionError

from .vend_fixtures import setup_vending


def run_restarting(func, user=1, context=None, before=None):
    "The dispatcher's loop: restart on TransactionError, commit at the end"
    extras: dict = {}
    while True:
        with Transaction().start(DB_NAME, user, context=context, **extras) as tr:
            try:
                if before is not None:
                    before()
                result = func()
            except TransactionError as exc:
                tr.rollback()
                exc.fix(extras)
                before = None  # the snapshot is only stale the first time
                continue
            tr.commit()
            return result


@unittest.skipUnless(
    backend.name == 'postgresql',
    'concurrent transactions need PostgreSQL (SQLite serialises every writer)',
)
class ShiftCloseRaceTestCase(unittest.TestCase):
    "A shift closed while a vend runs"

    @classmethod
    def setUpClass(cls):
        drop_db()  # committed fixtures below
        activate_module('prepaid_vending')
        from trytond.modules.company.tests import create_company

        def fixtures():
            pool = Pool()
            User = pool.get('res.user')
            Session = pool.get('prepaid.cashier.session')
            company = create_company()
            User.write(
                [User(1)],
                {'companies': [('add', [company.id])], 'company': company.id},
            )
            with Transaction().set_context(company=company.id):
                env = setup_vending()
                session = Session.open_session(env.sales_point)
            return company.id, env.meter.id, env.sales_point.id, session.id

        company, cls.meter_id, cls.sales_point_id, cls.session_id = run_restarting(
            fixtures
        )
        cls.context = {'company': company}

    @classmethod
    def tearDownClass(cls):
        drop_db()

    def test_vend_after_close_is_refused(self):
        "The vend's snapshot saw an open shift; the close committed first"
        snapshot_taken, closed = threading.Event(), threading.Event()
        outcome: list = []

        def take_snapshot():
            # Any read fixes the repeatable-read snapshot of the vend.
            Session = Pool().get('prepaid.cashier.session')
            self.assertEqual(Session(self.session_id).state, 'open')
            snapshot_taken.set()
            closed.wait(30)

        def vend():
            pool = Pool()
            return pool.get('prepaid.vend').vend(
                pool.get('prepaid.meter')(self.meter_id),
                D('100.00'),
                'cash',
                pool.get('prepaid.sales_point')(self.sales_point_id),
                'race-1',
            )

        def vend_thread():
            try:
                outcome.append(
                    run_restarting(vend, context=self.context, before=take_snapshot)
                )
            except UserError as error:
                outcome.append(error)

        thread = threading.Thread(target=vend_thread)
        thread.start()
        snapshot_taken.wait(30)

        def close():
            Session = Pool().get('prepaid.cashier.session')
            return Session.close_session(Session(self.session_id), {})

        run_restarting(close, context=self.context)
        closed.set()
        thread.join(60)
        self.assertFalse(thread.is_alive())
        (result,) = outcome
        self.assertIsInstance(result, UserError)
        self.assertIn('shift', str(result))
        with Transaction().start(DB_NAME, 1, context=self.context):
            Vend = Pool().get('prepaid.vend')
            self.assertEqual(Vend.search_count([('session', '=', self.session_id)]), 0)
