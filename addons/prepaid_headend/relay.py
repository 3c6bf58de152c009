"""Relay control with reason and read-back, and the clock synchronisation log.

The meter form has Connect / Disconnect buttons: each records a relay
operation (user, reason, time) and queues it, exactly as a Relay Operations
record executed by hand, and tells the user in a notification.

A relay operation is recorded (who, why, when) before it is queued and gets its
outcome after: the state read back from the meter confirms it or not.  The
remote-prepaid disconnect/reconnect commands of ``prepaid_vending`` become relay
operations too (see command.py), so the relay history of a meter is complete.
"""

from __future__ import annotations

import datetime as dt
import json

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Workflow, fields
from trytond.modules.prepaid_sts.company import (
    fill_company_from,
)
from trytond.modules.prepaid_vending.append_only import AppendOnlyMixin
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from .channel import CONTROL_STATE, RELAY_STATES

ACTIONS = [
    ('disconnect', "Disconnect"),
    ('reconnect', "Reconnect"),
    ('read', "Read State"),
]
STATES = [
    ('draft', "Draft"),
    ('queued', "Queued"),
    ('done', "Confirmed"),
    ('unconfirmed', "Not Confirmed"),
    ('failed', "Failed"),
]


class RelayOperation(CompanyMixin, Workflow, ModelSQL, ModelView):
    "Relay operation on a meter"

    __name__ = 'prepaid.headend.relay'
    __string__ = "Relay Operation"

    meter = fields.Many2One(
        'prepaid.meter',
        "Meter",
        required=True,
        ondelete='CASCADE',
        states={'readonly': Eval('state') != 'draft'},
        domain=[('company', '=', Eval('company', -1))],
    )
    action = fields.Selection(
        ACTIONS, "Action", required=True, states={'readonly': Eval('state') != 'draft'}
    )
    reason = fields.Char(
        "Reason",
        size=255,
        states={
            'readonly': Eval('state') != 'draft',
            'required': Eval('action') != 'read',
        },
    )
    state = fields.Selection(STATES, "State", required=True, readonly=True)
    user = fields.Many2One('res.user', "User", readonly=True)
    date = fields.Timestamp("Date", readonly=True)
    output_state = fields.Boolean("Output Closed", readonly=True)
    relay_state = fields.Selection(RELAY_STATES, "Relay State Read Back", readonly=True)
    error = fields.Text("Error", readonly=True)
    command = fields.Many2One(
        'prepaid.meter.command', "Command", readonly=True, ondelete='SET NULL'
    )
    jobs = fields.One2Many('prepaid.headend.job', 'relay', "Jobs", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('id', 'DESC')]
        # No __access__ on the meter: Tryton would grant the wider of both
        # accesses, so every group that may write meters (the Vending
        # Operator too) could write these.  Their own access records decide.
        cls._transitions |= {
            ('draft', 'queued'),
            ('queued', 'done'),
            ('queued', 'unconfirmed'),
            ('queued', 'failed'),
            ('failed', 'queued'),
            ('unconfirmed', 'queued'),
        }
        cls._buttons.update(
            {
                'execute': {
                    'invisible': ~Eval('state').in_(['draft', 'failed', 'unconfirmed']),
                    'depends': ['state'],
                },
            }
        )

    @classmethod
    def _migrate_company(cls, module):
        # Before the one-company default of CompanyMixin: the meter's company,
        # also where the installation already had several.
        fill_company_from(cls, 'meter', 'prepaid.meter')
        super()._migrate_company(module)

    @staticmethod
    def default_state():
        return 'draft'

    @staticmethod
    def default_action():
        return 'read'

    @staticmethod
    def default_user():
        return Transaction().user

    @staticmethod
    def default_date():
        return dt.datetime.now()

    def get_rec_name(self, name):
        return f"{dict(ACTIONS)[self.action]} {self.meter.serial}"

    @classmethod
    @ModelView.button
    @Workflow.transition('queued')
    def execute(cls, operations):
        "Queue the operation on the meter (the result comes back on the record)"
        Job = Pool().get('prepaid.headend.job')
        jobs = []
        for operation in operations:
            if operation.action != 'read' and not operation.reason:
                raise UserError(
                    gettext(
                        'prepaid_headend.msg_relay_reason', meter=operation.meter.serial
                    )
                )
            jobs += Job.create_for(
                [operation.meter],
                'relay',
                {'action': operation.action},
                relay=operation.id,
            )
        Job.queue(jobs)

    def job_done(self, state) -> None:
        self.output_state = state.output_state
        self.relay_state = CONTROL_STATE.get(state.control_state)
        self.error = None
        expected = {'disconnect': False, 'reconnect': True}.get(self.action)
        confirmed = expected is None or state.output_state == expected
        with without_check_access():
            self.save()
            if confirmed:
                self._done([self])
            else:
                self._unconfirmed([self])
        if self.command:
            if confirmed:
                self.command.hes_accepted(f"relay {self.relay_state}")
            else:
                self.command.hes_rejected(
                    f"relay not confirmed: meter reports {self.relay_state}"
                )

    def job_failed(self, message: str) -> None:
        self.error = message
        with without_check_access():
            self.save()
            self._failed([self])
        if self.command:
            self.command.hes_failed(message)

    @classmethod
    @Workflow.transition('done')
    def _done(cls, operations):
        pass

    @classmethod
    @Workflow.transition('unconfirmed')
    def _unconfirmed(cls, operations):
        pass

    @classmethod
    @Workflow.transition('failed')
    def _failed(cls, operations):
        pass


