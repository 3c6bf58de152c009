"""The business day: midnight or a batch close time, clock changes, and a
moment's day."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from trytond.modules.prepaid_vendor_portal.days import business_day

SAST = ZoneInfo("Africa/Johannesburg")  # UTC+2, no daylight saving
LONDON = ZoneInfo("Europe/London")  # summer time from 01:00 UTC, 29 March 2026
UTC = dt.UTC


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_a_date_with_a_batch_close_time():
    # API terminals' daily batch closes at 22:00: the business day of 5 March
    # runs from 22:00 on the 5th to 22:00 on the 6th, local time.
    start, end = business_day(dt.date(2026, 3, 5), SAST, dt.time(22))
    assert (start, end) == (utc(2026, 3, 5, 20), utc(2026, 3, 6, 20))
    assert start.tzinfo is end.tzinfo is UTC


def test_a_moment_and_a_clock_change():
    start, end = business_day(utc(2026, 3, 29, 12), LONDON)
    assert (start, end - start) == (utc(2026, 3, 29), dt.timedelta(hours=23))
    # 23:30 UTC on 3 March is already 4 March in Johannesburg.
    assert business_day(utc(2026, 3, 3, 23, 30), SAST)[0] == utc(2026, 3, 3, 22)
    # Before the batch close time, a moment is in the previous business day.
    assert business_day(utc(2026, 3, 6, 19, 59), SAST, dt.time(22)) == (
        business_day(dt.date(2026, 3, 5), SAST, dt.time(22)))  # fmt: skip


def test_days_partition_time_even_when_the_day_start_is_skipped():
    # 01:30 does not exist in London on 29 March 2026 (01:00 GMT is 02:00
    # BST): every moment still falls in exactly one day, and consecutive
    # days meet.
    close = dt.time(1, 30)
    moments = [utc(2026, 3, 28, 23) + dt.timedelta(minutes=10 * n) for n in range(30)]
    for moment in moments:
        start, end = business_day(moment, LONDON, close)
        assert start <= moment < end
        assert business_day(end, LONDON, close)[0] == end


@pytest.mark.parametrize(
    "when, day_start, error",
    [
        (dt.datetime(2026, 3, 5, 10), dt.time(), "needs a time zone"),
        (dt.date(2026, 3, 5), dt.time(22, tzinfo=UTC), "without a time zone"),
    ],
)
def test_naive_moments_and_aware_day_starts_are_refused(when, day_start, error):
    with pytest.raises(ValueError, match=error):
        business_day(when, SAST, day_start)
