"""Communication settings of the head-end: endpoints and credentials.

Where the head-end connects and with which credentials is a Key Custodian or
Administrator setting, not a business parameter: whoever sets the broker
host receives the broker password (and every alarm) at the next publication.
So these settings live on their own singleton, ``prepaid.headend.communication``,
which only Key Custodians and Administrators may write (Metering Engineers
read it), rather than on the system parameters that Vending Managers edit.
Concentrator endpoints belong here too when they come.

MQTT rules:

- TLS is on by default (port 8883).  A password is never sent over plain
  TCP unless an Administrator ticks *Allow Password without TLS* (a broker
  on a private network): saving is refused, and so is connecting
  (``mqtt.client``), so settings migrated from an older release fail loudly
  in the log rather than leak.
- The CA file is a path on the server: it must resolve into one of the
  folders of ``[prepaid] tls_ca_dirs`` (default: the system's CA folders),
  be a readable regular file and hold PEM certificates only (``mqtt.cafile``).
- The password is write-only, stored encrypted with the master key; nobody
  reads the ciphertext.

Concentrators: the head-end's client certificate (public, PEM) and its
private key (write-only, stored encrypted with the master key, like the
meters' HLS keys) with which it calls them over mutual TLS.  Saving checks
that the key is the certificate's.  The concentrators' CA and its CRL are
public files named in trytond.conf (``dcu_ca``, ``dcu_crl``; see dcu.py).
"""

from __future__ import annotations

import os
import re

from sql import Column, Table
from trytond import backend, config
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSingleton, ModelSQL, ModelView, fields
from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_sts import masterkey
from trytond.modules.prepaid_vending.access import SearchGuard
from trytond.modules.prepaid_vending.limits import RangeMixin
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from .concentrator.tls import check_key_pair
from .mqtt import BrokerSettings
from .mqtt.cafile import DEFAULT_CA_DIRS, CaFileError, check_ca_file
from .mqtt.topics import LEVEL

CODES = re.compile(r'\s*(\d+\s*(,\s*\d+\s*)*)?')
_mqtt_states = {'invisible': ~Eval('mqtt_enabled')}
RANGES = {'mqtt_port': (1, 65535), 'mqtt_timeout': (0.1, 300.0)}
# Columns of the first releases, on prepaid.configuration (moved here).
MOVED_COLUMNS = (
    'mqtt_enabled',
    'mqtt_host',
    'mqtt_port',
    'mqtt_site',
    'mqtt_username',
    'mqtt_password_cipher',
    'mqtt_tls',
    'mqtt_ca_file',
    'mqtt_timeout',
    'mqtt_alarm_codes',
)


def ca_dirs() -> list[str]:
    "Folders a CA file may be taken from ([prepaid] tls_ca_dirs)"
    value = config.get('prepaid', 'tls_ca_dirs', default='')
    if not value:
        return list(DEFAULT_CA_DIRS)
    return [d for d in value.split(os.pathsep) if d]


