"""Time-of-use calendars: rates, day profiles, week profiles, seasons, special days.

The structure mirrors the DLMS activity calendar (class 20) and special days table
(class 11) so that a tariff can be written to a meter unchanged: a *season* starts
on a day of the year and selects a *week profile*; a week profile names a *day
profile* for each weekday; a day profile switches between *rates* at given times.
A *special day* (holiday) overrides the week profile with its own day profile.

Vend time cannot price TOU on kWh-register meters (docs/vending.md section 8): TOU is
priced per load-profile interval for remote-prepaid billing (:func:`price_intervals`)
or, for currency-credit meters, the vend loads money and the meter applies the rates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from .errors import TariffError

MAX_RATES = 8
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class TouRate:
    """One TOU rate (register index 1-8) and its energy price per kWh."""

    index: int
    name: str
    price: Decimal


@dataclass(frozen=True)
class DaySwitch:
    """From ``start`` until the next switch of the day, ``rate`` applies."""

    start: time
    rate: int


@dataclass(frozen=True)
class DayProfile:
    name: str
    switches: tuple[DaySwitch, ...]

    def rate_index_at(self, moment: time) -> int:
        current = self.switches[0].rate
        for switch in self.switches:
            if switch.start <= moment:
                current = switch.rate
            else:
                break
        return current


@dataclass(frozen=True)
class WeekProfile:
    """Day-profile names for Monday .. Sunday."""

    name: str
    days: tuple[str, ...]


@dataclass(frozen=True)
class Season:
    """Starts every year on ``start_month``/``start_day`` and runs to the next one."""

    name: str
    start_month: int
    start_day: int
    week_profile: str


@dataclass(frozen=True)
class SpecialDay:
    """A holiday: either one ``date`` or every year on ``month``/``day``."""

    day_profile: str
    date: date | None = None
    month: int | None = None
    day: int | None = None


@dataclass(frozen=True)
class TouSchedule:
    rates: tuple[TouRate, ...]
    day_profiles: tuple[DayProfile, ...]
    week_profiles: tuple[WeekProfile, ...]
    seasons: tuple[Season, ...]
    special_days: tuple[SpecialDay, ...] = ()

    def __post_init__(self) -> None:
        _validate(self)

    def rate(self, index: int) -> TouRate:
        for rate in self.rates:
            if rate.index == index:
                return rate
        raise TariffError(f"TOU rate {index} is not defined")  # pragma: no cover

    def day_profile_for(self, day: date) -> DayProfile:
        """The day profile in force on ``day``: special days first, then seasons."""
        profiles = {p.name: p for p in self.day_profiles}
        recurring = None
        for special in self.special_days:
            if special.date == day:
                return profiles[special.day_profile]
            if (special.month, special.day) == (day.month, day.day):
                recurring = profiles[special.day_profile]
        if recurring is not None:
            return recurring
        weeks = {w.name: w for w in self.week_profiles}
        week = weeks[self.season_for(day).week_profile]
        return profiles[week.days[day.weekday()]]

    def season_for(self, day: date) -> Season:
        # The season in force is the one that started last; before the earliest
        # start of the year, last year's final season is still running.
        ordered = sorted(self.seasons, key=lambda s: (s.start_month, s.start_day))
        current = ordered[-1]
        for season in ordered:
            if (season.start_month, season.start_day) <= (day.month, day.day):
                current = season
        return current

    def rate_at(self, moment: datetime) -> TouRate:
        """The rate in force at ``moment`` (local time of the tariff)."""
        profile = self.day_profile_for(moment.date())
        return self.rate(profile.rate_index_at(moment.time()))


def _check_month_day(month: int, day: int, what: str) -> None:
    try:
        date(2000, month, day)  # a leap year, so 29 February is accepted
    except (TypeError, ValueError) as exc:
        raise TariffError(f"{what}: invalid month/day {month}/{day}") from exc


def _unique(names: Iterable[str], what: str) -> set[str]:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise TariffError(f"duplicate {what} {name!r}")
        seen.add(name)
    return seen


def _validate(schedule: TouSchedule) -> None:
    if not 1 <= len(schedule.rates) <= MAX_RATES:
        raise TariffError(
            f"a TOU tariff needs 1 to {MAX_RATES} rates, got {len(schedule.rates)}"
        )
    indices: set[int] = set()
    for rate in schedule.rates:
        if not 1 <= rate.index <= MAX_RATES:
            raise TariffError(f"TOU rate index {rate.index} is not in 1..{MAX_RATES}")
        if rate.index in indices:
            raise TariffError(f"duplicate TOU rate index {rate.index}")
        indices.add(rate.index)
        if rate.price < 0:
            raise TariffError(f"TOU rate {rate.index}: negative price {rate.price}")
    day_names = _unique((p.name for p in schedule.day_profiles), "day profile")
    for profile in schedule.day_profiles:
        if not profile.switches:
            raise TariffError(f"day profile {profile.name!r} has no switches")
        if profile.switches[0].start != time(0, 0):
            raise TariffError(f"day profile {profile.name!r} must start at 00:00")
        for before, after in zip(profile.switches, profile.switches[1:]):
            if after.start <= before.start:
                raise TariffError(
                    f"day profile {profile.name!r}: switch times must increase"
                    f" ({before.start} then {after.start})"
                )
        for switch in profile.switches:
            if switch.rate not in indices:
                raise TariffError(
                    f"day profile {profile.name!r} uses undefined rate {switch.rate}"
                )
    week_names = _unique((w.name for w in schedule.week_profiles), "week profile")
    for week in schedule.week_profiles:
        if len(week.days) != 7:
            raise TariffError(f"week profile {week.name!r} needs 7 day profiles")
        for name in week.days:
            if name not in day_names:
                raise TariffError(
                    f"week profile {week.name!r} uses undefined day profile {name!r}"
                )
    if not schedule.seasons:
        raise TariffError("a TOU tariff needs at least one season")
    _unique((s.name for s in schedule.seasons), "season")
    starts: set[tuple[int, int]] = set()
    for season in schedule.seasons:
        _check_month_day(season.start_month, season.start_day, f"season {season.name}")
        key = (season.start_month, season.start_day)
        if key in starts:
            raise TariffError(f"two seasons start on {key[0]}/{key[1]}")
        starts.add(key)
        if season.week_profile not in week_names:
            raise TariffError(
                f"season {season.name!r} uses undefined week profile"
                f" {season.week_profile!r}"
            )
    for special in schedule.special_days:
        if special.day_profile not in day_names:
            raise TariffError(
                f"special day uses undefined day profile {special.day_profile!r}"
            )
        if special.date is None:
            if special.month is None or special.day is None:
                raise TariffError("a special day needs a date or a month and day")
            _check_month_day(special.month, special.day, "special day")
        elif special.month is not None or special.day is not None:
            raise TariffError("a special day has either a date or a month and day")


@dataclass(frozen=True)
class IntervalPrice:
    """One load-profile interval priced at the rate in force at its start."""

    start: datetime
    kwh: Decimal
    rate: int
    amount: Decimal  # exact, not rounded: round once per bill line


def price_intervals(
    schedule: TouSchedule,
    profile: Sequence[tuple[datetime, Decimal]],
    interval: timedelta = timedelta(minutes=30),
    stamp: str = "end",
) -> list[IntervalPrice]:
    """Price each ``(timestamp, kWh)`` load-profile interval.

    DLMS load profiles stamp an interval with its *end* (``stamp="end"``), so the
    interval 23:30-00:00 is stamped 00:00 of the next day and must be priced with
    the previous day's profile; ``stamp="start"`` is for sources that stamp starts.
    """
    if stamp not in ("start", "end"):
        raise TariffError(f"stamp must be 'start' or 'end', not {stamp!r}")
    if interval <= timedelta(0):
        raise TariffError("the load-profile interval must be positive")
    priced = []
    for moment, kwh in profile:
        if kwh < 0:
            raise TariffError(f"negative consumption {kwh} kWh at {moment}")
        start = moment - interval if stamp == "end" else moment
        rate = schedule.rate_at(start)
        priced.append(IntervalPrice(start, kwh, rate.index, kwh * rate.price))
    return priced
