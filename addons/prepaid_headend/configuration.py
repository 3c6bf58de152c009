"""Head-end settings on the prepaid configuration singleton."""

from __future__ import annotations

from trytond.model import fields
from trytond.modules.prepaid_vending.limits import RangeMixin
from trytond.pool import PoolMeta

#: Longest a job may take, every attempt included, when the settings are
#: empty: a read is a handful of requests; a firmware image is thousands of
#: blocks over a slow link.
DEFAULT_JOB_DEADLINE = 120.0
DEFAULT_FIRMWARE_DEADLINE = 4 * 3600.0
DAY = 86400.0


class Configuration(RangeMixin, metaclass=PoolMeta):
    __name__ = 'prepaid.configuration'

    hes_concurrency = fields.Integer(
        "Concurrent Associations",
        help="Meters read at the same time by one queue task.",
    )
    hes_batch_size = fields.Integer("Jobs per Queue Task")
    hes_retries = fields.Integer(
        "Retries",
        help="Extra attempts after a timeout or a connection error "
        "(authentication and other errors are never retried).",
    )
    hes_clock_threshold = fields.Float(
        "Clock Drift Threshold (s)",
        help="The meter clock is set when it is further than this from the "
        "head-end's time.",
    )
    hes_profile_hours = fields.Integer("Load Profile on Demand (hours)")
    hes_counter_reserve = fields.Integer(
        "Invocation Counters per Reservation",
        help="Counters taken from the database at a time (unused ones are "
        "skipped, never reused).",
    )
    hes_job_deadline = fields.Float(
        "Job Deadline (s)",
        help="Longest a job may talk to its meter, every attempt and pause "
        "included: a meter that answers a byte at a time or keeps sending is "
        "cut off and the job fails with the error kind Deadline.",
    )
    hes_firmware_deadline = fields.Float(
        "Firmware Job Deadline (s)",
        help="The same for firmware transfers and activations, which send "
        "thousands of blocks.",
    )

    @staticmethod
    def default_hes_concurrency():
        return 100

    @staticmethod
    def default_hes_batch_size():
        return 200

    @staticmethod
    def default_hes_retries():
        return 2

    @staticmethod
    def default_hes_clock_threshold():
        return 10.0

    @staticmethod
    def default_hes_profile_hours():
        return 24

    @staticmethod
    def default_hes_counter_reserve():
        return 16

    @staticmethod
    def default_hes_job_deadline():
        return DEFAULT_JOB_DEADLINE

    @staticmethod
    def default_hes_firmware_deadline():
        return DEFAULT_FIRMWARE_DEADLINE

    @classmethod
    def setting_ranges(cls):
        return super().setting_ranges() | {
            'hes_concurrency': (1, 1000),
            'hes_batch_size': (1, 10_000),
            'hes_retries': (0, 10),
            'hes_clock_threshold': (1.0, 3600.0),
            'hes_profile_hours': (0, 24 * 93),
            'hes_counter_reserve': (1, 1000),
            'hes_job_deadline': (1.0, DAY),
            'hes_firmware_deadline': (60.0, 7 * DAY),
        }

    def hes_deadline_for(self, kind: str) -> float:
        "Overall deadline of a job of kind (see job.JOB_KINDS)"
        if kind.startswith('firmware'):
            return self.hes_firmware_deadline or DEFAULT_FIRMWARE_DEADLINE
        return self.hes_job_deadline or DEFAULT_JOB_DEADLINE
