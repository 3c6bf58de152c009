"""Monthly reconciliation: the vendor's rows against the utility's
transactions, line by line.

Matching: each vendor row (in file order) looks for a utility transaction
by msgID, then receipt number, then token; the first key that finds one
decides.  A sale row takes the transaction's sale, a reversal row its
reversal; a later key that points to another transaction is noted on the
item.  A row whose transaction is already taken is a duplicate, and so is a
row that repeats the keys of an unmatched row above it; a duplicate whose
other keys point to another transaction keeps that in its notes and stays
open (never matched to it by guess: which key is wrong is for a person to
find out).  Keys compare in one form on both sides: msgIDs without leading
zeros (``values.parse_msg_id``), receipts in capitals, tokens as digits.

Classes (one per item; the first that applies):

- ``duplicate``: the vendor counts a transaction twice (the same msgID, the
  same receipt or the same token again);
- ``utility_only``: the utility sold, the vendor's file has no sale for it;
- ``vendor_only``: the vendor's row matches nothing of the utility's;
- ``reversed``: one side reversed the sale by the end of the period, the
  other did not;
- ``amount_mismatch``: the two amounts differ;
- ``cut_off``: the two sides date the sale in different periods (a sale at
  23:59:58 vendor time that the utility dated the next day, a vendor
  reporting in UTC): each side's date is its own local date;
- ``matched``: everything agrees (closed).

Every item but a matched one is an open item, aged in days from its
earliest date to ``as_of``.

Period: calendar days ``first_day`` to ``last_day``; the utility dates a
transaction in its time zone, the vendor a row in its own.  The caller
passes the utility's transactions of the period plus a margin (a day each
side, :data:`MARGIN`) so that cut-off items find their pair; items with
both sides outside the period are left out and counted as outside.

Totals: each item carries the vendor's amount (sale plus reversal, the
reversal negative), the utility's (the sale, zero when reversed by the end
of the period) and their difference; per class and overall,
vendor - utility = difference, and items plus outside add up to the
inputs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from ..money import ZERO
from .values import parse_msg_id
from .vendorfile import VendorRow

MARGIN = dt.timedelta(days=1)
AGE_BUCKETS = ((7, "0-7 days"), (30, "8-30 days"), (60, "31-60 days"),
               (90, "61-90 days"), (None, "over 90 days"))  # fmt: skip


class Class(StrEnum):
    MATCHED = "matched"
    UTILITY_ONLY = "utility_only"
    VENDOR_ONLY = "vendor_only"
    AMOUNT_MISMATCH = "amount_mismatch"
    REVERSED = "reversed"
    CUT_OFF = "cut_off"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class UtilityTx:
    """A sale as the utility booked it (an XMLVend vend of this vendor).

    ``msg_id`` is the idempotency key form ``<dateTime>:<uniqueNumber>``
    (without the client); ``reversed_at`` when it was reversed."""

    reference: str
    at: dt.datetime
    amount: Decimal
    msg_id: str | None = None
    receipt: str | None = None
    tokens: tuple[str, ...] = ()
    meter: str | None = None
    terminal: str | None = None
    reversed_at: dt.datetime | None = None

    @property
    def keys(self) -> tuple[tuple[str, str], ...]:
        """(key name, value) as a vendor row's: the msgID in its key form
        (leading zeros do not count), the receipt in capitals, the token's
        digits; ValueError for a msgID that is not one"""
        keys = [
            ("msg_id", parse_msg_id(self.msg_id) if self.msg_id else None),
            ("receipt", (self.receipt or "").upper()),
        ]
        keys += [("token", re.sub(r"\D", "", token)) for token in self.tokens]
        return tuple((name, value) for name, value in keys if value)


@dataclass(frozen=True)
class Item:
    cls: Class
    utility: UtilityTx | None
    vendor_lines: tuple[int, ...]
    matched_by: str | None
    vendor_amount: Decimal
    utility_amount: Decimal
    vendor_date: dt.date | None
    utility_date: dt.date | None
    age_days: int | None  # None when closed (matched)
    notes: tuple[str, ...] = ()

    @property
    def difference(self) -> Decimal:
        return self.vendor_amount - self.utility_amount

    @property
    def is_open(self) -> bool:
        return self.cls != Class.MATCHED


@dataclass(frozen=True)
class Total:
    count: int = 0
    vendor_amount: Decimal = ZERO
    utility_amount: Decimal = ZERO

    @property
    def difference(self) -> Decimal:
        return self.vendor_amount - self.utility_amount

    def plus(self, vendor: Decimal, utility: Decimal) -> Total:
        return Total(self.count + 1, self.vendor_amount + vendor,
                     self.utility_amount + utility)  # fmt: skip


@dataclass(frozen=True)
class Reconciliation:
    first_day: dt.date
    last_day: dt.date
    as_of: dt.date
    items: tuple[Item, ...]
    by_class: dict[Class, Total]  # every class, zero when absent
    total: Total
    ageing: dict[str, Total]  # open items by age bucket
    vendor_outside: Total  # vendor rows with both sides outside the period
    utility_outside: Total  # utility transactions likewise (the margin)

    @property
    def open_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.is_open)


@dataclass
class _Slot:
    tx: UtilityTx
    sale: VendorRow | None = None
    reversal: VendorRow | None = None
    matched_by: str | None = None
    notes: tuple[str, ...] = ()


def reconcile(
    rows: Iterable[VendorRow],
    transactions: Iterable[UtilityTx],
    first_day: dt.date,
    last_day: dt.date,
    *,
    utility_tz: ZoneInfo,
    vendor_tz: ZoneInfo,
    as_of: dt.date,
) -> Reconciliation:
    "The reconciliation of the period (see the module)"
    if last_day < first_day:
        raise ValueError("the period ends before it starts")
    slots = [_Slot(tx) for tx in transactions]
    index: dict[tuple[str, str], list[_Slot]] = {}
    for slot in slots:
        for key in _checked_keys(slot.tx):
            index.setdefault(key, []).append(slot)

    def in_period(day: dt.date) -> bool:
        return first_day <= day <= last_day

    def vendor_day(row: VendorRow) -> dt.date:
        return row.at.astimezone(vendor_tz).date()

    def utility_day(moment: dt.datetime) -> dt.date:
        return moment.astimezone(utility_tz).date()

    loose: list[tuple[Class, VendorRow, tuple[str, ...]]] = []
    seen: dict[tuple[str, str, str], int] = {}  # (side, key, value) -> line
    for row in rows:
        side = row.kind.value  # the slot it takes: "sale" or "reversal"
        hit: _Slot | None = None  # what the first key that finds one points to
        found: _Slot | None = None  # hit, when its side is still free
        notes: list[str] = []
        for name, value in row.keys:
            candidates = index.get((name, value), [])
            if not candidates:
                continue
            if hit is None:
                found = next((s for s in candidates if getattr(s, side) is None), None)
                hit = found or candidates[0]
                if found is not None:
                    found.matched_by = found.matched_by or name
            elif all(candidate is not hit for candidate in candidates):
                reference = candidates[0].tx.reference
                notes.append(f"its {name} is that of transaction {reference}")
        if found is not None:
            setattr(found, side, row)
            found.notes += tuple(notes)
        else:
            if hit is not None:
                first = getattr(hit, side).line
            else:
                first = next(
                    (seen[(side, *k)] for k in row.keys if (side, *k) in seen), None
                )
            if first is not None:
                # Its other keys may point to a transaction still open: the
                # conflict is noted and left to a person, never guessed.
                notes.insert(0, f"duplicate of line {first}")
                loose.append((Class.DUPLICATE, row, tuple(notes)))
            else:
                loose.append((Class.VENDOR_ONLY, row, ()))
        for key in row.keys:
            seen.setdefault((side, *key), row.line)

    items: list[Item] = []
    vendor_outside, utility_outside = Total(), Total()

    def age(*days: dt.date | None) -> int:
        return (as_of - min(d for d in days if d is not None)).days

    for slot in slots:
        tx, sale, reversal = slot.tx, slot.sale, slot.reversal
        u_day = utility_day(tx.at)
        u_reversed = (
            tx.reversed_at is not None and utility_day(tx.reversed_at) <= last_day
        )
        utility_amount = ZERO if u_reversed else tx.amount
        rows_of = [r for r in (sale, reversal) if r is not None]
        vendor_amount = sum((r.amount for r in rows_of), ZERO)
        v_day = (
            vendor_day(sale) if sale else (vendor_day(reversal) if reversal else None)
        )
        if not in_period(u_day) and not (v_day and in_period(v_day)):
            utility_outside = utility_outside.plus(ZERO, utility_amount)
            for r in rows_of:
                vendor_outside = vendor_outside.plus(r.amount, ZERO)
            continue
        notes = list(slot.notes)
        if sale is None:
            cls = Class.UTILITY_ONLY
            if reversal is not None:
                notes.append("the vendor's file has its reversal but not the sale")
        elif (reversal is not None) != u_reversed:
            cls = Class.REVERSED
            notes.append(
                "reversed by the utility, not by the vendor"
                if u_reversed
                else "reversed by the vendor, not by the utility"
            )
        elif sale.amount != tx.amount:
            cls = Class.AMOUNT_MISMATCH
        elif in_period(u_day) != in_period(v_day):
            cls = Class.CUT_OFF
            notes.append(f"vendor dated it {v_day}, the utility {u_day}")
        else:
            cls = Class.MATCHED
        if cls not in (Class.CUT_OFF, Class.UTILITY_ONLY) and v_day != u_day:
            notes.append(f"vendor dated it {v_day}, the utility {u_day}")
        items.append(
            Item(
                cls=cls,
                utility=tx,
                vendor_lines=tuple(r.line for r in rows_of),
                matched_by=slot.matched_by if rows_of else None,
                vendor_amount=vendor_amount,
                utility_amount=utility_amount,
                vendor_date=v_day,
                utility_date=u_day,
                age_days=None if cls == Class.MATCHED else age(u_day, v_day),
                notes=tuple(notes),
            )
        )
    for cls, row, notes in loose:
        day = vendor_day(row)
        if not in_period(day):
            vendor_outside = vendor_outside.plus(row.amount, ZERO)
            continue
        items.append(
            Item(
                cls,
                None,
                (row.line,),
                None,
                row.amount,
                ZERO,
                day,
                None,
                age(day),
                notes,
            )  # fmt: skip
        )
    items.sort(key=_item_order)
    by_class = {cls: Total() for cls in Class}
    ageing = {label: Total() for _, label in AGE_BUCKETS}
    total = Total()
    for item in items:
        by_class[item.cls] = by_class[item.cls].plus(
            item.vendor_amount, item.utility_amount
        )
        total = total.plus(item.vendor_amount, item.utility_amount)
        if item.is_open:
            label = next(
                label for limit, label in AGE_BUCKETS
                if limit is None or item.age_days <= limit
            )  # fmt: skip
            ageing[label] = ageing[label].plus(item.vendor_amount, item.utility_amount)
    return Reconciliation(
        first_day, last_day, as_of, tuple(items), by_class, total, ageing,
        vendor_outside, utility_outside,
    )  # fmt: skip


def _checked_keys(tx: UtilityTx) -> tuple[tuple[str, str], ...]:
    "The transaction's keys, once its times are known to be aware"
    for name, moment in (("time", tx.at), ("reversal time", tx.reversed_at)):
        if moment is not None and moment.tzinfo is None:
            raise ValueError(f"transaction {tx.reference}: {name} without zone")
    try:
        return tx.keys
    except ValueError as error:
        raise ValueError(f"transaction {tx.reference}: {error}") from None


def _item_order(item: Item) -> tuple:
    day = item.utility_date or item.vendor_date
    first_line = min(item.vendor_lines) if item.vendor_lines else 0
    moment = item.utility.at if item.utility else dt.datetime.min.replace(tzinfo=dt.UTC)
    return (day, moment, first_line)
