"""Booking: the accounting of the vends, generated from the vends after the
vend's request (see the README, "Accounting of the vends").

The vend row and its lines are the money record; the request that sells a
token writes no account move.  A booker turns the vends not yet booked into
posted moves with the ORM (Tryton's own move and line checks apply):

- one move per (day, shift, sales point, channel) and booking run, its lines
  summed per (account, party, tax); the move's vends (``account.move``
  ``prepaid_vends``) and each vend's move (``prepaid.vend`` ``move``) are the
  drill-down in both directions;
- three bookers: a queued task pushed after a vend (throttled, see
  :func:`schedule`), the shift close (every vend of the shift, waiting for a
  concurrent booker) and a cron (whatever is left, e.g. after an error);
- never twice: a booker takes the vends it books with ``SELECT ... FOR UPDATE
  SKIP LOCKED`` and only those whose ``move`` is empty; the ``move`` link is
  written in the same transaction as the move, so a vend has one move or
  none.  A booker whose snapshot is older than another's commit gets
  PostgreSQL's serialisation failure on the lock and is retried;
- cancellation: a vend cancelled before it is booked is never booked (the
  books never saw it); one cancelled after gets its own posted reversal,
  computed from its own lines, so the books net to zero for it;
- extension: ``Vend._booking_receipts`` debits the money of some vends
  elsewhere than their payment method's account (a third-party vendor's
  float: prepaid_vendor_portal), ``Vend._booked`` follows a group's posting
  in its savepoint.
"""

import datetime as dt
import logging
import time
from collections import defaultdict
from contextlib import contextmanager
from decimal import Decimal
from typing import NamedTuple

import sql
from sql import Null
from sql.aggregate import Sum
from sql.operators import In
from trytond import backend, config
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import Index, fields
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access

from . import accounting

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
#: The queue of the booking tasks (a worker may be dedicated to it).
QUEUE_NAME = 'prepaid_booking'


class Entry(NamedTuple):
    """One amount a vend books: debit positive.  tax and tax_type make the
    account.tax.line of the move line (base or tax)."""

    account: int
    party: int | None
    amount: Decimal
    label: str
    tax: int | None = None
    tax_type: str | None = None


def revenue_entries(
    account: int, net: Decimal, vat: Decimal, tax: int | None, label: str
) -> list[Entry]:
    """A credit of net on account and of vat on the tax's account, with the
    base and tax amounts the tax reports read"""
    entries = []
    if net:
        entries.append(Entry(account, None, -net, label, tax if vat else None, 'base'))
    if vat:
        if tax is None:
            raise ValidationError(gettext('prepaid_vending.msg_vat_without_tax'))
        tax_account = accounting.tax_account(Pool().get('account.tax')(tax))
        entries.append(Entry(tax_account.id, None, -vat, f'VAT {label}', tax, 'tax'))
    return entries


