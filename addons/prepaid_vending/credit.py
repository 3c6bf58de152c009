"""Credit management: customer debt with recovery plans, emergency credit and
friendly periods (when no customer is disconnected)."""

import datetime as dt
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Workflow, fields
from trytond.model.exceptions import AccessError, ValidationError
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.tools.timezone import get_tzinfo
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from . import accounting, fastpath
from .access import require_wizard_groups
from .append_only import AppendOnlyMixin
from .company import CompanyMixin
from .ledger import line_balances
from .tariff import Debt as CalculatorDebt
from .vend_pipeline import EMERGENCY_CONTEXT

ZERO = Decimal(0)

#: Context key of a caller whose own move books the receivable of the debts it
#: opens (see Debt.open_booked).  Keys starting with "_" are stripped from RPC
#: contexts, so a client cannot use it to raise a debt outside the books.
BOOKED_CONTEXT = '_prepaid_debt_booked'

#: What a debt is for -> the configuration field of the account credited when
#: it is raised (accounting.debt_raise_move).
DEBT_CATEGORIES = [
    ('arrears', "Arrears Taken Over"),
    ('penalty', "Penalty"),
]


def _is_manager() -> bool:
    pool = Pool()
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    if not Transaction().user:  # root (cron, scripts)
        return True
    manager = ModelData.get_id('prepaid_vending', 'group_manager')
    return manager in [g.id for g in User(Transaction().user).groups]


