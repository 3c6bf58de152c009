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
    Every new ``prepaid.concentrator.event`` that is an alarm (the
    concentrator's alarm codes and the head-end's group 100: refused,
    input refused, silent) goes the same way to
    ``prepaid/<site>/concentrators/<dc_id>/alarms`` (``mqtt/dcu_alarm.py``).

Inbound
    ``prepaid-mqtt-ingest`` (``mqtt_ingest.py``) subscribes to
    ``prepaid/<site>/meters/+/events`` and stores each batch of valid
    messages in one transaction with :func:`store_messages`: the meter is
    found by serial (unknown -> logged and counted, nothing written), the
    event is inserted with :func:`reading.insert_new` so the same meter / log /
    timestamp / code is stored once (a pushed event later read over DLMS is
    not doubled either), and register values carried by the message become
    register readings.  Serials are unique per company only: a meter is
    looked for among the companies the storing user works for, and a serial
    found at two of them is ambiguous (logged, nothing written).

Broker settings are on the head-end's communication settings (Key
Custodians and Administrators, see ``communication``): TLS by default, the
password write-only and encrypted with the master key, never sent over plain
TCP unless an Administrator allows it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from trytond.exceptions import UserError
from trytond.model import fields
from trytond.modules.prepaid_sts.company import (
    context_company_domain,
)
from trytond.modules.prepaid_vending import fastpath
from trytond.pool import Pool, PoolMeta
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
from .mqtt.dcu_alarm import ConcentratorAlarm, encode_alarm
from .mqtt.ingest import BatchResult
from .mqtt.topics import alarm_topic, concentrator_alarm_topic

logger = logging.getLogger(__name__)


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


fastpath.know_hook(
    'prepaid_headend.mqtt_bridge.Event.on_modification',
    'run on the in-memory records (reading.insert_rows): it reads the '
    'fields written and the meter of each new event',
)


class ConcentratorEvent(metaclass=PoolMeta):
    __name__ = 'prepaid.concentrator.event'

    @classmethod
    def on_modification(cls, mode, records, field_names=None):
        super().on_modification(mode, records, field_names=field_names)
        if mode == 'create' and records:
            queue_concentrator_alarms(records)

    def mqtt_alarm(self) -> ConcentratorAlarm:
        from .dcu import HEADEND_GROUP

        return ConcentratorAlarm(
            dc_id=self.dc_id,
            timestamp=self.timestamp.replace(tzinfo=dt.UTC),
            source='hes' if self.group == HEADEND_GROUP else self.dc_id,
            group=self.group,
            code=self.code,
            meter_id=self.meter_id or None,
            text=self.detail[:256] if self.detail else None,
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


def alarm_manager() -> tuple[AlarmDataManager, str] | None:
    """The transaction's alarm publisher and the topic site, or None when
    MQTT is off or its settings cannot be used (logged: the events being
    stored must never fail for it)."""
    Communication = Pool().get('prepaid.headend.communication')
    with without_check_access():
        config = Communication(1)
        if not config.mqtt_enabled:
            return None
        try:
            broker = config.mqtt_broker()
        except UserError as error:
            logger.error("MQTT alarms not published: %s", error.message)
            return None
        manager = Transaction().join(AlarmDataManager(broker))
        return manager, config.mqtt_site or 'main'


def queue_alarms(events: Sequence[Any]) -> int:
    "Queue the alarms among new events for publication after the commit"
    Communication = Pool().get('prepaid.headend.communication')
    with without_check_access():
        config = Communication(1)
        if not config.mqtt_enabled:
            return 0
        codes = config.mqtt_alarm_code_set
        codes = codes | rd.HEADEND_ALARM_CODES
        alarms = [e for e in events if e.log == 'alarm' or e.code in codes]
        if not alarms:
            return 0
        publisher = alarm_manager()
        if publisher is None:
            return 0
        manager, site = publisher
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


def queue_concentrator_alarms(events: Sequence[Any]) -> int:
    "Queue the concentrator alarms among new events, as queue_alarms"
    alarms = [e for e in events if e.alarm and e.dc_id]
    if not alarms:
        return 0
    Communication = Pool().get('prepaid.headend.communication')
    with without_check_access():
        if not Communication(1).mqtt_enabled:
            return 0
        publisher = alarm_manager()
        if publisher is None:
            return 0
        manager, site = publisher
        queued = 0
        for event in alarms:
            try:
                alarm = event.mqtt_alarm()
                topic = concentrator_alarm_topic(site, alarm.dc_id)
            except ValueError as error:
                # An id that cannot be a topic level (a refused stranger's
                # claim): stored and listed, not published.
                logger.error(
                    "MQTT concentrator alarm %s/%s of %r not published: %s",
                    event.group,
                    event.code,
                    event.dc_id,
                    error,
                )
                continue
            manager.messages.append(
                (
                    topic,
                    encode_alarm(alarm),
                    f"{alarm.dc_id} alarm {alarm.group}/{alarm.code}",
                )
            )
            queued += 1
    return queued


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


def service_companies_domain() -> list:
    "The companies the storing user works for (root: all)"
    user_id = Transaction().user
    if user_id == 0:
        return []
    user = Pool().get('res.user')(user_id)
    return [('company', 'in', [c.id for c in user.companies])]


# --- inbound: store pushed events -------------------------------------------
def store_messages(items: Sequence[Inbound]) -> BatchResult:
    """Store valid inbound messages in the current transaction."""
    pool = Pool()
    Meter = pool.get('prepaid.meter')
    result = BatchResult()
    serials = {i.message.serial for i in items}
    # Serials are unique per company only: look among the meters of every
    # company the storing user works for (a service login, which has no
    # current company to choose: its companies field is its remit) and of the
    # context's, and store nothing for a serial that is still ambiguous
    # rather than on another utility's meter.
    with without_check_access(), Transaction().set_context(active_test=False):
        found = Meter.search(
            [
                ('serial', 'in', list(serials)),
                *service_companies_domain(),
                *context_company_domain(),
            ]
        )
    meters: dict[str, int | None] = {}
    for meter in found:
        meters[meter.serial] = None if meter.serial in meters else meter.id
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    registers: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        message = item.message
        meter_id = meters.get(message.serial)
        if meter_id is None:
            result.unknown_meter += 1
            logger.warning(
                "MQTT event for %s meter %r from %s on %s ignored",
                "ambiguous" if message.serial in meters else "unknown",
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
