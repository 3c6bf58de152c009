"""The vendor's float: its money in the utility's books, and the position
that keeps concurrent sales above its floor (docs/vendors.md section 3).

The truth is the ledger: the owner party's balance on the vendor's float
account (credit minus debit of the posted move lines).  A top-up (a bank
deposit, a credit advanced) is a posted move, Dr the counter account / Cr
the float account.

A sale cannot wait for the ledger (its move is booked after it) nor lock
the vendor for its whole transaction (a bank's hundreds of tills would sell
one at a time).  The position is two rows per vendor, written by different
writers so that they never conflict:

- the funding row (``prepaid.vendor.float``), written by the rare writers,
  each in its own transaction and with its own move: ``funded`` is the
  ledger balance plus the credit line (top-ups, credit-line changes,
  reversals credited back, and the booking of sales, which lowers it);
  ``booked`` is the cumulative amount of sales booked into the ledger;
- the draw counter (``prepaid.vendor.float.counter``), written by sales
  only: ``drawn`` is the cumulative amount of sales drawn (less what was
  released, never sold).

The identity, true before and after a sale's booking::

    ledger    = funded - credit_line
    available = funded + booked - drawn
              = ledger + credit_line - (drawn - booked)

``drawn - booked`` is what accepted sales took and their booking has not
yet moved into the ledger; a booking lowers ``funded`` and raises
``booked`` by the same amount (:meth:`FloatPosition.book`), so
``available`` does not move, and ``drift`` (funded against ledger + credit
line) stays zero.

A sale draws (:meth:`FloatPosition.draw`) anywhere in its transaction.  On
PostgreSQL the draw runs OUTSIDE the sale's transaction, as one statement
of its own short READ COMMITTED transaction on a second connection::

    WITH d AS (UPDATE counter SET drawn = drawn + :a FROM funding
               WHERE ... AND funded + booked - drawn >= :a RETURNING ...)
    INSERT INTO reservation (..., state) SELECT ..., 'held' FROM d

At READ COMMITTED an UPDATE that meets a concurrent one waits for its row
lock (microseconds: the other statement commits at once) and re-checks its
WHERE on the new version: no serialisation failure, no restart of the
sale.  The wait is bounded by ``[prepaid] vend_lock_timeout``.  No row:
refused, nothing changed.

The reservation (``held``) is then settled by the sale's transaction:

- the sale's transaction inserts its *sold mark*
  (``prepaid.vendor.float.sold``: the reservation's id), which exists if
  and only if the sale committed.  (It cannot UPDATE the reservation: the
  row was committed after the sale's repeatable-read snapshot and is
  invisible to it.)  After the commit the transaction's data manager marks
  the reservation ``sold``;
- on rollback the data manager releases it at once (one statement: the
  reservation ``released`` and ``drawn`` lowered by its amount, atomically);
- after a crash between the two, the reservation stays ``held``: the cron
  ``ir.cron|release_vendor_float_holds`` marks ``sold`` the held ones that
  have their sold mark and releases those without one older than
  ``[prepaid] vendor_float_hold_minutes`` (default 15, longer than any
  transaction).

Safety: a reservation is counted in ``drawn`` from its draw until it is
released, and it is released only when its sale rolled back or, past the
age, when no sold mark was committed.  A lost release (crash, sweeper not
run) leaves ``drawn`` too high: it only ever lowers what the vendor may
sell, never lets it sell beyond its floor.  The one assumption is the
age: a sale whose transaction outlived it could see its reservation
released before its commit (the sweeper cannot see an uncommitted mark),
so the age must exceed the longest sale transaction.  A reversal's give-back
(:meth:`FloatPosition.release`) is applied after its transaction commits,
for the same reason: lost, it errs on the vendor's side of the floor.

On SQLite (one writer at a time) the same rows are written inside the
sale's own transaction, and its rollback undoes them.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import NamedTuple

from sql import Cast, Literal
from sql.aggregate import Sum
from sql.conditionals import Coalesce
from trytond import backend, config
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
logger = logging.getLogger(__name__)


class FloatBusy(TransactionError):
    """Another funding writer (a top-up, a credit-line change, a booking) of
    the vendor committed after this transaction's snapshot (PostgreSQL
    repeatable read): the dispatcher restarts the transaction.  Sales never
    meet it: they write only the draw counter, outside their snapshot."""


def hold_minutes() -> int:
    "Age past which a held reservation without its sale is released"
    return config.getint('prepaid', 'vendor_float_hold_minutes', default=15)


class Position(NamedTuple):
    funded: Decimal
    booked: Decimal
    drawn: Decimal
    credit_line: Decimal

    @property
    def available(self) -> Decimal:
        return self.funded + self.booked - self.drawn

    def as_float(self) -> core.Float:
        # limits.Float: available = balance - reserved + credit_line
        return core.Float(
            balance=self.funded - self.credit_line,
            credit_line=self.credit_line,
            reserved=self.drawn - self.booked,
        )


class OneRowPerVendorMixin(CompanyMixin):
    "One row per vendor (the funding row, the draw counter)"

    __slots__ = ()
    _company_links = ('vendor',)

    vendor = fields.Many2One(
        'prepaid.vendor', "Vendor", required=True, ondelete='CASCADE'
    )

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


class FloatPosition(OneRowPerVendorMixin, ModelSQL):
    "What a vendor may still sell: the funding row (see the module docstring)"

    __name__ = 'prepaid.vendor.float'
    funded = fields.Numeric("Funded", digits=(16, 2), required=True)
    booked = fields.Numeric("Booked", digits=(16, 2), required=True)

    @classmethod
    def __register__(cls, module):
        super().__register__(module)
        # drawn moved to the draw counter: the column of a database created
        # before must not refuse the new rows.
        table = cls.__table_handler__(module)
        if table.column_exist('drawn'):
            table.not_null_action('drawn', 'remove')

    @staticmethod
    def default_booked():
        return ZERO

    @classmethod
    def open(cls, vendors) -> None:
        """The empty position of new vendors (funded: their credit line),
        written by the server only (no group writes positions)"""
        Counter = Pool().get('prepaid.vendor.float.counter')
        with without_check_access():
            cls.create(
                [
                    {
                        'vendor': v.id,
                        'company': v.company.id,
                        'funded': v.credit_line or ZERO,
                        'booked': ZERO,
                    }
                    for v in vendors
                ]
            )
            Counter.create(
                [
                    {'vendor': v.id, 'company': v.company.id, 'drawn': ZERO}
                    for v in vendors
                ]
            )

    @classmethod
    def positions(cls, vendors) -> dict[int, Position]:
        pool = Pool()
        Vendor = pool.get('prepaid.vendor')
        Counter = pool.get('prepaid.vendor.float.counter')
        t = cls.__table__()
        counter = Counter.__table__()
        vendor = Vendor.__table__()
        cursor = Transaction().connection.cursor()
        ids = [v.id for v in vendors]
        cursor.execute(
            *t.join(vendor, condition=vendor.id == t.vendor)
            .join(counter, condition=counter.vendor == t.vendor)
            .select(
                t.vendor, t.funded, t.booked, counter.drawn, vendor.credit_line,
                where=t.vendor.in_(ids),
            )
        )  # fmt: skip
        return {
            vid: Position(_d(funded), _d(booked), _d(drawn), _d(line))
            for vid, funded, booked, drawn, line in cursor
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

    # ------------------------------------------------------------ the sale
    @classmethod
    def draw(
        cls, vendor_id: int, amount: Decimal, reference: str | None = None
    ) -> Decimal | None:
        """Take amount from the vendor's float for a sale; the remaining
        available amount, or None (refused: nothing changed) when it would
        take the float below its floor.  Anywhere in the sale's transaction:
        its commit keeps the draw, its rollback gives it back."""
        if not isinstance(amount, Decimal) or amount <= 0:
            raise ValueError(f'a draw is a positive Decimal, not {amount!r}')
        pool = Pool()
        Counter = pool.get('prepaid.vendor.float.counter')
        Reservation = pool.get('prepaid.vendor.float.reservation')
        Sold = pool.get('prepaid.vendor.float.sold')
        transaction = Transaction()
        if backend.name == 'postgresql':
            row = _out_of_band(
                transaction.database,
                f'WITH d AS ('
                f'UPDATE "{Counter._table}" AS c SET drawn = c.drawn + %(a)s '
                f'FROM "{cls._table}" AS p '
                f'WHERE c.vendor = %(v)s AND p.vendor = %(v)s '
                f'AND p.funded + p.booked - c.drawn >= %(a)s '
                f'RETURNING c.vendor, c.company, p.funded + p.booked - c.drawn '
                f'AS available) '
                f'INSERT INTO "{Reservation._table}" '
                f'(vendor, company, amount, reference, state, create_uid, '
                f'create_date) '
                f"SELECT vendor, company, %(a)s, %(r)s, 'held', %(u)s, "
                f"CURRENT_TIMESTAMP AT TIME ZONE 'UTC' FROM d "
                f'RETURNING id, (SELECT available FROM d)',
                {'a': amount, 'v': vendor_id, 'r': reference, 'u': transaction.user},
                vendor_id,
            )
            if row is None:
                return None
            reservation_id, available = row
            # The sale's own row: committed with the sale, or not at all.
            with without_check_access():
                Sold.create([{'reservation': reservation_id}])
            transaction.join(_Settle()).held.append(reservation_id)
            return _d(available)
        # SQLite serialises writers: the same rows, in the sale's transaction
        # (reading the funding row first is as good as a sub-select there).
        vendor = pool.get('prepaid.vendor')(vendor_id)
        position = cls.positions([vendor]).get(vendor_id)
        if position is None:
            return None
        c = Counter.__table__()
        value = _numeric(amount)
        cursor = transaction.connection.cursor()
        cursor.execute(
            *c.update(
                [c.drawn],
                [c.drawn + value],
                where=(c.vendor == vendor_id)
                & (_numeric(position.funded + position.booked) - c.drawn >= value),
            )
        )
        if not cursor.rowcount:
            return None
        with without_check_access():
            (reservation,) = Reservation.create(
                [
                    {
                        'vendor': vendor_id,
                        'company': vendor.company.id,
                        'amount': amount,
                        'reference': reference,
                        'state': 'sold',
                    }
                ]
            )
            Sold.create([{'reservation': reservation.id}])
        return cls.positions([vendor])[vendor_id].available

    @classmethod
    def release(cls, vendor_id: int, amount: Decimal) -> None:
        """Give back what a sale drew and will never book as a debit of the
        float (a reversal or cancellation before its booking, the commission
        deducted at the sale), once this transaction commits"""
        if not isinstance(amount, Decimal) or amount <= 0:
            raise ValueError(f'a release is a positive Decimal, not {amount!r}')
        if backend.name == 'postgresql':
            # After the commit, on the counter (never inside a snapshot).
            Transaction().join(_Settle()).give_back.append((vendor_id, amount))
            return
        Counter = Pool().get('prepaid.vendor.float.counter')
        c = Counter.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(
            *c.update(
                [c.drawn], [c.drawn - _numeric(amount)], where=c.vendor == vendor_id
            )
        )
        if not cursor.rowcount:
            raise ValueError(f'vendor {vendor_id} has no float position')

    # --------------------------------------------------- the funding writers
    @classmethod
    def _execute(cls, query, vendor_id: int):
        """Run one UPDATE of a funding row (with its RETURNING), the row or
        None when it changed nothing: on PostgreSQL waiting a bounded time
        for the row, and restarting the transaction (FloatBusy) when another
        funding writer changed the row after this one's snapshot"""
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        if backend.name != 'postgresql':
            # SQLite's RETURNING cannot name the alias python-sql gives.
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
                raise _busy(vendor_id) from exc
            raise
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", (previous,))
        return row

    @classmethod
    def fund(cls, vendor_id: int, amount: Decimal) -> None:
        """Raise (or lower) what the vendor may sell: a top-up's move, a
        change of credit line, a reversal credited back, in the same
        transaction"""
        cls._change(vendor_id, funded=amount)

    @classmethod
    def book(cls, vendor_id: int, amount: Decimal) -> None:
        """A drawn sale's move is posted on the float account (the booking,
        in the same transaction): the ledger (funded) goes down, booked up,
        available does not move"""
        cls._change(vendor_id, funded=-amount, booked=amount)

    @classmethod
    def _change(cls, vendor_id: int, funded=ZERO, booked=ZERO) -> None:
        t = cls.__table__()
        row = cls._execute(
            t.update(
                [t.funded, t.booked],
                [t.funded + _numeric(funded), t.booked + _numeric(booked)],
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


class FloatCounter(OneRowPerVendorMixin, ModelSQL):
    "What the sales of a vendor drew, cumulative (see the module docstring)"

    __name__ = 'prepaid.vendor.float.counter'
    drawn = fields.Numeric("Drawn", digits=(16, 2), required=True)

    @classmethod
    def __register__(cls, module):
        super().__register__(module)
        # A database made before the split: one counter per position, with
        # the position's drawn (then: drawn and not booked; booked is zero).
        Position = Pool().get('prepaid.vendor.float')
        p, c = Position.__table__(), cls.__table__()
        position = Position.__table_handler__(module)
        drawn = (
            Coalesce(p.drawn, Literal(0))
            if position.column_exist('drawn')
            else Literal(0)
        )
        cursor = Transaction().connection.cursor()
        cursor.execute(
            *c.insert(
                [c.vendor, c.company, c.drawn],
                p.select(
                    p.vendor,
                    p.company,
                    drawn,
                    where=~p.vendor.in_(c.select(c.vendor)),
                ),
            )
        )


class FloatReservation(CompanyMixin, ModelSQL):
    "A sale's draw on a vendor's float: held, then sold or released"

    __name__ = 'prepaid.vendor.float.reservation'
    _company_links = ('vendor',)

    vendor = fields.Many2One(
        'prepaid.vendor', "Vendor", required=True, ondelete='CASCADE', readonly=True
    )
    amount = fields.Numeric("Amount", digits=(16, 2), required=True, readonly=True)
    reference = fields.Char("Reference", readonly=True)
    state = fields.Selection(
        [('held', "Held"), ('sold', "Sold"), ('released', "Released")],
        "State",
        required=True,
        readonly=True,
        sort=False,
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('create_date', 'DESC'))

    @staticmethod
    def default_state():
        return 'held'

    @classmethod
    def sweep(cls, minutes: int | None = None) -> tuple[int, int]:
        """Settle the reservations left held by a crash: sold when their
        sale's mark was committed, released when not and older than minutes
        (``[prepaid] vendor_float_hold_minutes``); (sold, released) counts"""
        Sold = Pool().get('prepaid.vendor.float.sold')
        minutes = hold_minutes() if minutes is None else minutes
        before = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(
            minutes=minutes
        )
        if backend.name == 'postgresql':
            database = Transaction().database
            (sold,) = _out_of_band(
                database,
                f'WITH s AS (UPDATE "{cls._table}" AS r '
                f"SET state = 'sold', write_date = CURRENT_TIMESTAMP AT TIME "
                f"ZONE 'UTC' WHERE r.state = 'held' AND EXISTS (SELECT 1 FROM "
                f'"{Sold._table}" AS m WHERE m.reservation = r.id) RETURNING 1) '
                f'SELECT count(*) FROM s',
                {},
            )
            (released,) = _release_pg(
                database,
                f'r.create_date < %(before)s AND NOT EXISTS (SELECT 1 FROM '
                f'"{Sold._table}" AS m WHERE m.reservation = r.id)',
                {'before': before},
            )
            return sold, released
        r, m = cls.__table__(), Sold.__table__()
        cursor = Transaction().connection.cursor()
        marked = m.select(m.reservation)
        cursor.execute(
            *r.update(
                [r.state],
                ['sold'],
                where=(r.state == 'held') & r.id.in_(marked),
            )
        )
        sold = cursor.rowcount
        cursor.execute(
            *r.select(
                r.id,
                r.vendor,
                r.amount,
                where=(r.state == 'held')
                & (r.create_date < before)
                & ~r.id.in_(marked),
            )
        )
        stale = cursor.fetchall()
        Counter = Pool().get('prepaid.vendor.float.counter')
        c = Counter.__table__()
        for reservation_id, vendor_id, amount in stale:
            cursor.execute(
                *r.update([r.state], ['released'], where=r.id == reservation_id)
            )
            cursor.execute(
                *c.update(
                    [c.drawn],
                    [c.drawn - _numeric(_d(amount))],
                    where=c.vendor == vendor_id,
                )
            )
        # Raw writes: the records read before in this transaction are stale.
        transaction = Transaction()
        transaction.counter += 1
        for cache in transaction.cache.values():
            cache.pop(cls.__name__, None)
        return sold, len(stale)


class FloatSold(ModelSQL):
    """A drawn sale committed: inserted by the sale's own transaction, so it
    exists if and only if the sale did (see the module docstring)"""

    __name__ = 'prepaid.vendor.float.sold'

    reservation = fields.Integer("Reservation", required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'reservation_unique',
                Unique(t, t.reservation),
                'prepaid_vendor_portal.msg_float_sold_unique',
            ),
        ]


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            (
                'ir.cron|release_vendor_float_holds',
                "Release Vendor Float Holds Left by a Crash",
            )
        )

    @classmethod
    def release_vendor_float_holds(cls):
        Reservation = Pool().get('prepaid.vendor.float.reservation')
        sold, released = Reservation.sweep()
        if sold or released:
            logger.warning(
                'vendor float holds left by a crash: %s sold, %s released',
                sold,
                released,
            )


