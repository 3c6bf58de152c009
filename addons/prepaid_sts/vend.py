"""The vend hook: STS tokens for keypad meters (the contract with prepaid_vending).

``prepaid.vend`` calls :meth:`Vend.issue_credit_tokens` after saving the vend;
this returns UNSAVED ``prepaid.vend.token`` records in the order the customer
enters them: pending key change tokens, the class 0 credit token, then the
free basic electricity token.  The STS token log gets the same tokens with the
vend as origin, in the vend's transaction.

Before that, every quote and vend asks :meth:`Meter.vend_delivery_problems`:
a keypad meter that could not receive a token (STS parameters missing, no
vending key for them, base date 1993 past its cut-over) is refused before
any money is taken, with what to fix.  The Sell Electricity wizard asks
:meth:`Meter.vend_pending_key_changes` what the next vend will print before
the credit token (vending knows no key change: it never looks one up).
"""

from __future__ import annotations

from decimal import Decimal

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.pool import Pool, PoolMeta
from trytond.transaction import without_check_access

from .meter import STS_FIELDS, TokenRequest, utc_now


class Meter(metaclass=PoolMeta):
    __name__ = "prepaid.meter"

    def vend_delivery_problems(self) -> list[str]:
        problems = super().vend_delivery_problems()
        if self.kind == "sts_keypad":
            problems += self.sts_receive_problems()
        return problems

    def sts_receive_problems(self) -> list[str]:
        """Why this meter cannot receive an STS credit token now, each with
        its fix; empty when it can.  Reads the meter and the key store only."""
        missing = [f for f in STS_FIELDS if getattr(self, f) in (None, "")]
        if missing:
            names = ", ".join(self.__class__._fields[f].string for f in missing)
            return [
                gettext(
                    "prepaid_sts.msg_meter_sts_incomplete",
                    meter=self.serial,
                    fields=names,
                )
            ]
        try:
            self.sts_check_cutover(utc_now())
            with without_check_access():
                self.sts_vending_key()
        except UserError as error:
            return [error.message]
        return []

    def vend_pending_key_changes(self) -> str:
        "The key changes that the next vend prints before the credit token"
        KeyChange = Pool().get("prepaid.sts.key_change")
        lines = [super().vend_pending_key_changes()]
        with without_check_access():
            lines += [
                gettext(
                    "prepaid_sts.msg_key_change_pending_vend",
                    key_change=k.rec_name,
                    tokens=len(k.tokens),
                )
                for k in KeyChange.pending_for(self)
            ]
        return "\n".join(filter(None, lines))


class Vend(metaclass=PoolMeta):
    __name__ = "prepaid.vend"

    def issue_credit_tokens(self, units_kwh: Decimal, fbe_kwh: Decimal | None) -> list:
        meter = self.meter
        if meter.kind != "sts_keypad":
            return super().issue_credit_tokens(units_kwh, fbe_kwh)
        pool = Pool()
        VendToken = pool.get("prepaid.vend.token")
        KeyChange = pool.get("prepaid.sts.key_change")
        now = utc_now()
        # Refuse before anything is marked delivered.
        meter.sts_require_parameters()
        meter.sts_check_cutover(now)
        result = []
        pending = KeyChange.pending_for(meter)
        with without_check_access():
            for key_change in pending:
                for token in key_change.tokens:
                    result.append(
                        VendToken(
                            kind="key_change",
                            token=token.digits,
                            units=None,
                            description=token.description,
                            sequence=len(result) + 1,
                        )
                    )
            if pending:
                KeyChange.write(pending, {"delivered_with": str(self)})
        requests = []
        if units_kwh and units_kwh > 0:
            requests.append(
                TokenRequest(
                    "credit", 0, 0, amount=units_kwh, description=f"{units_kwh} kWh"
                )
            )
        if fbe_kwh and fbe_kwh > 0:
            requests.append(
                TokenRequest(
                    "fbe", 0, 0, amount=fbe_kwh, description=f"FBE {fbe_kwh} kWh"
                )
            )
        logged = meter.sts_issue_tokens(
            requests, reason=getattr(self, "number", None), origin=self, now=now
        )
        for token in logged:
            result.append(
                VendToken(
                    kind=token.kind,
                    token=token.digits,
                    units=token.value,
                    description=token.description,
                    sequence=len(result) + 1,
                )
            )
        return result
