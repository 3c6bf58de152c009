"""The vendor's float: its money in the utility's books, and the position
that keeps concurrent sales above its floor (docs/vendors.md section 3).

The truth is the ledger: the owner party's balance on the vendor's float
account (credit minus debit of the posted move lines).  A top-up (a bank
deposit, a credit advanced) is a posted move, Dr the counter account / Cr
the float account.

A sale cannot wait for the ledger (its move is booked after it) nor lock
the vendor for its whole transaction (a bank's hundreds of tills would sell
one at a time).  The position is one small row per vendor:

- ``funded``: the ledger balance plus the credit line, kept equal to them by
  every writer of the float's moves in the same transaction as the move
  (top-ups here, the booking of sales later: :meth:`FloatPosition.book`);
- ``drawn``: what accepted sales took and their booking has not yet moved
  into the ledger.

A sale draws with one conditional statement, the last of its transaction:
``UPDATE ... SET drawn = drawn + :amount WHERE vendor = :v AND funded -
drawn >= :amount RETURNING funded - drawn``.  No row: refused, and the
caller rolls its sale back.  The row lock lasts from that statement to the
commit only, so sales of one vendor overlap for everything else they do.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import NamedTuple

from sql import Cast, Literal
from sql.aggregate import Sum
from sql.conditionals import Coalesce
from trytond import backend
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_vending import accounting, locking
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, TransactionError, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from . import limits as core

ZERO = Decimal(0)


class FloatBusy(TransactionError):
    """Another sale of the vendor committed its draw after this transaction's
    snapshot (PostgreSQL repeatable read): the dispatcher restarts the
    transaction, which then draws on the committed position."""


class Position(NamedTuple):
    funded: Decimal
    drawn: Decimal
    credit_line: Decimal

    @property
    def available(self) -> Decimal:
        return self.funded - self.drawn

    def as_float(self) -> core.Float:
        # limits.Float: available = balance - reserved + credit_line
        return core.Float(
            balance=self.funded - self.credit_line,
            credit_line=self.credit_line,
            reserved=self.drawn,
        )


class FloatPosition(CompanyMixin, ModelSQL):
    "What a vendor may still sell (see the module docstring)"

    __name__ = 'prepaid.vendor.float'
    _company_links = ('vendor',)

    vendor = fields.Many2One(
        'prepaid.vendor', "Vendor", required=True, ondelete='CASCADE'
    )
    funded = fields.Numeric("Funded", digits=(16, 2), required=True)
    drawn = fields.Numeric("Drawn", digits=(16, 2), required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'vendor_unique',
                Unique(t, t.vendor),
                'prepaid_vendor_portal.msg_float_unique',
            ),
        ]

    @classmethod
    def open(cls, vendors) -> None:
        """The empty position of new vendors (funded: their credit line),
        written by the server only (no group writes positions)"""
        with without_check_access():
            cls._open(vendors)

    @classmethod
    def _open(cls, vendors) -> None:
        cls.create(
            [
                {
                    'vendor': v.id,
                    'company': v.company.id,
                    'funded': v.credit_line or ZERO,
                    'drawn': ZERO,
                }
                for v in vendors
            ]
        )

    @classmethod
    def positions(cls, vendors) -> dict[int, Position]:
        Vendor = Pool().get('prepaid.vendor')
        t = cls.__table__()
        vendor = Vendor.__table__()
        cursor = Transaction().connection.cursor()
        ids = [v.id for v in vendors]
        cursor.execute(
            *t.join(vendor, condition=vendor.id == t.vendor).select(
                t.vendor, t.funded, t.drawn, vendor.credit_line,
                where=t.vendor.in_(ids),
            )
        )  # fmt: skip
        return {
            vid: Position(_d(funded), _d(drawn), _d(line))
            for vid, funded, drawn, line in cursor
        }

    @classmethod
    def ledger_balances(cls, vendors) -> dict[int, Decimal]:
        """Each vendor's float from its posted moves: its party's credit
        minus debit on its float account (None without a float account)"""
        pool = Pool()
        Line = pool.get('account.move.line')
        Move = pool.get('account.move')
        line = Line.__table__()
        move = Move.__table__()
        cursor = Transaction().connection.cursor()
        result: dict[int, Decimal] = {}
        for vendor in vendors:
            if not vendor.float_account:
                result[vendor.id] = None
                continue
            cursor.execute(
                *line.join(move, condition=move.id == line.move).select(
                    Coalesce(Sum(line.credit - line.debit), Literal(0)),
                    where=(line.account == vendor.float_account.id)
                    & (line.party == vendor.party.id)
                    & (move.state == 'posted'),
                )
            )
            (balance,) = cursor.fetchone()
            result[vendor.id] = _d(balance)
        return result

    # ------------------------------------------------------------ writers
    @classmethod
    def _execute(cls, query, vendor_id: int):
        """Run one UPDATE of a position (with its RETURNING), the row or None
        when it changed nothing: on PostgreSQL waiting a bounded time for the
        row, and restarting the transaction (FloatBusy) when another
        transaction changed the row after this one's snapshot"""
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        if backend.name != 'postgresql':
            # SQLite serialises writers, so reading after the update is the
            # same; its RETURNING cannot name the alias python-sql gives.
            returning, query.returning = query.returning, None
            cursor.execute(*query)
            if not cursor.rowcount:
                return None
            t = query.table
            cursor.execute(*t.select(*returning, where=t.vendor == vendor_id))
            return cursor.fetchone()
        cursor.execute(
            "SELECT current_setting('lock_timeout'), "
            "set_config('lock_timeout', %s, true)",
            (f'{locking.lock_timeout()}s',),
        )
        (previous, _) = cursor.fetchone()
        try:
            cursor.execute(*query)
            row = cursor.fetchone()
        except backend.DatabaseOperationalError as exc:
            state = getattr(exc, 'sqlstate', None)
            if state == locking.SERIALIZATION_FAILURE:
                raise FloatBusy() from exc
            if state == locking.LOCK_NOT_AVAILABLE:
                transaction.rollback()
                raise ValidationError(
                    gettext('prepaid_vendor_portal.msg_float_busy', vendor=vendor_id)
                ) from exc
            raise
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", (previous,))
        return row

    @classmethod
    def draw(cls, vendor_id: int, amount: Decimal) -> Decimal | None:
        """Take amount from the vendor's float for a sale; the remaining
        available amount, or None (refused: nothing changed) when it would
        take the float below its floor.  The LAST statement of the sale's
        transaction: the row stays locked until the commit."""
        if not isinstance(amount, Decimal) or amount <= 0:
            raise ValueError(f'a draw is a positive Decimal, not {amount!r}')
        t = cls.__table__()
        value = _numeric(amount)
        row = cls._execute(
            t.update(
                [t.drawn],
                [t.drawn + value],
                where=(t.vendor == vendor_id) & (t.funded - t.drawn >= value),
                returning=[t.funded - t.drawn],
            ),
            vendor_id,
        )
        return None if row is None else _d(row[0])

    @classmethod
    def release(cls, vendor_id: int, amount: Decimal) -> None:
        """Give back what a sale drew and will never book (a reversal or
        cancellation before its booking)"""
        cls._change(vendor_id, drawn=-amount)

    @classmethod
    def fund(cls, vendor_id: int, amount: Decimal) -> None:
        """Raise (or lower) what the vendor may sell: a top-up's move, a
        change of credit line, in the same transaction"""
        cls._change(vendor_id, funded=amount)

    @classmethod
    def book(cls, vendor_id: int, amount: Decimal) -> None:
        """A drawn sale's move is posted on the float account (the booking,
        in the same transaction): it leaves drawn for the ledger"""
        cls._change(vendor_id, funded=-amount, drawn=-amount)

    @classmethod
    def _change(cls, vendor_id: int, funded=ZERO, drawn=ZERO) -> None:
        t = cls.__table__()
        row = cls._execute(
            t.update(
                [t.funded, t.drawn],
                [t.funded + _numeric(funded), t.drawn + _numeric(drawn)],
                where=t.vendor == vendor_id,
                returning=[t.id],
            ),
            vendor_id,
        )
        if row is None:
            raise ValueError(f'vendor {vendor_id} has no float position')

    @classmethod
    def drift(cls, vendors) -> dict[int, Decimal]:
        """funded minus (ledger + credit line) per vendor: zero when every
        move on the float went through the position (an accountant's manual
        move on the account does not: this shows it)"""
        positions = cls.positions(vendors)
        balances = cls.ledger_balances(vendors)
        return {
            v.id: positions[v.id].funded
            - ((balances[v.id] or ZERO) + positions[v.id].credit_line)
            for v in vendors
        }


