"""Verify token wizard: staff paste a customer's token and see what it is."""

from __future__ import annotations

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .common import sts_error_message
from .company import require_meter_company, user_companies_domain
from .engine import StsError, decode_token
from .engine.tid import datetime_from_tid
from .engine.tokens import parse_token
from .key_change import PARAMS

#: Units of class 0 subclasses 0-3 (counted in tenths) and of class 2 power
#: limits (subclasses 0 and 6, in watts).
UNITS = {(0, 0): "kWh", (0, 1): "m³", (0, 2): "m³", (0, 3): "min"}
POWER_LIMIT_SUBCLASSES = {0, 6}


def amount_format(
    token_class: int | None,
    subclass: int | None,
    currency: str = "",
    currency_digits: int = 2,
) -> tuple[int, str]:
    """The decimals and unit a token's amount is shown with: a tenth of a
    unit, the currency's digits for a currency token, whole watts for a
    power limit (the token itself carries more decimals than that)."""
    if token_class == 0 and subclass is not None and subclass >= 4:
        return currency_digits, currency
    if token_class == 2 and subclass in POWER_LIMIT_SUBCLASSES:
        return 0, "W"
    return 1, UNITS.get((token_class, subclass), "")


def normalise_digits(text: str) -> str:
    return "".join(c for c in (text or "") if not c.isspace() and c != "-")


def verify_token(digits: str, meter=None) -> dict:
    """Decode a token for a meter (given, or found in the token log).

    Tries the meter's current key, then the keys it had before each key
    change (newest first), so an old token still decodes.  Returns the values
    shown by the wizard.  Only tokens and meters of the user's companies are
    looked at (the wizard runs without access checks).
    """
    pool = Pool()
    Token = pool.get("prepaid.sts.token")
    KeyChange = pool.get("prepaid.sts.key_change")
    digits = normalise_digits(digits)
    try:
        token_class, _ = parse_token(digits)
    except StsError as error:
        raise UserError(sts_error_message(error)) from None
    with without_check_access():
        logged = Token.search(
            [("digits", "=", digits), *user_companies_domain()], limit=1
        )
    if meter is None and logged:
        meter = logged[0].meter
    require_meter_company(meter)
    if token_class == 1:
        decoded = decode_token(digits, None)
    else:
        if meter is None:
            raise UserError(gettext("prepaid_sts.msg_verify_need_meter"))
        meter.sts_require_parameters()
        candidates = [meter.sts_parameters()]
        with without_check_access():
            changes = KeyChange.search(
                [("meter", "=", meter.id), ("state", "!=", "cancelled")],
                order=[("id", "DESC")],
            )
            for change in changes:
                old = dict(candidates[0])
                old.update({f"sts_{n}": getattr(change, f"old_{n}") for n in PARAMS})
                if old not in candidates:
                    candidates.append(old)
        decoded = None
        for parameters in candidates:
            key = meter.sts_decoder_key("verify", origin=meter, parameters=parameters)
            try:
                attempt = decode_token(digits, key, parameters["sts_ea"])
            except StsError as error:
                raise UserError(sts_error_message(error)) from None
            if decoded is None:
                decoded = attempt
                base_date = parameters["sts_base_date"]
            if attempt.crc_ok:
                decoded = attempt
                base_date = parameters["sts_base_date"]
                break
    result = {
        "digits": digits,
        "meter": meter.id if meter else None,
        "token_class": decoded.token_class,
        "subclass": decoded.subclass,
        "tid": decoded.tid,
        "tid_date": None,
        "amount": decoded.amount,
        "crc_ok": decoded.crc_ok,
        "log": logged[0].id if logged else None,
        "issued_at": None,
        "details": ", ".join(f"{k}={v}" for k, v in decoded.fields.items()),
    }
    result["amount_digits"], result["amount_unit"] = amount_format(
        decoded.token_class, decoded.subclass, *_currency()
    )
    if decoded.tid is not None and decoded.crc_ok:
        result["tid_date"] = datetime_from_tid(decoded.tid, base_date).replace(
            tzinfo=None
        )
    if logged:
        with without_check_access():
            result["issued_at"] = logged[0].issued_at
    return result


def _currency() -> tuple[str, int]:
    "Code and digits of the vending currency (currency tokens)"
    Configuration = Pool().get("prepaid.configuration")
    with without_check_access():
        currency = Configuration(1).currency
    if currency is None:
        return "", 2
    return currency.code, currency.digits


class VerifyTokenStart(ModelView):
    "Verify Token"

    __name__ = "prepaid.sts.verify_token.start"

    digits = fields.Char("Token", required=True, help="The 20 digits, spaces allowed.")
    meter = fields.Many2One(
        "prepaid.meter",
        "Meter",
        help="Leave empty to look the token up in the token log.",
    )


class VerifyTokenResult(ModelView):
    "Verify Token"

    __name__ = "prepaid.sts.verify_token.result"

    digits = fields.Char("Token", readonly=True)
    meter = fields.Many2One("prepaid.meter", "Meter", readonly=True)
    token_class = fields.Integer("Class", readonly=True)
    subclass = fields.Integer("Subclass", readonly=True)
    tid = fields.Integer("TID", readonly=True)
    tid_date = fields.DateTime("TID Date (UTC)", readonly=True)
    amount = fields.Numeric(
        "Amount", digits=(16, Eval("amount_digits", 5)), readonly=True
    )
    amount_digits = fields.Integer("Amount Digits", readonly=True)
    amount_unit = fields.Char("Unit", readonly=True)
    crc_ok = fields.Boolean("CRC Valid", readonly=True)
    log = fields.Many2One("prepaid.sts.token", "Issued As", readonly=True)
    issued_at = fields.DateTime("Issued At", readonly=True)
    details = fields.Char("Details", readonly=True)


class VerifyToken(Wizard):
    "Verify Token"

    __name__ = "prepaid.sts.verify_token"

    start = StateView(
        "prepaid.sts.verify_token.start",
        "prepaid_sts.verify_token_start_view_form",
        [
            Button("Cancel", "end", "tryton-cancel"),
            Button("Verify", "verify", "tryton-ok", default=True),
        ],
    )
    verify = StateTransition()
    result = StateView(
        "prepaid.sts.verify_token.result",
        "prepaid_sts.verify_token_result_view_form",
        [
            Button("Verify Another", "start", "tryton-back"),
            Button("Close", "end", "tryton-close", default=True),
        ],
    )

    def default_start(self, fields):
        record = self.record
        if record is not None and record.__name__ == "prepaid.meter":
            return {"meter": record.id}
        return {}

    def transition_verify(self):
        values = verify_token(self.start.digits, self.start.meter)
        for name, value in values.items():
            setattr(self.result, name, value)
        return "result"

    def default_result(self, fields):
        names = [
            "digits",
            "token_class",
            "subclass",
            "tid",
            "tid_date",
            "amount",
            "amount_digits",
            "amount_unit",
            "crc_ok",
            "issued_at",
            "details",
        ]
        values = {n: getattr(self.result, n, None) for n in names}
        for name in ("meter", "log"):
            record = getattr(self.result, name, None)
            values[name] = record.id if record else None
        return values
