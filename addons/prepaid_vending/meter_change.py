"""Change meter, change customer (move-in/move-out) and change tariff.

Each change is one transaction that writes a dated, read-only history record
(who, when, why and what moved).  The token side of a meter or tariff change
(credit transfer token, key change) belongs to the token engine: the hooks
``MeterChange.key_change_tokens``, ``MeterChange.transfer_credit`` and
``Meter.tariff_key_change`` are overridden by prepaid_sts; without it a keypad
meter refuses the change with a clear message instead of losing credit.
"""

import datetime as dt
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from . import accounting
from .append_only import AppendOnlyMixin

ZERO = Decimal(0)
TRANSFER_REASON = 'meter credit transfer'
DEBT_POLICIES = [
    ('keep', "Keep with the outgoing customer"),
    ('premises', "Transfer to the incoming customer (premises)"),
]
BALANCE_POLICIES = [
    ('refund', "Refund to the outgoing customer"),
    ('transfer', "Transfer to the incoming customer"),
]


def _today() -> dt.date:
    return Pool().get('ir.date').today()


def _check_date(date: dt.date) -> None:
    # A change is recorded when it is done on site: a future date would move
    # credit and customers before the work happens.
    if date is None or date > _today():
        raise ValidationError(
            gettext('prepaid_vending.msg_change_future_date', date=date)
        )


class Configuration(metaclass=PoolMeta):
    __name__ = 'prepaid.configuration'

    customer_change_debt_policy = fields.Selection(
        DEBT_POLICIES,
        "Debts at Move-out",
        help="What happens to the outgoing customer's open debts.",
    )
    customer_change_balance_policy = fields.Selection(
        BALANCE_POLICIES,
        "Account Balance at Move-out",
        help="What happens to the balance of a remote-prepaid account.",
    )

    @staticmethod
    def default_customer_change_debt_policy():
        return 'keep'

    @staticmethod
    def default_customer_change_balance_policy():
        return 'refund'


class HistoryMixin(AppendOnlyMixin):
    """Append-only: written only by the change's own code (change_meter,
    change_customer, run by their wizards), never created, edited or deleted
    from a client.  A client create would let a staff member forge a history
    entry for a change that never moved a meter, a customer or money."""

    __slots__ = ()

    @staticmethod
    def default_user():
        return Transaction().user


