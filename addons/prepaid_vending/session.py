"""Cashier shifts: opened with a float, closed with a cash count per payment
method; the shift's vends not yet booked are booked (booking.py) and the
difference with the system totals gets its own posted move."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Workflow, fields
from trytond.model.exceptions import AccessError, ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from . import accounting, locking
from .company import CompanyMixin
from .vend import COUNTED_METHODS

ZERO = Decimal(0)
#: The only shift fields a client may write, and only while the shift is open:
#: the rest (totals, difference, state, times, cashier) is the system's.
CLIENT_WRITABLE = {'counts', 'opening_float'}
#: Fields a client may give when opening a shift.
CLIENT_CREATE = {'sales_point', 'opening_float', 'counts'}


class Session(CompanyMixin, Workflow, ModelSQL, ModelView):
    "Cashier Shift"

    __name__ = 'prepaid.cashier.session'
    _company_links = ('sales_point',)

    sales_point = fields.Many2One(
        'prepaid.sales_point',
        "Sales Point",
        required=True,
        ondelete='RESTRICT',
        states={'readonly': Eval('state') != 'open'},
    )
    cashier = fields.Many2One(
        'res.user', "Cashier", required=True, readonly=True, ondelete='RESTRICT'
    )
    opened_at = fields.Timestamp("Opened", required=True, readonly=True)
    closed_at = fields.Timestamp("Closed", readonly=True)
    opening_float = fields.Numeric(
        "Opening Float",
        digits=(16, 2),
        required=True,
        states={'readonly': Eval('state') != 'open'},
    )
    vends = fields.One2Many('prepaid.vend', 'session', "Vends", readonly=True)
    counts = fields.One2Many(
        'prepaid.cashier.session.count',
        'session',
        "Cash Count",
        states={'readonly': Eval('state') != 'open'},
    )
    difference = fields.Numeric("Difference", digits=(16, 2), readonly=True)
    difference_reason = fields.Text("Reason for the Difference", readonly=True)
    difference_move = fields.Many2One('account.move', "Difference Move", readonly=True)
    state = fields.Selection(
        [
            ('open', "Open"),
            ('closed', "Closed"),
        ],
        "State",
        required=True,
        readonly=True,
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('opened_at', 'DESC'))
        cls._transitions |= {('open', 'closed')}
        cls._buttons.update(
            {
                'close': {'invisible': Eval('state') != 'open'},
            }
        )

    @staticmethod
    def default_state():
        return 'open'

    @staticmethod
    def default_cashier():
        return Transaction().user

    @staticmethod
    def default_opened_at():
        return dt.datetime.now()

    @staticmethod
    def default_opening_float():
        return ZERO

    def get_rec_name(self, name):
        return f'{self.sales_point.rec_name} {self.cashier.rec_name} {self.opened_at}'

    @classmethod
    def validate_fields(cls, sessions, field_names):
        super().validate_fields(sessions, field_names)
        for session in sessions:
            if session.state != 'open':
                continue
            others = cls.search(
                [
                    ('cashier', '=', session.cashier.id),
                    ('state', '=', 'open'),
                    ('id', '!=', session.id),
                ],
                limit=1,
            )
            if others:
                raise ValidationError(
                    gettext(
                        'prepaid_vending.msg_session_already_open',
                        cashier=session.cashier.rec_name,
                    )
                )

    @classmethod
    def check_modification(cls, mode, sessions, values=None, external=False):
        super().check_modification(mode, sessions, values=values, external=external)
        if not external:
            return
        if mode == 'delete':
            raise AccessError(gettext('prepaid_vending.msg_session_readonly'))
        if mode == 'create':
            user = Transaction().user
            for session in sessions:
                if (
                    session.state != 'open'
                    or session.cashier.id != user
                    or session.closed_at
                    or session.difference is not None
                    or session.difference_reason
                    or session.difference_move
                ):
                    raise AccessError(gettext('prepaid_vending.msg_session_readonly'))
        elif mode == 'write':
            if set(values) - CLIENT_WRITABLE or any(
                s.state != 'open' for s in sessions
            ):
                raise AccessError(gettext('prepaid_vending.msg_session_readonly'))
            if 'opening_float' in values and any(s.get_vends() for s in sessions):
                # Declared at opening: changed later it would hide a shortage.
                raise AccessError(gettext('prepaid_vending.msg_session_readonly'))

    @classmethod
    def open_session(cls, sales_point, opening_float=ZERO):
        session = cls(sales_point=sales_point, opening_float=opening_float)
        session.save()
        return session

    @classmethod
    def current(cls, sales_point):
        "The open shift of the current user at sales_point; a cashier needs one"
        if sales_point is None:
            raise ValidationError(gettext('prepaid_vending.msg_vend_no_sales_point'))
        sessions = cls.search(
            [
                ('cashier', '=', Transaction().user),
                ('sales_point', '=', sales_point.id),
                ('state', '=', 'open'),
            ],
            limit=1,
        )
        if not sessions:
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_session_none', sales_point=sales_point.rec_name
                )
            )
        return sessions[0]

    def system_totals(self) -> dict[str, Decimal]:
        "Money the system says was received, per payment method"
        totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for vend in self.get_vends():
            if vend.state == 'issued' and vend.payment_method in dict(COUNTED_METHODS):
                totals[vend.payment_method] += vend.tender
        totals['cash'] += self.opening_float or ZERO
        return dict(totals)

    def get_vends(self) -> list:
        # Searched, not read from the One2Many: the shift record may be cached
        # from before its vends were created in this transaction.
        Vend = Pool().get('prepaid.vend')
        return Vend.search([('session', '=', self.id)])

    @classmethod
    @ModelView.button_action('prepaid_vending.wizard_session_close')
    def close(cls, sessions):
        "The Close Shift wizard: count, review, confirm (session_close.py)"

    @classmethod
    def close_session(
        cls,
        session,
        declared: dict[str, Decimal],
        reason: str | None = None,
        expected: dict[str, Decimal] | None = None,
    ):
        """Close with the declared amount per payment method; books the
        shift's vends not yet booked (``booking.py``) and the difference.

        reason: why the count differs, kept on the shift.  expected: the
        system totals the closer saw; if they are no longer those of the
        shift (a vend came in meanwhile), the close is refused.

        The shift row is locked first (``locking.lock_shift_for_close``), and
        its state is read again under the lock."""
        cls.check_closer([session])
        locking.lock_shift_for_close(session)
        with without_check_access():
            return cls._close_session(cls(session.id), declared, reason, expected)

    @classmethod
    def check_closer(cls, sessions) -> None:
        "A shift is closed by its cashier or by a Vending Manager"
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        transaction = Transaction()
        if not (transaction.user and transaction.check_access):
            return
        manager = ModelData.get_id('prepaid_vending', 'group_manager')
        with without_check_access():
            groups = {g.id for g in User(transaction.user).groups}
        if manager in groups:
            return
        for session in sessions:
            if session.cashier.id != transaction.user:
                raise AccessError(gettext('prepaid_vending.msg_session_readonly'))

    @classmethod
    def _close_session(
        cls,
        session,
        declared: dict[str, Decimal],
        reason: str | None = None,
        expected: dict[str, Decimal] | None = None,
    ):
        pool = Pool()
        Count = pool.get('prepaid.cashier.session.count')
        Move = pool.get('account.move')
        Vend = pool.get('prepaid.vend')
        Configuration = pool.get('prepaid.configuration')
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.select(table.state, where=table.id == session.id))
        (state,) = cursor.fetchone()
        if state != 'open':
            raise ValidationError(
                gettext('prepaid_vending.msg_session_closed', session=session.rec_name)
            )
        totals = session.system_totals()
        if expected is not None and not same_totals(expected, totals):
            raise ValidationError(gettext('prepaid_vending.msg_session_close_changed'))
        counts, difference = [], ZERO
        for method in sorted(set(totals) | set(declared)):
            amount = declared.get(method, ZERO)
            if amount < 0:
                raise ValidationError(
                    gettext('prepaid_vending.msg_session_negative_count')
                )
            system = totals.get(method, ZERO)
            counts.append(
                Count(
                    session=session,
                    payment_method=method,
                    declared=amount,
                    system=system,
                    difference=amount - system,
                )
            )
            difference += amount - system
        Count.delete(list(session.counts))
        Count.save(counts)
        session.difference = difference
        session.difference_reason = reason
        session.closed_at = dt.datetime.now()
        # The shift's takings in the books before it closes: the books equal
        # the vends at every close (a refused booking refuses the close).
        Vend.book_session(session)
        config = Configuration(1)
        booked = [c for c in counts if c.difference]
        if booked:
            move = accounting.new_move(
                dt.date.today(), session, f'Cash count {session.rec_name}'
            )
            lines = []
            for count in booked:
                account = accounting.receipt_account(
                    session.sales_point, count.payment_method
                )
                lines.append(
                    accounting.move_line(
                        account,
                        *accounting._dc(count.difference),
                        description=f'Count {count.payment_method}',
                    )
                )
                lines.append(
                    accounting.move_line(
                        config.require('cash_difference_account'),
                        *accounting._dc(-count.difference),
                        description=f'Over/short {count.payment_method}',
                    )
                )
            move.lines = lines
            move.save()
            Move.post([move])
            session.difference_move = move
        session.save()
        cls._close([session])
        return session

    @classmethod
    @Workflow.transition('closed')
    def _close(cls, sessions):
        pass

    def report_text(self, width: int = 48) -> str:
        "The shift report: vends per payment method, count and differences"
        lines = [
            'SHIFT REPORT'.center(width),
            '=' * width,
            f'Sales point: {self.sales_point.rec_name}',
            f'Cashier: {self.cashier.rec_name}',
            f'Opened: {self.opened_at:%Y-%m-%d %H:%M}',
        ]
        if self.closed_at:
            lines.append(f'Closed: {self.closed_at:%Y-%m-%d %H:%M}')
        vends = self.get_vends()
        issued = [v for v in vends if v.state == 'issued']
        cancelled = [v for v in vends if v.state == 'cancelled']
        lines += [
            '-' * width,
            f'Vends: {len(issued)}  Cancelled: {len(cancelled)}',
            f"kWh sold: {sum((v.units_kwh or ZERO for v in issued), ZERO)}",
            f"VAT: {sum((v.vat_amount or ZERO for v in issued), ZERO)}",
            '-' * width,
            f"{'Method':<16}{'System':>10}{'Declared':>11}{'Diff':>11}",
        ]
        for count in self.counts:
            lines.append(
                f'{count.payment_method:<16}{count.system:>10}'
                f'{count.declared:>11}{count.difference:>11}'
            )
        if self.difference is not None:
            lines.append(f"{'Total difference':<37}{self.difference:>11}")
        if self.difference_reason:
            lines.append(f'Reason: {self.difference_reason}')
        return '\n'.join(lines) + '\n'


def same_totals(a: dict[str, Decimal], b: dict[str, Decimal]) -> bool:
    "Equal totals per method, a missing method counting as zero"
    return all(a.get(m, ZERO) == b.get(m, ZERO) for m in set(a) | set(b))


class SessionCount(ModelSQL, ModelView):
    "Cash count of a shift for one payment method"

    __name__ = 'prepaid.cashier.session.count'

    session = fields.Many2One(
        'prepaid.cashier.session', "Shift", required=True, ondelete='CASCADE'
    )
    payment_method = fields.Selection(COUNTED_METHODS, "Payment Method", required=True)
    declared = fields.Numeric("Declared", digits=(16, 2), required=True)
    system = fields.Numeric("System", digits=(16, 2), readonly=True)
    difference = fields.Numeric("Difference", digits=(16, 2), readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('session')

    @classmethod
    def check_modification(cls, mode, counts, values=None, external=False):
        super().check_modification(mode, counts, values=values, external=external)
        if not external:
            return
        # The cashier declares amounts on an open shift; the system figures
        # and the difference are written by close_session only.
        if (mode == 'write' and set(values) - {'declared', 'payment_method'}) or any(
            c.session.state != 'open' for c in counts
        ):
            raise AccessError(gettext('prepaid_vending.msg_session_readonly'))
        if mode == 'create' and any(
            c.system is not None or c.difference is not None for c in counts
        ):
            raise AccessError(gettext('prepaid_vending.msg_session_readonly'))


class Rule(metaclass=PoolMeta):
    __name__ = 'ir.rule'

    @classmethod
    def _get_context(cls, model_name):
        # Record rules of cashiers compare records with the current user.
        context = super()._get_context(model_name)
        context['user_id'] = Transaction().user
        return context

    @classmethod
    def _get_cache_key(cls, model_names):
        return super()._get_cache_key(model_names) + (Transaction().user,)
