"""MQTT bridge of the head-end: alarms out, device events in.

Outbound
    Every new ``prepaid.headend.event`` that is an alarm (the alarm register
    log, or an event code listed in *Alarm Event Codes*) is published to
    ``prepaid/<site>/alarms/<serial>`` (QoS 1) **after** the transaction
    commits: the messages are held by a data manager joined to the
    transaction and sent in its ``tpc_finish``; a rollback (``tpc_abort``)
    drops them.  The commit is never undone by a broker failure: an
    unpublished alarm is logged at ERROR level with its meter and code (the
    event itself is stored, so it can be re-sent from the event list).

Inbound
    ``prepaid-mqtt-ingest`` (``mqtt/cli.py``) subscribes to
    ``prepaid/<site>/meters/+/events`` and stores each batch of valid
    messages in one transaction with :func:`store_messages`: the meter is
    found by serial (unknown -> logged and counted, nothing written), the
    event is inserted with :func:`reading.insert_new` so the same meter / log /
    timestamp / code is stored once (a pushed event later read over DLMS is
    not doubled either), and register values carried by the message become
    register readings.

Broker settings are on the prepaid configuration; the password is
write-only and stored encrypted with the master key.  TLS: tick *TLS* and
give the CA file of the broker's certificate (PEM path on the server) or
leave it empty to use the system CAs; the port is then usually 8883.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import fields
from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_sts import masterkey
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from . import reading as rd
from .mqtt import (
    BrokerSettings,
    EventMessage,
    Inbound,
    MqttError,
    Publisher,
    encode,
)
from .mqtt.ingest import BatchResult
from .mqtt.topics import LEVEL, alarm_topic

logger = logging.getLogger(__name__)
CODES = re.compile(r'\s*(\d+\s*(,\s*\d+\s*)*)?')
_mqtt_states = {'invisible': ~Eval('mqtt_enabled')}
_mqtt_depends = ['mqtt_enabled']


class Configuration(metaclass=PoolMeta):
    __name__ = 'prepaid.configuration'

    mqtt_enabled = fields.Boolean(
        "Publish Alarms over MQTT",
        help="Publish new meter alarms to prepaid/<site>/alarms/<serial>.",
    )
    mqtt_host = fields.Char(
        "MQTT Broker Host", size=255, strip=True, states=_mqtt_states
    )
    mqtt_port = fields.Integer(
        "MQTT Broker Port",
        domain=[('mqtt_port', '>', 0), ('mqtt_port', '<', 65536)],
        states=_mqtt_states,
    )
    mqtt_site = fields.Char(
        "MQTT Site",
        size=64,
        strip=True,
        states=_mqtt_states,
        help="Second level of the topics: prepaid/<site>/... "
        "(letters, digits, '.', '_', '-').",
    )
    mqtt_username = fields.Char("MQTT Username", size=128, states=_mqtt_states)
    mqtt_password_cipher = fields.Char("Encrypted MQTT Password", readonly=True)
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
        states={'invisible': ~Eval('mqtt_tls')},
        help="PEM file of the CA of the broker's certificate, on the server; "
        "empty: the system CAs.",
    )
    mqtt_timeout = fields.Float(
        "MQTT Timeout (s)",
        domain=[('mqtt_timeout', '>', 0)],
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

    @classmethod
    def default_mqtt_enabled(cls):
        return False

    @classmethod
    def default_mqtt_host(cls):
        return '127.0.0.1'

    @classmethod
    def default_mqtt_port(cls):
        return 1883

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
        return False

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        if field_names & {'mqtt_site', 'mqtt_alarm_codes'}:
            for record in records:
                record.check_mqtt()

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
        "Broker settings with the password decrypted (server side only)"
        password = None
        with without_check_access():
            cipher = self.__class__.read([self.id], ['mqtt_password_cipher'])[0][
                'mqtt_password_cipher'
            ]
        if cipher:
            try:
                password = masterkey.decrypt(cipher).decode('utf-8')
            except masterkey.MasterKeyError as error:
                raise UserError(
                    gettext('prepaid_headend.msg_master_key', error=str(error))
                ) from None
        return BrokerSettings(
            host=self.mqtt_host or '127.0.0.1',
            port=self.mqtt_port or 1883,
            username=self.mqtt_username or None,
            password=password,
            tls=bool(self.mqtt_tls),
            ca_file=self.mqtt_ca_file or None,
            timeout=self.mqtt_timeout or 5.0,
        )


class Event(metaclass=PoolMeta):
    __name__ = 'prepaid.headend.event'

    source = fields.Char(
        "Source",
        readonly=True,
        help="Meter or concentrator that pushed the event over MQTT "
        "(empty: read by the head-end).",
    )

    @classmethod
    def on_modification(cls, mode, records, field_names=None):
        super().on_modification(mode, records, field_names=field_names)
        if mode == 'create' and records:
            queue_alarms(records)

    def mqtt_message(self) -> EventMessage:
        kind = 'alarm' if self.log == 'alarm' else 'event'
        return EventMessage(
            serial=self.meter.serial,
            timestamp=self.timestamp.replace(tzinfo=dt.UTC),
            source=self.source or 'hes',
            kind=kind,
            code=self.code,
            log=self.log if kind == 'event' else None,
            text=self.description[:256] if self.description else None,
        )


# --- outbound: publish after commit -----------------------------------------
class AlarmDataManager:
    """Holds the alarms of one transaction; publishes them once committed."""

    def __init__(self, broker: BrokerSettings) -> None:
        self.broker = broker
        self.messages: list[tuple[str, bytes, str]] = []  # topic, payload, label

    def __eq__(self, other: object) -> bool:
        # One manager per transaction (Transaction.join compares with ==).
        return isinstance(other, AlarmDataManager)

    def __hash__(self) -> int:
        return hash(AlarmDataManager)

    def tpc_begin(self, trans) -> None:
        pass

    def commit(self, trans) -> None:
        pass

    def tpc_vote(self, trans) -> None:
        pass

    def tpc_finish(self, trans) -> None:
        messages, self.messages = self.messages, []
        if messages:
            publish_alarms(self.broker, messages)

    def tpc_abort(self, trans) -> None:
        self.messages = []


def queue_alarms(events: Sequence[Any]) -> int:
    "Queue the alarms among new events for publication after the commit"
    Configuration = Pool().get('prepaid.configuration')
    with without_check_access():
        config = Configuration(1)
        if not config.mqtt_enabled:
            return 0
        codes = config.mqtt_alarm_code_set
        codes = codes | rd.HEADEND_ALARM_CODES
        alarms = [e for e in events if e.log == 'alarm' or e.code in codes]
        if not alarms:
            return 0
        site = config.mqtt_site or 'main'
        manager = Transaction().join(AlarmDataManager(config.mqtt_broker()))
        for event in alarms:
            message = event.mqtt_message()
            manager.messages.append(
                (
                    alarm_topic(site, message.serial),
                    encode(message),
                    f"{message.serial} code {message.code}",
                )
            )
    return len(alarms)


_publishers: dict[BrokerSettings, Publisher] = {}
_publishers_lock = threading.Lock()


def publish_alarms(
    broker: BrokerSettings, messages: list[tuple[str, bytes, str]]
) -> bool:
    """Publish (after the commit) and wait for the PUBACKs; never raises.

    One connection per broker is kept for the life of the process (a worker
    publishes many transactions' alarms), guarded by a lock so concurrent
    commits of one process do not interleave their waits.
    """
    with _publishers_lock:
        publisher = None
        try:
            publisher = _publishers.get(broker)
            if publisher is None:
                publisher = _publishers[broker] = Publisher(broker)
            publisher.publish_many([(t, p) for t, p, _ in messages])
            return True
        except MqttError as error:
            logger.error(
                "MQTT alarms not published (%s): %s",
                ', '.join(label for _, _, label in messages)[:500],
                error,
            )
            if publisher is not None and not publisher.connected.is_set():
                publisher.stop()
                _publishers.pop(broker, None)
            return False


def close_publishers() -> None:
    with _publishers_lock:
        for publisher in _publishers.values():
            publisher.stop()
        _publishers.clear()


# --- inbound: store pushed events -------------------------------------------
def store_messages(items: Sequence[Inbound]) -> BatchResult:
    """Store valid inbound messages in the current transaction."""
    pool = Pool()
    Meter = pool.get('prepaid.meter')
    result = BatchResult()
    serials = {i.message.serial for i in items}
    with without_check_access(), Transaction().set_context(active_test=False):
        meters = {
            m.serial: m.id for m in Meter.search([('serial', 'in', list(serials))])
        }
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    registers: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        message = item.message
        meter_id = meters.get(message.serial)
        if meter_id is None:
            result.unknown_meter += 1
            logger.warning(
                "MQTT event for unknown meter %r from %s on %s ignored",
                message.serial,
                message.source,
                item.topic,
            )
            continue
        when = rd.naive_utc(message.timestamp)
        events[meter_id].append(
            {
                'log': message.event_log,
                'timestamp': when,
                'code': message.code,
                'description': message.text
                or (
                    rd.describe_alarm(message.code)
                    if message.kind == 'alarm'
                    else rd.describe_event(message.code)
                ),
                'source': message.source,
            }
        )
        for obis, value in (message.registers or {}).items():
            registers[meter_id].append(
                {'obis': obis, 'timestamp': when, 'value': float(value)}
            )
    for meter_id, rows in events.items():
        created = rd.insert_new(
            'prepaid.headend.event', meter_id, rows, key=('log', 'timestamp', 'code')
        )
        result.stored += created
        result.duplicates += len(rows) - created
    for meter_id, rows in registers.items():
        rd.insert_new('prepaid.headend.register', meter_id, rows)
    return result


def transactional_store(
    database: str, user: int, context: dict[str, Any] | None = None
):
    """A ``store`` for :func:`mqtt.ingest.ingest_loop`: one transaction per
    batch, committed before the loop acknowledges the batch."""

    def store(items: Sequence[Inbound]) -> BatchResult:
        with Transaction().start(database, user, context=context or {}):
            return store_messages(items)

    return store