class Debt(CompanyMixin, Workflow, ModelSQL, ModelView):
    "Customer Debt: arrears recovered by a percentage of each vend"

    __name__ = 'prepaid.debt'

    party = fields.Many2One(
        'party.party',
        "Customer",
        required=True,
        ondelete='RESTRICT',
        states={'readonly': Eval('state') != 'draft'},
    )
    description = fields.Char("Description", size=255, required=True)
    category = fields.Selection(
        DEBT_CATEGORIES,
        "Category",
        required=True,
        states={'readonly': Eval('state') != 'draft'},
        help="Chooses the account credited when the debt is raised: arrears "
        "taken over from a legacy system go to a suspense account the "
        "accountant clears, penalties to revenue.",
    )
    date = fields.Date("Date", required=True)
    amount = fields.Numeric(
        "Original Amount",
        digits=(16, 2),
        required=True,
        states={'readonly': Eval('state') != 'draft'},
    )
    recovery_percent = fields.Numeric(
        "Recovery (% of tender)", digits=(5, 2), required=True
    )
    min_per_vend = fields.Numeric("Minimum per Vend", digits=(16, 2))
    max_per_vend = fields.Numeric("Maximum per Vend", digits=(16, 2))
    lines = fields.One2Many('prepaid.debt.line', 'debt', "History", readonly=True)
    balance = fields.Function(fields.Numeric("Balance", digits=(16, 2)), 'get_balance')
    state = fields.Selection(
        [
            ('draft', "Draft"),
            ('open', "Open"),
            ('paid', "Paid"),
            ('written_off', "Written Off"),
        ],
        "State",
        required=True,
        readonly=True,
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('date', 'ASC'))
        cls._transitions |= {
            ('draft', 'open'),
            ('open', 'paid'),
            ('open', 'written_off'),
            ('paid', 'open'),
        }
        cls._buttons.update(
            {
                'open': {'invisible': Eval('state') != 'draft'},
                'write_off_wizard': {'invisible': Eval('state') != 'open'},
            }
        )

    @staticmethod
    def default_state():
        return 'draft'

    @staticmethod
    def default_category():
        return 'arrears'

    @staticmethod
    def default_date():
        return dt.date.today()

    @staticmethod
    def default_recovery_percent():
        return Decimal(25)

    @classmethod
    def validate_fields(cls, debts, field_names):
        super().validate_fields(debts, field_names)
        for debt in debts:
            if debt.amount is not None and debt.amount <= 0:
                raise ValidationError(
                    gettext('prepaid_vending.msg_debt_amount_positive')
                )
            if not 0 <= (debt.recovery_percent or 0) <= 100:
                raise ValidationError(gettext('prepaid_vending.msg_debt_percent'))
            if (
                debt.min_per_vend is not None
                and debt.max_per_vend is not None
                and debt.min_per_vend > debt.max_per_vend
            ):
                raise ValidationError(gettext('prepaid_vending.msg_debt_min_max'))

    @classmethod
    def get_balance(cls, debts, name):
        Line = Pool().get('prepaid.debt.line')
        return line_balances(Line, 'debt', [r.id for r in debts])

    @classmethod
    @ModelView.button
    @Workflow.transition('open')
    def open(cls, debts):
        """Raise the debts: the charge line of the ledger and, in the same
        transaction, the posted move Dr debt receivable / Cr the counter
        account of the category.  A debt re-opened (paid -> open) is already
        raised: no second charge, no second move."""
        pool = Pool()
        Line = pool.get('prepaid.debt.line')
        raising = [d for d in debts if not d.lines]
        moves = []
        if not Transaction().context.get(BOOKED_CONTEXT):
            today = pool.get('ir.date').today()
            # Built before the ledger is written: a missing account or period
            # refuses the debt with nothing written.
            moves = [accounting.debt_raise_move(d, d.amount, today) for d in raising]
        lines = [
            Line(debt=d, kind='charge', amount=d.amount, description=d.description)
            for d in raising
        ]
        # The ledger is an audit trail no client writes: the line follows
        # from opening the debt, which the access rules allowed.
        with without_check_access():
            Line.save(lines)
        for move, line in zip(moves, lines):
            move.origin = line
        accounting.post_adjustments(moves)

    @classmethod
    def open_booked(cls, debts):
        """Open debts whose receivable the caller's own move books: the
        customer change turning an overdrawn balance into debt (Dr receivable
        / Cr prepayment) or handing debts to the incoming customer (Dr its
        receivable / Cr the outgoing one's).  Booking them again at opening
        would count them twice."""
        with Transaction().set_context({BOOKED_CONTEXT: True}):
            cls.open(debts)

    @classmethod
    def open_debts(cls, party, company) -> list:
        """The party's open debts owed to company (a customer may buy from
        several utilities of the installation: each recovers its own), oldest
        first; asked by every vend (ids by one query, no ORM search)"""
        table = cls.__table__()
        return cls.browse(
            fastpath.ids(
                table.select(
                    table.id,
                    where=(table.party == party.id)
                    & (table.company == company.id)
                    & (table.state == 'open'),
                    order_by=[table.date.asc, table.id.asc],
                )
            )
        )

    @classmethod
    def to_calculator(cls, debts) -> CalculatorDebt | None:
        """All open debts of a customer as one recovery plan: the balances add up
        and the strictest plan (highest percentage) applies."""
        debts = [d for d in debts if d.balance > 0]
        if not debts:
            return None
        mins = [d.min_per_vend for d in debts if d.min_per_vend is not None]
        maxs = [d.max_per_vend for d in debts if d.max_per_vend is not None]
        return CalculatorDebt(
            balance=sum((d.balance for d in debts), ZERO),
            recovery_percent=max(d.recovery_percent for d in debts),
            min_per_vend=max(mins) if mins else None,
            max_per_vend=sum(maxs, ZERO) if len(maxs) == len(debts) else None,
        )

    @classmethod
    def recover(cls, debts, amount: Decimal, vend) -> None:
        "Book amount recovered by vend on the debts, oldest first"
        Line = Pool().get('prepaid.debt.line')
        lines, paid = [], []
        for debt in debts:
            if amount <= 0:
                break
            take = min(amount, debt.balance)
            if take <= 0:
                continue
            lines.append(
                Line(
                    debt=debt,
                    kind='recovery',
                    amount=-take,
                    vend=vend,
                    description=f"Vend {vend.number}",
                )
            )
            amount -= take
            if take == debt.balance:
                paid.append(debt)
        Line.save(lines)
        if paid:
            cls.paid(paid)

    @classmethod
    def pay(cls, debts, amount: Decimal, description: str) -> list:
        """A payment of amount towards debts without a vend (a vendor's
        account payment): the history lines that reduce them, oldest debt
        first, each debt brought to zero marked paid.  The caller books the
        money and checked that the user may take it; the amount must be
        positive and at most what the debts owe (nothing written otherwise)."""
        Line = Pool().get('prepaid.debt.line')
        if not isinstance(amount, Decimal) or amount <= 0:
            raise ValidationError(gettext('prepaid_vending.msg_debt_payment_positive'))
        debts = [d for d in debts if d.state == 'open' and d.balance > 0]
        owed = sum((d.balance for d in debts), ZERO)
        if amount > owed:
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_debt_payment_above_balance',
                    amount=amount,
                    balance=owed,
                )
            )
        lines, paid = [], []
        for debt in debts:
            if amount <= 0:
                break
            take = min(amount, debt.balance)
            lines.append(
                Line(debt=debt, kind='payment', amount=-take, description=description)
            )
            amount -= take
            if take == debt.balance:
                paid.append(debt)
        Line.save(lines)
        if paid:
            cls.paid(paid)
        return lines

    @classmethod
    @Workflow.transition('paid')
    def paid(cls, debts):
        pass

    @classmethod
    def undo_vend(cls, vend) -> None:
        "A cancelled vend gives its recovery back to the debt"
        Line = Pool().get('prepaid.debt.line')
        recovered = Line.search([('vend', '=', vend.id), ('kind', '=', 'recovery')])
        Line.save(
            [
                Line(
                    debt=line.debt,
                    kind='adjustment',
                    amount=-line.amount,
                    vend=vend,
                    description=f"Cancelled vend {vend.number}",
                )
                for line in recovered
            ]
        )
        reopen = [line.debt for line in recovered if line.debt.state == 'paid']
        if reopen:
            cls.write(reopen, {'state': 'open'})

    @classmethod
    @ModelView.button_action('prepaid_vending.wizard_debt_write_off')
    def write_off_wizard(cls, debts):
        pass

    @classmethod
    def write_off(cls, debts, reason: str) -> None:
        """Only a Vending Manager writes a debt off, with a reason kept in
        history; the balance goes from the debt receivable to bad debts."""
        if not _is_manager():
            raise AccessError(gettext('prepaid_vending.msg_debt_write_off_manager'))
        reason = (reason or '').strip()
        if not reason:
            raise ValidationError(gettext('prepaid_vending.msg_debt_write_off_reason'))
        # Checked above: the history line is written by no staff group
        # directly (it is an audit trail), so the writes bypass access.
        with without_check_access():
            cls._write_off_balances(debts, reason)

    @classmethod
    def _write_off_balances(cls, debts, reason: str) -> None:
        Line = Pool().get('prepaid.debt.line')
        for debt in debts:
            if debt.state != 'open':
                raise ValidationError(
                    gettext(
                        'prepaid_vending.msg_debt_write_off_state', debt=debt.rec_name
                    )
                )
        today = Pool().get('ir.date').today()
        balances = [(d, d.balance) for d in debts if d.balance]
        # Built before the history line: a missing account refuses the
        # write-off with nothing written.
        moves = [accounting.write_off_move(d, b, today) for d, b in balances]
        lines = [
            Line(debt=d, kind='write_off', amount=-b, description=reason)
            for d, b in balances
        ]
        Line.save(lines)
        for move, line in zip(moves, lines):
            move.origin = line
        accounting.post_adjustments(moves)
        cls._written_off(debts)

    @classmethod
    @Workflow.transition('written_off')
    def _written_off(cls, debts):
        pass


