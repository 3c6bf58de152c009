"""The vend: tender in, tokens (or remote credit) out, in one transaction.

``Vend.vend`` is the single entry point used by the cashier wizard, the vending
APIs and the tests.  Its order is fixed:

1. idempotency: a key already used returns the stored vend (never charges twice);
2. checks on the input (tender, meter, shift) that need no lock;
3. the meter row lock (``Meter.lock_for_vend``: a blocking ``UPDATE`` of the
   meter row under a lock timeout; if another vend on the meter committed after
   this transaction's snapshot, PostgreSQL refuses the update and the transaction
   restarts (``MeterBusy``), so the month position read next is always the
   latest committed one; vends on other meters never wait);
4. the tariff calculation (``tariff.quote_vend``) on the month-to-date kWh;
5. the vend, its lines, the tokens (hook ``issue_credit_tokens``), debt and
   emergency-credit repayments, the remote command and the accounting move, all
   written in the caller's transaction: an error anywhere rolls everything back,
   so there is no money without a token and no token without money.
"""

import datetime as dt
from decimal import Decimal
from typing import Any, NamedTuple

from sql.aggregate import Max
from sql.conditionals import Coalesce
from sql.functions import CurrentTimestamp
from trytond import backend, config
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, Unique, Workflow, fields
from trytond.model.exceptions import AccessError, ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.rpc import RPC
from trytond.transaction import Transaction, TransactionError, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from . import accounting, vend_write
from .access import require_wizard_groups
from .amounts import parse_amount
from .append_only import AppendOnlyMixin
from .company import CompanyMixin
from .tariff import (
    MeterRegister,
    TariffError,
    VendQuote,
    VendRequest,
    quote_vend,
    tender_for_kwh,
)
from .tariff_model import CHANNELS, VersionPricing

PAYMENT_METHODS = [
    ('cash', "Cash"),
    ('card', "Card"),
    ('mobile_money', "Mobile Money"),
    ('bank_transfer', "Bank Transfer"),
    ('emergency', "Emergency Credit"),
]
LINE_KINDS = [
    ('fee', "Channel Fee"),
    ('charge', "Charge"),
    ('emergency', "Emergency Credit Repayment"),
    ('debt', "Debt Recovery"),
    ('energy', "Energy"),
    ('deposit', "Account Credit"),
]
TOKEN_KINDS = [
    ('key_change', "Key Change"),
    ('credit', "Credit"),
    ('fbe', "Free Basic Electricity"),
    ('engineering', "Engineering"),
]
ZERO = Decimal(0)
#: Payment methods that bring money in (and appear in the shift cash count).
COUNTED_METHODS = [m for m in PAYMENT_METHODS if m[0] != 'emergency']
#: Context key set only by EmergencyCredit.issue (RPC strips keys starting with
#: an underscore, so no client can set it).
EMERGENCY_CONTEXT = '_prepaid_emergency_issue'
#: Staff groups that may sell (the pipeline then writes with access checks off).
VEND_GROUPS = ('group_cashier', 'group_manager', 'group_admin', 'group_api_terminal')
#: The group of service logins that sell through rpc_vend with no shift.
API_TERMINAL_GROUP = 'group_api_terminal'
#: Vend fields compared when an idempotency key is used again.
RETRY_FIELDS = ('payment_method', 'channel')


class VendError(UserError):
    "A vend refused before anything was written"


class MeterBusy(TransactionError):
    """Another vend on the meter committed after this transaction's snapshot:
    the dispatcher restarts the transaction (unbounded, unlike the retries of
    DatabaseOperationalError), which then waits for the lock again."""


#: SQLSTATE of PostgreSQL's serialisation failure and lock timeout.
SERIALIZATION_FAILURE = '40001'
LOCK_NOT_AVAILABLE = '55P03'


class Meter(metaclass=PoolMeta):
    __name__ = 'prepaid.meter'

    vend_blocked = fields.Boolean(
        "Vending Blocked", help="No vend is accepted for a blocked meter."
    )
    vend_blocked_reason = fields.Char(
        "Blocking Reason", size=255, states={'invisible': ~Eval('vend_blocked')}
    )
    month_positions = fields.One2Many(
        'prepaid.meter.month_position', 'meter', "Monthly Purchases", readonly=True
    )
    tariff_assignments = fields.One2Many(
        'prepaid.meter.tariff', 'meter', "Tariff History"
    )
    last_vend_date = fields.Timestamp(
        "Last Vend",
        readonly=True,
        help="Written by every vend under the meter lock.",
    )

    @classmethod
    def _vend_lock_timeout(cls) -> int:
        "Seconds a vend waits for its meter: [prepaid] vend_lock_timeout"
        return config.getint('prepaid', 'vend_lock_timeout', default=10)

    @classmethod
    def lock_for_vend(cls, meter) -> None:
        """Hold meter's row until commit, waiting (not failing) while another
        vend holds it.

        Trytond's ``Model.lock`` takes ``FOR UPDATE NOWAIT`` at the start of a
        restarted transaction and gives up after a few tries (HTTP 503 for the
        client).  Here the vend waits on an ``UPDATE`` of its meter row instead:
        the update both takes the lock and marks the row, so a vend that waited
        for another one on the same meter gets a serialisation failure from
        PostgreSQL (repeatable read) and restarts with a fresh snapshot; without
        it, the month position read next could be stale.  The lock timeout
        bounds the wait.  Vends on other meters do not wait for this one
        (vends at one sales point do, for their receipt number:
        ``_new_number``)."""
        table = cls.__table__()
        update = table.update(
            [table.last_vend_date], [CurrentTimestamp()], where=table.id == meter.id
        )
        if backend.name != 'postgresql':
            # SQLite serialises writers: trytond's lock is enough there.
            cls.lock([meter])
            Transaction().connection.cursor().execute(*update)
            return
        update_waiting(update, meter.serial, cls._vend_lock_timeout())
        # Tell trytond the row is locked, so Model.lock([meter]) in the same
        # transaction (STS TID allocation) does not restart it.
        Transaction()._locked_records[cls._table].add(meter.id)


