"""The Close Shift wizard: a blind cash count, then a review, then the close.

Step "Count": the cashier enters what is in the drawer for every payment
method the shift took (cash always: the opening float is in the drawer).  The
system's totals are NOT shown at this step: a count made while looking at the
expected figure tends to agree with it (a blind count, as tills do).

Step "Review": per method the declared amount, the expected one and the
difference, the total difference; a reason is required when any method does
not balance.  Confirm hands the count to ``Session.close_session``, the one
booking path, with the expected totals the review showed: if a vend changed
them meanwhile, the close is refused and the cashier reviews again.

The wizard's state may be written by the client, so every transition checks
again who closes, what was counted and the reason; the expected totals the
review sends back are only compared with those computed under the shift's
lock (a client that alters them gets a refusal, never another booking).
"""

import json
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .amounts import Amount
from .vend import COUNTED_METHODS

ZERO = Decimal(0)
#: The count step has one field per counted payment method, named after it.
COUNT_FIELDS = [m for m, _ in COUNTED_METHODS]


def count_lines(
    declared: dict[str, Decimal], expected: dict[str, Decimal]
) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    "(method, declared, expected, difference) of every method, in list order"
    methods = set(declared) | set(expected)
    return [
        (
            m,
            declared.get(m, ZERO),
            expected.get(m, ZERO),
            declared.get(m, ZERO) - expected.get(m, ZERO),
        )
        for m in COUNT_FIELDS
        if m in methods
    ]


def needs_reason(declared: dict[str, Decimal], expected: dict[str, Decimal]) -> bool:
    "A method that does not balance needs a reason, even if others make up for it"
    return any(diff for *_, diff in count_lines(declared, expected))


def dump_totals(totals: dict[str, Decimal]) -> str:
    return json.dumps({m: str(v) for m, v in sorted(totals.items())})


def load_totals(text: str | None) -> dict[str, Decimal] | None:
    if not text:
        return None
    return {m: Decimal(v) for m, v in json.loads(text).items()}


def _method_field(method: str, label: str):
    # Cash is always counted; another method only if the shift took it.
    return Amount(
        label,
        digits=(16, 2),
        states={
            'invisible': ~Eval('methods', []).contains(method),
            'required': Eval('methods', []).contains(method),
        },
        help="Counted amount (0 if there is none).",
    )


class CloseCount(ModelView):
    "Close Shift: count"

    __name__ = 'prepaid.cashier.session.close.count'

    session = fields.Many2One('prepaid.cashier.session', "Shift", readonly=True)
    opening_float = fields.Numeric(
        "Opening Float",
        digits=(16, 2),
        readonly=True,
        help="Declared at opening; count it with the cash.",
    )
    methods = fields.MultiSelection(
        COUNTED_METHODS, "Payment Methods Taken", readonly=True
    )
    cash = _method_field('cash', "Cash")
    card = _method_field('card', "Card")
    mobile_money = _method_field('mobile_money', "Mobile Money")
    bank_transfer = _method_field('bank_transfer', "Bank Transfer")


class CloseReviewLine(ModelView):
    "Close Shift: one payment method reviewed"

    __name__ = 'prepaid.cashier.session.close.line'

    payment_method = fields.Selection(COUNTED_METHODS, "Payment Method", readonly=True)
    declared = fields.Numeric("Declared", digits=(16, 2), readonly=True)
    expected = fields.Numeric("Expected", digits=(16, 2), readonly=True)
    difference = fields.Numeric("Difference", digits=(16, 2), readonly=True)


class CloseReview(ModelView):
    "Close Shift: review"

    __name__ = 'prepaid.cashier.session.close.review'

    lines = fields.One2Many(
        'prepaid.cashier.session.close.line', None, "Count", readonly=True
    )
    total_difference = fields.Numeric(
        "Total Difference",
        digits=(16, 2),
        readonly=True,
        help="Declared minus expected: negative is a shortage.",
    )
    balanced = fields.Boolean("Balanced", readonly=True)
    difference_reason = fields.Text(
        "Reason for the Difference",
        states={'required': ~Eval('balanced', False)},
    )
    #: The expected totals shown (JSON), checked again under the shift's lock
    #: by close_session.  Not readonly and in the view (invisible): clients
    #: send only the writable fields of a view back.
    expected = fields.Text("Expected Totals")


