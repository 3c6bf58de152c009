"""Meters, their lifecycle and their installations on service points.

A meter's state changes only through `change_state`, which writes the history
line (who, when, why) in the same transaction, so the history can be trusted.
Installations are dated records; a meter and a service point each carry at most
one installation at any date.  Modules higher up (STS, head-end) extend the
meter with their own parameters through the pool.
"""

import datetime as dt

from sql import Column, Null
from trytond import backend
from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin,
    Index,
    ModelSQL,
    ModelView,
    Unique,
    fields,
    tree,
)
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access

from .append_only import AppendOnlyMixin
from .company import CompanyMixin
from .workflow_only import WorkflowOnlyMixin

METER_KINDS = [
    ('sts_keypad', "STS keypad prepaid"),
    ('smart_prepaid', "Smart prepaid (communication module)"),
    ('postpaid', "Postpaid"),
]
PAYMENT_MODES = [
    ('prepaid', "Prepaid (token)"),
    ('remote_prepaid', "Remote prepaid (balance in the system)"),
    ('postpaid', "Postpaid (credit)"),
]
STATES = [
    ('in_stock', "In Stock"),
    ('installed', "Installed"),
    ('removed', "Removed"),
    ('faulty', "Faulty"),
    ('scrapped', "Scrapped"),
]
# Which lifecycle moves are allowed.  Installation and removal happen through
# installations (see ServicePoint.install_meter), the rest through the
# change-state wizard.
TRANSITIONS = {
    ('in_stock', 'installed'),
    ('installed', 'removed'),
    ('installed', 'faulty'),
    ('removed', 'in_stock'),
    ('removed', 'faulty'),
    ('removed', 'scrapped'),
    ('faulty', 'in_stock'),
    ('faulty', 'scrapped'),
    ('in_stock', 'faulty'),
    ('in_stock', 'scrapped'),
}
ROLES = [
    ('customer', "Customer meter"),
    ('master', "Master (check) meter"),
]


class MeterInvalidTransition(ValidationError):
    pass


class InstallationOverlap(ValidationError):
    pass