def update_waiting(update, what: str, seconds: int) -> None:
    """Run update (of one row, on PostgreSQL) waiting at most seconds for the
    row lock (see ``Meter.lock_for_vend``): a serialisation failure restarts
    the transaction (``MeterBusy``), a time-out refuses the vend."""
    transaction = Transaction()
    cursor = transaction.connection.cursor()
    cursor.execute(
        "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
        (f'{seconds}s',),
    )
    (previous, _) = cursor.fetchone()
    try:
        cursor.execute(*update)
    except backend.DatabaseOperationalError as exc:
        state = getattr(exc, 'sqlstate', None)
        if state == SERIALIZATION_FAILURE:
            raise MeterBusy() from exc
        if state == LOCK_NOT_AVAILABLE:
            # PostgreSQL aborted the transaction: roll back now so that the
            # message can be read (the vend is refused, nothing is kept).
            transaction.rollback()
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_meter_busy', meter=what, seconds=seconds
                )
            ) from exc
        raise
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", (previous,))


class MonthPosition(ModelSQL, ModelView):
    """The kWh bought on a meter in a calendar month: the position from which the
    inclining blocks of the next vend start."""

    __name__ = 'prepaid.meter.month_position'

    meter = fields.Many2One('prepaid.meter', "Meter", required=True, ondelete='CASCADE')
    month = fields.Date("Month", required=True, help="First day of the month.")
    kwh = fields.Numeric("kWh Bought", digits=(16, 1), required=True)
    vends = fields.Integer("Paid Vends", required=True)
    fbe_issued = fields.Boolean("FBE Issued")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'meter_month_unique',
                Unique(t, t.meter, t.month),
                'prepaid_vending.msg_month_position_unique',
            ),
        ]
        cls._order.insert(0, ('month', 'DESC'))
        # No __access__ on the meter: Tryton would grant the wider of both
        # accesses, so every group that may write meters (the Vending
        # Operator too) could rewrite the kWh a vend prices from.  Their own
        # access records decide.

    @classmethod
    def get(cls, meter, month: dt.date) -> 'MonthPosition':
        "The position of meter for month, unsaved and empty when none yet"
        positions = cls.search(
            [('meter', '=', meter.id), ('month', '=', month)], limit=1
        )
        if positions:
            return positions[0]
        return cls(
            meter=meter, month=month, kwh=Decimal('0.0'), vends=0, fbe_issued=False
        )

    @classmethod
    def get_with_year(cls, meter, month: dt.date) -> tuple['MonthPosition', bool]:
        """``get`` and ``first_of_year`` in one query (both are needed by every
        vend): the positions of the year up to month, latest first."""
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(
            *table.select(
                table.id,
                table.month,
                table.kwh,
                table.vends,
                table.fbe_issued,
                where=(table.meter == meter.id)
                & (table.month >= month.replace(month=1))
                & (table.month <= month),
                order_by=[table.month.desc],
            )
        )
        rows = cursor.fetchall()
        first = not any(vends > 0 for _, _, _, vends, _ in rows)
        if rows and vend_write.as_date(rows[0][1]) == month:
            # The values the vend needs, without the ORM read of the record.
            id_, _, kwh, vends, fbe_issued = rows[0]
            position = cls(
                id_,
                meter=meter,
                month=month,
                kwh=Decimal(str(kwh)),
                vends=vends,
                fbe_issued=bool(fbe_issued),
            )
            return position, first
        empty = cls(
            meter=meter, month=month, kwh=Decimal('0.0'), vends=0, fbe_issued=False
        )
        return empty, first

    @classmethod
    def check_modification(cls, mode, positions, values=None, external=False):
        super().check_modification(mode, positions, values=values, external=external)
        # Written only by the vend pipeline and the cancellation.
        if external:
            raise AccessError(gettext('prepaid_vending.msg_vend_readonly'))


class Prepared(NamedTuple):
    "What ``Vend._prepare`` found for a vend, and its quote"

    tariff: Any
    version: Any
    pricing: VersionPricing
    position: Any
    quote: VendQuote
    debts: list
    emergencies: list


