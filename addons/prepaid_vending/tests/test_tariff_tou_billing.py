"""TOU calendars and monthly billing for remote-prepaid meters."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal as D

import pytest
from trytond.modules.prepaid_vending.tariff import (
    Block,
    Charge,
    ChargePeriod,
    DayProfile,
    DaySwitch,
    PowerFactorPenalty,
    Season,
    SpecialDay,
    Tariff,
    TariffError,
    TariffKind,
    TouRate,
    TouSchedule,
    WeekProfile,
    bill_month,
    power_factor,
    price_intervals,
)

PEAK, STANDARD, OFF, HIGH_PEAK = 1, 2, 3, 4


def schedule(**changes) -> TouSchedule:
    weekday = DayProfile(
        "weekday",
        (
            DaySwitch(time(0), OFF),
            DaySwitch(time(6), PEAK),
            DaySwitch(time(9), STANDARD),
            DaySwitch(time(17), PEAK),
            DaySwitch(time(20), STANDARD),
            DaySwitch(time(22), OFF),
        ),
    )
    winter_weekday = DayProfile(
        "winter_weekday",
        (
            DaySwitch(time(0), OFF),
            DaySwitch(time(6), HIGH_PEAK),
            DaySwitch(time(22), OFF),
        ),
    )
    weekend = DayProfile("weekend", (DaySwitch(time(0), OFF),))
    parts = dict(
        rates=(
            TouRate(PEAK, "peak", D("3.00")),
            TouRate(STANDARD, "standard", D("2.00")),
            TouRate(OFF, "off-peak", D("1.00")),
            TouRate(HIGH_PEAK, "winter peak", D("5.00")),
        ),
        day_profiles=(weekday, winter_weekday, weekend),
        week_profiles=(
            WeekProfile("summer", ("weekday",) * 5 + ("weekend",) * 2),
            WeekProfile("winter", ("winter_weekday",) * 5 + ("weekend",) * 2),
        ),
        seasons=(Season("winter", 6, 1, "winter"), Season("summer", 9, 1, "summer")),
        special_days=(
            SpecialDay("weekend", month=12, day=25),
            SpecialDay("weekend", date=date(2026, 3, 20)),
        ),
    )
    parts.update(changes)
    return TouSchedule(**parts)


def tou_tariff(**changes) -> Tariff:
    return Tariff(TariffKind.TOU, D("0.15"), False, tou=schedule(), **changes)


def test_rate_at_follows_day_profile_week_and_season():
    s = schedule()
    # 2026-03-17 is a Tuesday in summer (the season started on 1 September 2025)
    assert s.rate_at(datetime(2026, 3, 17, 5, 59)).index == OFF
    assert s.rate_at(datetime(2026, 3, 17, 6, 0)).index == PEAK
    assert s.rate_at(datetime(2026, 3, 17, 12, 0)).index == STANDARD
    assert s.rate_at(datetime(2026, 3, 17, 18, 30)).index == PEAK
    assert s.rate_at(datetime(2026, 3, 17, 23, 0)).index == OFF
    assert s.rate_at(datetime(2026, 3, 21, 12, 0)).index == OFF  # Saturday
    # winter season from 1 June
    assert s.rate_at(datetime(2026, 6, 2, 12, 0)).index == HIGH_PEAK
    assert s.rate_at(datetime(2026, 5, 29, 12, 0)).index == STANDARD
    assert s.season_for(date(2026, 1, 5)).name == "summer"  # wraps over new year


def test_special_days_override_the_week():
    s = schedule()
    assert s.rate_at(datetime(2026, 3, 20, 12, 0)).index == OFF  # Friday holiday
    assert s.rate_at(datetime(2027, 3, 19, 12, 0)).index == STANDARD  # not recurring
    assert s.rate_at(datetime(2030, 12, 25, 7, 0)).index == OFF  # recurring, Wed


def test_price_intervals_uses_interval_start_for_end_stamps():
    s = schedule()
    # stamped 06:00 (end) covers 05:30-06:00: off-peak; stamped 06:30: peak
    priced = price_intervals(
        s,
        [(datetime(2026, 3, 17, 6, 0), D("2")), (datetime(2026, 3, 17, 6, 30), D("2"))],
    )
    assert [(p.rate, p.amount) for p in priced] == [(OFF, D("2.00")), (PEAK, D("6.00"))]
    starts = price_intervals(
        s, [(datetime(2026, 3, 17, 6, 0), D("1"))], timedelta(minutes=15), "start"
    )
    assert starts[0].rate == PEAK
    with pytest.raises(TariffError, match="stamp"):
        price_intervals(s, [], stamp="middle")
    with pytest.raises(TariffError, match="negative consumption"):
        price_intervals(s, [(datetime(2026, 3, 17), D(-1))])


def test_bill_month_tou_from_load_profile():
    # One summer weekday (Tue 2026-03-17) at 1 kWh per half hour:
    # off-peak 00-06 and 22-24 = 16 intervals, peak 06-09 and 17-20 = 12,
    # standard 09-17 and 20-22 = 20.
    start = datetime(2026, 3, 17)
    profile = [(start + timedelta(minutes=30 * (i + 1)), D(1)) for i in range(48)]
    bill = bill_month(
        tou_tariff(charges=(Charge("Service", ChargePeriod.MONTHLY, amount=D("20")),)),
        profile=profile,
    )
    lines = [(b.description, b.quantity, b.amount, b.vat) for b in bill.lines]
    assert lines == [
        ("Energy peak", D(12), D("36.00"), D("5.40")),
        ("Energy standard", D(20), D("40.00"), D("6.00")),
        ("Energy off-peak", D(16), D("16.00"), D("2.40")),
        ("Service", D(1), D("20.00"), D("3.00")),
    ]
    assert (bill.amount, bill.vat, bill.total) == (D("112.00"), D("16.80"), D("128.80"))
    with pytest.raises(TariffError, match="load profile"):
        bill_month(tou_tariff(), kwh=D(100))


def step_tariff(**changes) -> Tariff:
    return Tariff(
        TariffKind.STEP,
        D("0.15"),
        False,
        blocks=(
            Block(D(0), D(50), D("1.20")),
            Block(D(50), D(350), D("1.60")),
            Block(D(350), None, D("2.10")),
        ),
        **changes,
    )


def test_bill_month_step_blocks_md_and_power_factor():
    tariff = step_tariff(
        charges=(
            Charge("Service", ChargePeriod.MONTHLY, amount=D("50.00")),
            Charge("Licence", ChargePeriod.YEARLY, amount=D("100.00")),
            Charge("Vend fee", ChargePeriod.EVERY_VEND, amount=D("1.00")),
            Charge("Levy", ChargePeriod.MONTHLY, percent=D(2)),
        ),
        demand_charge_per_kw=D("40.00"),
        power_factor_penalty=PowerFactorPenalty(D("0.90"), D(1)),
    )
    bill = bill_month(tariff, kwh=D("400.5"), max_demand_kw=D("12.5"), pf=D("0.874"))
    rows = [(b.description, b.quantity, b.amount) for b in bill.lines]
    # blocks: 50 x 1.20 = 60.00; 300 x 1.60 = 480.00; 50.5 x 2.10 = 106.05 -> 646.05
    assert rows == [
        ("Energy block 1", D(50), D("60.00")),
        ("Energy block 2", D(300), D("480.00")),
        ("Energy block 3", D("50.5"), D("106.05")),
        ("Service", D(1), D("50.00")),
        ("Levy", D(2), D("12.92")),  # 2 % of 646.05 = 12.921
        ("Maximum demand", D("12.5"), D("500.00")),
        # 0.90 - 0.874 = 0.026 -> 3 started steps of 0.01 -> 3 % of 646.05 = 19.38
        ("Power factor 0.87 below 0.90", D(3), D("19.38")),
    ]
    assert all(b.vat == (b.amount * D("0.15")).quantize(D("0.01")) for b in bill.lines)
    assert bill.total == bill.amount + bill.vat
    # yearly charge only in the first month of the year; good power factor: no line
    january = bill_month(
        tariff, kwh=D(10), max_demand_kw=D(1), kvarh=D(3), first_month_of_year=True
    )
    names = [b.description for b in january.lines]
    assert "Licence" in names and not any(n.startswith("Power") for n in names)


def test_bill_month_errors():
    tariff = step_tariff(demand_charge_per_kw=D(10))
    with pytest.raises(TariffError, match="max_demand_kw"):
        bill_month(tariff, kwh=D(10))
    with pytest.raises(TariffError, match="not both"):
        bill_month(step_tariff(), kwh=D(1), profile=[])
    with pytest.raises(TariffError, match=">= 0"):
        bill_month(step_tariff(), kwh=D(-1))
    pf_tariff = step_tariff(power_factor_penalty=PowerFactorPenalty(D("0.9"), D(1)))
    with pytest.raises(TariffError, match="pf or kvarh"):
        bill_month(pf_tariff, kwh=D(10))
    with pytest.raises(TariffError, match="undefined"):
        power_factor(D(0), D(0))


def test_power_factor_from_energies():
    assert power_factor(D(3), D(4)) == D("0.6")
    assert power_factor(D(10), D(0)) == 1


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"rates": ()}, "1 to 8 rates"),
        (
            {"rates": tuple(TouRate(i, f"r{i}", D(1)) for i in range(1, 10))},
            "1 to 8 rates",
        ),
        ({"rates": (TouRate(9, "x", D(1)),)}, "not in 1..8"),
        ({"rates": (TouRate(1, "x", D(-1)),)}, "negative price"),
        ({"rates": (TouRate(1, "a", D(1)), TouRate(1, "b", D(1)))}, "duplicate TOU"),
        ({"day_profiles": (DayProfile("d", (DaySwitch(time(1), 1),)),)}, "00:00"),
        (
            {
                "day_profiles": (
                    DayProfile("d", (DaySwitch(time(0), 1), DaySwitch(time(0), 2))),
                )
            },
            "must increase",
        ),
        ({"seasons": ()}, "at least one season"),
        ({"seasons": (Season("s", 2, 30, "summer"),)}, "invalid month/day"),
        ({"seasons": (Season("s", 1, 1, "nope"),)}, "undefined week profile"),
        ({"special_days": (SpecialDay("nope", month=1, day=1),)}, "undefined day"),
        ({"special_days": (SpecialDay("weekend"),)}, "a date or a month"),
        ({"week_profiles": (WeekProfile("w", ("weekday",) * 6),)}, "7 day profiles"),
    ],
)
def test_tou_validation(changes, message):
    with pytest.raises(TariffError, match=message):
        schedule(**changes)