class Meter(metaclass=PoolMeta):
    __name__ = 'prepaid.meter'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._buttons.update(
            {
                'hes_relay_connect': {
                    'invisible': ~Eval('hes_reachable'),
                    'depends': ['hes_reachable'],
                },
                'hes_relay_disconnect': {
                    'invisible': ~Eval('hes_reachable'),
                    'depends': ['hes_reachable'],
                },
            }
        )

    @classmethod
    @ModelView.button
    def hes_relay_connect(cls, meters):
        "Queue a relay reconnection (recorded as a relay operation)"
        cls.hes_relay_operate(meters, 'reconnect')

    @classmethod
    @ModelView.button
    def hes_relay_disconnect(cls, meters):
        "Queue a relay disconnection (recorded as a relay operation)"
        cls.hes_relay_operate(meters, 'disconnect')

    @classmethod
    def hes_relay_operate(cls, meters, action: str) -> list:
        """Create and queue one relay operation per meter; the user hears of
        it in a notification and sees the outcome on the operation."""
        pool = Pool()
        Relay = pool.get('prepaid.headend.relay')
        Notification = pool.get('res.notification')
        reason = gettext('prepaid_headend.msg_relay_reason_meter_form')
        operations = Relay.create(
            [
                {
                    'meter': m.id,
                    'company': m.company.id,
                    'action': action,
                    'reason': reason,
                }
                for m in meters
            ]
        )
        Relay.execute(operations)
        user = Transaction().user
        with without_check_access():
            Notification.create(
                [
                    {
                        'user': user,
                        'label': gettext(
                            'prepaid_headend.msg_relay_queued',
                            action=dict(ACTIONS)[action],
                            meter=operation.meter.serial,
                        ),
                        'icon': 'tryton-info',
                        'model': Relay.__name__,
                        'records': json.dumps([operation.id]),
                    }
                    for operation in operations
                ]
            )
        return operations


class ClockSync(AppendOnlyMixin, ModelSQL, ModelView):
    "Clock check of a meter: the drift found and whether it was corrected"

    __name__ = 'prepaid.headend.clock_sync'
    __string__ = "Clock Check"

    meter = fields.Many2One(
        'prepaid.meter', "Meter", required=True, ondelete='CASCADE', readonly=True
    )
    date = fields.Timestamp("Date", required=True, readonly=True)
    drift = fields.Float(
        "Drift (s)",
        readonly=True,
        help="Meter time minus head-end time before correction.",
    )
    corrected = fields.Boolean("Corrected", readonly=True)
    drift_after = fields.Float("Drift After (s)", readonly=True)
    job = fields.Many2One(
        'prepaid.headend.job', "Job", readonly=True, ondelete='SET NULL'
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('date', 'DESC'), ('id', 'DESC')]
        cls.__access__.add('meter')

    @staticmethod
    def default_date():
        return dt.datetime.now()
