"""The locking protocol of a sale: which rows a vend holds, in which order,
and what happens when it has to wait.

A vend takes, until its commit:

1. its meter (``lock_meter``): vends on one meter one after the other, so the
   month position each one prices from is the latest committed; vends on
   other meters never wait;
2. its shift, shared (``share_lock_shift``): a shift that is closing
   (``lock_shift_for_close``) waits for the vends already in it, and a vend
   arriving meanwhile finds the shift closed;
3. its sales point's receipt sequence (``lock_receipt_sequence``), for the
   next gapless receipt number: vends at one counter take their numbers one
   after the other (``lock_sales_point`` only for a sales point older than
   its series, once, to create it).

A consumption bill of a remote-prepaid account takes the meter as a vend does
(``lock_meter_for_bill``), so a vend and a bill of the same month cannot both
take the period charges.

The exclusive locks are ``UPDATE`` statements, not ``SELECT ... FOR UPDATE``:
a transaction that waited for another one which updated the row gets a
serialisation failure from PostgreSQL (repeatable read) instead of going on
with its old snapshot; ``MeterBusy`` then restarts it with a fresh one.  The
wait is bounded by ``[prepaid] vend_lock_timeout``; past it the sale is
refused with a clear message and nothing is charged.  SQLite serialises
writers, so there the statements only mark the rows.
"""

from __future__ import annotations

from sql import For
from sql.functions import CurrentTimestamp
from trytond import backend, config
from trytond.i18n import gettext
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool
from trytond.transaction import Transaction, TransactionError

from . import trytond_private
from .exceptions import VendError

#: SQLSTATE of PostgreSQL's serialisation failure and lock timeout.
SERIALIZATION_FAILURE = '40001'
LOCK_NOT_AVAILABLE = '55P03'


class MeterBusy(TransactionError):
    """Another vend on the meter committed after this transaction's snapshot:
    the dispatcher restarts the transaction (unbounded, unlike the retries of
    DatabaseOperationalError), which then waits for the lock again."""


def lock_timeout() -> int:
    "Seconds a sale waits for a row lock: [prepaid] vend_lock_timeout"
    return config.getint('prepaid', 'vend_lock_timeout', default=10)


def lock_meter(meter) -> None:
    """Hold meter's row until commit, waiting (not failing) while another
    vend holds it.

    Trytond's ``Model.lock`` takes ``FOR UPDATE NOWAIT`` at the start of a
    restarted transaction and gives up after a few tries (HTTP 503 for the
    client).  Here the vend waits on an ``UPDATE`` of its meter row instead:
    the update both takes the lock and marks the row, so a vend that waited
    for another one on the same meter gets a serialisation failure from
    PostgreSQL (repeatable read) and restarts with a fresh snapshot; without
    it, the month position read next could be stale.  The lock timeout
    bounds the wait.  Vends on other meters do not wait for this one (vends
    at one sales point do, for their receipt number: ``lock_sales_point``)."""
    Meter = Pool().get('prepaid.meter')
    table = Meter.__table__()
    update = table.update(
        [table.last_vend_date], [CurrentTimestamp()], where=table.id == meter.id
    )
    if backend.name != 'postgresql':
        # SQLite serialises writers: trytond's lock is enough there.
        Meter.lock([meter])
        Transaction().connection.cursor().execute(*update)
        return
    update_waiting(update, meter.serial, lock_timeout())
    # Tell trytond the row is locked, so Model.lock([meter]) in the same
    # transaction (STS TID allocation) does not restart it.
    trytond_private.mark_locked(Meter._table, [meter.id])


def lock_meter_for_bill(meter) -> None:
    """Take the meter row that a vend takes (``lock_meter``), so that a vend
    and a bill of the same month cannot both take the period charges.  An
    UPDATE (of a column to itself), not a SELECT ... FOR UPDATE: a vend that
    waited for this bill must get a serialisation failure and restart with
    the bill in view; after a mere row lock, PostgreSQL would let it go on
    with its old snapshot.  A bill that waited for a vend restarts likewise
    (``MeterBusy``)."""
    if backend.name != 'postgresql':
        return  # SQLite serialises writers
    Meter = Pool().get('prepaid.meter')
    table = Meter.__table__()
    update = table.update(
        [table.last_vend_date],
        [table.last_vend_date],
        where=table.id == meter.id,
    )
    update_waiting(update, meter.serial, lock_timeout())


def share_lock_shift(session) -> None:
    """Share-lock the shift row until commit and check it is still open.

    A closing shift holds its row FOR UPDATE (``lock_shift_for_close``); the
    vend waits for it and, the row being updated since its snapshot, restarts
    (``MeterBusy``) and then finds no open shift.  Vends of one shift share
    this lock (they wait for each other only for the sales point's receipt
    number, ``lock_receipt_sequence``)."""
    Session = Pool().get('prepaid.cashier.session')
    table = Session.__table__()
    cursor = Transaction().connection.cursor()
    query = table.select(table.state, where=table.id == session.id)
    if backend.name == 'postgresql':
        query.for_ = For('SHARE')
    try:
        cursor.execute(*query)
    except backend.DatabaseOperationalError as exc:
        if getattr(exc, 'sqlstate', None) == SERIALIZATION_FAILURE:
            raise MeterBusy() from exc
        raise
    (state,) = cursor.fetchone()
    if state != 'open':
        raise ValidationError(
            gettext('prepaid_vending.msg_session_closed', session=session.rec_name)
        )


def lock_shift_for_close(session) -> None:
    """Hold the shift row FOR UPDATE until commit, for its close: trytond
    restarts the transaction with the lock taken, so the snapshot sees every
    vend committed before, and the vends that wait on ``share_lock_shift``
    restart and find the shift closed."""
    Session = Pool().get('prepaid.cashier.session')
    Session.lock([session])


def lock_sales_point(sales_point) -> None:
    """Hold the sales point's row until commit (its receipt series).

    As for the meter (``lock_meter``) the lock is an UPDATE, so a vend that
    waited for another one gets a serialisation failure and restarts with a
    snapshot that sees the number just taken; a mere ``FOR UPDATE`` would let
    it read the same last number again."""
    SalesPoint = Pool().get('prepaid.sales_point')
    table = SalesPoint.__table__()
    update = table.update(
        [table.write_date], [table.write_date], where=table.id == sales_point.id
    )
    if backend.name != 'postgresql':
        # SQLite serialises writers.
        Transaction().connection.cursor().execute(*update)
        return
    update_waiting(update, sales_point.rec_name, lock_timeout())


def lock_receipt_sequence(sequence_id: int, what: str) -> None:
    """Hold the row of a sales point's strict receipt sequence until commit
    (``receipt_series``).

    An UPDATE as for the meter: a vend that waited for another one restarts
    with a snapshot that sees the number just taken.  Trytond is then told
    the row is locked, or ``ir.sequence.strict.get`` would restart the
    transaction to take the lock again with ``FOR UPDATE NOWAIT``."""
    Sequence = Pool().get('ir.sequence.strict')
    table = Sequence.__table__()
    update = table.update([table.id], [table.id], where=table.id == sequence_id)
    if backend.name == 'postgresql':
        update_waiting(update, what, lock_timeout())
    else:
        # SQLite serialises writers.
        Transaction().connection.cursor().execute(*update)
    trytond_private.mark_locked(Sequence._table, [sequence_id])


def update_waiting(update, what: str, seconds: int) -> None:
    """Run update (of one row, on PostgreSQL) waiting at most seconds for the
    row lock (see ``lock_meter``): a serialisation failure restarts the
    transaction (``MeterBusy``), a time-out refuses the vend."""
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
