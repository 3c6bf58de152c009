"""Commission rules and plans: what a vendor earns on each transaction.

A :class:`Plan` is the set of rules agreed with one vendor.  A :class:`Rule`
applies to some transaction types (vend, free basic electricity, key change,
account payment), optionally only on one sales channel and for one customer
category, and earns the sum of three parts:

- a percentage of the transaction's amount (``percent`` is in percent:
  ``Decimal("2.5")`` is 2.5 %, never a fraction, and a value above 100 is
  refused, so "10" can never mean 1000 %);
- an amount per kWh on sliding tiers (:class:`Tier`): each kWh is paid at the
  rate of the tier it falls in, like the blocks of an inclining tariff.  The
  kWh are counted per transaction, or cumulated over the settlement period
  (``TierBasis.PERIOD``: the more a vendor sells in a month, the higher or
  lower the rate of the next kWh);
- a fixed fee per transaction.

then is capped per transaction and per period (per rule, and for the whole
plan).  Which rule applies (precedence): among the rules valid at the
transaction's time that match its type, channel and category, the most
specific one (a rule naming both a channel and a category beats one naming
either, which beats one naming neither); between equally specific rules the
lower ``sequence``.  Two rules that could tie are refused when the plan is
built, so a transaction never depends on the order rules were typed in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from ..money import ZERO, money, quantum, require_decimal

HUNDRED = Decimal(100)


class CommissionError(ValueError):
    "A plan, a sale or a reversal that cannot be computed; nothing is changed"


class TxType(StrEnum):
    "Transaction types a fixed fee or a rule can be specific to"

    VEND = "vend"
    FBE = "fbe"  # free basic electricity issue
    KEY_CHANGE = "key_change"
    PAY_ACCOUNT = "pay_account"  # debt or service charge collected


class TierBasis(StrEnum):
    "What the kWh tiers count"

    TRANSACTION = "transaction"  # each transaction starts at 0 kWh
    PERIOD = "period"  # the rule's kWh so far in the settlement period


class Mode(StrEnum):
    "When the vendor gets its commission (the vendor's choice)"

    MONTHLY = "monthly"  # settled after the month: draft preview, then final
    AT_SALE = "at_sale"  # deducted from each sale's price to the vendor


@dataclass(frozen=True)
class Tier:
    """kWh up to ``up_to`` (None: no upper bound) earn ``rate`` per kWh.

    Tiers are given in ascending order; the first starts at 0 kWh."""

    up_to: Decimal | None
    rate: Decimal


@dataclass(frozen=True)
class Rule:
    name: str
    types: frozenset[TxType]
    channel: str | None = None  # None: any channel
    category: str | None = None  # customer category code; None: any
    percent: Decimal = ZERO
    tiers: tuple[Tier, ...] = ()
    tier_basis: TierBasis = TierBasis.TRANSACTION
    fixed_fee: Decimal = ZERO
    cap_per_transaction: Decimal | None = None
    cap_per_period: Decimal | None = None
    sequence: int = 10
    valid_from: dt.datetime | None = None  # inclusive
    valid_until: dt.datetime | None = None  # exclusive

    @property
    def specificity(self) -> int:
        return (self.channel is not None) + (self.category is not None)

    def matches(self, tx_type: TxType, channel: str, category: str) -> bool:
        return (
            tx_type in self.types
            and self.channel in (None, channel)
            and self.category in (None, category)
        )

    def valid_at(self, at: dt.datetime) -> bool:
        return (self.valid_from is None or at >= self.valid_from) and (
            self.valid_until is None or at < self.valid_until
        )

    def validate(self) -> None:
        where = f"commission rule {self.name!r}"
        if not self.name.strip():
            raise CommissionError("a commission rule needs a name")
        if not self.types:
            raise CommissionError(f"{where}: name the transaction types it pays")
        for value, label in (
            (self.percent, "percent"),
            (self.fixed_fee, "fixed fee"),
        ):
            _check(value, f"{where}: {label}")
        if self.percent > HUNDRED:
            raise CommissionError(
                f"{where}: percent is in percent (2.5 means 2.5 %), "
                f"{self.percent} is more than 100"
            )
        for cap, label in (
            (self.cap_per_transaction, "cap per transaction"),
            (self.cap_per_period, "cap per period"),
        ):
            if cap is not None:
                _check(cap, f"{where}: {label}")
        bound = ZERO
        for index, tier in enumerate(self.tiers):
            _check(tier.rate, f"{where}: tier {index + 1} rate")
            last = index == len(self.tiers) - 1
            if tier.up_to is None:
                if not last:
                    raise CommissionError(
                        f"{where}: only the last tier may have no upper bound"
                    )
                continue
            _check(tier.up_to, f"{where}: tier {index + 1} bound")
            if tier.up_to <= bound:
                raise CommissionError(
                    f"{where}: tier bounds must increase ({tier.up_to} after {bound})"
                )
            bound = tier.up_to
        if self.tiers and self.tiers[-1].up_to is not None:
            # kWh above the last bound would silently earn nothing.
            raise CommissionError(f"{where}: the last tier must have no upper bound")
        for when, label in ((self.valid_from, "from"), (self.valid_until, "until")):
            if when is not None and when.tzinfo is None:
                raise CommissionError(f"{where}: valid {label} needs a time zone")
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until <= self.valid_from
        ):
            raise CommissionError(f"{where}: valid until is not after valid from")


@dataclass(frozen=True)
class Plan:
    """A vendor's commission rules.

    ``digits`` are the currency's decimal digits: each transaction's commission
    is rounded half-up to them (see :func:`.engine.commission_of`)."""

    rules: tuple[Rule, ...]
    mode: Mode = Mode.MONTHLY
    cap_per_period: Decimal | None = None  # all rules together
    digits: int = 2
    quantum: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "quantum", quantum(self.digits))
        except ValueError as error:
            raise CommissionError(str(error)) from None
        names = set()
        for rule in self.rules:
            rule.validate()
            if rule.name in names:
                raise CommissionError(f"two commission rules are named {rule.name!r}")
            names.add(rule.name)
        if self.cap_per_period is not None:
            _check(self.cap_per_period, "the plan's cap per period")
        for cap, where in [(self.cap_per_period, "the plan's cap per period")] + [
            (cap, f"commission rule {rule.name!r}: cap")
            for rule in self.rules
            for cap in (rule.cap_per_transaction, rule.cap_per_period)
        ]:
            if cap is not None and cap != money(cap, self.quantum):
                raise CommissionError(
                    f"{where} {cap} has more digits than the currency's {self.digits}"
                )
        self._refuse_ties()

    def _refuse_ties(self) -> None:
        rules = self.rules
        for i, first in enumerate(rules):
            for second in rules[i + 1 :]:
                if (
                    first.sequence == second.sequence
                    and first.specificity == second.specificity
                    and first.types & second.types
                    and _overlap(first.channel, second.channel)
                    and _overlap(first.category, second.category)
                    and _periods_overlap(first, second)
                ):
                    raise CommissionError(
                        f"commission rules {first.name!r} and {second.name!r} "
                        "can both apply to the same transaction with the same "
                        "precedence: give them different sequences"
                    )

    def rule_for(
        self, tx_type: TxType, channel: str, category: str, at: dt.datetime
    ) -> Rule | None:
        "The rule that pays a transaction (see the module's precedence), or None"
        candidates = [
            rule
            for rule in self.rules
            if rule.matches(tx_type, channel, category) and rule.valid_at(at)
        ]
        if not candidates:
            return None
        return min(candidates, key=lambda rule: (-rule.specificity, rule.sequence))


def _check(value: Decimal, label: str) -> None:
    try:
        require_decimal(value, label)
    except (TypeError, ValueError) as error:
        raise CommissionError(str(error)) from None


def _overlap(first: str | None, second: str | None) -> bool:
    return first is None or second is None or first == second


def _periods_overlap(first: Rule, second: Rule) -> bool:
    def starts(rule: Rule) -> dt.datetime:
        return rule.valid_from or dt.datetime.min.replace(tzinfo=dt.UTC)

    def ends(rule: Rule) -> dt.datetime:
        return rule.valid_until or dt.datetime.max.replace(tzinfo=dt.UTC)

    return starts(first) < ends(second) and starts(second) < ends(first)