class MeterChange(HistoryMixin, ModelSQL, ModelView):
    "Meter Change"

    __name__ = 'prepaid.meter.change'

    service_point = fields.Many2One(
        'prepaid.service_point',
        "Service Point",
        required=True,
        readonly=True,
        ondelete='RESTRICT',
    )
    old_meter = fields.Many2One(
        'prepaid.meter', "Old Meter", required=True, readonly=True, ondelete='RESTRICT'
    )
    new_meter = fields.Many2One(
        'prepaid.meter', "New Meter", required=True, readonly=True, ondelete='RESTRICT'
    )
    customer = fields.Many2One(
        'party.party', "Customer", readonly=True, ondelete='RESTRICT'
    )
    date = fields.Date("Date", required=True, readonly=True)
    final_reading = fields.Numeric(
        "Final Reading of the Old Meter (kWh)", digits=(16, 2), readonly=True
    )
    new_reading = fields.Numeric(
        "Reading of the New Meter (kWh)", digits=(16, 2), readonly=True
    )
    credit_kwh = fields.Numeric(
        "Credit Transferred (kWh)",
        digits=(16, 1),
        readonly=True,
        help="Units left on the old meter, issued free on the new one.",
    )
    credit_amount = fields.Numeric("Balance Transferred", digits=(16, 2), readonly=True)
    month_kwh = fields.Numeric(
        "Month kWh Carried Over",
        digits=(16, 1),
        readonly=True,
        help="kWh bought this month: the block position of the new meter.",
    )
    key_change = fields.Boolean("Key Change Issued", readonly=True)
    tokens = fields.Text(
        "Tokens Issued",
        readonly=True,
        help="What was issued (descriptions; the digits are in the token log).",
    )
    reason = fields.Char("Reason", required=True, readonly=True)
    user = fields.Many2One('res.user', "User", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('date', 'DESC'))
        cls._order.insert(1, ('id', 'DESC'))
        cls.__access__.add('service_point')

    @classmethod
    def change_meter(
        cls,
        service_point,
        new_meter,
        date: dt.date,
        reason: str,
        final_reading: Decimal | None = None,
        new_reading: Decimal | None = None,
        credit_kwh: Decimal | None = None,
    ) -> tuple['MeterChange', list[tuple[str, str]]]:
        """Replace the meter of service_point by new_meter on date.

        Returns the history record and the tokens to enter on the new meter,
        in order, as (description, 20 digits)."""
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        old = service_point.meter
        if not old:
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_no_meter_installed',
                    point=service_point.rec_name,
                )
            )
        if not reason:
            raise ValidationError(gettext('prepaid_vending.msg_change_reason'))
        _check_date(date)
        credit_kwh = credit_kwh or ZERO
        if credit_kwh < 0 or credit_kwh != credit_kwh.quantize(Decimal('0.1')):
            raise ValidationError(
                gettext('prepaid_vending.msg_meter_change_credit', kwh=credit_kwh)
            )
        if credit_kwh and old.payment_mode == 'remote_prepaid':
            # The money is on the account, not in the meter: it follows the
            # account, never as kWh as well.
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_meter_change_credit_remote', meter=old.serial
                )
            )
        # Serialise with vends on either meter: the month position and the
        # balances moved below must not change under us.
        Meter.lock([old, new_meter])
        customer = service_point.customer
        change = cls(
            service_point=service_point,
            old_meter=old,
            new_meter=new_meter,
            customer=customer,
            date=date,
            final_reading=final_reading,
            new_reading=new_reading,
            credit_kwh=credit_kwh,
            credit_amount=ZERO,
            month_kwh=ZERO,
            reason=reason,
        )
        # Built before any write: a missing account refuses the change with
        # nothing written.
        moves = [change._balance_transfer_move()]
        service_point.install_meter(
            new_meter,
            date,
            reading=new_reading,
            removal_reading=final_reading,
            reason=reason,
        )
        new_meter = change.new_meter = Meter(new_meter.id)
        change.month_kwh = change._carry_month_position()
        change._carry_tariff()
        change.credit_amount = change._move_remote_account()
        change._move_emergency_credit()
        # Key change first: the transfer token is minted under the new key.
        tokens = change.key_change_tokens()
        change.key_change = bool(tokens)
        if credit_kwh:
            tokens += change.transfer_credit(credit_kwh)
        change.tokens = '\n'.join(d for d, _ in tokens)
        # The history is append-only (HistoryMixin): only this code writes it.
        with without_check_access():
            change.save()
        accounting.post_adjustments(moves, origin=change)
        return change, tokens

    def _balance_transfer_move(self):
        """The move of a remote-prepaid balance that lands on another party's
        account (the new meter already has an account); None when the money
        stays with the same customer."""
        Account = Pool().get('prepaid.remote.account')
        account = Account.for_meter(self.old_meter, create=False)
        target = Account.for_meter(self.new_meter, create=False)
        if not account or not target or not account.party or not target.party:
            return None
        return accounting.balance_transfer_move(
            account.party,
            target.party,
            account.balance,
            self.date,
            f'Meter change {self.old_meter.serial} -> {self.new_meter.serial}',
        )

    def _carry_month_position(self) -> Decimal:
        """The kWh bought this month move with the customer so the next vend
        starts in the right block (and the FBE is not given twice)."""
        Position = Pool().get('prepaid.meter.month_position')
        month = self.date.replace(day=1)
        old = Position.get(self.old_meter, month)
        if old.id is None:
            return ZERO
        new = Position.get(self.new_meter, month)
        new.kwh += old.kwh
        new.vends += old.vends
        new.fbe_issued = bool(new.fbe_issued or old.fbe_issued)
        new.save()
        return old.kwh

    def _carry_tariff(self) -> None:
        "A tariff assigned to the old meter applies to its replacement"
        pool = Pool()
        Assignment = pool.get('prepaid.meter.tariff')
        assignments = Assignment.search(
            [('meter', '=', self.old_meter.id), ('start_date', '<=', self.date)],
            order=[('start_date', 'DESC'), ('id', 'DESC')],
            limit=1,
        )
        if assignments:
            Assignment(
                meter=self.new_meter,
                tariff=assignments[0].tariff,
                start_date=self.date,
                reason=gettext(
                    'prepaid_vending.msg_meter_change_tariff',
                    meter=self.old_meter.serial,
                ),
            ).save()

    def _move_remote_account(self) -> Decimal:
        "A remote-prepaid balance follows the account onto the new meter"
        pool = Pool()
        Account = pool.get('prepaid.remote.account')
        Line = pool.get('prepaid.remote.account.line')
        account = Account.for_meter(self.old_meter, create=False)
        if not account:
            return ZERO
        balance = account.balance
        target = Account.for_meter(self.new_meter, create=False)
        if target is None:
            # Keep the account and its history: only its meter changes.
            account.meter = self.new_meter
            account.save()
            return balance
        if balance:
            text = f'Meter change {self.old_meter.serial} -> {self.new_meter.serial}'
            Line.save(
                [
                    Line(
                        account=account,
                        kind='transfer',
                        amount=-balance,
                        description=text,
                    ),
                    Line(
                        account=target,
                        kind='transfer',
                        amount=balance,
                        description=text,
                    ),
                ]
            )
            target.after_balance_change(origin=target)
        return balance

    def _move_emergency_credit(self) -> None:
        "Open emergency credit is repaid by the vends of the new meter"
        Emergency = Pool().get('prepaid.emergency_credit')
        credits = Emergency.open_credits(self.old_meter)
        if credits:
            Emergency.write(credits, {'meter': self.new_meter.id})

    # ---------------------------------------------------------------- hooks
    def key_change_tokens(self) -> list[tuple[str, str]]:
        """Hook: key change tokens the new meter needs (prepaid_sts)."""
        return []

    def transfer_credit(self, kwh: Decimal) -> list[tuple[str, str]]:
        """Hook: give kwh to the new meter without charging anyone.

        A smart meter gets them through the head-end; a keypad meter needs a
        token from the STS module (which overrides this)."""
        Command = Pool().get('prepaid.meter.command')
        meter = self.new_meter
        if meter.kind == 'smart_prepaid':
            Command.queue(
                meter,
                'remote_credit',
                {
                    'kwh': str(kwh),
                    'reason': TRANSFER_REASON,
                    'from_meter': self.old_meter.serial,
                },
            )
            return [(f'Credit transfer {kwh} kWh (sent to the meter)', '')]
        raise ValidationError(
            gettext('prepaid_vending.msg_meter_change_no_token', meter=meter.serial)
        )


