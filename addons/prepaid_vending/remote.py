"""Remote-prepaid accounts and the head-end command queue.

A remote-prepaid customer keeps a money balance in the system: vends add to it,
a billing job prices the consumption the head-end reports and deducts it.  Below
the credit limit, outside friendly periods and with the emergency credit used up,
the account gets a disconnect command; a top-up that restores the balance (or an
emergency credit) gets a reconnect command.  Commands are only *queued* here
(``prepaid.meter.command``); the head-end module executes them and moves them
through their states.

Period charges (monthly, yearly) are taken once per period per account, by
whichever comes first: the first paid vend of the period (the vend pipeline's
``first_vend_of_month`` / ``first_vend_of_year``) or the consumption bill.  The
bill records on itself which period charges it took (``monthly_charges``,
``yearly_charges``), so that later billing runs of the same month keep pricing
the month the same way, and a vend can ask :meth:`RemoteAccount.charges_billed`
whether a bill already took them.

Emergency credit on a remote-prepaid account is money advanced into the
balance by an emergency vend.  It is *used up* once the consumption billed
after it adds up to its amount (or it is repaid or cancelled); until then the
account keeps (or gets back) supply even below the credit limit: an advance
that only paid off an overdrawn balance would otherwise never give the
customer the energy it was for.
"""

import dataclasses
import datetime as dt
import json
import logging
from decimal import Decimal

from trytond import backend
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, Workflow, fields
from trytond.model.exceptions import AccessError, ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from . import accounting, fastpath, locking
from .append_only import AppendOnlyMixin
from .company import CompanyMixin
from .credit import wall_clock
from .ledger import line_balances
from .tariff import ChargePeriod, TariffError, bill_month
from .transactions import autonomous_for, run_committed
from .workflow_only import WorkflowOnlyMixin

fastpath.declare('prepaid_vending', 'prepaid.meter.command')
#: Commands are queued by the code of a sale, a payment, a meter change or a
#: head-end action, never created from a client (no create access): the
#: staff whose actions queue them (root: cron, queued tasks).
COMMAND_WRITE = fastpath.SystemWrite(
    'queued by sales, payments, meter changes and head-end actions',
    (
        'prepaid_vending.group_operator',
        'prepaid_vending.group_cashier',
        'prepaid_vending.group_engineer',
        'prepaid_vending.group_manager',
        'prepaid_vending.group_admin',
        'prepaid_vending.group_api_terminal',
    ),
)

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
COMMAND_KINDS = [
    ('remote_credit', "Remote Credit"),
    ('disconnect', "Disconnect"),
    ('reconnect', "Reconnect"),
    ('low_credit_warning', "Low-Credit Warning"),
]
#: Written only by MeterCommand.reconcile_undelivered.
RECONCILE_FIELDS = {
    'reconciled_undelivered',
    'reconciled_by',
    'reconciled_at',
    'reconciliation_reason',
    'reconciliation_method',
}
#: Who may confirm that a failed/rejected command did not credit the meter.
RECONCILE_GROUPS = ('group_manager', 'group_admin')
#: How the meter was read before confirming a command was not delivered.
RECONCILE_METHODS = [
    ('token_history', "Token history read on the meter (keypad / display)"),
    ('credit_register_site', "Credit register read at the meter"),
    ('credit_register_remote', "Credit register read remotely (head-end)"),
    ('meter_replaced', "Meter removed and read in the workshop"),
]
COMMAND_STATES = [
    ('pending', "Pending"),
    ('sent', "Sent"),
    ('accepted', "Accepted"),
    ('rejected', "Rejected"),
    ('failed', "Failed"),
    ('cancelled', "Cancelled"),
]


