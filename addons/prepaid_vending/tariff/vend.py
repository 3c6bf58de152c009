"""Vend quote: how a tender is split between fees, charges, debt and energy.

Pipeline order (docs/vending.md section 6): channel fee, period charges (monthly on the
first vend of the month, yearly on the first vend of the year, every_vend always),
emergency credit repayment, debt recovery, then the remainder is energy including
VAT: VAT is stripped and inclining blocks are walked from the month-to-date kWh.
Free basic electricity is reported separately: it is issued as its own token and
does not move the month position.

Policies (documented here because they are choices):

- Every deduction is rounded to the currency precision; the energy amount is what is
  left, so the parts always add up to the tender exactly. The money for the part of
  0.1 kWh that is not issued (units are rounded down) stays in the energy amount.
- A percentage charge and debt recovery are percentages of the gross tender.
- Emergency credit owed and debt are amounts already invoiced, so no VAT is split
  out of them here.
- If the tender does not cover the channel fee and the charges, the vend is refused
  with a :class:`TariffError` (charges are never taken partially). Emergency credit
  and debt are capped at what is left, so they never refuse a vend.
- A zero tender is only valid when free basic electricity is due: it returns the
  FBE units and charges nothing (period charges stay due for the next paid vend).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from .blocks import BlockUse, cost_of_kwh, walk_amount
from .errors import TariffError
from .model import ChargePeriod, Tariff, TariffKind
from .money import HUNDRED, ZERO, money, vat_in_gross, vat_on_net


class MeterRegister(StrEnum):
    KWH = "kwh"  # the token carries kWh; the vend applies the blocks
    CURRENCY = "currency"  # the token carries money; the meter applies its rates


@dataclass(frozen=True)
class Debt:
    balance: Decimal
    recovery_percent: Decimal
    min_per_vend: Decimal | None = None
    max_per_vend: Decimal | None = None


@dataclass(frozen=True)
class VendRequest:
    tender: Decimal
    month_to_date_kwh: Decimal = ZERO
    first_vend_of_month: bool = False
    first_vend_of_year: bool = False
    debt: Debt | None = None
    emergency_credit_owed: Decimal = ZERO
    channel: str | None = None
    channel_fee: Decimal | None = None  # overrides the tariff's fee for the channel
    fbe_due: bool = False
    meter_register: MeterRegister = MeterRegister.KWH


@dataclass(frozen=True)
class ChargeLine:
    """A deduction with its VAT; ``amount`` excludes VAT."""

    name: str
    amount: Decimal
    vat: Decimal

    @property
    def gross(self) -> Decimal:
        return self.amount + self.vat


@dataclass(frozen=True)
class VendQuote:
    tender: Decimal
    channel_fee: ChargeLine
    charges: tuple[ChargeLine, ...]
    emergency_credit_recovered: Decimal
    debt_recovered: Decimal
    debt_remaining: Decimal
    energy_amount: Decimal  # excluding VAT
    energy_vat: Decimal
    units_kwh: Decimal  # rounded down to 0.1 kWh; 0 for currency-register meters
    blocks: tuple[BlockUse, ...]
    month_to_date_kwh: Decimal  # month position after this vend
    credit_amount: Decimal  # money loaded on a currency-register meter, else 0
    fbe_kwh: Decimal

    @property
    def total(self) -> Decimal:
        return (
            self.channel_fee.gross
            + sum((c.gross for c in self.charges), ZERO)
            + self.emergency_credit_recovered
            + self.debt_recovered
            + self.energy_amount
            + self.energy_vat
        )


def _money_in(value: Decimal, q: Decimal, what: str) -> Decimal:
    if not value.is_finite() or value < 0:
        raise TariffError(f"{what} must be a non-negative amount, got {value}")
    if value != value.quantize(q):
        raise TariffError(f"{what} {value} has more decimal places than the currency")
    return value


def _line(tariff: Tariff, name: str, amount: Decimal) -> ChargeLine:
    """A deduction stated in the tariff's price basis, split into net and VAT."""
    q, rate, mode = tariff.quantum, tariff.vat_rate, tariff.vat_rounding
    amount = money(amount, q)
    if tariff.prices_include_vat:
        vat = vat_in_gross(amount, rate, q, mode)
        return ChargeLine(name, amount - vat, vat)
    return ChargeLine(name, amount, vat_on_net(amount, rate, q, mode))


def _charge_due(period: ChargePeriod, request: VendRequest) -> bool:
    if period == ChargePeriod.MONTHLY:
        return request.first_vend_of_month
    if period == ChargePeriod.YEARLY:
        return request.first_vend_of_year
    return True


def _check_request(tariff: Tariff, request: VendRequest) -> None:
    q = tariff.quantum
    _money_in(request.tender, q, "tender")
    _money_in(request.emergency_credit_owed, q, "emergency_credit_owed")
    if request.channel_fee is not None:
        _money_in(request.channel_fee, q, "channel_fee")
    mtd = request.month_to_date_kwh
    if not mtd.is_finite() or mtd < 0:
        raise TariffError(f"month_to_date_kwh must be >= 0, got {mtd}")
    debt = request.debt
    if debt is not None:
        _money_in(debt.balance, q, "debt balance")
        pct = debt.recovery_percent
        if not pct.is_finite() or not 0 <= pct <= 100:
            raise TariffError(f"debt recovery_percent must be 0-100, got {pct}")
        if debt.min_per_vend is not None:
            _money_in(debt.min_per_vend, q, "debt min_per_vend")
        if debt.max_per_vend is not None:
            _money_in(debt.max_per_vend, q, "debt max_per_vend")
            if debt.min_per_vend is not None and debt.min_per_vend > debt.max_per_vend:
                raise TariffError("debt min_per_vend is above max_per_vend")
    if tariff.kind == TariffKind.TOU and request.meter_register == MeterRegister.KWH:
        raise TariffError(
            "a TOU tariff cannot be priced at vend time for a kWh-register meter;"
            " use a currency-credit meter or remote-prepaid billing"
        )


