"""Vendor commission: known answers computed by hand (the arithmetic is in
each test), rule precedence, caps, reversals, the draft and final settlement,
and properties over random months (hypothesis)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trytond.modules.prepaid_vendor_portal.commission import (
    Capped,
    CommissionError,
    Mode,
    Period,
    Plan,
    Reversal,
    Rule,
    Sale,
    State,
    Tier,
    TierBasis,
    TxType,
    Usage,
    commission_of,
    settle,
    tiered,
)

UTC = dt.UTC
MARCH = Period(dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 4, 1, tzinfo=UTC))
AFTER = dt.datetime(2026, 4, 1, 6, tzinfo=UTC)
VEND, FBE, KEY_CHANGE = TxType.VEND, TxType.FBE, TxType.KEY_CHANGE

#: Sliding tiers in the spirit of the Eskom vending-agency principles
#: (a c/kWh base, more per kWh on volume): 0-100 kWh at 0.05, 100-500 at
#: 0.04, above 500 at 0.03 per kWh.
TIERS = (Tier(D(100), D("0.05")), Tier(D(500), D("0.04")), Tier(None, D("0.03")))


def at(day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def sale(ref, day=2, amount="100", kwh="0", tx=VEND, channel="xmlvend",
         category="residential", deducted=None, hour=12):  # fmt: skip
    return Sale(ref, at(day, hour), tx, channel, category, D(amount), D(kwh),
                None if deducted is None else D(deducted))  # fmt: skip


def plan(*rules, **kw) -> Plan:
    return Plan(tuple(rules), **kw)


# --------------------------------------------------------------- known answers
def test_percentage_rounds_half_up_once():
    # 2.5 % of 87.30 = 2.1825, rounded half-up to the cent: 2.18.
    # 2.5 % of 87.70 = 2.1925 -> 2.19; 2.5 % of 0.20 = 0.005 -> 0.01 (half-up).
    p = plan(Rule("pct", frozenset({VEND}), percent=D("2.5")))
    assert commission_of(p, sale("a", amount="87.30")).commission == D("2.18")
    assert commission_of(p, sale("b", amount="87.70")).commission == D("2.19")
    assert commission_of(p, sale("c", amount="0.20")).commission == D("0.01")


def test_kwh_tiers_per_transaction():
    # 620 kWh on TIERS: 100 x 0.05 = 5.00, 400 x 0.04 = 16.00,
    # 120 x 0.03 = 3.60; total 24.60.
    p = plan(Rule("kwh", frozenset({VEND}), tiers=TIERS))
    line = commission_of(p, sale("a", amount="900", kwh="620"))
    assert line.kwh_part == D("24.60")
    assert line.commission == D("24.60")
    # 99.5 kWh stay in the first tier: 99.5 x 0.05 = 4.975 -> 4.98.
    assert commission_of(p, sale("b", kwh="99.5")).commission == D("4.98")


def test_kwh_tiers_over_the_period_slide():
    # Period basis: the month's kWh so far decide the rate of the next kWh.
    # Sale 1: 80 kWh, all in tier 1: 80 x 0.05 = 4.00.
    # Sale 2: 80 kWh from 80 to 160: 20 x 0.05 + 60 x 0.04 = 1.00 + 2.40 = 3.40.
    # Sale 3: 400 kWh from 160 to 560: 340 x 0.04 + 60 x 0.03 = 13.60 + 1.80
    # = 15.40.  Month: 4.00 + 3.40 + 15.40 = 22.80 = the tiers of 560 kWh at
    # once (100 x 0.05 + 400 x 0.04 + 60 x 0.03 = 5 + 16 + 1.80).
    rule = Rule("kwh", frozenset({VEND}), tiers=TIERS, tier_basis=TierBasis.PERIOD)
    result = settle(plan(rule), [
        sale("s1", day=2, kwh="80"), sale("s2", day=3, kwh="80"),
        sale("s3", day=4, kwh="400"),
    ], MARCH, as_of=AFTER)  # fmt: skip
    assert [line.commission for line in result.lines] == [
        D("4.00"), D("3.40"), D("15.40")]  # fmt: skip
    assert result.total == D("22.80") == tiered(TIERS, D(0), D(560))


def test_fixed_fee_per_transaction_type():
    # Eskom's principles: a fixed fee per FBE issue, another per key change
    # token; vends earn a percentage.  FBE 1.50, key change 0.75, vend 1 %.
    p = plan(
        Rule("vend", frozenset({VEND}), percent=D(1)),
        Rule("fbe", frozenset({FBE}), fixed_fee=D("1.50")),
        Rule("kct", frozenset({KEY_CHANGE}), fixed_fee=D("0.75")),
    )
    assert commission_of(p, sale("v", amount="250")).commission == D("2.50")
    assert commission_of(p, sale("f", amount="0", tx=FBE)).commission == D("1.50")
    assert commission_of(p, sale("k", amount="0", tx=KEY_CHANGE)).commission == D(
        "0.75"
    )
    # A type no rule pays earns nothing, and says so.
    line = commission_of(p, sale("d", tx=TxType.PAY_ACCOUNT))
    assert (line.rule, line.commission) == (None, D(0))


def test_parts_add_up_before_the_cap():
    # 3 % of 1,000.00 = 30.00; 300 kWh on TIERS = 100 x 0.05 + 200 x 0.04 =
    # 13.00; fixed 0.50: 43.50 gross, capped at 40.00 per transaction.
    rule = Rule("all", frozenset({VEND}), percent=D(3), tiers=TIERS,
                fixed_fee=D("0.50"), cap_per_transaction=D(40))  # fmt: skip
    line = commission_of(plan(rule), sale("a", amount="1000", kwh="300"))
    assert (line.percent_part, line.kwh_part, line.fixed_part) == (
        D(30), D(13), D("0.50"))  # fmt: skip
    assert line.gross == D("43.50")
    assert (line.commission, line.capped) == (D(40), Capped.TRANSACTION)


def test_nigerian_rural_agent_cap():
    # NERC (2025): rural agents about 3.25 % capped at N2,000 a transaction.
    # N50,000 x 3.25 % = N1,625 (under the cap); N80,000 x 3.25 % = N2,600
    # -> N2,000.
    rule = Rule("rural", frozenset({VEND}), category="rural", percent=D("3.25"),
                cap_per_transaction=D(2000))  # fmt: skip
    p = plan(rule)
    assert commission_of(p, sale("a", amount="50000", category="rural")).commission \
        == D("1625.00")  # fmt: skip
    assert commission_of(p, sale("b", amount="80000", category="rural")).commission \
        == D(2000)  # fmt: skip


def test_period_caps_rule_and_plan():
    # Rule cap 5.00 a month on FBE fees of 2.00: 2.00, 2.00, then 1.00 (room
    # left 5 - 4), then 0.00.  Vends earn 5 % of 100 = 5.00 each, under a
    # plan cap of 12.00 for everything.
    p = plan(
        Rule("fbe", frozenset({FBE}), fixed_fee=D(2), cap_per_period=D(5)),
        Rule("vend", frozenset({VEND}), percent=D(5)),
        cap_per_period=D(12),
    )
    result = settle(p, [
        sale("f1", day=2, amount="0", tx=FBE), sale("f2", day=3, amount="0", tx=FBE),
        sale("f3", day=4, amount="0", tx=FBE), sale("f4", day=5, amount="0", tx=FBE),
        sale("v1", day=6), sale("v2", day=7),
    ], MARCH, as_of=AFTER)  # fmt: skip
    # FBE: 2 + 2 + 1 (rule cap) + 0 = 5; plan used 5, room 7: v1 = 5.00,
    # v2 = min(5.00, 12 - 10) = 2.00 (plan cap).  Total 12.00 = the plan cap.
    assert [line.commission for line in result.lines] == [
        D(2), D(2), D(1), D(0), D("5.00"), D(2)]  # fmt: skip
    assert [line.capped for line in result.lines] == [
        None,
        None,
        Capped.RULE_PERIOD,
        Capped.RULE_PERIOD,
        None,
        Capped.PLAN_PERIOD,
    ]
    assert result.total == D(12)


def test_precedence_most_specific_then_sequence():
    base = Rule("base", frozenset({VEND}), percent=D(1))
    ussd = Rule("ussd", frozenset({VEND}), channel="ussd", percent=D("0.5"))
    rural = Rule("rural", frozenset({VEND}), category="rural", percent=D(3),
                 sequence=5)  # fmt: skip
    both = Rule("ussd-rural", frozenset({VEND}), channel="ussd", category="rural",
                percent=D(2))  # fmt: skip
    p = plan(base, ussd, rural, both)

    def rule(channel, category):
        return p.rule_for(VEND, channel, category, at(2)).name

    assert rule("counter", "residential") == "base"
    assert rule("ussd", "residential") == "ussd"
    # Channel-only and category-only are equally specific: sequence 5 < 10.
    assert rule("counter", "rural") == "rural"
    assert rule("ussd", "rural") == "ussd-rural"
    # The rules' order in the plan does not matter.
    reordered = plan(both, rural, ussd, base)
    assert reordered.rule_for(VEND, "ussd", "rural", at(2)).name == "ussd-rural"


def test_validity_dates_index_rates():
    # A yearly CPI adjustment: 1 % until 15 March, 1.06 % from then on.
    mid = at(15, 0)
    p = plan(
        Rule("2025", frozenset({VEND}), percent=D(1), valid_until=mid),
        Rule("2026", frozenset({VEND}), percent=D("1.06"), valid_from=mid),
    )
    assert commission_of(p, sale("a", day=14, amount="1000")).commission == D(10)
    assert commission_of(p, sale("b", day=15, amount="1000")).commission == D("10.60")


@pytest.mark.parametrize(
    "rules, message",
    [
        ([Rule("a", frozenset({VEND}), percent=D(10)),
          Rule("b", frozenset({VEND}), percent=D(2))], "same precedence"),
        ([Rule("a", frozenset({VEND}), channel="ussd"),
          Rule("b", frozenset({VEND}), category="rural")], "same precedence"),
        ([Rule("a", frozenset({VEND}), percent=D(1000))], "more than 100"),
        ([Rule("a", frozenset({VEND}), percent=D(-1))], "negative"),
        ([Rule("a", frozenset({VEND}), percent=0.1)], "Decimal"),
        ([Rule("a", frozenset({VEND}), percent=D("NaN"))], "finite"),
        ([Rule("a", frozenset())], "transaction types"),
        ([Rule("a", frozenset({VEND}), tiers=(Tier(D(10), D(1)),))], "last tier"),
        ([Rule("a", frozenset({VEND}),
               tiers=(Tier(D(10), D(1)), Tier(D(5), D(1)), Tier(None, D(1))))],
         "increase"),
        ([Rule("a", frozenset({VEND}), cap_per_transaction=D("0.005"))], "digits"),
        ([Rule("a", frozenset({VEND})), Rule("a", frozenset({FBE}))], "named"),
        ([Rule("a", frozenset({VEND}), valid_from=dt.datetime(2026, 1, 1))],
         "time zone"),
    ],
)  # fmt: skip
def test_bad_plans_are_refused(rules, message):
    with pytest.raises(CommissionError, match=message):
        plan(*rules)


def test_disjoint_validity_is_no_tie():
    plan(
        Rule("a", frozenset({VEND}), valid_until=at(10)),
        Rule("b", frozenset({VEND}), valid_from=at(10)),
    )


# ------------------------------------------------------------------ reversals
def test_reversal_takes_back_exactly_and_frees_the_cap():
    # Cap 6.00 a month at 5 % of 100: s1 5.00, s2 1.00 (cap); s1 reversed:
    # -5.00, room 5.00 again; s3 5.00.  Total 1.00 + 5.00 = 6.00.
    p = plan(Rule("v", frozenset({VEND}), percent=D(5), cap_per_period=D(6)))
    result = settle(p, [
        sale("s1", day=2), sale("s2", day=3),
        Reversal("r1", at(4), "s1"), sale("s3", day=5),
    ], MARCH, as_of=AFTER)  # fmt: skip
    assert [line.commission for line in result.lines] == [
        D(5), D(1), D(-5), D(5)]  # fmt: skip
    assert result.lines[2].reverses == "s1"
    assert result.total == D(6)
    assert {s.key: s.count for s in result.by_rule} == {"v": 2}


def test_reversal_of_a_settled_month():
    # February's sale earned 2.50; reversed on 3 March: -2.50 in March, and
    # March's own cap is untouched (it used none of it).
    p = plan(Rule("v", frozenset({VEND}), percent=D("2.5"), cap_per_period=D(5)))
    feb = Sale("feb", dt.datetime(2026, 2, 27, tzinfo=UTC), VEND, "xmlvend",
               "residential", D(100))  # fmt: skip
    feb_line = commission_of(p, feb)
    result = settle(p, [
        Reversal("r", at(3), "feb", original_line=feb_line),
        sale("s1", day=4, amount="200"), sale("s2", day=5, amount="200"),
    ], MARCH, as_of=AFTER)  # fmt: skip
    assert [line.commission for line in result.lines] == [
        D("-2.50"), D(5), D(0)]  # fmt: skip
    with pytest.raises(CommissionError, match="not in the period"):
        settle(p, [Reversal("r", at(3), "feb")], MARCH, as_of=AFTER)


@pytest.mark.parametrize(
    "events, message",
    [
        ([sale("a"), sale("a", day=3)], "twice"),
        ([sale("a", day=3), Reversal("r", at(2), "a")], "before"),
        ([sale("a"), Reversal("r1", at(3), "a"), Reversal("r2", at(4), "a")],
         "reversed twice"),
        ([Sale("x", dt.datetime(2026, 4, 1, tzinfo=UTC), VEND, "c", "r", D(1))],
         "outside the period"),
        ([Sale("x", dt.datetime(2026, 3, 1), VEND, "c", "r", D(1))], "time zone"),
        ([sale("a", amount="-5")], "negative"),
        ([sale("a", deducted="1.00")], "settles monthly"),
    ],
)  # fmt: skip
def test_bad_events_settle_nothing(events, message):
    p = plan(Rule("v", frozenset({VEND}), percent=D(1)))
    with pytest.raises(CommissionError, match=message):
        settle(p, events, MARCH, as_of=AFTER)


# ----------------------------------------------------------------- settlement
def test_draft_preview_then_final():
    p = plan(Rule("v", frozenset({VEND}), percent=D(1)))
    events = [sale("a", amount="300"), sale("b", day=20, amount="200")]
    draft = settle(p, events, MARCH, as_of=at(21))
    assert (draft.state, draft.total, draft.payable) == (State.DRAFT, D(5), D(5))
    with pytest.raises(CommissionError, match="only a draft"):
        settle(p, events, MARCH, as_of=at(21), final=True)
    final = settle(p, events, MARCH, as_of=AFTER, final=True)
    assert final.state == State.FINAL
    assert final.lines == draft.lines


def test_deducted_at_sale_trues_up():
    # At sale, two tills priced their sales with the same usage (0.00 used of
    # a 6.00 cap): each kept 5.00.  The month's settlement computes 5.00 +
    # 1.00 = 6.00, so the vendor kept 4.00 too much: payable -4.00.
    p = plan(
        Rule("v", frozenset({VEND}), percent=D(5), cap_per_period=D(6)),
        mode=Mode.AT_SALE,
    )
    first = commission_of(p, sale("a"), Usage())
    second = commission_of(p, sale("b", day=3), Usage())
    assert first.commission == second.commission == D(5)
    result = settle(p, [sale("a", deducted="5"), sale("b", day=3, deducted="5")],
                    MARCH, as_of=AFTER)  # fmt: skip
    assert (result.total, result.deducted, result.payable) == (D(6), D(10), D(-4))


# ------------------------------------------------------------------ properties
PROPERTY_PLAN = plan(
    Rule(
        "vend",
        frozenset({VEND}),
        percent=D("2.5"),
        tiers=TIERS,
        tier_basis=TierBasis.PERIOD,
        cap_per_transaction=D(25),
        cap_per_period=D(400),
    ),  # fmt: skip
    Rule(
        "ussd",
        frozenset({VEND}),
        channel="ussd",
        percent=D("0.75"),
        fixed_fee=D("0.10"),
    ),  # fmt: skip
    Rule("fees", frozenset({FBE, KEY_CHANGE}), fixed_fee=D("1.25")),
    cap_per_period=D(500),
)

sales_strategy = st.lists(
    st.tuples(
        st.integers(0, 30 * 24 * 60 - 1),  # minute of the month
        st.sampled_from([VEND, VEND, VEND, FBE, KEY_CHANGE, TxType.PAY_ACCOUNT]),
        st.sampled_from(["xmlvend", "ussd", "counter"]),
        st.decimals(D("0.01"), D("20000"), places=2),
        st.decimals(D(0), D("3000"), places=1),
        st.booleans(),  # reversed later?
    ),
    max_size=40,
)


def month(draws) -> tuple[list, list[str]]:
    events, reversed_refs = [], []
    start = MARCH.start
    for n, (minute, tx, channel, amount, kwh, reverse) in enumerate(draws):
        when = start + dt.timedelta(minutes=minute)
        ref = f"s{n}"
        events.append(Sale(ref, when, tx, channel, "residential", amount, kwh))
        if reverse:
            later = min(when + dt.timedelta(hours=1), MARCH.end - dt.timedelta(1))
            events.append(Reversal(f"r{n}", later, ref))
            reversed_refs.append(ref)
    return events, reversed_refs


@settings(max_examples=60, deadline=None)
@given(sales_strategy)
def test_property_parts_caps_and_reversals(draws):
    events, _ = month(draws)
    result = settle(PROPERTY_PLAN, events, MARCH, as_of=AFTER)
    # Sum of parts = total, whichever way the parts are cut.
    assert sum(line.commission for line in result.lines) == result.total
    assert sum(s.commission for s in result.by_rule) == result.total
    assert sum(s.commission for s in result.by_type) == result.total
    # Every line is on the cent; no sale earns a negative commission.
    for line in result.lines:
        assert line.commission == line.commission.quantize(D("0.01"))
        assert line.is_reversal or line.commission >= 0
        if line.rule == "vend" and not line.is_reversal:
            assert line.commission <= D(25)
    # Caps hold at every point of the month, not only at its end.
    running_total, running_vend = D(0), D(0)
    for line in result.lines:
        running_total += line.commission
        running_vend += line.commission if line.rule == "vend" else 0
        assert D(0) <= running_total <= D(500)
        assert running_vend <= D(400)


@settings(max_examples=40, deadline=None)
@given(sales_strategy)
def test_property_reversing_everything_leaves_zero(draws):
    events, _ = month([(*d[:5], True) for d in draws])
    result = settle(PROPERTY_PLAN, events, MARCH, as_of=AFTER)
    assert result.total == 0
    assert all(s.commission == 0 and s.count == 0 for s in result.by_rule)


@settings(max_examples=40, deadline=None)
@given(sales_strategy)
def test_property_at_sale_equals_monthly(draws):
    # Deducting at each sale with the usage so far gives exactly what the
    # monthly settlement computes: nothing to true up.
    events, _ = month([(*d[:5], False) for d in draws])
    events.sort(key=lambda e: (e.at, e.reference))
    p = Plan(PROPERTY_PLAN.rules, mode=Mode.AT_SALE, cap_per_period=D(500))
    usage, deducted = Usage(), []
    for event in events:
        line = commission_of(p, event, usage)
        usage = usage.after(line)
        deducted.append(Sale(**{**event.__dict__, "deducted": line.commission}))
    result = settle(p, deducted, MARCH, as_of=AFTER)
    assert result.payable == 0
    assert result.deducted == result.total