class MeterChangeStart(ModelView):
    "Change Meter"

    __name__ = 'prepaid.meter.change.start'

    service_point = fields.Many2One(
        'prepaid.service_point', "Service Point", required=True, readonly=True
    )
    old_meter = fields.Many2One('prepaid.meter', "Old Meter", readonly=True)
    old_kind = fields.Char("Old Meter Kind", readonly=True)
    new_meter = fields.Many2One(
        'prepaid.meter',
        "New Meter",
        required=True,
        domain=[('state', '=', 'in_stock')],
    )
    date = fields.Date("Date", required=True)
    final_reading = fields.Numeric(
        "Final Reading of the Old Meter (kWh)", digits=(16, 2)
    )
    new_reading = fields.Numeric("Reading of the New Meter (kWh)", digits=(16, 2))
    credit_kwh = fields.Numeric(
        "Credit Left on the Old Meter (kWh)",
        digits=(16, 1),
        help="The units shown on the old meter's display: they are issued "
        "free on the new meter.",
    )
    reason = fields.Char("Reason", required=True)


class MeterChangeResult(ModelView):
    "Change Meter"

    __name__ = 'prepaid.meter.change.result'

    change = fields.Many2One('prepaid.meter.change', "Meter Change", readonly=True)
    tokens = fields.Text("Tokens for the New Meter (in this order)", readonly=True)


