"""Two utilities (companies) in one database: each meter's tokens come from
its own company's vending key, and each utility's staff act on its own meters
and see its own keys, tokens and key changes.

Both utilities have a vending key with the same SGC 201457, key revision,
key type and base date, but different key material; both have a meter with
the same serial and PAN.  A decoder key derived from the right vending key
is the proof of which key signed a token (the token's CRC checks only with
it).
"""

from __future__ import annotations

import datetime as dt
import unittest

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError, ValidationError
from trytond.modules.prepaid_sts.engine import decode_token, derive_decoder_key
from trytond.modules.prepaid_sts.verify import verify_token
from trytond.modules.prepaid_vending.tests.staff import acting_as
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction

from .tools import (
    PAN,
    VK_DKGA04,
    StsTestMixin,
    create_meter,
    create_user,
    create_vending_key,
    credit,
    utility,
)

#: Utility B's vending key: same parameters as A's, other key material.
VK_B = "0123456789abcdef0123456789abcdef01234567"


def decoder_key(vending_key_hex: str, krn: int = 1) -> bytes:
    "Decoder key of the test meter (PAN, SGC 201457, TI 01) under a vending key"
    return derive_decoder_key(
        bytes.fromhex(vending_key_hex), "04", PAN, 2, "201457", "01", krn, "14", "07"
    )


