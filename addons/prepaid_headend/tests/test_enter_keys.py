"""The Enter Keys wizard: Key Custodians enter a meter's DLMS secrets without
write access on meters; the values are stored encrypted, audited by field name
only and never shown again."""

from __future__ import annotations

import json
import unittest
import uuid

from lxml import etree
from trytond.model.exceptions import AccessError, ValidationError
from trytond.model.modelview import AccessButtonError
from trytond.modules.prepaid_sts.tests import tools as sts_tools
from trytond.modules.prepaid_sts.tests.tools import create_user
from trytond.modules.prepaid_vending.tests.staff import acting_as
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module
from trytond.transaction import Transaction

# Arbitrary 16-byte keys (not meter secrets of any real device).
BLOCK_KEY = bytes(range(0x30, 0x40))
AUTH_KEY = bytes(range(0xD0, 0xE0))
PASSWORD = "Hls-Secret-1234"
CIPHER_FIELDS = (
    "hes_password_cipher",
    "hes_block_cipher_key_cipher",
    "hes_authentication_key_cipher",
)
SECRET_FIELDS = ("hes_password", "hes_block_cipher_key", "hes_authentication_key")


def make_meter():
    Meter = Pool().get("prepaid.meter")
    (meter,) = Meter.create(
        [
            {
                "serial": f"EK{uuid.uuid4().hex[:10]}",
                "kind": "smart_prepaid",
                "hes_host": "127.0.0.1",
                "hes_port": 4059,
                "hes_auth": "hls-gmac",
            }
        ]
    )
    return meter


def run_wizard(meter, start_values: dict) -> dict:
    """Open the wizard on meter as a client does, then store start_values;
    returns the start view's defaults."""
    Wizard = Pool().get("prepaid.headend.enter_keys", type="wizard")
    context = {
        "active_model": "prepaid.meter",
        "active_id": meter.id,
        "active_ids": [meter.id],
    }
    with Transaction().set_context(context):
        session_id, _, _ = Wizard.create()
        shown = Wizard.execute(session_id, {}, "start")
        Wizard.execute(session_id, {"start": start_values}, "store")
        session = Pool().get("ir.session.wizard")(session_id)
        saved = session.data
        Wizard.delete(session_id)
    return {"defaults": shown["view"]["defaults"], "session": saved}


