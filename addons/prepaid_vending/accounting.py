"""Accounting of vends, cancellations, cash differences and remote-prepaid billing:
the accounts (configuration), periods, and the move builders.

The vends are booked after their request by booking.py (summarised moves,
one per day, shift, sales point and channel); the rare manager actions
(cash differences, debt write-offs, refunds, transfers) book their own
posted move at once.  Every move is written with the ORM: Tryton's own move
and line checks apply.
"""

import datetime as dt
import logging
import re
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from trytond.cache import Cache
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import fields
from trytond.model.exceptions import ValidationError
from trytond.modules.account.exceptions import PeriodNotFoundError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval, Id
from trytond.transaction import Transaction

from . import fastpath
from .limits import MAX_AMOUNT, MIN_AMOUNT, in_range

_THRESHOLD = re.compile(r'[0-9]{1,12}(\.[0-9]{1,4})?')
logger = logging.getLogger(__name__)

CANCEL_POLICIES = [
    ('never', "Never (tokens are final)"),
    ('undelivered', "Only credit never delivered to a remote meter"),
    ('manager', "Any vend, by a Vending Manager, with a reason"),
]


def _account_field(
    string: str, help: str, kind: str | None = None, company=None
) -> fields.Many2One:
    """An account of the company: the value model's own (company given) or
    the configuration's (the context's company)"""
    if company is None:
        company = Eval('context', {}).get('company', -1)
    domain = [
        ('closed', '!=', True),
        ('type', '!=', None),
        ('company', '=', company),
    ]
    if kind:
        domain.append((f'type.{kind}', '=', True))
    return fields.Many2One('account.account', string, domain=domain, help=help)


#: name -> (string, help, account type) of the vending accounts
ACCOUNTS = {
    'energy_revenue_account': (
        "Energy Revenue",
        "Default energy revenue when the tariff has none.",
        'revenue',
    ),
    'charge_revenue_account': (
        "Charges Revenue",
        "Default revenue of fixed and service charges.",
        'revenue',
    ),
    'fee_revenue_account': (
        "Channel Fee Revenue",
        "Revenue of channel fees.",
        'revenue',
    ),
    'debt_account': (
        "Customer Debt",
        "Receivable that holds customer arrears.",
        'receivable',
    ),
    'emergency_credit_account': (
        "Emergency Credit",
        "Receivable for emergency credit advanced.",
        'receivable',
    ),
    'prepayment_account': (
        "Customer Prepayments",
        "Liability holding the money balance of remote-prepaid accounts.",
        None,
    ),
    'cash_account': (
        "Default Cash Account",
        "Used when the sales point has none.",
        None,
    ),
    'bank_account': (
        "Default Bank Account",
        "Card, mobile money and transfer receipts when the sales point has none.",
        None,
    ),
    'cash_difference_account': (
        "Cash Differences",
        "Over and short found when closing a shift.",
        None,
    ),
    'bad_debt_account': (
        "Bad Debts",
        "Expense charged when a manager writes a customer debt off.",
        'expense',
    ),
    'refund_account': (
        "Customer Refunds Payable",
        "Liability for balances refunded at move-out until they are paid out.",
        'payable',
    ),
    # Counter accounts of debts raised by staff, one per debt category
    # (DEBT_COUNTER_ACCOUNTS): the receivable is debited when the debt is
    # raised, so the books agree with the debt ledger from the first day.
    'debt_arrears_account': (
        "Arrears Taken Over",
        "Credited when arrears taken over from a legacy billing system are "
        "raised as customer debt: a suspense account the accountant clears "
        "against the legacy system's receivable.",
        None,
    ),
    'debt_penalty_account': (
        "Debt Penalties",
        "Income credited when a penalty (e.g. meter tampering) is raised as "
        "customer debt.",
        None,
    ),
}

#: Company-dependent: a utility has its own books (accounts, journal,
#: receipt numbering) and its own selling policy (cancellation, emergency
#: credit, warnings, friendly periods).
ACCOUNTING_COMPANY_FIELDS = set(ACCOUNTS) | {
    'vend_sequence',
    'vend_journal',
    'cancel_policy',
    'emergency_credit_amount',
    'emergency_credit_min_vends',
    'low_credit_thresholds',
    'friendly_calendar',
}


