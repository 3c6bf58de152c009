"""The limits a manager types on a vendor, outlet, terminal or operator form,
read into :mod:`.limits` values.  Pure Python (no trytond import).

- allowed networks: one address or CIDR network a line (``10.0.0.0/8``,
  ``2001:db8::/32``, ``192.0.2.7``); empty: any address;
- selling hours: one window a line, ``[days] HH:MM-HH:MM`` where days is a
  day (``Sat``), a range (``Mon-Fri``) or a list (``Mon,Wed,Fri``) and
  defaults to every day; a window whose end is not after its start crosses
  midnight (``22:00-02:00``), as :class:`.limits.Hours` says; empty: any time.

Bad text raises ``ValueError`` naming the line, and nothing is kept.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re

from .limits import Hours, Network

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^(?:(?P<days>[A-Za-z ,\-]+?)\s+)?"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$"
)


def _lines(text: str | None) -> list[tuple[int, str]]:
    return [
        (number, line.strip())
        for number, line in enumerate((text or "").splitlines(), 1)
        if line.strip() and not line.strip().startswith("#")
    ]


def parse_networks(text: str | None) -> tuple[Network, ...]:
    "The networks of text, one a line (a bare address is its /32 or /128)"
    networks = []
    for number, line in _lines(text):
        try:
            # strict: 10.0.0.1/8 is a typing error, not the network 10/8.
            networks.append(ipaddress.ip_network(line, strict=True))
        except ValueError as exc:
            raise ValueError(
                f"line {number}: {line!r} is not a network ({exc})"
            ) from None
    return tuple(networks)


def _day(name: str, line: int) -> int:
    try:
        return DAYS.index(name.strip().lower()[:3])
    except ValueError:
        raise ValueError(f"line {line}: {name.strip()!r} is not a day") from None


def _days(text: str | None, line: int) -> frozenset[int]:
    if not text:
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        start = _day(first, line)
        if not last:
            days.add(start)
            continue
        end = _day(last, line)
        span = (end - start) % 7  # Fri-Mon wraps over the weekend
        days.update((start + i) % 7 for i in range(span + 1))
    return frozenset(days)


def _time(text: str, line: int) -> dt.time:
    hour, minute = (int(part) for part in text.split(":"))
    if hour == 24 and minute == 0:
        # "until midnight": the last minute of the day, as 08:00-24:00 reads.
        return dt.time(23, 59, 59, 999999)
    try:
        return dt.time(hour, minute)
    except ValueError:
        raise ValueError(f"line {line}: {text!r} is not a time of day") from None


def parse_hours(text: str | None) -> tuple[Hours, ...]:
    "The selling windows of text, one a line"
    windows = []
    for number, line in _lines(text):
        match = _WINDOW.match(line)
        if not match:
            raise ValueError(
                f"line {number}: {line!r} is not '[days] HH:MM-HH:MM' "
                "(e.g. 'Mon-Fri 08:00-17:00')"
            )
        start = _time(match["start"], number)
        end = _time(match["end"], number)
        if start == end:
            raise ValueError(f"line {number}: a window needs an end after its start")
        window = Hours(start, end, _days(match["days"], number))
        window.validate(f"line {number}")
        windows.append(window)
    return tuple(windows)
