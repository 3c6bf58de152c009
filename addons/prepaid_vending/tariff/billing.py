"""Monthly billing for remote-prepaid (AMI) customers.

Prices a month's consumption: inclining blocks on the month's kWh (flat/step
tariffs) or TOU per load-profile interval, the periodic charges, a maximum-demand
charge per kW and a power-factor penalty. Every line is rounded once, half-up, and
carries its VAT; the bill total is the sum of the lines.

Policies: percentage charges are a percentage of the energy charge (there is no
tender in billing); every_vend charges belong to vends and are not billed; the
power-factor penalty is a percentage of the energy charge.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from .blocks import split_kwh
from .errors import TariffError
from .model import ChargePeriod, Tariff, TariffKind
from .money import HUNDRED, ZERO, money, vat_in_gross, vat_on_net
from .tou import price_intervals


@dataclass(frozen=True)
class BillLine:
    """``price`` is as published (VAT-inclusive or not); ``amount`` excludes VAT."""

    description: str
    quantity: Decimal
    unit: str
    price: Decimal
    amount: Decimal
    vat: Decimal

    @property
    def gross(self) -> Decimal:
        return self.amount + self.vat


@dataclass(frozen=True)
class MonthlyBill:
    lines: tuple[BillLine, ...]

    @property
    def amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    @property
    def vat(self) -> Decimal:
        return sum((line.vat for line in self.lines), ZERO)

    @property
    def total(self) -> Decimal:
        return self.amount + self.vat


def power_factor(kwh: Decimal, kvarh: Decimal) -> Decimal:
    """Average power factor of a month from active and reactive energy."""
    if kwh < 0 or kvarh < 0:
        raise TariffError("active and reactive energy must be non-negative")
    apparent = (kwh * kwh + kvarh * kvarh).sqrt()
    if not apparent:
        raise TariffError("no energy: the power factor is undefined")
    return kwh / apparent


def bill_month(
    tariff: Tariff,
    *,
    kwh: Decimal | None = None,
    profile: Sequence[tuple[datetime, Decimal]] | None = None,
    interval: timedelta = timedelta(minutes=30),
    stamp: str = "end",
    max_demand_kw: Decimal | None = None,
    pf: Decimal | None = None,
    kvarh: Decimal | None = None,
    first_month_of_year: bool = False,
) -> MonthlyBill:
    """Itemise one month. Give ``kwh`` (flat/step) or a load ``profile`` of
    ``(timestamp, kWh)`` intervals (any kind; required for TOU). The power factor
    comes from ``pf`` or from ``kvarh`` and the month's kWh."""
    q = tariff.quantum
    # (description, quantity, unit, published price, price-basis amount)
    raw: list[tuple[str, Decimal, str, Decimal, Decimal]] = []
    if profile is not None and kwh is not None:
        raise TariffError("give the month's kWh or a load profile, not both")
    if tariff.kind == TariffKind.TOU:
        if profile is None or tariff.tou is None:
            raise TariffError("a TOU tariff is billed from a load profile")
        per_rate: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for part in price_intervals(tariff.tou, profile, interval, stamp):
            per_rate[part.rate] += part.kwh
        for index in sorted(per_rate):
            rate = tariff.tou.rate(index)
            energy = per_rate[index]
            raw.append(
                (f"Energy {rate.name}", energy, "kWh", rate.price, energy * rate.price)
            )
        month_kwh = sum(per_rate.values(), ZERO)
    else:
        if profile is not None:
            if any(value < 0 for _, value in profile):
                raise TariffError("negative consumption in the load profile")
            month_kwh = sum((value for _, value in profile), ZERO)
        elif kwh is None:
            raise TariffError("give the month's kWh or a load profile")
        else:
            month_kwh = kwh
        if not month_kwh.is_finite() or month_kwh < 0:
            raise TariffError(f"monthly kWh must be >= 0, got {month_kwh}")
        for number, energy, price in split_kwh(tariff.blocks, ZERO, month_kwh):
            raw.append((f"Energy block {number}", energy, "kWh", price, energy * price))
    energy_charge = sum((money(item[4], q) for item in raw), ZERO)

    for charge in tariff.charges:
        if charge.period == ChargePeriod.EVERY_VEND:
            continue
        if charge.period == ChargePeriod.YEARLY and not first_month_of_year:
            continue
        if charge.amount is not None:
            raw.append((charge.name, Decimal(1), "month", charge.amount, charge.amount))
        else:
            assert charge.percent is not None
            amount = energy_charge * charge.percent / HUNDRED
            raw.append((charge.name, charge.percent, "%", energy_charge, amount))

    if tariff.demand_charge_per_kw is not None:
        if max_demand_kw is None or max_demand_kw < 0:
            raise TariffError("the tariff has a demand charge: give max_demand_kw >= 0")
        price = tariff.demand_charge_per_kw
        raw.append(
            ("Maximum demand", max_demand_kw, "kW", price, max_demand_kw * price)
        )

    penalty = tariff.power_factor_penalty
    if penalty is not None:
        if pf is None and kvarh is not None:
            pf = power_factor(month_kwh, kvarh)
        if pf is None:
            raise TariffError("the tariff has a power-factor penalty: give pf or kvarh")
        if not 0 <= pf <= 1:
            raise TariffError(f"power factor must be in [0, 1], got {pf}")
        if pf < penalty.threshold:
            # Every step started below the threshold counts, as on utility schedules.
            steps = ((penalty.threshold - pf) / penalty.step).to_integral_value(
                rounding=ROUND_CEILING
            )
            percent = steps * penalty.percent
            shown = money(pf, Decimal("0.01"))
            raw.append(
                (
                    f"Power factor {shown} below {penalty.threshold}",
                    percent,
                    "%",
                    energy_charge,
                    energy_charge * percent / HUNDRED,
                )
            )

    lines = []
    for description, quantity, unit, price, amount in raw:
        amount = money(amount, q)
        if tariff.prices_include_vat:
            vat = vat_in_gross(amount, tariff.vat_rate, q, tariff.vat_rounding)
            amount -= vat
        else:
            vat = vat_on_net(amount, tariff.vat_rate, q, tariff.vat_rounding)
        lines.append(BillLine(description, quantity, unit, price, amount, vat))
    return MonthlyBill(tuple(lines))