def _vend_sequence(company) -> fields.Many2One:
    return fields.Many2One(
        'ir.sequence',
        "Receipt Number Sequence",
        domain=[
            ('sequence_type', '=', Id('prepaid_vending', 'sequence_type_vend')),
            ('company', 'in', [company, None]),
        ],
    )


def _vend_journal() -> fields.Many2One:
    return fields.Many2One(
        'account.journal',
        "Vending Journal",
        help="Journal of the vend, cancellation and cash-difference moves.",
    )


def _cancel_policy() -> fields.Selection:
    return fields.Selection(CANCEL_POLICIES, "Cancellation Policy")


def _emergency_credit_amount() -> fields.Numeric:
    return fields.Numeric(
        "Emergency Credit Amount",
        digits=(16, 2),
        help="Money advanced as emergency credit; empty disables it.",
    )


def _emergency_credit_min_vends() -> fields.Integer:
    return fields.Integer(
        "Emergency Credit After (vends)",
        help="A meter needs this many paid vends before it is eligible.",
    )


def _low_credit_thresholds() -> fields.Char:
    return fields.Char(
        "Low-Credit Warning Thresholds",
        size=255,
        help="Comma-separated balances that trigger a warning, e.g. 50,20,5.",
    )


def _friendly_calendar() -> fields.Many2One:
    return fields.Many2One(
        'prepaid.friendly.calendar',
        "Friendly Periods",
        help="No disconnection during these periods.",
    )


_CONTEXT_COMPANY = Eval('context', {}).get('company', -1)
_OWN = Eval('company', -1)
CREDIT_RANGES = {
    'emergency_credit_amount': (MIN_AMOUNT, MAX_AMOUNT),
    'emergency_credit_min_vends': (0, 1000),
}


def check_low_credit_thresholds(text: str | None) -> None:
    "At most ten comma-separated amounts, each within the amount range"
    text = text or ''
    parts = [p.strip() for p in text.split(',') if p.strip()]
    if (
        len(parts) > 10
        or not all(_THRESHOLD.fullmatch(p) for p in parts)
        or not all(in_range(Decimal(p), 0, MAX_AMOUNT) for p in parts)
    ):
        raise ValidationError(
            gettext(
                'prepaid_vending.msg_low_credit_thresholds',
                value=text[:100],
                maximum=MAX_AMOUNT,
            )
        )


class CreditSettingsChecked:
    """The checks of the credit settings, on the configuration and on its
    values per company alike (either may be written)"""

    __slots__ = ()

    @classmethod
    def setting_ranges(cls):
        return super().setting_ranges() | CREDIT_RANGES

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        if not field_names or 'low_credit_thresholds' in field_names:
            for record in records:
                check_low_credit_thresholds(record.low_credit_thresholds)


