"""Money helpers shared by the vendor cores (commission, limits, reconciliation,
settlement).

Money is always :class:`~decimal.Decimal`, never ``float``.  Amounts round
half-up to the currency's quantum (0.01 for two digits) with the tariff
calculator's own :func:`quantum` and :func:`money` (prepaid_vending's
``tariff.money``, pure Python too), so a vend and its commission round the
same way; a rounded amount is never rounded again, so totals are exact sums
of their lines.
"""

from __future__ import annotations

from decimal import Decimal

from trytond.modules.prepaid_vending.tariff.money import ZERO, money, quantum

CENT = quantum(2)

__all__ = ["CENT", "ZERO", "format_amount", "money", "quantum", "require_decimal"]


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
    return f"{money(value, q):f}"
