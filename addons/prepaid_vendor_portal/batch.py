"""Sales batches: one terminal's XMLVend sales of a business day.

A batch is opened by the terminal (XMLVend ``StartSalesBatchReq``) or, when
a sale finds none open, by that sale (a day batch).  Subtotals leave it
open; ``EndSalesBatchReq`` closes it, and the cron closes the batches still
open from past business days (API terminals that never close their own).
The close of a day's last batch makes the vendor's daily settlement file
(vendor_settlement.py).
A sale records its batch on its stored answer
(``prepaid.vendor.xmlvend.answer.batch``): the batch's count and amount are
computed from those sales, never kept twice.  Bank and shift batches are
not kept (docs/xmlvend.md section 6.1).
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from trytond import backend
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.modules.prepaid_vending import locking
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.pool import Pool, PoolMeta
from trytond.transaction import without_check_access

from . import days

logger = logging.getLogger(__name__)
SALE = 'CreditVendRequest'


class Batch(CompanyMixin, ModelSQL, ModelView):
    "XMLVend Sales Batch"

    __name__ = 'prepaid.vendor.batch'
    _company_links = ('terminal',)

    terminal = fields.Many2One(
        'prepaid.vendor.terminal',
        "Terminal",
        required=True,
        readonly=True,
        ondelete='RESTRICT',
    )
    vendor = fields.Many2One(
        'prepaid.vendor', "Vendor", required=True, readonly=True, ondelete='RESTRICT'
    )
    sequence = fields.Integer(
        "Sequence",
        required=True,
        readonly=True,
        help="The terminal's batch number (the XMLVend seqNo).",
    )
    day = fields.Date("Business Day", required=True, readonly=True)
    state = fields.Selection(
        [('open', "Open"), ('closed', "Closed")], "State", required=True, readonly=True
    )
    opened_at = fields.Timestamp("Opened At", required=True, readonly=True)
    closed_at = fields.Timestamp("Closed At", readonly=True)
    closed_by = fields.Selection(
        # 'cron': the day close, by the cron or by the next day's first sale.
        [(None, ''), ('terminal', "Terminal"), ('cron', "Day Close")],
        "Closed By",
        readonly=True,
    )
    sales = fields.One2Many(
        'prepaid.vendor.xmlvend.answer', 'batch', "Sales", readonly=True
    )
    sale_count = fields.Function(fields.Integer("Sales"), 'get_totals')
    sale_amount = fields.Function(
        fields.Numeric("Amount", digits=(16, 2)), 'get_totals'
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        # A sale looks up its terminal's open batch.
        cls._sql_indexes.add(
            Index(
                t,
                (t.terminal, Index.Range()),
                (t.state, Index.Equality()),
            )
        )
        cls._order = [('opened_at', 'DESC'), ('id', 'DESC')]

    @staticmethod
    def default_state():
        return 'open'

    def get_rec_name(self, name):
        return f'{self.terminal.rec_name} #{self.sequence}'

    @classmethod
    def get_totals(cls, batches, names):
        "Count and tender of the XMLVend sales recorded in each batch"
        Answer = Pool().get('prepaid.vendor.xmlvend.answer')
        count = {b.id: 0 for b in batches}
        amount = {b.id: Decimal('0.00') for b in batches}
        with without_check_access():
            sales = Answer.search(
                [
                    ('batch', 'in', [b.id for b in batches]),
                    ('operation', '=', SALE),
                ]
            )
            for sale in sales:
                count[sale.batch.id] += 1
                amount[sale.batch.id] += sale.vend.tender if sale.vend else 0
        result = {'sale_count': count, 'sale_amount': amount}
        return {n: result[n] for n in names}

    # -- the XMLVend backend's calls ------------------------------------------
    @classmethod
    def open_of(cls, terminal):
        "The terminal's open batch, or None"
        with without_check_access():
            batches = cls.search(
                [('terminal', '=', terminal.id), ('state', '=', 'open')],
                limit=1,
                order=[('id', 'DESC')],
            )
        return batches[0] if batches else None

    @classmethod
    def open(cls, terminal, now: dt.datetime):
        """Open a batch for the terminal (the caller found none open).

        The terminal's row is taken first: two requests of one till opening
        a batch at once would both find none open."""
        with without_check_access():
            cls._take_terminal(terminal)
            again = cls.open_of(terminal)
            if again is not None:
                return again
            vendor = terminal.outlet.vendor
            day = cls.today(vendor, now)
            sequence = cls.search_count([('terminal', '=', terminal.id)]) + 1
            (batch,) = cls.create(
                [
                    {
                        'company': terminal.company.id,
                        'terminal': terminal.id,
                        'vendor': vendor.id,
                        'sequence': sequence,
                        'day': day,
                        'state': 'open',
                        'opened_at': now.replace(tzinfo=None),
                    }
                ]
            )
        return batch

    @classmethod
    def today(cls, vendor, now: dt.datetime) -> dt.date:
        "The business day of now in the vendor's utility (from midnight)"
        start, _ = days.business_day(now, vendor.timezone())
        return start.astimezone(vendor.timezone()).date()

    @staticmethod
    def _take_terminal(terminal) -> None:
        """Hold the terminal's row until commit with an UPDATE, as the vend
        holds its meter (prepaid_vending's locking.py): a request that
        waited for another one which opened a batch gets a serialisation
        failure and restarts with a snapshot that sees that batch (a
        ``SELECT ... FOR UPDATE`` would let it go on with its old snapshot
        and open a second batch).  SQLite serialises writers."""
        if backend.name != 'postgresql':
            return
        Terminal = Pool().get('prepaid.vendor.terminal')
        t = Terminal.__table__()
        update = t.update([t.write_date], [t.write_date], where=t.id == terminal.id)
        locking.update_waiting(update, terminal.rec_name, locking.lock_timeout())

    @classmethod
    def for_sale(cls, terminal, now: dt.datetime):
        """The batch a sale goes in: the open one of today, else a day batch
        opened now.  A batch of a past day the cron has not closed yet is
        closed first: a sale after midnight never lands in yesterday."""
        batch = cls.open_of(terminal)
        if batch is not None and batch.day < cls.today(batch.vendor, now):
            cls.close([batch], now, 'cron')
            batch = None
        return batch or cls.open(terminal, now)

    @classmethod
    def close(cls, batches, now: dt.datetime, by: str):
        with without_check_access():
            cls.write(
                batches,
                {
                    'state': 'closed',
                    'closed_at': now.replace(tzinfo=None),
                    'closed_by': by,
                },
            )
        # The vendor's settlement file of a day over whose last batch this was.
        Pool().get('prepaid.vendor.settlement').day_closed(batches, now)

    @classmethod
    def close_past_days(cls, now: dt.datetime | None = None) -> int:
        """Close the open batches of past business days (the cron): a
        batch opened on an earlier day than today's, in its utility's time
        zone, midnight to midnight.  Returns how many were closed."""
        now = now or dt.datetime.now(dt.UTC)
        with without_check_access():
            batches = cls.search([('state', '=', 'open')])
            stale = []
            for batch in batches:
                if batch.day < cls.today(batch.vendor, now):
                    stale.append(batch)
            if stale:
                cls.close(stale, now, 'cron')
            # The files a close could not make (no master key yet, ...).
            Pool().get('prepaid.vendor.settlement').make_missing(now)
        return len(stale)


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            (
                'prepaid.vendor.batch|close_past_days',
                "Close the Vendor Terminals' Batches of Past Days",
            )
        )
