"""The vend's draft accounting move, written set-based (:func:`insert_move`).

Every other set-based write goes through :mod:`fastpath`.  The accounting
models are not ones the fast path writes (their create and modification
hooks are Tryton's account checks, which it does not know), so the move
keeps this narrower writer, whose checks are the ones Tryton makes on move
lines: open journal period, account neither closed nor a view, party when
the account requires one, balance -> line state.

Why set-based: the ORM's ``create`` re-reads every new record to validate it
and, for ``account.move.line``, re-checks the journal period and re-balances
the move with two UPDATEs; every value written here is computed by the
pipeline from records it has just read and checked.  The database enforces
NOT NULL, unique and CHECK constraints, and an integrity error is translated
into Tryton's message as ``ModelSQL.create`` does.
"""

from __future__ import annotations

import datetime as dt
import weakref
from decimal import Decimal

from sql import Column
from sql.functions import CurrentTimestamp
from trytond import backend
from trytond.i18n import gettext
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.transaction import Transaction

from . import trytond_private
from .fastpath import scalar  # noqa: F401 (insert_move; accounting)

#: Columns ModelSQL.create fills itself.
_MAGIC = {'id', 'create_uid', 'create_date', 'write_uid', 'write_date'}


def _columns(Model) -> dict:
    """The stored fields of Model (name -> field), worked out once per class:
    the fields of a pool's class do not change (read-only for callers)."""
    columns = _columns_memo.get(Model)
    if columns is None:
        columns = _columns_memo[Model] = {
            name: field
            for name, field in Model._fields.items()
            if name not in _MAGIC and field.sql_type() is not None
        }
    return columns


_columns_memo: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def insert_rows(Model, rows: list[dict]) -> list[int]:
    """Create rows of Model (values as for ``create``: records or ids for
    relations, no One2Many) and return their ids, in order.

    The caller vouches for the values (see the module docstring)."""
    if not rows:
        return []
    pool = Pool()
    Trigger = pool.get('ir.trigger')
    if Trigger.get_triggers(Model.__name__, 'create'):
        # A trigger expects the ORM's create: keep its behaviour.
        return [r.id for r in Model.create(rows)]
    transaction = Transaction()
    database = transaction.database
    cursor = transaction.connection.cursor()
    table = Model.__table__()
    stored = _columns(Model)
    given = set().union(*rows)
    missing = [n for n in stored if n not in given]
    defaults = Model.default_get(missing, with_rec_name=False) if missing else {}
    names = sorted(given | set(defaults))
    columns = [table.create_uid, table.create_date] + [Column(table, n) for n in names]
    values = []
    for row in rows:
        full = {**defaults, **row}
        values.append(
            [transaction.user, CurrentTimestamp()]
            + [stored[n].sql_format(full.get(n)) for n in names]
        )
    try:
        ids = None
        if len(values) > 1 and database.has_multirow_insert():
            ids = database.nextid(transaction.connection, Model._table, len(values))
        if ids is not None:
            cursor.execute(
                *table.insert(
                    columns + [table.id], [v + [i] for v, i in zip(values, ids)]
                )
            )
        else:
            ids = []
            for value in values:
                if database.has_returning():
                    cursor.execute(*table.insert(columns, [value], [table.id]))
                    ids.append(cursor.fetchone()[0])
                else:
                    cursor.execute(*table.insert(columns, [value]))
                    ids.append(database.lastid(cursor))
    except backend.DatabaseIntegrityError as exception:
        # As ModelSQL.create: name the constraint in the user's language.
        with transaction.new_transaction():
            for row in rows:
                trytond_private.raise_integrity_error(Model, exception, row)
        raise
    transaction.counter += 1
    transaction.create_records[Model.__name__].extend(ids)
    return ids


def adopt(record, id_: int) -> None:
    """Give an in-memory record the id it was inserted with, keeping its
    values in memory (the pipeline reads them again; no re-read from the DB).

    Mirrors what ``ModelStorage.save`` does after ``create``."""
    trytond_private.adopt_id(record, id_)