class MeterCommand(CompanyMixin, Workflow, ModelSQL, ModelView):
    "Command for the head-end: queued here, executed by the head-end module"

    __name__ = 'prepaid.meter.command'
    _company_links = ('meter',)

    meter = fields.Many2One(
        'prepaid.meter', "Meter", required=True, ondelete='RESTRICT'
    )
    kind = fields.Selection(COMMAND_KINDS, "Kind", required=True, readonly=True)
    state = fields.Selection(COMMAND_STATES, "State", required=True, readonly=True)
    payload = fields.Text("Payload (JSON)", readonly=True)
    attempts = fields.Integer("Attempts", required=True, readonly=True)
    last_error = fields.Text("Last Error", readonly=True)
    created_at = fields.Timestamp("Created", required=True, readonly=True)
    sent_at = fields.Timestamp("Sent", readonly=True)
    done_at = fields.Timestamp("Done", readonly=True)
    vend = fields.Many2One('prepaid.vend', "Vend", readonly=True, ondelete='RESTRICT')
    origin = fields.Reference("Origin", selection='get_origin', readonly=True)
    reconciled_undelivered = fields.Boolean(
        "Confirmed Not Delivered",
        readonly=True,
        help="A manager read the meter (token status, credit register) and "
        "confirmed that this failed or rejected command did not credit it.",
    )
    reconciled_by = fields.Many2One('res.user', "Confirmed By", readonly=True)
    reconciled_at = fields.Timestamp("Confirmed At", readonly=True)
    reconciliation_reason = fields.Text("Meter Reading Evidence", readonly=True)
    reconciliation_method = fields.Selection(
        [(None, "")] + RECONCILE_METHODS, "How the Meter Was Read", readonly=True
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('created_at', 'ASC'))
        # No __access__ on the meter: Tryton would grant the wider of both
        # accesses, so every group that may write meters (the Vending
        # Operator too) could write these.  Their own access records decide.
        cls._transitions |= {
            ('pending', 'sent'),
            ('pending', 'failed'),
            ('pending', 'cancelled'),
            ('sent', 'accepted'),
            ('sent', 'rejected'),
            ('sent', 'failed'),
            ('failed', 'pending'),
        }
        cls._buttons.update(
            {
                'reconcile_wizard': {
                    'invisible': (
                        ~Eval('state').in_(['failed', 'rejected'])
                        | Eval('reconciled_undelivered', False)
                    ),
                },
            }
        )

    @staticmethod
    def default_state():
        return 'pending'

    @staticmethod
    def default_attempts():
        return 0

    @staticmethod
    def default_created_at():
        return dt.datetime.now()

    @classmethod
    def get_origin(cls):
        Model = Pool().get('ir.model')
        models = ['prepaid.vend', 'prepaid.remote.account', 'prepaid.meter.command']
        return [(None, '')] + [(m, Model.get_name(m)) for m in models]

    @property
    def data(self) -> dict:
        return json.loads(self.payload) if self.payload else {}

    @classmethod
    def queue(cls, meter, kind: str, payload: dict, vend=None, origin=None):
        if kind not in dict(COMMAND_KINDS):
            raise ValidationError(
                gettext('prepaid_vending.msg_command_kind', kind=kind)
            )
        # Set-based (fastpath): every vend of a smart meter queues one, and
        # the ORM's create with its re-read and validation took ~8 ms.
        row = {
            # The meter's utility, whoever queues it (a cron has no company).
            'company': meter.company,
            'meter': meter,
            'kind': kind,
            'vend': vend,
            'origin': origin or vend,
            'payload': json.dumps(payload, sort_keys=True),
        }
        (command_id,) = fastpath.create(cls, [row], system=COMMAND_WRITE)
        return cls(command_id)

    @classmethod
    @Workflow.transition('sent')
    def mark_sent(cls, commands):
        for command in commands:
            command.attempts += 1
            command.sent_at = dt.datetime.now()
        cls.save(commands)

    @classmethod
    @Workflow.transition('accepted')
    def mark_accepted(cls, commands):
        Account = Pool().get('prepaid.remote.account')
        now = dt.datetime.now()
        for command in commands:
            command.done_at = now
        cls.save(commands)
        Account.command_done(commands)

    @classmethod
    def mark_rejected(cls, commands, error: str):
        cls.write(commands, {'last_error': error, 'done_at': dt.datetime.now()})
        cls._rejected(commands)

    @classmethod
    @Workflow.transition('rejected')
    def _rejected(cls, commands):
        pass

    @classmethod
    def mark_failed(cls, commands, error: str):
        cls.write(commands, {'last_error': error})
        cls._failed(commands)

    @classmethod
    @Workflow.transition('failed')
    def _failed(cls, commands):
        pass

    @classmethod
    @Workflow.transition('pending')
    def retry(cls, commands):
        pass

    @classmethod
    @ModelView.button_action('prepaid_vending.wizard_command_reconcile')
    def reconcile_wizard(cls, commands):
        pass

    @classmethod
    def reconcile_undelivered(
        cls, commands, reason: str, method: str | None = None
    ) -> None:
        """A Vending Manager (or Administrator) confirms, after reading the
        meter's token status or credit register, that failed/rejected commands
        did not credit it: only then may their vend be cancelled as
        undelivered.  ``method`` says how the meter was read
        (RECONCILE_METHODS; the wizard requires it)."""
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        user = Transaction().user
        if user:
            allowed = {ModelData.get_id('prepaid_vending', g) for g in RECONCILE_GROUPS}
            with without_check_access():
                if not allowed & {g.id for g in User(user).groups}:
                    raise AccessError(
                        gettext('prepaid_vending.msg_command_reconcile_group')
                    )
        if not reason or not reason.strip():
            raise ValidationError(
                gettext('prepaid_vending.msg_command_reconcile_reason')
            )
        if method is not None and method not in dict(RECONCILE_METHODS):
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_command_reconcile_method',
                    methods=', '.join(label for _, label in RECONCILE_METHODS),
                )
            )
        for command in commands:
            if command.state not in {'failed', 'rejected'}:
                raise ValidationError(
                    gettext(
                        'prepaid_vending.msg_command_reconcile_state',
                        command=command.id,
                        state=command.state,
                    )
                )
        with without_check_access():
            cls.write(
                list(commands),
                {
                    'reconciled_undelivered': True,
                    'reconciled_by': user or None,
                    'reconciled_at': dt.datetime.now(),
                    'reconciliation_reason': reason.strip(),
                    'reconciliation_method': method,
                },
            )

    @classmethod
    def check_modification(cls, mode, commands, values=None, external=False):
        super().check_modification(mode, commands, values=values, external=external)
        if external and mode == 'write' and set(values) & RECONCILE_FIELDS:
            raise AccessError(gettext('prepaid_vending.msg_command_reconcile_group'))


