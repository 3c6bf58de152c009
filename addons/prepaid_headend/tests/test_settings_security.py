"""Settings that could redirect secrets or break the platform, per role.

- Communication endpoints and credentials (MQTT) are Key Custodian or
  Administrator settings; TLS by default; no password over plain TCP unless an
  Administrator allows it; the CA file is checked (no /etc/shadow).
- A meter with secrets is moved only by a custodian or an administrator and
  its authentication is never lowered, by anyone.
- The key fingerprint is shown to custodians and administrators only.
- Every numeric setting refuses negative or absurd values with a message
  naming the setting and its range.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import unittest
import uuid
from decimal import Decimal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from trytond import config
from trytond.model.exceptions import AccessError, ValidationError
from trytond.modules.prepaid_headend.mqtt import BrokerSettings, MqttError, Publisher
from trytond.modules.prepaid_sts.tests import tools as sts_tools
from trytond.modules.prepaid_sts.tests.tools import create_user
from trytond.modules.prepaid_vending.tests.staff import (
    STAFF_ROLES,
    acting_as,
)
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module
from trytond.transaction import Transaction

BLOCK_KEY = bytes(range(0x40, 0x50))
AUTH_KEY = bytes(range(0x50, 0x60))
ROLES = STAFF_ROLES


def users() -> dict:
    tag = uuid.uuid4().hex[:6]
    return {r: create_user(f"{r}-{tag}", r) for r in ROLES}


def meter_with_keys(auth: str = "hls-gmac", **values):
    Meter = Pool().get("prepaid.meter")
    (meter,) = Meter.create(
        [
            {
                "serial": f"SS{uuid.uuid4().hex[:10]}",
                "kind": "smart_prepaid",
                "hes_host": "127.0.0.1",
                "hes_port": 4059,
                "hes_auth": auth,
                **values,
            }
        ]
    )
    secrets = {"hes_password": "Lls-Pass-1"}
    if auth == "hls-gmac":
        secrets = {
            "hes_block_cipher_key": BLOCK_KEY.hex(),
            "hes_authentication_key": AUTH_KEY.hex(),
        }
    Meter.write([meter], secrets)
    return meter


def self_signed_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Broker CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


class SettingsSecurityTestCase(unittest.TestCase):
    "Communication settings, channel moves, downgrades, fingerprint, ranges"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module("prepaid_headend")
        cls._previous_key = sts_tools.set_master_key()
        cls.ca_dir = tempfile.TemporaryDirectory()
        cls.outside = tempfile.TemporaryDirectory()
        if not config.has_section("prepaid"):
            config.add_section("prepaid")
        cls._previous_dirs = config.get("prepaid", "tls_ca_dirs", default=None)
        config.set("prepaid", "tls_ca_dirs", cls.ca_dir.name)

    @classmethod
    def tearDownClass(cls):
        config.set("prepaid", "tls_ca_dirs", cls._previous_dirs or "")
        cls.ca_dir.cleanup()
        cls.outside.cleanup()
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    def write_file(self, folder: str, name: str, data: bytes) -> str:
        path = os.path.join(folder, name)
        with open(path, "wb") as handle:
            handle.write(data)
        return path

    # --- communication settings -------------------------------------------
    @with_company
    def test_communication_settings_per_role(self):
        "Managers and the other roles cannot read or redirect the broker"
        Communication = Pool().get("prepaid.headend.communication")
        Configuration = Pool().get("prepaid.configuration")
        everyone = users()
        Communication(1).save()
        for role, user in everyone.items():
            with acting_as(user), self.subTest(role=role):
                if role in {"key_custodian", "admin"}:
                    Communication.write(
                        [Communication(1)],
                        {"mqtt_host": f"broker-{role}.example.net", "mqtt_port": 8883},
                    )
                    continue
                with self.assertRaises(AccessError):
                    Communication.write(
                        [Communication(1)], {"mqtt_host": "203.0.113.66"}
                    )
                if role == "engineer":
                    Communication.read([1], ["mqtt_host", "mqtt_tls"])
                else:
                    with self.assertRaises(AccessError):
                        Communication.read([1], ["mqtt_host"])
        # The system parameters that managers edit carry no endpoint at all.
        self.assertFalse(
            {f for f in Configuration._fields if f.startswith("mqtt_")},
        )
        self.assertEqual(Communication(1).mqtt_host, "broker-admin.example.net")

    @with_company
    def test_tls_by_default_and_no_password_in_clear(self):
        Communication = Pool().get("prepaid.headend.communication")
        everyone = users()
        settings = Communication(1)
        self.assertTrue(settings.mqtt_tls)
        self.assertEqual(settings.mqtt_port, 8883)
        settings.save()
        custodian, admin = everyone["key_custodian"], everyone["admin"]
        with acting_as(custodian):
            Communication.write(
                [settings], {"mqtt_username": "hes", "mqtt_password": "Br0ker-Pw"}
            )
            with self.assertRaisesRegex(ValidationError, "sent in clear"):
                Communication.write([settings], {"mqtt_tls": False})
            # Only an administrator may allow a password over plain TCP.
            with self.assertRaises(AccessError):
                Communication.write([settings], {"mqtt_allow_plain_password": True})
            # Nobody reads the ciphertext, custodians included.
            with self.assertRaises(AccessError):
                Communication.read([settings.id], ["mqtt_password_cipher"])
        with acting_as(admin):
            Communication.write(
                [settings], {"mqtt_allow_plain_password": True, "mqtt_tls": False}
            )
            with self.assertRaises(AccessError):
                Communication.read([settings.id], ["mqtt_password_cipher"])
        broker = Communication(settings.id).mqtt_broker()
        self.assertEqual(broker.password, "Br0ker-Pw")
        self.assertTrue(broker.allow_plain_password and not broker.tls)

    @with_company
    def test_mqtt_settings_of_older_releases_are_moved(self):
        "The broker settings kept on prepaid.configuration are carried over"
        from sql import Table
        from trytond import backend

        pool = Pool()
        Configuration = pool.get("prepaid.configuration")
        Communication = pool.get("prepaid.headend.communication")
        Configuration.write([Configuration(1)], {"reprint_count": 5})  # the row
        cursor = Transaction().connection.cursor()
        cursor.execute(*Communication.__table__().delete())
        handler = backend.TableHandler(Configuration)
        for name, kind in (("mqtt_host", "VARCHAR"), ("mqtt_port", "INTEGER")):
            if not handler.column_exist(name):
                handler.add_column(name, kind)
        old = Table(Configuration._table)
        cursor.execute(
            *old.update([old.mqtt_host, old.mqtt_port], ["broker.example.net", 1883])
        )
        Communication._migrate_from_configuration()
        settings = Communication(Communication.get_singleton().id)
        self.assertEqual(
            (settings.mqtt_host, settings.mqtt_port), ("broker.example.net", 1883)
        )

    def test_client_refuses_a_password_over_plain_tcp(self):
        "Settings that bypass the form (older data) still never leak it"
        plain = BrokerSettings("127.0.0.1", 1883, "hes", "Br0ker-Pw", timeout=0.5)
        with self.assertRaisesRegex(MqttError, "plain TCP"):
            Publisher(plain)

    @with_company
    def test_ca_file_checked(self):
        Communication = Pool().get("prepaid.headend.communication")
        settings = Communication(1)
        settings.save()
        good = self.write_file(self.ca_dir.name, "broker-ca.pem", self_signed_pem())
        outside = self.write_file(self.outside.name, "ca.pem", self_signed_pem())
        link = os.path.join(self.ca_dir.name, "link.pem")
        if not os.path.lexists(link):
            os.symlink(outside, link)
        not_pem = self.write_file(self.ca_dir.name, "notes.txt", b"hello\n")
        key = self.write_file(
            self.ca_dir.name,
            "with-key.pem",
            self_signed_pem()
            + ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        refused = {
            "/etc/shadow": "must be in one of these folders",
            outside: "must be in one of these folders",
            link: "must be in one of these folders",
            self.ca_dir.name: "not a regular file",
            os.path.join(self.ca_dir.name, "missing.pem"): "cannot read",
            not_pem: "PEM certificates only",
            key: "PEM certificates only",
            "relative/ca.pem": "absolute path",
        }
        for path, reason in refused.items():
            with self.subTest(path=path):
                with self.assertRaisesRegex(ValidationError, reason):
                    Communication.write([settings], {"mqtt_ca_file": path})
        Communication.write([settings], {"mqtt_ca_file": good})
        self.assertEqual(Communication(settings.id).mqtt_broker().ca_file, good)

    # --- meters: channel moves and downgrades --------------------------------
    @with_company
    def test_channel_of_meter_with_secrets_moved_by_custodian_only(self):
        Meter = Pool().get("prepaid.meter")
        everyone = users()
        meter = meter_with_keys()
        fresh = Meter.create([{"serial": f"NK{uuid.uuid4().hex[:8]}"}])[0]
        for role in ("operator", "engineer", "manager"):
            with acting_as(everyone[role]), self.subTest(role=role):
                with self.assertRaises(AccessError):
                    Meter.write([meter], {"hes_host": "203.0.113.5"})
                if role == "engineer":
                    # Commissioning: the channel of a meter without keys.
                    Meter.write([fresh], {"hes_host": "10.1.2.3", "hes_port": 4059})
        Wizard = Pool().get("prepaid.headend.enter_keys", type="wizard")
        context = {
            "active_model": "prepaid.meter",
            "active_id": meter.id,
            "active_ids": [meter.id],
        }
        with acting_as(everyone["engineer"], **context):
            with self.assertRaises(AccessError):  # the wizard's groups
                session_id, _, _ = Wizard.create()
                Wizard.execute(session_id, {}, "start")
            with self.assertRaises(AccessError):  # and the method's own check
                Meter.hes_move_channel(meter, "10.6.6.6", 4059)
        with acting_as(everyone["key_custodian"], **context):
            session_id, _, _ = Wizard.create()
            Wizard.execute(session_id, {}, "start")
            values = {"start": {"host": "10.9.9.9", "port": 4100}}
            Wizard.execute(session_id, values, "store")
            Wizard.delete(session_id)
        meter = Meter(meter.id)
        self.assertEqual((meter.hes_host, meter.hes_port), ("10.9.9.9", 4100))

    @with_company
    def test_authentication_never_lowered_on_a_meter_with_secrets(self):
        Meter = Pool().get("prepaid.meter")
        everyone = users()
        gmac = meter_with_keys("hls-gmac")
        md5 = meter_with_keys("hls-md5")
        for role in ("operator", "engineer", "manager", "admin"):
            with acting_as(everyone[role]), self.subTest(role=role):
                for meter, lower in ((gmac, "lls"), (gmac, "hls-md5"), (md5, "lls")):
                    if role == "admin":
                        break  # administrators have no write access on meters
                    with self.assertRaisesRegex(AccessError, "cannot be lowered"):
                        Meter.write([meter], {"hes_auth": lower})
        # Not even internally (root, scripts).
        with self.assertRaisesRegex(AccessError, "cannot be lowered"):
            Meter.write([gmac], {"hes_auth": "none"})
        # Upgrades are fine; so is any choice before secrets exist.
        Meter.write([md5], {"hes_auth": "hls-gmac"})
        (bare,) = Meter.create([{"serial": f"NA{uuid.uuid4().hex[:8]}"}])
        Meter.write([bare], {"hes_auth": "lls"})
        self.assertEqual(Meter(bare.id).hes_auth, "lls")

    @with_company
    def test_key_fingerprint_for_custodians_only(self):
        Meter = Pool().get("prepaid.meter")
        Counter = Pool().get("prepaid.headend.invocation_counter")
        everyone = users()
        meter = meter_with_keys()
        other = meter_with_keys()
        fingerprint = Meter(meter.id).hes_key_fingerprint
        self.assertTrue(fingerprint)
        Counter.take(meter.hes_counter_key)
        for role, user in everyone.items():
            with acting_as(user), self.subTest(role=role):
                allowed = role in {"key_custodian", "admin"}
                for field in ("hes_key_fingerprint", "hes_key_shared"):
                    if allowed:
                        Meter.read([meter.id], [field])
                        continue
                    if role in {"cashier", "accountant"}:
                        continue  # no meter access at all beyond their scope
                    with self.assertRaises(AccessError):
                        Meter.read([meter.id], [field])
                if not allowed and role not in {"cashier", "accountant"}:
                    # Nor found by searching or ordering on it.
                    with self.assertRaises(AccessError):
                        Meter.search([("hes_key_fingerprint", "=", fingerprint)])
                    with self.assertRaises(AccessError):
                        Meter.search([], order=[("hes_key_fingerprint", "ASC")])
                    # The meter form still opens, without the fields.
                    view = Meter.fields_view_get(view_type="form")
                    self.assertNotIn("hes_key_fingerprint", view["fields"])
                    self.assertNotIn("hes_key_shared", view["fields"])
                if allowed:
                    self.assertIn(other.serial, Meter(meter.id).hes_key_shared, role)
                    self.assertTrue(Counter.search([]))
                else:
                    with self.assertRaises(AccessError):
                        Counter.search([])

    # --- numeric settings ---------------------------------------------------
    @with_company
    def test_manager_cannot_set_a_negative_minimum_vend(self):
        Configuration = Pool().get("prepaid.configuration")
        manager = users()["manager"]
        with acting_as(manager):
            with self.assertRaisesRegex(
                ValidationError, r'"Minimum Vend Amount" must be between 0.01 and'
            ):
                Configuration.write(
                    [Configuration(1)], {"min_vend_amount": Decimal("-5")}
                )
            with self.assertRaisesRegex(ValidationError, "cannot be above"):
                Configuration.write(
                    [Configuration(1)],
                    {
                        "min_vend_amount": Decimal("500"),
                        "max_vend_amount": Decimal("100"),
                    },
                )
            Configuration.write([Configuration(1)], {"min_vend_amount": Decimal("5")})
        self.assertEqual(Configuration(1).min_vend_amount, Decimal("5"))

    @with_company
    def test_every_numeric_setting_refuses_negative_and_absurd_values(self):
        pool = Pool()
        Configuration = pool.get("prepaid.configuration")
        SalesPoint = pool.get("prepaid.sales_point")
        Communication = pool.get("prepaid.headend.communication")
        Group = pool.get("prepaid.headend.meter_group")
        Schedule = pool.get("prepaid.headend.schedule")
        LoadManagement = pool.get("prepaid.load_management")
        Period = pool.get("prepaid.load_management.period")
        Meter = pool.get("prepaid.meter")
        config = Configuration(1)
        config.save()
        Communication(1).save()
        (point,) = SalesPoint.create([{"name": "Range Office", "code": "RNG1"}])
        (group,) = Group.create([{"name": "Range group"}])
        (schedule,) = Schedule.create(
            [
                {
                    "name": "Range",
                    "group": group.id,
                    "frequency": "interval",
                    "interval_minutes": 15,
                }
            ]
        )
        (setting,) = LoadManagement.create([{"name": "Range", "normal_limit": 5000}])
        (period,) = Period.create(
            [
                {
                    "setting": setting.id,
                    "start_time": dt.time(18),
                    "end_time": dt.time(22),
                    "limit": 2000,
                }
            ]
        )
        (meter,) = Meter.create([{"serial": f"RG{uuid.uuid4().hex[:8]}"}])
        nan = float("nan")
        cases = {
            Configuration(1): {
                "min_vend_amount": [Decimal("-5"), Decimal("0"), Decimal("1e12")],
                "max_vend_amount": [Decimal("-1"), Decimal("1e12")],
                "max_kwh_per_vend": [Decimal("-1"), Decimal("0"), Decimal("1e9")],
                "reprint_count": [-1, 10**6],
                "import_queue_threshold": [0, -5, 10**9],
                "emergency_credit_amount": [Decimal("-10"), Decimal("1e12")],
                "emergency_credit_min_vends": [-1, 10**6],
                "hes_concurrency": [0, -1, 10**6, 10**12],  # > a 32-bit column
                "hes_batch_size": [0, 10**6],
                "hes_retries": [-1, 1000],
                "hes_clock_threshold": [-1.0, 0.0, nan, 1e9],
                "hes_profile_hours": [-1, 10**6],
                "hes_counter_reserve": [0, 10**7],
                "hes_job_deadline": [-1.0, 0.0, nan, 1e9],
                "hes_firmware_deadline": [-1.0, 1.0, 1e9],
            },
            point: {"max_vend_amount": [Decimal("-1"), Decimal("0")]},
            Communication(1): {
                "mqtt_port": [0, -1, 70000],
                "mqtt_timeout": [-1.0, 0.0],
            },
            schedule: {"interval_minutes": [0, -15, 10**8], "profile_hours": [-1]},
            setting: {
                "normal_limit": [-1, 10**10, 2**63],
                "emergency_limit": [-1],
                "min_over_duration": [-1, 10**7],
                "min_under_duration": [-1],
            },
            period: {"limit": [-1, 10**10]},
            meter: {
                "hes_port": [0, -1, 65536],
                "hes_client_address": [0, -1, 256],
                "hes_server_address": [0, -1, 10**6],
                "hes_timeout": [0.0, -1.0, nan, 1e6],
                "hes_deadline": [0.0, -3.0, nan, 1e6],
            },
        }
        accepted = []
        for record, fields in cases.items():
            Model = record.__class__
            for name, values in fields.items():
                label = re.escape(Model._fields[name].string)
                for value in values:
                    try:
                        Model.write([record], {name: value})
                    except ValidationError as error:
                        self.assertRegex(error.message, f'"{label}" must be between')
                    else:
                        accepted.append((Model.__name__, name, value))
        self.assertEqual(accepted, [])
        with self.assertRaisesRegex(ValidationError, "shorter than the round-trip"):
            Meter.write([meter], {"hes_timeout": 60.0, "hes_deadline": 30.0})
        Configuration.write(
            [Configuration(1)], {"hes_job_deadline": 300.0, "reprint_count": 0}
        )

    @with_company
    def test_low_credit_thresholds_and_host_syntax(self):
        pool = Pool()
        Configuration = pool.get("prepaid.configuration")
        Meter = pool.get("prepaid.meter")
        Configuration(1).save()
        for text in ("abc", "-5", "1_000", "50,20,,x", "1e30", ",".join("1" * 11)):
            with self.subTest(text=text):
                with self.assertRaisesRegex(ValidationError, "at most 10 amounts"):
                    Configuration.write(
                        [Configuration(1)], {"low_credit_thresholds": text}
                    )
        Configuration.write([Configuration(1)], {"low_credit_thresholds": "50, 20.5"})
        self.assertEqual(
            Configuration(1).get_low_credit_thresholds(),
            [Decimal("50"), Decimal("20.5")],
        )
        (meter,) = Meter.create([{"serial": f"HS{uuid.uuid4().hex[:8]}"}])
        for host in ("tcp://10.0.0.1", "10.0.0.1:4059", "a b", "-bad.example", "x/y"):
            with self.subTest(host=host):
                with self.assertRaisesRegex(ValidationError, "not an IP address"):
                    Meter.write([meter], {"hes_host": host})
        for host in ("10.0.0.1", "::1", "meter-12.grid.example.net"):
            Meter.write([meter], {"hes_host": host})
