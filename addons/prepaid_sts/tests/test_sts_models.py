"""Key store, TID allocation, token log, engineering tokens, key change,
rollover and verification, against a Tryton database.

Known answers cite their public source (see tools.py for the key material).
"""

from __future__ import annotations

import datetime as dt
import unittest
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_sts.engine import decode_token, derive_decoder_key
from trytond.modules.prepaid_sts.meter import next_tid
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from .tools import (
    PAN,
    VK_DKGA02,
    VK_DKGA04,
    StsTestMixin,
    create_meter,
    create_user,
    create_vending_key,
    credit,
    restore_master_key,
    set_master_key,
    utility,
)

UTC = dt.UTC
DK_CTSA01 = bytes.fromhex("87f3ecbb2e46b48f")  # STS 531-1-07 CTSA01 decoder key


class StsModelsTestCase(StsTestMixin, unittest.TestCase):
    "prepaid_sts models"

    # --- key store ---------------------------------------------------------

    @with_transaction()
    def test_vending_key_is_write_only(self):
        "The vending key is stored encrypted and never read back through RPC"
        VendingKey = Pool().get("prepaid.sts.vending_key")
        custodian = create_user("custodian", "key_custodian")
        key = create_vending_key()
        self.assertTrue(key.key_entered)
        self.assertIsNone(key.key)
        raw = VendingKey.read([key.id], ["key_cipher"])[0]["key_cipher"]
        self.assertNotIn("abab", raw.lower())
        transaction = Transaction()
        with (
            transaction.set_user(custodian.id),
            transaction.set_context(_check_access=True),
        ):
            self.assertEqual(VendingKey.read([key.id], ["key"])[0]["key"], None)
            with self.assertRaises(AccessError):
                VendingKey.read([key.id], ["key_cipher"])
            with self.assertRaises(AccessError):
                VendingKey.search([("key_cipher", "!=", None)])
            with self.assertRaises(AccessError):
                VendingKey.write([key], {"key_cipher": "x"})
            (values,) = VendingKey.read([key.id], ["key_entered"])
            self.assertTrue(values["key_entered"])
            # Write-once: the key cannot be replaced.
            with self.assertRaises(AccessError):
                VendingKey.write([key], {"key": VK_DKGA04})
        # The Vending Administrator has no access to the key store at all.
        with transaction.set_context(_check_access=True):
            with self.assertRaises(AccessError):
                VendingKey.search([])

    @with_transaction()
    def test_vending_key_format_and_duplicate(self):
        "A malformed key is refused without echoing it; duplicates are refused"
        from trytond.model.exceptions import ValidationError

        with self.assertRaises(ValidationError) as cm:
            create_vending_key(sgc="111111", key="abcd")
        self.assertIn("40 hexadecimal digits", str(cm.exception))
        self.assertNotIn("abcd", str(cm.exception))
        create_vending_key()
        with self.assertRaises(ValidationError):
            create_vending_key()

    @with_transaction()
    def test_vending_key_unknown_dkga(self):
        "An unknown DKGA is refused by name, not with a bare KeyError '99'"
        from trytond.model.exceptions import ValidationError

        with self.assertRaises(ValidationError) as cm:
            create_vending_key(dkga="99")
        self.assertEqual(
            cm.exception.message,
            "The key generation algorithm '99' of vending key "
            '"Test VK 201457/1/14" is not one of DKGA 02, 04.',
        )

    @with_transaction()
    def test_wrong_master_key(self):
        "A key entered under another master key cannot be used: clear error"
        from trytond.modules.prepaid_sts import masterkey

        create_vending_key()
        meter = create_meter()
        previous = set_master_key()
        try:
            with self.assertRaises(UserError) as cm:
                meter.sts_issue_tokens([credit("1")])
            self.assertIn("master key", str(cm.exception))
        finally:
            restore_master_key(previous)
        self.assertTrue(masterkey.ENV_NAME)

    @with_transaction()
    def test_key_use_is_audited(self):
        "Every decoder key derivation writes an audit line"
        Audit = Pool().get("prepaid.sts.vending_key.audit")
        key = create_vending_key()
        meter = create_meter()
        meter.sts_issue_tokens([credit("1")], now=dt.datetime(2014, 3, 1, 13, 0))
        (audit,) = Audit.search([])
        self.assertEqual(
            (audit.key, audit.meter, audit.purpose, audit.user.id),
            (key, meter, "credit", Transaction().user),
        )

    @with_transaction()
    def test_token_log_row(self):
        "The token log row as stored (written set-based): values and defaults"
        Token = Pool().get("prepaid.sts.token")
        create_vending_key()
        meter = create_meter()
        (issued,) = meter.sts_issue_tokens(
            [credit("0.1")],
            reason="R-1",
            origin=meter,
            now=dt.datetime(2014, 3, 1, 13, 0, tzinfo=UTC),
            rnd=5,
        )
        (row,) = Token.read(
            [issued.id],
            ["meter", "kind", "tid", "digits", "issued_by", "issued_at", "origin"],
        )
        self.assertEqual(
            (row["meter"], row["kind"], row["tid"], row["digits"], row["origin"]),
            (meter.id, "credit", 85740, "70630503470028726114", str(meter)),
        )
        self.assertEqual(row["issued_by"], Transaction().user)
        self.assertIsNotNone(row["issued_at"])

    @with_transaction()
    def test_missing_vending_key(self):
        "Issuing without a matching vending key says what to do"
        meter = create_meter()
        with self.assertRaises(UserError) as cm:
            meter.sts_issue_tokens([credit("1")])
        self.assertIn("key custodian", str(cm.exception))

    # --- tokens and TIDs -----------------------------------------------------

    @with_transaction()
    def test_known_answer_dkga04(self):
        "STS 531-1-07 CTSA01 step 1: 0.1 kWh, 2014-03-01 13:00, RND 5"
        create_vending_key()
        meter = create_meter()
        (token,) = meter.sts_issue_tokens(
            [credit("0.1")], now=dt.datetime(2014, 3, 1, 13, 0, tzinfo=UTC), rnd=5
        )
        self.assertEqual(token.digits, "70630503470028726114")
        self.assertEqual(token.tid, 85740)
        self.assertEqual(meter.sts_last_tid, 85740)

    @with_transaction()
    def test_known_answer_dkga02(self):
        "NectarAPI / STS 531-1-0-02 CTSA01: DKGA02, base 1993, TID 5871715"
        create_vending_key(sgc="123456", base_date="93", dkga="02", key=VK_DKGA02)
        meter = create_meter(sgc="123456", base_date="93")
        (token,) = meter.sts_issue_tokens(
            [credit("0.1")], now=dt.datetime(2004, 3, 1, 13, 55), rnd=5
        )
        self.assertEqual(token.digits, "23716100501183194197")

    def test_next_tid_rule(self):
        "This minute's TID, else last + 1; never backwards"
        self.assertEqual(next_tid(None, 100), 100)
        self.assertEqual(next_tid(99, 100), 100)
        self.assertEqual(next_tid(100, 100), 101)
        self.assertEqual(next_tid(150, 100), 151)

    @with_transaction()
    def test_tid_consecutive_within_minute(self):
        "Tokens in one minute get consecutive TIDs, strictly increasing"
        create_vending_key()
        meter = create_meter()
        t0 = dt.datetime(2014, 3, 1, 13, 0, 10, tzinfo=UTC)
        tokens = meter.sts_issue_tokens([credit("1"), credit("2")], now=t0)
        tokens += meter.sts_issue_tokens([credit("3")], now=t0)
        self.assertEqual([t.tid for t in tokens], [85740, 85741, 85742])
        # The clock moved on: the new minute's TID is used.
        (later,) = meter.sts_issue_tokens(
            [credit("1")], now=t0 + dt.timedelta(minutes=10)
        )
        self.assertEqual(later.tid, 85750)
        # The clock went back: still increasing.
        (back,) = meter.sts_issue_tokens([credit("1")], now=t0)
        self.assertEqual(back.tid, 85751)
        for token in tokens + [later, back]:
            decoded = decode_token(token.digits, DK_CTSA01, "07")
            self.assertTrue(decoded.crc_ok)
            self.assertEqual(decoded.tid, token.tid)

    @with_transaction()
    def test_tid_range_refused(self):
        "No TID past the 24-bit range: the message asks for a key change"
        Meter = Pool().get("prepaid.meter")
        create_vending_key(sgc="123456", base_date="93", dkga="02", key=VK_DKGA02)
        meter = create_meter(sgc="123456", base_date="93")
        Meter.write([meter], {"sts_last_tid": (1 << 24) - 1})
        with self.assertRaises(UserError) as cm:
            meter.sts_issue_tokens([credit("1")], now=dt.datetime(2024, 1, 1))
        self.assertIn("key change to a newer base date", str(cm.exception))
        self.assertEqual(meter.sts_last_tid, (1 << 24) - 1)

    @with_transaction()
    def test_cutover_refuses_base_1993(self):
        "After the cut-over no base-1993 token is minted"
        pool = Pool()
        Configuration = pool.get("prepaid.configuration")
        create_vending_key(sgc="123456", base_date="93", dkga="02", key=VK_DKGA02)
        meter = create_meter(sgc="123456", base_date="93")
        self.assertEqual(
            Configuration(1).sts_cutover_1993, dt.datetime(2024, 11, 24, 20, 16)
        )
        with self.assertRaises(UserError) as cm:
            meter.sts_issue_tokens([credit("1")], now=dt.datetime(2024, 11, 24, 20, 16))
        self.assertIn("TID rollover", str(cm.exception))
        # An earlier, configurable cut-over.
        config = Configuration(1)
        config.sts_cutover_1993 = dt.datetime(2024, 6, 1)
        config.save()
        with self.assertRaises(UserError):
            meter.sts_issue_tokens([credit("1")], now=dt.datetime(2024, 6, 2))
        meter.sts_issue_tokens([credit("1")], now=dt.datetime(2024, 5, 31))

    @with_transaction()
    def test_meter_pan_validated(self):
        "A PAN with a wrong check digit is refused"
        from trytond.model.exceptions import ValidationError

        with self.assertRaises(ValidationError) as cm:
            create_meter(pan="600727000000000008")
        self.assertIn("check digit", str(cm.exception))

    # --- engineering tokens --------------------------------------------------

    @with_transaction()
    def test_engineering_tokens_logged(self):
        "Class 1 and class 2 engineering tokens are issued and logged"
        from trytond.modules.prepaid_sts.engineering import issue_engineering_token

        Token = Pool().get("prepaid.sts.token")
        create_vending_key()
        meter = create_meter()
        now = dt.datetime(2014, 3, 1, 13, 0, tzinfo=UTC)
        test = issue_engineering_token(
            meter, "test", "bench test", control=0xFFFFFFFFF, mfr_code=0
        )
        # NectarAPI test vector: class 1, all 36 control bits, manufacturer 00.
        self.assertEqual(test.digits, "56493153725450313471")
        limit = issue_engineering_token(
            meter, "power_limit", "limit", watts=5000, now=now
        )
        tamper = issue_engineering_token(meter, "clear_tamper", "tamper", now=now)
        decoded = decode_token(limit.digits, DK_CTSA01, "07")
        self.assertEqual((decoded.token_class, decoded.subclass), (2, 0))
        self.assertEqual(decoded.amount, Decimal(5000))
        decoded = decode_token(tamper.digits, DK_CTSA01, "07")
        self.assertEqual((decoded.token_class, decoded.subclass), (2, 5))
        self.assertTrue(decoded.crc_ok)
        logged = Token.search([("meter", "=", meter.id)], order=[("id", "ASC")])
        self.assertEqual(
            [(t.kind, t.token_class, t.subclass, t.reason) for t in logged],
            [
                ("test", 1, 0, "bench test"),
                ("engineering", 2, 0, "limit"),
                ("engineering", 2, 5, "tamper"),
            ],
        )
        self.assertEqual([t.tid for t in logged[1:]], [85740, 85741])

    # --- key change ------------------------------------------------------------

    @with_transaction()
    def test_key_change_matches_ctsa05(self):
        "STS 531-1-07 CTSA05 step 1 (TI 01 -> 02): the same two tokens"
        KeyChange = Pool().get("prepaid.sts.key_change")
        create_vending_key()
        meter = create_meter()
        key_change = KeyChange.issue(meter, {"tariff_index": "02"}, reason="TI")
        digits = [t.digits for t in key_change.tokens]
        self.assertEqual(digits, ["06510894141453018386", "22979178279997208272"])
        self.assertEqual(key_change.state, "pending")
        self.assertEqual(meter.sts_tariff_index, "02")
        self.assertTrue(meter.sts_key_change_pending)
        # The tokens decode with the OLD key and carry the new key.
        new_key = derive_decoder_key(
            bytes.fromhex(VK_DKGA04), "04", PAN, 2, "201457", "02", 1, "14", "07"
        )
        self.assertEqual(new_key.hex(), "7f78cdd220be39b8")
        first, second = (decode_token(d, DK_CTSA01, "07") for d in digits)
        self.assertTrue(first.crc_ok and second.crc_ok)
        self.assertEqual(first.fields["nkho"] + second.fields["nklo"], new_key.hex())
        self.assertEqual(second.fields["ti"], 2)
        # Another key change while this one is pending is refused.
        with self.assertRaises(UserError):
            KeyChange.issue(meter, {"krn": 2})
        KeyChange.confirm([key_change])
        self.assertEqual(key_change.state, "confirmed")

    @with_transaction()
    def test_key_change_sgc_three_tokens_and_cancel(self):
        "An SGC change gives 3 tokens; cancelling restores the old parameters"
        KeyChange = Pool().get("prepaid.sts.key_change")
        create_vending_key()
        create_vending_key(sgc="123456", krn=2)
        meter = create_meter()
        meter.sts_issue_tokens([credit("1")], now=dt.datetime(2014, 3, 1, 13, 0))
        key_change = KeyChange.issue(meter, {"sgc": "123456", "krn": 2})
        self.assertEqual([t.subclass for t in key_change.tokens], [3, 4, 8])
        third = decode_token(key_change.tokens[2].digits, DK_CTSA01, "07")
        self.assertTrue(third.crc_ok)
        KeyChange.cancel([key_change])
        self.assertEqual(
            (meter.sts_sgc, meter.sts_krn, meter.sts_last_tid),
            ("201457", 1, 85740),
        )

    @with_transaction()
    def test_key_change_wizard(self):
        "The Update Meter Key wizard shows the tokens in entry order"
        pool = Pool()
        Wizard = pool.get("prepaid.sts.key_change.wizard", type="wizard")
        create_vending_key()
        create_vending_key(krn=2)
        meter = create_meter()
        with Transaction().set_context(
            active_model="prepaid.meter", active_id=meter.id
        ):
            session_id, _, _ = Wizard.create()
            wizard = Wizard(session_id)
            defaults = wizard.default_start(None)
            self.assertEqual(defaults["new_krn"], 1)
            defaults.update({"new_krn": 2, "reason": "KRN 2"})
            result = Wizard.execute(session_id, {"start": defaults}, "issue")
        tokens = result["view"]["defaults"]["tokens"].splitlines()
        self.assertEqual(len(tokens), 2)
        self.assertEqual(len(tokens[0].replace(" ", "")), 20)
        self.assertEqual(meter.sts_krn, 2)

    # --- rollover ------------------------------------------------------------

    @with_transaction()
    def test_rollover_campaign(self):
        "The campaign lists base-1993 meters and rolls them to base 2014"
        pool = Pool()
        Rollover = pool.get("prepaid.sts.rollover")
        create_vending_key(sgc="123456", base_date="93", dkga="02", key=VK_DKGA02)
        create_vending_key(sgc="123456", krn=2, base_date="14")
        old = create_meter("OLD", sgc="123456", base_date="93")
        create_meter("NEW", sgc="201457", base_date="14")
        old.sts_issue_tokens([credit("1")], now=dt.datetime(2024, 1, 1))
        (campaign,) = Rollover.create(
            [{"name": "Rollover 2024", "company": utility().id}]
        )
        Rollover.find_meters([campaign])
        self.assertEqual([line.meter.serial for line in campaign.lines], ["OLD"])
        Rollover.issue([campaign])
        self.assertEqual(campaign.state, "issued")
        (key_change,) = campaign.key_changes
        self.assertTrue(key_change.rollover)
        old_dk = derive_decoder_key(
            bytes.fromhex(VK_DKGA02), "02", PAN, 2, "123456", "01", 1, "93", "07"
        )
        first = decode_token(key_change.tokens[0].digits, old_dk, "07")
        self.assertEqual(
            (first.subclass, first.fields["ro"], first.fields["krn"]), (3, 1, 2)
        )
        self.assertEqual(
            (old.sts_base_date, old.sts_krn, old.sts_last_tid), ("14", 2, None)
        )
        # After the cut-over the rolled meter vends under base 2014.
        (token,) = old.sts_issue_tokens([credit("5")], now=dt.datetime(2025, 1, 1))
        self.assertEqual(token.base_date, "14")

    # --- verification --------------------------------------------------------

    @with_transaction()
    def test_verify_token(self):
        "A pasted token is found in the log and decoded, even after a key change"
        pool = Pool()
        KeyChange = pool.get("prepaid.sts.key_change")
        from trytond.modules.prepaid_sts.verify import verify_token

        create_vending_key()
        create_vending_key(krn=2)
        meter = create_meter()
        (token,) = meter.sts_issue_tokens(
            [credit("12.5")], now=dt.datetime(2014, 3, 1, 13, 0)
        )
        KeyChange.issue(meter, {"krn": 2})
        spaced = " ".join(token.digits[i : i + 4] for i in range(0, 20, 4))
        result = verify_token(spaced)
        self.assertEqual(result["meter"], meter.id)
        self.assertEqual(result["log"], token.id)
        self.assertTrue(result["crc_ok"])
        self.assertEqual(result["amount"], Decimal("12.5"))
        # Shown as "12.5 kWh", not "12.50000".
        self.assertEqual((result["amount_digits"], result["amount_unit"]), (1, "kWh"))
        self.assertEqual(result["tid_date"], dt.datetime(2014, 3, 1, 13, 0))
        # A token not in the log needs the meter.
        with self.assertRaises(UserError):
            verify_token("70630503470028726114")
        other = verify_token("70630503470028726114", meter)
        self.assertTrue(other["crc_ok"])
        self.assertEqual(other["tid"], 85740)
        with self.assertRaises(UserError):
            verify_token("1234", meter)

    def test_amount_format(self):
        "The decimals and unit of a token's amount follow its class"
        from trytond.modules.prepaid_sts.verify import amount_format

        for (token_class, subclass), expected in [
            ((0, 0), (1, "kWh")),
            ((0, 1), (1, "m³")),
            ((0, 4), (2, "ZAR")),
            ((0, 7), (2, "ZAR")),
            ((2, 0), (0, "W")),
            ((2, 6), (0, "W")),
            ((1, 0), (1, "")),
        ]:
            with self.subTest(token_class=token_class, subclass=subclass):
                self.assertEqual(
                    amount_format(token_class, subclass, "ZAR", 2), expected
                )
        self.assertEqual(amount_format(0, 5, "KWD", 3), (3, "KWD"))

    @with_transaction()
    def test_verify_result_amount_without_grouping_or_padding(self):
        "Verify Token: TID without thousands separators, amount with its digits"
        from lxml import etree

        Result = Pool().get("prepaid.sts.verify_token.result")
        view = Result.fields_view_get(view_type="form")
        arch = etree.fromstring(view["arch"])
        (tid,) = arch.xpath('//field[@name="tid"]')
        self.assertEqual(tid.get("grouping"), "0")
        self.assertIn("amount_digits", view["fields"]["amount"]["digits"])
        self.assertTrue(arch.xpath('//field[@name="amount_unit"]'))

    # --- access per group ----------------------------------------------------

    @with_transaction()
    def test_access_key_custodian_and_cashier(self):
        "Key custodian enters a key but cannot read it; a cashier sees no key store"
        VendingKey = Pool().get("prepaid.sts.vending_key")
        custodian = create_user("custodian", "key_custodian")
        cashier = create_user("cashier", "cashier")
        transaction = Transaction()
        with (
            transaction.set_user(custodian.id),
            transaction.set_context(_check_access=True),
        ):
            key = create_vending_key()
            self.assertTrue(VendingKey(key.id).key_entered)
            with self.assertRaises(AccessError):
                VendingKey.read([key.id], ["key_cipher"])
        with (
            transaction.set_user(cashier.id),
            transaction.set_context(_check_access=True),
        ):
            with self.assertRaises(AccessError):
                VendingKey.search([])

    @with_transaction()
    def test_access_engineering_wizard(self):
        "A metering engineer may issue engineering tokens; a cashier may not"
        Wizard = Pool().get("prepaid.sts.engineering_token", type="wizard")
        create_vending_key()
        meter = create_meter()
        engineer = create_user("engineer", "engineer")
        cashier = create_user("cashier", "cashier")
        transaction = Transaction()
        start = {
            "meter": meter.id,
            "operation": "clear_tamper",
            "reason": "site visit",
        }
        with (
            transaction.set_user(engineer.id),
            transaction.set_context(_check_access=True),
        ):
            session_id, _, _ = Wizard.create()
            result = Wizard.execute(session_id, {"start": start}, "issue")
            digits = result["view"]["defaults"]["digits"]
            self.assertEqual(len(digits.replace(" ", "")), 20)
        with (
            transaction.set_user(cashier.id),
            transaction.set_context(_check_access=True),
        ):
            with self.assertRaises(AccessError):
                session_id, _, _ = Wizard.create()
                Wizard.execute(session_id, {"start": start}, "issue")

    @with_transaction()
    def test_engineering_wizard_forged_action_id(self):
        "Issue 11 §1: a cashier's forged action_id is refused, twice over"
        Wizard = Pool().get("prepaid.sts.engineering_token", type="wizard")
        cashier = create_user("cashier", "cashier")
        session_id, _, _ = Wizard.create()
        transaction = Transaction()
        with (
            transaction.set_user(cashier.id),
            transaction.set_context(_check_access=True, action_id=999999),
        ):
            with self.assertRaises(AccessError):
                Wizard.create()
            with self.assertRaises(AccessError):
                Wizard.execute(session_id, {}, "issue")
            # The transition's own check, should the wizard's be bypassed.
            with self.assertRaises(AccessError):
                Wizard(session_id).transition_issue()

    @with_transaction()
    def test_access_token_digits(self):
        "Only reprinting groups read the digits; cashiers only their own tokens"
        Token = Pool().get("prepaid.sts.token")
        create_vending_key()
        meter = create_meter()
        cashier = create_user("cashier", "cashier")
        operator = create_user("operator", "operator")
        manager = create_user("manager", "manager")
        transaction = Transaction()
        mine = None
        with transaction.set_user(cashier.id):
            (mine,) = meter.sts_issue_tokens([credit("1")])
        (other,) = meter.sts_issue_tokens([credit("2")])
        with (
            transaction.set_user(cashier.id),
            transaction.set_context(_check_access=True),
        ):
            self.assertEqual(Token.search([]), [mine])
            (values,) = Token.read([mine.id], ["digits"])
            self.assertEqual(values["digits"], mine.digits)
        with (
            transaction.set_user(operator.id),
            transaction.set_context(_check_access=True),
        ):
            self.assertEqual(len(Token.search([])), 2)
            with self.assertRaises(AccessError):
                Token.read([other.id], ["digits"])
        with (
            transaction.set_user(manager.id),
            transaction.set_context(_check_access=True),
        ):
            self.assertEqual(len(Token.read([mine.id, other.id], ["digits"])), 2)
