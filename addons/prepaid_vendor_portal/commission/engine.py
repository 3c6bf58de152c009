"""Commission of one transaction, and the running state of a period.

Rounding: the three parts of a rule (percentage, kWh tiers, fixed fee) are
added at full precision, the sum is rounded half-up to the currency quantum,
and the caps are applied to the rounded amount (a cap is a currency amount,
so the result stays on the quantum).  A period total is the exact sum of its
rounded lines: sum of parts = total, always.

Caps: the transaction cap first, then what is left of the rule's period cap,
then what is left of the plan's period cap.  A sale that reaches a cap earns
less, the next ones nothing, until a reversal frees room again.

Reversal: a reversed transaction's commission is taken back exactly (the
line that was computed or deducted, negated), and its kWh and cap use are
given back to its period, so that reversing everything leaves zero.  A
transaction settled in an earlier period is taken back in the period of its
reversal, which frees no room there (it used none).

The same arithmetic serves both modes: ``Mode.AT_SALE`` calls
:func:`commission_of` at each sale with the period's :class:`Usage` so far;
``Mode.MONTHLY`` folds the month's transactions through :class:`Accumulator`
(see :mod:`.settle`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from ..money import ZERO, money, require_decimal
from .rules import CommissionError, Plan, Rule, TierBasis, TxType


class Capped(StrEnum):
    "Which cap cut a transaction's commission"

    TRANSACTION = "transaction"
    RULE_PERIOD = "rule period"
    PLAN_PERIOD = "plan period"


@dataclass(frozen=True)
class Sale:
    """A transaction that may earn commission.

    ``amount`` is what the customer paid (for FBE and key changes, zero);
    ``kwh`` the energy sold; ``deducted`` the commission already kept by the
    vendor at the sale (``Mode.AT_SALE``), None when nothing was deducted."""

    reference: str
    at: dt.datetime
    tx_type: TxType
    channel: str
    category: str
    amount: Decimal
    kwh: Decimal = ZERO
    deducted: Decimal | None = None

    def validate(self) -> None:
        where = f"transaction {self.reference!r}"
        if not self.reference:
            raise CommissionError("a transaction needs a reference")
        _aware(self.at, where)
        try:
            TxType(self.tx_type)
            require_decimal(self.amount, f"{where}: amount")
            require_decimal(self.kwh, f"{where}: kWh")
            if self.deducted is not None:
                require_decimal(self.deducted, f"{where}: deducted commission")
        except (TypeError, ValueError) as error:
            raise CommissionError(str(error)) from None


@dataclass(frozen=True)
class Reversal:
    """The reversal of a whole transaction.

    When the original is not among the period's sales (it was settled in an
    earlier period), ``original_line`` carries the commission line computed
    for it then: that is what is taken back."""

    reference: str
    at: dt.datetime
    original: str
    original_line: CommissionLine | None = None


@dataclass(frozen=True)
class CommissionLine:
    """One transaction's commission (negative for a reversal).

    ``percent_part + kwh_part + fixed_part`` (full precision) rounds to
    ``gross``; ``commission`` is ``gross`` after the caps."""

    reference: str
    at: dt.datetime
    tx_type: TxType
    rule: str | None
    amount: Decimal
    kwh: Decimal
    percent_part: Decimal
    kwh_part: Decimal
    fixed_part: Decimal
    gross: Decimal
    commission: Decimal
    capped: Capped | None = None
    reverses: str | None = None  # reference of the reversed transaction
    deducted: Decimal = ZERO  # kept at the sale (negative on its reversal)
    tier_kwh: Decimal = ZERO  # kWh counted for the rule's period tiers

    @property
    def is_reversal(self) -> bool:
        return self.reverses is not None


@dataclass(frozen=True)
class Usage:
    """What a period has used so far: per rule kWh (for period tiers) and
    commission (for its cap), and the plan's commission."""

    kwh: dict[str, Decimal] = field(default_factory=dict)
    commission: dict[str, Decimal] = field(default_factory=dict)
    total: Decimal = ZERO

    def after(self, line: CommissionLine) -> Usage:
        "The usage once line (a sale's or a reversal's) is booked"
        if line.rule is None:
            return self
        kwh = dict(self.kwh)
        kwh[line.rule] = kwh.get(line.rule, ZERO) + line.tier_kwh
        commission = dict(self.commission)
        commission[line.rule] = commission.get(line.rule, ZERO) + line.commission
        return Usage(kwh, commission, self.total + line.commission)


def tiered(tiers: tuple, start: Decimal, kwh: Decimal) -> Decimal:
    """The kWh part for kWh from ``start`` to ``start + kwh`` on the tiers:
    each kWh at the rate of the tier it falls in (full precision)."""
    result = ZERO
    low = ZERO
    end = start + kwh
    for tier in tiers:
        high = tier.up_to
        lo = max(low, start)
        hi = end if high is None else min(high, end)
        if hi > lo:
            result += (hi - lo) * tier.rate
        if high is None or high >= end:
            break
        low = high
    return result


