"""Ranges of numeric settings: a negative or absurd value is refused with a
message that names the setting and the values it takes.

A model (or a pool extension of it) inherits :class:`RangeMixin` and returns
its ranges (field name -> (minimum, maximum), both included) from
``setting_ranges``, adding to ``super()``'s.  Values are checked in
``create`` and ``write``, before they reach the database: a number too big
for its column or a NaN gets the same clear refusal on SQLite and on
PostgreSQL.  An empty field is left to ``required`` and to the defaults.  The
bounds are wide on purpose: they stop typing errors and hostile values (a
negative minimum vend, a billion retries), not a utility's unusual choices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from trytond.i18n import gettext
from trytond.model.exceptions import ValidationError

Number = int | float | Decimal
Ranges = Mapping[str, tuple[Number, Number]]

#: Money bounds of amounts typed in settings (currency units).
MAX_AMOUNT = Decimal('1000000000')
MIN_AMOUNT = Decimal('0.01')


def in_range(value: Any, minimum: Number, maximum: Number) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return False
    if isinstance(value, Decimal):
        if not value.is_finite():
            return False
    elif isinstance(value, float) and not math.isfinite(value):
        return False
    return minimum <= value <= maximum


def check_values(model, values: Mapping[str, Any], ranges: Ranges) -> None:
    "Refuse the first value of ``values`` (field -> value) outside its range"
    for name in ranges.keys() & values.keys():
        value = values[name]
        if value is None:
            continue
        minimum, maximum = ranges[name]
        if not in_range(value, minimum, maximum):
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_setting_range',
                    field=model._fields[name].string,
                    minimum=minimum,
                    maximum=maximum,
                    value=str(value)[:40],
                )
            )


class RangeMixin:
    "Checks the ranges of ``setting_ranges`` on create and write"

    __slots__ = ()

    @classmethod
    def setting_ranges(cls) -> dict[str, tuple[Number, Number]]:
        return {}

    @classmethod
    def create(cls, vlist):
        ranges = cls.setting_ranges()
        for values in vlist:
            check_values(cls, values, ranges)
        return super().create(vlist)

    @classmethod
    def write(cls, *args):
        ranges = cls.setting_ranges()
        for values in args[1::2]:
            check_values(cls, values, ranges)
        super().write(*args)
