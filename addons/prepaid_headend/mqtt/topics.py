"""Topic layout (documented in the package docstring).

Site names and serials become topic levels, so they are restricted to
characters that can never be MQTT wildcards or level separators.
"""

from __future__ import annotations

import re

PREFIX = 'prepaid'
LEVEL = re.compile(r'[A-Za-z0-9._-]{1,64}')


class TopicError(ValueError):
    "A topic or topic level outside the layout"


def _level(value: str, what: str) -> str:
    if not isinstance(value, str) or not LEVEL.fullmatch(value):
        raise TopicError(
            f"{what} {str(value)[:70]!r} cannot be a topic level "
            "(1-64 of A-Z a-z 0-9 . _ -)"
        )
    return value


def events_topic(site: str, serial: str) -> str:
    "Inbound: where a meter or its concentrator publishes the meter's events"
    return f"{PREFIX}/{_level(site, 'site')}/meters/{_level(serial, 'serial')}/events"


def events_filter(site: str) -> str:
    "Subscription of the ingest: the events of every meter of the site"
    return f"{PREFIX}/{_level(site, 'site')}/meters/+/events"


def alarm_topic(site: str, serial: str) -> str:
    "Outbound: where the head-end publishes a meter's alarms"
    return f"{PREFIX}/{_level(site, 'site')}/alarms/{_level(serial, 'serial')}"


def alarms_filter(site: str) -> str:
    return f"{PREFIX}/{_level(site, 'site')}/alarms/#"


def concentrator_alarm_topic(site: str, dc_id: str) -> str:
    "Outbound: where the head-end publishes a concentrator's alarms"
    return (
        f"{PREFIX}/{_level(site, 'site')}/concentrators/"
        f"{_level(dc_id, 'concentrator id')}/alarms"
    )


def concentrator_alarms_filter(site: str) -> str:
    return f"{PREFIX}/{_level(site, 'site')}/concentrators/+/alarms"


def parse_topic(topic: str) -> tuple[str, str, str]:
    """Return (direction, site, serial); direction is 'events' or 'alarms'."""
    parts = topic.split('/')
    if (
        len(parts) == 5
        and parts[0] == PREFIX
        and parts[2] == 'meters'
        and parts[4] == 'events'
    ):
        direction, site, serial = 'events', parts[1], parts[3]
    elif len(parts) == 4 and parts[0] == PREFIX and parts[2] == 'alarms':
        direction, site, serial = 'alarms', parts[1], parts[3]
    else:
        raise TopicError(f"topic {topic[:120]!r} is outside the prepaid layout")
    _level(site, 'site')
    _level(serial, 'serial')
    return direction, site, serial
