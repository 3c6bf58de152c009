"""Event/alarm message codec and topic layout (pure Python, no broker)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trytond.modules.prepaid_headend.mqtt import codec, topics
from trytond.modules.prepaid_headend.mqtt.codec import (
    MAX_PAYLOAD,
    EventMessage,
    MessageError,
    decode,
    encode,
)

GOOD = {
    'serial': 'SIM0',
    'timestamp': '2026-01-02T03:04:05Z',
    'source': 'DC-0007',
    'kind': 'event',
    'code': 53,
}


def payload(**changes) -> bytes:
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def test_decode_minimal_event():
    message = decode(payload())
    assert message == EventMessage(
        serial='SIM0',
        timestamp=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        source='DC-0007',
        kind='event',
        code=53,
    )
    assert message.event_log == 'standard'


def test_decode_full_alarm_and_round_trip():
    data = payload(
        kind='alarm',
        code=1 << 8,
        timestamp='2026-01-02T03:04:05.250+00:00',
        text='Fraud attempt (tamper) — cover opened',
        registers={'1.0.1.8.0.255': 1234.5, '0.0.96.3.10.255': 0},
    )
    message = decode(data)
    assert message.kind == 'alarm'
    assert message.event_log == 'alarm'
    assert message.timestamp.microsecond == 250_000
    assert message.registers == {'1.0.1.8.0.255': 1234.5, '0.0.96.3.10.255': 0}
    assert decode(encode(message)) == message
    # The encoding is canonical: compact JSON, UTC written with "Z".
    assert b'"timestamp":"2026-01-02T03:04:05.250000Z"' in encode(message)


def test_disconnector_log():
    assert decode(payload(log='disconnector')).event_log == 'disconnector'


def test_payload_limit_is_16_kib():
    base = payload()
    exact = base[:-1] + b' ' * (MAX_PAYLOAD - len(base)) + b'}'
    assert len(exact) == MAX_PAYLOAD
    assert decode(exact).code == 53
    with pytest.raises(MessageError, match='exceeds') as info:
        decode(exact + b' ')
    assert info.value.reason == 'too_large'


@pytest.mark.parametrize(
    ('data', 'reason', 'text'),
    [
        (b'{"serial": "SIM0", ', 'json', 'not valid JSON'),
        (b'\xff\xfe{}', 'encoding', 'not UTF-8'),
        (b'[1, 2]', 'not_object', 'JSON object'),
        (b'"event"', 'not_object', 'JSON object'),
        (payload(code=...), 'missing_field', 'code'),
        (payload(serial=..., source=...), 'missing_field', 'serial, source'),
        (payload(extra=1), 'unknown_field', 'extra'),
        (payload(timestamp='2026-01-02 03:04:05'), 'timestamp', 'ISO 8601 UTC'),
        (payload(timestamp='2026-01-02T03:04:05'), 'timestamp', 'ISO 8601 UTC'),
        (payload(timestamp='2026-01-02T03:04:05+02:00'), 'timestamp', 'UTC'),
        (payload(timestamp='2026-01-02'), 'timestamp', 'ISO 8601'),
        (payload(timestamp='2026-02-30T00:00:00Z'), 'timestamp', 'not a valid'),
        (payload(timestamp=1767322245), 'timestamp', 'string'),
        (payload(kind='warning'), 'value', 'kind'),
        (payload(code='53'), 'type', 'integer'),
        (payload(code=True), 'type', 'integer'),
        (payload(code=5.0), 'type', 'integer'),
        (payload(code=-1), 'value', 'outside'),
        (payload(code=2**32), 'value', 'outside'),
        (payload(serial='SIM/0'), 'value', 'serial'),
        (payload(serial='+'), 'value', 'serial'),
        (payload(serial=''), 'value', 'serial'),
        (payload(serial=7), 'type', 'serial'),
        (payload(source='has space'), 'value', 'source'),
        (payload(text='x' * 257), 'value', 'text'),
        (payload(text=5), 'type', 'text'),
        (payload(log='alarm'), 'value', 'log'),
        (payload(kind='alarm', log='standard'), 'value', 'only allowed on events'),
        (payload(registers=[1, 2]), 'type', 'registers'),
        (payload(registers={'1.0.1.8.0': 1}), 'value', 'OBIS'),
        (payload(registers={'1.0.1.8.0.256': 1}), 'value', 'OBIS'),
        (payload(registers={'1.0.1.8.0.255': '12'}), 'type', 'finite number'),
        (
            payload(registers={f'1.0.{i}.8.0.255': i for i in range(65)}),
            'value',
            'more than 64',
        ),
        (
            b'{"serial":"SIM0","serial":"SIM1","timestamp":"2026-01-02T03:04:05Z",'
            b'"source":"x","kind":"event","code":1}',
            'json',
            'duplicate',
        ),
        (
            payload()[:-1] + b',"registers":{"1.0.1.8.0.255":NaN}}',
            'json',
            'NaN',
        ),
        (b'[' * 5000 + b']' * 5000, 'json', 'JSON'),
    ],
)
def test_malformed(data, reason, text):
    with pytest.raises(MessageError, match=text) as info:
        decode(data)
    assert info.value.reason == reason


def test_encode_refuses_invalid_message():
    with pytest.raises(MessageError, match='aware UTC'):
        EventMessage('SIM0', dt.datetime(2026, 1, 1), 'hes', 'alarm', 1)
    with pytest.raises(MessageError, match='kind'):
        EventMessage('SIM0', dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 'hes', 'x', 1)


def test_topics():
    assert topics.events_topic('site-1', 'SIM0') == 'prepaid/site-1/meters/SIM0/events'
    assert topics.alarm_topic('site-1', 'SIM0') == 'prepaid/site-1/alarms/SIM0'
    assert topics.events_filter('site-1') == 'prepaid/site-1/meters/+/events'
    assert topics.alarms_filter('site-1') == 'prepaid/site-1/alarms/#'
    assert topics.parse_topic('prepaid/s/meters/M1/events') == ('events', 's', 'M1')
    assert topics.parse_topic('prepaid/s/alarms/M1') == ('alarms', 's', 'M1')
    for bad in ('prepaid/s/meters/M1', 'other/s/alarms/M1', 'prepaid/s/alarms/M1/x'):
        with pytest.raises(topics.TopicError, match='outside'):
            topics.parse_topic(bad)
    with pytest.raises(topics.TopicError, match='serial'):
        topics.parse_topic('prepaid/s/alarms/' + 'x' * 65)
    for level in ('a/b', '#', '+', '', 'a b'):
        with pytest.raises(topics.TopicError, match='topic level'):
            topics.alarm_topic('site', level)


messages = st.builds(
    EventMessage,
    serial=st.from_regex(codec.IDENTIFIER, fullmatch=True),
    timestamp=st.datetimes(
        min_value=dt.datetime(1970, 1, 1),
        max_value=dt.datetime(9999, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    source=st.from_regex(codec.SOURCE, fullmatch=True),
    kind=st.sampled_from(codec.KINDS),
    code=st.integers(0, codec.MAX_CODE),
    text=st.none() | st.text(max_size=codec.MAX_TEXT),
    registers=st.none()
    | st.dictionaries(
        st.sampled_from(['1.0.1.8.0.255', '1.0.2.8.0.255', '0.0.96.3.10.255']),
        st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False),
    ),
)


@settings(max_examples=60, deadline=None)
@given(messages)
def test_round_trip_property(message):
    assert decode(encode(message)) == message


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_input_only_raises_message_error(data):
    try:
        decode(data)
    except MessageError as error:
        assert error.reason in codec.REASONS


# --- concentrator alarms ------------------------------------------------------
DCU_GOOD = {
    'dc_id': 'DEMO-DCU-1',
    'timestamp': '2026-01-15T10:00:00Z',
    'source': 'hes',
    'group': 100,
    'code': 3,
}


def test_concentrator_alarm_round_trip_and_topic():
    from trytond.modules.prepaid_headend.mqtt.dcu_alarm import (
        decode_alarm,
        encode_alarm,
    )

    alarm = decode_alarm(json.dumps({**DCU_GOOD, 'meter_id': '00010001'}))
    assert (alarm.dc_id, alarm.group, alarm.code, alarm.meter_id) == (
        'DEMO-DCU-1',
        100,
        3,
        '00010001',
    )
    assert alarm.timestamp == dt.datetime(2026, 1, 15, 10, tzinfo=dt.UTC)
    assert decode_alarm(encode_alarm(alarm)) == alarm
    assert (
        topics.concentrator_alarm_topic('main', 'DEMO-DCU-1')
        == 'prepaid/main/concentrators/DEMO-DCU-1/alarms'
    )
    assert topics.concentrator_alarms_filter('main') == (
        'prepaid/main/concentrators/+/alarms'
    )
    # Not a meter alarm topic: a meter alarm subscriber refuses it.
    with pytest.raises(topics.TopicError):
        topics.parse_topic('prepaid/main/concentrators/DEMO-DCU-1/alarms')
    with pytest.raises(topics.TopicError, match='concentrator id'):
        topics.concentrator_alarm_topic('main', 'a/b')


@pytest.mark.parametrize(
    ('changes', 'reason', 'text'),
    [
        ({'dc_id': 'DC 1'}, 'value', 'dc_id'),
        ({'group': '100'}, 'type', 'group must be an integer'),
        ({'code': True}, 'type', 'code must be an integer'),
        ({'code': 70000}, 'value', 'outside'),
        ({'timestamp': '2026-01-15 10:00'}, 'timestamp', 'ISO 8601'),
        ({'meter_id': '#'}, 'value', 'meter_id'),
        ({'extra': 1}, 'unknown_field', 'extra'),
        ({'text': 'x' * 257}, 'value', 'text'),
    ],
)
def test_concentrator_alarm_malformed(changes, reason, text):
    from trytond.modules.prepaid_headend.mqtt.dcu_alarm import decode_alarm

    with pytest.raises(MessageError, match=text) as error:
        decode_alarm(json.dumps({**DCU_GOOD, **changes}))
    assert error.value.reason == reason
    for missing in DCU_GOOD:
        data = {k: v for k, v in DCU_GOOD.items() if k != missing}
        with pytest.raises(MessageError, match=missing):
            decode_alarm(json.dumps(data))
    with pytest.raises(MessageError) as error:
        decode_alarm(b'[1]')
    assert error.value.reason == 'not_object'
