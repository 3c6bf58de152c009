"""The vend-limit decision: every refusal with the XMLVend fault the
standard defines for it, the order of the checks, the float's floor to the
cent, hours in the utility's time zone, addresses, and bad input."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import replace
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trytond.modules.prepaid_vendor_portal.limits import (
    Float,
    Hours,
    Kind,
    Level,
    Lifecycle,
    Limits,
    MeterStatus,
    Node,
    VendRequest,
    check,
    vend_range,
)
from trytond.modules.prepaid_vendor_portal.xmlvend import faults

TZ = ZoneInfo("Africa/Johannesburg")  # UTC+2, no daylight saving
NOON = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)  # 12:00 local, a Wednesday
NET = ipaddress.ip_network


def chain(**changes) -> tuple[Node, ...]:
    "owner > vendor > outlet > terminal > operator, changed per level name"
    nodes = [
        Node(Level.OWNER, "BANK"),
        Node(Level.VENDOR, "BANK-RETAIL"),
        Node(Level.OUTLET, "BRANCH-12"),
        Node(Level.TERMINAL, "T-0001"),
        Node(Level.OPERATOR, "alice"),
    ]
    return tuple(replace(n, **changes.get(n.level.name.lower(), {})) for n in nodes)


FLOAT = Float(balance=D("1000.00"))


def request(amount="100.00", kind=Kind.VEND, at=NOON, address="10.1.2.3"):
    return VendRequest(kind, D(amount), at, address)


def refusal(nodes=None, float_=FLOAT, req=None, meter=None):
    return check(nodes or chain(), float_, req or request(), TZ, meter)


def test_an_ordinary_sale_passes():
    assert refusal() is None


# --------------------------------------------------------------- lifecycle
@pytest.mark.parametrize("level", ["owner", "vendor", "outlet", "terminal"])
@pytest.mark.parametrize("state", [Lifecycle.DRAFT, Lifecycle.SUSPENDED,
                                   Lifecycle.TERMINATED])  # fmt: skip
def test_a_blocked_level_blocks_the_client(level, state):
    result = refusal(chain(**{level: {"state": state}}))
    assert result.fault is faults.ClientIDAuthorisationEx
    assert result.reason == f"{level}_{state.value}"
    assert result.level == Level[level.upper()]
    exception = result.exception()
    assert isinstance(exception, faults.ClientIDAuthorisationEx)
    assert exception.wire_type == "ClientIDAuthorisationEx"
    assert state.value.replace("draft", "not active") in exception.desc


def test_operator_problems_are_request_authorisation():
    result = refusal(chain(operator={"state": Lifecycle.SUSPENDED}))
    assert (result.fault, result.reason) == (
        faults.RequestAuthorisationEx, "operator_suspended")  # fmt: skip
    result = refusal(chain(operator={"revoked": True}))
    assert (result.fault, result.reason) == (faults.RequestAuthorisationEx, "revoked")


def test_liability_cut_off():
    cut = NOON + dt.timedelta(seconds=1)
    assert refusal(chain(vendor={"cut_off": cut})) is None
    result = refusal(chain(vendor={"cut_off": NOON}))  # at the cut-off: refused
    assert (result.fault, result.reason) == (
        faults.ClientIDAuthorisationEx, "cut_off")  # fmt: skip
    assert "cut-off 2026-03-04T10:00:00+00:00" in result.message


def test_revoked_terminal_credentials():
    result = refusal(chain(terminal={"revoked": True}))
    assert (result.fault, result.level) == (
        faults.ClientIDAuthorisationEx, Level.TERMINAL)  # fmt: skip


# --------------------------------------------------------- address and hours
def test_allowed_networks_at_every_level():
    outlet = {"limits": Limits(networks=(NET("10.1.0.0/16"),))}
    terminal = {"limits": Limits(networks=(NET("10.1.2.0/24"), NET("2001:db8::/32")))}
    nodes = chain(outlet=outlet, terminal=terminal)
    assert refusal(nodes, req=request(address="10.1.2.200")) is None
    # IPv4 seen through an IPv6 socket is the same address.
    assert refusal(nodes, req=request(address="::ffff:10.1.2.7")) is None
    for address, level in (("10.1.3.1", Level.TERMINAL), ("10.2.0.1", Level.OUTLET),
                           ("2001:db8::1", Level.OUTLET)):  # fmt: skip
        result = refusal(nodes, req=request(address=address))
        assert (result.fault, result.reason, result.level) == (
            faults.ClientIDAuthorisationEx, "address", level)  # fmt: skip
    result = refusal(nodes, req=request(address="not-an-ip"))
    assert result.reason == "address"


def test_hours_in_the_utility_time_zone():
    shop = Limits(hours=(Hours(dt.time(7), dt.time(19), frozenset(range(6))),))
    nodes = chain(outlet={"limits": shop})
    # 16:59 UTC is 18:59 in Johannesburg: open; 17:00 UTC is 19:00: closed.
    assert refusal(nodes, req=request(at=NOON.replace(hour=16, minute=59))) is None
    result = refusal(nodes, req=request(at=NOON.replace(hour=17)))
    assert (result.fault, result.reason) == (faults.RequestAuthorisationEx, "hours")
    assert "07:00-19:00 on Mon,Tue,Wed,Thu,Fri,Sat (Africa/Johannesburg" in (
        result.message)  # fmt: skip
    assert "Wed 19:00" in result.message
    # Sunday 8 March 2026 is closed all day.
    assert refusal(nodes, req=request(at=NOON.replace(day=8))).reason == "hours"


def test_night_window_crosses_midnight():
    night = Limits(hours=(Hours(dt.time(22), dt.time(2), frozenset({4})),))  # Fri
    nodes = chain(terminal={"limits": night})
    friday_2330 = dt.datetime(2026, 3, 6, 21, 30, tzinfo=dt.UTC)
    saturday_0130 = dt.datetime(2026, 3, 6, 23, 30, tzinfo=dt.UTC)
    saturday_2330 = dt.datetime(2026, 3, 7, 21, 30, tzinfo=dt.UTC)
    assert refusal(nodes, req=request(at=friday_2330)) is None
    assert refusal(nodes, req=request(at=saturday_0130)) is None
    assert refusal(nodes, req=request(at=saturday_2330)).reason == "hours"


# ------------------------------------------------------------------- meter
def test_blocked_meter_and_supply_group():
    meter = MeterStatus("01234567897", "600727")
    assert refusal(meter=meter) is None
    blocked = replace(meter, blocked=True, blocked_reason="tamper")
    result = refusal(meter=blocked)
    assert (result.fault, result.message) == (
        faults.BlockedMeterEx, "Meter 01234567897 is blocked: tamper.")  # fmt: skip
    nodes = chain(vendor={"limits": Limits(supply_groups=frozenset({"123456"}))})
    assert refusal(nodes, meter=meter).fault is faults.SGCAuthorisationEx


# ------------------------------------------------------------------- money
def test_min_and_max_amount_of_the_strictest_level():
    nodes = chain(
        vendor={"limits": Limits(min_amount=D(5), max_amount=D(5000))},
        terminal={"limits": Limits(min_amount=D(20), max_amount=D(2000))},
    )
    assert vend_range(nodes) == (D(20), D(2000))
    assert refusal(nodes, req=request("20.00")) is None
    result = refusal(nodes, req=request("19.99"))
    assert (result.fault, result.reason, result.level) == (
        faults.RequestAuthorisationEx, "min_amount", Level.TERMINAL)  # fmt: skip
    assert result.message == "19.99 is below the terminal T-0001's minimum of 20.00."
    assert refusal(nodes, req=request("2000.01")).reason == "max_amount"
    assert vend_range(chain()) == (None, None)


def test_daily_amount_and_count():
    operator = {"limits": Limits(daily_amount=D(500), daily_count=3),
                "sold_today": D("450.00"), "count_today": 2}  # fmt: skip
    nodes = chain(operator=operator)
    assert refusal(nodes, req=request("50.00")) is None  # exactly the limit
    result = refusal(nodes, req=request("50.01"))
    assert (result.reason, result.fault) == (
        "daily_amount",
        faults.RequestAuthorisationEx,
    )
    assert "(50.00 left today)" in result.message
    nodes = chain(operator={**operator, "count_today": 3})
    assert refusal(nodes, req=request("1.00")).reason == "daily_count"


def test_level_credit_limit_is_vendor_credit():
    outlet = {"limits": Limits(credit_limit=D(300)), "outstanding": D("250.00")}
    result = refusal(chain(outlet=outlet), req=request("60.00"))
    assert (result.fault, result.reason, result.level) == (
        faults.VendorCreditEx, "credit_limit", Level.OUTLET)  # fmt: skip
    assert refusal(chain(outlet=outlet), req=request("50.00")) is None


def test_float_floor_to_the_cent():
    # Balance 100.00, 30.00 reserved by sales in flight, credit line 50.00:
    # floor -50.00, available 100 - 30 + 50 = 120.00.
    float_ = Float(D("100.00"), credit_line=D("50.00"), reserved=D("30.00"))
    assert float_.available == D("120.00")
    assert refusal(float_=float_, req=request("120.00")) is None
    result = refusal(float_=float_, req=request("120.01"))
    assert (result.fault, result.reason) == (faults.VendorCreditEx, "float")
    assert result.message == (
        "Insufficient vendor credit: 120.01 asked, 120.00 available.")  # fmt: skip
    # Already below the floor (a reversal of a top-up): nothing available.
    overdrawn = Float(D("-80.00"), credit_line=D("50.00"))
    assert "0.00 available" in refusal(float_=overdrawn).message


def test_free_issue_needs_no_credit_but_a_live_client():
    empty = Float(D(0))
    assert refusal(float_=empty, req=request("0", kind=Kind.FBE)) is None
    assert refusal(float_=empty, req=request("10", kind=Kind.TRIAL)).reason == "float"
    suspended = chain(vendor={"state": Lifecycle.SUSPENDED})
    assert refusal(suspended, req=request("0", kind=Kind.FBE)) is not None


def test_zero_amount_sale_refused():
    assert refusal(req=request("0.00")).reason == "amount"


def test_the_first_refusal_wins():
    # Suspended, wrong address, out of hours and no credit: lifecycle first.
    nodes = chain(
        vendor={"state": Lifecycle.SUSPENDED},
        terminal={"limits": Limits(networks=(NET("192.0.2.0/24"),))},
    )
    assert refusal(nodes, float_=Float(D(0))).reason == "vendor_suspended"
    nodes = chain(terminal={"limits": Limits(networks=(NET("192.0.2.0/24"),))})
    assert refusal(nodes, float_=Float(D(0))).reason == "address"


@pytest.mark.parametrize(
    "nodes, float_, req, error",
    [
        (chain()[1:3], FLOAT, request(), "terminal"),
        (tuple(reversed(chain())), FLOAT, request(), "top down"),
        (chain(), Float(100.0), request(), "Decimal"),
        (chain(), FLOAT, VendRequest(Kind.VEND, D("NaN"), NOON, "10.0.0.1"),
         "finite"),
        (chain(), FLOAT, request(at=dt.datetime(2026, 3, 4, 12)), "time zone"),
        (chain(vendor={"limits": Limits(min_amount=D(10), max_amount=D(5))}),
         FLOAT, request(), "above the maximum"),
        (chain(vendor={"limits": Limits(networks=("10.0.0.0/8",))}), FLOAT,
         request(), "ipaddress"),
        # An aware time of day would raise TypeError only at the check.
        (chain(vendor={"limits": Limits(hours=(
            Hours(dt.time(8, tzinfo=dt.UTC), dt.time(17)),))}), FLOAT, request(),
         "hours start is a local time"),
        # Weekday 7 would never match: a vendor silently closed that day.
        (chain(vendor={"limits": Limits(hours=(
            Hours(dt.time(8), dt.time(17), frozenset({0, 7})),))}), FLOAT,
         request(), "weekdays must be 0"),
        (chain(vendor={"limits": Limits(hours=(
            Hours(dt.time(8), dt.time(17), frozenset()),))}), FLOAT, request(),
         "weekdays must be 0"),
        (chain(vendor={"limits": Limits(hours=(
            Hours("08:00", dt.time(17)),))}), FLOAT, request(), "time of day"),
        (chain(vendor={"limits": Limits(hours=((dt.time(8), dt.time(17)),))}),
         FLOAT, request(), "Hours windows"),
        (chain(operator={"count_today": -1}), FLOAT, request(), "count today"),
        (chain(operator={"count_today": 2.0}), FLOAT, request(), "count today"),
        (chain(operator={"count_today": True}), FLOAT, request(), "count today"),
    ],
)  # fmt: skip
def test_bad_input_is_a_clear_error(nodes, float_, req, error):
    with pytest.raises((TypeError, ValueError), match=error):
        check(nodes, float_, req, TZ)


@settings(max_examples=80, deadline=None)
@given(
    st.decimals(D(0), D(500), places=2),  # opening balance
    st.decimals(D(0), D(300), places=2),  # credit line
    st.lists(st.decimals(D("0.01"), D(400), places=2), max_size=30),
)
def test_property_accepted_sales_never_pass_the_floor(balance, credit_line, amounts):
    # Book every sale the decision accepts: the float never goes below its
    # floor, and a refused sale is one that would have.
    operator = Limits(daily_amount=D(2000), daily_count=20)
    sold, count = D(0), 0
    for amount in amounts:
        float_ = Float(balance, credit_line=credit_line)
        nodes = chain(operator={"limits": operator, "sold_today": sold,
                                "count_today": count})  # fmt: skip
        result = refusal(nodes, float_=float_, req=request(str(amount)))
        if result is None:
            balance -= amount
            sold, count = sold + amount, count + 1
        else:
            assert (
                balance - amount < -credit_line
                or sold + amount > D(2000)
                or count + 1 > 20
            ), result
        assert balance >= -credit_line
        assert sold <= D(2000) and count <= 20
