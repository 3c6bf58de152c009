"""The monthly reconciliation with a vendor and its disputes (docs/vendors.md
section 8.3).

An accountant uploads the vendor's own file of the month
(``prepaid.vendor.reconciliation``, draft) and presses Match: the core
(:mod:`.reconcile`) reads it (a file it refuses, or any row in error, is a
UserError and nothing is stored) and matches it against the utility's
transactions of the month plus the core's MARGIN on each side (the
vendor's XMLVend sales, cancelled ones reversed by their cancellation);
one line per item replaces the lines of an earlier match (matched).  While
no dispute has started the file may be replaced and matched again.

Every line that is not matched is a dispute: open > evidence (a text and
an attachment, by the Vendor Manager or an accountant) > adjusted (an
accountant's agreed amount, posted Dr/Cr the vendor's float account
against the configured reconciliation-difference account, and the float's
position moved by it, as a top-up is: vendor_float.py) > closed.  The
reconciliation closes once every line is matched or closed.  The states
move by buttons only, whose groups are checked by the server; the lines
are written by the server, staff write only the evidence and the agreed
amount, and only in the states that take them.
"""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, Workflow, fields
from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_vending import accounting
from trytond.modules.prepaid_vending.accounting import _account_field
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from . import days
from . import reconcile as core
from .settlement import mask_token
from .vendor_settlement import msg_id_of, sale_answers

ZERO = Decimal(0)
DIFFERENCE_ACCOUNT = (
    "Vendor Reconciliation Differences",
    "Counterpart of the adjustments agreed in the disputes of a vendor reconciliation.",
    None,
)
CLASSES = [
    (core.Class.MATCHED.value, "Matched"),
    (core.Class.UTILITY_ONLY.value, "Utility Only"),
    (core.Class.VENDOR_ONLY.value, "Vendor Only"),
    (core.Class.AMOUNT_MISMATCH.value, "Amount Mismatch"),
    (core.Class.REVERSED.value, "Reversed"),
    (core.Class.CUT_OFF.value, "Cut-off"),
    (core.Class.DUPLICATE.value, "Duplicate"),
]
#: Shown of a file's row errors in the message refusing it.
ROW_ERRORS_SHOWN = 5
#: What staff may write on a line, per state (the rest: the server's).
EVIDENCE_FIELDS = {'evidence', 'evidence_file', 'evidence_file_name'}
LINE_WRITABLE = {
    'open': EVIDENCE_FIELDS,
    'evidence': EVIDENCE_FIELDS | {'agreed_amount'},
}
ACCOUNTING_GROUPS = (
    ('prepaid_vending', 'group_accountant'),
    ('prepaid_vending', 'group_admin'),
)


class Configuration(metaclass=PoolMeta):
    __name__ = 'prepaid.configuration'

    vendor_reconciliation_account = fields.MultiValue(
        _account_field(*DIFFERENCE_ACCOUNT)
    )

    @classmethod
    def _company_fields(cls) -> set[str]:
        return super()._company_fields() | {'vendor_reconciliation_account'}


class ConfigurationCompany(metaclass=PoolMeta):
    __name__ = 'prepaid.configuration.company'

    vendor_reconciliation_account = _account_field(
        *DIFFERENCE_ACCOUNT, company=Eval('company', -1)
    )


def _staff_write() -> bool:
    "A write a client asked for (access checked), not the server's own"
    transaction = Transaction()
    return bool(transaction.user) and transaction.check_access


def _in_groups(groups) -> bool:
    pool = Pool()
    ModelData = pool.get('ir.model.data')
    User = pool.get('res.user')
    user = User(Transaction().user)
    ids = {ModelData.get_id(module, xml_id) for module, xml_id in groups}
    return bool(ids & {g.id for g in user.groups})


