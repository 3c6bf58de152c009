"""The commission settlement of a vendor for a period (a month).

``settle(plan, events, period, as_of=...)`` folds the period's sales and
reversals in time order (:class:`.engine.Accumulator`) and returns a
:class:`Settlement`: every line, the totals per rule and per transaction
type, and the amount due.  A draft (the preview a vendor or an accountant
looks at during the month) can be computed at any time and as often as
wanted; a final settlement only once the period has ended, and the Tryton
layer posts it (it is then never recomputed: reversals that come later are
taken back in the period of the reversal).

- ``Mode.MONTHLY``: nothing was deducted at the sales; ``payable`` (due to
  the vendor) is the total.
- ``Mode.AT_SALE``: each sale carries the commission the vendor kept;
  ``payable`` is the total computed here less what was kept: zero when the
  sales were priced with the period's usage as it stood, and otherwise the
  true-up (positive: the utility owes the vendor; negative: the vendor kept
  too much, for instance when two tills sold at the same moment near a cap).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from ..money import ZERO
from .engine import Accumulator, CommissionLine, Reversal, Sale
from .rules import CommissionError, Mode, Plan, TxType


class State(StrEnum):
    DRAFT = "draft"  # a preview: may change until the period is settled
    FINAL = "final"  # the period has ended; to be posted as it is


@dataclass(frozen=True)
class Period:
    "[start, end): aware datetimes (the utility's month boundaries)"

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise CommissionError("a period's bounds need a time zone")
        if self.end <= self.start:
            raise CommissionError("a period must end after it starts")

    def __contains__(self, at: dt.datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class Subtotal:
    "The lines of one rule (or one transaction type)"

    key: str
    count: int
    amount: Decimal
    kwh: Decimal
    commission: Decimal


@dataclass(frozen=True)
class Settlement:
    period: Period
    state: State
    mode: Mode
    as_of: dt.datetime
    lines: tuple[CommissionLine, ...]
    by_rule: tuple[Subtotal, ...]  # "" for transactions no rule paid
    by_type: tuple[Subtotal, ...]
    total: Decimal  # sum of the lines' commission
    deducted: Decimal  # kept by the vendor at the sales
    payable: Decimal  # total - deducted: due to the vendor (negative: by it)


def settle(
    plan: Plan,
    events: Iterable[Sale | Reversal],
    period: Period,
    *,
    as_of: dt.datetime,
    final: bool = False,
) -> Settlement:
    """The settlement of the period's events (see the module).

    Raises ``CommissionError`` (and settles nothing) for an event outside the
    period, a final settlement before the period's end, a reversal before
    its transaction, a deduction in monthly mode, or what the accumulator
    refuses."""
    if as_of.tzinfo is None:
        raise CommissionError("as_of needs a time zone")
    if final and as_of < period.end:
        raise CommissionError(
            f"the period ends {period.end.isoformat()}: only a draft can be "
            "computed before"
        )
    events = list(events)
    times: dict[str, dt.datetime] = {}
    for event in events:
        if not isinstance(event.at, dt.datetime) or event.at.tzinfo is None:
            raise CommissionError(f"{event.reference!r}: the time needs a time zone")
        if event.at not in period:
            raise CommissionError(
                f"{event.reference!r} at {event.at.isoformat()} is outside the period"
            )
        if isinstance(event, Sale):
            if plan.mode == Mode.MONTHLY and event.deducted:
                raise CommissionError(
                    f"{event.reference!r} had commission deducted at the sale, "
                    "but the plan settles monthly"
                )
            times[event.reference] = event.at
    for event in events:
        if isinstance(event, Reversal) and event.original in times:
            if event.at < times[event.original]:
                raise CommissionError(
                    f"reversal {event.reference!r} is dated before "
                    f"{event.original!r}, the transaction it reverses"
                )
    # Time order; a sale before a reversal at the same instant.
    events.sort(key=lambda e: (e.at, isinstance(e, Reversal), e.reference))
    accumulator = Accumulator(plan)
    for event in events:
        accumulator.add(event)
    lines = tuple(accumulator.lines)
    total = sum((line.commission for line in lines), ZERO)
    deducted = sum((line.deducted for line in lines), ZERO)
    return Settlement(
        period=period,
        state=State.FINAL if final else State.DRAFT,
        mode=plan.mode,
        as_of=as_of,
        lines=lines,
        by_rule=_subtotals(lines, lambda line: line.rule or ""),
        by_type=_subtotals(lines, lambda line: TxType(line.tx_type).value),
        total=total,
        deducted=deducted,
        payable=total - deducted,
    )


def _subtotals(lines: tuple[CommissionLine, ...], key) -> tuple[Subtotal, ...]:
    groups: dict[str, list[CommissionLine]] = {}
    for line in lines:
        groups.setdefault(key(line), []).append(line)
    return tuple(
        Subtotal(
            key=name,
            # A reversal cancels its transaction in the count.
            count=sum(-1 if line.is_reversal else 1 for line in group),
            amount=sum((line.amount for line in group), ZERO),
            kwh=sum((line.kwh for line in group), ZERO),
            commission=sum((line.commission for line in group), ZERO),
        )
        for name, group in sorted(groups.items())
    )
