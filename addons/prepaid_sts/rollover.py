"""TID rollover campaign: move every base-1993 meter to base date 2014.

The campaign lists the STS meters still on base date 1993 and issues each one
a key change set with the rollover bit, to the campaign's base date and key
revision.  Vending already refuses base-1993 tokens after the configured
cut-over (see Meter.sts_check_cutover); the key change tokens themselves carry
no TID, so they can still be issued after it.

A campaign is one company's: it lists that company's meters and skips any
other (each key change is signed with the keys of the meter's company).
"""

from __future__ import annotations

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Workflow, fields
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import without_check_access

from .common import BASE_DATES

STATES = [
    ("draft", "Draft"),
    ("issued", "Issued"),
]


class Rollover(CompanyMixin, Workflow, ModelSQL, ModelView):
    "STS TID Rollover Campaign"

    __name__ = "prepaid.sts.rollover"

    _draft = {"readonly": Eval("state") != "draft"}

    name = fields.Char("Name", size=128, required=True, states=_draft)
    from_base_date = fields.Selection(
        BASE_DATES, "From Base Date", required=True, states=_draft
    )
    to_base_date = fields.Selection(
        BASE_DATES, "To Base Date", required=True, states=_draft
    )
    new_krn = fields.Integer(
        "New Key Revision",
        required=True,
        states=_draft,
        help="Key revision of the vending key entered for the new base date.",
    )
    ken = fields.Integer("Key Expiry Number", required=True, states=_draft)
    state = fields.Selection(STATES, "State", required=True, readonly=True)
    lines = fields.One2Many(
        "prepaid.sts.rollover.line", "campaign", "Meters", states=_draft
    )
    key_changes = fields.One2Many(
        "prepaid.sts.key_change", "campaign", "Key Changes", readonly=True
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._transitions |= {("draft", "issued")}
        cls._buttons.update(
            {
                "find_meters": {
                    "invisible": Eval("state") != "draft",
                    "depends": ["state"],
                },
                "issue": {
                    "invisible": Eval("state") != "draft",
                    "depends": ["state"],
                },
            }
        )

    @staticmethod
    def default_state():
        return "draft"

    @staticmethod
    def default_from_base_date():
        return "93"

    @staticmethod
    def default_to_base_date():
        return "14"

    @staticmethod
    def default_new_krn():
        return 2

    @staticmethod
    def default_ken():
        return 255

    @classmethod
    def meters_to_roll(cls, company, base_date: str = "93") -> list:
        """STS meters of company still on ``base_date`` (active, not scrapped)."""
        Meter = Pool().get("prepaid.meter")
        return Meter.search(
            [
                ("company", "=", company.id),
                ("kind", "=", "sts_keypad"),
                ("sts_base_date", "=", base_date),
                ("state", "!=", "scrapped"),
            ],
            order=[("serial", "ASC")],
        )

    @classmethod
    @ModelView.button
    def find_meters(cls, campaigns):
        Line = Pool().get("prepaid.sts.rollover.line")
        lines = []
        for campaign in campaigns:
            listed = {line.meter.id for line in campaign.lines}
            for meter in cls.meters_to_roll(campaign.company, campaign.from_base_date):
                if meter.id not in listed:
                    lines.append(Line(campaign=campaign, meter=meter))
        Line.save(lines)

    @classmethod
    @ModelView.button
    @Workflow.transition("issued")
    def issue(cls, campaigns):
        """Issue a key change per listed meter, skipping (with the reason on
        the line) a meter that cannot get one, e.g. without a vending key.

        All the meters are locked at once first: trytond restarts the
        transaction once with every lock taken, instead of once per meter
        (each ``KeyChange.issue`` locks its meter)."""
        pool = Pool()
        KeyChange = pool.get("prepaid.sts.key_change")
        Meter = pool.get("prepaid.meter")
        Line = pool.get("prepaid.sts.rollover.line")
        Meter.lock([line.meter for c in campaigns for line in c.lines])
        lines = []
        for campaign in campaigns:
            new = {"base_date": campaign.to_base_date, "krn": campaign.new_krn}
            for line in campaign.lines:
                meter = line.meter
                lines.append(line)
                if meter.company != campaign.company:
                    # Listed by hand: not the campaign's to change.
                    line.result = "skipped"
                    line.skip_reason = gettext("prepaid_sts.msg_rollover_meter_company")
                    continue
                if meter.sts_base_date != campaign.from_base_date:
                    # Already rolled (by hand or another campaign).
                    line.result, line.skip_reason = "skipped", None
                    continue
                try:
                    KeyChange.check_issue(meter, new)
                except UserError as error:
                    line.result, line.skip_reason = "skipped", error.message
                    continue
                KeyChange.issue(
                    meter,
                    new,
                    reason=campaign.name,
                    ken=campaign.ken,
                    campaign=campaign,
                )
                line.result, line.skip_reason = "issued", None
        Line.save(lines)


class RolloverLine(ModelSQL, ModelView):
    "STS TID Rollover Meter"

    __name__ = "prepaid.sts.rollover.line"

    campaign = fields.Many2One(
        "prepaid.sts.rollover", "Campaign", required=True, ondelete="CASCADE"
    )
    meter = fields.Many2One(
        "prepaid.meter", "Meter", required=True, ondelete="RESTRICT"
    )
    base_date = fields.Function(
        fields.Selection(BASE_DATES, "Current Base Date"), "get_meter_field"
    )
    key_change = fields.Function(
        fields.Many2One("prepaid.sts.key_change", "Key Change"), "get_key_change"
    )
    result = fields.Selection(
        [(None, ""), ("issued", "Issued"), ("skipped", "Skipped")],
        "Result",
        readonly=True,
    )
    skip_reason = fields.Char("Reason Skipped", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add("campaign")

    def get_meter_field(self, name):
        return self.meter.sts_base_date

    def get_key_change(self, name):
        KeyChange = Pool().get("prepaid.sts.key_change")
        with without_check_access():
            changes = KeyChange.search(
                [("campaign", "=", self.campaign.id), ("meter", "=", self.meter.id)],
                limit=1,
            )
        return changes[0].id if changes else None