class ReconcileStart(ModelView):
    "Confirm that commands did not credit the meter"

    __name__ = 'prepaid.meter.command.reconcile.start'

    method = fields.Selection(
        RECONCILE_METHODS, "How the Meter Was Read", required=True
    )
    reason = fields.Text(
        "Meter Reading Evidence",
        required=True,
        help="What the meter showed: e.g. the last token IDs accepted, or the "
        "credit register before and after the command's time.",
    )


class Reconcile(Wizard):
    """Confirm failed/rejected commands as not delivered (Vending Manager or
    Administrator), so that their vend may be cancelled."""

    __name__ = 'prepaid.meter.command.reconcile'

    start = StateView(
        'prepaid.meter.command.reconcile.start',
        'prepaid_vending.meter_command_reconcile_start_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Confirm Not Delivered", 'confirm', 'tryton-ok', default=True),
        ],
    )
    confirm = StateTransition()

    def transition_confirm(self):
        Command = Pool().get('prepaid.meter.command')
        if not self.start.method:
            # The form requires it; an RPC caller may still omit it.
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_command_reconcile_method',
                    methods=', '.join(label for _, label in RECONCILE_METHODS),
                )
            )
        Command.reconcile_undelivered(
            self.records, self.start.reason, method=self.start.method
        )
        return 'end'