class _Settle:
    """The data manager of a transaction's draws and give-backs on
    PostgreSQL: after its commit, the held reservations become sold and the
    give-backs are applied; after its rollback, the held reservations are
    released (see the module docstring).  One per transaction."""

    def __init__(self):
        self.held: list[int] = []
        self.give_back: list[tuple[int, Decimal]] = []

    def __eq__(self, other):
        return isinstance(other, _Settle)

    def __hash__(self):
        return hash(_Settle)

    def tpc_begin(self, transaction):
        pass

    def commit(self, transaction):
        pass

    def tpc_vote(self, transaction):
        pass

    def tpc_finish(self, transaction):
        held, give_back = self.held, self.give_back
        self.held, self.give_back = [], []
        Reservation = Pool().get('prepaid.vendor.float.reservation')
        Counter = Pool().get('prepaid.vendor.float.counter')
        if held:
            # Only a label (the sold marks are the truth): lost, the sweeper
            # sets it.
            _out_of_band(
                transaction.database,
                f'UPDATE "{Reservation._table}" SET state = %(s)s, write_date = '
                f"CURRENT_TIMESTAMP AT TIME ZONE 'UTC' "
                f"WHERE id = ANY(%(ids)s) AND state = 'held' RETURNING id",
                {'s': 'sold', 'ids': held},
            )
        for vendor_id, amount in give_back:
            _out_of_band(
                transaction.database,
                f'UPDATE "{Counter._table}" SET drawn = drawn - %(a)s '
                f'WHERE vendor = %(v)s RETURNING id',
                {'a': amount, 'v': vendor_id},
                vendor_id,
            )

    def tpc_abort(self, transaction):
        held = self.held
        self.held, self.give_back = [], []
        if not held:
            return
        try:
            _release_pg(transaction.database, 'r.id = ANY(%(ids)s)', {'ids': held})
        except Exception:
            # Left held: the sweeper releases it (the vendor sells less
            # meanwhile, never more).
            logger.exception('vendor float holds %s not released', held)


