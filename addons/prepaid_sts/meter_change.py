"""STS side of a meter change and of a tariff change.

Change meter: the new keypad meter is brought onto the vending key in force
for the customer (the old meter's SGC, KRN, key type and base date, and the
tariff index of the tariff) by a key change when its factory parameters
differ, then the units read on the old meter's display are issued on the new
meter as a class 0 credit token with the reason "meter credit transfer"
(XMLVend transaction type 003): logged like every token, never charged.

Change tariff: a new tariff whose STS tariff index differs from the meter's
starts a key change to that index (the decoder key depends on it).
"""

from __future__ import annotations

from decimal import Decimal

from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_vending.meter_change import TRANSFER_REASON
from trytond.pool import Pool, PoolMeta
from trytond.transaction import without_check_access

from .meter import TokenRequest

#: The parameters that make the vending key of a meter.
KEY_PARAMS = ["sgc", "krn", "key_type", "base_date", "tariff_index"]


def _key_change_tokens(key_change) -> list[tuple[str, str]]:
    with without_check_access():
        return [(t.description, t.digits) for t in key_change.tokens]


class MeterChange(metaclass=PoolMeta):
    __name__ = "prepaid.meter.change"

    def sts_target_parameters(self) -> dict:
        """The key parameters the new meter must end up with."""
        Tariff = Pool().get("prepaid.tariff")
        old, new = self.old_meter, self.new_meter
        target = {n: getattr(new, f"sts_{n}") for n in KEY_PARAMS}
        if old.kind == "sts_keypad" and old.sts_sgc:
            for name in ("sgc", "krn", "key_type", "base_date", "tariff_index"):
                target[name] = getattr(old, f"sts_{name}")
        try:
            tariff = Tariff.for_meter(new, self.date)
        except ValidationError:
            tariff = None
        if tariff and tariff.sts_tariff_index:
            target["tariff_index"] = tariff.sts_tariff_index
        return target

    def key_change_tokens(self) -> list[tuple[str, str]]:
        tokens = super().key_change_tokens()
        new = self.new_meter
        if new.kind != "sts_keypad":
            return tokens
        KeyChange = Pool().get("prepaid.sts.key_change")
        new.sts_require_parameters()
        target = self.sts_target_parameters()
        current = {n: getattr(new, f"sts_{n}") for n in KEY_PARAMS}
        if target == current:
            return tokens
        key_change = KeyChange.issue(
            new,
            {n: v for n, v in target.items() if v != current[n]},
            reason=self.reason,
        )
        return tokens + _key_change_tokens(key_change)

    def transfer_credit(self, kwh: Decimal) -> list[tuple[str, str]]:
        meter = self.new_meter
        if meter.kind != "sts_keypad":
            return super().transfer_credit(kwh)
        description = f"Credit transfer {kwh} kWh"
        (token,) = meter.sts_issue_tokens(
            [TokenRequest("credit", 0, 0, amount=kwh, description=description)],
            reason=TRANSFER_REASON,
            origin=meter,
        )
        with without_check_access():
            return [(description, token.digits)]


class Meter(metaclass=PoolMeta):
    __name__ = "prepaid.meter"

    def tariff_key_change(self, tariff, reason: str) -> list[tuple[str, str]]:
        tokens = super().tariff_key_change(tariff, reason)
        index = tariff.sts_tariff_index
        if self.kind != "sts_keypad" or not index or index == self.sts_tariff_index:
            return tokens
        KeyChange = Pool().get("prepaid.sts.key_change")
        key_change = KeyChange.issue(self, {"tariff_index": index}, reason=reason)
        return tokens + _key_change_tokens(key_change)
