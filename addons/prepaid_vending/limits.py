"""Ranges of numeric settings: a negative or absurd value is refused with a
message that names the setting and the values it takes.

Each model lists its ranges (field name -> (minimum, maximum), both
included) and calls :func:`check_ranges` from ``validate_fields``; an empty
field is left to ``required`` and to the code's defaults.  The bounds are
wide on purpose: they stop typing errors and hostile values (a negative
minimum vend, a billion retries), not a utility's unusual choices.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
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
    if isinstance(value, Decimal):
        if not value.is_finite():
            return False
    elif isinstance(value, float) and not math.isfinite(value):
        return False
    return minimum <= value <= maximum


def check_ranges(records: Iterable[Any], field_names, ranges: Ranges) -> None:
    """Refuse the first value of ``records`` outside its range (only the
    fields in ``field_names`` when given, as ``validate_fields`` passes)."""
    names = [n for n in ranges if not field_names or n in field_names]
    for record in records:
        for name in names:
            value = getattr(record, name)
            if value is None:
                continue
            minimum, maximum = ranges[name]
            if not in_range(value, minimum, maximum):
                raise ValidationError(
                    gettext(
                        'prepaid_vending.msg_setting_range',
                        field=record.__class__._fields[name].string,
                        minimum=minimum,
                        maximum=maximum,
                        value=value,
                    )
                )