def _numeric(amount: Decimal) -> Cast:
    """amount as an SQL number: SQLite would compare a bare parameter (text)
    as greater than any number"""
    return Cast(Literal(amount), 'NUMERIC')


def _d(value) -> Decimal:
    "A Numeric column as Decimal (SQLite returns floats or ints)"
    if value is None:
        return ZERO
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value)).quantize(Decimal('0.01'))


def top_up(vendor, amount: Decimal, counter_account, date: dt.date, reference: str):
    """Book and post a top-up of vendor's float (Dr counter_account / Cr the
    float account, the owner party) and raise its position, in the caller's
    transaction; returns the move"""
    if vendor.state == 'terminated':
        raise ValidationError(
            gettext(
                'prepaid_vendor_portal.msg_top_up_terminated', vendor=vendor.rec_name
            )
        )
    if not vendor.float_account:
        raise ValidationError(
            gettext(
                'prepaid_vendor_portal.msg_top_up_no_account', vendor=vendor.rec_name
            )
        )
    if not isinstance(amount, Decimal) or amount <= 0:
        raise ValidationError(gettext('prepaid_vendor_portal.msg_top_up_amount'))
    description = f'Float top-up {vendor.code}: {reference}'.strip()
    with Transaction().set_context(company=vendor.company.id):
        move = accounting.adjustment_move(
            date,
            description,
            [
                (counter_account, amount, vendor.party, description),
                (vendor.float_account, -amount, vendor.party, description),
            ],
        )
        accounting.post_adjustments([move], origin=vendor)
    Pool().get('prepaid.vendor.float').fund(vendor.id, amount)
    return move