class StsCompanyTestCase(StsTestMixin, unittest.TestCase):
    "Vending keys and tokens of two utilities in one database"

    def two_utilities(self):
        """Utilities A and B, each with its key (same SGC) and meter M1."""
        a, b = utility("Utility A"), utility("Utility B")
        key_a = create_vending_key(company=a)
        key_b = create_vending_key(company=b, key=VK_B)
        meter_a = create_meter("M1", company=a)
        meter_b = create_meter("M1", company=b)
        return a, b, key_a, key_b, meter_a, meter_b

    @with_transaction()
    def test_token_signed_with_the_key_of_the_meters_company(self):
        "Same SGC in both utilities: each meter's token uses its company's key"
        Audit = Pool().get("prepaid.sts.vending_key.audit")
        a, b, key_a, key_b, meter_a, meter_b = self.two_utilities()
        now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)

        (token_a,) = meter_a.sts_issue_tokens([credit("10")], now=now)
        (token_b,) = meter_b.sts_issue_tokens([credit("10")], now=now)

        self.assertTrue(decode_token(token_a.digits, decoder_key(VK_DKGA04)).crc_ok)
        self.assertFalse(decode_token(token_a.digits, decoder_key(VK_B)).crc_ok)
        self.assertTrue(decode_token(token_b.digits, decoder_key(VK_B)).crc_ok)
        self.assertFalse(decode_token(token_b.digits, decoder_key(VK_DKGA04)).crc_ok)
        self.assertEqual((token_a.company, token_b.company), (a, b))
        uses = Audit.search([], order=[("id", "ASC")])
        self.assertEqual(
            [(u.key, u.company, u.meter) for u in uses],
            [(key_a, a, meter_a), (key_b, b, meter_b)],
        )

    @with_transaction()
    def test_no_key_in_the_meters_company(self):
        "Another utility's key with the same parameters is never borrowed"
        a = utility("Utility A")
        c = utility("Utility C")
        create_vending_key(company=a)
        meter_c = create_meter("MC", company=c)

        with self.assertRaises(UserError) as cm:
            meter_c.sts_issue_tokens([credit("5")])
        self.assertIn("Utility C", cm.exception.message)
        self.assertIn("201457", cm.exception.message)
        self.assertEqual(meter_c.sts_receive_problems(), [cm.exception.message])

    @with_transaction()
    def test_wrong_company_key_refused_even_if_passed(self):
        "Handing another company's key to a meter is refused, and not audited"
        Audit = Pool().get("prepaid.sts.vending_key.audit")
        a, b, key_a, key_b, meter_a, meter_b = self.two_utilities()

        with self.assertRaises(UserError) as cm:
            key_b.decoder_key(PAN, "01", "credit", meter_a)
        self.assertEqual(
            cm.exception.message,
            f'Vending key "{key_b.name}" belongs to Utility B: it cannot be used '
            "for meter M1 of Utility A.",
        )
        self.assertEqual(Audit.search([]), [])
        # The right pairing works and is audited.
        self.assertEqual(
            key_a.decoder_key(PAN, "01", "credit", meter_a), decoder_key(VK_DKGA04)
        )
        self.assertEqual(len(Audit.search([])), 1)

    @with_transaction()
    def test_key_unique_per_company(self):
        "Same parameters twice in one utility: refused; in another: allowed"
        a, b = utility("Utility A"), utility("Utility B")
        create_vending_key(company=a)
        with self.assertRaises(ValidationError):
            create_vending_key(company=a, key=VK_B)
        create_vending_key(company=b, key=VK_B)

    @with_transaction()
    def test_key_company_fixed(self):
        "A key never moves to another utility (it would sign its meters' tokens)"
        VendingKey = Pool().get("prepaid.sts.vending_key")
        a, b = utility("Utility A"), utility("Utility B")
        key = create_vending_key(company=a)
        with self.assertRaises(AccessError):
            VendingKey.write([key], {"company": b.id})

    @with_transaction()
    def test_other_utilitys_staff_cannot_issue_for_a_meter(self):
        "B's engineer: no engineering token, no key change for A's meter"
        pool = Pool()
        Engineering = pool.get("prepaid.sts.engineering_token", type="wizard")
        KeyChangeWizard = pool.get("prepaid.sts.key_change.wizard", type="wizard")
        Token = pool.get("prepaid.sts.token")
        a, b, key_a, key_b, meter_a, meter_b = self.two_utilities()
        create_vending_key(company=a, krn=2)
        engineer_a = create_user("engineer_a", "engineer", company=a)
        engineer_b = create_user("engineer_b", "engineer", company=b)
        engineering = {
            "meter": meter_a.id,
            "operation": "clear_tamper",
            "reason": "site visit",
        }
        key_change = {
            "meter": meter_a.id,
            "new_sgc": "201457",
            "new_krn": 2,
            "new_tariff_index": "01",
            "new_key_type": "2",
            "new_base_date": "14",
            "ken": 255,
            "reason": "key rotation",
        }

        with acting_as(engineer_b):
            session_id, _, _ = Engineering.create()
            with self.assertRaises(AccessError) as cm:
                Engineering.execute(session_id, {"start": engineering}, "issue")
            self.assertIn("Utility A", cm.exception.message)
            session_id, _, _ = KeyChangeWizard.create()
            with self.assertRaises(AccessError) as cm:
                KeyChangeWizard.execute(session_id, {"start": key_change}, "issue")
            self.assertIn("Utility A", cm.exception.message)
        self.assertEqual(Token.search([]), [])

        # A's own engineer may (the wizards are the same, the company differs).
        with acting_as(engineer_a):
            session_id, _, _ = Engineering.create()
            result = Engineering.execute(session_id, {"start": engineering}, "issue")
            session_id, _, _ = KeyChangeWizard.create()
            KeyChangeWizard.execute(session_id, {"start": key_change}, "issue")
        digits = result["view"]["defaults"]["digits"].replace(" ", "")
        self.assertTrue(decode_token(digits, decoder_key(VK_DKGA04)).crc_ok)
        self.assertEqual(
            {(t.kind, t.company) for t in Token.search([])},
            {("engineering", a), ("key_change", a)},
        )

    @with_transaction()
    def test_staff_see_only_their_utilitys_records(self):
        "Keys, key uses, tokens and key changes of B are hidden from A's staff"
        pool = Pool()
        VendingKey = pool.get("prepaid.sts.vending_key")
        Audit = pool.get("prepaid.sts.vending_key.audit")
        Token = pool.get("prepaid.sts.token")
        KeyChange = pool.get("prepaid.sts.key_change")
        a, b, key_a, key_b, meter_a, meter_b = self.two_utilities()
        create_vending_key(company=a, krn=2)
        create_vending_key(company=b, krn=2, key=VK_B)
        (token_a,) = meter_a.sts_issue_tokens([credit("1")])
        (token_b,) = meter_b.sts_issue_tokens([credit("1")])
        change_a = KeyChange.issue(meter_a, {"krn": 2}, reason="rotation")
        change_b = KeyChange.issue(meter_b, {"krn": 2}, reason="rotation")
        custodian_a = create_user("custodian_a", "key_custodian", company=a)
        manager_a = create_user("manager_a", "manager", company=a)

        with acting_as(custodian_a):
            self.assertEqual(VendingKey.search([("krn", "=", 1)]), [key_a])
            self.assertEqual({u.company for u in Audit.search([])}, {a})
            with self.assertRaises(AccessError):
                VendingKey.read([key_b.id], ["name"])
        with acting_as(manager_a):
            tokens = Token.search([("kind", "=", "credit")])
            self.assertEqual(tokens, [token_a])
            self.assertEqual(KeyChange.search([]), [change_a])
            with self.assertRaises(AccessError):
                Token.read([token_b.id], ["digits"])
            # Confirming the other utility's key change is refused too.
            with self.assertRaises(AccessError):
                KeyChange.confirm([KeyChange(change_b.id)])
        self.assertEqual(KeyChange(change_b.id).state, "pending")

    @with_transaction()
    def test_verify_looks_in_the_users_utility_only(self):
        "B's staff cannot find or decode A's token; A's staff can"
        a, b, key_a, key_b, meter_a, meter_b = self.two_utilities()
        (token,) = meter_a.sts_issue_tokens([credit("3")])
        manager_a = create_user("manager_a", "manager", company=a)
        manager_b = create_user("manager_b", "manager", company=b)

        with acting_as(manager_b):
            with self.assertRaises(UserError):  # not in B's log: a meter is needed
                verify_token(token.digits)
            with self.assertRaises(AccessError):
                verify_token(token.digits, meter_a)
            # B's own meter of the same serial does not decode it.
            self.assertFalse(verify_token(token.digits, meter_b)["crc_ok"])
        with acting_as(manager_a):
            result = verify_token(token.digits)
        self.assertEqual((result["meter"], result["log"]), (meter_a.id, token.id))
        self.assertTrue(result["crc_ok"])

    @with_transaction()
    def test_rollover_campaign_of_one_utility(self):
        "A campaign lists its utility's meters and skips another's added by hand"
        pool = Pool()
        Rollover = pool.get("prepaid.sts.rollover")
        Line = pool.get("prepaid.sts.rollover.line")
        a, b = utility("Utility A"), utility("Utility B")
        for company, key in ((a, VK_DKGA04), (b, VK_B)):
            create_vending_key(company=company, base_date="93", key=key)
            create_vending_key(company=company, krn=2, key=key)
        old_a = create_meter("OLD", company=a, base_date="93")
        old_b = create_meter("OLD", company=b, base_date="93")
        (campaign,) = Rollover.create([{"name": "Rollover A", "company": a.id}])

        Rollover.find_meters([campaign])
        self.assertEqual([line.meter for line in campaign.lines], [old_a])
        Line.create([{"campaign": campaign.id, "meter": old_b.id}])
        Rollover.issue([campaign])

        results = {
            line.meter.company: (line.result, line.skip_reason)
            for line in Rollover(campaign.id).lines
        }
        self.assertEqual(results[a], ("issued", None))
        self.assertEqual(
            results[b],
            ("skipped", "The meter belongs to another company than the campaign."),
        )
        self.assertEqual(old_b.__class__(old_b.id).sts_base_date, "93")