class Configuration(CreditSettingsChecked, metaclass=PoolMeta):
    __name__ = 'prepaid.configuration'

    vend_sequence = fields.MultiValue(_vend_sequence(_CONTEXT_COMPANY))
    vend_journal = fields.MultiValue(_vend_journal())
    energy_revenue_account = fields.MultiValue(
        _account_field(*ACCOUNTS['energy_revenue_account'])
    )
    charge_revenue_account = fields.MultiValue(
        _account_field(*ACCOUNTS['charge_revenue_account'])
    )
    fee_revenue_account = fields.MultiValue(
        _account_field(*ACCOUNTS['fee_revenue_account'])
    )
    debt_account = fields.MultiValue(_account_field(*ACCOUNTS['debt_account']))
    emergency_credit_account = fields.MultiValue(
        _account_field(*ACCOUNTS['emergency_credit_account'])
    )
    prepayment_account = fields.MultiValue(
        _account_field(*ACCOUNTS['prepayment_account'])
    )
    cash_account = fields.MultiValue(_account_field(*ACCOUNTS['cash_account']))
    bank_account = fields.MultiValue(_account_field(*ACCOUNTS['bank_account']))
    cash_difference_account = fields.MultiValue(
        _account_field(*ACCOUNTS['cash_difference_account'])
    )
    bad_debt_account = fields.MultiValue(_account_field(*ACCOUNTS['bad_debt_account']))
    refund_account = fields.MultiValue(_account_field(*ACCOUNTS['refund_account']))
    debt_arrears_account = fields.MultiValue(
        _account_field(*ACCOUNTS['debt_arrears_account'])
    )
    debt_penalty_account = fields.MultiValue(
        _account_field(*ACCOUNTS['debt_penalty_account'])
    )
    cancel_policy = fields.MultiValue(_cancel_policy())
    emergency_credit_amount = fields.MultiValue(_emergency_credit_amount())
    emergency_credit_min_vends = fields.MultiValue(_emergency_credit_min_vends())
    low_credit_thresholds = fields.MultiValue(_low_credit_thresholds())
    friendly_calendar = fields.MultiValue(_friendly_calendar())

    @classmethod
    def _company_fields(cls) -> set[str]:
        return super()._company_fields() | ACCOUNTING_COMPANY_FIELDS

    @classmethod
    def default_vend_sequence(cls, **pattern):
        return cls.multivalue_model('vend_sequence').default_vend_sequence()

    @classmethod
    def default_cancel_policy(cls, **pattern):
        return cls.multivalue_model('cancel_policy').default_cancel_policy()

    @classmethod
    def default_emergency_credit_min_vends(cls, **pattern):
        return cls.multivalue_model(
            'emergency_credit_min_vends'
        ).default_emergency_credit_min_vends()

    @classmethod
    def default_low_credit_thresholds(cls, **pattern):
        return cls.multivalue_model(
            'low_credit_thresholds'
        ).default_low_credit_thresholds()

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
        if mode == 'create' or (field_names and 'vend_journal' in field_names):
            # A journal chosen now must not wait for the daily cron.
            cls.ensure_accounting_periods()

    @classmethod
    def ensure_accounting_periods(cls, date: dt.date | None = None) -> int:
        """Create the missing periods and vending journal periods of this
        month and the next (cron and configuration save).

        The first move of a journal in a period creates its journal period
        under a table lock taken with NOWAIT: at the first second of a month,
        concurrent vends fail on it.  Created ahead, vends only read it.
        Returns how many periods and journal periods were created."""
        pool = Pool()
        Company = pool.get('company.company')
        Date = pool.get('ir.date')
        # Not cls(1): the transaction caches records by id, and a singleton
        # created in this transaction has another id than 1.
        config = cls.get_singleton()
        if not config:
            return 0
        company_id = Transaction().context.get('company')
        companies = [Company(company_id)] if company_id else Company.search([])
        created = 0
        for comp in companies:
            # Each utility's own journal (company-dependent).
            with Transaction().set_context(company=comp.id):
                journal = cls(config.id).vend_journal
                today = date or Date.today()
            if not journal:
                continue
            for day in (today, today + relativedelta(months=1, day=1)):
                created += ensure_period(comp, journal, day)
        return created


class ConfigurationCompany(CreditSettingsChecked, metaclass=PoolMeta):
    "The vending accounts, journal, numbering and selling policy of a company"

    __name__ = 'prepaid.configuration.company'

    vend_sequence = _vend_sequence(_OWN)
    vend_journal = _vend_journal()
    energy_revenue_account = _account_field(
        *ACCOUNTS['energy_revenue_account'], company=_OWN
    )
    charge_revenue_account = _account_field(
        *ACCOUNTS['charge_revenue_account'], company=_OWN
    )
    fee_revenue_account = _account_field(*ACCOUNTS['fee_revenue_account'], company=_OWN)
    debt_account = _account_field(*ACCOUNTS['debt_account'], company=_OWN)
    emergency_credit_account = _account_field(
        *ACCOUNTS['emergency_credit_account'], company=_OWN
    )
    prepayment_account = _account_field(*ACCOUNTS['prepayment_account'], company=_OWN)
    cash_account = _account_field(*ACCOUNTS['cash_account'], company=_OWN)
    bank_account = _account_field(*ACCOUNTS['bank_account'], company=_OWN)
    cash_difference_account = _account_field(
        *ACCOUNTS['cash_difference_account'], company=_OWN
    )
    bad_debt_account = _account_field(*ACCOUNTS['bad_debt_account'], company=_OWN)
    refund_account = _account_field(*ACCOUNTS['refund_account'], company=_OWN)
    debt_arrears_account = _account_field(
        *ACCOUNTS['debt_arrears_account'], company=_OWN
    )
    debt_penalty_account = _account_field(
        *ACCOUNTS['debt_penalty_account'], company=_OWN
    )
    cancel_policy = _cancel_policy()
    emergency_credit_amount = _emergency_credit_amount()
    emergency_credit_min_vends = _emergency_credit_min_vends()
    low_credit_thresholds = _low_credit_thresholds()
    friendly_calendar = _friendly_calendar()

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.cancel_policy.required = True

    @classmethod
    def default_vend_sequence(cls):
        try:
            return (
                Pool().get('ir.model.data').get_id('prepaid_vending', 'sequence_vend')
            )
        except KeyError:
            return None

    @staticmethod
    def default_cancel_policy():
        return 'undelivered'

    @staticmethod
    def default_emergency_credit_min_vends():
        return 3

    @staticmethod
    def default_low_credit_thresholds():
        return '50,20'

    @classmethod
    def on_modification(cls, mode, records, field_names=None):
        super().on_modification(mode, records, field_names=field_names)
        # VendConfig keeps these values per company and process.
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
    """The configuration values of a vend, read once per company and process.

    Reading the singleton loads all its columns (and those of every module
    extending it) in every vend transaction; these few values change rarely,
    and any write to the configuration clears the cache in every process
    (trytond's Cache is synchronised through ir_cache).  Many2One values are
    kept as ids and returned as records of the current transaction."""

    def __init__(self, values: dict) -> None:
        self._values = values

    @classmethod
    def get(cls) -> 'VendConfig':
        "The values of the context's company (a vend runs in its meter's)"
        Configuration = Pool().get('prepaid.configuration')
        key = Transaction().context.get('company')
        values = _vend_config_cache.get(key)
        if values is None:
            config = Configuration(1)
            values = {}
            for name in VEND_CONFIG_FIELDS:
                value = getattr(config, name)
                field = Configuration._fields[name]
                if field._type == 'many2one':
                    value = (field.model_name, value.id) if value else None
                values[name] = value
            _vend_config_cache.set(key, values)
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


