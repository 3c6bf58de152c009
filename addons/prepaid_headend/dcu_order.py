"""Orders to a concentrator, run by the concentrator itself within an
execution window (docs/concentrators.md sections 3 and 9), of five kinds:

- relay: disconnection, reconnection or arming of many meters at once;
- time sync: the concentrator's clock set to the head-end's (UTC, at
  sending), then its meters' clocks where they drift more than the
  threshold (the order's meters, or all of its directory);
- meter add / meter remove: entries of the head-end's directory of the
  concentrator (meter id and G3 address) approved into, or removed from,
  the concentrator's own directory;
- collection plan: the reading schedules of the groups of the
  concentrator's meters, as the concentrator's collection plan
  (``concentrator/plan.py``).

An order is drafted by a Metering Engineer (the kind, its meters, a reason
and the window) and sent with its IdPet (the order's id: unique in the
installation, so in each concentrator too); the concentrator form's
*Synchronise Clock* and *Send Collection Plan* draft and send one at once.
The concentrator answers at once (accepted and working, expired, unknown
meters); later it reports the outcome per meter in a request status update,
which ``dcu_backend`` hands to :meth:`Order.apply_status`: the order takes
the status, each line its meter's outcome, and a meter whose outcome is
``ok`` takes what was ordered (relay state, directory approval, removal).

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
from .concentrator.plan import ScheduleSpec, collection_plan, describe

STATES = [
    ('draft', "Draft"),
    ('working', "Working"),
    ('done', "Done"),
    ('partial', "Partly Done"),
    ('expired', "Expired"),
    ('failed', "Failed"),
]
KINDS = [
    ('relay', "Relay"),
    ('time_sync', "Time Synchronisation"),
    ('meter_add', "Meter Add"),
    ('meter_remove', "Meter Remove"),
    ('collection_plan', "Collection Plan"),
]
ACTIONS = [
    ('disconnect', "Disconnect"),
    ('reconnect', "Reconnect"),
    ('arm', "Ready for Reconnection"),
]
#: The window of the orders the concentrator form's buttons send.
DEFAULT_WINDOW = dt.timedelta(hours=1)
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


def _only(*kinds: str, required: bool = False) -> dict:
    "States of a field of some kinds only (draft only, as every field)"
    states = {**_draft, 'invisible': ~Eval('kind').in_(list(kinds))}
    if required:
        states['required'] = Eval('kind').in_(list(kinds))
    return states


#: Kinds whose meters are the order's lines (a time sync: some or all).
WITH_LINES = ('relay', 'time_sync', 'meter_add', 'meter_remove')
#: What a client may give or change, in a draft only (WorkflowOnlyMixin).
DRAFT_FIELDS = frozenset(
    {
        'company',
        'concentrator',
        'kind',
        'action',
        'threshold_s',
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
    kind = fields.Selection(KINDS, "Kind", required=True, states=_draft)
    action = fields.Selection(
        [(None, "")] + ACTIONS,
        "Relay Action",
        states=_only('relay', required=True),
    )
    threshold_s = fields.Integer(
        "Drift Threshold (s)",
        states=_only('time_sync', required=True),
        help="The concentrator sets a meter's clock that is further than this "
        "from its own.",
    )
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
        'prepaid.concentrator.order.line',
        'order',
        "Meters",
        states=_only(*WITH_LINES),
        help="Time synchronisation: none for every meter of the directory.",
    )
    plan = fields.Text(
        "Collection Plan",
        readonly=True,
        states={'invisible': Eval('kind') != 'collection_plan'},
        help="The tasks sent: report type, period, delivery.",
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

    @staticmethod
    def default_kind():
        return 'relay'

    @staticmethod
    def default_threshold_s():
        config = Pool().get('prepaid.configuration')(1)
        return round(config.hes_clock_threshold or 10)

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
            if order.kind == 'time_sync' and (order.threshold_s or 0) < 0:
                raise UserError(
                    gettext(
                        'prepaid_headend.msg_order_threshold',
                        order=order.rec_name,
                        threshold=order.threshold_s,
                    )
                )

    @classmethod
    @ModelView.button
    def send(cls, orders):
        "Send the draft orders to their concentrators (one call each)"
        for order in orders:
            if order.state == 'draft':
                order._send()

    @classmethod
    def create_and_send(cls, concentrator, kind: str, reason: str):
        """A draft of ``kind`` for ``concentrator``, with the default window
        (one hour), sent at once (the concentrator form's buttons)."""
        (order,) = cls.create(
            [
                {
                    'company': concentrator.company.id,
                    'concentrator': concentrator.id,
                    'kind': kind,
                    'reason': reason,
                    'window_end': dcu.now() + DEFAULT_WINDOW,
                }
            ]
        )
        cls.send([order])
        return cls(order.id)

    def _send(self) -> None:
        # Every check before the concentrator is called: bad input sends
        # nothing.
        now = dcu.now()
        body, written = self._body(now)
        message = m.Order(
            self.id,
            m.Window(end=_aware(self.window_end), start=_aware(self.window_start)),
            body,
        )
        with without_check_access():
            client = self.concentrator.client()
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
            **written,
        )

    def _body(self, now: dt.datetime) -> tuple[m.OrderBody, dict]:
        """The order's message body and what the order keeps of it; a
        UserError when the order cannot be sent as it is."""
        if self.kind in ('relay', 'meter_add', 'meter_remove') and not self.lines:
            raise UserError(
                gettext('prepaid_headend.msg_order_no_meter', order=self.rec_name)
            )
        meters = tuple(line.meter_id for line in self.lines)
        if self.kind == 'relay':
            return m.RelayOrder(m.RelayAction(self.action), meters), {}
        if self.kind == 'time_sync':
            # The head-end's clock now: the concentrator takes it at arrival.
            time = _aware(now)
            return m.TimeSyncOrder(time, self.threshold_s, meters=meters), {}
        if self.kind == 'meter_add':
            return m.MeterAddOrder(tuple(self._entry(line) for line in self.lines)), {}
        if self.kind == 'meter_remove':
            return m.MeterRemoveOrder(meters), {}
        tasks = self._collection_plan()
        return m.CollectionPlanOrder(tasks), {'plan': describe(tasks)}

    def _entry(self, line) -> m.DirectoryEntry:
        entry = line.entry()
        if entry is None or not entry.pda:
            raise UserError(
                gettext(
                    'prepaid_headend.msg_order_no_entry',
                    order=self.rec_name,
                    meter=line.meter.rec_name,
                )
            )
        return m.DirectoryEntry(
            entry.meter_id, bytes.fromhex(entry.pda), line.meter.model or None
        )

    def _collection_plan(self) -> tuple[m.CollectionTask, ...]:
        """The tasks of the active reading schedules of the groups of the
        meters in the concentrator's directory."""
        pool = Pool()
        Entry = pool.get('prepaid.concentrator.directory')
        Schedule = pool.get('prepaid.headend.schedule')
        with without_check_access():
            entries = Entry.search(
                [
                    ('concentrator', '=', self.concentrator.id),
                    ('meter', '!=', None),
                    ('status', '!=', 'removed'),
                ]
            )
            groups = {e.meter.hes_group.id for e in entries if e.meter.hes_group}
            schedules = Schedule.search(
                [('group', 'in', list(groups)), ('company', '=', self.company.id)]
            )
            specs = [
                ScheduleSpec(
                    frequency=s.frequency,
                    interval_minutes=s.interval_minutes,
                    registers=bool(s.read_registers),
                    billing=bool(s.read_billing),
                    profile=bool(s.profile_hours),
                    events=bool(s.read_events),
                )
                for s in schedules
            ]
        tasks = collection_plan(specs)
        if not tasks:
            raise UserError(
                gettext(
                    'prepaid_headend.msg_order_no_schedule',
                    concentrator=self.concentrator.rec_name,
                )
            )
        return tasks

    def _write(self, **values) -> None:
        # The order's status fields are read-only to users: the head-end
        # writes them.
        with without_check_access():
            self.__class__.write([self], values)

    @classmethod
    def apply_status(cls, concentrator, update: m.RequestStatusUpdate) -> bool:
        """The outcome a concentrator reported for one of its orders; False
        when the IdPet is none of the head-end's orders."""
        Line = Pool().get('prepaid.concentrator.order.line')
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
                    done.append(line)
            Line.save(list(by_meter.values()))
            if done:
                order._done(done)
            cls.write(
                [order],
                {
                    'state': ORDER_STATE.get(update.status, 'failed'),
                    'message': update.message,
                    'answered_at': dcu.now(),
                },
            )
        return True

    def _done(self, lines: list) -> None:
        "What the meters of ``lines`` take once the concentrator did it"
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Entry = pool.get('prepaid.concentrator.directory')
        if self.kind == 'relay':
            Meter.write(
                [line.meter for line in lines],
                {'hes_relay_state': RELAY_STATE[self.action]},
            )
            return
        entries = [e for e in (line.entry() for line in lines) if e is not None]
        if entries and self.kind == 'meter_add':
            Entry.write(entries, {'approval': 'approved'})
        elif entries and self.kind == 'meter_remove':
            # As the concentrator's own removal notice would (section 5).
            Entry.write(entries, {'status': 'removed', 'status_time': dcu.now()})


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

    def entry(self):
        "The meter's entry in the head-end's directory of the concentrator"
        Entry = Pool().get('prepaid.concentrator.directory')
        with without_check_access():
            entries = Entry.search(
                [
                    ('concentrator', '=', self.order.concentrator.id),
                    ('meter', '=', self.meter.id),
                ],
                limit=1,
            )
        return entries[0] if entries else None

    def get_meter_id(self, name):
        # The directory's id of the meter at that concentrator, else its
        # serial (a meter not in the directory is refused by the concentrator
        # as unknown, and the line says so).
        entry = self.entry()
        return entry.meter_id if entry else self.meter.serial
