"""Publisher and subscriber against the real Mosquitto on 127.0.0.1:1883.

Every test uses its own site (a random topic level) so parallel runs never
see each other's messages.  Every wait is bounded by a timeout.
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid

import paho.mqtt.client as paho
import pytest
from trytond.modules.prepaid_headend.mqtt import (
    BrokerSettings,
    EventMessage,
    MqttError,
    Publisher,
    PublishError,
    Subscriber,
    alarm_topic,
    encode,
    events_filter,
    events_topic,
)
from trytond.modules.prepaid_headend.mqtt.topics import alarms_filter

WAIT = 5.0


@pytest.fixture
def broker(mosquitto) -> BrokerSettings:
    host, port = mosquitto
    return BrokerSettings(host=host, port=port, timeout=WAIT)


@pytest.fixture
def site() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def message(serial: str = 'SIM0', code: int = 53, kind: str = 'event'):
    return EventMessage(
        serial=serial,
        timestamp=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        source='DC-1',
        kind=kind,
        code=code,
        text="Limiter threshold exceeded",
    )


def drain(subscriber: Subscriber, count: int) -> list:
    "Wait (bounded) for ``count`` valid messages."
    out = []
    for _ in range(count):
        batch = subscriber.get_batch(count - len(out), WAIT)
        if not batch:
            break
        out += batch
        if len(out) >= count:
            break
    return out


def test_round_trip_through_broker(broker, site):
    with (
        Subscriber(broker, [events_filter(site)]) as subscriber,
        Publisher(broker) as publisher,
    ):
        sent = [message('SIM0', 1), message('SIM1', 2), message('SIM0', 3)]
        count = publisher.publish_many(
            [(events_topic(site, m.serial), encode(m)) for m in sent]
        )
        assert count == 3
        assert publisher.published == 3
        received = drain(subscriber, 3)
    assert sorted((i.message.serial, i.message.code) for i in received) == [
        ('SIM0', 1),
        ('SIM0', 3),
        ('SIM1', 2),
    ]
    assert {i.site for i in received} == {site}
    assert received[0].message == next(
        m for m in sent if m.code == received[0].message.code
    )
    assert subscriber.stats.accepted == 3
    assert subscriber.stats.rejected_total == 0


def test_malformed_messages_are_counted_not_fatal(broker, site):
    with (
        Subscriber(broker, [events_filter(site)]) as subscriber,
        Publisher(broker) as publisher,
    ):
        topic = events_topic(site, 'SIM0')
        publisher.publish_many(
            [
                (topic, b'not json'),
                (topic, b'{"serial": "SIM0"}'),
                (topic, b'x' * (16 * 1024 + 1)),
                # The payload names another meter than its topic.
                (topic, encode(message('SIM9'))),
                (topic, encode(message('SIM0', 7))),
            ]
        )
        received = drain(subscriber, 1)
        # The valid one arrives after the four bad ones (same topic, QoS 1:
        # the broker keeps the order), so all have been counted by now.
        assert [i.message.code for i in received] == [7]
        stats = subscriber.stats
    assert stats.received == 5
    assert stats.accepted == 1
    assert dict(stats.rejected) == {
        'json': 1,
        'missing_field': 1,
        'too_large': 1,
        'topic': 1,
    }
    assert stats.handler_errors == 0


def test_alarm_subscriber_ignores_nothing_of_its_site(broker, site):
    with (
        Subscriber(broker, [alarms_filter(site)], direction='alarms') as subscriber,
        Publisher(broker) as publisher,
    ):
        publisher.publish(
            alarm_topic(site, 'SIM3'), encode(message('SIM3', 256, 'alarm'))
        )
        [item] = drain(subscriber, 1)
    assert item.topic == f"prepaid/{site}/alarms/SIM3"
    assert item.message.kind == 'alarm'


def test_run_hands_messages_to_handler_and_survives_its_errors(broker, site):
    seen = []

    def handler(item):
        seen.append(item.message.code)
        if item.message.code == 2:
            raise RuntimeError("handler bug")

    with (
        Subscriber(broker, [events_filter(site)]) as subscriber,
        Publisher(broker) as publisher,
    ):
        publisher.publish_many(
            [(events_topic(site, 'SIM0'), encode(message(code=c))) for c in (1, 2, 3)]
        )
        stats = subscriber.run(handler, duration=WAIT, max_messages=3)
    assert seen == [1, 2, 3]
    assert stats.handler_errors == 1


def test_publisher_reconnects_after_losing_the_connection(broker, site):
    with (
        Subscriber(broker, [events_filter(site)]) as subscriber,
        Publisher(broker) as publisher,
    ):
        publisher.publish(events_topic(site, 'SIM0'), encode(message(code=1)))
        # Mosquitto drops a session when another client takes its client id:
        # the publisher sees a lost connection, as on a network failure.
        intruder = paho.Client(
            callback_api_version=paho.CallbackAPIVersion.VERSION2,
            client_id=publisher.client_id,
        )
        intruder.connect(broker.host, broker.port)
        intruder.loop(timeout=0.5)  # read the CONNACK
        intruder.disconnect()
        # Published while (possibly) disconnected: paho sends it after the
        # automatic reconnection, within the publish timeout.
        publisher.publish(events_topic(site, 'SIM0'), encode(message(code=2)))
        codes = [i.message.code for i in drain(subscriber, 2)]
        assert publisher.connects >= 2
    assert codes == [1, 2]


def test_unacknowledged_message_is_redelivered(broker, site):
    "manual_ack: a message not acknowledged (crash before commit) comes back"
    client_id = f"prepaid-test-{site}"
    first = Subscriber(
        broker,
        [events_filter(site)],
        client_id=client_id,
        clean_session=False,
        manual_ack=True,
    )
    first.start()
    try:
        with Publisher(broker) as publisher:
            publisher.publish(events_topic(site, 'SIM0'), encode(message(code=9)))
        [item] = drain(first, 1)
        assert item.message.code == 9
    finally:
        first.stop()  # no ack: as if the process died before its commit
    second = Subscriber(
        broker,
        [events_filter(site)],
        client_id=client_id,
        clean_session=False,
        manual_ack=True,
    )
    second.start()
    try:
        [again] = drain(second, 1)
        assert again.message.code == 9
        second.ack([again])
    finally:
        second.stop()
        # Remove the persistent session from the broker.
        cleaner = Subscriber(broker, [events_filter(site)], client_id=client_id)
        cleaner.start()
        cleaner.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_unreachable_broker_is_a_clear_error():
    settings = BrokerSettings(port=closed_port(), timeout=0.5)
    with pytest.raises(MqttError, match=r'cannot connect to MQTT broker .* 0.5 s'):
        Publisher(settings).start()
    with pytest.raises(MqttError, match='cannot connect'):
        Subscriber(settings, ['prepaid/x/meters/+/events']).start()


def test_publish_error_is_raised_when_no_puback(broker, site):
    publisher = Publisher(broker)
    publisher.start()
    try:
        # Simulate a broker that never answers: the loop thread is stopped,
        # so no PUBACK can be read.
        publisher.client.loop_stop()
        with pytest.raises(PublishError, match='not acknowledged .* within 0.3 s'):
            publisher.publish_many(
                [(events_topic(site, 'SIM0'), encode(message()))], timeout=0.3
            )
    finally:
        publisher.client.disconnect()
