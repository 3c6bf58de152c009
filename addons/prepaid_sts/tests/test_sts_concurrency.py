"""Two concurrent token issues for one meter never share a TID (PostgreSQL).

Each thread runs its own transaction, as two cashiers' requests would; both
commit.  The meter row lock (Model.lock, SELECT ... FOR UPDATE NOWAIT taken at
transaction start in Tryton 8.0, with retries) serialises them.
"""

from __future__ import annotations

import datetime as dt
import threading
import unittest
from decimal import Decimal

from trytond import backend
from trytond.modules.prepaid_sts.meter import TokenRequest
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, USER, with_transaction
from trytond.transaction import Transaction, TransactionError

from .tools import (
    StsTestMixin,
    create_meter,
    create_vending_key,
)

NOW = dt.datetime(2014, 3, 1, 13, 0, tzinfo=dt.UTC)
SGC = "555555"  # not used by the other tests, which share the database


@unittest.skipUnless(
    backend.name == "postgresql",
    "SQLite locks the whole database file: concurrent writers cannot be tested",
)
class StsConcurrencyTestCase(StsTestMixin, unittest.TestCase):
    "Concurrent TID allocation"

    def issue_in_own_transaction(self, meter_id, barrier, results, errors):
        extras: dict = {}
        barrier.wait()
        for _ in range(50):
            try:
                with Transaction().start(DB_NAME, USER, **extras) as transaction:
                    try:
                        Meter = Pool().get("prepaid.meter")
                        (token,) = Meter(meter_id).sts_issue_tokens(
                            [TokenRequest("credit", 0, 0, amount=Decimal("1"))],
                            now=NOW,
                        )
                        tid = token.tid
                    except TransactionError as error:
                        transaction.rollback()
                        error.fix(extras)
                        continue
                results.append(tid)  # committed when the with block ended
                return
            except backend.DatabaseOperationalError:
                continue  # the other transaction holds the lock: retry
        errors.append("could not get the meter lock")

    @with_transaction()
    def test_concurrent_issues_get_distinct_tids(self):
        "Both transactions commit and their TIDs differ"
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Token = pool.get("prepaid.sts.token")
        VendingKey = pool.get("prepaid.sts.vending_key")
        Audit = pool.get("prepaid.sts.vending_key.audit")
        transaction = Transaction()
        key = create_vending_key(sgc=SGC)
        meter = create_meter("PG-CONCURRENT", sgc=SGC)
        transaction.commit()
        try:
            barrier = threading.Barrier(2)
            results: list[int] = []
            errors: list[str] = []
            threads = [
                threading.Thread(
                    target=self.issue_in_own_transaction,
                    args=(meter.id, barrier, results, errors),
                )
                for _ in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            self.assertEqual(errors, [])
            self.assertEqual(sorted(results), [85740, 85741])
            tokens = Token.search([("meter", "=", meter.id)])
            self.assertEqual(sorted(t.tid for t in tokens), [85740, 85741])
            self.assertEqual(Meter(meter.id).sts_last_tid, 85741)
        finally:
            # The data was committed: remove it for the other tests.
            Token.delete(Token.search([("meter", "=", meter.id)]))
            Audit.delete(Audit.search([("key", "=", key.id)]))
            Meter.delete([meter])
            VendingKey.delete([key])
            transaction.commit()