def commission_of(plan: Plan, sale: Sale, usage: Usage | None = None) -> CommissionLine:
    "The commission line of sale, given what the period used before it"
    sale.validate()
    usage = usage or Usage()
    rule = plan.rule_for(sale.tx_type, sale.channel, sale.category, sale.at)
    deducted = sale.deducted if sale.deducted is not None else ZERO
    if rule is None:
        return CommissionLine(
            sale.reference, sale.at, sale.tx_type, None, sale.amount, sale.kwh,
            ZERO, ZERO, ZERO, ZERO, ZERO, deducted=deducted,
        )  # fmt: skip
    percent_part = sale.amount * rule.percent / 100
    by_period = rule.tier_basis == TierBasis.PERIOD
    start = usage.kwh.get(rule.name, ZERO) if by_period else ZERO
    kwh_part = tiered(rule.tiers, start, sale.kwh)
    fixed_part = rule.fixed_fee
    gross = money(percent_part + kwh_part + fixed_part, plan.quantum)
    commission, capped = _capped(plan, rule, gross, usage)
    return CommissionLine(
        sale.reference, sale.at, sale.tx_type, rule.name, sale.amount, sale.kwh,
        percent_part, kwh_part, fixed_part, gross, commission, capped,
        deducted=deducted,
        tier_kwh=sale.kwh if by_period else ZERO,
    )  # fmt: skip


def _capped(
    plan: Plan, rule: Rule, gross: Decimal, usage: Usage
) -> tuple[Decimal, Capped | None]:
    amount, capped = gross, None
    rule_used = usage.commission.get(rule.name, ZERO)
    rooms = (
        (rule.cap_per_transaction, ZERO, Capped.TRANSACTION),
        (rule.cap_per_period, rule_used, Capped.RULE_PERIOD),
        (plan.cap_per_period, usage.total, Capped.PLAN_PERIOD),
    )
    for cap, used, label in rooms:
        if cap is None:
            continue
        room = money(max(cap - used, ZERO), plan.quantum)
        if amount > room:
            amount, capped = room, label
    return amount, capped


def reversal_of(reversal: Reversal, original: CommissionLine) -> CommissionLine:
    "The line that takes back original's commission, kWh and deduction"
    _aware(reversal.at, f"reversal {reversal.reference!r}")
    if original.is_reversal:
        raise CommissionError(
            f"reversal {reversal.reference!r} reverses {original.reference!r}, "
            "itself a reversal"
        )
    return replace(
        original,
        reference=reversal.reference,
        at=reversal.at,
        amount=-original.amount,
        kwh=-original.kwh,
        percent_part=-original.percent_part,
        kwh_part=-original.kwh_part,
        fixed_part=-original.fixed_part,
        gross=-original.gross,
        commission=-original.commission,
        deducted=-original.deducted,
        tier_kwh=-original.tier_kwh,
        reverses=original.reference,
    )


class Accumulator:
    """Folds a period's sales and reversals, in time order, into lines.

    Refuses (``CommissionError``, nothing booked) a reference seen twice, a
    reversal of an unknown transaction, and a second reversal of one."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.usage = Usage()
        self.lines: list[CommissionLine] = []
        self._sales: dict[str, CommissionLine] = {}
        self._reversed: set[str] = set()
        self._references: set[str] = set()

    def add(self, event: Sale | Reversal) -> CommissionLine:
        if event.reference in self._references:
            raise CommissionError(f"reference {event.reference!r} is there twice")
        if isinstance(event, Sale):
            line = commission_of(self.plan, event, self.usage)
            self._sales[event.reference] = line
        else:
            original = self._sales.get(event.original) or event.original_line
            if original is None:
                raise CommissionError(
                    f"reversal {event.reference!r}: transaction {event.original!r} "
                    "is not in the period; give its commission line"
                )
            if original.reference != event.original:
                raise CommissionError(
                    f"reversal {event.reference!r}: its original line is "
                    f"{original.reference!r}, not {event.original!r}"
                )
            if event.original in self._reversed:
                raise CommissionError(
                    f"transaction {event.original!r} is reversed twice"
                )
            line = reversal_of(event, original)
            self._reversed.add(event.original)
            if event.original not in self._sales:
                # Settled in an earlier period: taken back here, but it used
                # none of this period's kWh tiers or caps, so frees none.
                self._references.add(event.reference)
                self.lines.append(line)
                return line
        self._references.add(event.reference)
        self.usage = self.usage.after(line)
        self.lines.append(line)
        return line


def _aware(at: dt.datetime, where: str) -> None:
    if not isinstance(at, dt.datetime) or at.tzinfo is None:
        raise CommissionError(f"{where}: the time needs a time zone")
