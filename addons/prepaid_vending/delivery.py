"""Whether a sale can reach the meter, and where its delivery stands.

Before the money: ``Meter.vend_delivery_problems`` is the hook every vend and
every quote asks (``vend_pipeline.check_meter``), and
``Meter.vend_pending_key_changes`` what the Sell Electricity wizard shows the
cashier will be printed first.  This module knows only what the vending side
knows (nothing: a smart meter's command waits for whichever
head-end executes it); prepaid_sts adds what a keypad meter needs to receive
a token, prepaid_headend what a smart meter needs to receive remote credit.
Each problem says what to fix, and the sale is refused before anything is
written.

After the money: :func:`vend_delivery` says, for the wizard, the receipt and
the vend form, where the delivery of a vend stands.  A keypad meter's credit
is the token on the receipt (nothing to follow up); a remote-prepaid account
is credited in the vend's own transaction; a smart meter's credit is a
remote-credit command (``prepaid.meter.command``) that the head-end sends,
retries and confirms.  A delivery that failed for good says the way forward:
the token for manual entry where the meter has a keypad, or a refund under
the cancellation policy once a manager has confirmed that the meter was not
credited.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from trytond.i18n import gettext
from trytond.model import fields
from trytond.pool import PoolMeta
from trytond.pyson import Eval
from trytond.transaction import without_check_access

from .credit import wall_clock

DELIVERY_STATES = [
    (None, ""),
    ('account', "Credited to Account"),
    ('pending', "Pending"),
    ('confirmed', "Confirmed"),
    ('failed', "Failed"),
    ('cancelled', "Cancelled"),
]


@dataclass(frozen=True)
class Delivery:
    """Where the delivery of a vend's credit stands, in the cashier's words.

    ``tokens`` are the digits to key in by hand when the remote delivery
    failed and the meter has a keypad (the meter refuses a token it has
    already accepted, so printing them never credits twice)."""

    state: str
    status: str
    way_forward: str = ''
    tokens: tuple[str, ...] = ()


class Meter(metaclass=PoolMeta):
    __name__ = 'prepaid.meter'

    keypad = fields.Boolean(
        "Token Keypad",
        states={'invisible': Eval('kind') == 'postpaid'},
        help="The customer can key tokens in on the meter (or its customer "
        "interface unit).  Every STS keypad meter has one; a smart meter with "
        "one gets its token printed when a remote delivery fails.",
    )

    @fields.depends('kind', 'keypad')
    def on_change_kind(self):
        if self.kind == 'sts_keypad':
            self.keypad = True

    def vend_delivery_problems(self) -> list[str]:
        """Why this meter cannot receive what a sale would send it now: one
        message per problem, each saying what to fix; empty when it can.

        Hook for the modules that deliver credit (STS tokens, head-end); it
        is called by every quote and every vend, before any money is taken,
        so it reads the meter only (no communication)."""
        return []

    def vend_pending_key_changes(self) -> str:
        """What the next sale will deliver before the credit, for the
        cashier to tell the customer: one line per key change waiting to be
        entered on the meter; empty when none.

        Hook for the token engine (prepaid_sts, which knows key changes):
        vending itself has none.  Read with access checks off by the
        extension, as the sale is."""
        return ''

    @property
    def vend_keypad_entry(self) -> bool:
        "Whether a token printed on a receipt can be keyed in on this meter"
        return self.kind == 'sts_keypad' or bool(self.keypad)


class MeterCommand(metaclass=PoolMeta):
    __name__ = 'prepaid.meter.command'

    def delivery_retry_at(self) -> dt.datetime | None:
        """When the head-end will send this failed command again by itself
        (naive UTC), or None when nobody will: hook for the head-end."""
        return None


class Vend(metaclass=PoolMeta):
    __name__ = 'prepaid.vend'

    delivery_state = fields.Function(
        fields.Selection(DELIVERY_STATES, "Delivery"), 'get_delivery'
    )
    delivery_status = fields.Function(fields.Text("Delivery Status"), 'get_delivery')

    @classmethod
    def get_delivery(cls, vends, names):
        result = {name: {} for name in names}
        for vend in vends:
            delivery = vend_delivery(vend)
            if 'delivery_state' in result:
                result['delivery_state'][vend.id] = delivery.state if delivery else None
            if 'delivery_status' in result:
                result['delivery_status'][vend.id] = (
                    delivery_text(delivery) if delivery else None
                )
        return result


def _time(moment: dt.datetime | None, now: dt.datetime | None = None) -> str:
    "A naive UTC timestamp as the company's wall clock: 10:42, or with the date"
    if moment is None:
        return ''
    local = wall_clock(moment)
    today = wall_clock(now or dt.datetime.now()).date()
    return f'{local:%H:%M}' if local.date() == today else f'{local:%Y-%m-%d %H:%M}'


def remote_credit_command(vend):
    "The vend's remote-credit command (the latest one), or None"
    with without_check_access():
        commands = [c for c in vend.commands if c.kind == 'remote_credit']
        return max(commands, key=lambda c: c.id) if commands else None


def vend_delivery(vend, now: dt.datetime | None = None) -> Delivery | None:
    """Where the delivery of vend's credit stands; None when its tokens are
    the delivery (keypad meters) or nothing was sold to deliver."""
    if vend.meter.payment_mode == 'remote_prepaid' and vend.credit_amount:
        return Delivery('account', gettext('prepaid_vending.msg_delivery_account'))
    command = remote_credit_command(vend)
    if command is None:
        return None
    with without_check_access():
        return _command_delivery(vend, command, now)


def _command_delivery(vend, command, now) -> Delivery:
    state = command.state
    if state == 'accepted':
        return Delivery(
            'confirmed',
            gettext(
                'prepaid_vending.msg_delivery_confirmed',
                time=_time(command.done_at or command.sent_at, now),
            ),
        )
    if state == 'cancelled' or vend.state == 'cancelled':
        return Delivery('cancelled', gettext('prepaid_vending.msg_delivery_cancelled'))
    if state == 'sent':
        return Delivery('pending', gettext('prepaid_vending.msg_delivery_sent'))
    if state == 'pending':
        if command.attempts:
            status = gettext(
                'prepaid_vending.msg_delivery_retrying', attempt=command.attempts + 1
            )
        else:
            status = gettext('prepaid_vending.msg_delivery_pending')
        return Delivery('pending', status)
    # failed (no answer) or rejected (the meter refused the token)
    error = ' '.join((command.last_error or state).split())
    status = gettext('prepaid_vending.msg_delivery_failed', error=error)
    retry_at = command.delivery_retry_at()
    if retry_at is not None:
        return Delivery(
            'failed',
            status,
            gettext('prepaid_vending.msg_delivery_retry', time=_time(retry_at, now)),
        )
    tokens = tuple(command.data.get('tokens') or ())
    if tokens and vend.meter.vend_keypad_entry:
        return Delivery(
            'failed',
            status,
            gettext('prepaid_vending.msg_delivery_keypad'),
            tokens=tokens,
        )
    return Delivery('failed', status, gettext('prepaid_vending.msg_delivery_refund'))


def delivery_text(delivery: Delivery) -> str:
    "The delivery as lines of text (status, way forward, tokens)"
    lines = [delivery.status]
    if delivery.way_forward:
        lines.append(delivery.way_forward)
    lines += [group_digits(t) for t in delivery.tokens]
    return '\n'.join(lines)


def group_digits(digits: str) -> str:
    "20 digits in groups of four, as printed and keyed in"
    return ' '.join(digits[i : i + 4] for i in range(0, len(digits), 4))