class Meter(
    CompanyMixin,
    DeactivableMixin,
    tree(name='serial', parent='master'),
    ModelSQL,
    ModelView,
):
    __name__ = 'prepaid.meter'
    _rec_name = 'serial'
    _company_index = False
    # The same serial may exist at two utilities (each its own stock).
    _company_replaces = ('serial_unique',)

    serial = fields.Char("Serial Number", size=64, required=True, strip=True)
    manufacturer = fields.Char("Manufacturer", size=64)
    model = fields.Char("Model", size=64)
    phases = fields.Selection(
        [('1', "Single phase"), ('3', "Three phase")], "Phases", required=True
    )
    rated_current = fields.Numeric("Rated Current (A)", digits=(8, 1))
    kind = fields.Selection(METER_KINDS, "Kind", required=True)
    payment_mode = fields.Selection(PAYMENT_MODES, "Payment Mode", required=True)
    ct_ratio = fields.Integer(
        "CT Ratio",
        required=True,
        domain=[('ct_ratio', '>', 0)],
        help="Current transformer ratio (primary/secondary, e.g. 40 for 200/5 A); "
        "1 for direct-connected meters.",
    )
    firmware_version = fields.Char("Firmware Version", size=64)
    state = fields.Selection(STATES, "State", readonly=True, required=True)
    state_history = fields.One2Many(
        'prepaid.meter.state_history', 'meter', "State History", readonly=True
    )
    installations = fields.One2Many(
        'prepaid.meter.installation', 'meter', "Installations", readonly=True
    )
    service_point = fields.Function(
        fields.Many2One('prepaid.service_point', "Service Point"),
        'get_current_installation',
        searcher='search_service_point',
    )
    customer = fields.Function(
        fields.Many2One(
            'party.party',
            "Customer",
            # The party's company-dependent values (its accounts ...) are
            # read for the meter's utility.
            context={'company': Eval('company', -1)},
            depends={'company'},
        ),
        'get_current_installation',
        searcher='search_customer',
    )
    role = fields.Selection(ROLES, "Role", required=True)
    master = fields.Many2One(
        'prepaid.meter',
        "Master Meter",
        ondelete='SET NULL',
        domain=[('role', '=', 'master'), ('id', '!=', Eval('id', -1))],
        help="The check meter that measures the energy supplied to this meter.",
    )
    slaves = fields.One2Many('prepaid.meter', 'master', "Slave Meters", readonly=True)
    master_of_transformer = fields.Many2One(
        'prepaid.transformer',
        "Master of Transformer",
        ondelete='SET NULL',
        states={'invisible': Eval('role') != 'master'},
    )
    master_of_feeder = fields.Many2One(
        'prepaid.feeder',
        "Master of Feeder",
        ondelete='SET NULL',
        states={'invisible': Eval('role') != 'master'},
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'company_serial_unique',
                Unique(t, t.company, t.serial),
                'prepaid_vending.msg_meter_serial_unique',
            ),
        ]
        cls._order.insert(0, ('serial', 'ASC'))
        cls._buttons.update(
            {
                'change_state_wizard': {},
            }
        )

    @staticmethod
    def default_state():
        return 'in_stock'

    @staticmethod
    def default_phases():
        return '1'

    @staticmethod
    def default_kind():
        return 'sts_keypad'

    @staticmethod
    def default_payment_mode():
        return 'prepaid'

    @staticmethod
    def default_ct_ratio():
        return 1

    @staticmethod
    def default_role():
        return 'customer'

    @classmethod
    def validate_fields(cls, meters, field_names):
        super().validate_fields(meters, field_names)
        if not field_names or field_names & {
            'role',
            'master_of_transformer',
            'master_of_feeder',
            'master',
        }:
            for meter in meters:
                meter.check_role()

    def check_role(self):
        if self.role != 'master' and (
            self.master_of_transformer or self.master_of_feeder
        ):
            raise ValidationError(
                gettext('prepaid_vending.msg_meter_master_fields', meter=self.serial)
            )

    @classmethod
    def get_current_installation(cls, meters, names):
        """Service point and customer of the installation in place.  One
        query: every vend asks for both, and the ORM reads of the installation
        and of its service point were among the vend's largest costs (figures
        in bench/README.md)."""
        pool = Pool()
        installation = pool.get('prepaid.meter.installation').__table__()
        point = pool.get('prepaid.service_point').__table__()
        result = {n: {m.id: None for m in meters} for n in names}
        cursor = Transaction().connection.cursor()
        for ids in grouped_slice([m.id for m in meters], backend.MAX_QUERY_PARAMS):
            cursor.execute(
                *installation.join(
                    point, condition=installation.service_point == point.id
                ).select(
                    installation.meter,
                    point.id,
                    point.customer,
                    where=fields.SQL_OPERATORS['in'](installation.meter, list(ids))
                    & (installation.removed_on == Null),
                )
            )
            for meter_id, point_id, customer_id in cursor:
                if 'service_point' in names:
                    result['service_point'][meter_id] = point_id
                if 'customer' in names:
                    result['customer'][meter_id] = customer_id
        return result

    @classmethod
    def search_service_point(cls, name, clause):
        return [
            (
                'installations',
                'where',
                [
                    ('removed_on', '=', None),
                    ('service_point' + clause[0][len(name) :], *clause[1:]),
                ],
            )
        ]

    @classmethod
    def search_customer(cls, name, clause):
        return [
            (
                'installations',
                'where',
                [
                    ('removed_on', '=', None),
                    ('service_point.customer' + clause[0][len(name) :], *clause[1:]),
                ],
            )
        ]

    @classmethod
    def change_state(cls, meters, state, reason):
        "Move meters to state, recording who, when and why"
        History = Pool().get('prepaid.meter.state_history')
        if not reason:
            raise ValidationError(gettext('prepaid_vending.msg_meter_state_reason'))
        history = []
        for meter in meters:
            if (meter.state, state) not in TRANSITIONS:
                raise MeterInvalidTransition(
                    gettext(
                        'prepaid_vending.msg_meter_invalid_transition',
                        meter=meter.serial,
                        from_=meter.state,
                        to=state,
                    )
                )
            history.append(
                History(
                    meter=meter, from_state=meter.state, to_state=state, reason=reason
                )
            )
        cls.write(list(meters), {'state': state})
        # The history follows from the state change the user may make; no
        # client writes it directly (it is an audit trail).
        with without_check_access():
            History.save(history)

    @classmethod
    @ModelView.button_action('prepaid_vending.wizard_meter_change_state')
    def change_state_wizard(cls, meters):
        pass


