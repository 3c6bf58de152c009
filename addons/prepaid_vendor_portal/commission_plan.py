"""A vendor's commission plan in Tryton: its mode and rules, turned into
the pure core's :class:`~.commission.Plan` (docs/vendors.md section 4).

Kept minimal: a rule pays one transaction type, optionally on one channel,
with a percentage, a fixed fee and caps; kWh tiers, customer categories and
validity dates of the core are not typed in here yet."""

from __future__ import annotations

from decimal import Decimal

from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.pool import Pool

from . import commission as core

ZERO = Decimal(0)


class Plan(CompanyMixin, ModelSQL, ModelView):
    "Commission Plan of a Vendor"

    __name__ = 'prepaid.vendor.commission.plan'
    _company_links = ('vendor',)

    vendor = fields.Many2One(
        'prepaid.vendor', "Vendor", required=True, ondelete='CASCADE'
    )
    mode = fields.Selection(
        [(core.Mode.MONTHLY.value, "Monthly"), (core.Mode.AT_SALE.value, "At Sale")],
        "Mode",
        required=True,
        help="Monthly: settled after the month. At sale: deducted from each "
        "sale, booked with it.",
    )
    cap_per_period = fields.Numeric(
        "Cap per Month", digits=(16, 2), help="All rules together; empty: none."
    )
    rules = fields.One2Many('prepaid.vendor.commission.rule', 'plan', "Rules")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'vendor_unique',
                Unique(t, t.vendor),
                'prepaid_vendor_portal.msg_commission_plan_unique',
            ),
        ]

    @staticmethod
    def default_mode():
        return core.Mode.MONTHLY.value

    def get_rec_name(self, name):
        return self.vendor.rec_name if self.vendor else str(self.id)

    def core(self) -> core.Plan:
        "The pure plan (CommissionError: a rule the core refuses)"
        return core.Plan(
            rules=tuple(rule.core() for rule in self.rules),
            mode=core.Mode(self.mode),
            cap_per_period=self.cap_per_period,
            digits=self.company.currency.digits,
        )

    @classmethod
    def validate(cls, plans):
        super().validate(plans)
        cls.check_core(plans)

    @classmethod
    def check_core(cls, plans) -> None:
        "Refuse what the core refuses (a tie, a percent above 100...)"
        for plan in plans:
            try:
                plan.core()
            except core.CommissionError as error:
                # The core's message says which rule and why.
                raise ValidationError(str(error)) from None


class Rule(ModelSQL, ModelView):
    "Commission Rule"

    __name__ = 'prepaid.vendor.commission.rule'
    __access__ = {'plan'}

    plan = fields.Many2One(
        'prepaid.vendor.commission.plan', "Plan", required=True, ondelete='CASCADE'
    )
    name = fields.Char("Name", required=True, size=64)
    sequence = fields.Integer("Sequence", required=True)
    tx_type = fields.Selection(
        [
            (core.TxType.VEND.value, "Vend"),
            (core.TxType.FBE.value, "Free Basic Electricity"),
            (core.TxType.KEY_CHANGE.value, "Key Change"),
            (core.TxType.PAY_ACCOUNT.value, "Account Payment"),
        ],
        "Transaction",
        required=True,
    )
    channel = fields.Char("Channel", size=32, help="e.g. api; empty: any channel.")
    percent = fields.Numeric(
        "Percent", digits=(16, 4), required=True, help="2.5 is 2.5 %."
    )
    fixed_fee = fields.Numeric("Fixed Fee", digits=(16, 2), required=True)
    cap_per_transaction = fields.Numeric("Cap per Transaction", digits=(16, 2))
    cap_per_period = fields.Numeric("Cap per Month", digits=(16, 2))

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('sequence', 'ASC'))

    @staticmethod
    def default_sequence():
        return 10

    @staticmethod
    def default_tx_type():
        return core.TxType.VEND.value

    @staticmethod
    def default_percent():
        return ZERO

    @staticmethod
    def default_fixed_fee():
        return ZERO

    @classmethod
    def validate(cls, rules):
        super().validate(rules)
        Pool().get('prepaid.vendor.commission.plan').check_core({r.plan for r in rules})

    def core(self) -> core.Rule:
        return core.Rule(
            name=self.name,
            types=frozenset({core.TxType(self.tx_type)}),
            channel=self.channel or None,
            percent=self.percent,
            fixed_fee=self.fixed_fee,
            cap_per_transaction=self.cap_per_transaction,
            cap_per_period=self.cap_per_period,
            sequence=self.sequence,
        )
