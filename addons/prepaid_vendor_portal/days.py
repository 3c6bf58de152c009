"""The utility's business day, pure Python (no trytond import).

A business day of date D runs from ``day_start`` on D to ``day_start`` on
the next date, in the utility's time zone: midnight by default (the day
over which a vendor's daily limits count), or the time the API terminals'
daily batch closes (the day a settlement file covers).  A day is 23 or 25
hours long when the clocks change.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

MIDNIGHT = dt.time()
_DAY = dt.timedelta(days=1)


def business_day(
    when: dt.date | dt.datetime, timezone: ZoneInfo, day_start: dt.time = MIDNIGHT
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a business day, as aware UTC datetimes (what the
    database compares with; differences of them are true durations).

    ``when`` is the business date, or an aware moment: then the business
    day holding it."""
    if day_start.tzinfo is not None:
        raise ValueError("day_start is a local time of day: without a time zone")
    if not isinstance(when, dt.datetime):
        return _bounds(when, timezone, day_start)
    if when.tzinfo is None:
        raise ValueError("the moment needs a time zone")
    local = when.astimezone(timezone)
    day = local.date() - (_DAY if local.time() < day_start else dt.timedelta())
    start, end = _bounds(day, timezone, day_start)
    # A day_start that the clocks skip (02:30 on the night they go forward)
    # can put the moment one side of its local date's bounds.
    if when < start:
        return _bounds(day - _DAY, timezone, day_start)
    if when >= end:
        return _bounds(day + _DAY, timezone, day_start)
    return start, end


def _bounds(
    day: dt.date, timezone: ZoneInfo, day_start: dt.time
) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, day_start, timezone)
    end = dt.datetime.combine(day + _DAY, day_start, timezone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)
