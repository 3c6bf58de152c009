"""JSON message of a meter event or alarm, with strict validation.

Schema (one JSON object, UTF-8, at most 16 KiB, no other member allowed)::

    {
      "serial": "SIM0",                    # meter serial, 1-64 of [A-Za-z0-9._-]
      "timestamp": "2026-01-02T03:04:05Z", # ISO 8601, UTC ("Z" or "+00:00"),
                                           # seconds required, fraction allowed
      "source": "DC-0007",                 # meter or concentrator id, 1-64 chars
      "kind": "event",                     # "event" or "alarm"
      "code": 53,                          # integer 0 .. 2**32 - 1
      "log": "disconnector",               # optional, events only: "standard"
                                           # (default) or "disconnector"
      "text": "Limiter threshold exceeded",  # optional, at most 256 characters
      "registers": {"1.0.1.8.0.255": 1234.5} # optional, OBIS -> number, <= 64
    }

For an ``alarm`` the code is the value of the alarm register (bit field, IDIS
0-0:97.98.0.255); for an ``event`` it is the event code of the log.  Every
problem raises :class:`MessageError` whose ``reason`` is one of
:data:`REASONS` (counted by the subscriber) and whose text says what to fix.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import Any

MAX_PAYLOAD = 16 * 1024
MAX_TEXT = 256
MAX_REGISTERS = 64
MAX_CODE = 2**32 - 1
KINDS = ('event', 'alarm')
EVENT_LOGS = ('standard', 'disconnector')
REQUIRED = ('serial', 'timestamp', 'source', 'kind', 'code')
OPTIONAL = ('log', 'text', 'registers')
REASONS = (
    'too_large',
    'encoding',
    'json',
    'not_object',
    'missing_field',
    'unknown_field',
    'type',
    'value',
    'timestamp',
    'topic',
)
IDENTIFIER = re.compile(r'[A-Za-z0-9._-]{1,64}')
SOURCE = re.compile(r'[\x21-\x7e]{1,64}')  # printable ASCII, no spaces
OBIS = re.compile(
    r'(?:25[0-5]|2[0-4]\d|1\d\d|\d{1,2})(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|\d{1,2})){5}'
)
# Strict ISO 8601 in UTC: date, "T", time with seconds, optional fraction,
# explicit UTC designator (a local time or another offset is refused rather
# than guessed).
TIMESTAMP = re.compile(
    r'(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|\+00:00)'
)


class MessageError(ValueError):
    "A payload that is not a valid event/alarm message"

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS, reason
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class EventMessage:
    serial: str
    timestamp: dt.datetime  # aware, UTC
    source: str
    kind: str
    code: int
    log: str | None = None
    text: str | None = None
    registers: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        # The same checks for messages built in code and decoded ones: the
        # head-end never publishes what it would refuse to read.
        _check(self)

    @property
    def event_log(self) -> str:
        "The head-end log the message belongs to"
        if self.kind == 'alarm':
            return 'alarm'
        return self.log or 'standard'

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            'serial': self.serial,
            'timestamp': format_timestamp(self.timestamp),
            'source': self.source,
            'kind': self.kind,
            'code': self.code,
        }
        if self.log is not None:
            out['log'] = self.log
        if self.text is not None:
            out['text'] = self.text
        if self.registers is not None:
            out['registers'] = dict(self.registers)
        return out


def format_timestamp(moment: dt.datetime) -> str:
    moment = moment.astimezone(dt.UTC)
    text = moment.strftime('%Y-%m-%dT%H:%M:%S')
    if moment.microsecond:
        text += f'.{moment.microsecond:06d}'
    return text + 'Z'


def parse_timestamp(text: Any) -> dt.datetime:
    if not isinstance(text, str):
        raise MessageError('timestamp', "timestamp must be a string")
    match = TIMESTAMP.fullmatch(text)
    if not match:
        raise MessageError(
            'timestamp',
            f"timestamp {text[:40]!r} is not ISO 8601 UTC "
            "(expected YYYY-MM-DDTHH:MM:SS[.ffffff]Z)",
        )
    year, month, day, hour, minute, second, fraction, _zone = match.groups()
    try:
        return dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or '0').ljust(6, '0')),
            tzinfo=dt.UTC,
        )
    except ValueError as error:
        raise MessageError(
            'timestamp', f"timestamp {text!r} is not a valid date/time: {error}"
        ) from None


def encode(message: EventMessage) -> bytes:
    payload = json.dumps(
        message.to_dict(), separators=(',', ':'), ensure_ascii=False, allow_nan=False
    ).encode('utf-8')
    if len(payload) > MAX_PAYLOAD:
        raise MessageError(
            'too_large', f"message of {len(payload)} bytes exceeds {MAX_PAYLOAD}"
        )
    return payload


def decode(payload: bytes | bytearray | str) -> EventMessage:
    "Parse and validate one payload; raise MessageError on any problem."
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    if len(payload) > MAX_PAYLOAD:
        raise MessageError(
            'too_large',
            f"payload of {len(payload)} bytes exceeds the limit of {MAX_PAYLOAD}",
        )
    try:
        text = bytes(payload).decode('utf-8')
    except UnicodeDecodeError as error:
        raise MessageError('encoding', f"payload is not UTF-8: {error}") from None
    try:
        data = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except MessageError:
        raise
    except (json.JSONDecodeError, RecursionError) as error:
        raise MessageError('json', f"payload is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise MessageError(
            'not_object', f"payload must be a JSON object, not {type(data).__name__}"
        )
    return from_dict(data)


def from_dict(data: Mapping[str, Any]) -> EventMessage:
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise MessageError('missing_field', f"missing field(s): {', '.join(missing)}")
    unknown = sorted(k for k in data if k not in REQUIRED + OPTIONAL)
    if unknown:
        raise MessageError(
            'unknown_field',
            f"unknown field(s): {', '.join(unknown)[:200]} "
            f"(allowed: {', '.join(REQUIRED + OPTIONAL)})",
        )
    registers = data.get('registers')
    return EventMessage(
        serial=data['serial'],
        timestamp=parse_timestamp(data['timestamp']),
        source=data['source'],
        kind=data['kind'],
        code=data['code'],
        log=data.get('log'),
        text=data.get('text'),
        registers=dict(registers) if isinstance(registers, dict) else registers,
    )


def _check(m: EventMessage) -> None:
    _string(m.serial, 'serial', IDENTIFIER, "1-64 of A-Z a-z 0-9 . _ -")
    _string(m.source, 'source', SOURCE, "1-64 printable ASCII characters")
    if not isinstance(m.timestamp, dt.datetime) or m.timestamp.utcoffset() != (
        dt.timedelta(0)
    ):
        raise MessageError('timestamp', "timestamp must be an aware UTC datetime")
    if m.kind not in KINDS:
        raise MessageError('value', f"kind must be 'event' or 'alarm', not {m.kind!r}")
    if not isinstance(m.code, int) or isinstance(m.code, bool):
        raise MessageError('type', "code must be an integer")
    if not 0 <= m.code <= MAX_CODE:
        raise MessageError('value', f"code {m.code} is outside 0..{MAX_CODE}")
    if m.log is not None:
        if m.kind != 'event':
            raise MessageError('value', "log is only allowed on events")
        if m.log not in EVENT_LOGS:
            raise MessageError(
                'value', f"log must be one of {', '.join(EVENT_LOGS)}, not {m.log!r}"
            )
    if m.text is not None:
        if not isinstance(m.text, str):
            raise MessageError('type', "text must be a string")
        if len(m.text) > MAX_TEXT:
            raise MessageError('value', f"text is longer than {MAX_TEXT} characters")
    if m.registers is not None:
        _check_registers(m.registers)


def _check_registers(registers: Any) -> None:
    if not isinstance(registers, Mapping):
        raise MessageError('type', "registers must be an object {OBIS: number}")
    if len(registers) > MAX_REGISTERS:
        raise MessageError('value', f"more than {MAX_REGISTERS} registers")
    for obis, value in registers.items():
        if not isinstance(obis, str) or not OBIS.fullmatch(obis):
            raise MessageError(
                'value', f"register name {str(obis)[:40]!r} is not an OBIS a.b.c.d.e.f"
            )
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise MessageError('type', f"register {obis} must be a finite number")


def _string(value: Any, name: str, pattern: re.Pattern[str], rule: str) -> None:
    if not isinstance(value, str):
        raise MessageError('type', f"{name} must be a string")
    if not pattern.fullmatch(value):
        raise MessageError('value', f"{name} {value[:70]!r} is invalid ({rule})")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated member would let two parsers read two different messages.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MessageError('json', f"duplicate member {key[:40]!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise MessageError('json', f"{name} is not valid JSON")
