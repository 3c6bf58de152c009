"""Inclining-block arithmetic on the kWh already bought in the calendar month."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .errors import TariffError
from .model import Block
from .money import ZERO, kwh_down, money


@dataclass(frozen=True)
class BlockUse:
    """Energy taken from one block: ``kwh`` as issued (0.1 kWh), ``amount`` of money
    spent in it (in the tariff's price basis)."""

    block: int  # 1-based block number
    kwh: Decimal
    price: Decimal
    amount: Decimal


def _check_position(start_kwh: Decimal) -> None:
    if not start_kwh.is_finite() or start_kwh < 0:
        raise TariffError(f"month_to_date_kwh must be >= 0, got {start_kwh}")


def walk_amount(
    blocks: Sequence[Block], start_kwh: Decimal, amount: Decimal, q: Decimal
) -> tuple[Decimal, tuple[BlockUse, ...]]:
    """Spend ``amount`` on energy from month position ``start_kwh``.

    Returns the kWh to issue (rounded down to 0.1) and the per-block breakdown.
    The breakdown's kWh add up to the issued kWh (cumulative rounding) and its
    amounts add up to ``amount`` exactly: the money for the fraction of 0.1 kWh that
    is not issued stays in the last block used, so nothing paid disappears.
    """
    _check_position(start_kwh)
    exact: list[tuple[int, Block, Decimal, Decimal]] = []  # (number, block, kWh, cost)
    position, remaining = start_kwh, amount
    for number, block in enumerate(blocks, 1):
        if remaining <= 0:
            break
        if block.to_kwh is not None and position >= block.to_kwh:
            continue
        room = None if block.to_kwh is None else block.to_kwh - position
        if room is None or remaining <= room * block.price:
            exact.append((number, block, remaining / block.price, remaining))
            remaining = ZERO
            break
        cost = room * block.price
        exact.append((number, block, room, cost))
        remaining -= cost
        position = block.to_kwh
    uses = []
    issued_before, spent_before, cumulative = ZERO, ZERO, ZERO
    for i, (number, block, kwh, cost) in enumerate(exact):
        cumulative += kwh
        issued = kwh_down(cumulative)
        spent = amount - spent_before if i == len(exact) - 1 else money(cost, q)
        uses.append(BlockUse(number, issued - issued_before, block.price, spent))
        issued_before = issued
        spent_before += spent
    return kwh_down(cumulative), tuple(uses)


def cost_of_kwh(blocks: Sequence[Block], start_kwh: Decimal, kwh: Decimal) -> Decimal:
    """Exact (unrounded) price-basis cost of ``kwh`` bought from ``start_kwh``."""
    return sum((k * p for _, k, p in split_kwh(blocks, start_kwh, kwh)), ZERO)


def split_kwh(
    blocks: Sequence[Block], start_kwh: Decimal, kwh: Decimal
) -> list[tuple[int, Decimal, Decimal]]:
    """Split ``kwh`` consumed from ``start_kwh`` into (block, kWh, price) parts."""
    _check_position(start_kwh)
    parts = []
    position, remaining = start_kwh, kwh
    for number, block in enumerate(blocks, 1):
        if remaining <= 0:
            break
        if block.to_kwh is not None and position >= block.to_kwh:
            continue
        room = remaining if block.to_kwh is None else block.to_kwh - position
        take = min(room, remaining)
        parts.append((number, take, block.price))
        remaining -= take
        position += take
    return parts