def quote_vend(tariff: Tariff, request: VendRequest) -> VendQuote:
    """Split ``request.tender`` along the vend pipeline (see the module docstring)."""
    _check_request(tariff, request)
    q = tariff.quantum
    zero = ZERO.quantize(q)
    tender = request.tender
    fbe = tariff.fbe_kwh_per_month if request.fbe_due else ZERO
    mtd = request.month_to_date_kwh
    debt_balance = request.debt.balance.quantize(q) if request.debt else zero
    if not tender:
        if not fbe:
            raise TariffError("the tender must be positive (zero only to collect FBE)")
        return VendQuote(
            tender, ChargeLine("Channel fee", zero, zero), (), zero, zero,
            debt_balance, zero, zero, ZERO.quantize(Decimal("0.1")), (), mtd, zero, fbe,
        )  # fmt: skip

    fee_amount = request.channel_fee
    if fee_amount is None:
        fee_amount = tariff.fee_for(request.channel)
    fee = _line(tariff, "Channel fee", fee_amount)
    charges = tuple(
        _line(
            tariff,
            charge.name,
            charge.amount
            if charge.amount is not None
            else tender * charge.percent / HUNDRED,
        )
        for charge in tariff.charges
        if _charge_due(charge.period, request)
    )
    left = tender - fee.gross - sum((c.gross for c in charges), ZERO)
    if left < 0:
        raise TariffError(
            f"tender {tender} does not cover the channel fee and charges"
            f" ({tender - left}); at least {tender - left} is needed"
        )
    emergency = min(request.emergency_credit_owed, left).quantize(q)
    left -= emergency
    debt_recovered = zero
    if request.debt is not None:
        debt = request.debt
        wanted = money(tender * debt.recovery_percent / HUNDRED, q)
        if debt.min_per_vend is not None:
            wanted = max(wanted, debt.min_per_vend)
        if debt.max_per_vend is not None:
            wanted = min(wanted, debt.max_per_vend)
        debt_recovered = min(wanted, debt.balance, left).quantize(q)
        left -= debt_recovered
    energy_vat = vat_in_gross(left, tariff.vat_rate, q, tariff.vat_rounding)
    energy_net = left - energy_vat
    # Walk the blocks in the basis the prices are published in, so a VAT-inclusive
    # tariff gives exactly tender / published price (docs/vending.md Example B).
    basis_amount = left if tariff.prices_include_vat else energy_net
    if request.meter_register == MeterRegister.CURRENCY:
        units, uses, credit = ZERO.quantize(Decimal("0.1")), (), basis_amount
    else:
        units, uses = walk_amount(tariff.blocks, mtd, basis_amount, q)
        credit = zero
    quote = VendQuote(
        tender=tender,
        channel_fee=fee,
        charges=charges,
        emergency_credit_recovered=emergency,
        debt_recovered=debt_recovered,
        debt_remaining=debt_balance - debt_recovered,
        energy_amount=energy_net,
        energy_vat=energy_vat,
        units_kwh=units,
        blocks=uses,
        month_to_date_kwh=mtd + units,
        credit_amount=credit,
        fbe_kwh=fbe,
    )
    assert quote.total == tender, "vend parts do not add up to the tender"
    return quote


MAX_TENDER_DOUBLINGS = 64


def tender_for_kwh(tariff: Tariff, kwh: Decimal, request: VendRequest) -> VendQuote:
    """The smallest tender whose quote issues at least ``kwh`` (the cashier asks
    for a number of kWh). ``request.tender`` is ignored. Returns that quote."""
    if not kwh.is_finite() or kwh <= 0:
        raise TariffError(f"requested kWh must be positive, got {kwh}")
    if tariff.kind == TariffKind.TOU:
        raise TariffError("a TOU tariff has no kWh price at vend time")
    if request.meter_register == MeterRegister.CURRENCY:
        raise TariffError("a currency-register meter is sold money, not kWh")
    q = tariff.quantum

    def units(cents: int) -> tuple[Decimal, VendQuote | None]:
        try:
            quote = quote_vend(tariff, replace(request, tender=cents * q))
        except TariffError:
            return ZERO, None  # tender too small for the charges
        return quote.units_kwh, quote

    # Start from the energy cost alone, then double until enough: deductions that
    # depend on the tender (percentages, debt) make a closed form awkward.
    estimate = cost_of_kwh(tariff.blocks, request.month_to_date_kwh, kwh)
    if not tariff.prices_include_vat:
        estimate *= 1 + tariff.vat_rate
    high = max(int(estimate / q) + 1, 1)
    for _ in range(MAX_TENDER_DOUBLINGS):
        if units(high)[0] >= kwh:
            break
        high *= 2
    else:
        raise TariffError(
            f"no tender buys {kwh} kWh: the deductions take the whole tender"
        )
    low = 0  # units(low) < kwh holds: a zero tender issues no units
    while high - low > 1:
        middle = (low + high) // 2
        if units(middle)[0] >= kwh:
            high = middle
        else:
            low = middle
    # Rounding of percentage deductions can make units non-monotonic by a cent;
    # step down while a smaller tender still buys enough.
    while high > 1 and units(high - 1)[0] >= kwh:
        high -= 1
    result = units(high)[1]
    assert result is not None
    return result
