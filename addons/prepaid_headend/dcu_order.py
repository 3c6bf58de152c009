"""Orders to a concentrator: relay disconnection, reconnection or arming of
many meters at once, run by the concentrator itself within an execution
window (docs/concentrators.md sections 3 and 9).

An order is drafted by a Metering Engineer (meters of the concentrator's
directory, the action, a reason and the window) and sent with its IdPet (the
order's id: unique in the installation, so in each concentrator too).  The
concentrator answers at once (accepted and working, expired, unknown
meters); later it reports the outcome per meter in a request status update,
which ``dcu_backend`` hands to :meth:`Order.apply_status`: the order takes
the status, each line its meter's outcome, and a meter whose relay order
succeeded takes the relay state it was ordered to.

A concentrator that cannot be reached leaves the order a draft with the
reason: sending it again uses the same IdPet, which a concentrator never
runs twice.  A refusal (fault, HTTP client error, another certificate) fails
the order.
"""

from __future__ import annotations

import datetime as dt

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, Unique, fields
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.modules.prepaid_vending.workflow_only import WorkflowOnlyMixin
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import without_check_access

from . import dcu
from .concentrator import messages as m
from .concentrator.errors import ConcentratorError, TransportError

STATES = [
    ('draft', "Draft"),
    ('working', "Working"),
    ('done', "Done"),
    ('partial', "Partly Done"),
    ('expired', "Expired"),
    ('failed', "Failed"),
]
ACTIONS = [
    ('disconnect', "Disconnect"),
    ('reconnect', "Reconnect"),
    ('arm', "Ready for Reconnection"),
]
#: The relay state a meter takes once its order succeeded.
RELAY_STATE = {'disconnect': 'disconnected', 'reconnect': 'connected', 'arm': 'ready'}
#: The order's state from a status the concentrator reports.
ORDER_STATE = {
    m.RequestStatus.OK: 'done',
    m.RequestStatus.WORKING: 'working',
    m.RequestStatus.PARTIAL: 'partial',
    m.RequestStatus.EXPIRED: 'expired',
}
OUTCOMES = [(None, "")] + [
    (s.value, s.value.replace('_', ' ').title()) for s in m.RequestStatus
]
_draft = {'readonly': Eval('state') != 'draft'}
#: What a client may give or change, in a draft only (WorkflowOnlyMixin).
DRAFT_FIELDS = frozenset(
    {
        'company',
        'concentrator',
        'action',
        'reason',
        'window_start',
        'window_end',
        'lines',
    }
)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    "Tryton's naive UTC timestamp, as the concentrator's messages carry it"
    return moment.replace(tzinfo=dt.UTC) if moment else None


