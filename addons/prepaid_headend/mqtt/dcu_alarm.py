"""JSON message of a concentrator alarm, published by the head-end.

Topic ``prepaid/<site>/concentrators/<dc_id>/alarms`` (QoS 1, after the
commit, as the meters' alarms). One JSON object, UTF-8, at most 16 KiB, no
other member allowed::

    {
      "dc_id": "DEMO-DCU-1",                # concentrator id, 1-64 of [A-Za-z0-9._-]
      "timestamp": "2026-01-02T03:04:05Z",  # ISO 8601 UTC
      "source": "hes",                      # "hes" (group 100) or the concentrator
      "group": 100,                         # docs/concentrators.md sections 8 and 9
      "code": 3,
      "meter_id": "00010004",               # optional: the meter concerned
      "text": "..."                         # optional, at most 256 characters
    }

Receivers are idempotent on (dc_id, timestamp, group, code, meter_id).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from .codec import (
    IDENTIFIER,
    MAX_PAYLOAD,
    MAX_TEXT,
    SOURCE,
    MessageError,
    format_timestamp,
    parse_timestamp,
)

REQUIRED = ('dc_id', 'timestamp', 'source', 'group', 'code')
OPTIONAL = ('meter_id', 'text')


@dataclasses.dataclass(frozen=True)
class ConcentratorAlarm:
    dc_id: str
    timestamp: dt.datetime  # aware, UTC
    source: str
    group: int
    code: int
    meter_id: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        for name, pattern in (('dc_id', IDENTIFIER), ('source', SOURCE)):
            value = getattr(self, name)
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise MessageError('value', f"{name} {str(value)[:70]!r} is invalid")
        if self.meter_id is not None and (
            not isinstance(self.meter_id, str)
            or not IDENTIFIER.fullmatch(self.meter_id)
        ):
            raise MessageError(
                'value', f"meter_id {str(self.meter_id)[:70]!r} is invalid"
            )
        if not isinstance(self.timestamp, dt.datetime) or (
            self.timestamp.utcoffset() != dt.timedelta(0)
        ):
            raise MessageError('timestamp', "timestamp must be an aware UTC datetime")
        for name in ('group', 'code'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise MessageError('type', f"{name} must be an integer")
            if not 0 <= value <= 0xFFFF:
                raise MessageError('value', f"{name} {value} is outside 0..65535")
        if self.text is not None and (
            not isinstance(self.text, str) or len(self.text) > MAX_TEXT
        ):
            raise MessageError('value', f"text must be a string of <= {MAX_TEXT}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            'dc_id': self.dc_id,
            'timestamp': format_timestamp(self.timestamp),
            'source': self.source,
            'group': self.group,
            'code': self.code,
        }
        if self.meter_id is not None:
            out['meter_id'] = self.meter_id
        if self.text is not None:
            out['text'] = self.text
        return out


def encode_alarm(alarm: ConcentratorAlarm) -> bytes:
    return json.dumps(alarm.to_dict(), separators=(',', ':')).encode('utf-8')


def decode_alarm(payload: bytes | str) -> ConcentratorAlarm:
    "Parse and validate one payload; raise MessageError on any problem."
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    if len(payload) > MAX_PAYLOAD:
        raise MessageError('too_large', f"payload exceeds {MAX_PAYLOAD} bytes")
    try:
        data = json.loads(bytes(payload).decode('utf-8'))
    except UnicodeDecodeError as error:
        raise MessageError('encoding', f"payload is not UTF-8: {error}") from None
    except json.JSONDecodeError as error:
        raise MessageError('json', f"payload is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise MessageError('not_object', "payload must be a JSON object")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise MessageError('missing_field', f"missing field(s): {', '.join(missing)}")
    unknown = sorted(k for k in data if k not in REQUIRED + OPTIONAL)
    if unknown:
        raise MessageError('unknown_field', f"unknown field(s): {', '.join(unknown)}")
    return ConcentratorAlarm(
        dc_id=data['dc_id'],
        timestamp=parse_timestamp(data['timestamp']),
        source=data['source'],
        group=data['group'],
        code=data['code'],
        meter_id=data.get('meter_id'),
        text=data.get('text'),
    )
