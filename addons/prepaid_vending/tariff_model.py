"""Tariffs as Tryton records, converted to the pure-Python calculator.

A tariff is a name, an STS tariff index and customer categories; its prices live
in dated versions.  A version takes effect on its start date; a vend stores the
version it used, and a version used by a vend can no longer be changed, so a
reprint or an audit always shows the prices that were applied.  The arithmetic
is in ``tariff/`` (see ``TariffVersion.to_calculator``); nothing here computes.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sql.conditionals import Coalesce
from trytond.cache import Cache
from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin,
    ModelSQL,
    ModelView,
    Unique,
    fields,
    sequence_ordered,
)
from trytond.model.exceptions import AccessError, ValidationError
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction

from . import fastpath
from .company import CompanyCodeMixin, CompanyMixin
from .tariff import Tariff, TariffError, tariff_from_dict

KINDS = [
    ('flat', "Flat"),
    ('step', "Step (inclining blocks)"),
    ('tou', "Time of Use"),
]
CHARGE_PERIODS = [
    ('monthly', "Monthly (first vend of the month)"),
    ('yearly', "Yearly (first vend of the year)"),
    ('every_vend', "Every Vend"),
]
CHANNELS = [
    ('counter', "Counter"),
    ('api', "API / Vendor"),
    ('mobile', "Mobile Money"),
    ('bank', "Bank"),
    ('ussd', "USSD"),
    ('web', "Web Portal"),
]
VAT_ROUNDINGS = [
    ('half_up', "Half Up"),
    ('up', "Up"),
    ('down', "Down"),
]


@dataclass(frozen=True)
class VersionPricing:
    "What a vend needs of a tariff version (``TariffVersion.pricing``)"

    calculator: Tariff
    tax: int | None  # account.tax of the VAT
    revenue_account: int | None  # the tariff's energy revenue, else the default
    charge_accounts: dict[str, int | None]  # charge name -> revenue account


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class PrepaidTariff(CompanyCodeMixin, DeactivableMixin, ModelSQL, ModelView):
    "Tariff"

    __name__ = 'prepaid.tariff'
    _code_unique_error = 'prepaid_vending.msg_tariff_code_unique'
    _company_replaces = ('code_unique',)

    name = fields.Char("Name", size=128, required=True, translate=True)
    code = fields.Char("Code", size=32, required=True)
    sts_tariff_index = fields.Char(
        "STS Tariff Index",
        size=2,
        help="The two-digit tariff index (TI) programmed in the meters "
        "that buy on this tariff.",
    )
    customer_categories = fields.Many2Many(
        'prepaid.tariff-prepaid.customer.category',
        'tariff',
        'category',
        "Customer Categories",
        help="Customers of these categories buy on this tariff unless their "
        "meter has its own tariff assignment.",
    )
    versions = fields.One2Many('prepaid.tariff.version', 'tariff', "Versions")
    revenue_account = fields.Many2One(
        'account.account',
        "Revenue Account",
        domain=[('type.revenue', '=', True), ('closed', '!=', True)],
        help="Energy revenue of this tariff; "
        "the vending accounting configuration gives the default.",
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()

    @classmethod
    def on_modification(cls, mode, tariffs, field_names=None):
        super().on_modification(mode, tariffs, field_names=field_names)
        # The revenue account is part of each version's pricing.
        Pool().get('prepaid.tariff.version')._calculator_cache.clear()

    def version_at(self, date: dt.date) -> 'TariffVersion':
        "The version in force on date"
        Version = Pool().get('prepaid.tariff.version')
        version = Version.__table__()
        version_id = fastpath.scalar(
            version.select(
                version.id,
                where=(version.tariff == self.id) & (version.start_date <= date),
                order_by=[version.start_date.desc],
                limit=1,
            )
        )
        if version_id is None:
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_tariff_no_version',
                    tariff=self.rec_name,
                    date=date,
                )
            )
        return Version(version_id)

    @classmethod
    def for_meter(cls, meter, date: dt.date) -> 'PrepaidTariff':
        """The tariff of meter on date: its dated assignment, else the (first
        active) tariff of its customer's category.  Every vend asks: two
        one-column queries rather than ORM searches."""
        pool = Pool()
        assignment = pool.get('prepaid.meter.tariff').__table__()
        tariff_id = fastpath.scalar(
            assignment.select(
                assignment.tariff,
                where=(assignment.meter == meter.id) & (assignment.start_date <= date),
                order_by=[assignment.start_date.desc, assignment.id.desc],
                limit=1,
            )
        )
        if tariff_id is None and meter.customer:
            party = pool.get('party.party').__table__()
            category = pool.get('prepaid.tariff-prepaid.customer.category').__table__()
            tariff = cls.__table__()
            tariff_id = fastpath.scalar(
                party.join(
                    category, condition=category.category == party.customer_category
                )
                .join(tariff, condition=tariff.id == category.tariff)
                .select(
                    tariff.id,
                    # The customer (a party) is shared by the utilities: the
                    # meter's utility's tariff of the category.
                    where=(party.id == meter.customer.id)
                    & (tariff.company == meter.company.id)
                    & (tariff.active == True),  # noqa: E712
                    order_by=[tariff.id.asc],
                    limit=1,
                )
            )
        if tariff_id is None:
            raise ValidationError(
                gettext('prepaid_vending.msg_meter_no_tariff', meter=meter.serial)
            )
        return cls(tariff_id)


class TariffCategory(ModelSQL):
    "Tariff - Customer Category"

    __name__ = 'prepaid.tariff-prepaid.customer.category'

    tariff = fields.Many2One(
        'prepaid.tariff', "Tariff", required=True, ondelete='CASCADE'
    )
    category = fields.Many2One(
        'prepaid.customer.category', "Category", required=True, ondelete='CASCADE'
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # Who may change a tariff may change its categories.  This gives
        # nobody more than the link's own records did; the one it keeps
        # lets a manager remove a category (not delete a tariff).
        cls.__access__.add('tariff')


class TariffVersion(ModelSQL, ModelView):
    "Tariff Version"

    __name__ = 'prepaid.tariff.version'
    _calculator_cache = Cache('prepaid.tariff.version.calculator', context=False)

    tariff = fields.Many2One(
        'prepaid.tariff', "Tariff", required=True, ondelete='CASCADE'
    )
    start_date = fields.Date("Effective From", required=True)
    kind = fields.Selection(KINDS, "Kind", required=True)
    prices_include_vat = fields.Boolean(
        "Prices Include VAT",
        help="Published prices and charge amounts already contain VAT.",
    )
    tax = fields.Many2One(
        'account.tax',
        "VAT",
        ondelete='RESTRICT',
        domain=[('type', '=', 'percentage')],
        help="The VAT of every vend on this version; its rate is used by the "
        "calculator and its accounts by the accounting move.",
    )
    vat_rounding = fields.Selection(VAT_ROUNDINGS, "VAT Rounding", required=True)
    blocks = fields.One2Many(
        'prepaid.tariff.block',
        'version',
        "Blocks",
        states={'invisible': Eval('kind') == 'tou'},
    )
    charges = fields.One2Many('prepaid.tariff.charge', 'version', "Charges")
    channel_fee = fields.Numeric("Default Channel Fee", digits=(16, 2), required=True)
    channel_fees = fields.One2Many(
        'prepaid.tariff.channel_fee', 'version', "Channel Fees"
    )
    fbe_kwh_per_month = fields.Numeric(
        "Free Basic Electricity (kWh/month)", digits=(16, 1), required=True
    )
    demand_charge_per_kw = fields.Numeric(
        "Maximum Demand Charge (per kW)", digits=(16, 4)
    )
    pf_threshold = fields.Numeric("Power Factor Threshold", digits=(4, 2))
    pf_percent = fields.Numeric("Power Factor Penalty (% per step)", digits=(6, 2))
    pf_step = fields.Numeric("Power Factor Step", digits=(4, 2))
    tou_calendar = fields.Many2One(
        'prepaid.tou.calendar',
        "TOU Calendar",
        ondelete='RESTRICT',
        states={'invisible': Eval('kind') != 'tou', 'required': Eval('kind') == 'tou'},
        help="The rates, day and week profiles, seasons and holidays that "
        "price this version's energy by time of use.",
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'tariff_date_unique',
                Unique(t, t.tariff, t.start_date),
                'prepaid_vending.msg_tariff_version_date_unique',
            ),
        ]
        cls._order.insert(0, ('start_date', 'DESC'))
        cls.__access__.add('tariff')

    @staticmethod
    def default_kind():
        return 'step'

    @staticmethod
    def default_prices_include_vat():
        return True

    @staticmethod
    def default_vat_rounding():
        return 'half_up'

    @staticmethod
    def default_channel_fee():
        return Decimal(0)

    @staticmethod
    def default_fbe_kwh_per_month():
        return Decimal(0)

    def get_rec_name(self, name):
        return f'{self.tariff.rec_name} ({self.start_date})'

    @property
    def vat_rate(self) -> Decimal:
        return self.tax.rate if self.tax else Decimal(0)

    def to_dict(self) -> dict:
        "The calculator's JSON form of this version"
        data = {
            'name': self.tariff.name if self.tariff else '',
            'kind': self.kind,
            'vat_rate': str(self.vat_rate),
            'prices_include_vat': bool(self.prices_include_vat),
            'vat_rounding': self.vat_rounding,
            'charges': [c.to_dict() for c in self.charges],
            'channel_fee': str(self.channel_fee or 0),
            'channel_fees': {f.channel: str(f.amount) for f in self.channel_fees},
            'fbe_kwh_per_month': str(self.fbe_kwh_per_month or 0),
        }
        if self.kind != 'tou':
            data['blocks'] = [b.to_dict() for b in self.blocks]
        elif self.tou_calendar:
            data['tou'] = self.tou_calendar.to_dict()
        if self.demand_charge_per_kw is not None:
            data['demand_charge_per_kw'] = str(self.demand_charge_per_kw)
        if self.pf_threshold is not None and self.pf_percent is not None:
            data['power_factor_penalty'] = {
                'threshold': str(self.pf_threshold),
                'percent': str(self.pf_percent),
                'step': str(self.pf_step or Decimal('0.01')),
            }
        return data

    def to_calculator(self) -> Tariff:
        "The validated calculator tariff; a clear error names what is wrong"
        return self.pricing().calculator

    def pricing(self) -> 'VersionPricing':
        """The calculator and the accounts a vend on this version books to.

        Built once per version and process: it is immutable and a vend needs
        it every time (the reads of the version, its lines, tax and tariff and
        a validation saved per vend).  Any change of a tariff, a version or
        its lines clears the cache in every process (trytond's Cache is
        synchronised through ir_cache); the key carries the write dates of the
        version, its tax and its tariff for changes made elsewhere."""
        key = None
        if self.id is not None and self.id >= 0:
            key = self._calculator_key()
            if (cached := self._calculator_cache.get(key)) is not None:
                return cached
        try:
            calculator = tariff_from_dict(self.to_dict())
        except TariffError as exc:
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_tariff_invalid',
                    version=self.rec_name,
                    error=str(exc),
                )
            ) from exc
        revenue = self.tariff.revenue_account if self.tariff else None
        pricing = VersionPricing(
            calculator=calculator,
            tax=self.tax.id if self.tax else None,
            revenue_account=revenue.id if revenue else None,
            charge_accounts={
                c.name: c.account.id if c.account else None for c in self.charges
            },
        )
        if key is not None:
            self._calculator_cache.set(key, pricing)
        return pricing

    def _calculator_key(self) -> tuple:
        """(id, company and write dates of the version, its tax and its
        tariff) in one query: reading them through the ORM was a noticeable
        part of every vend (figures in bench/README.md)."""
        pool = Pool()
        version = self.__table__()
        tax = pool.get('account.tax').__table__()
        tariff = pool.get('prepaid.tariff').__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(
            *version.join(tax, 'LEFT', condition=version.tax == tax.id)
            .join(tariff, condition=version.tariff == tariff.id)
            .select(
                # The utility's: a cached pricing never serves another one.
                tariff.company,
                Coalesce(version.write_date, version.create_date),
                tax.id,
                Coalesce(tax.write_date, tax.create_date),
                Coalesce(tariff.write_date, tariff.create_date),
                where=version.id == self.id,
            )
        )
        return (self.id, *cursor.fetchone())

    @classmethod
    def validate(cls, versions):
        super().validate(versions)
        for version in versions:
            # (the calendar itself is required by its states when kind is tou)
            if version.kind == 'tou' and version.tou_calendar:
                version.tou_calendar.check_complete()

    @classmethod
    def check_modification(cls, mode, versions, values=None, external=False):
        super().check_modification(mode, versions, values=values, external=external)
        if mode in {'write', 'delete'}:
            cls.check_unused(versions)

    @classmethod
    def on_modification(cls, mode, versions, field_names=None):
        super().on_modification(mode, versions, field_names=field_names)
        cls._calculator_cache.clear()

    @classmethod
    def check_unused(cls, versions):
        "A version that priced a vend is history: create a new version instead"
        Vend = Pool().get('prepaid.vend')
        if Transaction().context.get('_prepaid_tariff_force'):
            return
        for sub in [versions[i : i + 500] for i in range(0, len(versions), 500)]:
            used = Vend.search([('tariff_version', 'in', [v.id for v in sub])], limit=1)
            if used:
                raise AccessError(
                    gettext(
                        'prepaid_vending.msg_tariff_version_used',
                        version=used[0].tariff_version.rec_name,
                    )
                )


class _VersionChild(ModelSQL, ModelView):
    "Lines of a version are frozen with it once it has priced a vend"

    @classmethod
    def check_modification(cls, mode, lines, values=None, external=False):
        super().check_modification(mode, lines, values=values, external=external)
        if mode in {'write', 'delete'}:
            Version = Pool().get('prepaid.tariff.version')
            Version.check_unused(list({line.version for line in lines}))

    @classmethod
    def on_modification(cls, mode, lines, field_names=None):
        super().on_modification(mode, lines, field_names=field_names)
        Pool().get('prepaid.tariff.version')._calculator_cache.clear()


class TariffBlock(sequence_ordered(), _VersionChild):
    "Tariff Block"

    __name__ = 'prepaid.tariff.block'

    version = fields.Many2One(
        'prepaid.tariff.version', "Version", required=True, ondelete='CASCADE'
    )
    from_kwh = fields.Numeric("From (kWh)", digits=(16, 2), required=True)
    to_kwh = fields.Numeric(
        "To (kWh)", digits=(16, 2), help="Empty for the last, open-ended block."
    )
    price = fields.Numeric("Price per kWh", digits=(16, 4), required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('version')
        cls._order.insert(1, ('from_kwh', 'ASC'))

    def to_dict(self) -> dict:
        return {
            'from_kwh': str(self.from_kwh),
            'to_kwh': _s(self.to_kwh),
            'price': str(self.price),
        }


class TariffCharge(_VersionChild):
    "Tariff Charge"

    __name__ = 'prepaid.tariff.charge'

    version = fields.Many2One(
        'prepaid.tariff.version', "Version", required=True, ondelete='CASCADE'
    )
    name = fields.Char("Name", size=128, required=True)
    period = fields.Selection(CHARGE_PERIODS, "Period", required=True)
    amount = fields.Numeric("Fixed Amount", digits=(16, 2))
    percent = fields.Numeric("Percent of Tender", digits=(6, 2))
    account = fields.Many2One(
        'account.account',
        "Revenue Account",
        domain=[('type.revenue', '=', True), ('closed', '!=', True)],
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('version')

    @staticmethod
    def default_period():
        return 'monthly'

    def to_dict(self) -> dict:
        data = {'name': self.name, 'period': self.period}
        if self.amount is not None:
            data['amount'] = str(self.amount)
        if self.percent is not None:
            data['percent'] = str(self.percent)
        return data


class TariffChannelFee(_VersionChild):
    "Tariff Channel Fee"

    __name__ = 'prepaid.tariff.channel_fee'

    version = fields.Many2One(
        'prepaid.tariff.version', "Version", required=True, ondelete='CASCADE'
    )
    channel = fields.Selection(CHANNELS, "Channel", required=True)
    amount = fields.Numeric("Fee", digits=(16, 2), required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('version')


class MeterTariff(ModelSQL, ModelView):
    "Dated tariff assignment of a meter (the tariff-change history)"

    __name__ = 'prepaid.meter.tariff'

    meter = fields.Many2One('prepaid.meter', "Meter", required=True, ondelete='CASCADE')
    tariff = fields.Many2One(
        'prepaid.tariff', "Tariff", required=True, ondelete='RESTRICT'
    )
    start_date = fields.Date("From", required=True)
    reason = fields.Char("Reason", size=255)
    user = fields.Many2One('res.user', "User", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('start_date', 'DESC'))
        # No __access__ on the meter: Tryton would grant the wider of both
        # accesses, so every group that may write meters (the Metering
        # Engineer) could change a meter's tariff.  Their own access records
        # decide.

    @staticmethod
    def default_user():
        return Transaction().user

    @staticmethod
    def default_start_date():
        return dt.date.today()

    @classmethod
    def validate_fields(cls, assignments, field_names):
        super().validate_fields(assignments, field_names)
        for assignment in assignments:
            # A meter buys only on its own utility's tariffs.
            CompanyMixin.same_company(
                assignment.tariff,
                assignment.meter,
                'prepaid_vending.msg_company_mismatch',
            )