def vends_entries(vends) -> list[Entry]:
    """What vends book, from their own lines summed by the database: the
    money received (debits) and where it goes (credits).  They balance: the
    lines of a vend add up to its tender.  Vends without money book nothing.

    Two grouped queries whatever the number of vends: reading each vend and
    its lines through the ORM cost a booking as much as the vend itself."""
    pool = Pool()
    Vend = pool.get('prepaid.vend')
    Line = pool.get('prepaid.vend.line')
    SalesPoint = pool.get('prepaid.sales_point')
    Version = pool.get('prepaid.tariff.version')
    config = accounting.VendConfig.get()
    vend, line = Vend.__table__(), Line.__table__()
    cursor = Transaction().connection.cursor()
    # The money of some vends is received elsewhere than in a till (a
    # vendor's float): their debits come from the hook.
    entries, elsewhere = Vend._booking_receipts(vends)
    received, booked = [], []
    till = [v.id for v in vends if v.id not in elsewhere]
    for ids in grouped_slice(till, backend.MAX_QUERY_PARAMS):
        where = In(vend.id, list(ids)) & (vend.tender != 0)
        group = [vend.sales_point, vend.payment_method, vend.customer]
        cursor.execute(
            *vend.select(*group, Sum(vend.tender), where=where, group_by=group)
        )
        received.extend(cursor)
    for ids in grouped_slice([v.id for v in vends], backend.MAX_QUERY_PARAMS):
        where = In(vend.id, list(ids)) & (vend.tender != 0)
        group = [vend.tariff_version, vend.customer, line.kind, line.account]
        cursor.execute(
            *line.join(vend, condition=line.vend == vend.id).select(
                *group, Sum(line.amount), Sum(line.vat), where=where, group_by=group
            )
        )
        booked.extend(cursor)

    for sales_point, method, customer, tender in received:
        receipt = accounting.receipt_account(
            SalesPoint(sales_point) if sales_point else None, method
        )
        party = customer if receipt.party_required else None
        entries.append(Entry(receipt.id, party, money(tender), method))
    pricings = {}
    energy: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for version, customer, kind, account, amount, vat in booked:
        if version not in pricings:
            pricings[version] = Version(version).pricing()
        tax = pricings[version].tax
        amount, vat = money(amount), money(vat)
        if kind == 'fee':
            account = config.require('fee_revenue_account').id
            entries += revenue_entries(account, amount, vat, tax, 'Fees')
        elif kind == 'charge':
            account = account or config.require('charge_revenue_account').id
            entries += revenue_entries(account, amount, vat, tax, 'Charges')
        elif kind in PARTY_LINE_ACCOUNTS:
            account = config.require(PARTY_LINE_ACCOUNTS[kind])
            party = customer if account.party_required else None
            entries.append(Entry(account.id, party, -amount, kind))
        elif kind == 'energy':
            energy[version][0] += amount
            energy[version][1] += vat
    for version, (net, vat) in energy.items():
        pricing = pricings[version]
        if pricing.revenue_account is not None:
            revenue = pricing.revenue_account
        else:
            revenue = config.require('energy_revenue_account').id
        entries += revenue_entries(revenue, net, vat, pricing.tax, 'Energy')
    return [e for e in entries if e.amount]


def money(value) -> Decimal:
    "A sum from the database as a Decimal of cents (SQLite sums as float)"
    return Decimal(str(value)).quantize(Decimal('0.01'))


#: Vend line kinds booked on a party's account -> the configuration field.
PARTY_LINE_ACCOUNTS = {
    'emergency': 'emergency_credit_account',
    'debt': 'debt_account',
    'deposit': 'prepayment_account',
}


def summarise(entries: list[Entry]) -> list[Entry]:
    """Entries summed per (account, party, label, tax, tax type), zero sums
    dropped, in a stable order (debits first)"""
    totals: dict[tuple, Decimal] = defaultdict(Decimal)
    for entry in entries:
        key = (entry.account, entry.party, entry.label, entry.tax, entry.tax_type)
        totals[key] += entry.amount
    summary = [
        Entry(account, party, amount, label, tax, tax_type)
        for (account, party, label, tax, tax_type), amount in totals.items()
        if amount
    ]
    return sorted(summary, key=lambda e: (e.amount < 0, e.label, e.account))


def build_move(date: dt.date, origin, description: str, entries: list[Entry]):
    """An unsaved move with a line per entry (party only where the account
    requires one, as account.move.line checks)"""
    pool = Pool()
    Account = pool.get('account.account')
    Party = pool.get('party.party')
    Tax = pool.get('account.tax')
    move = accounting.new_move(date, origin, description)
    lines = []
    for entry in entries:
        account = Account(entry.account)
        debit, credit = accounting._dc(entry.amount)
        line = accounting.move_line(
            account,
            debit,
            credit,
            party=Party(entry.party) if entry.party else None,
            description=entry.label,
        )
        if entry.tax is not None:
            # Base and tax are credits of a sale: positive on a credit.
            line.tax_lines = [
                accounting.tax_line(Tax(entry.tax), -entry.amount, entry.tax_type)
            ]
        lines.append(line)
    move.lines = lines
    return move