class EnterKeysTestCase(unittest.TestCase):
    "Enter Keys wizard on the meter's Communication tab"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module("prepaid_headend")
        cls._previous_key = sts_tools.set_master_key()

    @classmethod
    def tearDownClass(cls):
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    @with_company
    def test_custodian_enters_keys_shown_only_as_set(self):
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Log = pool.get("ir.model.log")
        ModelData = pool.get("ir.model.data")
        meter = make_meter()
        custodian = create_user("ek-cust", "key_custodian")
        with acting_as(custodian):
            # No model write: the form's fields stay closed to custodians.
            with self.assertRaises(AccessError):
                Meter.write([meter], {"hes_block_cipher_key": BLOCK_KEY.hex()})
            # The button opens the wizard for custodians.
            action_id = Meter.hes_enter_keys([meter])
            self.assertEqual(
                action_id, ModelData.get_id("prepaid_headend", "wizard_enter_keys")
            )
            result = run_wizard(
                meter,
                {
                    "password": PASSWORD,
                    "block_cipher_key": BLOCK_KEY.hex().upper(),
                    # spaces between digits, as printed on key sheets
                    "authentication_key": " ".join(
                        AUTH_KEY.hex()[i : i + 4] for i in range(0, 32, 4)
                    ),
                },
            )
            self.assertEqual(result["defaults"]["entered"], "none")
            # The plaintext never reached the saved wizard session.
            for secret in (PASSWORD, BLOCK_KEY.hex(), AUTH_KEY.hex()[:8]):
                self.assertNotIn(secret.lower(), result["session"].lower())
            (values,) = Meter.read(
                [meter.id], list(SECRET_FIELDS) + ["hes_secrets_entered"]
            )
        self.assertEqual(
            values["hes_secrets_entered"],
            "password, block cipher key, authentication key",
        )
        for name in SECRET_FIELDS:
            self.assertIsNone(values[name], name)
        # The execution path decrypts exactly what was typed.
        settings = Meter(meter.id).hes_connection_settings()
        self.assertEqual(settings.block_cipher_key, BLOCK_KEY)
        self.assertEqual(settings.authentication_key, AUTH_KEY)
        self.assertEqual(Meter(meter.id)._hes_decrypt("hes_password_cipher"),
                         PASSWORD.encode())  # fmt: skip
        # The ciphertexts stay unreadable to every group.
        for group in ("key_custodian", "admin", "engineer", "manager", "operator"):
            user = create_user(f"ek-read-{group}", group)
            with acting_as(user):
                for field in CIPHER_FIELDS:
                    with self.assertRaises(AccessError, msg=(group, field)):
                        Meter.read([meter.id], [field])
        # Audit: who, when, which meter, which fields; never a value.
        Transaction()._store_log_records()
        logs = Log.search(
            [
                ("resource", "=", str(meter)),
                ("user", "=", custodian.id),
                ("event", "=", "write"),
            ]
        )
        (log,) = logs
        self.assertEqual(log.target, ",".join(sorted(SECRET_FIELDS)))
        self.assertIsNotNone(log.create_date)
        for other in Log.search([("resource", "=", str(meter))]):
            for secret in (PASSWORD, BLOCK_KEY.hex(), AUTH_KEY.hex()):
                self.assertNotIn(secret.lower(), (other.target or "").lower())

    @with_company
    def test_second_entry_keeps_untouched_secrets(self):
        Meter = Pool().get("prepaid.meter")
        meter = make_meter()
        custodian = create_user("ek-cust2", "key_custodian")
        with acting_as(custodian):
            run_wizard(meter, {"block_cipher_key": BLOCK_KEY.hex()})
            result = run_wizard(meter, {"authentication_key": AUTH_KEY.hex()})
            self.assertEqual(result["defaults"]["entered"], "block cipher key")
        settings = Meter(meter.id).hes_connection_settings()
        self.assertEqual(settings.block_cipher_key, BLOCK_KEY)
        self.assertEqual(settings.authentication_key, AUTH_KEY)

    @with_company
    def test_engineer_cannot_run_wizard(self):
        Meter = Pool().get("prepaid.meter")
        Wizard = Pool().get("prepaid.headend.enter_keys", type="wizard")
        meter = make_meter()
        engineer = create_user("ek-eng", "engineer")
        with acting_as(engineer):
            with self.assertRaises(AccessButtonError):
                Meter.hes_enter_keys([meter])
            with self.assertRaises(AccessError):
                run_wizard(meter, {"block_cipher_key": BLOCK_KEY.hex()})
            # Server side, even when the wizard is bypassed.
            with self.assertRaises(AccessError):
                Meter.hes_store_secrets(meter, {"hes_password": "harvest"})
        self.assertEqual(Meter(meter.id).hes_secrets_entered, "none")
        self.assertIsNotNone(Wizard)

    @with_company
    def test_bad_hex_refused_nothing_written(self):
        Meter = Pool().get("prepaid.meter")
        meter = make_meter()
        custodian = create_user("ek-cust3", "key_custodian")
        bad_values = [
            {"password": PASSWORD, "block_cipher_key": BLOCK_KEY.hex()[:30]},
            {"password": PASSWORD, "authentication_key": "zz" * 16},
            {"block_cipher_key": BLOCK_KEY.hex() + "00"},
            {"password": "x" * 65, "block_cipher_key": BLOCK_KEY.hex()},
        ]
        with acting_as(custodian):
            expected = [
                'key "block cipher key" must be 16 bytes written as 32 hexadecimal',
                'key "authentication key" must be 16 bytes',
                'key "block cipher key" must be 16 bytes',
                "1 to 64 bytes long \\(UTF-8\\), not 65",
            ]
            for values, message in zip(bad_values, expected, strict=True):
                with self.assertRaisesRegex(ValidationError, message, msg=values):
                    run_wizard(meter, values)
            with self.assertRaisesRegex(ValidationError, "at least one secret"):
                run_wizard(meter, {"password": "", "block_cipher_key": None})
        self.assertEqual(Meter(meter.id).hes_secrets_entered, "none")
        self.assertFalse(Meter(meter.id)._hes_has_secrets())
        self.assertIsNone(Meter(meter.id).hes_key_fingerprint)

    @with_company
    def test_button_on_communication_tab(self):
        "On the Communication tab; read-only for groups other than the two"
        Meter = Pool().get("prepaid.meter")
        readonly = {}
        for group in ("key_custodian", "admin", "engineer"):
            user = create_user(f"ek-view-{group}", group)
            with acting_as(user):
                arch = Meter.fields_view_get(view_type="form")["arch"]
            (button,) = etree.fromstring(arch).xpath(
                "//page[@id='hes_communication']//button[@name='hes_enter_keys']"
            )
            self.assertEqual(button.get("string"), "Enter Keys")
            # True: refused to the group; else the usual PYSON (inactive meter)
            states = json.loads(button.get("states"))
            readonly[group] = states.get("readonly") is True
        self.assertEqual(
            readonly, {"key_custodian": False, "admin": False, "engineer": True}
        )
