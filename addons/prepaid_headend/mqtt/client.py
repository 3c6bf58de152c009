"""Thin paho-mqtt (2.x) wrappers: a publisher and a subscriber.

Both run paho's network loop in its own thread (``loop_start``), which also
reconnects after a lost connection (``reconnect_delay_set``).  Every wait is
bounded by a timeout: a caller never hangs on a dead broker.

- :class:`Publisher` publishes at QoS 1 and waits for the PUBACK of each
  message; a message published while the connection is down stays queued in
  paho and goes out after the reconnection, within the same timeout.
- :class:`Subscriber` decodes every message (:mod:`.codec`), counts and logs
  the malformed ones and queues the valid ones as :class:`Inbound` items.  With
  ``manual_ack=True`` the PUBACK of a valid message is sent only when the
  application calls :meth:`Subscriber.ack` (after its database commit), so a
  crash before the commit gets the message redelivered, not lost.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import paho.mqtt.client as paho

from .codec import EventMessage, MessageError, decode
from .topics import TopicError, parse_topic

logger = logging.getLogger(__name__)


class MqttError(Exception):
    "The broker cannot be used (unreachable, refused, timed out)"


class PublishError(MqttError):
    "A message was not acknowledged by the broker in time"


@dataclasses.dataclass(frozen=True)
class BrokerSettings:
    host: str = '127.0.0.1'
    port: int = 1883
    username: str | None = None
    password: str | None = None
    # TLS: the broker's certificate is verified against ``ca_file`` (PEM) or
    # the system CAs; production brokers listen with TLS on 8883.
    tls: bool = False
    ca_file: str | None = None
    keepalive: int = 30
    timeout: float = 5.0
    # A password is sent over plain TCP only when an administrator said so.
    allow_plain_password: bool = False

    def __repr__(self) -> str:  # never show the password in logs
        return (
            f"BrokerSettings(host={self.host!r}, port={self.port}, "
            f"username={self.username!r}, tls={self.tls})"
        )


@dataclasses.dataclass(frozen=True)
class Inbound:
    "A valid message taken from the broker"

    topic: str
    site: str
    message: EventMessage
    mid: int = 0
    qos: int = 0


@dataclasses.dataclass
class SubscriberStats:
    received: int = 0
    accepted: int = 0
    rejected: Counter[str] = dataclasses.field(default_factory=Counter)
    handler_errors: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def _new_client(
    settings: BrokerSettings,
    client_id: str,
    clean_session: bool = True,
    manual_ack: bool = False,
) -> paho.Client:
    client = paho.Client(
        callback_api_version=paho.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=paho.MQTTv311,
        manual_ack=manual_ack,
    )
    if settings.password and not settings.tls and not settings.allow_plain_password:
        raise MqttError(
            f"refusing to send the MQTT password to {settings.host}:{settings.port} "
            "over plain TCP: turn TLS on (or an administrator allows plain "
            "passwords for this broker)"
        )
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set(ca_certs=settings.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


class _Connection:
    "Connection state shared by the publisher and the subscriber"

    def __init__(
        self,
        settings: BrokerSettings,
        client_id: str,
        clean_session: bool = True,
        manual_ack: bool = False,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.client = _new_client(settings, client_id, clean_session, manual_ack)
        self.connected = threading.Event()
        self.last_error: str | None = None
        self.connects = 0
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self._started = False

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f"connection refused: {reason_code}"
            logger.error("MQTT %s: %s", self.settings, self.last_error)
            return
        self.connects += 1
        self.last_error = None
        self.on_connected()
        self.connected.set()

    def on_connected(self) -> None:  # hook: the subscriber re-subscribes here
        pass

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if reason_code.is_failure:
            self.last_error = f"disconnected: {reason_code}"
            logger.warning("MQTT %s %s", self.settings, self.last_error)

    def start(self, timeout: float | None = None) -> None:
        timeout = self.settings.timeout if timeout is None else timeout
        if not self._started:
            try:
                self.client.connect_async(
                    self.settings.host, self.settings.port, self.settings.keepalive
                )
            except (OSError, ValueError) as error:
                raise MqttError(f"cannot connect to MQTT broker: {error}") from None
            self.client.loop_start()
            self._started = True
        if not self.connected.wait(timeout):
            reason = self.last_error or "no answer"
            self.stop()
            raise MqttError(
                f"cannot connect to MQTT broker {self.settings.host}:"
                f"{self.settings.port} within {timeout:g} s ({reason})"
            )

    def stop(self) -> None:
        if self._started:
            self.client.disconnect()
            self.client.loop_stop()
            self._started = False
        self.connected.clear()


class Publisher(_Connection):
    """QoS 1 publisher that waits for the broker's PUBACK."""

    def __init__(self, settings: BrokerSettings, client_id: str | None = None):
        super().__init__(settings, client_id or f"prepaid-pub-{uuid.uuid4().hex[:12]}")
        self._acked: set[int] = set()
        self._condition = threading.Condition()
        self.client.on_publish = self._on_publish
        self.published = 0

    def __enter__(self) -> Publisher:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._condition:
            self._acked.add(mid)
            self._condition.notify_all()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.publish_many([(topic, payload)], retain=retain)

    def publish_many(
        self,
        items: Iterable[tuple[str, bytes]],
        retain: bool = False,
        timeout: float | None = None,
    ) -> int:
        """Publish every (topic, payload) then wait for all the PUBACKs."""
        timeout = self.settings.timeout if timeout is None else timeout
        if not self._started:
            self.start(timeout)
        deadline = time.monotonic() + timeout
        pending: dict[int, str] = {}
        for topic, payload in items:
            info = self.client.publish(topic, payload, qos=1, retain=retain)
            # NO_CONN: paho keeps the message and sends it after reconnecting.
            if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                raise PublishError(
                    f"cannot publish to {topic}: {paho.error_string(info.rc)}"
                )
            pending[info.mid] = topic
        total = len(pending)
        with self._condition:
            while True:
                done = pending.keys() & self._acked
                for mid in done:
                    del pending[mid]
                self._acked -= done
                self.published += len(done)
                if not pending:
                    return total
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._condition.wait(min(left, 0.5))
        state = 'connected' if self.connected.is_set() else 'disconnected'
        raise PublishError(
            f"{len(pending)} message(s) not acknowledged by "
            f"{self.settings.host}:{self.settings.port} within {timeout:g} s "
            f"(first topic {next(iter(pending.values()))}; {state}"
            + (f", {self.last_error}" if self.last_error else '')
            + ")"
        )