class DebtLine(AppendOnlyMixin, ModelSQL, ModelView):
    "Debt history: positive amounts raise the debt, negative ones reduce it"

    __name__ = 'prepaid.debt.line'

    debt = fields.Many2One('prepaid.debt', "Debt", required=True, ondelete='CASCADE')
    date = fields.Timestamp("Date", required=True)
    kind = fields.Selection(
        [
            ('charge', "Debt Raised"),
            ('recovery', "Recovered by Vend"),
            ('payment', "Paid"),
            ('write_off', "Written Off"),
            ('adjustment', "Adjustment"),
            ('transfer', "Transfer"),
        ],
        "Kind",
        required=True,
    )
    amount = fields.Numeric("Amount", digits=(16, 2), required=True)
    description = fields.Char("Description", size=255)
    vend = fields.Many2One('prepaid.vend', "Vend", ondelete='RESTRICT')
    user = fields.Many2One('res.user', "User")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('debt')
        cls._order.insert(0, ('date', 'ASC'))

    @staticmethod
    def default_date():
        return dt.datetime.now()

    @staticmethod
    def default_user():
        return Transaction().user

    @classmethod
    def check_modification(cls, mode, lines, values=None, external=False):
        super().check_modification(mode, lines, values=values, external=external)
        if mode in {'write', 'delete'} and external:
            raise AccessError(gettext('prepaid_vending.msg_debt_history_immutable'))
        if mode == 'create' and external and any(ln.kind == 'payment' for ln in lines):
            # A payment line says money was taken: only Debt.pay, with the
            # money's booking, writes one.
            raise AccessError(gettext('prepaid_vending.msg_debt_payment_by_hand'))


