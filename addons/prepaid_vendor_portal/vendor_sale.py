"""A vendor's XMLVend sale in the books (docs/vendors.md sections 3.1, 4).

Each sale of a vendor has its record (``prepaid.vendor.sale``: the vend,
the vendor, the commission deducted at the sale, zero unless the vendor's
plan is ``at_sale``).  The vends' booker (prepaid_vending/booking.py)
books the vend with the others of its (day, sales point, channel): the
revenue and VAT as for a cashier's sale, but the money received is debited
on the vendor's float account (the owner party's line) instead of the
bank, and a commission deducted at sale is booked Dr the configured
commission expense / Cr the float account.  The same booking moves the
float's position (``FloatPosition.book``), so that its drift stays zero;
a cancellation reverses the lines on the same accounts and gives the
vendor its net amount back (``fund`` when booked, ``release`` when not).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from sql.aggregate import Sum
from sql.operators import In
from trytond import backend
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_vending.accounting import _account_field
from trytond.modules.prepaid_vending.booking import Entry
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access

from . import commission as core

ZERO = Decimal(0)
COMMISSION_ACCOUNT = (
    "Vendor Commission",
    "Expense of the commission third-party vendors deduct at sale.",
    'expense',
)


class Configuration(metaclass=PoolMeta):
    __name__ = 'prepaid.configuration'

    vendor_commission_account = fields.MultiValue(_account_field(*COMMISSION_ACCOUNT))

    @classmethod
    def _company_fields(cls) -> set[str]:
        return super()._company_fields() | {'vendor_commission_account'}


class ConfigurationCompany(metaclass=PoolMeta):
    __name__ = 'prepaid.configuration.company'

    vendor_commission_account = _account_field(
        *COMMISSION_ACCOUNT, company=Eval('company', -1)
    )


class Sale(CompanyMixin, ModelSQL, ModelView):
    "Vendor Sale"

    __name__ = 'prepaid.vendor.sale'
    _company_links = ('vendor',)

    vendor = fields.Many2One(
        'prepaid.vendor', "Vendor", required=True, readonly=True, ondelete='RESTRICT'
    )
    terminal = fields.Many2One(
        'prepaid.vendor.terminal', "Terminal", readonly=True, ondelete='RESTRICT'
    )
    vend = fields.Many2One(
        'prepaid.vend', "Vend", required=True, readonly=True, ondelete='RESTRICT'
    )
    sold_at = fields.Timestamp("Sold at", required=True, readonly=True)
    mode = fields.Selection(
        [(core.Mode.MONTHLY.value, "Monthly"), (core.Mode.AT_SALE.value, "At Sale")],
        "Commission Mode",
        required=True,
        readonly=True,
    )
    rule = fields.Char("Rule", readonly=True)
    tier_kwh = fields.Numeric("kWh for Tiers", digits=(16, 1), readonly=True)
    commission = fields.Numeric(
        "Commission Deducted",
        digits=(16, 2),
        required=True,
        readonly=True,
        help="Kept by the vendor at the sale (at-sale plans); zero when the "
        "commission is settled monthly.",
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'vend_unique',
                Unique(t, t.vend),
                'prepaid_vendor_portal.msg_vendor_sale_unique',
            ),
        ]
        cls._order.insert(0, ('sold_at', 'DESC'))

    @classmethod
    def record(cls, terminal, vend, now: dt.datetime) -> Decimal:
        """Record vend as the sale of terminal's vendor, with the commission
        its plan deducts at the sale (priced by the core with the month's
        usage so far); returns that commission (zero: none deducted)"""
        Plan = Pool().get('prepaid.vendor.commission.plan')
        vendor = terminal.outlet.vendor
        with without_check_access():
            plans = Plan.search([('vendor', '=', vendor.id)], limit=1)
        values = {
            'company': vendor.company.id,
            'vendor': vendor.id,
            'terminal': terminal.id,
            'vend': vend.id,
            'sold_at': vend.date,
            'mode': plans[0].mode if plans else core.Mode.MONTHLY.value,
            'commission': ZERO,
        }
        # A free issue (FBE, zero tender) earns no commission at the sale:
        # there is no money to deduct it from.
        if plans and plans[0].mode == core.Mode.AT_SALE and vend.tender:
            customer = vend.customer
            category = getattr(customer, 'customer_category', None)
            sale = core.Sale(
                reference=vend.number,
                at=now,
                tx_type=core.TxType.VEND,
                channel=vend.channel,
                category=category.name if category else '',
                amount=vend.tender,
                kwh=vend.units_kwh or ZERO,
            )
            line = core.commission_of(plans[0].core(), sale, cls.usage(vendor, now))
            if not ZERO <= line.commission <= vend.tender:
                raise ValidationError(
                    gettext(
                        'prepaid_vendor_portal.msg_commission_above_sale',
                        commission=line.commission,
                        tender=vend.tender,
                    )
                )
            values.update(
                rule=line.rule, tier_kwh=line.tier_kwh, commission=line.commission
            )
        with without_check_access():
            cls.create([values])
        return values['commission']

    @classmethod
    def usage(cls, vendor, now: dt.datetime) -> core.Usage:
        """The commission and kWh of the vendor's at-sale sales this month
        (in the utility's time zone), not cancelled, per rule"""
        Vend = Pool().get('prepaid.vend')
        local = now.astimezone(vendor.timezone())
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        start = start.astimezone(dt.UTC).replace(tzinfo=None)
        sale, vend = cls.__table__(), Vend.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(
            *sale.join(vend, condition=vend.id == sale.vend).select(
                sale.rule,
                Sum(sale.tier_kwh),
                Sum(sale.commission),
                where=(sale.vendor == vendor.id)
                & (sale.mode == core.Mode.AT_SALE.value)
                & (sale.rule != None)  # noqa: E711
                & (sale.sold_at >= start)
                & (vend.state == 'issued'),
                group_by=[sale.rule],
            )
        )
        kwh, commission = {}, {}
        for rule, rule_kwh, rule_commission in cursor:
            kwh[rule] = _d(rule_kwh)
            commission[rule] = _d(rule_commission)
        return core.Usage(kwh, commission, sum(commission.values(), ZERO))

    @classmethod
    def totals(cls, vends) -> dict[int, tuple[Decimal, Decimal, set[int]]]:
        """Per vendor id, its sales among vends: (tenders, commission
        deducted, vend ids)"""
        Vend = Pool().get('prepaid.vend')
        sale, vend = cls.__table__(), Vend.__table__()
        cursor = Transaction().connection.cursor()
        result: dict = defaultdict(lambda: [ZERO, ZERO, set()])
        for ids in grouped_slice([v.id for v in vends], backend.MAX_QUERY_PARAMS):
            cursor.execute(
                *sale.join(vend, condition=vend.id == sale.vend).select(
                    sale.vendor,
                    sale.vend,
                    vend.tender,
                    sale.commission,
                    where=In(sale.vend, list(ids)),
                )
            )
            for vendor_id, vend_id, tender, commission in cursor:
                total = result[vendor_id]
                total[0] += _d(tender)
                total[1] += _d(commission)
                total[2].add(vend_id)
        return {k: (v[0], v[1], v[2]) for k, v in result.items()}


class Vend(metaclass=PoolMeta):
    __name__ = 'prepaid.vend'

    @classmethod
    def _booking_receipts(cls, vends):
        "A vendor's sales: debited on its float account, less the commission"
        pool = Pool()
        Sale = pool.get('prepaid.vendor.sale')
        Vendor = pool.get('prepaid.vendor')
        Configuration = pool.get('prepaid.configuration')
        entries, elsewhere = super()._booking_receipts(vends)
        for vendor_id, (tender, commission, ids) in sorted(Sale.totals(vends).items()):
            vendor = Vendor(vendor_id)
            account = vendor.float_account
            if not account:
                raise ValidationError(
                    gettext(
                        'prepaid_vendor_portal.msg_sale_no_float_account',
                        vendor=vendor.rec_name,
                    )
                )
            party = vendor.party.id
            entries.append(Entry(account.id, party, tender, f'Sales {vendor.code}'))
            if commission:
                expense = Configuration(1).require('vendor_commission_account')
                label = f'Commission {vendor.code}'
                entries += [
                    Entry(
                        expense.id,
                        party if expense.party_required else None,
                        commission,
                        label,
                    ),
                    Entry(account.id, party, -commission, label),
                ]
            elsewhere |= ids
        return entries, elsewhere

    @classmethod
    def _booked(cls, vends, move) -> None:
        "The ledger of each vendor went down by its net sales: so does funded"
        super()._booked(vends, move)
        Position = Pool().get('prepaid.vendor.float')
        for vendor_id, (tender, commission, _) in sorted(
            Pool().get('prepaid.vendor.sale').totals(vends).items()
        ):
            Position.book(vendor_id, tender - commission)

    @classmethod
    def book_cancellation(cls, vend):
        """A vendor's sale cancelled gives the vendor its net amount back:
        booked, with the reversal's move (fund); not booked, from what its
        sale drew (release)"""
        Position = Pool().get('prepaid.vendor.float')
        move = super().book_cancellation(vend)
        totals = Pool().get('prepaid.vendor.sale').totals([vend])
        for vendor_id, (tender, commission, _) in totals.items():
            net = tender - commission
            if not net:
                continue
            if move is None:
                Position.release(vendor_id, net)
            else:
                Position.fund(vendor_id, net)
        return move


def _d(value) -> Decimal:
    "A sum from the database as a Decimal of cents (SQLite sums as float)"
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(Decimal('0.01'))
