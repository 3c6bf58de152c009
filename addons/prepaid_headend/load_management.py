"""Customers' load-management settings and the meters' limiters (class 71).

A setting is a normal limit (W), an optional emergency limit, the minimum
over/under-threshold durations and daily periods with their own limit (e.g. a
lower limit at the evening peak).  A customer has a setting of their own or
takes their category's.  The head-end writes the setting into the limiter of
the customer's smart meters: threshold_normal, threshold_emergency, the
durations and threshold_active = the limit in effect now, then reads the
limiter back; the read-back is stored on the meter.  A meter over its active
threshold for the minimum duration opens its relay and logs event 53
("limiter", an alarm on MQTT).

Daily periods are applied by cron: every run compares each managed meter's
read-back with its setting at this time of day (company time, see
``wall_clock``) and queues a write for the meters that differ, so a period
starts at the latest one cron interval late.  Only meters whose customer has a
setting are managed: removing a setting leaves the meter as it is (give the
customer a setting with limit 0 to lift the limit).

Settings are per company; cron, run per company, manages that company's
meters only.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from trytond.i18n import gettext
from trytond.model import DeactivableMixin, ModelSQL, ModelView, fields
from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_sts.company import (
    context_company_domain,
)
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.modules.prepaid_vending.credit import wall_clock
from trytond.modules.prepaid_vending.limits import RangeMixin
from trytond.pool import Pool, PoolMeta

# A failed write is retried by cron only after this pause, so an offline
# meter costs one job per hour rather than one per cron run.
RETRY_AFTER = dt.timedelta(hours=1)

Period = tuple[dt.time, dt.time, int]


def _minutes(moment: dt.time) -> int:
    return moment.hour * 60 + moment.minute


def _segments(start: dt.time, end: dt.time) -> list[tuple[int, int]]:
    "Minute ranges [a, b) of a daily window, split at midnight when it wraps."
    a, b = _minutes(start), _minutes(end)
    return [(a, b)] if a < b else [(a, 24 * 60), (0, b)]


def periods_overlap(first: tuple[dt.time, dt.time], second: tuple[dt.time, dt.time]):
    return any(
        a < d and c < b for a, b in _segments(*first) for c, d in _segments(*second)
    )


def limit_at(normal: int, periods: Iterable[Period], moment: dt.time) -> int:
    """The limit (W) in effect at moment: that of the daily period containing
    it (a period may wrap midnight, e.g. 22:00-06:00), else the normal one."""
    now = _minutes(moment)
    for start, end, limit in periods:
        if any(a <= now < b for a, b in _segments(start, end)):
            return limit
    return normal


#: Largest limiter threshold accepted (W): far above any customer supply.
MAX_LIMIT_W = 10_000_000


class LoadManagement(CompanyMixin, RangeMixin, DeactivableMixin, ModelSQL, ModelView):
    "Load-management setting written to the limiter of customers' meters"

    __name__ = 'prepaid.load_management'
    __string__ = "Load-Management Setting"

    name = fields.Char("Name", size=128, required=True)
    normal_limit = fields.Integer(
        "Normal Limit (W)",
        required=True,
        help="Limit outside the daily periods (0: no limit).",
    )
    emergency_limit = fields.Integer(
        "Emergency Limit (W)",
        help="Limiter threshold while the meter runs its emergency profile.",
    )
    min_over_duration = fields.Integer(
        "Minimum Over-Threshold Duration (s)",
        required=True,
        help="How long the load may exceed the limit before the relay opens.",
    )
    min_under_duration = fields.Integer(
        "Minimum Under-Threshold Duration (s)",
        required=True,
    )
    periods = fields.One2Many(
        'prepaid.load_management.period', 'setting', "Daily Periods"
    )

    @staticmethod
    def default_min_over_duration():
        return 60

    @classmethod
    def setting_ranges(cls):
        return super().setting_ranges() | {
            'normal_limit': (0, MAX_LIMIT_W),
            'emergency_limit': (0, MAX_LIMIT_W),
            'min_over_duration': (0, 86400),
            'min_under_duration': (0, 86400),
        }

    @staticmethod
    def default_min_under_duration():
        return 60

    def limiter_values(self, moment: dt.time) -> dict[str, int]:
        "The limiter attributes (names of ``ops.LIMITER_ATTRS``) at moment"
        periods = [(p.start_time, p.end_time, p.limit) for p in self.periods]
        return {
            'active': limit_at(self.normal_limit, periods, moment),
            'normal': self.normal_limit,
            'emergency': self.emergency_limit or 0,
            'min_over_threshold_duration': self.min_over_duration,
            'min_under_threshold_duration': self.min_under_duration,
        }


class LoadManagementPeriod(RangeMixin, ModelSQL, ModelView):
    "Daily period with its own limit"

    __name__ = 'prepaid.load_management.period'
    __string__ = "Load-Limit Period"

    setting = fields.Many2One(
        'prepaid.load_management', "Setting", required=True, ondelete='CASCADE'
    )
    start_time = fields.Time("From", required=True, help="Company time.")
    end_time = fields.Time(
        "Until", required=True, help="May be earlier than From (past midnight)."
    )
    limit = fields.Integer("Limit (W)", required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('setting')
        cls._order.insert(0, ('start_time', 'ASC'))

    @classmethod
    def setting_ranges(cls):
        return super().setting_ranges() | {'limit': (0, MAX_LIMIT_W)}

    @classmethod
    def validate(cls, periods):
        super().validate(periods)
        for setting in {p.setting for p in periods}:
            own = list(setting.periods)
            for index, period in enumerate(own):
                window = (period.start_time, period.end_time)
                if window[0] == window[1]:
                    raise ValidationError(
                        gettext(
                            'prepaid_headend.msg_load_period_empty',
                            setting=setting.rec_name,
                        )
                    )
                for other in own[index + 1 :]:
                    if periods_overlap(window, (other.start_time, other.end_time)):
                        raise ValidationError(
                            gettext(
                                'prepaid_headend.msg_load_periods_overlap',
                                setting=setting.rec_name,
                            )
                        )


class CustomerCategory(metaclass=PoolMeta):
    __name__ = 'prepaid.customer.category'

    load_management = fields.Many2One(
        'prepaid.load_management',
        "Load Management",
        ondelete='RESTRICT',
        help="Default for the customers of this category.",
    )


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'

    load_management = fields.Many2One(
        'prepaid.load_management',
        "Load Management",
        ondelete='RESTRICT',
        help="Overrides the setting of the customer category.",
    )

    @property
    def effective_load_management(self):
        if self.load_management:
            return self.load_management
        if self.customer_category:
            return self.customer_category.load_management


class Meter(metaclass=PoolMeta):
    __name__ = 'prepaid.meter'

    hes_load_management = fields.Function(
        fields.Many2One('prepaid.load_management', "Load Management"),
        'get_hes_load_management',
    )
    hes_load_limit = fields.Function(
        fields.Integer(
            "Load Limit Now (W)",
            help="Active threshold the customer's setting asks for now.",
        ),
        'get_hes_load_limit',
    )
    hes_limiter_read = fields.Text(
        "Limiter in Meter",
        readonly=True,
        help="The limiter as last read back from the meter (JSON).",
    )

    def get_hes_load_management(self, name):
        setting = self.customer.effective_load_management if self.customer else None
        return setting.id if setting else None

    def get_hes_load_limit(self, name):
        if self.hes_load_management:
            return self.hes_limiter_target()['active']

    def hes_limiter_target(
        self, now: dt.datetime | None = None
    ) -> dict[str, int] | None:
        "The limiter values due at now (naive UTC), None when not managed"
        setting = self.hes_load_management
        if not setting:
            return None
        moment = wall_clock(now or dt.datetime.now()).time()
        return setting.limiter_values(moment)

    def hes_limiter_in_meter(self) -> dict[str, int]:
        return json.loads(self.hes_limiter_read) if self.hes_limiter_read else {}

    @classmethod
    def hes_apply_load_management(cls, now: dt.datetime | None = None) -> list:
        """Cron: queue a limiter write for every managed meter (of the
        company cron runs for) whose limiter differs from its setting at this
        time of day."""
        pool = Pool()
        Job = pool.get('prepaid.headend.job')
        now = now or dt.datetime.now()
        meters = cls.search(
            [
                ('hes_reachable', '=', True),
                *context_company_domain(),
            ]
        )
        busy = {
            j.meter.id
            for j in Job.search(
                [
                    ('kind', '=', 'load_limit'),
                    ('meter', 'in', [m.id for m in meters]),
                    [
                        'OR',
                        ('state', 'in', ['pending', 'running']),
                        [
                            ('state', '=', 'failed'),
                            ('finished_at', '>', now - RETRY_AFTER),
                        ],
                    ],
                ]
            )
        }
        due = []
        for meter in meters:
            target = meter.hes_limiter_target(now)
            if target is None or meter.id in busy:
                continue
            in_meter = meter.hes_limiter_in_meter()
            if any(in_meter.get(name) != value for name, value in target.items()):
                due.append(meter)
        jobs = Job.create_for(due, 'load_limit', {'write': True})
        if jobs:
            Job.queue(jobs)
        return jobs


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            (
                'prepaid.meter|hes_apply_load_management',
                "Apply Load-Management Settings to Meters",
            )
        )