def ensure_period(comp, journal, date: dt.date) -> int:
    """Create, if missing, the period of comp covering date (a month, inside
    an open fiscal year) and the journal period of journal in it.  A date
    outside every fiscal year is only logged: creating a fiscal year is the
    accountant's decision (sequences, dates).  Returns how many records were
    created."""
    pool = Pool()
    FiscalYear = pool.get('account.fiscalyear')
    Period = pool.get('account.period')
    JournalPeriod = pool.get('account.journal.period')
    created = 0
    periods = Period.search(
        [
            ('fiscalyear.company', '=', comp.id),
            ('start_date', '<=', date),
            ('end_date', '>=', date),
            ('type', '=', 'standard'),
        ],
        limit=1,
    )
    if periods:
        (period,) = periods
    else:
        fiscalyears = FiscalYear.search(
            [
                ('company', '=', comp.id),
                ('start_date', '<=', date),
                ('end_date', '>=', date),
                ('state', '=', 'open'),
            ],
            limit=1,
        )
        if not fiscalyears:
            logger.warning(
                'no open fiscal year of %s covers %s: vends on that date '
                'will be refused until the accountant creates it',
                comp.rec_name,
                date,
            )
            return 0
        (fiscalyear,) = fiscalyears
        period = Period(
            fiscalyear=fiscalyear, type='standard', **_free_month(fiscalyear, date)
        )
        period.save()
        created += 1
    if period.state != 'open':
        return created
    if JournalPeriod.search(
        [('journal', '=', journal.id), ('period', '=', period.id)], limit=1
    ):
        if created:
            return 2  # the period, and its journal period made by Period
        return 0
    create_journal_periods(journal, [period])
    return created + 1


def create_journal_periods(journal, periods) -> None:
    JournalPeriod = Pool().get('account.journal.period')
    # As account.move.line does, so that two creators never collide on the
    # unique (journal, period); vends never take this lock.
    JournalPeriod.lock()
    JournalPeriod.create([{'journal': journal.id, 'period': p.id} for p in periods])


def _free_month(fiscalyear, date: dt.date) -> dict:
    """Name, start and end of the month of date, cut to the fiscal year and
    to the gap between its existing standard periods"""
    start = max(date.replace(day=1), fiscalyear.start_date)
    end = min(date + relativedelta(day=31), fiscalyear.end_date)
    for other in fiscalyear.periods:
        if other.type != 'standard':
            continue
        if other.end_date < date:
            start = max(start, other.end_date + dt.timedelta(days=1))
        elif other.start_date > date:
            end = min(end, other.start_date - dt.timedelta(days=1))
    return {'name': f'{start:%Y-%m}', 'start_date': start, 'end_date': end}


