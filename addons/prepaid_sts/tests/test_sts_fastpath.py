"""The STS writes of the fast path (token log, key-use audit, the meter's last
TID, the vend's tokens): the rows equal the ORM's for the same input, and
every path that issues tokens refuses a user outside the token issuing
groups, by the fast path and by the ORM alike."""

from __future__ import annotations

import datetime as dt
import unittest
from decimal import Decimal

from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_sts.common import TOKEN_ISSUING_GROUPS
from trytond.modules.prepaid_sts.engineering import issue_engineering_token
from trytond.modules.prepaid_vending import fastpath
from trytond.modules.prepaid_vending.tests.staff import as_new_user
from trytond.modules.prepaid_vending.tests.test_fastpath import (
    MODES,
    SameRowsAssertion,
    input_of,
    raw_row,
    rolled_back,
)
from trytond.modules.prepaid_vending.tests.vend_fixtures import (
    open_session,
    with_vending,
)
from trytond.modules.prepaid_vending.vend_pipeline import VEND_WRITE
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from .test_sts_vend import set_sts
from .tools import (
    StsTestMixin,
    create_meter,
    create_vending_key,
    credit,
)

NOW = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)


class StsFastPathTestCase(SameRowsAssertion, StsTestMixin, unittest.TestCase):
    @with_transaction()
    def test_token_log_and_audit_equal_orm_rows(self):
        "Token log and key-use audit rows: as the ORM writes them"
        pool = Pool()
        Token = pool.get("prepaid.sts.token")
        Audit = pool.get("prepaid.sts.vending_key.audit")
        create_vending_key()
        meter = create_meter()
        (token,) = meter.sts_issue_tokens([credit("10")], now=NOW)
        (audit,) = Audit.search([("meter", "=", meter.id)])
        system = fastpath.SystemWrite("test", TOKEN_ISSUING_GROUPS)
        for Model, record in ((Token, token), (Audit, audit)):
            with self.subTest(model=Model.__name__):
                self.assert_same_rows(Model, [input_of(record)], system)

    @with_transaction()
    def test_vend_tokens_equal_orm_rows(self):
        "A keypad vend's tokens (prepaid.vend.token): as the ORM writes them"
        pool = Pool()
        Vend = pool.get("prepaid.vend")
        VendToken = pool.get("prepaid.vend.token")
        with with_vending(kind="sts_keypad") as env:
            open_session(env)
            create_vending_key()
            set_sts(env.meter)
            vend = Vend.vend(env.meter, Decimal("100.00"), "cash", env.sales_point, "k")
            (token,) = VendToken.search([("vend", "=", vend.id)])
            self.assert_same_rows(VendToken, [input_of(token)], VEND_WRITE)

    @with_transaction()
    def test_last_tid_update_equal_orm(self):
        "The meter's last TID: the same row and the same refusal of a lower TID"
        Meter = Pool().get("prepaid.meter")
        create_vending_key()
        meter = create_meter()
        tids = {}
        for mode, orm in MODES.items():
            with self.subTest(mode=mode), fastpath.through_orm(orm):
                (token,) = meter.sts_issue_tokens([credit("1")], now=NOW)
                self.assertEqual(meter.sts_last_tid, token.tid)  # caches dropped
                row = raw_row(Meter, meter.id)
                self.assertEqual(row["sts_last_tid"], token.tid)
                self.assertEqual(row["write_uid"], Transaction().user)
                tids[mode] = token.tid
                # The hook the UPDATE runs: the TID never goes down.
                with self.assertRaises(AccessError):
                    fastpath.update(
                        [meter],
                        {"sts_last_tid": token.tid - 1},
                        system=fastpath.SystemWrite("test", TOKEN_ISSUING_GROUPS),
                    )
        self.assertGreater(tids["ORM"], tids["fast path"])

    @with_transaction()
    def test_every_issuing_path_refuses_other_staff(self):
        """Engineering token, key change (key audit), plain issue: refused to
        an accountant and a key custodian, in both ways of writing"""
        pool = Pool()
        KeyChange = pool.get("prepaid.sts.key_change")
        Token = pool.get("prepaid.sts.token")
        create_vending_key()
        create_vending_key(krn=2)
        meter = create_meter()
        paths = {
            "engineering token": lambda: issue_engineering_token(
                meter, "clear_tamper", "test", now=NOW
            ),
            "key change": lambda: KeyChange.issue(meter, {"krn": 2}, reason="x"),
            "token issue": lambda: meter.sts_issue_tokens([credit("1")], now=NOW),
            "decoder key audit": lambda: meter.sts_decoder_key("verify", meter),
        }
        before = Token.search_count([])
        for mode, orm in MODES.items():
            for role in ("accountant", "key_custodian"):
                for path, call in paths.items():
                    with (
                        self.subTest(mode=mode, role=role, path=path),
                        fastpath.through_orm(orm),
                        as_new_user(role),
                        self.assertRaises(AccessError) as refusal,
                        rolled_back(),
                    ):
                        call()
                    # The fast path's own check, not an earlier read refused.
                    self.assertIn("written by the system", str(refusal.exception))
        self.assertEqual(Token.search_count([]), before)
        # An engineer may (the engineering wizard's group).
        with as_new_user("engineer"):
            token = issue_engineering_token(meter, "clear_tamper", "test", now=NOW)
        self.assertEqual(token.kind, "engineering")