class Vend(CompanyMixin, AppendOnlyMixin, Workflow, ModelSQL, ModelView):
    "Vend"

    __name__ = 'prepaid.vend'
    _rec_name = 'number'

    number = fields.Char("Receipt Number", readonly=True)
    receipt_sequence = fields.Integer(
        "Receipt Sequence",
        readonly=True,
        help="Gapless position of the receipt in its sales point's series.",
    )
    date = fields.Timestamp("Date", required=True, readonly=True)
    idempotency_key = fields.Char(
        "Idempotency Key",
        required=True,
        readonly=True,
        help="Unique per request: a retried request returns this vend.",
    )
    meter = fields.Many2One(
        'prepaid.meter', "Meter", required=True, readonly=True, ondelete='RESTRICT'
    )
    customer = fields.Many2One(
        'party.party', "Customer", readonly=True, ondelete='RESTRICT'
    )
    service_point = fields.Many2One(
        'prepaid.service_point', "Service Point", readonly=True, ondelete='RESTRICT'
    )
    sales_point = fields.Many2One(
        'prepaid.sales_point', "Sales Point", readonly=True, ondelete='RESTRICT'
    )
    session = fields.Many2One(
        'prepaid.cashier.session', "Cashier Shift", readonly=True, ondelete='RESTRICT'
    )
    cashier = fields.Many2One('res.user', "Cashier", readonly=True)
    channel = fields.Selection(CHANNELS, "Channel", required=True, readonly=True)
    payment_method = fields.Selection(
        PAYMENT_METHODS, "Payment Method", required=True, readonly=True
    )
    tender = fields.Numeric("Tender", digits=(16, 2), required=True, readonly=True)
    requested_kwh = fields.Numeric("Requested kWh", digits=(16, 1), readonly=True)
    tariff = fields.Many2One(
        'prepaid.tariff', "Tariff", required=True, readonly=True, ondelete='RESTRICT'
    )
    tariff_version = fields.Many2One(
        'prepaid.tariff.version',
        "Tariff Version",
        required=True,
        readonly=True,
        ondelete='RESTRICT',
    )
    lines = fields.One2Many('prepaid.vend.line', 'vend', "Lines", readonly=True)
    tokens = fields.One2Many('prepaid.vend.token', 'vend', "Tokens", readonly=True)
    units_kwh = fields.Numeric("kWh", digits=(16, 1), readonly=True)
    fbe_kwh = fields.Numeric("FBE kWh", digits=(16, 1), readonly=True)
    credit_amount = fields.Numeric(
        "Account Credit",
        digits=(16, 2),
        readonly=True,
        help="Money added to a remote-prepaid account.",
    )
    vat_amount = fields.Numeric("VAT", digits=(16, 2), readonly=True)
    month_kwh_before = fields.Numeric("Month kWh Before", digits=(16, 1), readonly=True)
    month_kwh_after = fields.Numeric("Month kWh After", digits=(16, 1), readonly=True)
    debt_remaining = fields.Numeric("Debt Remaining", digits=(16, 2), readonly=True)
    move = fields.Many2One('account.move', "Move", readonly=True)
    state = fields.Selection(
        [
            ('issued', "Issued"),
            ('cancelled', "Cancelled"),
        ],
        "State",
        required=True,
        readonly=True,
    )
    cancel_reason = fields.Char("Cancellation Reason", readonly=True)
    cancelled_by = fields.Many2One('res.user', "Cancelled By", readonly=True)
    cancel_move = fields.Many2One('account.move', "Cancellation Move", readonly=True)
    commands = fields.One2Many(
        'prepaid.meter.command', 'vend', "Remote Commands", readonly=True
    )
    credited_kwh = fields.Function(
        fields.Numeric(
            "kWh Credited on the Meter",
            digits=(16, 1),
            help="The energy the tokens carry: an STS amount is rounded up to "
            "the next value a token can encode, so above 1638.3 kWh it may "
            "exceed the kWh paid.",
        ),
        'get_credited_kwh',
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'idempotency_key_unique',
                Unique(t, t.idempotency_key),
                'prepaid_vending.msg_vend_idempotency_unique',
            ),
            # The lock in _new_number makes the series gapless; this makes
            # sure no other path can ever number two receipts alike.
            (
                'receipt_sequence_unique',
                Unique(t, t.sales_point, t.receipt_sequence),
                'prepaid_vending.msg_vend_receipt_number_unique',
            ),
        ]
        cls._sql_indexes.add(
            Index(t, (t.meter, Index.Range()), (t.date, Index.Range())),
        )
        cls._order.insert(0, ('date', 'DESC'))
        cls._transitions |= {('issued', 'cancelled')}
        cls.__rpc__.update({"rpc_vend": RPC(readonly=False, instantiate=None)})
        cls._buttons.update(
            {
                'cancel': {'invisible': Eval('state') != 'issued'},
            }
        )

    @staticmethod
    def default_state():
        return 'issued'

    def get_credited_kwh(self, name):
        credit = [t for t in self.tokens if t.kind in {'credit', 'fbe'}]
        if credit:
            return sum((t.units or ZERO for t in credit), ZERO)
        return (self.units_kwh or ZERO) + (self.fbe_kwh or ZERO)

    # ------------------------------------------------------------------ checks
    @classmethod
    def _check_vend_user(cls) -> None:
        "Only selling staff vend: the pipeline writes with access checks off"
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        user_id = Transaction().user
        if not user_id:  # root: cron, scripts, imports
            return
        allowed = {ModelData.get_id('prepaid_vending', g) for g in VEND_GROUPS}
        # get_groups is cached per process (and includes implied groups).
        if not set(User.get_groups()) & allowed:
            raise AccessError(gettext('prepaid_vending.msg_vend_user_group'))

    @classmethod
    def _check_number(cls, value, what: str) -> None:
        """A Decimal within the bounds of every amount (parse_amount): finite
        (NaN and infinity compare wrongly) and small enough for the
        calculator's arithmetic (1e26 would fail its roundings)."""
        if value is None:
            return
        if not isinstance(value, Decimal):
            raise VendError(
                gettext('prepaid_vending.msg_vend_not_number', what=what, value=value)
            )
        parse_amount(value, what, error=VendError)

    @classmethod
    def _check_retry(
        cls,
        previous,
        meter,
        tender,
        payment_method,
        sales_point,
        requested_kwh,
        channel,
    ):
        """The stored vend of a key used again, when the request is the same.

        A retry after a time-out must not charge twice; the same key with a
        different request is a client bug that must not go unnoticed.  Only
        the requester who sold it (same user, same sales point) gets the vend
        back: anyone else learns nothing about it, not even its meter."""
        cls._check_same_requester(previous, sales_point)
        if previous.meter != meter:
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_key_other_meter',
                    key=previous.idempotency_key,
                    meter=previous.meter.serial,
                )
            )
        if previous.state != 'issued':
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_key_cancelled',
                    key=previous.idempotency_key,
                    vend=previous.number,
                )
            )
        differences = [
            name
            for name, value in (
                ('payment_method', payment_method),
                ('channel', channel),
                ('requested_kwh', requested_kwh),
            )
            if getattr(previous, name) != value
        ]
        if requested_kwh is None and previous.tender != tender:
            differences.append('tender')
        if differences:
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_key_other_request',
                    key=previous.idempotency_key,
                    vend=previous.number,
                    fields=', '.join(differences),
                )
            )
        return previous

    @classmethod
    def _check_same_requester(cls, previous, sales_point) -> None:
        """Refuse the key of another user or sales point without telling
        anything of its vend (its tokens would bypass the reprint limit and
        its log)."""
        owner = previous.cashier.id if previous.cashier else None
        requester = Transaction().user or None
        if (owner or None) != requester or previous.sales_point != sales_point:
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_key_other_requester',
                    key=previous.idempotency_key,
                )
            )

    @staticmethod
    def needs_shift(channel: str, payment_method: str) -> bool:
        "A counter sale or cash is counted at the end of a cashier's shift"
        return channel == 'counter' or payment_method == 'cash'

    @classmethod
    def _check_api_terminal(cls, tender, requested_kwh, sales_point) -> None:
        """Only an API terminal login sells with no shift (and only as
        itself: the vend's cashier is the login that asked).

        Anyone else with a bad amount is told about the amount first, as a
        terminal would be (the checks of _vend).  For a terminal the amount
        is checked by _vend, after its retry lookup: a retry of a vend sold
        before the limits changed still gets its vend back."""
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        if not Transaction().user:  # root: cron, scripts, imports
            return
        terminal = ModelData.get_id('prepaid_vending', API_TERMINAL_GROUP)
        if terminal not in User.get_groups():
            cls._check_amount(tender, requested_kwh, sales_point)
            raise VendError(gettext('prepaid_vending.msg_vend_api_terminal'))

    @classmethod
    def _check_amount(cls, tender, requested_kwh, sales_point) -> None:
        "The tender, or the kWh asked for, of a new sale"
        if requested_kwh is not None:
            cls._check_number(requested_kwh, 'kWh')
            if requested_kwh <= 0:
                raise VendError(
                    gettext('prepaid_vending.msg_vend_kwh_positive', kwh=requested_kwh)
                )
        else:
            cls._check_tender(tender, sales_point, fbe_only=True)

    @classmethod
    def _check_meter(cls, meter):
        if meter.state != 'installed':
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_meter_not_installed',
                    meter=meter.serial,
                    state=meter.state,
                )
            )
        if meter.vend_blocked:
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_meter_blocked',
                    meter=meter.serial,
                    reason=meter.vend_blocked_reason or '',
                )
            )
        if meter.payment_mode == 'postpaid':
            raise VendError(
                gettext('prepaid_vending.msg_vend_meter_postpaid', meter=meter.serial)
            )
        # What the sale would send must reach the meter: refused here, before
        # any money is taken (hook of delivery.py, extended by STS/head-end).
        problems = meter.vend_delivery_problems()
        if problems:
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_cannot_receive',
                    meter=meter.serial,
                    problems=' '.join(problems),
                )
            )

    @classmethod
    def _check_tender(cls, tender, sales_point, fbe_only=False):
        config = accounting.VendConfig.get()
        if tender is None or not isinstance(tender, Decimal):
            raise VendError(gettext('prepaid_vending.msg_vend_tender_type'))
        cls._check_number(tender, 'tender')
        if tender < 0 or (tender == 0 and not fbe_only):
            raise VendError(
                gettext('prepaid_vending.msg_vend_tender_positive', tender=tender)
            )
        if tender == 0:
            return
        if tender != tender.quantize(Decimal('0.01')):
            raise VendError(
                gettext('prepaid_vending.msg_vend_tender_digits', tender=tender)
            )
        minimum = config.min_vend_amount or ZERO
        maximum = config.max_vend_amount
        if sales_point and sales_point.max_vend_amount:
            maximum = min(filter(None, [maximum, sales_point.max_vend_amount]))
        if tender < minimum:
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_tender_below_min',
                    tender=tender,
                    minimum=minimum,
                )
            )
        if maximum and tender > maximum:
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_tender_above_max',
                    tender=tender,
                    maximum=maximum,
                )
            )

    # ------------------------------------------------------------ calculation
    @classmethod
    def _prepare(
        cls, meter, tender, requested_kwh, channel, date, payment_method='cash'
    ):
        """Everything the calculator needs for meter at date, and its quote.

        Returns a ``Prepared``."""
        pool = Pool()
        Tariff = pool.get('prepaid.tariff')
        Position = pool.get('prepaid.meter.month_position')
        Debt_ = pool.get('prepaid.debt')
        Emergency = pool.get('prepaid.emergency_credit')
        tariff = Tariff.for_meter(meter, date.date())
        version = tariff.version_at(date.date())
        pricing = version.pricing()
        calculator = pricing.calculator
        month = date.date().replace(day=1)
        position, first_of_year = Position.get_with_year(meter, month)
        customer = meter.customer
        debts = Debt_.open_debts(customer) if customer else []
        # Emergency credit and free issues are not paid by the customer: they
        # must not repay anything.
        recovers = payment_method != 'emergency'
        emergencies = Emergency.open_credits(meter) if recovers else []
        fbe_due = bool(calculator.fbe_kwh_per_month) and not position.fbe_issued
        remote = meter.payment_mode == 'remote_prepaid'
        first_of_month = position.vends == 0
        if remote and (first_of_month or first_of_year):
            # A consumption bill of the period may have taken the period
            # charges first: they are taken once per period per account.
            Account = pool.get('prepaid.remote.account')
            billed_month, billed_year = Account.charges_billed(meter, month)
            first_of_month = first_of_month and not billed_month
            first_of_year = first_of_year and not billed_year
        request = VendRequest(
            tender=tender or ZERO,
            month_to_date_kwh=position.kwh,
            first_vend_of_month=first_of_month,
            first_vend_of_year=first_of_year,
            debt=Debt_.to_calculator(debts) if recovers else None,
            emergency_credit_owed=sum((e.outstanding for e in emergencies), ZERO),
            channel=channel,
            fbe_due=fbe_due and not remote,
            meter_register=(MeterRegister.CURRENCY if remote else MeterRegister.KWH),
        )
        try:
            if requested_kwh is not None:
                quote = tender_for_kwh(calculator, requested_kwh, request)
            else:
                quote = quote_vend(calculator, request)
        except TariffError as exc:
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_tariff_error',
                    meter=meter.serial,
                    error=str(exc),
                )
            ) from exc
        except ArithmeticError as exc:
            # The inputs are bounded (parse_amount); a tariff with extreme
            # prices may still overflow the decimal context.
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_tariff_error',
                    meter=meter.serial,
                    error=gettext('prepaid_vending.msg_vend_too_large'),
                )
            ) from exc
        return Prepared(tariff, version, pricing, position, quote, debts, emergencies)

    @classmethod
    def trial(cls, meter, tender=None, requested_kwh=None, channel='counter'):
        "A quote without token, money or lock (XMLVend trialCreditVend)"
        cls._check_meter(meter)
        cls._check_number(requested_kwh, 'kWh')
        if requested_kwh is None:
            cls._check_tender(tender, None, fbe_only=True)
        return cls._prepare(
            meter, tender, requested_kwh, channel, dt.datetime.now()
        ).quote

    # --------------------------------------------------------------- pipeline
    @classmethod
    def vend(
        cls,
        meter,
        tender,
        payment_method,
        sales_point,
        idempotency_key,
        requested_kwh=None,
        channel='counter',
    ):
        """Sell credit on meter; see the module docstring for the order.

        Returns the saved vend.  A key already used with the same request
        returns its vend unchanged.

        Only selling staff (``VEND_GROUPS``) may call it; the records are then
        written with access checks off, as the staff groups have no write
        access on vends (nobody may edit a vend from the client).
        """
        if not idempotency_key:
            raise VendError(gettext('prepaid_vending.msg_vend_no_key'))
        cls._check_vend_user()
        with without_check_access():
            return cls._vend(
                meter,
                tender,
                payment_method,
                sales_point,
                idempotency_key,
                requested_kwh,
                channel,
            )

    @classmethod
    def _vend(
        cls,
        meter,
        tender,
        payment_method,
        sales_point,
        idempotency_key,
        requested_kwh,
        channel,
    ):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Session = pool.get('prepaid.cashier.session')
        cls._check_number(tender, 'tender')
        cls._check_number(requested_kwh, 'kWh')
        table = cls.__table__()
        previous = vend_write.scalar(
            table.select(
                table.id, where=table.idempotency_key == idempotency_key, limit=1
            )
        )
        if previous is not None:
            return cls._check_retry(
                cls(previous),
                meter,
                tender,
                payment_method,
                sales_point,
                requested_kwh,
                channel,
            )
        if payment_method not in dict(PAYMENT_METHODS):
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_payment_method', method=payment_method
                )
            )
        if payment_method == 'emergency' and not Transaction().context.get(
            EMERGENCY_CONTEXT
        ):
            # Free energy: only EmergencyCredit.issue, which records the credit
            # to be repaid, may sell with this method.
            raise VendError(gettext('prepaid_vending.msg_vend_emergency_direct'))
        if channel not in dict(CHANNELS):
            raise VendError(
                gettext('prepaid_vending.msg_vend_channel', channel=channel)
            )
        cls._check_meter(meter)
        cls._check_amount(tender, requested_kwh, sales_point)
        session = None
        if cls.needs_shift(channel, payment_method):
            # Cash is always counted at the end of a shift.
            session = Session.current(sales_point)

        # From here on the meter is ours until commit.
        Meter.lock_for_vend(meter)
        if session is not None:
            # A shift closing meanwhile must not receive this vend.
            Session.lock_for_vend(session)
        date = dt.datetime.now()
        prepared = cls._prepare(
            meter, tender, requested_kwh, channel, date, payment_method
        )
        position, quote = prepared.position, prepared.quote
        if requested_kwh is not None:
            cls._check_tender(quote.tender, sales_point)
        config = accounting.VendConfig.get()
        if config.max_kwh_per_vend and quote.units_kwh > config.max_kwh_per_vend:
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_kwh_above_max',
                    kwh=quote.units_kwh,
                    maximum=config.max_kwh_per_vend,
                )
            )

        number, receipt_sequence = cls._new_number(config, sales_point, date.date())
        vend = cls(
            number=number,
            receipt_sequence=receipt_sequence,
            date=date,
            idempotency_key=idempotency_key,
            meter=meter,
            customer=meter.customer,
            service_point=meter.service_point,
            sales_point=sales_point,
            session=session,
            cashier=Transaction().user,
            channel=channel,
            payment_method=payment_method,
            tender=quote.tender,
            requested_kwh=requested_kwh,
            tariff=prepared.tariff,
            tariff_version=prepared.version,
            units_kwh=quote.units_kwh,
            fbe_kwh=quote.fbe_kwh,
            credit_amount=ZERO,
            month_kwh_before=position.kwh,
            month_kwh_after=quote.month_to_date_kwh,
            debt_remaining=quote.debt_remaining,
            state='issued',
        )
        lines = cls._lines_from_quote(vend, quote, prepared.pricing)
        vend.vat_amount = sum((line.vat for line in lines), ZERO)
        if meter.payment_mode == 'remote_prepaid':
            vend.credit_amount = sum(
                (line.amount for line in lines if line.kind == 'deposit'), ZERO
            )
        cls._store_vend(vend, lines)
        cls._store_position(position, quote)

        cls._apply_recoveries(vend, quote, prepared.debts, prepared.emergencies)
        tokens = vend.issue_credit_tokens(quote.units_kwh, quote.fbe_kwh)
        for sequence, token in enumerate(tokens, 1):
            token.vend = vend
            token.sequence = getattr(token, 'sequence', None) or sequence
        cls._store_tokens(vend, tokens)
        vend.after_issue()
        move = accounting.vend_move(vend, prepared.pricing)
        if move:
            move_id = vend_write.insert_move(move)
            table = cls.__table__()
            cursor = Transaction().connection.cursor()
            cursor.execute(
                *table.update([table.move], [move_id], where=table.id == vend.id)
            )
            vend_write.forget(cls, [vend.id])
            vend.move = move
        return vend

    # The records of a vend are written set-based (vend_write): every value
    # comes from records just read and checked above, and the ORM's re-read
    # and re-validation of each new record was most of a vend's time.
    @classmethod
    def _store_vend(cls, vend, lines) -> None:
        "INSERT the vend and its lines; vend keeps its values in memory"
        Line = Pool().get('prepaid.vend.line')
        names = [n for n in vend_write._columns(cls) if n != 'move']
        (vend_id,) = vend_write.insert_rows(cls, [vend_write.row_of(vend, names)])
        vend_write.adopt(vend, vend_id)
        for line in lines:
            line.vend = vend
        vend_write.insert_records(Line, lines)
        vend.lines = lines

    @classmethod
    def _store_tokens(cls, vend, tokens) -> None:
        "INSERT the tokens, with the digit check of VendToken.validate_fields"
        Token = Pool().get('prepaid.vend.token')
        Token.check_digits(tokens)
        vend_write.insert_records(Token, tokens)
        vend.tokens = tokens

    @classmethod
    def _store_position(cls, position, quote) -> None:
        "The month position after the vend, under the meter lock"
        Position = Pool().get('prepaid.meter.month_position')
        vends = position.vends + (1 if quote.tender else 0)
        fbe_issued = bool(position.fbe_issued or quote.fbe_kwh)
        kwh = quote.month_to_date_kwh
        if position.id is None:
            (position_id,) = vend_write.insert_rows(
                Position,
                [
                    {
                        'meter': position.meter,
                        'month': position.month,
                        'kwh': kwh,
                        'vends': vends,
                        'fbe_issued': fbe_issued,
                    }
                ],
            )
            vend_write.adopt(position, position_id)
        else:
            table = Position.__table__()
            cursor = Transaction().connection.cursor()
            cursor.execute(
                *table.update(
                    [
                        table.kwh,
                        table.vends,
                        table.fbe_issued,
                        table.write_uid,
                        table.write_date,
                    ],
                    [kwh, vends, fbe_issued, Transaction().user, CurrentTimestamp()],
                    where=table.id == position.id,
                )
            )
            vend_write.forget(Position, [position.id])
        position.kwh, position.vends, position.fbe_issued = kwh, vends, fbe_issued

    @classmethod
    def _new_number(
        cls, config, sales_point=None, date: dt.date | None = None
    ) -> tuple[str, int | None]:
        """The receipt number and its position in the sales point's series.

        Auditors expect gapless receipt numbers per point of sale: the next
        number is the sales point's last one plus one, read under a lock of
        the sales point row held until commit, so a vend rolled back takes
        its number with it.  Cashiers at different sales points never wait
        for each other; vends at one sales point take their numbers one after
        the other (a counter has a few cashiers: a short wait, the price of a
        gapless series).  Vends without a sales point (API) keep the
        configured sequence (fast, but a rolled-back vend leaves a gap); its
        date substitutions take the vend's date."""
        if sales_point is None:
            sequence = config.vend_sequence
            if not sequence:
                raise VendError(gettext('prepaid_vending.msg_vend_no_sequence'))
            with Transaction().set_context(date=date):
                return sequence.get(), None
        cls._lock_sales_point(sales_point)
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(
            *table.select(
                Coalesce(Max(table.receipt_sequence), 0),
                where=table.sales_point == sales_point.id,
            )
        )
        position = cursor.fetchone()[0] + 1
        return f'{sales_point.code}-{position:08d}', position

    @classmethod
    def _lock_sales_point(cls, sales_point) -> None:
        """Hold the sales point's row until commit (its receipt series).

        As for the meter (``Meter.lock_for_vend``) the lock is an UPDATE, so a
        vend that waited for another one gets a serialisation failure and
        restarts with a snapshot that sees the number just taken; a mere
        ``FOR UPDATE`` would let it read the same last number again."""
        SalesPoint = Pool().get('prepaid.sales_point')
        table = SalesPoint.__table__()
        update = table.update(
            [table.write_date], [table.write_date], where=table.id == sales_point.id
        )
        if backend.name != 'postgresql':
            # SQLite serialises writers.
            Transaction().connection.cursor().execute(*update)
            return
        update_waiting(
            update,
            sales_point.rec_name,
            Pool().get('prepaid.meter')._vend_lock_timeout(),
        )

    @classmethod
    def _lines_from_quote(cls, vend, quote, pricing) -> list:
        Line = Pool().get('prepaid.vend.line')
        accounts = pricing.charge_accounts
        tariff = pricing.calculator
        lines = []

        def add(kind, description, amount, vat=ZERO, **extra):
            if amount or vat or extra.get('kwh'):
                lines.append(
                    Line(
                        sequence=len(lines) + 1,
                        kind=kind,
                        description=description,
                        amount=amount,
                        vat=vat,
                        **extra,
                    )
                )

        add(
            'fee',
            quote.channel_fee.name,
            quote.channel_fee.amount,
            quote.channel_fee.vat,
        )
        for charge in quote.charges:
            add(
                'charge',
                charge.name,
                charge.amount,
                charge.vat,
                account=accounts.get(charge.name),
            )
        add('emergency', "Emergency credit repayment", quote.emergency_credit_recovered)
        add('debt', "Debt recovery", quote.debt_recovered)
        if vend.meter.payment_mode == 'remote_prepaid':
            # Money on account: VAT and revenue are recognised when billed.
            add('deposit', "Credit to account", quote.energy_amount + quote.energy_vat)
        elif quote.blocks:
            # The energy VAT is split over the blocks pro rata, the last block
            # taking the rounding rest so the lines add up exactly.
            total_vat, spent = quote.energy_vat, ZERO
            gross = quote.energy_amount + quote.energy_vat
            for i, use in enumerate(quote.blocks):
                if i == len(quote.blocks) - 1:
                    vat = total_vat - spent
                else:
                    share = (
                        use.amount
                        if tariff.prices_include_vat
                        else use.amount * (1 + tariff.vat_rate)
                    )
                    vat = (total_vat * share / gross).quantize(Decimal('0.01'))
                    spent += vat
                amount = use.amount - vat if tariff.prices_include_vat else use.amount
                add(
                    'energy',
                    f"Block {use.block}",
                    amount,
                    vat,
                    block=use.block,
                    kwh=use.kwh,
                    price=use.price,
                )
            # Money paid for the fraction of 0.1 kWh not issued stays in energy.
            rest = quote.energy_amount - sum(
                (line.amount for line in lines if line.kind == 'energy'), ZERO
            )
            if rest and lines and lines[-1].kind == 'energy':
                lines[-1].amount += rest
        elif quote.energy_amount or quote.energy_vat:
            add('energy', "Energy", quote.energy_amount, quote.energy_vat)
        return lines

    @classmethod
    def _apply_recoveries(cls, vend, quote, debts, emergencies):
        pool = Pool()
        Debt_ = pool.get('prepaid.debt')
        Emergency = pool.get('prepaid.emergency_credit')
        if quote.debt_recovered:
            Debt_.recover(debts, quote.debt_recovered, vend)
        if quote.emergency_credit_recovered:
            Emergency.repay(emergencies, quote.emergency_credit_recovered, vend)

    def issue_credit_tokens(self, units_kwh: Decimal, fbe_kwh: Decimal) -> list:
        """Hook for the token engine: the UNSAVED prepaid.vend.token records of
        this vend (key-change tokens first, then credit, then FBE).

        Meters without a keypad get their credit through the head-end, so they
        need no token; keypad meters need the STS module."""
        if self.meter.kind == 'sts_keypad':
            raise VendError(
                gettext(
                    'prepaid_vending.msg_vend_sts_required', meter=self.meter.serial
                )
            )
        return []

    def after_issue(self) -> None:
        "Hand remote credit to the head-end and to the account balance"
        pool = Pool()
        Command = pool.get('prepaid.meter.command')
        Account = pool.get('prepaid.remote.account')
        if self.meter.payment_mode == 'remote_prepaid':
            Account.credit_from_vend(self)
        elif self.meter.kind == 'smart_prepaid' and (self.units_kwh or self.fbe_kwh):
            Command.queue(
                self.meter,
                'remote_credit',
                {
                    'kwh': str(self.units_kwh + (self.fbe_kwh or ZERO)),
                    'vend': self.number,
                },
                vend=self,
            )

    # ---------------------------------------------------------- cancellation
    @classmethod
    @ModelView.button_action('prepaid_vending.wizard_vend_cancel')
    def cancel(cls, vends):
        pass

    @classmethod
    @Workflow.transition('cancelled')
    def _cancel(cls, vends):
        pass

    @classmethod
    def cancel_vends(cls, vends, reason: str):
        """Cancel under the configured policy with reversing entries; an issued
        STS token cannot be taken back, so only the money side is reversed."""
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        config = Configuration(1)
        if not reason:
            raise ValidationError(gettext('prepaid_vending.msg_vend_cancel_reason'))
        user = User(Transaction().user)
        manager = ModelData.get_id('prepaid_vending', 'group_manager')
        if Transaction().user and manager not in [g.id for g in user.groups]:
            raise AccessError(gettext('prepaid_vending.msg_vend_cancel_manager'))
        # Checked above: the writes below bypass the (read-only) staff access.
        with without_check_access():
            cls._cancel_vends(vends, reason, config)

    @classmethod
    def _cancel_vends(cls, vends, reason: str, config) -> None:
        for vend in vends:
            if vend.state != 'issued':
                raise ValidationError(
                    gettext('prepaid_vending.msg_vend_cancel_state', vend=vend.number)
                )
            vend.check_cancel_policy(config.cancel_policy)
            vend.reverse_effects()
            if vend.move:
                move = accounting.reversal_move(
                    vend.move, dt.date.today(), vend, f'Cancel {vend.number}'
                )
                move.save()
                vend.cancel_move = move
            vend.cancel_reason = reason
            vend.cancelled_by = Transaction().user
        cls.save(vends)
        cls._cancel(vends)

    def check_cancel_policy(self, policy: str) -> None:
        if policy == 'manager':
            return
        # Only a command never sent is surely undelivered: a time-out after the
        # meter executed it leaves "failed", a retry answered "already used"
        # leaves "rejected", and a command pending again for an automatic
        # retry was sent before.  Those need a manager's reconciliation first.
        if (
            policy == 'undelivered'
            and self.tokens == ()
            and self.commands
            and all(
                (c.state == 'pending' and not c.attempts)
                or (c.state in {'failed', 'rejected'} and c.reconciled_undelivered)
                for c in self.commands
            )
        ):
            return
        raise ValidationError(
            gettext(
                'prepaid_vending.msg_vend_cancel_policy',
                vend=self.number,
                policy=policy,
            )
        )

    def reverse_effects(self) -> None:
        "Undo the month position, the command and the recoveries of this vend"
        pool = Pool()
        Position = pool.get('prepaid.meter.month_position')
        Command = pool.get('prepaid.meter.command')
        Debt_ = pool.get('prepaid.debt')
        Emergency = pool.get('prepaid.emergency_credit')
        Account = pool.get('prepaid.remote.account')
        # First: it refuses (before anything is written) when the emergency
        # credit this vend delivered is already partly repaid.
        Emergency.cancel_issue(self)
        position = Position.get(self.meter, self.date.date().replace(day=1))
        if position.id is not None:
            if self.month_kwh_after is not None and self.month_kwh_before is not None:
                bought = self.month_kwh_after - self.month_kwh_before
            else:
                bought = self.units_kwh or ZERO
            position.kwh = max(position.kwh - bought, ZERO)
            if self.tender:
                position.vends = max(position.vends - 1, 0)
            if self.fbe_kwh:
                position.fbe_issued = False
            position.save()
        Command.write(
            [c for c in self.commands if c.state in {'pending', 'failed', 'rejected'}],
            {'state': 'cancelled', 'last_error': 'vend cancelled'},
        )
        Debt_.undo_vend(self)
        Emergency.undo_vend(self)
        if self.credit_amount:
            Account.debit_cancelled_vend(self)

    @classmethod
    def rpc_vend(
        cls,
        meter_serial: str,
        tender: str | None,
        payment_method: str,
        sales_point_code: str | None,
        idempotency_key: str,
        requested_kwh: str | None = None,
        channel: str | None = None,
    ) -> dict:
        """Back-office RPC entry point (model.prepaid.vend.rpc_vend): plain
        strings in, a plain dict out, for vending clients and the bench.

        The channel (and so the fee and the shift check) is the sales point's,
        or "api" without a sales point; a client may state it (older clients
        do) but not choose it.  Only money-bringing methods are accepted.
        The tender and kWh are decimal strings in plain notation ("150.50"),
        read by ``amounts.parse_amount`` like every other amount.
        """
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        SalesPoint = pool.get("prepaid.sales_point")
        for name, value in (
            ("meter_serial", meter_serial),
            ("payment_method", payment_method),
            ("idempotency_key", idempotency_key),
        ):
            if not isinstance(value, str) or not value:
                raise VendError(
                    gettext("prepaid_vending.msg_vend_rpc_argument", name=name)
                )
        if payment_method not in dict(COUNTED_METHODS):
            raise VendError(
                gettext(
                    "prepaid_vending.msg_vend_payment_method", method=payment_method
                )
            )
        tender_value = cls._parse_decimal(tender, "tender")
        kwh_value = cls._parse_decimal(requested_kwh, "kWh")
        with without_check_access():
            meter = Meter.__table__()
            meter_id = vend_write.scalar(
                meter.select(
                    meter.id,
                    where=(meter.serial == meter_serial) & (meter.active == True),  # noqa: E712
                    limit=1,
                )
            )
            sales_points = (
                SalesPoint.search([("code", "=", sales_point_code)], limit=1)
                if sales_point_code
                else []
            )
        if meter_id is None:
            raise VendError(
                gettext("prepaid_vending.msg_vend_unknown_meter", meter=meter_serial)
            )
        if sales_point_code and not sales_points:
            raise VendError(
                gettext(
                    "prepaid_vending.msg_vend_unknown_sales_point",
                    code=sales_point_code,
                )
            )
        sales_point = sales_points[0] if sales_points else None
        derived = (sales_point.channel if sales_point else None) or "api"
        if channel not in (None, "", derived):
            raise VendError(
                gettext(
                    "prepaid_vending.msg_vend_rpc_channel",
                    channel=channel,
                    derived=derived,
                )
            )
        if not cls.needs_shift(derived, payment_method):
            # No shift will count this sale: only an API terminal sells so.
            # Bad input is told first: it says nothing about anyone's vends.
            cls._check_api_terminal(tender_value, kwh_value, sales_point)
        vend = cls.vend(
            Meter(meter_id),
            tender_value,
            payment_method,
            sales_point,
            idempotency_key,
            requested_kwh=kwh_value,
            channel=derived,
        )
        # The requester's own vend (checked by _check_retry): answered whatever
        # its read access (an API terminal reads no vend from the client).
        with without_check_access():
            vend = cls(vend.id)
            return {
                "number": vend.number,
                "tender": str(vend.tender),
                "units_kwh": str(vend.units_kwh),
                "tokens": [t.token for t in vend.tokens],
            }

    @classmethod
    def _parse_decimal(cls, text, what: str) -> Decimal | None:
        "A decimal string from a client, or a VendError saying what is wrong"
        return parse_amount(text, what, error=VendError)

    # ----------------------------------------------------------------- misc
    @classmethod
    def last_vends(cls, meter, count: int = 5):
        return cls.search([('meter', '=', meter.id)], limit=count)

    @classmethod
    def post_moves(cls, before: dt.date | None = None) -> int:
        "Cron: post the draft vend moves of the days before (API channels)"
        Move = Pool().get('account.move')
        before = before or dt.date.today()
        moves = Move.search(
            [
                ('origin', 'like', 'prepaid.vend,%'),
                ('state', '=', 'draft'),
                ('date', '<', before),
            ]
        )
        accounting.post_draft_moves(moves)
        return len(moves)

    @classmethod
    def check_modification(cls, mode, vends, values=None, external=False):
        super().check_modification(mode, vends, values=values, external=external)
        # Not even the code deletes a vend: it is cancelled (a client may
        # neither write nor create one: AppendOnlyMixin; the pipeline and the
        # cancellation write with access checks off).
        if mode == 'delete':
            raise AccessError(gettext('prepaid_vending.msg_vend_delete'))


