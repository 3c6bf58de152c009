"""MQTT for meter events and alarms: codec, topics and paho-mqtt wrappers.

Pure Python (no trytond import) so devices' test tools and the simulator can
use it too; the Tryton side is ``prepaid_headend/mqtt_bridge.py``.

Topic layout (``<site>`` and ``<serial>``: 1-64 of ``A-Z a-z 0-9 . _ -``)
-------------------------------------------------------------------------

===================================== ========= ==============================
topic                                  direction  publisher -> subscriber
===================================== ========= ==============================
``prepaid/<site>/meters/<serial>/events`` inbound   meters / concentrators ->
                                                    ``prepaid-mqtt-ingest``
``prepaid/<site>/alarms/<serial>``       outbound  head-end -> outage management,
                                                    customer notifications ...
``prepaid/<site>/concentrators/<dc_id>/alarms``
                                       outbound  head-end -> network operations
===================================== ========= ==============================

Concentrator alarms (the concentrator's own alarm events and the head-end's
group 100 ones: refused, input refused, silent) carry their own JSON message
(:mod:`.dcu_alarm`), QoS 1 after the commit like the meters' alarms; they
live outside ``alarms/#`` so that a meter alarm subscriber never sees a
payload it cannot read: subscribe to ``prepaid/<site>/concentrators/+/alarms``.

The ingest subscribes to ``prepaid/<site>/meters/+/events``; subscribers of
alarms use ``prepaid/<site>/alarms/#`` (or one serial).  Both directions carry
the same JSON message (:mod:`.codec`), QoS 1 (at least once): receivers are
idempotent on (meter, kind, timestamp, code).  The serial in the topic must be
the serial in the payload (a device cannot file events for another meter by
its topic alone; broker ACLs should restrict each concentrator to its meters).

Broker settings that matter: QoS 1 messages for a subscriber (and for the
ingest's persistent session while it is stopped) are kept up to Mosquitto's
``max_queued_messages`` (default 1000) and *dropped* beyond it; set it (and
``persistence true``) to cover the longest expected ingest outage.

Transport security: in production the broker listens with TLS (port 8883) and
per-device credentials; :class:`.client.BrokerSettings` takes ``tls=True`` and
an optional CA file (system CAs otherwise) plus username/password.
"""

from .client import (
    BrokerSettings,
    Inbound,
    MqttError,
    Publisher,
    PublishError,
    Subscriber,
    SubscriberStats,
)
from .codec import MAX_PAYLOAD, EventMessage, MessageError, decode, encode
from .topics import TopicError, alarm_topic, events_filter, events_topic, parse_topic

__all__ = [
    'MAX_PAYLOAD',
    'BrokerSettings',
    'EventMessage',
    'Inbound',
    'MessageError',
    'MqttError',
    'PublishError',
    'Publisher',
    'Subscriber',
    'SubscriberStats',
    'TopicError',
    'alarm_topic',
    'decode',
    'encode',
    'events_filter',
    'events_topic',
    'parse_topic',
]
