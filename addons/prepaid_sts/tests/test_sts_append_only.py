"""The STS token log and the key-use audit are append-only for everyone
(issue 11 §3): anyone who could write meters rewrote the reason, TID and
issuer of logged tokens and created fake entries; the Vending Administrator
deleted entries."""

from __future__ import annotations

import unittest

from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_vending.tests.staff import (
    STAFF_ROLES,
    acting_as,
    create_user,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction

from .tools import StsTestMixin, create_meter, create_vending_key, credit

ROLES = STAFF_ROLES


class StsAppendOnlyTestCase(StsTestMixin, unittest.TestCase):
    "Token log and key-use audit: append-only"

    @with_transaction()
    def test_token_log_and_key_audit_refuse_every_role(self):
        pool = Pool()
        User = pool.get("res.user")
        Token = pool.get("prepaid.sts.token")
        Audit = pool.get("prepaid.sts.vending_key.audit")
        create_vending_key()
        meter = create_meter()
        (token,) = meter.sts_issue_tokens([credit("10")], reason="sold")
        (audit,) = Audit.search([])
        users = {r: create_user(f"u_{r}", r) for r in ROLES}
        (users["admin user"],) = User.search([("login", "=", "admin")])
        cases = [
            (Token, token, {"reason": "forged", "tid": 1, "issued_by": None}),
            (Audit, audit, {"purpose": "engineering"}),
        ]
        for Model, record, forged in cases:
            fields = sorted(forged)
            before = Model.read([record.id], fields)
            count = Model.search_count([])
            fake = {"meter": meter.id, "kind": "credit", "token_class": 0}
            if Model is Token:
                fake.update(subclass=0, digits="1" * 20, reason="fake")
            else:
                fake = {"key": audit.key.id, "purpose": "credit"}
            for role, user in users.items():
                with self.subTest(model=Model.__name__, role=role), acting_as(user):
                    with self.assertRaises(AccessError):
                        Model.write([Model(record.id)], forged)
                    with self.assertRaises(AccessError):
                        Model.delete([Model(record.id)])
                    with self.assertRaises(AccessError):
                        Model.create([fake])
            self.assertEqual(Model.read([record.id], fields), before)
            self.assertEqual(Model.search_count([]), count)

    @with_transaction()
    def test_engineer_issues_a_logged_test_token(self):
        "The code still appends to the log for a user who may issue"
        pool = Pool()
        Token = pool.get("prepaid.sts.token")
        meter = create_meter()
        engineer = create_user("engineer", "engineer")
        with acting_as(engineer):
            token = pool.get("prepaid.meter")(meter.id).sts_issue_class1(
                0, 1, 96, reason="test"
            )
        self.assertEqual(Token(token.id).issued_by, engineer)