@contextmanager
def savepoint():
    """Undo what the block wrote if it raises (trytond has no savepoint of
    its own; the statements are the same on PostgreSQL and SQLite)."""
    transaction = Transaction()
    cursor = transaction.connection.cursor()
    cursor.execute('SAVEPOINT prepaid_booking')
    try:
        yield
    except Exception:
        cursor.execute('ROLLBACK TO SAVEPOINT prepaid_booking')
        # Records read or written in the block are stale now.
        transaction.counter += 1
        raise
    cursor.execute('RELEASE SAVEPOINT prepaid_booking')


def _interval() -> int:
    "Seconds between two booking tasks pushed by one process"
    return config.getint('prepaid', 'booking_interval', default=60)


#: (database name -> time.monotonic() of the last push) of this process.
_last_push: dict[str, float] = {}


def schedule(vend) -> None:
    """Push a booking task after vend's commit, at most one per
    ``[prepaid] booking_interval`` seconds per process (0: after every vend).

    With a queue worker ([queue] worker) the task runs there; without, trytond
    runs it in the process after the request's commit, before its answer: the
    throttle keeps that cost on one request per interval instead of every
    vend.  The cron books what a lost task (a rollback, a crash) left."""
    interval = _interval()
    key = Transaction().database.name
    now = time.monotonic()
    last = _last_push.get(key)
    if interval and last is not None and now - last < interval:
        return
    _last_push[key] = now
    Vend = Pool().get('prepaid.vend')
    with Transaction().set_context(queue_name=QUEUE_NAME):
        Vend.__queue__.book_queued([vend])


def lock_posting_sequences(company_dates) -> None:
    """Take the row locks of the strict sequences that will number the moves
    of these (company, date) pairs on posting.

    Trytond takes a row lock by restarting the transaction with it
    (``TransactionError``): asked for only at ``Move.post``, the restart
    throws away the whole booking done before it, which then runs twice.
    Asked for here, before any work, the restart costs nothing."""
    pool = Pool()
    Period = pool.get('account.period')
    Sequence = pool.get('ir.sequence.strict')
    sequences = set()
    for company, date in company_dates:
        with Transaction().set_context(company=company.id):
            try:
                period = Period.find(company, date=date)
            except UserError:
                continue  # the group's booking logs why it is left
            sequences.add(period.move_sequence_used)
    if sequences:
        Sequence.lock(sorted(sequences, key=lambda s: s.id))