def _release_pg(database, where: str, params: dict):
    """Release the held reservations matching where (on alias r) and give
    their amounts back to the draw counters, in one statement; (count,)"""
    pool = Pool()
    r_table = pool.get('prepaid.vendor.float.reservation')._table
    c_table = pool.get('prepaid.vendor.float.counter')._table
    return _out_of_band(
        database,
        f'WITH r AS (UPDATE "{r_table}" AS r SET state = %(released)s, '
        f"write_date = CURRENT_TIMESTAMP AT TIME ZONE 'UTC' "
        f"WHERE r.state = 'held' AND {where} RETURNING r.vendor, r.amount), "
        f's AS (SELECT vendor, SUM(amount) AS amount FROM r GROUP BY vendor), '
        f'u AS (UPDATE "{c_table}" AS c SET drawn = c.drawn - s.amount '
        f'FROM s WHERE c.vendor = s.vendor RETURNING 1) '
        f'SELECT count(*) FROM r',
        dict(params, released='released'),
    )


def _out_of_band(database, query: str, params: dict, vendor_id: int | None = None):
    """Run query in a transaction of its own, READ COMMITTED, on a second
    connection of the pool (given back at once); its first row or None.

    READ COMMITTED explicitly, not autocommit: an autocommit statement takes
    the server's default isolation, which a site may have set to repeatable
    read, and SET LOCAL needs a transaction."""
    from psycopg import IsolationLevel

    connection = database.get_connection()
    try:
        connection.isolation_level = IsolationLevel.READ_COMMITTED
        cursor = connection.cursor()
        try:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)",
                (f'{locking.lock_timeout()}s',),
            )
            cursor.execute(query, params)
            row = cursor.fetchone()
            connection.commit()
        except backend.DatabaseOperationalError as exc:
            connection.rollback()
            if getattr(exc, 'sqlstate', None) == locking.LOCK_NOT_AVAILABLE:
                raise _busy(vendor_id) from exc
            raise
        except Exception:
            connection.rollback()
            raise
    finally:
        database.put_connection(connection)
    return row