class CloseShift(Wizard):
    "Close Shift"

    __name__ = 'prepaid.cashier.session.close'

    start = StateTransition()
    count = StateView(
        'prepaid.cashier.session.close.count',
        'prepaid_vending.cashier_session_close_count_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Review", 'check', 'tryton-forward', default=True),
        ],
    )
    check = StateTransition()
    review = StateView(
        'prepaid.cashier.session.close.review',
        'prepaid_vending.cashier_session_close_review_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Back", 'count', 'tryton-back'),
            Button("Confirm", 'confirm', 'tryton-ok'),
        ],
    )
    confirm = StateTransition()

    def _session(self):
        "The shift the wizard was opened on, checked: open, closed by this user"
        Session = Pool().get('prepaid.cashier.session')
        if self.model is None or self.model.__name__ != Session.__name__:
            raise AccessError(gettext('prepaid_vending.msg_session_close_record'))
        if len(self.records) != 1:
            raise AccessError(gettext('prepaid_vending.msg_session_close_record'))
        (session,) = self.records
        Session.check_closer([session])
        if session.state != 'open':
            raise UserError(
                gettext('prepaid_vending.msg_session_closed', session=session.rec_name)
            )
        return session

    @staticmethod
    def _expected(session) -> dict[str, Decimal]:
        # A Vending Manager closing a cashier's shift sees all its vends.
        with without_check_access():
            totals = session.system_totals()
        totals.setdefault('cash', ZERO)
        return totals

    def _declared(self, session) -> dict[str, Decimal]:
        """The counted amounts; refused while a method the shift took is not
        counted (an empty field is not a zero count)"""
        taken = set(self._expected(session))
        declared = {}
        for method in COUNT_FIELDS:
            amount = getattr(self.count, method, None)
            if amount is not None:
                declared[method] = amount
        missing = [
            label for m, label in COUNTED_METHODS if m in taken and m not in declared
        ]
        if missing:
            raise UserError(
                gettext(
                    'prepaid_vending.msg_session_close_no_count',
                    methods=', '.join(missing),
                )
            )
        if any(amount < 0 for amount in declared.values()):
            raise UserError(gettext('prepaid_vending.msg_session_negative_count'))
        return declared

    def transition_start(self):
        self._session()
        return 'count'

    def default_count(self, fields):
        session = self._session()
        values = {
            'session': session.id,
            'opening_float': session.opening_float,
            'methods': sorted(self._expected(session)),
        }
        # Keep what was typed (Back from the review) or entered on the form.
        entered = {c.payment_method: c.declared for c in session.counts}
        for method in COUNT_FIELDS:
            amount = getattr(self.count, method, None)
            if amount is None:
                amount = entered.get(method)
            values[method] = amount
        return values

    def transition_check(self):
        self._declared(self._session())
        return 'review'

    def default_review(self, fields):
        session = self._session()
        declared = self._declared(session)
        expected = self._expected(session)
        self.review.expected = dump_totals(expected)
        lines = count_lines(declared, expected)
        return {
            'lines': [
                {
                    'payment_method': m,
                    'declared': d,
                    'expected': e,
                    'difference': diff,
                }
                for m, d, e, diff in lines
            ],
            'total_difference': sum((diff for *_, diff in lines), ZERO),
            'balanced': not needs_reason(declared, expected),
            'expected': self.review.expected,
            'difference_reason': self.review.difference_reason,
        }

    def transition_confirm(self):
        Session = Pool().get('prepaid.cashier.session')
        session = self._session()
        declared = self._declared(session)
        shown = load_totals(self.review.expected)
        if shown is None:
            raise UserError(gettext('prepaid_vending.msg_session_close_review'))
        reason = (self.review.difference_reason or '').strip()
        if needs_reason(declared, shown) and not reason:
            raise UserError(gettext('prepaid_vending.msg_session_close_reason'))
        Session.close_session(session, declared, reason=reason or None, expected=shown)
        return 'end'

    def end(self):
        return 'reload'