class Move(metaclass=PoolMeta):
    __name__ = 'account.move'

    @classmethod
    def _get_origin(cls):
        return super()._get_origin() + ['prepaid.vendor']


class TopUpStart(ModelView):
    "Top up a vendor's float"

    __name__ = 'prepaid.vendor.top_up.start'

    vendor = fields.Many2One('prepaid.vendor', "Vendor", readonly=True)
    company = fields.Many2One('company.company', "Company", readonly=True)
    kind = fields.Selection(
        [('deposit', "Bank Deposit"), ('credit', "Credit Advanced")],
        "Kind",
        required=True,
    )
    amount = fields.Numeric(
        "Amount", digits=(16, 2), required=True, domain=[('amount', '>', 0)]
    )
    date = fields.Date("Date", required=True)
    counter_account = fields.Many2One(
        'account.account',
        "Debit Account",
        required=True,
        domain=[
            ('company', '=', Eval('company', -1)),
            ('type', '!=', None),
            ('closed', '!=', True),
        ],
        help="The bank account of a deposit, the vendor's receivable of a "
        "credit advanced.",
    )
    reference = fields.Char("Reference", size=128, required=True)


class TopUp(Wizard):
    "Top up a vendor's float"

    __name__ = 'prepaid.vendor.top_up'

    start = StateView(
        'prepaid.vendor.top_up.start',
        'prepaid_vendor_portal.top_up_start_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Book", 'book', 'tryton-ok', default=True),
        ],
    )
    book = StateTransition()

    def default_start(self, fields):
        vendor = self.record
        values = {
            'vendor': vendor.id,
            'company': vendor.company.id,
            'kind': 'deposit',
            'date': dt.date.today(),
        }
        with Transaction().set_context(company=vendor.company.id):
            bank = accounting.VendConfig.get().bank_account
        if bank:
            values['counter_account'] = bank.id
        return values

    def transition_book(self):
        top_up(
            self.record,
            self.start.amount,
            self.start.counter_account,
            self.start.date,
            f'{self.start.kind} {self.start.reference}',
        )
        return 'end'