class Vend(metaclass=PoolMeta):
    __name__ = 'prepaid.vend'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        # The bookers' and the not-booked list's query: only the vends not
        # yet booked are in it, so it stays small however many vends exist.
        cls._sql_indexes.add(
            Index(
                t,
                (t.id, Index.Range()),
                where=(t.move == Null) & (t.state == 'issued'),
            )
        )

    @classmethod
    def book_queued(cls, vends) -> None:
        "Queued task: book every vend not yet booked (vends: its trigger)"
        cls.book_pending()

    @classmethod
    def book_pending(cls, limit: int | None = None) -> list:
        """Cron and queued task: book the vends not yet booked, of every
        company (each in its own books: see book)"""
        with without_check_access():
            return cls.book(cls._claim(limit=limit))

    @classmethod
    def book_session(cls, session) -> list:
        """Book every vend of session not yet booked (shift close).

        Waits for a booker that holds some of them (no SKIP LOCKED): when it
        commits first, PostgreSQL refuses the lock with a serialisation
        failure and the close is retried, seeing them booked."""
        with without_check_access():
            return cls.book(cls._claim(session=session, skip_locked=False), strict=True)

    @classmethod
    def _claim(cls, session=None, limit=None, skip_locked=True) -> list:
        """The vends to book, locked until commit: issued, with money, no
        move yet; those another booker holds are skipped (skip_locked)."""
        table = cls.__table__()
        database = Transaction().database
        where = (table.move == Null) & (table.state == 'issued')
        where &= table.tender != 0
        if session is not None:
            where &= table.session == session.id
        query = table.select(table.id, where=where, order_by=[table.id], limit=limit)
        if database.has_select_for():
            if skip_locked:
                For = database.get_select_for_skip_locked()
            else:
                For = sql.For
            query.for_ = For('UPDATE')
        cursor = Transaction().connection.cursor()
        cursor.execute(*query)
        return cls.browse([row[0] for row in cursor])

    @classmethod
    def book(cls, vends, strict: bool = False) -> list:
        """Book vends (claimed: locked, not yet booked) in posted moves, one
        per (company, day, shift, sales point, channel).  Returns the moves.

        Each group is booked in its vends' company (its journal, accounts
        and fiscal year), whatever company the booker runs in: a queued task
        pushed by one utility's vend, or a cron of the installation, never
        books another utility's vends into its books.

        Each group is booked under its own savepoint: a group that Tryton
        refuses (no open period, a closed account, an account missing from
        the configuration) is logged and left for the next booker, in the
        list of vends not booked where an accountant looks for it; the other
        groups are booked.  strict (the shift close): the refusal is raised,
        a shift does not close with vends its books do not hold."""
        pool = Pool()
        Move = pool.get('account.move')
        groups: dict[tuple, list] = defaultdict(list)
        for vend in vends:
            key = (
                vend.company,
                vend.date.date(),
                vend.session,
                vend.sales_point,
                vend.channel,
            )
            groups[key].append(vend)
        lock_posting_sequences({(k[0], k[1]) for k in groups})
        moves = []
        for (company, date, session, sales_point, channel), group in sorted(
            groups.items(), key=lambda item: min(v.id for v in item[1])
        ):
            where = sales_point.code if sales_point else channel
            try:
                with Transaction().set_context(company=company.id), savepoint():
                    entries = summarise(vends_entries(group))
                    move = build_move(
                        date, session, f'Vends {date.isoformat()} {where}', entries
                    )
                    move.save()
                    cls.write(group, {'move': move.id})
                    Move.post([move])
                    cls._booked(group, move)
            except UserError as exc:
                if strict:
                    raise
                logger.warning(
                    'vends %s not booked: %s', [v.id for v in group], exc.message
                )
                continue
            moves.append(move)
        return moves

    @classmethod
    def _booking_receipts(cls, vends) -> tuple[list[Entry], set[int]]:
        """The debits of the vends whose money is not received by their
        payment method's account (e.g. a vendor's float), and those vends'
        ids: the others are debited on ``accounting.receipt_account``.
        Their credits (revenue, VAT...) are booked as for any vend."""
        return [], set()

    @classmethod
    def _booked(cls, vends, move) -> None:
        """vends are booked in move (posted, in the booker's transaction and
        savepoint: raising undoes the booking of the group)"""

    @classmethod
    def book_cancellation(cls, vend):
        """The posted move reversing what vend booked, or None when vend is
        not booked: a booker will then never book it (it books issued vends
        only).  Called by the cancellation, which checked who cancels.

        The vend row is locked first, waiting for a booker that holds it: if
        that booker commits, the lock fails with a serialisation failure and
        the cancellation is retried, then sees the vend booked."""
        pool = Pool()
        Move = pool.get('account.move')
        Date = pool.get('ir.date')
        table = cls.__table__()
        database = Transaction().database
        query = table.select(table.move, where=table.id == vend.id)
        if database.has_select_for():
            query.for_ = sql.For('UPDATE')
        cursor = Transaction().connection.cursor()
        cursor.execute(*query)
        (move_id,) = cursor.fetchone()
        if move_id is None:
            return None
        entries = summarise(
            [e._replace(amount=-e.amount) for e in vends_entries([vend])]
        )
        # In the vend's books, whoever cancels (as book does).
        with (
            without_check_access(),
            Transaction().set_context(company=vend.company.id),
        ):
            move = build_move(Date.today(), vend, f'Cancel {vend.number}', entries)
            move.save()
            Move.post([move])
        return move


class Move(metaclass=PoolMeta):
    __name__ = 'account.move'

    prepaid_vends = fields.One2Many('prepaid.vend', 'move', "Vends", readonly=True)


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            ('prepaid.vend|book_pending', "Book the Vends Not Yet Booked")
        )
