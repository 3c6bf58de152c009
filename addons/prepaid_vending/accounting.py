"""Accounting of vends, cancellations, cash differences and remote-prepaid billing.

Design choice: ONE DRAFT MOVE PER VEND, POSTED IN BATCH (per shift at closing, and
by a daily cron for API channels).
- Every vend gets its own move in the same transaction as its token, so there is
  never money without a move and the vend <-> move link is exact (audit, reversal
  of a single cancelled vend, tax lines per vend).
- Posting numbers moves from the fiscal year's *strict* sequence, which takes a row
  lock: posting inside the vend would serialise every vend of the utility on that
  lock.  Draft moves take no shared lock, so cashiers on different meters never
  wait for each other; the batch posting numbers them in one go.
- Tax lines (account.tax.line) are written on the draft lines already, so the
  standard tax reports see them (with the "posted" filter after the batch).
"""

import datetime as dt
from decimal import Decimal

from trytond.cache import Cache
from trytond.i18n import gettext
from trytond.model import fields
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Id
from trytond.transaction import Transaction

CANCEL_POLICIES = [
    ('never', "Never (tokens are final)"),
    ('undelivered', "Only credit never delivered to a remote meter"),
    ('manager', "Any vend, by a Vending Manager, with a reason"),
]


def _account_field(string: str, help: str, kind: str | None = None):
    domain = [('closed', '!=', True), ('type', '!=', None)]
    if kind:
        domain.append((f'type.{kind}', '=', True))
    return fields.Many2One('account.account', string, domain=domain, help=help)


class Configuration(metaclass=PoolMeta):
    __name__ = 'prepaid.configuration'

    vend_sequence = fields.Many2One(
        'ir.sequence',
        "Receipt Number Sequence",
        domain=[('sequence_type', '=', Id('prepaid_vending', 'sequence_type_vend'))],
    )
    vend_journal = fields.Many2One(
        'account.journal',
        "Vending Journal",
        help="Journal of the vend, cancellation and cash-difference moves.",
    )
    energy_revenue_account = _account_field(
        "Energy Revenue", "Default energy revenue when the tariff has none.", 'revenue'
    )
    charge_revenue_account = _account_field(
        "Charges Revenue", "Default revenue of fixed and service charges.", 'revenue'
    )
    fee_revenue_account = _account_field(
        "Channel Fee Revenue", "Revenue of channel fees.", 'revenue'
    )
    debt_account = _account_field(
        "Customer Debt", "Receivable that holds customer arrears.", 'receivable'
    )
    emergency_credit_account = _account_field(
        "Emergency Credit", "Receivable for emergency credit advanced.", 'receivable'
    )
    prepayment_account = _account_field(
        "Customer Prepayments",
        "Liability holding the money balance of remote-prepaid accounts.",
    )
    cash_account = _account_field(
        "Default Cash Account", "Used when the sales point has none."
    )
    bank_account = _account_field(
        "Default Bank Account",
        "Card, mobile money and transfer receipts when the sales point has none.",
    )
    cash_difference_account = _account_field(
        "Cash Differences", "Over and short found when closing a shift."
    )
    cancel_policy = fields.Selection(
        CANCEL_POLICIES, "Cancellation Policy", required=True
    )
    emergency_credit_amount = fields.Numeric(
        "Emergency Credit Amount",
        digits=(16, 2),
        help="Money advanced as emergency credit; empty disables it.",
    )
    emergency_credit_min_vends = fields.Integer(
        "Emergency Credit After (vends)",
        help="A meter needs this many paid vends before it is eligible.",
    )
    low_credit_thresholds = fields.Char(
        "Low-Credit Warning Thresholds",
        help="Comma-separated balances that trigger a warning, e.g. 50,20,5.",
    )
    friendly_calendar = fields.Many2One(
        'prepaid.friendly.calendar',
        "Friendly Periods",
        help="No disconnection during these periods.",
    )

    @classmethod
    def default_vend_sequence(cls):
        return cls._default_id('sequence_vend')

    @staticmethod
    def default_cancel_policy():
        return 'undelivered'

    @staticmethod
    def default_emergency_credit_min_vends():
        return 3

    @staticmethod
    def default_low_credit_thresholds():
        return '50,20'

    def get_low_credit_thresholds(self) -> list[Decimal]:
        values = []
        for part in (self.low_credit_thresholds or '').split(','):
            if part.strip():
                values.append(Decimal(part.strip()))
        return sorted(values, reverse=True)

    def require(self, name: str):
        "The configured value, or a clear error saying what to configure"
        value = getattr(self, name)
        if not value:
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_accounting_missing',
                    field=self._fields[name].string,
                )
            )
        return value

    @classmethod
    def on_modification(cls, mode, records, field_names=None):
        super().on_modification(mode, records, field_names=field_names)
        _vend_config_cache.clear()


