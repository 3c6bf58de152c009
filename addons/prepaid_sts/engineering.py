"""Engineering tokens wizard: class 1 test tokens and class 2 management tokens."""

from __future__ import annotations

from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_vending.access import require_wizard_groups
from trytond.pyson import Eval
from trytond.transaction import without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .company import require_meter_company
from .key_change import format_token
from .meter import TokenRequest

OPERATIONS = [
    ("test", "Test / display (class 1)"),
    ("power_limit", "Set maximum power limit"),
    ("clear_credit", "Clear credit"),
    ("tariff_rate", "Set tariff rate"),
    ("clear_tamper", "Clear tamper condition"),
    ("phase_unbalance", "Set maximum phase power unbalance limit"),
]
#: Class 2 subclass of each management operation (IEC 62055-41).
SUBCLASSES = {
    "power_limit": 0,
    "clear_credit": 1,
    "tariff_rate": 2,
    "clear_tamper": 5,
    "phase_unbalance": 6,
}
REGISTERS = [
    ("0", "Electricity"),
    ("65535", "All registers"),
]


class EngineeringTokenStart(ModelView):
    "Engineering Token"

    __name__ = "prepaid.sts.engineering_token.start"

    meter = fields.Many2One(
        "prepaid.meter",
        "Meter",
        required=True,
        domain=[("kind", "=", "sts_keypad")],
    )
    operation = fields.Selection(OPERATIONS, "Operation", required=True)
    watts = fields.Integer(
        "Limit (W)",
        states={
            "invisible": ~Eval("operation").in_(["power_limit", "phase_unbalance"]),
            "required": Eval("operation").in_(["power_limit", "phase_unbalance"]),
        },
    )
    register = fields.Selection(
        REGISTERS,
        "Register",
        states={
            "invisible": Eval("operation") != "clear_credit",
            "required": Eval("operation") == "clear_credit",
        },
    )
    rate = fields.Integer(
        "Tariff Rate (raw 16 bits)",
        states={
            "invisible": Eval("operation") != "tariff_rate",
            "required": Eval("operation") == "tariff_rate",
        },
    )
    control = fields.Integer(
        "Test Control Bits",
        states={"invisible": Eval("operation") != "test"},
        help="36-bit test selection; 1 runs all tests.",
    )
    mfr_code = fields.Integer(
        "Manufacturer Code",
        states={"invisible": Eval("operation") != "test"},
        help="2-digit manufacturer code of the meter (0-99).",
    )
    reason = fields.Char("Reason", required=True)

    @staticmethod
    def default_operation():
        return "test"

    @staticmethod
    def default_control():
        return 1

    @staticmethod
    def default_mfr_code():
        return 0

    @staticmethod
    def default_register():
        return "0"


class EngineeringTokenResult(ModelView):
    "Engineering Token"

    __name__ = "prepaid.sts.engineering_token.result"

    token = fields.Many2One("prepaid.sts.token", "Log Entry", readonly=True)
    digits = fields.Char("Token", readonly=True)
    description = fields.Char("Description", readonly=True)


class EngineeringToken(Wizard):
    "Engineering Token"

    __name__ = "prepaid.sts.engineering_token"

    start = StateView(
        "prepaid.sts.engineering_token.start",
        "prepaid_sts.engineering_token_start_view_form",
        [
            Button("Cancel", "end", "tryton-cancel"),
            Button("Issue", "issue", "tryton-ok", default=True),
        ],
    )
    issue = StateTransition()
    result = StateView(
        "prepaid.sts.engineering_token.result",
        "prepaid_sts.engineering_token_result_view_form",
        [Button("Close", "end", "tryton-close", default=True)],
    )

    def default_start(self, fields):
        meter = self.record
        if meter is not None and meter.__name__ == "prepaid.meter":
            return {"meter": meter.id}
        return {}

    def transition_issue(self):
        # Second line: the context cannot widen the groups checked here.
        require_wizard_groups(self.__name__)
        require_meter_company(self.start.meter)
        self.result.token = issue_engineering_token(
            self.start.meter,
            self.start.operation,
            reason=self.start.reason,
            watts=self.start.watts,
            register=self.start.register,
            rate=self.start.rate,
            control=self.start.control,
            mfr_code=self.start.mfr_code,
        )
        return "result"

    def default_result(self, fields):
        token = self.result.token
        with without_check_access():
            return {
                "token": token.id,
                "digits": format_token(token.digits),
                "description": token.description,
            }


def issue_engineering_token(
    meter,
    operation: str,
    reason: str,
    watts: int | None = None,
    register: str | None = None,
    rate: int | None = None,
    control: int | None = None,
    mfr_code: int | None = None,
    now=None,
):
    """Issue and log one engineering token; return the token log record."""
    labels = dict(OPERATIONS)
    if operation == "test":
        return meter.sts_issue_class1(0, control or 1, mfr_code or 0, reason=reason)
    if operation not in SUBCLASSES:
        raise ValidationError(
            gettext("prepaid_sts.msg_engineering_operation", operation=operation)
        )
    subclass = SUBCLASSES[operation]
    amount = value16 = None
    if operation in {"power_limit", "phase_unbalance"}:
        if watts is None or watts < 0:
            raise ValidationError(gettext("prepaid_sts.msg_engineering_watts"))
        amount = Decimal(watts)
        description = f"{labels[operation]}: {watts} W"
    elif operation == "clear_credit":
        value16 = int(register or "0")
        description = f"{labels[operation]}: {dict(REGISTERS)[str(value16)]}"
    elif operation == "tariff_rate":
        if rate is None or not 0 <= rate <= 0xFFFF:
            raise ValidationError(gettext("prepaid_sts.msg_engineering_rate"))
        value16 = rate
        description = f"{labels[operation]}: {rate}"
    else:
        value16 = 0
        description = labels[operation]
    request = TokenRequest(
        kind="engineering",
        token_class=2,
        subclass=subclass,
        amount=amount,
        value16=value16,
        description=description,
    )
    (token,) = meter.sts_issue_tokens([request], reason=reason, origin=meter, now=now)
    return token