def find_period(comp, date: dt.date):
    "The open period of comp at date, or an error the accountant can act on"
    Period = Pool().get('account.period')
    table = Period.__table__()
    try:
        # Period.find remembers the period of a date but reads the whole
        # record for its state: one column is enough.
        period = Period.find(comp, date=date, test_state=False)
    except PeriodNotFoundError:
        period = None
    if period is not None:
        state = fastpath.scalar(table.select(table.state, where=table.id == period.id))
        if state == 'open':
            return period
    raise UserError(
        gettext(
            'prepaid_vending.msg_vend_no_period',
            date=date.isoformat(),
            company=comp.rec_name,
        )
    )


def check_bookable(date: dt.date) -> None:
    """Refuse a sale the books could not hold: no open period of the company
    on date, or the vending journal closed in it.  A vend books nothing in
    its request (booking.py), but money taken in a period the accountant
    closed would wait for a booking that can never come.  Two one-column
    reads; a missing journal period is left to the booker, which creates it
    (Tryton's check, with its table lock, off the vend's path)."""
    pool = Pool()
    Line = pool.get('account.move.line')
    config = VendConfig.get()
    journal = config.require('vend_journal')
    period = find_period(company(), date)
    journal_period = pool.get('account.journal.period').__table__()
    state = fastpath.scalar(
        journal_period.select(
            journal_period.state,
            where=(journal_period.journal == journal.id)
            & (journal_period.period == period.id),
            limit=1,
        )
    )
    if state not in {None, 'open'}:
        Line.check_journal_period_modify(period, journal)  # Tryton's refusal


def new_move(date: dt.date, origin, description: str):
    pool = Pool()
    Move = pool.get('account.move')
    config = VendConfig.get()
    comp = company()
    move = Move(
        company=comp,
        journal=config.require('vend_journal'),
        date=date,
        period=find_period(comp, date),
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
                tax_account(tax),
                *_dc(-sign * vat),
                description=f'VAT {description}',
                tax_lines=[tax_line(tax, sign * vat, 'tax')],
            )
        )
    return lines


def tax_account(tax):
    """The account VAT of tax is credited to: one column, not the ORM read of
    the whole tax record (a noticeable part of a vend: bench/README.md)."""
    Account = Pool().get('account.account')
    table = Pool().get('account.tax').__table__()
    account_id = fastpath.scalar(
        table.select(table.invoice_account, where=table.id == tax.id)
    )
    return Account(account_id) if account_id is not None else None


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


class Move(metaclass=PoolMeta):
    __name__ = 'account.move'

    @classmethod
    def _get_origin(cls):
        return super()._get_origin() + [
            'prepaid.vend',
            'prepaid.cashier.session',
            'prepaid.remote.bill',
            'prepaid.debt.line',
            'prepaid.customer.change',
            'prepaid.meter.change',
        ]


class MoveLine(metaclass=PoolMeta):
    __name__ = 'account.move.line'

    @classmethod
    def _get_origin(cls):
        return super()._get_origin() + ['prepaid.vend']


class Period(metaclass=PoolMeta):
    __name__ = 'account.period'

    @classmethod
    def on_modification(cls, mode, periods, field_names=None):
        super().on_modification(mode, periods, field_names=field_names)
        if mode != 'create':
            return
        # Periods created by the accountant (a new fiscal year) get their
        # vending journal period at once, not at the first vend.
        Configuration = Pool().get('prepaid.configuration')
        config = Configuration.get_singleton()
        journal = config.vend_journal if config else None
        if not journal:
            return
        JournalPeriod = Pool().get('account.journal.period')
        missing = [
            p
            for p in periods
            if p.state == 'open'
            and not JournalPeriod.search(
                [('journal', '=', journal.id), ('period', '=', p.id)], limit=1
            )
        ]
        if missing:
            create_journal_periods(journal, missing)


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            (
                'prepaid.configuration|ensure_accounting_periods',
                "Create Vending Accounting Periods Ahead",
            )
        )


# ------------------------------------------------------ ledger adjustments
# A debt write-off, a move-out refund and a balance or debt handed from one
# party to another change the debt and balance ledgers without a vend.  Each
# gets its own posted move in the same transaction as the ledger line.  The
# move is built (unsaved) BEFORE the ledger is written: a missing account or
# period refuses the whole operation with nothing written.  Posting at once is
# affordable here (rare manager actions, unlike vends; see the module docstring).


