"""Properties of the vend pipeline (hypothesis)."""

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st
from trytond.modules.prepaid_vending.tariff import (
    Block,
    Charge,
    ChargePeriod,
    Debt,
    Tariff,
    TariffError,
    TariffKind,
    VendRequest,
    cost_of_kwh,
    quote_vend,
)

CENTS = st.integers(min_value=1, max_value=500_000).map(lambda c: D(c) / 100)
PERCENT = st.integers(min_value=0, max_value=60).map(D)


@st.composite
def tariffs(draw) -> Tariff:
    count = draw(st.integers(min_value=1, max_value=10))
    widths = draw(st.lists(st.integers(1, 300), min_size=count - 1, max_size=count - 1))
    prices = draw(
        st.lists(st.integers(50, 900), min_size=count, max_size=count).map(
            lambda ps: [D(p) / 100 for p in sorted(ps)]
        )
    )
    blocks, start = [], D(0)
    for width, price in zip(widths + [None], prices):
        end = None if width is None else start + width
        blocks.append(Block(start, end, price))
        start = end if end is not None else start
    charges = []
    if draw(st.booleans()):
        charges.append(Charge("Basic", ChargePeriod.MONTHLY, amount=draw(CENTS) / 100))
    if draw(st.booleans()):
        charges.append(
            Charge("Levy", ChargePeriod.EVERY_VEND, percent=draw(PERCENT) / 10)
        )
    return Tariff(
        TariffKind.STEP,
        draw(st.sampled_from([D(0), D("0.15"), D("0.075")])),
        draw(st.booleans()),
        blocks=tuple(blocks),
        charges=tuple(charges),
        channel_fee=draw(st.sampled_from([D(0), D("1.50")])),
    )


@settings(max_examples=150, deadline=None)
@given(
    tariff=tariffs(),
    tender=CENTS,
    mtd=st.integers(0, 5000).map(lambda k: D(k) / 10),
    debt=st.none() | st.builds(Debt, CENTS, PERCENT),
    emergency=st.sampled_from([D(0), D("5.00"), D("50.00")]),
    first=st.booleans(),
)
def test_parts_sum_to_tender_and_units_are_paid_for(
    tariff, tender, mtd, debt, emergency, first
):
    request = VendRequest(
        tender,
        month_to_date_kwh=mtd,
        first_vend_of_month=first,
        debt=debt,
        emergency_credit_owed=emergency,
    )
    try:
        quote = quote_vend(tariff, request)
    except TariffError as exc:
        assert "does not cover" in str(exc)
        return
    assert quote.total == tender
    assert sum(u.amount for u in quote.blocks) == (
        quote.energy_amount + quote.energy_vat
        if tariff.prices_include_vat
        else quote.energy_amount
    )
    assert sum(u.kwh for u in quote.blocks) == quote.units_kwh
    paid = (
        quote.energy_amount + quote.energy_vat
        if tariff.prices_include_vat
        else (quote.energy_amount)
    )
    # never more energy than the money buys, and less than 0.1 kWh short of it
    assert cost_of_kwh(tariff.blocks, mtd, quote.units_kwh) <= paid
    assert cost_of_kwh(tariff.blocks, mtd, quote.units_kwh + D("0.1")) > paid


@settings(max_examples=100, deadline=None)
@given(
    tariff=tariffs(),
    tenders=st.lists(CENTS, min_size=1, max_size=6),
)
def test_block_movement_does_not_depend_on_the_split(tariff, tenders):
    tariff = Tariff(
        tariff.kind, tariff.vat_rate, tariff.prices_include_vat, blocks=tariff.blocks
    )
    # One vend of the sum against the same money in several vends: the issued kWh
    # differ only by the 0.1 kWh rounding of each vend (and VAT cents per vend).
    single = quote_vend(tariff, VendRequest(sum(tenders)))
    position = D(0)
    for tender in tenders:
        quote = quote_vend(tariff, VendRequest(tender, month_to_date_kwh=position))
        position = quote.month_to_date_kwh
    vat_slack = len(tenders) * D("0.01") / min(b.price for b in tariff.blocks)
    assert position <= single.units_kwh + vat_slack + D("0.1")
    assert position >= single.units_kwh - len(tenders) * D("0.1") - vat_slack
