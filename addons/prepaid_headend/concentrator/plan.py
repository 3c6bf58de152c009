"""A concentrator's collection plan from the head-end's reading schedules
(docs/concentrators.md sections 3 and 9).

A reading schedule says what the head-end wants of a group of meters
(registers, billing values, load profile, events) and how often; behind a
concentrator the concentrator collects them itself on its plan. Each wish
becomes a task of the plan: the midnight (daily frozen) registers once a
day, the monthly billing values at the month change, the 15-minute load
profile and the events as often as the schedule runs. Several schedules ask
for the same report type: the most frequent wins (a plan has one task per
report type). The concentrator's own reports (meter list, parameters,
events) are always in the plan: the head-end sees from them that the
concentrator is alive.
"""

from __future__ import annotations

from dataclasses import dataclass

from .messages import CollectionTask, Delivery, Period, ReportType

#: From the most to the least frequent.
PERIODS = (Period.QUARTER_HOUR, Period.HOUR, Period.DAY, Period.MONTH)
#: Report files for the bulky meter data, SOAP for the rest (as the
#: concentrators' default plan).
DELIVERY = {
    ReportType.DAILY: Delivery.FILE,
    ReportType.MONTHLY: Delivery.FILE,
    ReportType.LOAD_PROFILE: Delivery.FILE,
}
#: The concentrator's own reports, whatever the schedules.
HOUSEKEEPING = (
    CollectionTask(ReportType.METER_LIST, Period.DAY, True, Delivery.SOAP),
    CollectionTask(ReportType.DC_PARAMETERS, Period.DAY, True, Delivery.SOAP),
    CollectionTask(ReportType.DC_EVENTS, Period.HOUR, True, Delivery.SOAP),
)


@dataclass(frozen=True)
class ScheduleSpec:
    """What one reading schedule reads, and how often."""

    frequency: str  # 'interval', 'daily' or 'monthly'
    interval_minutes: int | None = None
    registers: bool = False
    billing: bool = False
    profile: bool = False
    events: bool = False


def period_of(spec: ScheduleSpec) -> Period:
    "The plan's period closest to the schedule's, never more frequent"
    if spec.frequency == 'monthly':
        return Period.MONTH
    if spec.frequency == 'daily':
        return Period.DAY
    minutes = spec.interval_minutes or 60
    if minutes < 60:
        return Period.QUARTER_HOUR
    if minutes < 24 * 60:
        return Period.HOUR
    return Period.DAY


def collection_plan(specs: list[ScheduleSpec]) -> tuple[CollectionTask, ...]:
    """The tasks of the schedules' wishes (none when they read nothing a
    concentrator collects), followed by the housekeeping tasks."""
    wanted: dict[ReportType, Period] = {}

    def want(report_type: ReportType, period: Period) -> None:
        known = wanted.get(report_type)
        if known is None or PERIODS.index(period) < PERIODS.index(known):
            wanted[report_type] = period

    for spec in specs:
        period = period_of(spec)
        if spec.registers:
            want(ReportType.DAILY, Period.DAY)
        if spec.billing:
            want(ReportType.MONTHLY, Period.MONTH)
        if spec.profile:
            want(ReportType.LOAD_PROFILE, period)
        if spec.events:
            want(ReportType.METER_EVENTS, period)
    if not wanted:
        return ()
    order = (
        ReportType.DAILY,
        ReportType.MONTHLY,
        ReportType.LOAD_PROFILE,
        ReportType.METER_EVENTS,
    )
    tasks = tuple(
        CollectionTask(t, wanted[t], True, DELIVERY.get(t, Delivery.SOAP))
        for t in order
        if t in wanted
    )
    return tasks + HOUSEKEEPING


def describe(tasks: tuple[CollectionTask, ...]) -> str:
    "One line per task, as the order shows what it sent"
    return '\n'.join(
        f"{t.report_type.value} {t.period.value} by {t.delivery.value}" for t in tasks
    )
