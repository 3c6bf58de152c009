"""Key change ("Update Meter Key"): move a meter to new key parameters.

Issuing a key change moves the meter's STS parameters to the new values at
once (later tokens are minted under the new key, as "Update Meter Key" always
moves the meter to the database values), and keeps the 2, 3 or 4 key change
tokens pending: the vend hook prints them in front of the next credit token
until someone confirms that the customer entered them.
"""

from __future__ import annotations

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Workflow, fields
from trytond.modules.prepaid_vending import fastpath
from trytond.modules.prepaid_vending.access import require_wizard_groups
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.modules.prepaid_vending.workflow_only import WorkflowOnlyMixin
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .common import BASE_DATES, KEY_TYPES, sts_error_message
from .company import (
    fill_company_from,
    require_meter_company,
)
from .engine import StsError, key_change_tokens
from .key import get_origin_selection
from .meter import KEY_CHANGE_CONTEXT

STATES = [
    ("pending", "Pending"),
    ("confirmed", "Confirmed"),
    ("cancelled", "Cancelled"),
]
PARAMS = ["sgc", "krn", "tariff_index", "key_type", "base_date"]


class KeyChange(CompanyMixin, WorkflowOnlyMixin, Workflow, ModelSQL, ModelView):
    """STS Key Change

    A client changes nothing on a key change: it is created by the Update
    Meter Key wizard or a rollover campaign, moves only through Confirm and
    Cancel (which apply or restore the values stored at issue), and is never
    deleted (WorkflowOnlyMixin)."""

    __name__ = "prepaid.sts.key_change"

    meter = fields.Many2One(
        "prepaid.meter", "Meter", required=True, readonly=True, ondelete="RESTRICT"
    )
    state = fields.Selection(STATES, "State", required=True, readonly=True)
    old_sgc = fields.Char("Old SGC", readonly=True)
    old_krn = fields.Integer("Old KRN", readonly=True)
    old_tariff_index = fields.Char("Old Tariff Index", readonly=True)
    old_key_type = fields.Selection(KEY_TYPES, "Old Key Type", readonly=True)
    old_base_date = fields.Selection(BASE_DATES, "Old Base Date", readonly=True)
    old_last_tid = fields.Integer("Old Last TID", readonly=True)
    new_sgc = fields.Char("New SGC", readonly=True)
    new_krn = fields.Integer("New KRN", readonly=True)
    new_tariff_index = fields.Char("New Tariff Index", readonly=True)
    new_key_type = fields.Selection(KEY_TYPES, "New Key Type", readonly=True)
    new_base_date = fields.Selection(BASE_DATES, "New Base Date", readonly=True)
    rollover = fields.Boolean("TID Rollover", readonly=True)
    ken = fields.Integer("Key Expiry Number", readonly=True)
    reason = fields.Char("Reason", readonly=True)
    tokens = fields.One2Many(
        "prepaid.sts.token",
        "key_change",
        "Tokens",
        readonly=True,
        order=[("sequence", "ASC")],
    )
    delivered_with = fields.Reference(
        "Delivered With", selection="get_origins", readonly=True
    )
    campaign = fields.Many2One(
        "prepaid.sts.rollover", "Rollover Campaign", readonly=True, ondelete="RESTRICT"
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # No __access__ on the meter: Tryton would grant the wider of both
        # accesses, so every group that may write meters (the Vending
        # Operator too) could write these.  Their own access records decide.
        cls._order.insert(0, ("id", "DESC"))
        cls._transitions |= {
            ("pending", "confirmed"),
            ("pending", "cancelled"),
        }
        cls._buttons.update(
            {
                "confirm": {
                    "invisible": Eval("state") != "pending",
                    "depends": ["state"],
                },
                "cancel": {
                    "invisible": Eval("state") != "pending",
                    "depends": ["state"],
                },
            }
        )

    @classmethod
    def _migrate_company(cls, module):
        # Before the one-company default of CompanyMixin: the meter's company,
        # also where the installation already had several.
        fill_company_from(cls, "meter", "prepaid.meter")
        super()._migrate_company(module)

    @staticmethod
    def default_state():
        return "pending"

    @classmethod
    def get_origins(cls):
        return get_origin_selection()

    def get_rec_name(self, name):
        return (
            f"{self.meter.rec_name}: KRN {self.old_krn}->{self.new_krn} "
            f"BD {self.old_base_date}->{self.new_base_date}"
        )

    @classmethod
    def issue(
        cls,
        meter,
        new: dict,
        reason: str | None = None,
        ken: int = 255,
        campaign=None,
    ):
        """Create a pending key change for ``meter`` and its tokens (saved)."""
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Token = pool.get("prepaid.sts.token")
        old, target = cls.check_issue(meter, new)
        rollover = target["sts_base_date"] != old["sts_base_date"]
        # Serialise with token issues for this meter (they read the parameters).
        Meter.lock([meter])
        key_change = cls(
            meter=meter,
            company=meter.company,
            state="pending",
            rollover=rollover,
            ken=ken,
            reason=reason,
            campaign=campaign,
            old_last_tid=meter.sts_last_tid,
            **{f"old_{n}": old[f"sts_{n}"] for n in PARAMS},
            **{f"new_{n}": target[f"sts_{n}"] for n in PARAMS},
        )
        with without_check_access():
            key_change.save()
        old_key = meter.sts_decoder_key("key_change_old", key_change, old)
        new_key = meter.sts_decoder_key("key_change_new", key_change, target)
        if len(new_key) == 16:
            sections = 4
        elif target["sts_sgc"] != old["sts_sgc"]:
            sections = 3  # the 3rd token carries the new SGC to the meter
        else:
            sections = 2
        try:
            digits = key_change_tokens(
                old_key,
                old["sts_ea"],
                new_key,
                target["sts_krn"],
                int(target["sts_key_type"]),
                target["sts_tariff_index"],
                target["sts_sgc"],
                ken=ken,
                rollover=rollover,
                sections=sections,
            )
        except StsError as error:
            raise UserError(sts_error_message(error)) from None
        subclasses = [3, 4, 8, 9]
        tokens = [
            Token(
                meter=meter,
                company=meter.company,
                kind="key_change",
                token_class=2,
                subclass=subclasses[i],
                sgc=old["sts_sgc"],
                krn=old["sts_krn"],
                tariff_index=old["sts_tariff_index"],
                base_date=old["sts_base_date"],
                digits=token,
                description=f"Key change {i + 1}/{len(digits)}",
                reason=reason,
                origin=key_change,
                key_change=key_change,
                sequence=i + 1,
            )
            for i, token in enumerate(digits)
        ]
        values = {f"sts_{n}": target[f"sts_{n}"] for n in PARAMS}
        if rollover:
            # The meter clears its TID memory when the base date changes.
            values["sts_last_tid"] = None
        with (
            without_check_access(),
            Transaction().set_context({KEY_CHANGE_CONTEXT: True}),
        ):
            Token.save(tokens)
            Meter.write([meter], values)
        return key_change

    @classmethod
    def check_issue(cls, meter, new: dict) -> tuple[dict, dict]:
        """The (old, target) parameters of a key change of meter to ``new``, or
        a UserError saying why it cannot be issued; nothing is written, so a
        campaign can skip the meter and go on."""
        meter.sts_require_parameters()
        with without_check_access():
            pending = cls.search(
                [("meter", "=", meter.id), ("state", "=", "pending")], limit=1
            )
        if pending:
            raise UserError(
                gettext("prepaid_sts.msg_key_change_pending", meter=meter.rec_name)
            )
        old = meter.sts_parameters()
        target = dict(old)
        for name in PARAMS:
            if new.get(name) not in (None, ""):
                target[f"sts_{name}"] = new[name]
        if target == old:
            raise UserError(
                gettext("prepaid_sts.msg_key_change_same", meter=meter.rec_name)
            )
        for parameters in (old, target):
            key = meter.sts_vending_key(parameters)
            if not key.key_entered:
                raise UserError(
                    gettext("prepaid_sts.msg_vending_key_empty", key=key.name)
                )
        return old, target

    @classmethod
    def pending_for(cls, meter) -> list:
        "Oldest first; asked by every vend (ids by one query, no ORM search)"
        table = cls.__table__()
        return cls.browse(
            fastpath.ids(
                table.select(
                    table.id,
                    where=(table.meter == meter.id) & (table.state == "pending"),
                    order_by=[table.id.asc],
                )
            )
        )

    @classmethod
    @ModelView.button
    @Workflow.transition("confirmed")
    def confirm(cls, key_changes):
        pass

    @classmethod
    @ModelView.button
    @Workflow.transition("cancelled")
    def cancel(cls, key_changes):
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Token = pool.get("prepaid.sts.token")
        for key_change in key_changes:
            meter = key_change.meter
            with without_check_access():
                last_id = max((t.id for t in key_change.tokens), default=0)
                later = Token.search(
                    [
                        ("meter", "=", meter.id),
                        ("key_change", "=", None),
                        ("id", ">", last_id),
                    ],
                    limit=1,
                )
            if later or key_change.delivered_with:
                raise UserError(
                    gettext(
                        "prepaid_sts.msg_key_change_cancel_used",
                        meter=meter.rec_name,
                    )
                )
            Meter.lock([meter])
            values = {f"sts_{n}": getattr(key_change, f"old_{n}") for n in PARAMS}
            values["sts_last_tid"] = key_change.old_last_tid
            with (
                without_check_access(),
                Transaction().set_context({KEY_CHANGE_CONTEXT: True}),
            ):
                Meter.write([meter], values)


class KeyChangeStart(ModelView):
    "Update Meter Key"

    __name__ = "prepaid.sts.key_change.start"

    meter = fields.Many2One("prepaid.meter", "Meter", required=True, readonly=True)
    new_sgc = fields.Char("New SGC", required=True, size=6)
    new_krn = fields.Integer("New KRN", required=True)
    new_tariff_index = fields.Char("New Tariff Index", required=True, size=2)
    new_key_type = fields.Selection(KEY_TYPES, "New Key Type", required=True)
    new_base_date = fields.Selection(BASE_DATES, "New Base Date", required=True)
    ken = fields.Integer("Key Expiry Number", required=True)
    reason = fields.Char("Reason", required=True)


class KeyChangeResult(ModelView):
    "Key Change Tokens"

    __name__ = "prepaid.sts.key_change.result"

    key_change = fields.Many2One("prepaid.sts.key_change", "Key Change", readonly=True)
    tokens = fields.Text("Tokens (enter in this order)", readonly=True)


class KeyChangeWizard(Wizard):
    "Update Meter Key"

    __name__ = "prepaid.sts.key_change.wizard"

    start = StateView(
        "prepaid.sts.key_change.start",
        "prepaid_sts.key_change_start_view_form",
        [
            Button("Cancel", "end", "tryton-cancel"),
            Button("Issue Key Change", "issue", "tryton-ok", default=True),
        ],
    )
    issue = StateTransition()
    result = StateView(
        "prepaid.sts.key_change.result",
        "prepaid_sts.key_change_result_view_form",
        [Button("Close", "end", "tryton-close", default=True)],
    )

    def default_start(self, fields):
        meter = self.record
        if meter is None:
            return {"ken": 255}
        return {
            "meter": meter.id,
            "new_sgc": meter.sts_sgc,
            "new_krn": meter.sts_krn,
            "new_tariff_index": meter.sts_tariff_index,
            "new_key_type": meter.sts_key_type,
            "new_base_date": meter.sts_base_date,
            "ken": 255,
        }

    def transition_issue(self):
        # Second line: the context cannot widen the groups checked here.
        require_wizard_groups(self.__name__)
        require_meter_company(self.start.meter)
        KeyChange = Pool().get("prepaid.sts.key_change")
        key_change = KeyChange.issue(
            self.start.meter,
            {n: getattr(self.start, f"new_{n}") for n in PARAMS},
            reason=self.start.reason,
            ken=self.start.ken,
        )
        self.result.key_change = key_change
        return "result"

    def default_result(self, fields):
        key_change = self.result.key_change
        with without_check_access():
            tokens = [t.digits for t in key_change.tokens]
        return {
            "key_change": key_change.id,
            "tokens": "\n".join(format_token(t) for t in tokens),
        }


def format_token(digits: str) -> str:
    """Groups of four digits, as printed on receipts."""
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