class DebtWriteOffStart(ModelView):
    "Write Off Debt"

    __name__ = 'prepaid.debt.write_off.start'

    debts = fields.Many2Many('prepaid.debt', None, None, "Debts", readonly=True)
    balance = fields.Numeric(
        "Balance to Write Off",
        digits=(16, 2),
        readonly=True,
        help="Charged to bad debts and cleared from the customer's receivable.",
    )
    reason = fields.Char("Reason", required=True, help="Kept in the debt history.")


class DebtWriteOff(Wizard):
    """Write Off Debt: a Vending Manager gives the reason, sees the balance
    and confirms (Debt.write_off checks the group again: the wizard is only
    the form)."""

    __name__ = 'prepaid.debt.write_off'

    start = StateView(
        'prepaid.debt.write_off.start',
        'prepaid_vending.debt_write_off_start_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Write Off", 'write_off', 'tryton-ok', default=True),
        ],
    )
    write_off = StateTransition()

    def default_start(self, fields):
        debts = list(self.records)
        return {
            'debts': [d.id for d in debts],
            'balance': sum((d.balance for d in debts), ZERO),
        }

    def transition_write_off(self):
        # Second line: the context cannot widen the groups checked here.
        require_wizard_groups(self.__name__)
        self.model.write_off(list(self.records), self.start.reason)
        return 'end'