class MeterChangeWizard(Wizard):
    "Change Meter"

    __name__ = 'prepaid.meter.change.wizard'

    start = StateView(
        'prepaid.meter.change.start',
        'prepaid_vending.meter_change_start_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Change Meter", 'change', 'tryton-ok', default=True),
        ],
    )
    change = StateTransition()
    result = StateView(
        'prepaid.meter.change.result',
        'prepaid_vending.meter_change_result_view_form',
        [Button("Close", 'end', 'tryton-close', default=True)],
    )

    def _point(self):
        "Started from a service point, or from the meter installed on one"
        if self.model and self.model.__name__ == 'prepaid.meter':
            point = self.record.service_point
            if not point:
                raise ValidationError(
                    gettext(
                        'prepaid_vending.msg_meter_change_not_installed',
                        meter=self.record.serial,
                    )
                )
            return point
        return self.record

    def default_start(self, fields):
        point = self._point()
        meter = point.meter
        return {
            'service_point': point.id,
            'old_meter': meter.id if meter else None,
            'old_kind': meter.kind if meter else None,
            'date': _today(),
        }

    def transition_change(self):
        MeterChange = Pool().get('prepaid.meter.change')
        change, tokens = MeterChange.change_meter(
            self._point(),
            self.start.new_meter,
            self.start.date,
            self.start.reason,
            final_reading=self.start.final_reading,
            new_reading=self.start.new_reading,
            credit_kwh=self.start.credit_kwh,
        )
        self.result.change = change
        self.result.tokens = _token_lines(tokens)
        return 'result'

    def default_result(self, fields):
        return {
            'change': self.result.change.id,
            'tokens': self.result.tokens,
        }


def _token_lines(tokens: list[tuple[str, str]]) -> str:
    lines = []
    for description, digits in tokens:
        grouped = ' '.join(digits[i : i + 4] for i in range(0, len(digits), 4))
        lines.append(f'{description}: {grouped}' if grouped else description)
    return '\n'.join(lines)