class Reconciliation(CompanyMixin, Workflow, ModelSQL, ModelView):
    "Vendor Monthly Reconciliation"

    __name__ = 'prepaid.vendor.reconciliation'
    _company_links = ('vendor',)

    vendor = fields.Many2One(
        'prepaid.vendor',
        "Vendor",
        required=True,
        ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states={'readonly': Eval('state') != 'draft'},
    )
    month = fields.Date(
        "Month",
        required=True,
        states={'readonly': Eval('state') != 'draft'},
        help="The first day of the month reconciled.",
    )
    file = fields.Binary(
        "Vendor File",
        filename='file_name',
        states={'readonly': Eval('state') == 'closed'},
        help="The vendor's own transactions of the month (CSV or XLSX).",
    )
    file_name = fields.Char(
        "File Name", size=255, states={'readonly': Eval('state') == 'closed'}
    )
    state = fields.Selection(
        [('draft', "Draft"), ('matched', "Matched"), ('closed', "Closed")],
        "State",
        required=True,
        readonly=True,
        sort=False,
    )
    lines = fields.One2Many(
        'prepaid.vendor.reconciliation.line', 'reconciliation', "Lines", readonly=True
    )
    open_count = fields.Function(fields.Integer("Open Items"), 'get_totals')
    difference = fields.Function(
        fields.Numeric("Difference", digits=(16, 2)), 'get_totals'
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'vendor_month_unique',
                Unique(t, t.vendor, t.month),
                'prepaid_vendor_portal.msg_reconciliation_unique',
            ),
        ]
        cls._order = [('month', 'DESC'), ('vendor', 'ASC'), ('id', 'DESC')]
        cls._transitions |= {
            ('draft', 'matched'),
            ('matched', 'matched'),
            ('matched', 'closed'),
        }
        cls._buttons.update(
            {
                'match': {
                    'invisible': Eval('state') == 'closed',
                    'depends': ['state'],
                },
                'close': {
                    'invisible': Eval('state') != 'matched',
                    'depends': ['state'],
                },
            }
        )

    @staticmethod
    def default_state():
        return 'draft'

    def get_rec_name(self, name):
        return f'{self.vendor.rec_name} {self.month:%Y-%m}'

    @classmethod
    def get_totals(cls, reconciliations, names):
        result = {
            'open_count': {r.id: 0 for r in reconciliations},
            'difference': {r.id: ZERO for r in reconciliations},
        }
        for reconciliation in reconciliations:
            for line in reconciliation.lines:
                result['difference'][reconciliation.id] += line.difference
                if line.state not in ('matched', 'closed'):
                    result['open_count'][reconciliation.id] += 1
        return {n: result[n] for n in names}

    @classmethod
    def validate_fields(cls, reconciliations, field_names):
        super().validate_fields(reconciliations, field_names)
        for reconciliation in reconciliations:
            if reconciliation.month.day != 1:
                raise UserError(
                    gettext('prepaid_vendor_portal.msg_reconciliation_month')
                )

    @classmethod
    def write(cls, *args):
        if _staff_write():
            actions = iter(args)
            for records, values in zip(actions, actions):
                for record in records:
                    allowed = {
                        'draft': {'vendor', 'month', 'file', 'file_name', 'company'},
                        'matched': {'file', 'file_name'},
                    }.get(record.state, set())
                    if set(values) - allowed:
                        raise AccessError(
                            gettext(
                                'prepaid_vendor_portal.msg_reconciliation_readonly',
                                reconciliation=record.rec_name,
                            )
                        )
        super().write(*args)

    # -- Match ----------------------------------------------------------------
    @classmethod
    @ModelView.button
    @Workflow.transition('matched')
    def match(cls, reconciliations):
        Line = Pool().get('prepaid.vendor.reconciliation.line')
        for reconciliation in reconciliations:
            values = reconciliation.matched_lines()
            with without_check_access():
                Line.delete(Line.search([('reconciliation', '=', reconciliation.id)]))
                Line.create(values)

    def period(self) -> tuple[dt.date, dt.date]:
        last = calendar.monthrange(self.month.year, self.month.month)[1]
        return self.month, self.month.replace(day=last)

    def matched_lines(self) -> list[dict]:
        """The lines of the core's reconciliation of the file (not saved);
        UserError for a file that cannot be used, or a dispute under way"""
        if any(line.state not in ('matched', 'open') for line in self.lines):
            raise UserError(
                gettext(
                    'prepaid_vendor_portal.msg_reconciliation_disputed',
                    reconciliation=self.rec_name,
                )
            )
        if not self.file:
            raise UserError(
                gettext(
                    'prepaid_vendor_portal.msg_reconciliation_no_file',
                    reconciliation=self.rec_name,
                )
            )
        timezone = self.vendor.timezone()
        try:
            vendor_file = core.read_vendor_file(
                bytes(self.file), timezone, digits=self.company.currency.digits
            )
        except core.FileError as error:
            raise UserError(
                gettext(
                    'prepaid_vendor_portal.msg_reconciliation_file',
                    file=self.file_name or '',
                    error=str(error),
                )
            ) from None
        if vendor_file.error_count:
            shown = '; '.join(
                f'line {e.line}: {e.message}'
                for e in vendor_file.errors[:ROW_ERRORS_SHOWN]
            )
            raise UserError(
                gettext(
                    'prepaid_vendor_portal.msg_reconciliation_rows',
                    file=self.file_name or '',
                    count=vendor_file.error_count,
                    errors=shown,
                )
            )
        first, last = self.period()
        today = dt.datetime.now(dt.UTC).astimezone(timezone).date()
        try:
            result = core.reconcile(
                vendor_file.rows,
                self.utility_transactions(first, last),
                first,
                last,
                utility_tz=timezone,
                vendor_tz=timezone,
                as_of=today,
            )
        except ValueError as error:
            raise UserError(
                gettext(
                    'prepaid_vendor_portal.msg_reconciliation_file',
                    file=self.file_name or '',
                    error=str(error),
                )
            ) from None
        rows = {row.line: row for row in vendor_file.rows}
        return [_line_values(self, item, rows) for item in result.items]

    def utility_transactions(self, first: dt.date, last: dt.date):
        """The vendor's sales from first to last (the utility's days) plus
        the core's MARGIN each side, as the core's UtilityTx"""
        Sale = Pool().get('prepaid.vendor.sale')
        timezone = self.vendor.timezone()
        start, _ = days.business_day(first - core.MARGIN, timezone)
        _, end = days.business_day(last + core.MARGIN, timezone)
        with without_check_access():
            sales = Sale.search(
                [
                    ('vendor', '=', self.vendor.id),
                    ('sold_at', '>=', start.replace(tzinfo=None)),
                    ('sold_at', '<', end.replace(tzinfo=None)),
                ],
                order=[('sold_at', 'ASC'), ('id', 'ASC')],
            )
            answers = sale_answers(sales)
            return [
                core.UtilityTx(
                    reference=s.vend.number,
                    at=s.sold_at.replace(tzinfo=dt.UTC),
                    amount=s.vend.tender,
                    msg_id=msg_id_of(answers.get(s.vend.id)) or None,
                    receipt=s.vend.number,
                    tokens=tuple(t.token for t in s.vend.tokens),
                    meter=s.vend.meter.serial if s.vend.meter else None,
                    terminal=s.terminal.terminal_id if s.terminal else None,
                    reversed_at=(
                        s.vend.write_date.replace(tzinfo=dt.UTC)
                        if s.vend.state == 'cancelled'
                        else None
                    ),
                )
                for s in sales
            ]

    # -- Close ----------------------------------------------------------------
    @classmethod
    @ModelView.button
    @Workflow.transition('closed')
    def close(cls, reconciliations):
        for reconciliation in reconciliations:
            if any(
                line.state not in ('matched', 'closed') for line in reconciliation.lines
            ):
                raise UserError(
                    gettext(
                        'prepaid_vendor_portal.msg_reconciliation_open_lines',
                        reconciliation=reconciliation.rec_name,
                    )
                )