class EmergencyCredit(CompanyMixin, ModelSQL, ModelView):
    """Credit advanced to a customer who ran out; it is repaid first, automatically,
    by the next vends."""

    __name__ = 'prepaid.emergency_credit'
    _company_links = ('meter',)

    meter = fields.Many2One(
        'prepaid.meter', "Meter", required=True, ondelete='RESTRICT'
    )
    party = fields.Many2One('party.party', "Customer", ondelete='RESTRICT')
    date = fields.Timestamp("Date", required=True)
    amount = fields.Numeric("Amount", digits=(16, 2), required=True)
    repaid = fields.Numeric("Repaid", digits=(16, 2), required=True)
    vend = fields.Many2One(
        'prepaid.vend',
        "Issue Vend",
        ondelete='RESTRICT',
        help="The vend that delivered the credit (token meters).",
    )
    repayments = fields.Char("Repaid by Vends", readonly=True)
    repayment_lines = fields.One2Many(
        'prepaid.emergency_credit.repayment', 'credit', "Repayments", readonly=True
    )
    state = fields.Selection(
        [
            ('open', "Open"),
            ('repaid', "Repaid"),
            ('cancelled', "Cancelled"),
        ],
        "State",
        required=True,
        readonly=True,
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # No __access__ on the meter: Tryton would grant the wider of both
        # accesses, so every group that may write meters (the Vending
        # Operator too) could write these.  Their own access records decide.
        cls._order.insert(0, ('date', 'ASC'))

    @staticmethod
    def default_repaid():
        return ZERO

    @staticmethod
    def default_state():
        return 'open'

    @staticmethod
    def default_date():
        return dt.datetime.now()

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.repaid

    @classmethod
    def open_credits(cls, meter) -> list:
        "Oldest first; asked by every vend (ids by one query, no ORM search)"
        table = cls.__table__()
        return cls.browse(
            fastpath.ids(
                table.select(
                    table.id,
                    where=(table.meter == meter.id) & (table.state == 'open'),
                    order_by=[table.date.asc, table.id.asc],
                )
            )
        )

    @classmethod
    def check_eligible(cls, meter) -> Decimal:
        "The amount meter may receive now, or a clear error saying why not"
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        Vend = pool.get('prepaid.vend')
        config = Configuration(1)
        if not config.emergency_credit_amount:
            raise ValidationError(gettext('prepaid_vending.msg_emergency_disabled'))
        if cls.open_credits(meter):
            raise ValidationError(
                gettext('prepaid_vending.msg_emergency_outstanding', meter=meter.serial)
            )
        paid = Vend.search_count(
            [
                ('meter', '=', meter.id),
                ('state', '=', 'issued'),
                ('payment_method', '!=', 'emergency'),
            ]
        )
        needed = config.emergency_credit_min_vends or 0
        if paid < needed:
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_emergency_not_eligible',
                    meter=meter.serial,
                    vends=paid,
                    needed=needed,
                )
            )
        return config.emergency_credit_amount

    @classmethod
    def issue(cls, meter, idempotency_key: str, sales_point=None):
        """Advance emergency credit: a vend paid by the emergency receivable
        (tokens for keypad meters, account credit for remote-prepaid ones)."""
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        amount = cls.check_eligible(meter)
        # The only way to sell with the "emergency" method: the vend refuses it
        # without this server-side context key (RPC strips "_" keys).
        with Transaction().set_context({EMERGENCY_CONTEXT: True}):
            vend = Vend.vend(
                meter, amount, 'emergency', sales_point, idempotency_key, channel='api'
            )
        credit = cls(
            company=meter.company,
            meter=meter,
            party=meter.customer,
            amount=amount,
            vend=vend,
        )
        with without_check_access():
            credit.save()
        return credit

    @classmethod
    def repay(cls, credits, amount: Decimal, vend) -> None:
        Repayment = Pool().get('prepaid.emergency_credit.repayment')
        repayments = []
        for credit in credits:
            if amount <= 0:
                break
            take = min(amount, credit.outstanding)
            if take <= 0:
                continue
            credit.repaid += take
            amount -= take
            credit.repayments = ' '.join(filter(None, [credit.repayments, vend.number]))
            repayments.append(Repayment(credit=credit, vend=vend, amount=take))
            if credit.repaid >= credit.amount:
                credit.state = 'repaid'
        cls.save(credits)
        Repayment.save(repayments)

    @classmethod
    def undo_vend(cls, vend) -> None:
        """A cancelled vend gives its repayments back: matched on the vend
        link (a text search for R00000001 would also hit R00000010)."""
        Repayment = Pool().get('prepaid.emergency_credit.repayment')
        repayments = Repayment.search(
            [('vend', '=', vend.id), ('cancelled', '!=', True)]
        )
        credits = []
        for repayment in repayments:
            credit = repayment.credit
            credit.repaid -= repayment.amount
            credit.state = 'open'
            credit.repayments = ' '.join(
                n for n in (credit.repayments or '').split() if n != vend.number
            )
            credits.append(credit)
        cls.save(credits)
        if repayments:
            Repayment.write(repayments, {"cancelled": True})

    @classmethod
    def cancel_issue(cls, vend) -> None:
        """Cancelling the vend that delivered emergency credit cancels the
        credit, unless later vends already repaid part of it."""
        credits = cls.search([('vend', '=', vend.id), ('state', '!=', 'cancelled')])
        for credit in credits:
            if credit.repaid:
                raise ValidationError(
                    gettext(
                        'prepaid_vending.msg_emergency_cancel_repaid',
                        vend=vend.number,
                        repayments=credit.repayments or '',
                    )
                )
        if credits:
            cls.write(credits, {'state': 'cancelled'})


