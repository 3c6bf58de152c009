"""Gapless receipt numbers: one ``ir.sequence.strict`` per sales point.

A receipt handed over a counter is a fiscal document: tax authorities and
auditors expect the receipts of a point of sale numbered without gaps, so
that a missing number means a missing receipt.  Tryton's strict sequence
gives that: its counter is a row written in the vend's transaction, so a vend
rolled back takes its number with it (a normal ``ir.sequence`` uses a database
sequence, which never goes back).

The price is that vends at one sales point take their numbers one after the
other (the counter row is locked until commit); cashiers at different sales
points never wait for each other.  Vends without a sales point (API channels)
keep the configured normal sequence (``vend_sequence``): no receipt is printed
by us, the channel's own document is the customer's proof, and a shared strict
counter would serialise every API vend of the installation.
"""

import datetime as dt

from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Id
from trytond.transaction import Transaction, without_check_access

from . import locking

#: Digits of the number after the sales point code (CODE-00000001).
PADDING = 8


class SalesPoint(metaclass=PoolMeta):
    __name__ = 'prepaid.sales_point'

    receipt_sequence = fields.Many2One(
        'ir.sequence.strict',
        "Receipt Sequence",
        readonly=True,
        ondelete='RESTRICT',
        domain=[
            (
                'sequence_type',
                '=',
                Id('prepaid_vending', 'sequence_type_receipt'),
            ),
        ],
        help="The gapless series of the receipts printed here, created with "
        "the sales point (whoever may create a sales point gets its series: "
        "the sequence is the system's, not the user's).",
    )

    @classmethod
    def on_modification(cls, mode, sales_points, field_names=None):
        super().on_modification(mode, sales_points, field_names=field_names)
        if mode == 'create':
            cls.create_receipt_sequences(
                [s for s in sales_points if not s.receipt_sequence]
            )

    @classmethod
    @without_check_access
    def create_receipt_sequences(cls, sales_points) -> None:
        """Give sales_points their strict receipt series, starting after the
        last receipt number already used (sales points older than the series)"""
        pool = Pool()
        Sequence = pool.get('ir.sequence.strict')
        ModelData = pool.get('ir.model.data')
        Vend = pool.get('prepaid.vend')
        if not sales_points:
            return
        kind = ModelData.get_id('prepaid_vending', 'sequence_type_receipt')
        vend = Vend.__table__()
        cursor = Transaction().connection.cursor()
        for sales_point in sales_points:
            cursor.execute(
                *vend.select(
                    vend.receipt_sequence,
                    where=vend.sales_point == sales_point.id,
                    order_by=[vend.receipt_sequence.desc.nulls_last],
                    limit=1,
                )
            )
            row = cursor.fetchone()
            last = row[0] if row and row[0] is not None else 0
            (sequence,) = Sequence.create(
                [
                    {
                        'name': f'Receipts {sales_point.code}',
                        'sequence_type': kind,
                        'prefix': f'{sales_point.code}-',
                        'padding': PADDING,
                        'number_next': last + 1,
                    }
                ]
            )
            cls.write([sales_point], {'receipt_sequence': sequence.id})


def next_receipt(sales_point, date: dt.date) -> tuple[str, int]:
    """The next receipt number of sales_point and its position in the series,
    taken in the caller's transaction (a rollback gives it back).

    The counter row is locked by ``locking.lock_receipt_sequence`` (the
    vend's locking protocol: wait, then restart with a fresh snapshot)
    rather than by ``ir.sequence.strict``'s own ``FOR UPDATE NOWAIT``, which
    restarts the transaction whenever the row is busy."""
    pool = Pool()
    Sequence = pool.get('ir.sequence.strict')
    SalesPoint = pool.get('prepaid.sales_point')
    if not sales_point.receipt_sequence:
        # A sales point created before the series: one vend creates it, under
        # the sales point's lock so that two do not.
        locking.lock_sales_point(sales_point)
        sales_point = SalesPoint(sales_point.id)
        if not sales_point.receipt_sequence:
            SalesPoint.create_receipt_sequences([sales_point])
            sales_point = SalesPoint(sales_point.id)
    sequence_id = sales_point.receipt_sequence.id
    locking.lock_receipt_sequence(sequence_id, sales_point.rec_name)
    sequence = Sequence(sequence_id)
    position = sequence.number_next_internal
    with Transaction().set_context(date=date):
        number = sequence.get()
    return number, position
