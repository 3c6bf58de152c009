"""Vendor commission, pure Python (no trytond import): rules and plans
(:mod:`.rules`), the commission of one transaction (:mod:`.engine`) and the
period settlement, draft then final (:mod:`.settle`).  See docs/vendors.md.

At a sale (``Mode.AT_SALE``) the Tryton layer calls
``commission_of(plan, sale, usage)`` with the period's usage so far; each
month it calls ``settle(plan, events, period, as_of=now, final=...)``.
"""

from .engine import (
    Accumulator,
    Capped,
    CommissionLine,
    Reversal,
    Sale,
    Usage,
    commission_of,
    reversal_of,
    tiered,
)
from .rules import CommissionError, Mode, Plan, Rule, Tier, TierBasis, TxType
from .settle import Period, Settlement, State, Subtotal, settle

__all__ = [
    "Accumulator",
    "Capped",
    "CommissionError",
    "CommissionLine",
    "Mode",
    "Period",
    "Plan",
    "Reversal",
    "Rule",
    "Sale",
    "Settlement",
    "State",
    "Subtotal",
    "Tier",
    "TierBasis",
    "TxType",
    "Usage",
    "commission_of",
    "reversal_of",
    "settle",
    "tiered",
]
