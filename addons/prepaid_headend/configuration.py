"""Head-end settings on the prepaid configuration singleton."""

from __future__ import annotations

from trytond.model import fields
from trytond.pool import PoolMeta


class Configuration(metaclass=PoolMeta):
    __name__ = 'prepaid.configuration'

    hes_concurrency = fields.Integer(
        "Concurrent Associations",
        domain=[('hes_concurrency', '>', 0)],
        help="Meters read at the same time by one queue task.",
    )
    hes_batch_size = fields.Integer(
        "Jobs per Queue Task", domain=[('hes_batch_size', '>', 0)]
    )
    hes_retries = fields.Integer(
        "Retries",
        domain=[('hes_retries', '>=', 0)],
        help="Extra attempts after a timeout or a connection error "
        "(authentication and other errors are never retried).",
    )
    hes_clock_threshold = fields.Float(
        "Clock Drift Threshold (s)",
        domain=[('hes_clock_threshold', '>', 0)],
        help="The meter clock is set when it is further than this from the "
        "head-end's time.",
    )
    hes_profile_hours = fields.Integer(
        "Load Profile on Demand (hours)", domain=[('hes_profile_hours', '>=', 0)]
    )
    hes_counter_reserve = fields.Integer(
        "Invocation Counters per Reservation",
        domain=[('hes_counter_reserve', '>', 0)],
        help="Counters taken from the database at a time (unused ones are "
        "skipped, never reused).",
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