class EmergencyCreditRepayment(AppendOnlyMixin, ModelSQL, ModelView):
    """Part of an emergency credit repaid by a vend: written by the vend
    pipeline and its cancellation only (append-only)"""

    __name__ = 'prepaid.emergency_credit.repayment'

    credit = fields.Many2One(
        'prepaid.emergency_credit',
        "Emergency Credit",
        required=True,
        readonly=True,
        ondelete='CASCADE',
    )
    vend = fields.Many2One(
        'prepaid.vend', "Vend", required=True, readonly=True, ondelete='RESTRICT'
    )
    amount = fields.Numeric("Amount", digits=(16, 2), required=True, readonly=True)
    cancelled = fields.Boolean(
        "Cancelled", readonly=True, help="The vend was cancelled: given back."
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('credit')


WEEKDAY_FIELDS = (
    'monday',
    'tuesday',
    'wednesday',
    'thursday',
    'friday',
    'saturday',
    'sunday',
)


def wall_clock(moment: dt.datetime) -> dt.datetime:
    """Tryton's naive UTC timestamp -> the naive wall-clock time of the
    company in the context (its timezone; UTC when it has none).  Friendly
    hours, holidays and load-limit periods are written in local time; trytond
    runs its processes in UTC."""
    company_id = Transaction().context.get('company')
    zone = Pool().get('company.company')(company_id).timezone if company_id else None
    if not zone:
        return moment
    local = moment.replace(tzinfo=dt.UTC).astimezone(get_tzinfo(zone))
    return local.replace(tzinfo=None)


class FriendlyCalendar(ModelSQL, ModelView):
    """Friendly periods: times when a customer out of credit is not disconnected
    (night hours, weekends, holidays)."""

    __name__ = 'prepaid.friendly.calendar'

    name = fields.Char("Name", size=128, required=True)
    daily_start = fields.Time(
        "Daily Friendly From", help="e.g. 17:00; may be later than the end."
    )
    daily_end = fields.Time("Daily Friendly Until", help="e.g. 08:00")
    monday = fields.Boolean("Monday")
    tuesday = fields.Boolean("Tuesday")
    wednesday = fields.Boolean("Wednesday")
    thursday = fields.Boolean("Thursday")
    friday = fields.Boolean("Friday")
    saturday = fields.Boolean("Saturday")
    sunday = fields.Boolean("Sunday")
    special_days = fields.One2Many(
        'prepaid.friendly.calendar.day', 'calendar', "Holidays"
    )

    @staticmethod
    def default_saturday():
        return True

    @staticmethod
    def default_sunday():
        return True

    def is_friendly(self, moment: dt.datetime) -> bool:
        """True when moment (local time, see :func:`wall_clock`) is in a
        friendly period: a whole friendly weekday, a holiday, or the daily
        window (which may wrap midnight, e.g. 17:00-08:00)."""
        day = moment.date()
        if getattr(self, WEEKDAY_FIELDS[day.weekday()]):
            return True
        for special in self.special_days:
            if special.matches(day):
                return True
        start, end = self.daily_start, self.daily_end
        if start is None or end is None or start == end:
            return False
        now = moment.time()
        if start < end:
            return start <= now < end
        return now >= start or now < end


class FriendlyDay(ModelSQL, ModelView):
    "Holiday of a friendly calendar: one date, or every year on a month/day"

    __name__ = 'prepaid.friendly.calendar.day'

    calendar = fields.Many2One(
        'prepaid.friendly.calendar', "Calendar", required=True, ondelete='CASCADE'
    )
    name = fields.Char("Name", size=128)
    date = fields.Date("Date")
    month = fields.Integer("Month (yearly)")
    day = fields.Integer("Day (yearly)")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('calendar')

    @classmethod
    def validate_fields(cls, days, field_names):
        super().validate_fields(days, field_names)
        for day in days:
            if day.date is None:
                try:
                    dt.date(2000, day.month or 0, day.day or 0)
                except ValueError as exc:
                    raise ValidationError(
                        gettext('prepaid_vending.msg_friendly_day_invalid')
                    ) from exc

    def matches(self, day: dt.date) -> bool:
        if self.date:
            return self.date == day
        return (self.month, self.day) == (day.month, day.day)