class VendLine(AppendOnlyMixin, ModelSQL, ModelView):
    "Vend Line: one deduction or one block of energy, with its VAT"

    __name__ = 'prepaid.vend.line'

    vend = fields.Many2One('prepaid.vend', "Vend", required=True, ondelete='CASCADE')
    sequence = fields.Integer("Sequence")
    kind = fields.Selection(LINE_KINDS, "Kind", required=True)
    description = fields.Char("Description", size=255, required=True)
    block = fields.Integer("Block")
    kwh = fields.Numeric("kWh", digits=(16, 1))
    price = fields.Numeric("Price", digits=(16, 4))
    amount = fields.Numeric("Amount excl. VAT", digits=(16, 2), required=True)
    vat = fields.Numeric("VAT", digits=(16, 2), required=True)
    account = fields.Many2One('account.account', "Account")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('vend')
        cls._order.insert(0, ('sequence', 'ASC'))

    @property
    def gross(self) -> Decimal:
        return self.amount + self.vat


class VendToken(AppendOnlyMixin, ModelSQL, ModelView):
    "Token issued by a vend"

    __name__ = 'prepaid.vend.token'

    vend = fields.Many2One('prepaid.vend', "Vend", required=True, ondelete='CASCADE')
    sequence = fields.Integer("Sequence")
    kind = fields.Selection(TOKEN_KINDS, "Kind", required=True)
    token = fields.Char("Token", size=20, required=True)
    units = fields.Numeric("Units", digits=(16, 1))
    description = fields.Char("Description", size=255)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('vend')
        cls._order.insert(0, ('sequence', 'ASC'))

    @classmethod
    def validate_fields(cls, tokens, field_names):
        super().validate_fields(tokens, field_names)
        cls.check_digits(tokens)

    @classmethod
    def check_digits(cls, tokens):
        for token in tokens:
            if not (token.token and len(token.token) == 20 and token.token.isdigit()):
                raise ValidationError(
                    gettext('prepaid_vending.msg_token_digits', token=token.token)
                )

    @property
    def grouped(self) -> str:
        "The token in groups of four digits, as printed and keyed in"
        return ' '.join(
            self.token[i : i + 4] for i in range(0, len(self.token or ''), 4)
        )

    @classmethod
    def check_modification(cls, mode, tokens, values=None, external=False):
        super().check_modification(mode, tokens, values=values, external=external)
        # Not even the code changes an issued token.
        if mode in {'write', 'delete'}:
            raise AccessError(gettext('prepaid_vending.msg_token_immutable'))


class CancelStart(ModelView):
    "Cancel Vend"

    __name__ = 'prepaid.vend.cancel.start'

    reason = fields.Char("Reason", required=True)


class CancelVend(Wizard):
    "Cancel Vend"

    __name__ = 'prepaid.vend.cancel'

    start = StateView(
        'prepaid.vend.cancel.start',
        'prepaid_vending.vend_cancel_start_view_form',
        [
            Button("Close", 'end', 'tryton-cancel'),
            Button("Cancel Vend", 'cancel', 'tryton-ok', default=True),
        ],
    )
    cancel = StateTransition()

    def transition_cancel(self):
        # Second line: the context cannot widen the groups checked here.
        require_wizard_groups(self.__name__)
        self.model.cancel_vends(list(self.records), self.start.reason)
        return 'end'