def _line_values(reconciliation, item: core.Item, rows) -> dict:
    "A line's values from the core's item (tokens masked, as in the daily file)"
    tx = item.utility
    vendor_rows = [rows[n] for n in item.vendor_lines if n in rows]

    def first(name):
        return next((getattr(r, name) for r in vendor_rows if getattr(r, name)), None)

    token = tx.tokens[0] if tx and tx.tokens else first('token')
    bucket = None
    if item.age_days is not None:
        bucket = next(
            label
            for limit, label in core.AGE_BUCKETS
            if limit is None or item.age_days <= limit
        )
    return {
        'company': reconciliation.company.id,
        'reconciliation': reconciliation.id,
        'cls': item.cls.value,
        'state': 'matched' if item.cls == core.Class.MATCHED else 'open',
        'msg_id': (tx.msg_id if tx else None) or first('msg_id'),
        'receipt': (tx.receipt if tx else None) or first('receipt'),
        'token': mask_token(token) if token else None,
        'vendor_lines': ', '.join(str(n) for n in item.vendor_lines) or None,
        'utility_date': item.utility_date,
        'vendor_date': item.vendor_date,
        'utility_amount': item.utility_amount,
        'vendor_amount': item.vendor_amount,
        'difference': item.difference,
        'age_days': item.age_days,
        'age_bucket': bucket,
        'notes': '\n'.join(item.notes) or None,
    }


