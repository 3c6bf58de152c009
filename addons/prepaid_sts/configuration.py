"""STS system parameters added to the vending configuration."""

from trytond.model import fields
from trytond.pool import PoolMeta

from .meter import DEFAULT_CUTOVER_1993


class Configuration(metaclass=PoolMeta):
    __name__ = "prepaid.configuration"

    sts_cutover_1993 = fields.DateTime(
        "Base-1993 Cut-over (UTC)",
        help="From this moment no token is issued under base date 1993: meters "
        "still on it must first be moved to base date 2014 by a TID rollover key "
        "change.  The 24-bit TID of base 1993 runs out at 2024-11-24 20:16 UTC.",
    )

    @staticmethod
    def default_sts_cutover_1993():
        return DEFAULT_CUTOVER_1993