def account_flags(account, date=None, company=None) -> tuple[bool, bool]:
    """(usable, party_required) of account: what the domain of
    ``account.move.line.account`` asks (not a view, not closed, of the
    move's company, valid on the move's date), and whether its lines need a
    party.  A few columns instead of the ORM read of the whole
    account.account record (about 5 ms per account)."""
    transaction = Transaction()
    # Remembered while nothing is written (the counter moves with each write):
    # the lines of a move are built, then checked, with the same accounts.
    counter, rows = _account_memo.get(transaction, (None, None))
    if counter != transaction.counter:
        rows = {}
        _account_memo[transaction] = (transaction.counter, rows)
    if account.id not in rows:
        Account = Pool().get('account.account')
        table = Account.__table__()
        cursor = transaction.connection.cursor()
        cursor.execute(
            *table.select(
                table.type,
                table.closed,
                table.party_required,
                table.company,
                table.start_date,
                table.end_date,
                where=table.id == account.id,
            )
        )
        rows[account.id] = cursor.fetchone()
    type_, closed, party_required, company_id, start, end = rows[account.id]
    usable = type_ is not None and not closed
    if company is not None:
        usable = usable and company_id == company.id
    if date is not None:
        start, end = as_date(start), as_date(end)
        usable = usable and (start is None or start <= date)
        usable = usable and (end is None or end >= date)
    return bool(usable), bool(party_required)


def as_date(value):
    "SQLite returns dates as text"
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


_account_memo: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def insert_move(move) -> int:
    """Write the draft move built by ``accounting.vend_move`` (unsaved, with
    its lines and their tax lines) in three INSERTs, with the checks that
    ``account.move.line`` makes on create.  Returns the move id; move, its
    lines and tax lines get their ids in memory."""
    pool = Pool()
    Move = pool.get('account.move')
    Line = pool.get('account.move.line')
    TaxLine = pool.get('account.tax.line')
    lines = list(move.lines)
    for line in lines:
        account = line.account
        usable, party_required = account_flags(account, move.date, move.company)
        if not usable:
            raise AccessError(
                gettext('account.msg_line_closed_account', account=account.rec_name)
            )
        if bool(line.party) != party_required:
            error = 'party_set' if line.party else 'party_required'
            raise AccessError(
                gettext(
                    f'account.msg_line_{error}',
                    account=account.rec_name,
                    line=line.description or '',
                )
            )
    # Tryton's check refuses a closed journal period and creates a missing
    # one; the open one (every vend but the first of a period) is one query.
    journal_period = pool.get('account.journal.period').__table__()
    state = scalar(
        journal_period.select(
            journal_period.state,
            where=(journal_period.journal == move.journal.id)
            & (journal_period.period == move.period.id),
            limit=1,
        )
    )
    if state != 'open':
        Line.check_journal_period_modify(move.period, move.journal)
    # Move.validate_move: the lines of a balanced move are "valid".
    balance = sum((line.debit - line.credit for line in lines), Decimal(0))
    if balance:  # else surely balanced: no need to read the currency
        currency = move.company.currency
        balanced = abs(currency.round(balance)) < abs(currency.rounding)
    else:
        balanced = True
    state = 'valid' if balanced else 'draft'
    (move_id,) = insert_rows(
        Move,
        [
            {
                'company': move.company,
                'journal': move.journal,
                'date': move.date,
                'period': move.period,
                'origin': move.origin,
                'description': move.description,
                'state': 'draft',
            }
        ],
    )
    line_ids = insert_rows(
        Line,
        [
            {
                'move': move_id,
                'account': line.account,
                'debit': line.debit,
                'credit': line.credit,
                'party': line.party,
                'description': line.description,
                'state': state,
            }
            for line in lines
        ],
    )
    tax_lines = [(t, line_id) for line, line_id in zip(lines, line_ids)
        for t in line.tax_lines]  # fmt: skip
    tax_line_ids = insert_rows(
        TaxLine,
        [
            {
                'move_line': line_id,
                'tax': tax_line.tax,
                'amount': tax_line.amount,
                'type': tax_line.type,
            }
            for tax_line, line_id in tax_lines
        ],
    )
    # The caller keeps using move: give it and its lines their ids.
    adopt(move, move_id)
    for line, line_id in zip(lines, line_ids):
        adopt(line, line_id)
        line.state = state
    for (tax_line, _), tax_line_id in zip(tax_lines, tax_line_ids):
        adopt(tax_line, tax_line_id)
    return move_id
