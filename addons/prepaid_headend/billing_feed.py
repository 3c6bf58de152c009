"""Head-end readings -> remote-prepaid consumption, the input of billing.

When the head-end stores new load-profile captures of the active energy import
register (``1.0.1.8.0.255``) of a meter whose payment mode is remote-prepaid,
every pair of consecutive stored captures that involves a new one becomes a
``prepaid.remote.consumption`` row: start and end are the two capture times,
the kWh the register difference, the maximum demand the interval's average
power.  ``prepaid.remote.account|bill_all`` then prices those rows.

Why from the stored captures rather than the ``consumption`` delta computed
per read (``reading.profile_rows``): the first capture of each read has no
predecessor in its own batch, and a back-filled capture can sit before one
stored earlier; pairing with the neighbours already in the database loses no
interval at a read boundary.

Idempotence: the interval readings are created only for captures not stored
yet (``reading.insert_new``), so a re-read triggers nothing; and a candidate
row is skipped when any consumption row of the account overlaps its period,
so no energy is ever counted twice, even against rows entered by hand.

Register readings are not fed: they measure the same energy as the profile
and would double it; meters of remote-prepaid accounts are read with their
load profile (the schedule's default).  A negative difference (register reset,
meter exchange) is skipped and logged, not billed.

The module boundary holds: prepaid_headend writes prepaid_vending's model;
prepaid_vending knows nothing of the head-end.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from trytond.modules.prepaid_vending import fastpath
from trytond.pool import Pool, PoolMeta
from trytond.transaction import without_check_access

from .dlms import operations as ops

logger = logging.getLogger(__name__)
#: kWh per unit of the stored register value.
KWH_PER_UNIT = {'Wh': Decimal('0.001'), 'kWh': Decimal(1), 'MWh': Decimal(1000)}
KWH = Decimal('0.001')
HOUR = Decimal(3600)


class IntervalReading(metaclass=PoolMeta):
    __name__ = 'prepaid.headend.interval'

    @classmethod
    def on_modification(cls, mode, records, field_names=None):
        super().on_modification(mode, records, field_names=field_names)
        if mode == 'create' and records:
            feed_consumption(records)


fastpath.know_hook(
    'prepaid_headend.billing_feed.IntervalReading.on_modification',
    'run on the in-memory records (reading.insert_rows): it reads their '
    'obis, timestamp and meter, then the captures stored in the table',
)


def consumption_pairs(
    captures: Sequence[tuple[dt.datetime, float, str]], new: set[dt.datetime]
) -> list[dict[str, Any]]:
    """Consumption rows from consecutive ``(timestamp, value, unit)`` captures
    of a cumulative energy register, for the pairs that involve a new one.

    Pure: no database.  Pairs with an unknown unit or a negative difference
    are left out (logged)."""
    ordered = sorted(captures, key=lambda c: c[0])
    rows = []
    for (start, before, unit_a), (end, after, unit_b) in zip(
        ordered, ordered[1:], strict=False
    ):
        if start not in new and end not in new:
            continue
        if unit_a != unit_b or unit_a not in KWH_PER_UNIT:
            logger.warning(
                "energy captures %s/%s in units %r/%r: not billed",
                start,
                end,
                unit_a,
                unit_b,
            )
            continue
        kwh = (
            (Decimal(repr(after)) - Decimal(repr(before))) * KWH_PER_UNIT[unit_a]
        ).quantize(KWH)
        if kwh < 0:
            logger.warning(
                "energy register went back between %s and %s (%s kWh): not billed",
                start,
                end,
                kwh,
            )
            continue
        hours = Decimal((end - start).total_seconds()) / HOUR
        rows.append(
            {
                'start': start,
                'end': end,
                'kwh': kwh,
                'max_kw': (kwh / hours).quantize(KWH),
            }
        )
    return rows


def feed_consumption(intervals) -> int:
    """Create the consumption rows for newly stored interval readings.

    Returns the number of rows created."""
    by_meter: dict[int, set[dt.datetime]] = defaultdict(set)
    meters = {}
    for reading in intervals:
        if reading.obis != ops.ENERGY_IMPORT:
            continue
        if reading.meter.payment_mode != 'remote_prepaid':
            continue
        by_meter[reading.meter.id].add(reading.timestamp)
        meters[reading.meter.id] = reading.meter
    created = 0
    with without_check_access():
        for meter_id, new in by_meter.items():
            created += _feed_meter(meters[meter_id], new)
    return created


def _feed_meter(meter, new: set[dt.datetime]) -> int:
    pool = Pool()
    Interval = pool.get('prepaid.headend.interval')
    Account = pool.get('prepaid.remote.account')
    Consumption = pool.get('prepaid.remote.consumption')
    base = [('meter', '=', meter.id), ('obis', '=', ops.ENERGY_IMPORT)]
    first, last = min(new), max(new)
    captures = Interval.search(
        base + [('timestamp', '>=', first), ('timestamp', '<=', last)]
    )
    captures += Interval.search(
        base + [('timestamp', '<', first)], order=[('timestamp', 'DESC')], limit=1
    )
    captures += Interval.search(
        base + [('timestamp', '>', last)], order=[('timestamp', 'ASC')], limit=1
    )
    rows = consumption_pairs(
        [(c.timestamp, c.value, c.unit) for c in captures if c.value is not None],
        new,
    )
    if not rows:
        return 0
    account = Account.for_meter(meter)
    existing = Consumption.search(
        [
            ('account', '=', account.id),
            ('start', '<', max(r['end'] for r in rows)),
            ('end', '>', min(r['start'] for r in rows)),
        ]
    )
    spans = [(c.start, c.end) for c in existing]
    fresh = [
        {'account': account.id, **row}
        for row in rows
        if not any(s < row['end'] and e > row['start'] for s, e in spans)
    ]
    if fresh:
        Consumption.create(fresh)
    return len(fresh)
