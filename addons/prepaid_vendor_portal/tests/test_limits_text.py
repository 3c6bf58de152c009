"""Limits typed on a form: networks and selling hours, and bad text refused
with the line that is wrong."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from trytond.modules.prepaid_vendor_portal.limits import Hours
from trytond.modules.prepaid_vendor_portal.limits_text import (
    parse_hours,
    parse_networks,
)


def test_networks():
    assert parse_networks("10.0.0.0/8\n\n# office\n2001:db8::/32\n192.0.2.7") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("192.0.2.7/32"),
    )
    assert parse_networks(None) == ()


@pytest.mark.parametrize("text", ["10.0.0.1/8", "10.0.0.0/33", "bank"])
def test_bad_network(text):
    with pytest.raises(ValueError, match="line 1"):
        parse_networks(text)


def test_hours():
    weekdays, saturday, night, wrap = parse_hours(
        "Mon-Fri 08:00-17:00\nSat 08:00-13:00\n22:00-02:00\nFri-Mon 07:00-24:00"
    )
    assert weekdays == Hours(dt.time(8), dt.time(17), frozenset(range(5)))
    assert saturday.weekdays == frozenset({5})
    assert night.weekdays == frozenset(range(7))
    assert night.allows(dt.datetime(2026, 3, 3, 1, 30))  # crosses midnight
    assert wrap.weekdays == frozenset({4, 5, 6, 0})
    assert wrap.allows(dt.datetime(2026, 3, 2, 23, 59))  # Monday, until midnight


@pytest.mark.parametrize(
    "text",
    ["Mon-Fri 8-17", "Funday 08:00-17:00", "08:00-25:00", "08:00-08:00"],
)
def test_bad_hours(text):
    with pytest.raises(ValueError, match="line 1"):
        parse_hours(text)
