"""The Tryton MQTT bridge against the real Mosquitto (127.0.0.1:1883).

Outbound alarms are published only once the transaction commits, so these
tests commit inside ``with_transaction`` (each test uses its own meters and
its own topic site, so committed rows never meet another test's).  Inbound
ingest is called directly with a bounded run time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import threading
import unittest
import uuid

import pytest
from trytond import backend
from trytond.modules.prepaid_headend import mqtt_bridge, mqtt_ingest
from trytond.modules.prepaid_headend import reading as rd
from trytond.modules.prepaid_headend.mqtt import (
    BrokerSettings,
    EventMessage,
    Publisher,
    Subscriber,
    encode,
    events_filter,
    events_topic,
)
from trytond.modules.prepaid_headend.mqtt.dcu_alarm import decode_alarm
from trytond.modules.prepaid_headend.mqtt.ingest import ingest_loop
from trytond.modules.prepaid_headend.mqtt.topics import (
    alarms_filter,
    concentrator_alarms_filter,
)
from trytond.modules.prepaid_sts.tests import tools as sts_tools
from trytond.modules.prepaid_sts.tests.tools import utility
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module, with_transaction
from trytond.transaction import Transaction

from simulators.meter import MeterConfig, MeterSimulator
from simulators.meter.model import ALARM_TAMPER, DEFAULT_AK, DEFAULT_EK

WAIT = 5.0
BROKER = BrokerSettings('127.0.0.1', 1883, timeout=WAIT)
WHEN = dt.datetime(2026, 3, 1, 12, 0, 0)


@pytest.mark.usefixtures('mosquitto')
class MqttBridgeTestCase(unittest.TestCase):
    "MQTT bridge of the head-end"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('prepaid_headend')
        cls._previous_key = sts_tools.set_master_key()

    @classmethod
    def tearDownClass(cls):
        mqtt_bridge.close_publishers()
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    def setUp(self):
        self.site = f"t{uuid.uuid4().hex[:12]}"
        self.tag = uuid.uuid4().hex[:8].upper()

    def configure(self, enabled: bool = True, **values):
        Communication = Pool().get('prepaid.headend.communication')
        config = Communication(1)
        config.mqtt_enabled = enabled
        config.mqtt_host = BROKER.host
        config.mqtt_port = BROKER.port
        config.mqtt_tls = False  # the test broker listens in clear
        config.mqtt_site = self.site
        config.mqtt_timeout = WAIT
        for name, value in values.items():
            setattr(config, name, value)
        config.save()
        return config

    def meter(self, name: str):
        Meter = Pool().get('prepaid.meter')
        meter = Meter(serial=f"{name}{self.tag}", kind='smart_prepaid')
        meter.save()
        return meter

    def alarms(self) -> Subscriber:
        subscriber = Subscriber(BROKER, [alarms_filter(self.site)], direction='alarms')
        subscriber.start()
        self.addCleanup(subscriber.stop)
        return subscriber

    @staticmethod
    def event(code: int, log: str = 'standard', when: dt.datetime = WHEN):
        return {
            'log': log,
            'timestamp': when,
            'code': code,
            'description': rd.describe_event(code),
        }

    # --- configuration ----------------------------------------------------
    @with_company
    def test_configuration_validation_and_password(self):
        "Site and codes are checked; the password is write-only and encrypted"
        from trytond.model.exceptions import ValidationError

        config = self.configure(
            mqtt_username='hes',
            mqtt_password='s3cret',
            mqtt_allow_plain_password=True,
        )
        self.assertIsNone(config.mqtt_password)
        self.assertTrue(config.mqtt_password_cipher)
        self.assertNotIn('s3cret', config.mqtt_password_cipher)
        broker = config.mqtt_broker()
        self.assertEqual((broker.username, broker.password), ('hes', 's3cret'))
        self.assertNotIn('s3cret', repr(broker))
        self.assertEqual(config.mqtt_alarm_code_set, {1, 53, 200, 202, 203, 204})
        with self.assertRaisesRegex(ValidationError, 'cannot be a topic level'):
            self.configure(mqtt_site='a/b')
        with self.assertRaisesRegex(ValidationError, 'separated by commas'):
            self.configure(mqtt_alarm_codes='1,tamper')

    # --- outbound ---------------------------------------------------------
    @with_company
    def test_alarm_published_after_commit(self):
        "New alarms are published once committed; plain events are not"
        subscriber = self.alarms()
        self.configure()
        meter = self.meter('ALM')
        rows = [
            self.event(2),  # power up: not an alarm
            self.event(53, 'disconnector'),  # limiter: listed alarm code
            {
                'log': 'alarm',
                'timestamp': WHEN,
                'code': 1 << 8,
                'description': rd.describe_alarm(1 << 8),
            },
        ]
        created = insert_events(meter, rows)
        self.assertEqual(created, 3)
        # Nothing leaves before the commit.
        self.assertEqual(subscriber.get_batch(10, 0.5), [])
        Transaction().commit()
        received = drain(subscriber, 2)
        self.assertEqual(
            sorted((i.message.kind, i.message.code) for i in received),
            [('alarm', 256), ('event', 53)],
        )
        alarm = next(i for i in received if i.message.kind == 'alarm')
        self.assertEqual(alarm.topic, f"prepaid/{self.site}/alarms/{meter.serial}")
        self.assertEqual(alarm.message.serial, meter.serial)
        self.assertEqual(alarm.message.source, 'hes')
        self.assertEqual(alarm.message.text, "Fraud attempt (tamper)")
        self.assertEqual(alarm.message.timestamp, WHEN.replace(tzinfo=dt.UTC))
        limiter = next(i for i in received if i.message.kind == 'event')
        self.assertEqual(limiter.message.event_log, 'disconnector')
        # A re-read stores nothing new, so nothing is published again.
        insert_events(meter, rows)
        Transaction().commit()
        self.assertEqual(subscriber.get_batch(10, 0.5), [])

    @with_transaction()
    def test_rolled_back_alarm_is_not_published(self):
        "A rollback drops the queued alarms"
        # The utility is committed first: the rollback below drops the meter
        # and its alarm, not the company the rest of the test works in.
        company = utility('MQTT rollback utility')
        Transaction().commit()
        with Transaction().set_context(company=company.id):
            self.rolled_back_alarm_is_not_published()

    def rolled_back_alarm_is_not_published(self):
        subscriber = self.alarms()
        Meter = Pool().get('prepaid.meter')
        self.configure()
        meter = self.meter('RBK')
        serial = meter.serial
        insert_events(meter, [self.event(202)])
        Transaction().rollback()
        if backend.name == 'postgresql':
            # (SQLite test databases autocommit after the cache's own
            # connection use, so only PostgreSQL shows the rows gone.)
            self.assertEqual(Meter.search_count([('serial', '=', serial)]), 0)
        # Another meter's alarm, committed: it is the only one to arrive (the
        # broker keeps the order of one publisher's messages).
        self.configure()
        other = self.meter('RB2')
        insert_events(other, [self.event(204)])
        Transaction().commit()
        received = drain(subscriber, 2, first_only=True)
        self.assertEqual(
            [(i.message.serial, i.message.code) for i in received],
            [(other.serial, 204)],
        )

    @with_company
    def test_disabled_publishes_nothing(self):
        "With MQTT disabled nothing is queued"
        self.configure(enabled=False)
        meter = self.meter('OFF')
        Event = Pool().get('prepaid.headend.event')
        (event,) = Event.create(
            [{'meter': meter.id, **self.event(0, 'alarm'), 'code': 256}]
        )
        self.assertEqual(mqtt_bridge.queue_alarms([event]), 0)

    @with_company
    def test_unreachable_broker_keeps_the_commit(self):
        "A broker failure after the commit is logged, the events stay stored"
        Event = Pool().get('prepaid.headend.event')
        self.configure(mqtt_port=closed_port(), mqtt_timeout=0.3)
        meter = self.meter('DWN')
        with self.assertLogs(mqtt_bridge.logger, 'ERROR') as logs:
            insert_events(meter, [self.event(1)])
            Transaction().commit()
        self.assertIn(f"{meter.serial} code 1", logs.output[0])
        self.assertIn('cannot connect', logs.output[0])
        self.assertEqual(Event.search_count([('meter', '=', meter.id)]), 1)

    # --- inbound ----------------------------------------------------------
    @with_company
    def test_ingest_valid_duplicate_unknown_malformed(self):
        "Ingest stores valid events once, skips unknown meters and bad input"
        pool = Pool()
        Event = pool.get('prepaid.headend.event')
        Register = pool.get('prepaid.headend.register')
        meter = self.meter('ING')
        other = self.meter('IN2')
        unknown = f"NOPE{self.tag}"
        when = dt.datetime(2026, 3, 2, 8, 30, tzinfo=dt.UTC)

        def msg(serial, code, kind='event', **extra):
            return EventMessage(serial, when, 'DC-7', kind, code, **extra)

        valid = msg(
            meter.serial,
            53,
            log='disconnector',
            text="Limiter tripped",
            registers={'1.0.1.8.0.255': 1234.5},
        )
        messages = [
            (meter.serial, encode(valid)),
            (meter.serial, encode(valid)),  # duplicate (QoS 1 redelivery)
            (meter.serial, encode(msg(meter.serial, 256, 'alarm'))),
            (other.serial, encode(msg(other.serial, 1))),
            (unknown, encode(msg(unknown, 1))),
            (meter.serial, b'{"serial": broken'),
            (meter.serial, encode(msg(other.serial, 2))),  # topic mismatch
        ]
        subscriber = Subscriber(BROKER, [events_filter(self.site)])
        subscriber.start()
        self.addCleanup(subscriber.stop)
        with Publisher(BROKER) as publisher:
            publisher.publish_many(
                [(events_topic(self.site, s), p) for s, p in messages]
            )
        stats = ingest_loop(
            subscriber,
            mqtt_bridge.store_messages,
            duration=2 * WAIT,
            max_messages=len(messages),
            batch_size=3,
            batch_wait=0.2,
        )
        self.assertEqual(stats.received, 7)
        self.assertEqual(stats.stored, 3)
        self.assertEqual(stats.duplicates, 1)
        self.assertEqual(stats.unknown_meter, 1)
        self.assertEqual(dict(stats.rejected), {'json': 1, 'topic': 1})
        self.assertGreaterEqual(stats.batches, 2)  # batch_size 3, 5 valid

        events = Event.search([('meter', '=', meter.id)], order=[('code', 'ASC')])
        self.assertEqual(
            [(e.log, e.code, e.source, e.description) for e in events],
            [
                ('disconnector', 53, 'DC-7', "Limiter tripped"),
                ('alarm', 256, 'DC-7', "Fraud attempt (tamper)"),
            ],
        )
        self.assertEqual(events[0].timestamp, dt.datetime(2026, 3, 2, 8, 30))
        (register,) = Register.search([('meter', '=', meter.id)])
        self.assertEqual((register.obis, register.value), ('1.0.1.8.0.255', 1234.5))
        self.assertEqual(Event.search_count([('meter', '=', other.id)]), 1)
        self.assertEqual(Event.search_count([('source', '=', 'DC-7')]), 3)

        # Ingesting the same messages again stores nothing.
        result = mqtt_bridge.store_messages(
            [
                mqtt_bridge.Inbound(events_topic(self.site, meter.serial), self.site, m)
                for m in (valid, msg(meter.serial, 256, 'alarm'))
            ]
        )
        self.assertEqual((result.stored, result.duplicates), (0, 2))

    @with_company
    def test_pushed_alarm_is_forwarded_to_alarm_subscribers(self):
        "An alarm pushed by a concentrator and stored goes out on the alarms topic"
        subscriber = self.alarms()
        self.configure()
        meter = self.meter('FWD')
        when = dt.datetime(2026, 3, 3, 1, 2, 3, tzinfo=dt.UTC)
        item = mqtt_bridge.Inbound(
            events_topic(self.site, meter.serial),
            self.site,
            EventMessage(meter.serial, when, 'DC-9', 'alarm', 256),
        )
        self.assertEqual(mqtt_bridge.store_messages([item]).stored, 1)
        Transaction().commit()
        [forwarded] = drain(subscriber, 1)
        self.assertEqual(forwarded.message.source, 'DC-9')
        self.assertEqual(forwarded.message.timestamp, when)

    def test_cli_ingests_what_arrived_while_stopped(self):
        "prepaid-mqtt-ingest: persistent session, one committed transaction a batch"
        client_id = f"prepaid-test-{self.site}"
        with (
            Transaction().start(DB_NAME, 0),  # committed on exit
            Transaction().set_context(company=utility().id),
        ):
            self.configure(enabled=False)
            serial = self.meter('CLI').serial
        # The session exists (as after a first run), then the command stops;
        # the broker keeps what is published meanwhile.
        session = Subscriber(
            BROKER, [events_filter(self.site)], client_id=client_id, clean_session=False
        )
        session.start()
        session.stop()
        self.addCleanup(forget_session, client_id)
        when = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
        with Publisher(BROKER) as publisher:
            publisher.publish_many(
                [
                    (
                        events_topic(self.site, serial),
                        encode(EventMessage(serial, when, 'DC-3', 'event', code)),
                    )
                    for code in (1, 2, 1)
                ]
            )
        argv = ['-d', DB_NAME, '--site', self.site, '--client-id', client_id]
        argv += ['--duration', str(2 * WAIT), '--max-messages', '3']
        with contextlib.redirect_stdout(io.StringIO()) as out:
            self.assertEqual(mqtt_ingest.main(argv), 0)
        self.assertIn('received 3, stored 2, duplicates 1', out.getvalue())
        with Transaction().start(DB_NAME, 0, readonly=True):
            Event = Pool().get('prepaid.headend.event')
            events = Event.search([('meter.serial', '=', serial)])
            self.assertEqual(sorted(e.code for e in events), [1, 2])
            self.assertEqual({e.source for e in events}, {'DC-3'})

    def test_cli_errors(self):
        "prepaid-mqtt-ingest reports an unknown user or a bad site and exits 1"
        for argv, text in [
            (['-d', DB_NAME, '--user', 'nobody'], "no user with login 'nobody'"),
            (['-d', DB_NAME, '--site', 'a/b'], 'cannot be a topic level'),
        ]:
            with contextlib.redirect_stderr(io.StringIO()) as err:
                self.assertEqual(mqtt_ingest.main(argv), 1)
            self.assertIn(text, err.getvalue())


@pytest.mark.usefixtures('mosquitto')
class MqttJobAlarmTestCase(unittest.TestCase):
    "An alarm read by a head-end job from the meter simulator is published"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('prepaid_headend')
        cls._previous_key = sts_tools.set_master_key()
        config = MeterConfig(index=0, port=closed_port(), seed=11)
        cls.sim = MeterSimulator([config]).start()

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        mqtt_bridge.close_publishers()
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    @with_company
    def test_read_job_alarm_is_published_after_commit(self):
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        Meter = pool.get('prepaid.meter')
        Counter = pool.get('prepaid.headend.invocation_counter')
        Job = pool.get('prepaid.headend.job')
        site = f"t{uuid.uuid4().hex[:12]}"
        config = Configuration(1)
        config.hes_retries = 0
        config.save()
        communication = pool.get('prepaid.headend.communication')(1)
        communication.mqtt_enabled = True
        communication.mqtt_site = site
        communication.mqtt_host = BROKER.host
        communication.mqtt_port = BROKER.port
        communication.mqtt_tls = False
        communication.save()
        meter = Meter(
            serial=f"JOB{uuid.uuid4().hex[:8].upper()}",
            kind='smart_prepaid',
            hes_host='127.0.0.1',
            hes_port=self.sim.port(0),
            hes_framing='wrapper',
            hes_auth='hls-gmac',
            hes_client_address=1,
            hes_timeout=5.0,
        )
        meter.save()
        Meter.write(
            [meter],
            {
                'hes_block_cipher_key': DEFAULT_EK.hex(),
                'hes_authentication_key': DEFAULT_AK.hex(),
            },
        )
        Counter.set_floor(meter.hes_counter_key, 1_000 + uuid.uuid4().int % 10**6)
        self.sim.meter(0).alarm_register = ALARM_TAMPER
        subscriber = Subscriber(BROKER, [alarms_filter(site)], direction='alarms')
        subscriber.start()
        self.addCleanup(subscriber.stop)

        jobs = Job.create_for(
            [meter], 'read', {'events': True, 'registers': False, 'profile_hours': 0}
        )
        Job.execute(jobs)
        (job,) = Job.browse([j.id for j in jobs])
        self.assertEqual(job.state, 'done', job.last_error)
        self.assertEqual(subscriber.get_batch(10, 0.5), [])  # not committed yet
        Transaction().commit()
        # Event-log codes listed as alarms may come first (same publish, the
        # register's alarm is stored last): read until the alarm, bounded.
        alarms = []
        while not alarms:
            received = subscriber.get_batch(50, WAIT)
            if not received:
                break
            alarms = [i.message for i in received if i.message.kind == 'alarm']
        self.assertEqual([(a.serial, a.code) for a in alarms], [(meter.serial, 256)])
        self.assertEqual(alarms[0].text, "Fraud attempt (tamper)")


def insert_events(meter, rows) -> int:
    "As the head-end stores events read from a meter"
    return rd.insert_new(
        'prepaid.headend.event', meter.id, rows, key=('log', 'timestamp', 'code')
    )


def drain(subscriber: Subscriber, count: int, first_only: bool = False) -> list:
    """Up to ``count`` messages, each wait bounded.  ``first_only``: after the
    first message take only what already arrived (used to show that nothing
    else was published before it)."""
    out = subscriber.get_batch(count, WAIT)
    while out and len(out) < count and not first_only:
        more = subscriber.get_batch(count - len(out), WAIT)
        if not more:
            break
        out += more
    return out


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def forget_session(client_id: str) -> None:
    "Remove a persistent session from the broker (clean session connect)"
    cleaner = Subscriber(BROKER, ['prepaid/none/meters/+/events'], client_id=client_id)
    cleaner.start()
    cleaner.stop()


@pytest.mark.usefixtures('mosquitto')
class MqttConcentratorAlarmTestCase(unittest.TestCase):
    "Concentrator alarms over MQTT, on their own topics"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('prepaid_headend')

    @classmethod
    def tearDownClass(cls):
        mqtt_bridge.close_publishers()
        super().tearDownClass()

    @with_company
    def test_concentrator_alarms_published_after_commit(self):
        "Group 100 and the concentrator's alarm codes; not its plain events"
        from trytond.modules.prepaid_headend import dcu

        site = f"t{uuid.uuid4().hex[:12]}"
        dc_id = f"DCU-{uuid.uuid4().hex[:6].upper()}"
        Communication = Pool().get('prepaid.headend.communication')
        config = Communication(1)
        config.mqtt_enabled = True
        config.mqtt_host, config.mqtt_port = BROKER.host, BROKER.port
        config.mqtt_tls = False
        config.mqtt_site = site
        config.mqtt_timeout = WAIT
        config.save()
        received = RawSubscriber(concentrator_alarms_filter(site))
        self.addCleanup(received.stop)
        # Meter alarm subscribers never see a concentrator's payload.
        meters = Subscriber(BROKER, [alarms_filter(site)], direction='alarms')
        meters.start()
        self.addCleanup(meters.stop)

        Concentrator = Pool().get('prepaid.concentrator')
        Event = Pool().get('prepaid.concentrator.event')
        (record,) = Concentrator.create([{'dc_id': dc_id}])
        Event.raise_alarm(record, dcu.EV_OFFLINE, "silent since 10:00")
        Event.raise_alarm(record, dcu.EV_ONLINE, "back", alarm=False)
        Event.create(
            [
                {
                    'concentrator': record.id,
                    'dc_id': dc_id,
                    'timestamp': WHEN,
                    'group': group,
                    'code': code,
                    'meter_id': meter_id,
                    'alarm': (group, code) in dcu.DC_ALARMS,
                    'key': f'{dc_id}-{group}-{code}',
                }
                for group, code, meter_id in ((4, 16, None), (5, 1, '00010001'))
            ]
        )
        # A stranger's claimed id that cannot be a topic level: stored, not
        # published (and not an error for the transaction).
        with self.assertLogs(mqtt_bridge.logger, 'ERROR'):
            Event.raise_alarm(None, dcu.EV_REFUSED_IDENTITY, "who?", dc_id='a/b')
        self.assertEqual(received.take(10, 0.5), [])
        Transaction().commit()
        messages = received.take(2, WAIT)
        self.assertEqual(received.take(10, 0.5), [])
        self.assertEqual(
            sorted((t, a.source, a.group, a.code) for t, a in messages),
            [
                (f"prepaid/{site}/concentrators/{dc_id}/alarms", dc_id, 4, 16),
                (f"prepaid/{site}/concentrators/{dc_id}/alarms", 'hes', 100, 3),
            ],
        )
        offline = next(a for _, a in messages if a.group == 100)
        self.assertEqual(offline.dc_id, dc_id)
        self.assertEqual(offline.text, "silent since 10:00")
        self.assertEqual(meters.get_batch(10, 0.2), [])
        self.assertEqual(meters.stats.received, 0)

    @with_transaction()
    def test_rolled_back_concentrator_alarm_is_not_published(self):
        "A rollback drops the queued concentrator alarms"
        from trytond.modules.prepaid_headend import dcu

        company = utility('MQTT DCU rollback utility')
        Transaction().commit()
        site = f"t{uuid.uuid4().hex[:12]}"
        tag = uuid.uuid4().hex[:6].upper()
        received = RawSubscriber(concentrator_alarms_filter(site))
        self.addCleanup(received.stop)
        pool = Pool()
        Communication = pool.get('prepaid.headend.communication')
        Concentrator = pool.get('prepaid.concentrator')
        Event = pool.get('prepaid.concentrator.event')

        def configure():
            config = Communication(1)
            config.mqtt_enabled = True
            config.mqtt_host, config.mqtt_port = BROKER.host, BROKER.port
            config.mqtt_tls = False
            config.mqtt_site = site
            config.mqtt_timeout = WAIT
            config.save()

        with Transaction().set_context(company=company.id):
            configure()
            (gone,) = Concentrator.create([{'dc_id': f'RB1-{tag}'}])
            Event.raise_alarm(gone, dcu.EV_REFUSED_INPUT, "malformed")
            Transaction().rollback()
            configure()
            (kept,) = Concentrator.create([{'dc_id': f'RB2-{tag}'}])
            Event.raise_alarm(kept, dcu.EV_REFUSED_INPUT, "malformed")
            Transaction().commit()
        messages = received.take(2, WAIT)
        self.assertEqual(
            [(a.dc_id, a.group, a.code) for _, a in messages],
            [(f'RB2-{tag}', dcu.HEADEND_GROUP, dcu.EV_REFUSED_INPUT)],
        )


class RawSubscriber:
    "paho on the real broker, decoding concentrator alarms"

    def __init__(self, topic_filter: str):
        import queue

        import paho.mqtt.client as paho

        self.items: queue.Queue = queue.Queue()
        subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe(topic_filter, 1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda c, u, msg: self.items.put(
            (msg.topic, decode_alarm(msg.payload))
        )
        self.client.connect(BROKER.host, BROKER.port)
        self.client.loop_start()
        if not subscribed.wait(WAIT):
            self.stop()
            raise AssertionError(f"no subscription to {topic_filter}")

    def take(self, count: int, timeout: float) -> list:
        import queue

        out = []
        try:
            while len(out) < count:
                out.append(self.items.get(timeout=timeout))
        except queue.Empty:
            pass
        return out

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
