"""Money helpers shared by the vendor cores (commission, limits, reconciliation,
settlement).

Money is always :class:`~decimal.Decimal`, never ``float``.  Amounts round
half-up to the currency's quantum (0.01 for two digits), as the tariff
calculator of prepaid_vending does; a rounded amount is never rounded again, so
totals are exact sums of their lines.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal(0)
CENT = Decimal("0.01")


def quantum(digits: int) -> Decimal:
    "The smallest currency unit: 0.01 for 2 digits, 1 for 0 digits"
    if not 0 <= digits <= 6:
        raise ValueError(f"currency digits must be 0 to 6, not {digits}")
    return Decimal(1).scaleb(-digits)


def round_money(value: Decimal, q: Decimal = CENT) -> Decimal:
    "Round half-up to the quantum q; never '-0.00'"
    result = value.quantize(q, rounding=ROUND_HALF_UP)
    return result if result else abs(result)


def require_decimal(value: object, name: str, *, allow_negative: bool = False) -> None:
    """Refuse what is not a finite Decimal (a float would already have lost
    cents), and a negative one unless allowed."""
    if isinstance(value, bool) or not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite number, not {value}")
    if not allow_negative and value < 0:
        raise ValueError(f"{name} must not be negative ({value})")


def format_amount(value: Decimal, q: Decimal = CENT) -> str:
    "An amount for files: fixed digits, '.' decimal point, no thousands, no exponent"
    return f"{round_money(value, q):f}"