def _busy(vendor_id) -> ValidationError:
    return ValidationError(
        gettext('prepaid_vendor_portal.msg_float_busy', vendor=vendor_id)
    )


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


def pay_debts(vendor, debts, amount: Decimal, receipt: str, date: dt.date) -> list:
    """An account payment a vendor took from a customer, in the caller's
    transaction after its draw on the float: the customer's debts reduced by
    amount (``Debt.pay``, oldest first) and the money booked and posted, one
    move per debt reduced: Dr the float account (the owner party) / Cr the
    debt receivable (the customer).  The payment's booking is the float's
    too (``FloatPosition.book``): unlike a vend's, it cannot wait for the
    booker, which books vends only.  Returns the debt lines."""
    pool = Pool()
    Debt = pool.get('prepaid.debt')
    if not vendor.float_account:
        raise ValidationError(
            gettext(
                'prepaid_vendor_portal.msg_sale_no_float_account',
                vendor=vendor.rec_name,
            )
        )
    description = f'Account payment {receipt} ({vendor.code})'
    with Transaction().set_context(company=vendor.company.id):
        receivable = pool.get('prepaid.configuration')(1).require('debt_account')
        with without_check_access():
            lines = Debt.pay(debts, amount, description)
        moves = []
        for line in lines:
            moves.append(
                accounting.adjustment_move(
                    date,
                    description,
                    [
                        (vendor.float_account, -line.amount, vendor.party, description),
                        (receivable, line.amount, line.debt.party, description),
                    ],
                )
            )
            moves[-1].origin = line
        accounting.post_adjustments(moves)
    pool.get('prepaid.vendor.float').book(vendor.id, amount)
    return lines