# ------------------------------------------------------------ change customer
class CustomerChange(HistoryMixin, ModelSQL, ModelView):
    "Customer Change (move-in / move-out)"

    __name__ = 'prepaid.customer.change'

    service_point = fields.Many2One(
        'prepaid.service_point',
        "Service Point",
        required=True,
        readonly=True,
        ondelete='RESTRICT',
    )
    old_customer = fields.Many2One(
        'party.party', "Outgoing Customer", readonly=True, ondelete='RESTRICT'
    )
    new_customer = fields.Many2One(
        'party.party',
        "Incoming Customer",
        required=True,
        readonly=True,
        ondelete='RESTRICT',
    )
    date = fields.Date("Date", required=True, readonly=True)
    debt_policy = fields.Selection(DEBT_POLICIES, "Debts", required=True, readonly=True)
    debt_transferred = fields.Numeric("Debt Transferred", digits=(16, 2), readonly=True)
    balance_policy = fields.Selection(
        BALANCE_POLICIES, "Account Balance", required=True, readonly=True
    )
    balance = fields.Numeric(
        "Account Balance at Move-out", digits=(16, 2), readonly=True
    )
    refund = fields.Numeric(
        "Refund Due",
        digits=(16, 2),
        readonly=True,
        help="Paid out to the outgoing customer by the cashier.",
    )
    reason = fields.Char("Reason", readonly=True)
    user = fields.Many2One('res.user', "User", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('date', 'DESC'))
        cls._order.insert(1, ('id', 'DESC'))
        cls.__access__.add('service_point')

    @classmethod
    def change_customer(
        cls,
        service_point,
        new_customer,
        date: dt.date,
        reason: str | None = None,
        debt_policy: str | None = None,
        balance_policy: str | None = None,
    ) -> 'CustomerChange':
        "Move the outgoing customer out and new_customer in on date"
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        ServicePoint = pool.get('prepaid.service_point')
        Debt = pool.get('prepaid.debt')
        Account = pool.get('prepaid.remote.account')
        config = Configuration(1)
        debt_policy = debt_policy or config.customer_change_debt_policy or 'keep'
        balance_policy = (
            balance_policy or config.customer_change_balance_policy or 'refund'
        )
        old = service_point.customer
        if not new_customer.customer_number:
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_customer_change_not_customer',
                    party=new_customer.rec_name,
                )
            )
        if old == new_customer:
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_customer_change_same',
                    party=new_customer.rec_name,
                )
            )
        _check_date(date)
        change = cls(
            service_point=service_point,
            old_customer=old,
            new_customer=new_customer,
            date=date,
            debt_policy=debt_policy,
            balance_policy=balance_policy,
            debt_transferred=ZERO,
            balance=ZERO,
            refund=ZERO,
            reason=reason,
        )
        meter = service_point.meter
        if meter:
            pool.get('prepaid.meter').lock([meter])
        debts = []
        if old and debt_policy == 'premises':
            debts = [
                d for d in Debt.open_debts(old, service_point.company) if d.balance > 0
            ]
        account = Account.for_meter(meter, create=False) if meter else None
        # Built before any write: a missing account or period refuses the
        # change with nothing written.
        moves = change._moves(debts, account)
        if debts:
            change.debt_transferred = change._transfer_debts(debts)
        if account:
            change._settle_account(account)
        service_point.customer = new_customer
        ServicePoint.save([service_point])
        with without_check_access():
            change.save()
        accounting.post_adjustments(moves, origin=change)
        return change

    def _moves(self, debts, account) -> list:
        """The accounting of the move-out, mirroring _transfer_debts and
        _settle_account: debts taken over by the incoming customer, then the
        balance refunded, turned into debt or handed over."""
        old, new, date = self.old_customer, self.new_customer, self.date
        moves = []
        if debts:
            moves.append(
                accounting.debt_transfer_move(
                    old,
                    new,
                    sum((d.balance for d in debts), ZERO),
                    date,
                    f'Debts of {old.rec_name} taken over by {new.rec_name}',
                )
            )
        # Whose prepayment the balance is in the books: bills and vends of
        # the account were booked under its party.
        holder = (account.party or old) if account else None
        if holder is None:
            return moves
        balance = account.balance
        outcome = self._balance_outcome(balance)
        if outcome == 'refund':
            moves.append(
                accounting.refund_move(
                    old or holder,
                    balance,
                    date,
                    gettext(
                        'prepaid_vending.msg_customer_change_refund',
                        party=(old or holder).rec_name,
                    ),
                    holder=holder,
                )
            )
        elif outcome == 'debt':
            moves.append(
                accounting.overdrawn_debt_move(
                    old,
                    -balance,
                    date,
                    gettext(
                        'prepaid_vending.msg_customer_change_overdrawn',
                        meter=account.meter.serial,
                    ),
                    holder=holder,
                )
            )
        elif outcome == 'handover':
            moves.append(
                accounting.balance_transfer_move(
                    holder,
                    new,
                    balance,
                    date,
                    f'Balance of {holder.rec_name} handed to {new.rec_name}',
                )
            )
        return moves

    def _balance_outcome(self, balance: Decimal) -> str | None:
        """What the move-out does with a remote-prepaid balance, by policy
        (the one decision behind both _moves and _settle_account): 'refund'
        to the outgoing customer, 'debt' of the outgoing customer when
        overdrawn, 'handover' to the incoming customer, None when zero."""
        if balance > 0 and self.balance_policy == 'refund':
            return 'refund'
        if balance < 0 and self.debt_policy == 'keep' and self.old_customer:
            return 'debt'
        return 'handover' if balance else None

    def _transfer_debts(self, debts) -> Decimal:
        """The outgoing customer's open debts become the incoming customer's,
        each with its recovery plan; the old ones are closed by a transfer line."""
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        Line = pool.get('prepaid.debt.line')
        old, new = self.old_customer, self.new_customer
        total, created, lines = ZERO, [], []
        for debt in debts:
            balance = debt.balance
            total += balance
            text = gettext(
                'prepaid_vending.msg_customer_change_debt_text',
                debt=debt.description,
                old=old.rec_name,
                new=new.rec_name,
                point=self.service_point.rec_name,
            )
            lines.append(
                Line(debt=debt, kind='transfer', amount=-balance, description=text)
            )
            created.append(
                Debt(
                    company=debt.company,
                    party=new,
                    category=debt.category,
                    description=f'{debt.description} ({old.rec_name})'[:200],
                    date=self.date,
                    amount=balance,
                    recovery_percent=debt.recovery_percent,
                    min_per_vend=debt.min_per_vend,
                    max_per_vend=debt.max_per_vend,
                )
            )
        if debts:
            Line.save(lines)
            Debt.paid(debts)
            Debt.save(created)
            Debt.open_booked(created)
        return total

    def _settle_account(self, account) -> None:
        """A remote-prepaid balance is refunded to the outgoing customer or
        handed to the incoming one; an overdrawn balance is the outgoing
        customer's debt unless debts go with the premises."""
        pool = Pool()
        Line = pool.get('prepaid.remote.account.line')
        Debt = pool.get('prepaid.debt')
        meter = account.meter
        balance = self.balance = account.balance
        old = self.old_customer
        outcome = self._balance_outcome(balance)
        if outcome == 'refund':
            self.refund = balance
            Line(
                account=account,
                kind='adjustment',
                amount=-balance,
                description=gettext(
                    'prepaid_vending.msg_customer_change_refund',
                    party=old.rec_name if old else '-',
                ),
            ).save()
        elif outcome == 'debt':
            debt = Debt(
                company=account.company,
                party=old,
                description=gettext(
                    'prepaid_vending.msg_customer_change_overdrawn',
                    meter=meter.serial,
                ),
                date=self.date,
                amount=-balance,
            )
            debt.save()
            Debt.open_booked([debt])
            Line(
                account=account,
                kind='transfer',
                amount=-balance,
                description=debt.description,
            ).save()
        account.party = self.new_customer
        account.save()
        account.after_balance_change(origin=account)