class RemoteAccount(CompanyMixin, ModelSQL, ModelView):
    "Remote-prepaid account: a money balance per meter"

    __name__ = 'prepaid.remote.account'
    _company_links = ('meter',)

    meter = fields.Many2One(
        'prepaid.meter',
        "Meter",
        required=True,
        ondelete='RESTRICT',
        domain=[('payment_mode', '=', 'remote_prepaid')],
    )
    party = fields.Many2One('party.party', "Customer", ondelete='RESTRICT')
    balance = fields.Function(fields.Numeric("Balance", digits=(16, 2)), 'get_balance')
    credit_limit = fields.Numeric(
        "Credit Limit",
        digits=(16, 2),
        required=True,
        help="Disconnect when the balance falls below this amount "
        "(0: at zero; negative: allow that much debt).",
    )
    connection = fields.Selection(
        [
            ('connected', "Connected"),
            ('disconnecting', "Disconnect Queued"),
            ('disconnected', "Disconnected"),
            ('reconnecting', "Reconnect Queued"),
        ],
        "Connection",
        required=True,
        readonly=True,
    )
    warned_below = fields.Numeric(
        "Last Warning Threshold", digits=(16, 2), readonly=True
    )
    lines = fields.One2Many(
        'prepaid.remote.account.line', 'account', "Movements", readonly=True
    )
    consumptions = fields.One2Many(
        'prepaid.remote.consumption', 'account', "Consumption", readonly=True
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'meter_unique',
                Unique(t, t.meter),
                'prepaid_vending.msg_remote_account_meter_unique',
            ),
        ]

    @staticmethod
    def default_credit_limit():
        return ZERO

    @staticmethod
    def default_connection():
        return 'connected'

    def get_rec_name(self, name):
        return self.meter.serial

    @classmethod
    def get_balance(cls, accounts, name):
        Line = Pool().get('prepaid.remote.account.line')
        return line_balances(Line, 'account', [r.id for r in accounts])

    @classmethod
    def for_meter(cls, meter, create: bool = True):
        accounts = cls.search([('meter', '=', meter.id)], limit=1)
        if accounts:
            return accounts[0]
        if not create:
            return None
        account = cls(company=meter.company, meter=meter, party=meter.customer)
        account.save()
        return account

    # ------------------------------------------------------------- money in
    @classmethod
    def credit_from_vend(cls, vend) -> None:
        Line = Pool().get('prepaid.remote.account.line')
        account = cls.for_meter(vend.meter)
        Line(
            account=account,
            kind='vend',
            amount=vend.credit_amount,
            vend=vend,
            description=f'Vend {vend.number}',
        ).save()
        account.after_balance_change(origin=vend)

    @classmethod
    def debit_cancelled_vend(cls, vend) -> None:
        Line = Pool().get('prepaid.remote.account.line')
        account = cls.for_meter(vend.meter)
        Line(
            account=account,
            kind='cancel',
            amount=-vend.credit_amount,
            vend=vend,
            description=f'Cancelled vend {vend.number}',
        ).save()
        account.after_balance_change(origin=vend)

    # --------------------------------------------------------- connection
    def emergency_credit_left(self) -> Decimal:
        """Emergency credit advanced into the balance and not yet consumed.

        An emergency vend's advance is used up by the consumption billed
        after it (bill lines created after its vend line); a repaid or
        cancelled emergency credit counts as used up.  The emergency credit
        record is saved by ``EmergencyCredit.issue`` only after its vend, so
        an emergency vend without one yet is the credit being issued now.
        """
        pool = Pool()
        Line = pool.get('prepaid.remote.account.line')
        Emergency = pool.get('prepaid.emergency_credit')
        advances = Line.search(
            [
                ('account', '=', self.id),
                ('kind', '=', 'vend'),
                ('vend.payment_method', '=', 'emergency'),
                ('vend.state', '!=', 'cancelled'),
            ],
            order=[('id', 'ASC')],
        )
        left = ZERO
        for advance in advances:
            credits = Emergency.search([('vend', '=', advance.vend.id)], limit=1)
            if credits and credits[0].state != 'open':
                continue
            billed = Line.search(
                [
                    ('account', '=', self.id),
                    ('kind', '=', 'bill'),
                    ('id', '>', advance.id),
                ]
            )
            used = -sum((b.amount for b in billed), ZERO)
            left += max(advance.amount - used, ZERO)
        return left

    def after_balance_change(self, now: dt.datetime | None = None, origin=None) -> None:
        """Queue disconnect/reconnect/warning commands for the new balance.

        Supply is due while the balance is at or above the credit limit, or
        while emergency credit is left (see :meth:`emergency_credit_left`).
        Otherwise the account is disconnected, outside friendly periods."""
        pool = Pool()
        Command = pool.get('prepaid.meter.command')
        Configuration = pool.get('prepaid.configuration')
        config = Configuration(1)
        now = now or dt.datetime.now()
        # Read the balance fresh: lines were just added in this transaction.
        balance = self.__class__(self.id).balance
        origin = origin or self
        crossed = [t for t in config.get_low_credit_thresholds() if balance < t]
        lowest = min(crossed) if crossed else None
        if lowest is None or (
            self.warned_below is not None and lowest > self.warned_below
        ):
            # Above every threshold, or topped up above the last warning:
            # re-arm the warnings below the new balance (no warning for a
            # balance that just went up).
            self.warned_below = lowest
        elif self.warned_below is None or lowest < self.warned_below:
            # Warn on the way down, before the balance reaches the limit.
            Command.queue(
                self.meter,
                'low_credit_warning',
                {'balance': str(balance), 'threshold': str(lowest)},
                origin=origin,
            )
            self.warned_below = lowest
        supply_due = balance >= self.credit_limit
        emergency = ZERO
        if not supply_due:
            emergency = self.emergency_credit_left()
            supply_due = emergency > 0
        if supply_due:
            if self.connection in {'disconnected', 'disconnecting'}:
                payload = {'balance': str(balance)}
                if emergency:
                    payload['emergency_credit'] = str(emergency)
                Command.queue(self.meter, 'reconnect', payload, origin=origin)
                self.connection = 'reconnecting'
        else:
            calendar = config.friendly_calendar
            friendly = calendar.is_friendly(wall_clock(now)) if calendar else False
            if self.connection in {'connected', 'reconnecting'} and not friendly:
                Command.queue(
                    self.meter,
                    'disconnect',
                    {'balance': str(balance), 'limit': str(self.credit_limit)},
                    origin=origin,
                )
                self.connection = 'disconnecting'
        self.save()

    @classmethod
    def command_done(cls, commands) -> None:
        for command in commands:
            if command.kind not in {'disconnect', 'reconnect'}:
                continue
            account = cls.for_meter(command.meter, create=False)
            if account:
                account.connection = (
                    'disconnected' if command.kind == 'disconnect' else 'connected'
                )
                account.save()

    @classmethod
    def check_disconnections(cls) -> None:
        "Cron: disconnect accounts whose friendly period ended while below limit"
        for account in cls.search([('connection', '=', 'connected')]):
            if account.balance < account.credit_limit:
                account.after_balance_change()

    # ------------------------------------------------------------- billing
    @classmethod
    def bill_all(cls) -> int:
        """Cron: bill every account, each in a transaction of its own
        committed at once (PostgreSQL), so that a vend on one meter at the
        same moment (a serialisation failure, retried on a fresh snapshot) or
        a tariff error on one account neither undoes nor stops the others.
        An account that still fails is logged and billed on the next run.
        Returns how many accounts failed."""
        failed = 0
        for account in cls.search([]):
            autonomous = autonomous_for(cls.__name__, [account.id])
            try:
                run_committed(cls._bill_id, account.id, autonomous=autonomous)
            except (UserError, backend.DatabaseOperationalError) as exc:
                if not autonomous:
                    raise  # the caller's transaction holds partial work
                failed += 1
                logger.warning("billing of %s failed: %s", account.rec_name, exc)
        return failed

    @classmethod
    def _bill_id(cls, account_id: int) -> int:
        return len(cls.bill([cls(account_id)]))

    @classmethod
    def bill(cls, accounts) -> list:
        """Price the unbilled consumption of accounts, month by month.

        Each month is priced as a whole (blocks on the month's kWh, TOU per
        interval, maximum demand, power factor) and the bills already issued for
        that month are subtracted, so billing daily or once gives the same total.
        """
        pool = Pool()
        Consumption = pool.get('prepaid.remote.consumption')
        bills = []
        for account in accounts:
            pending = Consumption.search(
                [('account', '=', account.id), ('bill', '=', None)]
            )
            months = sorted({c.start.date().replace(day=1) for c in pending})
            for month in months:
                bill = account.bill_month(month)
                if bill:
                    bills.append(bill)
            if months:
                account.after_balance_change()
        return bills

    def period_charges_due(self, month: dt.date) -> tuple[bool, bool]:
        """(monthly, yearly): whether the bill of ``month`` takes the period
        charges.  Once per period per account, whichever comes first: a bill
        of the month that took them keeps them (later runs of the month price
        it the same way); otherwise they are due unless a paid vend of the
        period took them (the vend's ``first_vend_of_*`` rule, read from the
        meter's month positions)."""
        pool = Pool()
        Bill = pool.get('prepaid.remote.bill')
        Position = pool.get('prepaid.meter.month_position')
        year_start = month.replace(month=1, day=1)
        year_end = month.replace(month=12, day=1)
        bills = Bill.search(
            [
                ('account', '=', self.id),
                ('month', '>=', year_start),
                ('month', '<=', year_end),
            ]
        )
        positions = Position.search(
            [
                ('meter', '=', self.meter.id),
                ('month', '>=', year_start),
                ('month', '<=', year_end),
                ('vends', '>', 0),
            ]
        )
        this_month = [b for b in bills if b.month == month]
        if any(b.monthly_charges for b in this_month):
            monthly = True
        else:
            monthly = not any(p.month == month for p in positions)
        yearly_bills = [b for b in bills if b.yearly_charges]
        if yearly_bills:
            yearly = any(b.month == month for b in yearly_bills)
        else:
            yearly = not positions
        return monthly, yearly

    @classmethod
    def charges_billed(cls, meter, date: dt.date) -> tuple[bool, bool]:
        """(monthly, yearly): whether a bill of the account of ``meter``
        already took the period charges of ``date``'s month / year, so that a
        vend must not take them again (for the vend pipeline)."""
        Bill = Pool().get('prepaid.remote.bill')
        account = cls.for_meter(meter, create=False)
        if account is None:
            return False, False
        month = date.replace(day=1)
        bills = Bill.search(
            [
                ('account', '=', account.id),
                ('month', '>=', month.replace(month=1)),
                ('month', '<=', month.replace(month=12)),
                ['OR', ('monthly_charges', '=', True), ('yearly_charges', '=', True)],
            ]
        )
        return (
            any(b.monthly_charges and b.month == month for b in bills),
            any(b.yearly_charges for b in bills),
        )

    def bill_month(self, month: dt.date):
        pool = Pool()
        Consumption = pool.get('prepaid.remote.consumption')
        Bill = pool.get('prepaid.remote.bill')
        Tariff = pool.get('prepaid.tariff')
        Line = pool.get('prepaid.remote.account.line')
        next_month = (month + dt.timedelta(days=32)).replace(day=1)
        rows = Consumption.search(
            [
                ('account', '=', self.id),
                ('start', '>=', dt.datetime.combine(month, dt.time())),
                ('start', '<', dt.datetime.combine(next_month, dt.time())),
            ],
            order=[('end', 'ASC')],
        )
        new = [r for r in rows if not r.bill]
        if not new:
            return None
        tariff = Tariff.for_meter(self.meter, month)
        version = tariff.version_at(month)
        locking.lock_meter_for_bill(self.meter)
        monthly, yearly = self.period_charges_due(month)
        calculator = version.to_calculator()
        periods = {c.period for c in calculator.charges}
        if not monthly:
            # A vend of the month took them (yearly ones: first_month_of_year).
            calculator = dataclasses.replace(
                calculator,
                charges=tuple(
                    c for c in calculator.charges if c.period != ChargePeriod.MONTHLY
                ),
            )
        kwh = sum((r.kwh for r in rows), ZERO)
        weighted = [(r.pf, r.kwh) for r in rows if r.pf is not None]
        pf = (
            sum((p * k for p, k in weighted), ZERO)
            / sum((k for _, k in weighted), ZERO)
            if weighted and sum((k for _, k in weighted), ZERO)
            else None
        )
        max_kw = max((r.max_kw for r in rows if r.max_kw is not None), default=ZERO)
        kwargs = {'first_month_of_year': yearly}
        if calculator.kind == 'tou':
            kwargs['profile'] = [(r.end, r.kwh) for r in rows]
        else:
            kwargs['kwh'] = kwh
        if calculator.demand_charge_per_kw is not None:
            kwargs['max_demand_kw'] = max_kw
        if calculator.power_factor_penalty is not None:
            kwargs['pf'] = (pf if pf is not None else Decimal(1)).quantize(
                Decimal('0.0001')
            )
        try:
            priced = bill_month(calculator, **kwargs)
        except TariffError as exc:
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_remote_bill_error',
                    account=self.rec_name,
                    error=str(exc),
                )
            ) from exc
        previous = Bill.search([('account', '=', self.id), ('month', '=', month)])
        amount = priced.amount - sum((b.amount for b in previous), ZERO)
        vat = priced.vat - sum((b.vat for b in previous), ZERO)
        bill = Bill(
            account=self,
            month=month,
            amount=amount,
            vat=vat,
            kwh=sum((r.kwh for r in new), ZERO),
            tariff_version=version,
            # Whether this month's bills take period charges (kept by the
            # later runs of the month; read by ``charges_billed``).
            monthly_charges=monthly and ChargePeriod.MONTHLY in periods,
            yearly_charges=yearly and ChargePeriod.YEARLY in periods,
            details='\n'.join(
                f'{line.description}: {line.quantity} {line.unit} '
                f'{line.amount} + VAT {line.vat}'
                for line in priced.lines
            ),
        )
        bill.save()
        with without_check_access():
            Consumption.write(new, {'bill': bill.id})
        Line(
            account=self,
            kind='bill',
            amount=-(amount + vat),
            bill=bill,
            description=f'Consumption {month:%Y-%m}',
        ).save()
        bill.create_move()
        return bill


