"""Cancellation of a vend: under the configured policy, by a Vending Manager,
with reversing entries.

An issued STS token cannot be taken back, so only the money side is
reversed: the month position, the remote command not yet delivered, the debt
and emergency-credit recoveries, the account credit and, if the vend is
booked, its share of the books (a posted reversal, ``booking.py``; a vend not
yet booked is then never booked).
"""

from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelView, Workflow, fields
from trytond.model.exceptions import AccessError, ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .access import require_wizard_groups

ZERO = Decimal(0)


class Vend(metaclass=PoolMeta):
    __name__ = 'prepaid.vend'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._transitions |= {('issued', 'cancelled')}
        cls._buttons.update(
            {
                'cancel': {'invisible': Eval('state') != 'issued'},
            }
        )

    @classmethod
    @ModelView.button_action('prepaid_vending.wizard_vend_cancel')
    def cancel(cls, vends):
        pass

    @classmethod
    @Workflow.transition('cancelled')
    def _cancel(cls, vends):
        pass

    @classmethod
    def cancel_vends(cls, vends, reason: str):
        """Cancel under the configured policy with reversing entries; an issued
        STS token cannot be taken back, so only the money side is reversed."""
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        config = Configuration(1)
        if not reason:
            raise ValidationError(gettext('prepaid_vending.msg_vend_cancel_reason'))
        user = User(Transaction().user)
        manager = ModelData.get_id('prepaid_vending', 'group_manager')
        if Transaction().user and manager not in [g.id for g in user.groups]:
            raise AccessError(gettext('prepaid_vending.msg_vend_cancel_manager'))
        # Checked above: the writes below bypass the (read-only) staff access.
        with without_check_access():
            cls._cancel_vends(vends, reason, config)

    @classmethod
    def _cancel_vends(cls, vends, reason: str, config) -> None:
        for vend in vends:
            if vend.state != 'issued':
                raise ValidationError(
                    gettext('prepaid_vending.msg_vend_cancel_state', vend=vend.number)
                )
            vend.check_cancel_policy(config.cancel_policy)
            vend.reverse_effects()
            # Booked: a posted reversal; not yet booked: never will be.
            vend.cancel_move = cls.book_cancellation(vend)
            vend.cancel_reason = reason
            vend.cancelled_by = Transaction().user
        cls.save(vends)
        cls._cancel(vends)

    def check_cancel_policy(self, policy: str) -> None:
        if policy == 'manager':
            return
        # Only a command never sent is surely undelivered: a time-out after the
        # meter executed it leaves "failed", a retry answered "already used"
        # leaves "rejected", and a command pending again for an automatic
        # retry was sent before.  Those need a manager's reconciliation first.
        if (
            policy == 'undelivered'
            and self.tokens == ()
            and self.commands
            and all(
                (c.state == 'pending' and not c.attempts)
                or (c.state in {'failed', 'rejected'} and c.reconciled_undelivered)
                for c in self.commands
            )
        ):
            return
        raise ValidationError(
            gettext(
                'prepaid_vending.msg_vend_cancel_policy',
                vend=self.number,
                policy=policy,
            )
        )

    def reverse_effects(self) -> None:
        "Undo the month position, the command and the recoveries of this vend"
        pool = Pool()
        Position = pool.get('prepaid.meter.month_position')
        Command = pool.get('prepaid.meter.command')
        Debt_ = pool.get('prepaid.debt')
        Emergency = pool.get('prepaid.emergency_credit')
        Account = pool.get('prepaid.remote.account')
        # First: it refuses (before anything is written) when the emergency
        # credit this vend delivered is already partly repaid.
        Emergency.cancel_issue(self)
        position = Position.get(self.meter, self.date.date().replace(day=1))
        if position.id is not None:
            if self.month_kwh_after is not None and self.month_kwh_before is not None:
                bought = self.month_kwh_after - self.month_kwh_before
            else:
                bought = self.units_kwh or ZERO
            position.kwh = max(position.kwh - bought, ZERO)
            if self.tender:
                position.vends = max(position.vends - 1, 0)
            if self.fbe_kwh:
                position.fbe_issued = False
            position.save()
        Command.write(
            [c for c in self.commands if c.state in {'pending', 'failed', 'rejected'}],
            {'state': 'cancelled', 'last_error': 'vend cancelled'},
        )
        Debt_.undo_vend(self)
        Emergency.undo_vend(self)
        if self.credit_amount:
            Account.debit_cancelled_vend(self)


class CancelStart(ModelView):
    "Cancel Vend"

    __name__ = 'prepaid.vend.cancel.start'

    reason = fields.Char("Reason", required=True)


class CancelVend(Wizard):
    "Cancel Vend"

    __name__ = 'prepaid.vend.cancel'

    start = StateView(
        'prepaid.vend.cancel.start',
        'prepaid_vending.vend_cancel_start_view_form',
        [
            Button("Close", 'end', 'tryton-cancel'),
            Button("Cancel Vend", 'cancel', 'tryton-ok', default=True),
        ],
    )
    cancel = StateTransition()

    def transition_cancel(self):
        # Second line: the context cannot widen the groups checked here.
        require_wizard_groups(self.__name__)
        self.model.cancel_vends(list(self.records), self.start.reason)
        return 'end'