class CustomerChangeStart(ModelView):
    "Change Customer"

    __name__ = 'prepaid.customer.change.start'

    service_point = fields.Many2One(
        'prepaid.service_point', "Service Point", required=True, readonly=True
    )
    old_customer = fields.Many2One('party.party', "Outgoing Customer", readonly=True)
    new_customer = fields.Many2One(
        'party.party',
        "Incoming Customer",
        required=True,
        domain=[
            ('customer_number', '!=', None),
            ('id', '!=', Eval('old_customer', -1)),
        ],
    )
    date = fields.Date("Date", required=True)
    debt_policy = fields.Selection(DEBT_POLICIES, "Debts", required=True)
    balance_policy = fields.Selection(
        BALANCE_POLICIES, "Account Balance", required=True
    )
    reason = fields.Char("Reason")


class CustomerChangeWizard(Wizard):
    "Change Customer"

    __name__ = 'prepaid.customer.change.wizard'

    start = StateView(
        'prepaid.customer.change.start',
        'prepaid_vending.customer_change_start_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Change Customer", 'change', 'tryton-ok', default=True),
        ],
    )
    change = StateTransition()

    def default_start(self, fields):
        Configuration = Pool().get('prepaid.configuration')
        config = Configuration(1)
        point = self.record
        return {
            'service_point': point.id,
            'old_customer': point.customer.id if point.customer else None,
            'date': _today(),
            'debt_policy': config.customer_change_debt_policy or 'keep',
            'balance_policy': config.customer_change_balance_policy or 'refund',
        }

    def transition_change(self):
        CustomerChange = Pool().get('prepaid.customer.change')
        CustomerChange.change_customer(
            self.record,
            self.start.new_customer,
            self.start.date,
            reason=self.start.reason,
            debt_policy=self.start.debt_policy,
            balance_policy=self.start.balance_policy,
        )
        return 'end'