def _configured(*names: str) -> list:
    "The configured accounts, or a clear error naming the first missing one"
    Configuration = Pool().get('prepaid.configuration')
    config = Configuration(1)
    return [config.require(name) for name in names]


def adjustment_move(date: dt.date, description: str, entries):
    """An unsaved move (origin set later by post_adjustments) from entries
    (account, signed amount with debit positive, party, text); zero entries
    are dropped and None is returned when nothing is left."""
    entries = [e for e in entries if e[1]]
    if not entries:
        return None
    total = sum((amount for _, amount, _, _ in entries), Decimal(0))
    if total:
        raise ValueError(f'unbalanced adjustment {description!r}: {total}')
    move = new_move(date, None, description)
    move.lines = [
        move_line(account, *_dc(amount), party=party, description=text)
        for account, amount, party, text in entries
    ]
    return move


def write_off_move(debt, amount: Decimal, date: dt.date):
    "Dr bad debts / Cr the debt receivable of the customer, for amount"
    bad_debts, receivable = _configured('bad_debt_account', 'debt_account')
    text = f'Write-off {debt.description}'
    return adjustment_move(
        date,
        f'Debt write-off {debt.party.rec_name}',
        [(bad_debts, amount, None, text), (receivable, -amount, debt.party, text)],
    )


#: Debt category (credit.DEBT_CATEGORIES) -> configuration field of the account
#: credited when a debt of that category is raised.
DEBT_COUNTER_ACCOUNTS = {
    'arrears': 'debt_arrears_account',
    'penalty': 'debt_penalty_account',
}


def debt_raise_move(debt, amount: Decimal, date: dt.date):
    """Dr the debt receivable of the customer / Cr the counter account of the
    debt's category, for amount"""
    receivable, counter = _configured(
        'debt_account', DEBT_COUNTER_ACCOUNTS[debt.category]
    )
    text = f'Debt raised: {debt.description}'
    return adjustment_move(
        date,
        f'Debt of {debt.party.rec_name}',
        [(receivable, amount, debt.party, text), (counter, -amount, debt.party, text)],
    )


def refund_move(party, amount: Decimal, date: dt.date, description: str, holder=None):
    """Dr the prepayment of holder (default party) / Cr refunds payable to
    party: the balance is now owed as money, paid out later."""
    prepayment, refunds = _configured('prepayment_account', 'refund_account')
    return adjustment_move(
        date,
        description,
        [
            (prepayment, amount, holder or party, description),
            (refunds, -amount, party, description),
        ],
    )


def overdrawn_debt_move(
    party, amount: Decimal, date: dt.date, description: str, holder=None
):
    """An overdrawn balance (a debit on the prepayment liability of holder,
    default party) becomes the debt of party: Dr debt receivable / Cr
    prepayment."""
    receivable, prepayment = _configured('debt_account', 'prepayment_account')
    return adjustment_move(
        date,
        description,
        [
            (receivable, amount, party, description),
            (prepayment, -amount, holder or party, description),
        ],
    )


def balance_transfer_move(
    from_party, to_party, amount: Decimal, date: dt.date, description: str
):
    """A prepaid balance handed from one customer to another: Dr prepayment
    of from_party / Cr prepayment of to_party (a negative amount, an
    overdrawn balance, goes the other way).  None for the same party."""
    if from_party == to_party:
        return None
    (prepayment,) = _configured('prepayment_account')
    return adjustment_move(
        date,
        description,
        [
            (prepayment, amount, from_party, description),
            (prepayment, -amount, to_party, description),
        ],
    )


def debt_transfer_move(
    from_party, to_party, amount: Decimal, date: dt.date, description: str
):
    """Debts taken over by another customer: Dr debt receivable of to_party /
    Cr debt receivable of from_party.  None for the same party."""
    if from_party == to_party:
        return None
    (receivable,) = _configured('debt_account')
    return adjustment_move(
        date,
        description,
        [
            (receivable, amount, to_party, description),
            (receivable, -amount, from_party, description),
        ],
    )


def post_adjustments(moves, origin=None) -> None:
    """Save and post moves (None entries skipped) with origin, unless each
    move has its own already.  The caller checked that the user may make the
    ledger change; staff groups have no access to account.move itself."""
    from trytond.transaction import without_check_access

    Move = Pool().get('account.move')
    moves = [m for m in moves if m]
    if not moves:
        return
    for move in moves:
        if origin is not None:
            move.origin = origin
    with without_check_access():
        Move.save(moves)
        Move.post(moves)
