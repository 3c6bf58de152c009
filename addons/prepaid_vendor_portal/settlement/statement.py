"""The vendor statement for a period: opening balance, every movement of the
float with its reference, closing balance.

Signs are the float's: a top-up raises it, a sale draws it down, a reversal
gives the sale back, commission credited raises it (its reversal lowers
it), a fee lowers it, an adjustment goes either way.  A line whose sign
contradicts its kind is refused, so a sale typed as positive (the sign
confusion open-source vendor ledgers have suffered from) cannot slip into
a statement.  The closing balance is the opening balance plus the lines;
the available credit adds the credit line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from ..money import ZERO, quantum, require_decimal


class LineKind(StrEnum):
    TOP_UP = "top_up"
    SALE = "sale"
    REVERSAL = "reversal"
    COMMISSION = "commission"
    FEE = "fee"
    ADJUSTMENT = "adjustment"


LABELS = {
    LineKind.TOP_UP: "Top-up",
    LineKind.SALE: "Sale",
    LineKind.REVERSAL: "Reversal",
    LineKind.COMMISSION: "Commission",
    LineKind.FEE: "Fee",
    LineKind.ADJUSTMENT: "Adjustment",
}
# The sign each kind's amount must have: +1, -1, or 0 for either.
SIGNS = {
    LineKind.TOP_UP: 1,
    LineKind.SALE: -1,
    LineKind.REVERSAL: 1,
    LineKind.COMMISSION: 0,
    LineKind.FEE: -1,
    LineKind.ADJUSTMENT: 0,
}


@dataclass(frozen=True)
class StatementLine:
    at: dt.datetime  # aware
    kind: LineKind
    reference: str  # deposit slip, receipt, settlement, journal entry...
    description: str
    amount: Decimal  # signed: the effect on the float


@dataclass(frozen=True)
class Statement:
    vendor_code: str
    vendor_name: str
    currency: str
    timezone: ZoneInfo
    first_day: dt.date
    last_day: dt.date
    opening_balance: Decimal
    credit_line: Decimal
    lines: tuple[StatementLine, ...]  # in time order
    generated_at: dt.datetime
    digits: int = 2

    @property
    def closing_balance(self) -> Decimal:
        return self.opening_balance + sum((line.amount for line in self.lines), ZERO)

    @property
    def available(self) -> Decimal:
        return self.closing_balance + self.credit_line

    def total(self, kind: LineKind) -> Decimal:
        return sum((line.amount for line in self.lines if line.kind == kind), ZERO)

    def running(self) -> list[tuple[StatementLine, Decimal]]:
        "Each line with the balance after it"
        balance, result = self.opening_balance, []
        for line in self.lines:
            balance += line.amount
            result.append((line, balance))
        return result


def build_statement(
    *,
    vendor_code: str,
    vendor_name: str,
    currency: str,
    timezone: ZoneInfo,
    first_day: dt.date,
    last_day: dt.date,
    opening_balance: Decimal,
    lines: Iterable[StatementLine],
    generated_at: dt.datetime,
    credit_line: Decimal = ZERO,
    digits: int = 2,
) -> Statement:
    """A statement, checked: every line in the period (the utility's local
    days), with a sign that fits its kind and no more digits than the
    currency; lines in time order (then by reference)."""
    if last_day < first_day:
        raise ValueError("the period ends before it starts")
    q = quantum(digits)
    require_decimal(opening_balance, "opening balance", allow_negative=True)
    require_decimal(credit_line, "credit line")
    if generated_at.tzinfo is None:
        raise ValueError("generated_at needs a time zone")
    checked = sorted(lines, key=lambda line: (line.at, line.reference))
    for line in checked:
        where = f"statement line {line.reference!r}"
        if line.at.tzinfo is None:
            raise ValueError(f"{where}: the time needs a time zone")
        if not first_day <= line.at.astimezone(timezone).date() <= last_day:
            raise ValueError(f"{where} is outside the period")
        require_decimal(line.amount, f"{where}: amount", allow_negative=True)
        if line.amount != line.amount.quantize(q):
            raise ValueError(f"{where}: {line.amount} has more digits than {q}")
        sign = SIGNS[LineKind(line.kind)]
        if line.amount == 0 or (sign and (line.amount > 0) != (sign > 0)):
            expected = {1: "positive", -1: "negative", 0: "non-zero"}[sign]
            raise ValueError(
                f"{where}: a {line.kind.value} must be {expected} ({line.amount})"
            )
    return Statement(vendor_code, vendor_name, currency, timezone, first_day,
                     last_day, opening_balance, credit_line, tuple(checked),
                     generated_at, digits)  # fmt: skip