# -------------------------------------------------------------- change tariff
class Meter(metaclass=PoolMeta):
    __name__ = 'prepaid.meter'

    def assign_tariff(
        self, tariff, date: dt.date, reason: str
    ) -> tuple[object, list[tuple[str, str]]]:
        """Put this meter on tariff from date (dated history in
        prepaid.meter.tariff); returns the assignment and the key change
        tokens the meter needs when its STS tariff index changes."""
        Assignment = Pool().get('prepaid.meter.tariff')
        if not reason:
            raise ValidationError(gettext('prepaid_vending.msg_change_reason'))
        current = Assignment.search(
            [('meter', '=', self.id), ('start_date', '>=', date)], limit=1
        )
        if current:
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_tariff_change_before',
                    meter=self.serial,
                    date=current[0].start_date,
                )
            )
        assignment = Assignment(
            meter=self, tariff=tariff, start_date=date, reason=reason
        )
        assignment.save()
        return assignment, self.tariff_key_change(tariff, reason)

    def tariff_key_change(self, tariff, reason: str) -> list[tuple[str, str]]:
        "Hook: prepaid_sts starts a key change when the tariff index differs"
        return []


class TariffChangeStart(ModelView):
    "Change Tariff"

    __name__ = 'prepaid.meter.tariff.change.start'

    meter = fields.Many2One('prepaid.meter', "Meter", required=True, readonly=True)
    current_tariff = fields.Many2One('prepaid.tariff', "Current Tariff", readonly=True)
    tariff = fields.Many2One('prepaid.tariff', "New Tariff", required=True)
    date = fields.Date("From", required=True)
    reason = fields.Char("Reason", required=True)


class TariffChangeResult(ModelView):
    "Change Tariff"

    __name__ = 'prepaid.meter.tariff.change.result'

    tokens = fields.Text("Key Change Tokens (enter in this order)", readonly=True)


class TariffChangeWizard(Wizard):
    "Change Tariff"

    __name__ = 'prepaid.meter.tariff.change.wizard'

    start = StateView(
        'prepaid.meter.tariff.change.start',
        'prepaid_vending.meter_change_tariff_start_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Change Tariff", 'change', 'tryton-ok', default=True),
        ],
    )
    change = StateTransition()
    result = StateView(
        'prepaid.meter.tariff.change.result',
        'prepaid_vending.meter_change_tariff_result_view_form',
        [Button("Close", 'end', 'tryton-close', default=True)],
    )

    def default_start(self, fields):
        Tariff = Pool().get('prepaid.tariff')
        meter = self.record
        date = _today()
        try:
            current = Tariff.for_meter(meter, date).id
        except ValidationError:
            current = None
        return {'meter': meter.id, 'current_tariff': current, 'date': date}

    def transition_change(self):
        _, tokens = self.record.assign_tariff(
            self.start.tariff, self.start.date, self.start.reason
        )
        if not tokens:
            return 'end'
        self.result.tokens = _token_lines(tokens)
        return 'result'

    def default_result(self, fields):
        return {'tokens': self.result.tokens}
