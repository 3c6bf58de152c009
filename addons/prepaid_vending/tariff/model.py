"""Tariff data classes. Constructing one validates it, so an invalid tariff cannot
exist in memory: every error is a :class:`TariffError` naming the problem."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from .errors import TariffError
from .money import ZERO, VatRounding, quantum
from .tou import TouSchedule

MAX_BLOCKS = 10


class TariffKind(StrEnum):
    FLAT = "flat"  # one price for every kWh
    STEP = "step"  # inclining blocks on the kWh bought in the calendar month
    TOU = "tou"  # time of use: currency-credit meters and monthly billing only


class ChargePeriod(StrEnum):
    MONTHLY = "monthly"  # taken by the first vend of the calendar month
    YEARLY = "yearly"  # taken by the first vend of the calendar year
    EVERY_VEND = "every_vend"


@dataclass(frozen=True)
class Block:
    """Energy from ``from_kwh`` to ``to_kwh`` of month-to-date kWh at ``price``.

    Bounds are continuous (block 2 of "0-50, 51-350" starts at 50, not 51);
    ``to_kwh`` is None for the open-ended last block.
    """

    from_kwh: Decimal
    to_kwh: Decimal | None
    price: Decimal


@dataclass(frozen=True)
class Charge:
    """A fixed ``amount`` or a ``percent`` of the tender, taken once per ``period``.

    Amounts are in the tariff's price basis: VAT-exclusive when the tariff prices
    exclude VAT (VAT is added), VAT-inclusive otherwise (VAT is extracted).
    """

    name: str
    period: ChargePeriod
    amount: Decimal | None = None
    percent: Decimal | None = None


@dataclass(frozen=True)
class ChannelFee:
    channel: str
    amount: Decimal


@dataclass(frozen=True)
class PowerFactorPenalty:
    """Monthly-billing surcharge when the average power factor is below
    ``threshold``: ``percent`` of the energy charge for every ``step`` (or part of
    one) below the threshold."""

    threshold: Decimal
    percent: Decimal
    step: Decimal = Decimal("0.01")


@dataclass(frozen=True)
class Tariff:
    kind: TariffKind
    vat_rate: Decimal
    prices_include_vat: bool
    blocks: tuple[Block, ...] = ()
    tou: TouSchedule | None = None
    charges: tuple[Charge, ...] = ()
    channel_fee: Decimal = ZERO  # default for channels not in channel_fees
    channel_fees: tuple[ChannelFee, ...] = ()
    demand_charge_per_kw: Decimal | None = None
    power_factor_penalty: PowerFactorPenalty | None = None
    fbe_kwh_per_month: Decimal = ZERO
    currency_digits: int = 2
    vat_rounding: VatRounding = VatRounding.HALF_UP
    name: str = ""

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def quantum(self) -> Decimal:
        return quantum(self.currency_digits)

    def fee_for(self, channel: str | None) -> Decimal:
        for fee in self.channel_fees:
            if fee.channel == channel:
                return fee.amount
        return self.channel_fee


def _nonneg(value: Decimal, what: str) -> None:
    if not value.is_finite() or value < 0:
        raise TariffError(f"{what} must be a non-negative number, got {value}")


def _validate_blocks(blocks: tuple[Block, ...]) -> None:
    if not blocks:
        raise TariffError("a flat or step tariff needs at least one block")
    if len(blocks) > MAX_BLOCKS:
        raise TariffError(f"at most {MAX_BLOCKS} blocks, got {len(blocks)}")
    expected = ZERO
    for number, block in enumerate(blocks, 1):
        if block.price <= 0 or not block.price.is_finite():
            # A free block would make the kWh bought undefined; FBE is separate.
            raise TariffError(
                f"block {number}: price must be positive, got {block.price}"
            )
        if block.from_kwh > expected:
            raise TariffError(
                f"gap: block {number} starts at {block.from_kwh} kWh but the previous"
                f" block ends at {expected} kWh (bounds are continuous)"
            )
        if block.from_kwh < expected:
            raise TariffError(
                f"overlap: block {number} starts at {block.from_kwh} kWh but the"
                f" previous block ends at {expected} kWh"
            )
        if block.to_kwh is None:
            if number != len(blocks):
                raise TariffError(
                    f"block {number} is open-ended but is not the last block"
                )
            return
        if block.to_kwh <= block.from_kwh:
            raise TariffError(
                f"block {number}: bounds must increase ({block.from_kwh} to"
                f" {block.to_kwh} kWh)"
            )
        expected = block.to_kwh
    raise TariffError("the last block must be open-ended (to_kwh null)")


def _validate(tariff: Tariff) -> None:
    if not tariff.vat_rate.is_finite() or not 0 <= tariff.vat_rate < 1:
        raise TariffError(
            f"vat_rate must be a fraction in [0, 1), got {tariff.vat_rate}"
        )
    if not 0 <= tariff.currency_digits <= 4:
        raise TariffError(f"currency_digits must be 0-4, got {tariff.currency_digits}")
    if tariff.kind == TariffKind.TOU:
        if tariff.tou is None:
            raise TariffError("a TOU tariff needs a TOU schedule")
        if tariff.blocks:
            raise TariffError("a TOU tariff has no blocks")
    else:
        if tariff.tou is not None:
            raise TariffError(f"a {tariff.kind} tariff has no TOU schedule")
        _validate_blocks(tariff.blocks)
        if tariff.kind == TariffKind.FLAT and len(tariff.blocks) != 1:
            raise TariffError("a flat tariff has exactly one price")
    names: set[str] = set()
    for charge in tariff.charges:
        if not charge.name:
            raise TariffError("a charge needs a name")
        if charge.name in names:
            raise TariffError(f"duplicate charge {charge.name!r}")
        names.add(charge.name)
        if (charge.amount is None) == (charge.percent is None):
            raise TariffError(f"charge {charge.name!r}: give an amount or a percent")
        if charge.amount is not None:
            _nonneg(charge.amount, f"charge {charge.name!r} amount")
        if charge.percent is not None:
            _nonneg(charge.percent, f"charge {charge.name!r} percent")
            if charge.percent >= 100:
                raise TariffError(f"charge {charge.name!r}: percent must be below 100")
    _nonneg(tariff.channel_fee, "channel_fee")
    channels: set[str] = set()
    for fee in tariff.channel_fees:
        if fee.channel in channels:
            raise TariffError(f"duplicate channel fee for {fee.channel!r}")
        channels.add(fee.channel)
        _nonneg(fee.amount, f"channel fee {fee.channel!r}")
    if tariff.demand_charge_per_kw is not None:
        _nonneg(tariff.demand_charge_per_kw, "demand_charge_per_kw")
    pf = tariff.power_factor_penalty
    if pf is not None:
        if not 0 < pf.threshold <= 1:
            raise TariffError(
                f"power factor threshold must be in (0, 1], got {pf.threshold}"
            )
        _nonneg(pf.percent, "power factor penalty percent")
        if pf.step <= 0:
            raise TariffError("power factor step must be positive")
    _nonneg(tariff.fbe_kwh_per_month, "fbe_kwh_per_month")