class RemoteAccountLine(AppendOnlyMixin, ModelSQL, ModelView):
    "Movement of a remote-prepaid balance"

    __name__ = 'prepaid.remote.account.line'

    account = fields.Many2One(
        'prepaid.remote.account', "Account", required=True, ondelete='CASCADE'
    )
    date = fields.Timestamp("Date", required=True)
    kind = fields.Selection(
        [
            ('vend', "Vend"),
            ('bill', "Consumption"),
            ('cancel', "Cancelled Vend"),
            ('transfer', "Transfer"),
            ('adjustment', "Adjustment"),
        ],
        "Kind",
        required=True,
    )
    amount = fields.Numeric("Amount", digits=(16, 2), required=True)
    description = fields.Char("Description", size=255)
    vend = fields.Many2One('prepaid.vend', "Vend", ondelete='RESTRICT')
    bill = fields.Many2One('prepaid.remote.bill', "Bill", ondelete='RESTRICT')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('account')
        cls._order.insert(0, ('date', 'ASC'))

    @staticmethod
    def default_date():
        return dt.datetime.now()


class Consumption(WorkflowOnlyMixin, ModelSQL, ModelView):
    """Consumption reported by the head-end for one interval (input of billing)

    What remote billing charges from: the head-end feed creates the rows, and
    an engineer may enter a reading by hand (a client create of the interval
    and its values only, never its bill).  Once created, a row is changed only
    by billing (its bill) and deleted by no client (WorkflowOnlyMixin)."""

    __name__ = 'prepaid.remote.consumption'
    _workflow_state = None
    _client_create = frozenset({'account', 'start', 'end', 'kwh', 'max_kw', 'pf'})

    account = fields.Many2One(
        'prepaid.remote.account', "Account", required=True, ondelete='CASCADE'
    )
    start = fields.Timestamp("Start", required=True)
    end = fields.Timestamp("End", required=True)
    kwh = fields.Numeric("kWh", digits=(16, 3), required=True)
    max_kw = fields.Numeric("Maximum Demand (kW)", digits=(16, 3))
    pf = fields.Numeric("Power Factor", digits=(5, 4))
    bill = fields.Many2One(
        'prepaid.remote.bill', "Bill", readonly=True, ondelete='RESTRICT'
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # No __access__ on the account: Tryton would grant the wider of both
        # accesses, so every group that may write remote accounts (the
        # Vending Operator) could rewrite what a customer consumed.  Their
        # own access records decide.
        cls._order.insert(0, ('start', 'ASC'))

    @classmethod
    def validate_fields(cls, rows, field_names):
        super().validate_fields(rows, field_names)
        for row in rows:
            if (
                row.end <= row.start
                or row.kwh < 0
                or (row.pf is not None and not 0 <= row.pf <= 1)
            ):
                raise ValidationError(
                    gettext(
                        'prepaid_vending.msg_consumption_invalid',
                        start=row.start,
                        end=row.end,
                    )
                )


class RemoteBill(ModelSQL, ModelView):
    "Consumption bill of a remote-prepaid account (one billing run, one month)"

    __name__ = 'prepaid.remote.bill'

    account = fields.Many2One(
        'prepaid.remote.account', "Account", required=True, ondelete='RESTRICT'
    )
    month = fields.Date("Month", required=True)
    date = fields.Timestamp("Date", required=True)
    kwh = fields.Numeric("kWh", digits=(16, 3))
    amount = fields.Numeric("Amount excl. VAT", digits=(16, 2), required=True)
    vat = fields.Numeric("VAT", digits=(16, 2), required=True)
    tariff_version = fields.Many2One(
        'prepaid.tariff.version', "Tariff Version", ondelete='RESTRICT'
    )
    details = fields.Text("Details")
    move = fields.Many2One('account.move', "Move", readonly=True)
    monthly_charges = fields.Boolean(
        "Monthly Charges",
        readonly=True,
        help="The month's fixed charges are priced on this month's bills "
        "(no vend of the month took them first).",
    )
    yearly_charges = fields.Boolean(
        "Yearly Charges",
        readonly=True,
        help="The year's fixed charges are priced on this month's bills "
        "(no vend or earlier bill of the year took them first).",
    )

    # No __access__ on the account: Tryton would grant the wider of both
    # accesses, so every group that may write remote accounts (the Vending
    # Operator) could rewrite a bill.  Their own access records decide.

    @staticmethod
    def default_date():
        return dt.datetime.now()

    def create_move(self) -> None:
        "Dr customer prepayments / Cr energy revenue and VAT"
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        config = Configuration(1)
        if not (self.amount or self.vat):
            return
        sign = 1 if self.amount + self.vat >= 0 else -1
        move = accounting.new_move(
            self.date.date(),
            self,
            f'Consumption {self.account.rec_name} {self.month:%Y-%m}',
        )
        tariff = self.tariff_version.tariff
        revenue = tariff.revenue_account or config.require('energy_revenue_account')
        lines = [
            accounting.move_line(
                config.require('prepayment_account'),
                *accounting._dc(self.amount + self.vat),
                party=self.account.party,
                description='Consumption',
            )
        ]
        lines += accounting.revenue_lines(
            revenue,
            abs(self.amount),
            abs(self.vat),
            self.tariff_version.tax,
            'Consumption',
            sign=sign,
        )
        move.lines = lines
        move.save()
        self.move = move
        self.save()


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.extend(
            [
                ('prepaid.remote.account|bill_all', "Bill Remote-Prepaid Accounts"),
                (
                    'prepaid.remote.account|check_disconnections',
                    "Disconnect Remote-Prepaid Accounts Below Limit",
                ),
            ]
        )
