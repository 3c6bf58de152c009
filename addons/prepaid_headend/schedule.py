"""Meter groups and reading schedules, run by trytond-cron.

The ``ir.cron`` record calls :meth:`Schedule.run_due` every minute; each due
schedule creates one read job per meter of its group (meters with a channel)
and queues them in batches (``Job.queue``), then moves its next run.  Cron only
creates records, so several cron processes stay cheap; the DLMS work happens in
queue workers.

Groups and schedules belong to a company (utility) and hold only its meters;
cron runs per company (``ir.cron.companies``) and then runs only the
schedules of the company it runs for.
"""

from __future__ import annotations

import calendar
import datetime as dt

from trytond.model import DeactivableMixin, ModelSQL, ModelView, fields
from trytond.modules.prepaid_sts.company import (
    context_company_domain,
    fill_company_from,
)
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.modules.prepaid_vending.limits import RangeMixin
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval

FREQUENCIES = [
    ('interval', "Every N Minutes"),
    ('daily', "Daily"),
    ('monthly', "Monthly"),
]


class MeterGroup(CompanyMixin, ModelSQL, ModelView):
    "Meters read together"

    __name__ = 'prepaid.headend.meter_group'
    __string__ = "Reading Group"

    name = fields.Char("Name", size=128, required=True)
    meters = fields.One2Many(
        'prepaid.meter',
        'hes_group',
        "Meters",
        domain=[('company', '=', Eval('company', -1))],
    )
    schedules = fields.One2Many('prepaid.headend.schedule', 'group', "Schedules")


class Schedule(CompanyMixin, RangeMixin, DeactivableMixin, ModelSQL, ModelView):
    "Reading schedule of a meter group"

    __name__ = 'prepaid.headend.schedule'
    __string__ = "Reading Schedule"

    name = fields.Char("Name", size=128, required=True)
    group = fields.Many2One(
        'prepaid.headend.meter_group',
        "Meter Group",
        required=True,
        ondelete='CASCADE',
        domain=[('company', '=', Eval('company', -1))],
    )
    frequency = fields.Selection(FREQUENCIES, "Frequency", required=True)
    interval_minutes = fields.Integer(
        "Every (minutes)",
        states={
            'invisible': Eval('frequency') != 'interval',
            'required': Eval('frequency') == 'interval',
        },
    )
    time_of_day = fields.Time(
        "At (UTC)", states={'invisible': Eval('frequency') == 'interval'}
    )
    day_of_month = fields.Integer(
        "Day of Month",
        states={
            'invisible': Eval('frequency') != 'monthly',
            'required': Eval('frequency') == 'monthly',
        },
    )
    read_registers = fields.Boolean("Registers")
    profile_hours = fields.Integer(
        "Load Profile (hours back)", help="0: do not read the load profile."
    )
    read_billing = fields.Boolean("Billing Values")
    read_events = fields.Boolean("Events and Alarms")
    sync_clock = fields.Boolean(
        "Synchronise Clock",
        help="Set the meter clock when its drift exceeds the configured threshold.",
    )
    next_run = fields.Timestamp("Next Run (UTC)")
    last_run = fields.Timestamp("Last Run", readonly=True)
    jobs = fields.One2Many('prepaid.headend.job', 'schedule', "Jobs", readonly=True)

    @classmethod
    def _migrate_company(cls, module):
        # Before the one-company default of CompanyMixin: the group's company,
        # also where the installation already had several.
        fill_company_from(cls, 'group', 'prepaid.headend.meter_group')
        super()._migrate_company(module)

    @classmethod
    def setting_ranges(cls):
        return super().setting_ranges() | {
            'interval_minutes': (1, 31 * 24 * 60),
            'day_of_month': (1, 31),
            'profile_hours': (0, 93 * 24),
        }

    @staticmethod
    def default_frequency():
        return 'daily'

    @staticmethod
    def default_read_registers():
        return True

    @staticmethod
    def default_profile_hours():
        return 24

    @staticmethod
    def default_day_of_month():
        return 1

    @staticmethod
    def default_time_of_day():
        return dt.time(0, 30)

    def params(self) -> dict:
        return {
            'registers': bool(self.read_registers),
            'profile_hours': self.profile_hours or 0,
            'billing': bool(self.read_billing),
            'events': bool(self.read_events),
            'sync_clock': bool(self.sync_clock),
        }

    def compute_next(self, after: dt.datetime) -> dt.datetime:
        """First run time strictly after ``after``."""
        at = self.time_of_day or dt.time(0)
        if self.frequency == 'interval':
            step = dt.timedelta(minutes=self.interval_minutes or 60)
            base = self.next_run or after
            while base <= after:
                base += step
            return base
        if self.frequency == 'daily':
            candidate = dt.datetime.combine(after.date(), at)
            if candidate <= after:
                candidate += dt.timedelta(days=1)
            return candidate
        year, month = after.year, after.month
        for _ in range(3):
            day = min(self.day_of_month or 1, calendar.monthrange(year, month)[1])
            candidate = dt.datetime.combine(dt.date(year, month, day), at)
            if candidate > after:
                return candidate
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        raise AssertionError("unreachable")

    @classmethod
    def run_due(cls, now: dt.datetime | None = None) -> list:
        """Cron: create and queue the read jobs of every due schedule (of the
        company cron runs for)"""
        now = now or dt.datetime.now()
        due = cls.search(
            [
                ['OR', ('next_run', '=', None), ('next_run', '<=', now)],
                *context_company_domain(),
            ]
        )
        jobs = []
        for schedule in due:
            jobs += schedule.run(now)
        return jobs

    def run(self, now: dt.datetime):
        pool = Pool()
        Job = pool.get('prepaid.headend.job')
        Meter = pool.get('prepaid.meter')
        meters = Meter.search(
            [
                ('company', '=', self.company.id),
                ('hes_group', '=', self.group.id),
                ('hes_host', '!=', None),
                ('hes_port', '!=', None),
            ]
        )
        jobs = Job.create_for(meters, 'read', self.params(), schedule=self.id)
        self.last_run = now
        self.next_run = self.compute_next(now)
        self.save()
        if jobs:
            Job.queue(jobs)
        return jobs


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.extend(
            [
                ('prepaid.headend.schedule|run_due', "Run Due Reading Schedules"),
                ('prepaid.meter.command|hes_dispatch', "Dispatch Commands to Meters"),
                ('prepaid.headend.job|fail_lost', "Fail Head-End Jobs of Lost Workers"),
            ]
        )
