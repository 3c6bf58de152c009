"""Tariff validation and the JSON form (tariff_from_dict / tariff_to_dict)."""

import json
from decimal import Decimal as D

import pytest
from trytond.modules.prepaid_vending.tariff import (
    Block,
    Charge,
    ChargePeriod,
    Tariff,
    TariffError,
    TariffKind,
    tariff_from_dict,
    tariff_to_dict,
)


def step(*blocks: Block, **changes) -> Tariff:
    return Tariff(TariffKind.STEP, D("0.15"), False, blocks=blocks, **changes)


@pytest.mark.parametrize(
    "blocks, message",
    [
        ((), "at least one block"),
        ((Block(D(0), D(50), D(1)), Block(D(60), None, D(2))), "gap: block 2"),
        ((Block(D(0), D(50), D(1)), Block(D(40), None, D(2))), "overlap: block 2"),
        ((Block(D(5), None, D(1)),), "gap: block 1"),
        ((Block(D(0), D(50), D(1)), Block(D(50), D(50), D(2))), "bounds must increase"),
        ((Block(D(0), D(50), D(1)), Block(D(50), D(100), D(2))), "open-ended"),
        ((Block(D(0), None, D(1)), Block(D(0), None, D(2))), "not the last block"),
        ((Block(D(0), None, D(-1)),), "price must be positive"),
        ((Block(D(0), None, D(0)),), "price must be positive"),
        (
            tuple(Block(D(i), D(i + 1), D(1)) for i in range(10))
            + (Block(D(10), None, D(1)),),
            "at most 10 blocks",
        ),
    ],
)
def test_block_errors(blocks, message):
    with pytest.raises(TariffError, match=message):
        step(*blocks)


def test_ten_blocks_are_accepted():
    blocks = tuple(Block(D(i), D(i + 1), D(1)) for i in range(9))
    assert len(step(*blocks, Block(D(9), None, D(2))).blocks) == 10


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"vat_rate": D("-0.1")}, "vat_rate"),
        ({"vat_rate": D("15")}, "vat_rate"),
        ({"charges": (Charge("x", ChargePeriod.MONTHLY),)}, "amount or a percent"),
        (
            {"charges": (Charge("x", ChargePeriod.MONTHLY, D(1), D(1)),)},
            "amount or a percent",
        ),
        ({"charges": (Charge("x", ChargePeriod.MONTHLY, D(-1)),)}, "non-negative"),
        ({"charges": (Charge("x", ChargePeriod.MONTHLY, None, D(100)),)}, "below 100"),
        (
            {"charges": (Charge("x", ChargePeriod.MONTHLY, D(1)),) * 2},
            "duplicate charge",
        ),
        ({"channel_fee": D(-1)}, "channel_fee"),
        ({"fbe_kwh_per_month": D(-50)}, "fbe_kwh_per_month"),
        ({"currency_digits": 7}, "currency_digits"),
        ({"kind": TariffKind.FLAT, "blocks": ()}, "at least one block"),
    ],
)
def test_tariff_errors(changes, message):
    base = {"blocks": (Block(D(0), D(50), D(1)), Block(D(50), None, D(2)))}
    with pytest.raises(TariffError, match=message):
        Tariff(**{"kind": TariffKind.STEP, "vat_rate": D("0.15"),
                  "prices_include_vat": False, **base, **changes})  # fmt: skip


def test_flat_tariff_has_one_price():
    with pytest.raises(TariffError, match="exactly one price"):
        Tariff(
            TariffKind.FLAT,
            D(0),
            False,
            blocks=(Block(D(0), D(5), D(1)), Block(D(5), None, D(2))),
        )


TARIFF_JSON = {
    "vat_rate": "0.15",
    "prices_include_vat": False,
    "blocks": [
        {"to_kwh": "50", "price": "1.20"},
        {"to_kwh": "350", "price": "1.60"},
        {"to_kwh": None, "price": "2.10"},
    ],
    "charges": [
        {"name": "Service charge", "amount": "50.00", "period": "monthly"},
        {"name": "Levy", "percent": "2", "period": "every_vend"},
    ],
    "channel_fee": "0.00",
}


def test_from_dict_infers_kind_and_continuous_bounds():
    tariff = tariff_from_dict(TARIFF_JSON)
    assert tariff.kind == TariffKind.STEP
    assert [(b.from_kwh, b.to_kwh) for b in tariff.blocks] == [
        (0, D(50)),
        (D(50), D(350)),
        (D(350), None),
    ]
    assert (
        tariff_from_dict({"vat_rate": 0, "prices_include_vat": True, "price": "2"}).kind
        == "flat"
    )


def test_round_trip_through_json():
    from .test_tariff_tou_billing import tou_tariff

    for tariff in (tariff_from_dict(TARIFF_JSON), tou_tariff()):
        text = json.dumps(tariff_to_dict(tariff))
        assert tariff_from_dict(json.loads(text)) == tariff


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"vat_rate": 0.15}, "decimal string"),
        ({"vat_rate": "abc"}, "digits 0-9"),
        ({"vat_rate": "Infinity"}, "digits 0-9"),
        ({"prices_include_vat": "no"}, "true or false"),
        ({"colour": "red"}, "unknown field"),
        ({"kind": "stepped"}, "kind must be one of"),
        ({"price": "1", "blocks": []}, "not both"),
        ({"charges": [{"name": "x", "amount": "1", "period": "weekly"}]}, "period"),
        (
            {
                "blocks": [
                    {"to_kwh": "50", "price": "1"},
                    {"from_kwh": "51", "to_kwh": None, "price": "2"},
                ]
            },
            "gap",
        ),
        ({"blocks": "none"}, "must be a list"),
        ({"tou": {"rates": []}}, "missing field"),
    ],
)
def test_from_dict_errors(changes, message):
    with pytest.raises(TariffError, match=message):
        tariff_from_dict({**TARIFF_JSON, **changes})


def test_from_dict_missing_required():
    with pytest.raises(TariffError, match="missing field.*vat_rate"):
        tariff_from_dict({"prices_include_vat": False, "price": "1"})
    with pytest.raises(TariffError, match="must be an object"):
        tariff_from_dict([1, 2])