class Subscriber(_Connection):
    """Subscribe to topic filters and queue the decoded valid messages."""

    def __init__(
        self,
        settings: BrokerSettings,
        filters: Sequence[str],
        client_id: str | None = None,
        clean_session: bool = True,
        manual_ack: bool = False,
        direction: str = 'events',
        max_queue: int = 10_000,
    ) -> None:
        super().__init__(
            settings,
            client_id or f"prepaid-sub-{uuid.uuid4().hex[:12]}",
            clean_session=clean_session,
            manual_ack=manual_ack,
        )
        self.filters = list(filters)
        self.direction = direction
        self.manual_ack = manual_ack
        self.stats = SubscriberStats()
        self.items: queue.Queue[Inbound] = queue.Queue(max_queue)
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def __enter__(self) -> Subscriber:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self, timeout: float | None = None) -> None:
        timeout = self.settings.timeout if timeout is None else timeout
        super().start(timeout)
        if not self._subscribed.wait(timeout):
            self.stop()
            raise MqttError(f"subscription to {self.filters} not acknowledged")

    def on_connected(self) -> None:
        # Subscribing in on_connect renews the subscription after a reconnect.
        self.client.subscribe([(f, 1) for f in self.filters])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        failed = [str(r) for r in reason_codes if r.is_failure]
        if failed:
            self.last_error = f"subscription refused: {', '.join(failed)}"
            logger.error("MQTT %s", self.last_error)
            return
        self._subscribed.set()

    def _on_message(self, client, userdata, msg) -> None:
        # Runs on paho's thread: it must never raise, whatever arrives.
        try:
            item = self._decode(msg)
        except Exception:  # a bug here must not kill the network loop
            logger.exception("MQTT message on %r could not be handled", msg.topic)
            item = None
            with self._lock:
                self.stats.handler_errors += 1
        if item is None:
            self._ack(msg.mid, msg.qos)  # rejected for good: do not redeliver
            return
        try:
            # Back-pressure: a full queue blocks paho's thread (and so the
            # broker's flow) instead of dropping the message.
            self.items.put(item, timeout=self.settings.timeout * 12)
        except queue.Full:
            with self._lock:
                self.stats.handler_errors += 1
            logger.error("MQTT queue full: message on %s not acknowledged", msg.topic)

    def _decode(self, msg) -> Inbound | None:
        with self._lock:
            self.stats.received += 1
        try:
            direction, site, serial = parse_topic(msg.topic)
            if direction != self.direction:
                raise TopicError(
                    f"topic {msg.topic!r} is not an {self.direction} topic"
                )
            message = decode(msg.payload)
            if message.serial != serial:
                raise MessageError(
                    'topic',
                    f"serial {message.serial!r} of the payload differs from "
                    f"{serial!r} of the topic",
                )
        except (MessageError, TopicError) as error:
            reason = getattr(error, 'reason', 'topic')
            with self._lock:
                self.stats.rejected[reason] += 1
            logger.warning("MQTT message rejected on %r: %s", msg.topic[:200], error)
            return None
        with self._lock:
            self.stats.accepted += 1
        return Inbound(msg.topic, site, message, msg.mid, msg.qos)

    def _ack(self, mid: int, qos: int) -> None:
        if self.manual_ack and qos > 0:
            self.client.ack(mid, qos)

    def ack(self, items: Iterable[Inbound]) -> None:
        "Acknowledge messages once they are safely stored (manual_ack)."
        for item in items:
            self._ack(item.mid, item.qos)

    def get_batch(self, max_items: int, timeout: float) -> list[Inbound]:
        """Up to ``max_items`` messages: wait ``timeout`` for the first, then
        take what is already there (a batch never waits for stragglers)."""
        out: list[Inbound] = []
        try:
            out.append(self.items.get(timeout=max(timeout, 0)))
        except queue.Empty:
            return out
        while len(out) < max_items:
            try:
                out.append(self.items.get_nowait())
            except queue.Empty:
                break
        return out

    def run(
        self,
        handler: Callable[[Inbound], Any],
        duration: float,
        max_messages: int | None = None,
    ) -> SubscriberStats:
        """Hand each valid message to ``handler`` for at most ``duration`` s
        (or until ``max_messages`` were handled); handler errors are counted."""
        deadline = time.monotonic() + duration
        handled = 0
        while max_messages is None or handled < max_messages:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for item in self.get_batch(1, min(left, 0.5)):
                handled += 1
                try:
                    handler(item)
                except Exception:
                    logger.exception("MQTT handler failed on %s", item.topic)
                    with self._lock:
                        self.stats.handler_errors += 1
                self.ack([item])
        return self.stats