class MeterStateHistory(AppendOnlyMixin, ModelSQL, ModelView):
    __name__ = 'prepaid.meter.state_history'

    meter = fields.Many2One('prepaid.meter', "Meter", required=True, ondelete='CASCADE')
    from_state = fields.Selection(STATES, "From", readonly=True)
    to_state = fields.Selection(STATES, "To", required=True, readonly=True)
    reason = fields.Char("Reason", required=True, readonly=True)
    user = fields.Many2One('res.user', "User", readonly=True)
    date = fields.Timestamp("Date", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('date', 'DESC'))
        cls._order.insert(1, ('id', 'DESC'))

    @staticmethod
    def default_user():
        return Transaction().user

    @staticmethod
    def default_date():
        return dt.datetime.now()


class MeterInstallation(WorkflowOnlyMixin, ModelSQL, ModelView):
    """A meter installed on a service point between two dates

    A client changes nothing on an installation: it is opened and closed by
    the Install Meter and Change Meter wizards and the import (which check
    the meter's state and move it), never created, edited or deleted from a
    client (WorkflowOnlyMixin)."""

    __name__ = 'prepaid.meter.installation'
    _workflow_state = None

    meter = fields.Many2One(
        'prepaid.meter', "Meter", required=True, ondelete='RESTRICT'
    )
    service_point = fields.Many2One(
        'prepaid.service_point', "Service Point", required=True, ondelete='RESTRICT'
    )
    installed_on = fields.Date("Installed On", required=True)
    removed_on = fields.Date(
        "Removed On",
        domain=[
            'OR',
            ('removed_on', '=', None),
            ('removed_on', '>=', Eval('installed_on')),
        ],
    )
    install_reading = fields.Numeric("Reading at Installation (kWh)", digits=(16, 2))
    removal_reading = fields.Numeric("Reading at Removal (kWh)", digits=(16, 2))
    removal_reason = fields.Char("Removal Reason", size=255)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('installed_on', 'DESC'))
        t = cls.__table__()
        # The current installation of a meter or service point (removed_on
        # empty) is looked up on every vend, by the overlap check and by the
        # import: index both links with the removal date.
        cls._sql_indexes.update(
            {
                Index(
                    t,
                    (t.meter, Index.Range()),
                    (t.removed_on, Index.Range()),
                ),
                Index(
                    t,
                    (t.service_point, Index.Range()),
                    (t.removed_on, Index.Range()),
                ),
            }
        )

    def get_rec_name(self, name):
        return f'{self.meter.serial} @ {self.service_point.rec_name}'

    @classmethod
    def validate(cls, installations):
        super().validate(installations)
        for installation in installations:
            # A meter is installed only at its own utility's premises.
            CompanyMixin.same_company(
                installation.meter,
                installation.service_point,
                'prepaid_vending.msg_company_mismatch',
            )
        cls.check_overlap(installations)

    @classmethod
    def check_overlap(cls, installations):
        """One installation per meter, and per service point, at any date.

        Set-based: one query per link and per slice of installations instead
        of two searches per installation (the import validates thousands)."""
        table = cls.__table__()
        other = cls.__table__()
        cursor = Transaction().connection.cursor()
        ids = [i.id for i in installations]
        conflicts = {}
        for field in ('meter', 'service_point'):
            for sub_ids in grouped_slice(ids, 1000):
                # Same overlap rule as before: the other one is open or ends
                # after this one starts, and starts before this one ends.
                cursor.execute(
                    *table.join(
                        other,
                        condition=(
                            (Column(other, field) == Column(table, field))
                            & (other.id != table.id)
                        ),
                    ).select(
                        table.id,
                        other.id,
                        where=fields.SQL_OPERATORS['in'](table.id, list(sub_ids))
                        & (
                            (other.removed_on == Null)
                            | (other.removed_on > table.installed_on)
                        )
                        & (
                            (table.removed_on == Null)
                            | (other.installed_on < table.removed_on)
                        ),
                        # The first "other" as the former search ordered them.
                        order_by=[other.installed_on.desc, other.id.asc],
                    )
                )
                for id_, other_id in cursor:
                    conflicts.setdefault((id_, field), other_id)
        if not conflicts:
            return
        for installation in installations:
            for field in ('meter', 'service_point'):
                other_id = conflicts.get((installation.id, field))
                if other_id is not None:
                    raise InstallationOverlap(
                        gettext(
                            'prepaid_vending.msg_installation_overlap',
                            installation=installation.rec_name,
                            other=cls(other_id).rec_name,
                        )
                    )
