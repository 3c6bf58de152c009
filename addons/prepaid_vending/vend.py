"""The vend and its records: the sale (``prepaid.vend``), its lines, its tokens
and the monthly position of each meter that the next sale prices from.

The models only hold what a sale wrote.  The sale itself (check, lock, price,
write, tokens) is vend_pipeline.py, which ``Vend.vend`` and ``Vend.trial``
call; the rows a sale locks are locking.py; the RPC entry point is
vend_rpc.py and the cancellation vend_cancel.py (both extend ``prepaid.vend``).

The hooks other modules extend are here: ``Vend.issue_credit_tokens`` (the
token engine: prepaid_sts) and ``Vend.after_issue`` (remote credit).
"""

import datetime as dt
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, Unique, Workflow, fields
from trytond.model.exceptions import AccessError, ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction

from . import vend_pipeline
from .append_only import AppendOnlyMixin
from .company import CompanyMixin
from .exceptions import VendError
from .tariff import VendQuote
from .tariff_model import CHANNELS

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


def as_date(value) -> dt.date | None:
    "SQLite returns dates as text"
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


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
        if rows and as_date(rows[0][1]) == month:
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
            # The lock in vend_pipeline.new_number makes the series gapless; this makes
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
        # The cancel button and transition: vend_cancel.py; rpc_vend:
        # vend_rpc.py.

    @staticmethod
    def default_state():
        return 'issued'

    def get_credited_kwh(self, name):
        credit = [t for t in self.tokens if t.kind in {'credit', 'fbe'}]
        if credit:
            return sum((t.units or ZERO for t in credit), ZERO)
        return (self.units_kwh or ZERO) + (self.fbe_kwh or ZERO)

    # ------------------------------------------------------------------ sale
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
        """Sell credit on meter (vend_pipeline.sell); returns the saved vend.

        A key already used with the same request returns its vend unchanged.
        Only selling staff may call it."""
        return vend_pipeline.sell(
            meter,
            tender,
            payment_method,
            sales_point,
            idempotency_key,
            requested_kwh=requested_kwh,
            channel=channel,
        )

    @classmethod
    def trial(
        cls, meter, tender=None, requested_kwh=None, channel='counter'
    ) -> VendQuote:
        "A quote without token, money or lock (XMLVend trialCreditVend)"
        return vend_pipeline.trial(
            meter, tender=tender, requested_kwh=requested_kwh, channel=channel
        )

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

    # ----------------------------------------------------------------- misc
    @classmethod
    def last_vends(cls, meter, count: int = 5):
        return cls.search([('meter', '=', meter.id)], limit=count)

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
