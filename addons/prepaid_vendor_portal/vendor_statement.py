"""A vendor's statement from the books: the posted lines of its float
account (the owner party's), classified into the statement's kinds and
checked by the pure core (``settlement.build_statement``).

The ledger is the truth of the float (vendor_float.py): the closing balance
of a statement that runs to now is the float account's balance.  A sale not
yet booked is not in it; the available credit (the float position's) counts
it already.  A line belongs to the period of the moment it was recorded
(its creation, in the utility's time zone), not of its accounting date: a
booking made after midnight for yesterday's sales is today's movement.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from trytond.pool import Pool
from trytond.transaction import Transaction

from . import settlement
from .settlement import LineKind

ZERO = Decimal(0)
#: The labels the bookings of vendor_sale.py and vendor_float.py give the
#: float account's lines.
SALES_LABEL = 'Sales '
COMMISSION_LABEL = 'Commission '
PAYMENT_LABEL = 'Account payment '


def _kind(description: str, origin: str | None, amount: Decimal) -> LineKind:
    "The statement kind of a float line (signed: credit positive)"
    if description.startswith(COMMISSION_LABEL):
        return LineKind.COMMISSION
    if description.startswith(SALES_LABEL):
        # A cancellation books the sale's lines the other way round.
        return LineKind.SALE if amount < 0 else LineKind.REVERSAL
    if description.startswith(PAYMENT_LABEL) and amount < 0:
        return LineKind.SALE
    if (origin or '').startswith('prepaid.vendor,') and amount > 0:
        return LineKind.TOP_UP
    # An accountant's own move on the float account.
    return LineKind.ADJUSTMENT


def _utc(moment: dt.datetime) -> dt.datetime:
    "An aware time as the naive UTC the database stores"
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def month_to_date(vendor, now: dt.datetime) -> settlement.Statement:
    "The statement of the current month (the utility's), up to now"
    today = now.astimezone(vendor.timezone()).date()
    return float_statement(vendor, today.replace(day=1), today, now)


def float_statement(
    vendor, first_day: dt.date, last_day: dt.date, now: dt.datetime
) -> settlement.Statement:
    """The vendor's statement of the local days first_day to last_day: the
    balance before them, every posted line of its float account recorded in
    them, in time order"""
    pool = Pool()
    Line = pool.get('account.move.line')
    Move = pool.get('account.move')
    zone = vendor.timezone()
    start = _utc(dt.datetime.combine(first_day, dt.time(), zone))
    end = _utc(dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), zone))
    opening, rows = ZERO, []
    if vendor.float_account:
        line, move = Line.__table__(), Move.__table__()
        where = (
            (line.account == vendor.float_account.id)
            & (line.party == vendor.party.id)
            & (move.state == 'posted')
            & (line.create_date < end)
        )
        cursor = Transaction().connection.cursor()
        cursor.execute(
            *line.join(move, condition=move.id == line.move).select(
                line.id,
                line.create_date,
                line.credit,
                line.debit,
                line.description,
                move.description,
                move.origin,
                move.number,
                where=where,
                order_by=[line.create_date.asc, line.id.asc],
            )
        )
        for id_, created, credit, debit, text, move_text, origin, number in cursor:
            amount = _money(credit) - _money(debit)
            if created < start:
                opening += amount
                continue
            if not amount:
                continue
            description = text or move_text or ''
            rows.append(
                settlement.StatementLine(
                    at=created.replace(tzinfo=dt.UTC),
                    kind=_kind(description, origin, amount),
                    reference=number or f'line {id_}',
                    description=description,
                    amount=amount,
                )
            )
    company = vendor.company
    return settlement.build_statement(
        vendor_code=vendor.code,
        vendor_name=vendor.rec_name or vendor.code,
        currency=company.currency.code if company.currency else '',
        timezone=zone,
        first_day=first_day,
        last_day=last_day,
        opening_balance=opening,
        lines=rows,
        generated_at=now,
        credit_line=vendor.credit_line or ZERO,
    )


def _money(value) -> Decimal:
    "A Numeric column as Decimal of cents (SQLite returns floats)"
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(Decimal('0.01'))
