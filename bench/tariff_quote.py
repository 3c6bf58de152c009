"""Throughput of the pure-Python tariff calculator (prints medians, no asserts).

Run: .venv/bin/python bench/tariff_quote.py
"""

from __future__ import annotations

from decimal import Decimal as D

from timing import per_call_us
from trytond.modules.prepaid_vending.tariff import (
    Block,
    Charge,
    ChargePeriod,
    Debt,
    Tariff,
    TariffKind,
    VendRequest,
    quote_vend,
    tender_for_kwh,
)

TARIFF = Tariff(
    TariffKind.STEP,
    D("0.15"),
    False,
    blocks=(
        Block(D(0), D(50), D("1.20")),
        Block(D(50), D(350), D("1.60")),
        Block(D(350), D(600), D("1.87")),
        Block(D(600), None, D("2.19")),
    ),
    charges=(
        Charge("Service", ChargePeriod.MONTHLY, amount=D("50.00")),
        Charge("Levy", ChargePeriod.EVERY_VEND, percent=D(2)),
    ),
)
REQUEST = VendRequest(
    D("300.00"), D("40"), True, debt=Debt(D("40.00"), D(25)), emergency_credit_owed=D(5)
)


def main() -> None:
    quote = per_call_us(lambda: quote_vend(TARIFF, REQUEST), 2000, rounds=5)
    inverse = per_call_us(
        lambda: tender_for_kwh(TARIFF, D("250"), REQUEST), 100, rounds=5
    )
    print(f"quote_vend      median {quote:8.1f} us/call  ({1e6 / quote:8.0f}/s)")
    print(f"tender_for_kwh  median {inverse:8.1f} us/call  ({1e6 / inverse:8.0f}/s)")
    print(f"inverse/quote ratio {inverse / quote:.1f}")


if __name__ == "__main__":
    main()