class ReconciliationLine(CompanyMixin, Workflow, ModelSQL, ModelView):
    "Vendor Reconciliation Line"

    __name__ = 'prepaid.vendor.reconciliation.line'
    _company_links = ('reconciliation',)

    reconciliation = fields.Many2One(
        'prepaid.vendor.reconciliation',
        "Reconciliation",
        required=True,
        readonly=True,
        ondelete='CASCADE',
    )
    cls = fields.Selection(CLASSES, "Class", required=True, readonly=True)
    state = fields.Selection(
        [
            ('matched', "Matched"),
            ('open', "Open"),
            ('evidence', "Evidence"),
            ('adjusted', "Adjusted"),
            ('closed', "Closed"),
        ],
        "State",
        required=True,
        readonly=True,
        sort=False,
    )
    msg_id = fields.Char("msgID", readonly=True)
    receipt = fields.Char("Receipt", readonly=True)
    token = fields.Char("Token", readonly=True, help="Masked but for its last digits.")
    vendor_lines = fields.Char("Vendor File Lines", readonly=True)
    utility_date = fields.Date("Utility Date", readonly=True)
    vendor_date = fields.Date("Vendor Date", readonly=True)
    utility_amount = fields.Numeric(
        "Utility Amount", digits=(16, 2), required=True, readonly=True
    )
    vendor_amount = fields.Numeric(
        "Vendor Amount", digits=(16, 2), required=True, readonly=True
    )
    difference = fields.Numeric(
        "Difference", digits=(16, 2), required=True, readonly=True
    )
    age_days = fields.Integer("Age (days)", readonly=True)
    age_bucket = fields.Char("Age", readonly=True)
    notes = fields.Text("Notes", readonly=True)
    evidence = fields.Text(
        "Evidence", states={'readonly': ~Eval('state').in_(['open', 'evidence'])}
    )
    evidence_file = fields.Binary(
        "Evidence File",
        filename='evidence_file_name',
        states={'readonly': ~Eval('state').in_(['open', 'evidence'])},
    )
    evidence_file_name = fields.Char(
        "Evidence File Name",
        size=255,
        states={'readonly': ~Eval('state').in_(['open', 'evidence'])},
    )
    agreed_amount = fields.Numeric(
        "Agreed Adjustment",
        digits=(16, 2),
        states={'readonly': Eval('state') != 'evidence'},
        help="Credited to the vendor's float when positive, debited when "
        "negative; zero: no adjustment.",
    )
    move = fields.Many2One('account.move', "Adjustment Move", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('reconciliation', 'DESC'), ('id', 'ASC')]
        cls._transitions |= {
            ('open', 'evidence'),
            ('evidence', 'adjusted'),
            ('adjusted', 'closed'),
        }
        cls._buttons.update(
            {
                'submit_evidence': {
                    'invisible': Eval('state') != 'open',
                    'depends': ['state'],
                },
                'adjust': {
                    'invisible': Eval('state') != 'evidence',
                    'depends': ['state'],
                },
                'close': {
                    'invisible': Eval('state') != 'adjusted',
                    'depends': ['state'],
                },
            }
        )

    @staticmethod
    def default_state():
        return 'open'

    def get_rec_name(self, name):
        reference = self.receipt or self.msg_id or self.vendor_lines or str(self.id)
        return f'{self.reconciliation.rec_name}: {reference}'

    @classmethod
    def write(cls, *args):
        if _staff_write():
            actions = iter(args)
            for records, values in zip(actions, actions):
                if 'agreed_amount' in values and not _in_groups(ACCOUNTING_GROUPS):
                    raise AccessError(
                        gettext('prepaid_vendor_portal.msg_reconciliation_agreed_group')
                    )
                for record in records:
                    if set(values) - LINE_WRITABLE.get(record.state, set()):
                        raise AccessError(
                            gettext(
                                'prepaid_vendor_portal.msg_reconciliation_line_readonly',
                                line=record.rec_name,
                            )
                        )
        super().write(*args)

    @classmethod
    @ModelView.button
    @Workflow.transition('evidence')
    def submit_evidence(cls, lines):
        for line in lines:
            if not (line.evidence or '').strip() or not line.evidence_file:
                raise UserError(
                    gettext(
                        'prepaid_vendor_portal.msg_reconciliation_evidence',
                        line=line.rec_name,
                    )
                )

    @classmethod
    @ModelView.button
    @Workflow.transition('adjusted')
    def adjust(cls, lines):
        for line in lines:
            if line.agreed_amount is None:
                raise UserError(
                    gettext(
                        'prepaid_vendor_portal.msg_reconciliation_agreed',
                        line=line.rec_name,
                    )
                )
            move = line.post_adjustment()
            if move is not None:
                with without_check_access():
                    cls.write([line], {'move': move.id})

    def post_adjustment(self):
        """Post the agreed amount: Dr difference account / Cr float account
        (the vendor's party) when positive, the other way round when
        negative; the float's position moves with it (as a top-up's does).
        None for a zero amount."""
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        Date = pool.get('ir.date')
        Position = pool.get('prepaid.vendor.float')
        amount = self.agreed_amount
        if not amount:
            return None
        vendor = self.reconciliation.vendor
        if not vendor.float_account:
            raise UserError(
                gettext(
                    'prepaid_vendor_portal.msg_top_up_no_account',
                    vendor=vendor.rec_name,
                )
            )
        text = f'Reconciliation {vendor.code}: {self.rec_name}'[:255]
        with Transaction().set_context(company=vendor.company.id):
            account = Configuration(1).require('vendor_reconciliation_account')
            move = accounting.adjustment_move(
                Date.today(),
                text,
                [
                    (
                        account,
                        amount,
                        vendor.party if account.party_required else None,
                        text,
                    ),
                    (vendor.float_account, -amount, vendor.party, text),
                ],
            )
            accounting.post_adjustments([move], origin=self)
        Position.fund(vendor.id, amount)
        return move

    @classmethod
    @ModelView.button
    @Workflow.transition('closed')
    def close(cls, lines):
        pass


class Move(metaclass=PoolMeta):
    __name__ = 'account.move'

    @classmethod
    def _get_origin(cls):
        return super()._get_origin() + ['prepaid.vendor.reconciliation.line']