#: The configuration fields read by every vend.
VEND_CONFIG_FIELDS = (
    'min_vend_amount',
    'max_vend_amount',
    'max_kwh_per_vend',
    'vend_sequence',
    'vend_journal',
    'energy_revenue_account',
    'charge_revenue_account',
    'fee_revenue_account',
    'debt_account',
    'emergency_credit_account',
    'prepayment_account',
    'cash_account',
    'bank_account',
)
_vend_config_cache = Cache('prepaid.configuration.vend', context=False)


class VendConfig:
    """The configuration values of a vend, read once per process.

    Reading the singleton loads all its columns (and those of every module
    extending it) in every vend transaction; these few values change rarely,
    and any write to the configuration clears the cache in every process
    (trytond's Cache is synchronised through ir_cache).  Many2One values are
    kept as ids and returned as records of the current transaction."""

    def __init__(self, values: dict) -> None:
        self._values = values

    @classmethod
    def get(cls) -> 'VendConfig':
        Configuration = Pool().get('prepaid.configuration')
        values = _vend_config_cache.get('vend')
        if values is None:
            config = Configuration(1)
            values = {}
            for name in VEND_CONFIG_FIELDS:
                value = getattr(config, name)
                field = Configuration._fields[name]
                if field._type == 'many2one':
                    value = (field.model_name, value.id) if value else None
                values[name] = value
            _vend_config_cache.set('vend', values)
        return cls(values)

    def __getattr__(self, name: str):
        try:
            value = self._values[name]
        except KeyError:
            raise AttributeError(name) from None
        if isinstance(value, tuple):
            model, id_ = value
            return Pool().get(model)(id_)
        return value

    def require(self, name: str):
        "The configured value, or a clear error saying what to configure"
        value = getattr(self, name)
        if not value:
            Configuration = Pool().get('prepaid.configuration')
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_accounting_missing',
                    field=Configuration._fields[name].string,
                )
            )
        return value


def company():
    Company = Pool().get('company.company')
    company_id = Transaction().context.get('company')
    if not company_id:
        raise ValidationError(gettext('prepaid_vending.msg_no_company'))
    return Company(company_id)


def new_move(date: dt.date, origin, description: str):
    pool = Pool()
    Move = pool.get('account.move')
    Period = pool.get('account.period')
    config = VendConfig.get()
    comp = company()
    move = Move(
        company=comp,
        journal=config.require('vend_journal'),
        date=date,
        period=Period.find(comp, date=date),
        origin=origin,
        description=description,
    )
    move.lines = []
    return move


def move_line(
    account,
    debit: Decimal,
    credit: Decimal,
    party=None,
    description: str = '',
    tax_lines=None,
):
    Line = Pool().get('account.move.line')
    line = Line(account=account, debit=debit, credit=credit, description=description)
    line.party = party if account.party_required else None
    line.tax_lines = tax_lines or []
    return line


def tax_line(tax, amount: Decimal, type_: str):
    TaxLine = Pool().get('account.tax.line')
    return TaxLine(tax=tax, amount=amount, type=type_)


def revenue_lines(
    account, net: Decimal, vat: Decimal, tax, description: str, sign: int = 1
) -> list:
    """A credit on account for net with its VAT credited to the tax account; tax
    lines on both so that tax reports see base and tax.  sign=-1 reverses."""
    lines = []
    if net:
        base = [tax_line(tax, sign * net, 'base')] if tax and vat else []
        lines.append(
            move_line(
                account, *_dc(-sign * net), description=description, tax_lines=base
            )
        )
    if vat:
        if not tax:
            raise ValidationError(gettext('prepaid_vending.msg_vat_without_tax'))
        lines.append(
            move_line(
                tax.invoice_account,
                *_dc(-sign * vat),
                description=f'VAT {description}',
                tax_lines=[tax_line(tax, sign * vat, 'tax')],
            )
        )
    return lines


