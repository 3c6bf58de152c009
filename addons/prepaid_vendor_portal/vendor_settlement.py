"""The daily settlement file of a vendor, kept (docs/vendors.md section 6).

One record per vendor and business day (``prepaid.vendor.settlement``),
made by the server when the day is over and every sales batch the vendor's
terminals opened that day is closed: by the close of the last batch (a
till's ``EndSalesBatchReq`` after midnight, the day close of the cron, a
sale closing yesterday's batch) or, when that could not make it, by the
next run of the hourly day-close cron (batch.py), which makes every file
still missing.  Not before the day is over: a till may still open a batch
of the day after the others ended theirs.  A file is
never made again: what the vendor was sent stays what the utility keeps.
The file is the core's :func:`.settlement.daily_file` (the sales of the
day, the reversals of the day negative), authenticated with the vendor's
settlement key, with the SHA-256 of its bytes.

The settlement key: 32 random bytes per vendor, made with its first file,
stored encrypted under the master key (prepaid_sts's ``masterkey``) in a
field that no group may read.  Without a master key no file is made (a
warning is logged; the cron tries again every hour).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from decimal import Decimal

from sql import Literal
from sql.aggregate import Max
from sql.conditionals import Case
from sql.operators import Exists
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.modules.prepaid_sts import masterkey
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access

from . import days
from . import settlement as core
from .commission.rules import Mode

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
KEY_BYTES = 32
SALE = 'CreditVendRequest'


class Vendor(metaclass=PoolMeta):
    __name__ = 'prepaid.vendor'

    # Fernet ciphertext of the HMAC key of the daily files; no group reads
    # it (field access in vendor_settlement.xml).
    settlement_key_cipher = fields.Char("Settlement Key (encrypted)", readonly=True)

    @classmethod
    def copy(cls, vendors, default=None):
        # A copy is another vendor: it gets a key of its own, not this one's.
        default = dict(default or {})
        default.setdefault('settlement_key_cipher', None)
        return super().copy(vendors, default=default)

    def settlement_key(self) -> bytes:
        "The vendor's settlement key, made (and stored encrypted) at first use"
        with without_check_access():
            (row,) = self.__class__.read([self.id], ['settlement_key_cipher'])
            if row['settlement_key_cipher']:
                return masterkey.decrypt(row['settlement_key_cipher'])
            key = secrets.token_bytes(KEY_BYTES)
            self.__class__.write(
                [self], {'settlement_key_cipher': masterkey.encrypt(key)}
            )
        return key


class Settlement(CompanyMixin, ModelSQL, ModelView):
    "Vendor Daily Settlement File"

    __name__ = 'prepaid.vendor.settlement'
    _company_links = ('vendor',)

    vendor = fields.Many2One(
        'prepaid.vendor', "Vendor", required=True, readonly=True, ondelete='RESTRICT'
    )
    day = fields.Date("Business Day", required=True, readonly=True)
    name = fields.Char("File Name", required=True, readonly=True)
    file = fields.Binary("File", required=True, readonly=True, filename='name')
    checksum = fields.Char(
        "SHA-256", size=64, required=True, readonly=True, help="Of the file's bytes."
    )
    commission_mode = fields.Selection(
        [(Mode.MONTHLY.value, "Monthly"), (Mode.AT_SALE.value, "At Sale")],
        "Commission Mode",
        required=True,
        readonly=True,
    )
    count = fields.Integer("Transactions", required=True, readonly=True)
    amount = fields.Numeric("Amount", digits=(16, 2), required=True, readonly=True)
    commission = fields.Numeric(
        "Commission", digits=(16, 2), required=True, readonly=True
    )
    net = fields.Numeric("Net", digits=(16, 2), required=True, readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'vendor_day_unique',
                Unique(t, t.vendor, t.day),
                'prepaid_vendor_portal.msg_settlement_unique',
            ),
        ]
        cls._order = [('day', 'DESC'), ('vendor', 'ASC'), ('id', 'DESC')]

    def get_rec_name(self, name):
        return self.name

    # -- making the files -----------------------------------------------------
    @classmethod
    def day_closed(cls, batches, now: dt.datetime) -> None:
        """Batches were just closed: make the file of each (vendor, day) of
        them whose day is over and has no batch left open"""
        cls.make_due({(b.vendor.id, b.day) for b in batches}, now)

    @classmethod
    def make_missing(cls, now: dt.datetime) -> int:
        """Make every file due and not made yet (the day-close cron): the
        (vendor, day) pairs with batches, all closed, and no file"""
        Batch = Pool().get('prepaid.vendor.batch')
        batch, settlement = Batch.__table__(), cls.__table__()
        cursor = Transaction().connection.cursor()
        made = settlement.select(
            settlement.id,
            where=(settlement.vendor == batch.vendor) & (settlement.day == batch.day),
        )
        cursor.execute(
            *batch.select(
                batch.vendor,
                batch.day,
                where=~Exists(made),
                group_by=[batch.vendor, batch.day],
                having=Max(Case((batch.state == 'open', Literal(1)), else_=Literal(0)))
                == 0,
            )
        )
        return cls.make_due(set(cursor), now)

    @classmethod
    def make_due(cls, pairs, now: dt.datetime) -> int:
        """The files of pairs (vendor id, day) that are due: the day over,
        no batch of it open, no file yet.  A file that cannot be made (no
        master key, a transaction the core refuses) is logged and left to
        the next run; the caller's work (a sale, a batch close) goes on.
        Returns how many were made."""
        pool = Pool()
        Vendor = pool.get('prepaid.vendor')
        Batch = pool.get('prepaid.vendor.batch')
        count = 0
        with without_check_access():
            for vendor_id, day in sorted(pairs, key=lambda p: (p[1], p[0])):
                if isinstance(day, str):  # SQLite returns dates as text
                    day = dt.date.fromisoformat(day)
                vendor = Vendor(vendor_id)
                _, end = days.business_day(day, vendor.timezone())
                if now < end or cls.search(
                    [('vendor', '=', vendor_id), ('day', '=', day)], limit=1
                ):
                    continue
                if Batch.search(
                    [
                        ('vendor', '=', vendor_id),
                        ('day', '=', day),
                        ('state', '=', 'open'),
                    ],
                    limit=1,
                ):
                    continue
                try:
                    values = cls.file_values(vendor, day)
                except (ValueError, masterkey.MasterKeyError) as error:
                    logger.warning(
                        'settlement file of vendor %s for %s not made: %s',
                        vendor.code,
                        day,
                        error,
                    )
                    continue
                cls.create([values])
                count += 1
        return count

    @classmethod
    def file_values(cls, vendor, day: dt.date) -> dict:
        "The record of vendor's settlement file of day (not saved)"
        Plan = Pool().get('prepaid.vendor.commission.plan')
        plans = Plan.search([('vendor', '=', vendor.id)], limit=1)
        mode = Mode(plans[0].mode) if plans else Mode.MONTHLY
        currency = vendor.company.currency
        transactions = cls.transactions(vendor, day, mode)
        data = core.daily_file(
            vendor.code,
            day,
            transactions,
            timezone=vendor.timezone(),
            currency=currency.code,
            commission_mode=mode,
            key=vendor.settlement_key(),
            digits=currency.digits,
        )
        amount = sum((tx.amount for tx in transactions), ZERO)
        commission = sum((tx.commission for tx in transactions), ZERO)
        return {
            'company': vendor.company.id,
            'vendor': vendor.id,
            'day': day,
            'name': core.file_name(vendor.code, day),
            'file': data,
            'checksum': hashlib.sha256(data).hexdigest(),
            'commission_mode': mode.value,
            'count': len(transactions),
            'amount': amount,
            'commission': commission,
            'net': amount - commission,
        }

    @classmethod
    def transactions(cls, vendor, day: dt.date, mode: Mode) -> list[core.SettlementTx]:
        """The vendor's sales of the business day and its sales cancelled
        that day (negative; the cancellation's time is the vend's last
        write, the cancellation itself: vends are append-only)"""
        pool = Pool()
        Sale = pool.get('prepaid.vendor.sale')
        start, end = days.business_day(day, vendor.timezone())
        naive = (start.replace(tzinfo=None), end.replace(tzinfo=None))
        sold = Sale.search(
            [
                ('vendor', '=', vendor.id),
                ('sold_at', '>=', naive[0]),
                ('sold_at', '<', naive[1]),
            ],
            order=[('sold_at', 'ASC'), ('id', 'ASC')],
        )
        cancelled = Sale.search(
            [
                ('vendor', '=', vendor.id),
                ('vend.state', '=', 'cancelled'),
                ('vend.write_date', '>=', naive[0]),
                ('vend.write_date', '<', naive[1]),
            ],
            order=[('id', 'ASC')],
        )
        answers = sale_answers(sold + cancelled)
        result = []
        for sale in sold:
            result.append(_settlement_tx(sale, answers, mode, sign=1))
        for sale in cancelled:
            result.append(_settlement_tx(sale, answers, mode, sign=-1))
        return result


def sale_answers(sales) -> dict[int, object]:
    "The stored XMLVend answer of each sale's vend, by vend id"
    Answer = Pool().get('prepaid.vendor.xmlvend.answer')
    answers = Answer.search(
        [('vend', 'in', [s.vend.id for s in sales]), ('operation', '=', SALE)]
    )
    return {a.vend.id: a for a in answers}


def msg_id_of(answer) -> str:
    "The msgID of an answer's idempotency key (<client key>/<dateTime>:<number>)"
    return answer.key.rpartition('/')[2] if answer else ''


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC)


def _settlement_tx(sale, answers, mode: Mode, sign: int) -> core.SettlementTx:
    vend = sale.vend
    answer = answers.get(vend.id)
    at = vend.write_date if sign < 0 else sale.sold_at
    kwh = (vend.units_kwh or ZERO).quantize(core.daily.KWH_QUANTUM)
    commission = sale.commission if mode == Mode.AT_SALE else ZERO
    return core.SettlementTx(
        at=_utc(at),
        kind=core.TxKind.REVERSAL if sign < 0 else core.TxKind.SALE,
        terminal=sale.terminal.terminal_id if sale.terminal else '',
        receipt=vend.number or '',
        amount=sign * vend.tender,
        vat=sign * (vend.vat_amount or ZERO),
        kwh=sign * kwh,
        commission=sign * commission,
        msg_id=msg_id_of(answer),
        meter=vend.meter.serial if vend.meter else '',
        token=vend.tokens[0].token if vend.tokens else '',
        operator=answer.operator.login if answer and answer.operator else '',
    )