class Order(CompanyMixin, WorkflowOnlyMixin, ModelSQL, ModelView):
    "Order to a Concentrator"

    __name__ = 'prepaid.concentrator.order'
    __string__ = "Concentrator Order"
    _company_links = ('concentrator',)
    _client_create = DRAFT_FIELDS
    _client_fields = {'draft': DRAFT_FIELDS}
    _client_delete_states = frozenset({'draft'})

    concentrator = fields.Many2One(
        'prepaid.concentrator',
        "Concentrator",
        required=True,
        ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states=_draft,
    )
    action = fields.Selection(ACTIONS, "Relay Action", required=True, states=_draft)
    reason = fields.Char("Reason", required=True, size=255, states=_draft)
    window_start = fields.Timestamp(
        "Not Before (UTC)", states=_draft, help="Empty: at once."
    )
    window_end = fields.Timestamp(
        "Expires (UTC)",
        required=True,
        states=_draft,
        help="Meters not reached by then are reported expired.",
    )
    lines = fields.One2Many(
        'prepaid.concentrator.order.line', 'order', "Meters", states=_draft
    )
    state = fields.Selection(STATES, "Status", required=True, readonly=True)
    id_pet = fields.Integer("Request (IdPet)", readonly=True)
    message = fields.Text("Message", readonly=True)
    sent_at = fields.Timestamp("Sent (UTC)", readonly=True)
    answered_at = fields.Timestamp("Last Status (UTC)", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'id_pet_unique',
                Unique(t, t.concentrator, t.id_pet),
                'prepaid_headend.msg_order_id_pet_unique',
            ),
        ]
        cls._sql_indexes.add(
            Index(t, (t.concentrator, Index.Equality()), (t.id_pet, Index.Equality()))
        )
        cls._order.insert(0, ('id', 'DESC'))
        cls._buttons.update(
            {
                'send': {
                    'invisible': Eval('state') != 'draft',
                    'depends': ['state'],
                },
            }
        )

    @staticmethod
    def default_state():
        return 'draft'

    def get_rec_name(self, name):
        return f"{self.concentrator.rec_name} #{self.id}"

    @classmethod
    def validate(cls, orders):
        super().validate(orders)
        for order in orders:
            if order.window_start and order.window_start >= order.window_end:
                raise UserError(
                    gettext('prepaid_headend.msg_order_window', order=order.rec_name)
                )

    @classmethod
    @ModelView.button
    def send(cls, orders):
        "Send the draft orders to their concentrators (one call each)"
        for order in orders:
            if order.state == 'draft':
                order._send()

    def _send(self) -> None:
        if not self.lines:
            raise UserError(
                gettext('prepaid_headend.msg_order_no_meter', order=self.rec_name)
            )
        message = m.Order(
            self.id,
            m.Window(end=_aware(self.window_end), start=_aware(self.window_start)),
            m.RelayOrder(
                m.RelayAction(self.action), tuple(line.meter_id for line in self.lines)
            ),
        )
        with without_check_access():
            client = self.concentrator.client()
        now = dcu.now()
        try:
            accepted = client.order(message)
        except TransportError as exc:
            # Unreachable: a draft still, sent again with the same IdPet.
            self._write(
                message=gettext('prepaid_headend.msg_order_retry', error=str(exc))
            )
            return
        except ConcentratorError as exc:
            self._write(state='failed', id_pet=self.id, sent_at=now, message=str(exc))
            return
        state = ORDER_STATE.get(accepted.status, 'failed')
        self._write(
            state=state,
            id_pet=self.id,
            sent_at=now,
            message=accepted.message,
        )

    def _write(self, **values) -> None:
        # The order's status fields are read-only to users: the head-end
        # writes them.
        with without_check_access():
            self.__class__.write([self], values)

    @classmethod
    def apply_status(cls, concentrator, update: m.RequestStatusUpdate) -> bool:
        """The outcome a concentrator reported for one of its orders; False
        when the IdPet is none of the head-end's orders."""
        pool = Pool()
        Line = pool.get('prepaid.concentrator.order.line')
        Meter = pool.get('prepaid.meter')
        with without_check_access():
            orders = cls.search(
                [('concentrator', '=', concentrator.id), ('id_pet', '=', update.id_pet)]
            )
            if not orders:
                return False
            (order,) = orders
            by_meter = {line.meter_id: line for line in order.lines}
            done = []
            for outcome in update.outcomes:
                line = by_meter.get(outcome.meter_id)
                if line is None:
                    continue
                line.status = outcome.status.value
                line.message = outcome.message
                if outcome.status is m.RequestStatus.OK:
                    done.append(line.meter)
            Line.save(list(by_meter.values()))
            if done:
                Meter.write(done, {'hes_relay_state': RELAY_STATE[order.action]})
            cls.write(
                [order],
                {
                    'state': ORDER_STATE.get(update.status, 'failed'),
                    'message': update.message,
                    'answered_at': dcu.now(),
                },
            )
        return True


class OrderLine(WorkflowOnlyMixin, ModelSQL, ModelView):
    "Meter of a Concentrator Order"

    __name__ = 'prepaid.concentrator.order.line'
    __string__ = "Concentrator Order Meter"
    # A client picks the meters of a draft order; the outcomes are the
    # concentrator's.
    _client_create = frozenset({'order', 'meter'})
    _client_fields = {'draft': frozenset({'meter'})}
    _client_delete_states = frozenset({'draft'})

    order = fields.Many2One(
        'prepaid.concentrator.order',
        "Order",
        required=True,
        ondelete='CASCADE',
    )
    meter = fields.Many2One(
        'prepaid.meter',
        "Meter",
        required=True,
        ondelete='RESTRICT',
        domain=[
            ('company', '=', Eval('_parent_order', {}).get('company', -1)),
        ],
    )
    meter_id = fields.Function(
        fields.Char("Meter Id", help="As the concentrator knows it."),
        'get_meter_id',
    )
    status = fields.Selection(OUTCOMES, "Outcome", readonly=True)
    message = fields.Char("Message", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('order')

    def _workflow_state_value(self) -> str | None:
        return self.order.state

    def get_meter_id(self, name):
        # The directory's id of the meter at that concentrator, else its
        # serial (a meter not in the directory is refused by the concentrator
        # as unknown, and the line says so).
        Entry = Pool().get('prepaid.concentrator.directory')
        with without_check_access():
            entries = Entry.search(
                [
                    ('concentrator', '=', self.order.concentrator.id),
                    ('meter', '=', self.meter.id),
                ],
                limit=1,
            )
        return entries[0].meter_id if entries else self.meter.serial