def _dc(amount: Decimal) -> tuple[Decimal, Decimal]:
    "Signed amount (positive = debit) to (debit, credit)"
    zero = Decimal(0)
    return (amount, zero) if amount >= 0 else (zero, -amount)


def receipt_account(sales_point, payment_method: str):
    "Where the money received is booked: the sales point's, else the default"
    config = VendConfig.get()
    if payment_method == 'emergency':
        # An advance: the customer owes it until the next vends repay it.
        return config.require('emergency_credit_account')
    if payment_method == 'cash':
        account = sales_point and getattr(sales_point, 'cash_account', None)
        return account or config.require('cash_account')
    account = sales_point and getattr(sales_point, 'bank_account', None)
    return account or config.require('bank_account')


def vend_move(vend):
    "The draft move of a vend (unsaved); None when no money changed hands"
    config = VendConfig.get()
    if not vend.tender:
        return None
    party = vend.customer
    tax = vend.tariff_version.tax
    move = new_move(vend.date.date(), vend, f'Vend {vend.number}')
    lines = [
        move_line(
            receipt_account(vend.sales_point, vend.payment_method),
            vend.tender,
            Decimal(0),
            party=party,
            description=f'{vend.payment_method} {vend.meter.serial}',
        )
    ]
    for line in vend.lines:
        if line.kind == 'fee':
            lines += revenue_lines(
                config.require('fee_revenue_account'),
                line.amount,
                line.vat,
                tax,
                line.description,
            )
        elif line.kind == 'charge':
            lines += revenue_lines(
                line.account or config.require('charge_revenue_account'),
                line.amount,
                line.vat,
                tax,
                line.description,
            )
        elif line.kind == 'emergency':
            lines.append(
                move_line(
                    config.require('emergency_credit_account'),
                    Decimal(0),
                    line.amount,
                    party=party,
                    description=line.description,
                )
            )
        elif line.kind == 'debt':
            lines.append(
                move_line(
                    config.require('debt_account'),
                    Decimal(0),
                    line.amount,
                    party=party,
                    description=line.description,
                )
            )
        elif line.kind == 'deposit':
            lines.append(
                move_line(
                    config.require('prepayment_account'),
                    Decimal(0),
                    line.amount,
                    party=party,
                    description=line.description,
                )
            )
    energy = [line for line in vend.lines if line.kind == 'energy']
    net = sum((line.amount for line in energy), Decimal(0))
    vat = sum((line.vat for line in energy), Decimal(0))
    revenue = vend.tariff.revenue_account or config.require('energy_revenue_account')
    lines += revenue_lines(revenue, net, vat, tax, f'Energy {vend.units_kwh} kWh')
    move.lines = [line for line in lines if line.debit or line.credit]
    return move


def reversal_move(move, date: dt.date, origin, description: str):
    "A move that exactly reverses move, tax lines included"
    reverse = new_move(date, origin, description)
    lines = []
    for line in move.lines:
        lines.append(
            move_line(
                line.account,
                line.credit,
                line.debit,
                party=line.party,
                description=f'Reversal: {line.description}',
                tax_lines=[tax_line(t.tax, -t.amount, t.type) for t in line.tax_lines],
            )
        )
    reverse.lines = lines
    return reverse


def post_draft_moves(moves) -> None:
    Move = Pool().get('account.move')
    drafts = [m for m in moves if m and m.state == 'draft']
    if drafts:
        Move.post(drafts)


class Move(metaclass=PoolMeta):
    __name__ = 'account.move'

    @classmethod
    def _get_origin(cls):
        return super()._get_origin() + [
            'prepaid.vend',
            'prepaid.cashier.session',
            'prepaid.remote.bill',
            'prepaid.debt.line',
        ]


class MoveLine(metaclass=PoolMeta):
    __name__ = 'account.move.line'

    @classmethod
    def _get_origin(cls):
        return super()._get_origin() + ['prepaid.vend']