class Communication(SearchGuard, RangeMixin, ModelSingleton, ModelSQL, ModelView):
    "Head-end communication endpoints and credentials"

    __name__ = 'prepaid.headend.communication'
    __string__ = "Communication Settings"

    mqtt_enabled = fields.Boolean(
        "Publish Alarms over MQTT",
        help="Publish new meter alarms to prepaid/<site>/alarms/<serial>.",
    )
    mqtt_host = fields.Char(
        "MQTT Broker Host", size=255, strip=True, states=_mqtt_states
    )
    mqtt_port = fields.Integer("MQTT Broker Port", states=_mqtt_states)
    mqtt_site = fields.Char(
        "MQTT Site",
        size=64,
        strip=True,
        states=_mqtt_states,
        help="Second level of the topics: prepaid/<site>/... "
        "(letters, digits, '.', '_', '-').",
    )
    mqtt_username = fields.Char("MQTT Username", size=128, states=_mqtt_states)
    mqtt_password_cipher = fields.Char(
        "Encrypted MQTT Password", readonly=True, loading='lazy'
    )
    mqtt_password = fields.Function(
        fields.Char(
            "MQTT Password",
            states=_mqtt_states,
            help="Write-only: stored encrypted with the master key.",
        ),
        'get_mqtt_password',
        setter='set_mqtt_password',
    )
    mqtt_tls = fields.Boolean(
        "MQTT over TLS",
        states=_mqtt_states,
        help="Verify the broker's certificate (usually port 8883).",
    )
    mqtt_ca_file = fields.Char(
        "MQTT CA File",
        size=1024,
        strip=True,
        states={'invisible': ~Eval('mqtt_tls')},
        help="PEM file of the CA of the broker's certificate, on the server, "
        "in one of the CA folders of the server configuration; empty: the "
        "system CAs.",
    )
    mqtt_allow_plain_password = fields.Boolean(
        "Allow Password without TLS",
        states=_mqtt_states,
        help="Administrators only: send the password to a broker over plain "
        "TCP (a broker on a private network).",
    )
    mqtt_timeout = fields.Float(
        "MQTT Timeout (s)",
        states=_mqtt_states,
        help="Longest wait for the broker (connection, acknowledgement).",
    )
    mqtt_alarm_codes = fields.Char(
        "Alarm Event Codes",
        size=255,
        states=_mqtt_states,
        help="Event-log codes published as alarms besides the alarm register, "
        "comma-separated.",
    )
    dcu_certificate = fields.Text(
        "Concentrator Client Certificate",
        help="PEM certificate the head-end presents to concentrators "
        "(issued by their CA).",
    )
    dcu_key_cipher = fields.Char(
        "Encrypted Concentrator Client Key", readonly=True, loading='lazy'
    )
    dcu_key = fields.Function(
        fields.Text(
            "Concentrator Client Key",
            help="Write-only: the PEM private key of the certificate, stored "
            "encrypted with the master key.",
        ),
        'get_dcu_key',
        setter='set_dcu_key',
    )

    @classmethod
    def __register__(cls, module_name):
        created = not backend.TableHandler.table_exist(cls._table)
        super().__register__(module_name)
        if created:
            cls._migrate_from_configuration()

    @classmethod
    def _migrate_from_configuration(cls) -> None:
        "Copy the MQTT settings kept on prepaid.configuration by older releases"
        TableHandler = backend.TableHandler
        old = 'prepaid_configuration'
        if not TableHandler.table_exist(old):
            return
        handler = TableHandler(Pool().get('prepaid.configuration'))
        columns = [c for c in MOVED_COLUMNS if handler.column_exist(c)]
        if not columns:
            return
        source, target = Table(old), cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(
            *source.select(
                *(Column(source, c) for c in columns),
                order_by=[source.id],
                limit=1,
            )
        )
        row = cursor.fetchone()
        if row is None:
            return
        cursor.execute(
            *target.insert([Column(target, c) for c in columns], [list(row)])
        )

    @classmethod
    def default_mqtt_enabled(cls):
        return False

    @classmethod
    def default_mqtt_host(cls):
        return '127.0.0.1'

    @classmethod
    def default_mqtt_port(cls):
        return 8883

    @classmethod
    def default_mqtt_site(cls):
        return 'main'

    @classmethod
    def default_mqtt_timeout(cls):
        return 5.0

    @classmethod
    def default_mqtt_alarm_codes(cls):
        # Power down, limiter, credit exhausted, token rejected, tamper
        # cleared, firmware verification failed (reading.EVENT_CODES).
        return '1,53,200,202,203,204'

    @classmethod
    def default_mqtt_tls(cls):
        return True

    @classmethod
    def default_mqtt_allow_plain_password(cls):
        return False

    @classmethod
    def setting_ranges(cls):
        return super().setting_ranges() | RANGES

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        for record in records:
            record.check_mqtt()
            if field_names is None or field_names & {
                'dcu_certificate',
                'dcu_key_cipher',
            }:
                record.check_dcu_credentials()

    def check_mqtt(self) -> None:
        if self.mqtt_site and not LEVEL.fullmatch(self.mqtt_site):
            raise ValidationError(
                gettext('prepaid_headend.msg_mqtt_site', site=self.mqtt_site)
            )
        if self.mqtt_alarm_codes and not CODES.fullmatch(self.mqtt_alarm_codes):
            raise ValidationError(
                gettext(
                    'prepaid_headend.msg_mqtt_alarm_codes', codes=self.mqtt_alarm_codes
                )
            )
        if self.mqtt_tls and self.mqtt_ca_file:
            try:
                check_ca_file(self.mqtt_ca_file, ca_dirs())
            except CaFileError as error:
                raise ValidationError(
                    gettext(
                        'prepaid_headend.msg_mqtt_ca_file',
                        path=self.mqtt_ca_file[:200],
                        error=str(error),
                    )
                ) from None
        if (
            not self.mqtt_tls
            and not self.mqtt_allow_plain_password
            and self._mqtt_password_cipher()
        ):
            raise ValidationError(gettext('prepaid_headend.msg_mqtt_plain_password'))

    def _dcu_key_cipher(self) -> str | None:
        with without_check_access():
            return self.__class__.read([self.id], ['dcu_key_cipher'])[0][
                'dcu_key_cipher'
            ]

    @classmethod
    def get_dcu_key(cls, records, name):
        return {r.id: None for r in records}  # write-only

    @classmethod
    def set_dcu_key(cls, records, name, value):
        if not value:
            return
        try:
            cipher = masterkey.encrypt(value.strip().encode('ascii') + b'\n')
        except UnicodeEncodeError:
            raise ValidationError(
                gettext('prepaid_headend.msg_dcu_credentials', error="not PEM")
            ) from None
        except masterkey.MasterKeyError as error:
            raise UserError(
                gettext('prepaid_headend.msg_master_key', error=str(error))
            ) from None
        with without_check_access():
            cls.write(list(records), {'dcu_key_cipher': cipher})

    def check_dcu_credentials(self) -> None:
        "The key, when set, is the certificate's; a certificate needs its key"
        cipher = self._dcu_key_cipher()
        if not self.dcu_certificate and not cipher:
            return
        try:
            cert, key = self.dcu_credentials()
            check_key_pair(cert, key)
        except ValueError as error:
            raise ValidationError(
                gettext('prepaid_headend.msg_dcu_credentials', error=str(error))
            ) from None

    def dcu_credentials(self) -> tuple[bytes, bytes]:
        """The head-end's certificate and private key to call concentrators,
        PEM, the key decrypted (server side only).  ValueError when either is
        missing."""
        cipher = self._dcu_key_cipher()
        if not self.dcu_certificate or not cipher:
            raise ValueError("the certificate and its private key are both needed")
        try:
            key = masterkey.decrypt(cipher)
        except masterkey.MasterKeyError as error:
            raise UserError(
                gettext('prepaid_headend.msg_master_key', error=str(error))
            ) from None
        return self.dcu_certificate.strip().encode('ascii') + b'\n', key

    def _mqtt_password_cipher(self) -> str | None:
        with without_check_access():
            return self.__class__.read([self.id], ['mqtt_password_cipher'])[0][
                'mqtt_password_cipher'
            ]

    @classmethod
    def get_mqtt_password(cls, records, name):
        return {r.id: None for r in records}  # write-only

    @classmethod
    def set_mqtt_password(cls, records, name, value):
        if not value:
            return
        try:
            cipher = masterkey.encrypt(value.encode('utf-8'))
        except masterkey.MasterKeyError as error:
            raise UserError(
                gettext('prepaid_headend.msg_master_key', error=str(error))
            ) from None
        with without_check_access():
            cls.write(list(records), {'mqtt_password_cipher': cipher})

    @property
    def mqtt_alarm_code_set(self) -> frozenset[int]:
        return frozenset(
            int(c) for c in (self.mqtt_alarm_codes or '').split(',') if c.strip()
        )

    def mqtt_broker(self) -> BrokerSettings:
        """Broker settings with the password decrypted (server side only).

        The CA file is checked again: it may have been replaced since."""
        if self.mqtt_tls and self.mqtt_ca_file:
            try:
                check_ca_file(self.mqtt_ca_file, ca_dirs())
            except CaFileError as error:
                raise UserError(
                    gettext(
                        'prepaid_headend.msg_mqtt_ca_file',
                        path=self.mqtt_ca_file[:200],
                        error=str(error),
                    )
                ) from None
        password = None
        cipher = self._mqtt_password_cipher()
        if cipher:
            try:
                password = masterkey.decrypt(cipher).decode('utf-8')
            except masterkey.MasterKeyError as error:
                raise UserError(
                    gettext('prepaid_headend.msg_master_key', error=str(error))
                ) from None
        return BrokerSettings(
            host=self.mqtt_host or '127.0.0.1',
            port=self.mqtt_port or 8883,
            username=self.mqtt_username or None,
            password=password,
            tls=bool(self.mqtt_tls),
            ca_file=self.mqtt_ca_file or None,
            timeout=self.mqtt_timeout or 5.0,
            allow_plain_password=bool(self.mqtt_allow_plain_password),
        )
