"""Rounding rules shared by the tariff calculator.

Money is always :class:`~decimal.Decimal`. Prices and amounts round half-up to the
currency precision; energy on a token rounds *down* to 0.1 kWh (the STS token
resolution) so a customer is never issued energy that was not paid for.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum

KWH_STEP = Decimal("0.1")
ZERO = Decimal(0)
HUNDRED = Decimal(100)


class VatRounding(StrEnum):
    """How a VAT amount is rounded to the currency precision.

    ``half_up`` is the default. ``up`` (VAT rounded up, the net amount down) is what
    the iPay sample response of docs/vending.md Example A shows.
    """

    HALF_UP = "half_up"
    UP = "up"
    DOWN = "down"


_VAT_MODES = {
    VatRounding.HALF_UP: ROUND_HALF_UP,
    # Amounts are never negative here, so ceiling/floor are "up"/"down".
    VatRounding.UP: ROUND_CEILING,
    VatRounding.DOWN: ROUND_FLOOR,
}


def quantum(digits: int) -> Decimal:
    """The smallest currency unit, e.g. 0.01 for 2 digits (0 to 6 digits)."""
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= 6:
        raise ValueError(f"currency digits must be 0 to 6, not {digits!r}")
    return Decimal(1).scaleb(-digits)


def money(value: Decimal, q: Decimal) -> Decimal:
    """Round an amount or price half-up to the currency quantum ``q``; never
    "-0.00" (a reversal of a zero amount prints as 0.00)."""
    result = value.quantize(q, rounding=ROUND_HALF_UP)
    return result if result else abs(result)


def kwh_down(value: Decimal) -> Decimal:
    """Round energy down to the 0.1 kWh token resolution."""
    result = value.quantize(KWH_STEP, rounding=ROUND_FLOOR)
    return result if result else abs(result)  # never "-0.0"


def vat_on_net(net: Decimal, rate: Decimal, q: Decimal, mode: VatRounding) -> Decimal:
    """VAT to add to a net (VAT-exclusive) amount."""
    return (net * rate).quantize(q, rounding=_VAT_MODES[mode])


def vat_in_gross(
    gross: Decimal, rate: Decimal, q: Decimal, mode: VatRounding
) -> Decimal:
    """VAT contained in a gross (VAT-inclusive) amount; the net is gross - VAT."""
    if not rate:
        return ZERO.quantize(q)
    return (gross * rate / (1 + rate)).quantize(q, rounding=_VAT_MODES[mode])
