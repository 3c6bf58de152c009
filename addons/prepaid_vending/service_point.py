"""Service points (premises) and the installation of meters on them."""

import datetime as dt

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .access import require_wizard_groups
from .company import CompanyCodeMixin

CONNECTION_STATUSES = [
    ('connected', "Connected"),
    ('disconnected', "Disconnected"),
    ('removed', "Removed"),
]


class ServicePoint(CompanyCodeMixin, ModelSQL, ModelView):
    __name__ = 'prepaid.service_point'
    _code_unique_error = 'prepaid_vending.msg_service_point_code_unique'
    _company_links = ('transformer',)
    _company_replaces = ('code_unique',)

    code = fields.Char("Code", readonly=True)
    customer = fields.Many2One(
        'party.party',
        "Customer",
        ondelete='RESTRICT',
        domain=[('customer_number', '!=', None)],
    )
    street = fields.Char("Street", size=128)
    city = fields.Char("City", size=64)
    postal_code = fields.Char("Postal Code", size=16)
    latitude = fields.Float("Latitude", digits=(9, 6))
    longitude = fields.Float("Longitude", digits=(9, 6))
    transformer = fields.Many2One(
        'prepaid.transformer', "Transformer", required=True, ondelete='RESTRICT'
    )
    feeder = fields.Function(
        fields.Many2One('prepaid.feeder', "Feeder"),
        'on_change_with_feeder',
        searcher='search_feeder',
    )
    connection_status = fields.Selection(
        CONNECTION_STATUSES, "Connection Status", required=True
    )
    installations = fields.One2Many(
        'prepaid.meter.installation', 'service_point', "Installations", readonly=True
    )
    meter = fields.Function(
        fields.Many2One('prepaid.meter', "Current Meter"),
        'get_meter',
        searcher='search_meter',
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('code', 'ASC'))
        cls._buttons.update(
            {
                'install_meter_wizard': {
                    'invisible': Eval('connection_status') == 'removed',
                },
            }
        )

    @staticmethod
    def default_connection_status():
        return 'connected'

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        cls.check_coordinates(values)
        if mode == 'create' and not values.get('code'):
            Configuration = Pool().get('prepaid.configuration')
            sequence = Configuration(1).service_point_sequence
            if sequence:
                values['code'] = sequence.get()
        return values

    @classmethod
    def check_coordinates(cls, values):
        """Finite and in range, checked on the values before they reach the
        database: SQLite stores a NaN as an empty value, so a check of the
        saved record would never see it."""
        for name, limit in (('latitude', 90), ('longitude', 180)):
            value = values.get(name)
            if value is not None and not (-limit <= value <= limit):
                raise ValidationError(
                    gettext(
                        'prepaid_vending.msg_service_point_coordinate',
                        field=cls._fields[name].string,
                        value=value,
                        limit=limit,
                    )
                )

    def get_rec_name(self, name):
        address = ', '.join(filter(None, [self.street, self.city]))
        return f'{self.code} {address}'.strip()

    @classmethod
    def search_rec_name(cls, name, clause):
        _, operator, value = clause[:3]
        bool_op = (
            'AND' if operator.startswith('!') or operator.startswith('not ') else 'OR'
        )
        return [
            bool_op,
            ('code', operator, value),
            ('street', operator, value),
            ('city', operator, value),
        ]

    @fields.depends('transformer', '_parent_transformer.feeder')
    def on_change_with_feeder(self, name=None):
        return self.transformer.feeder if self.transformer else None

    @classmethod
    def search_feeder(cls, name, clause):
        return [('transformer.feeder' + clause[0][len(name) :], *clause[1:])]

    @classmethod
    def get_meter(cls, points, name):
        Installation = Pool().get('prepaid.meter.installation')
        result = {p.id: None for p in points}
        for installation in Installation.search(
            [
                ('service_point', 'in', [p.id for p in points]),
                ('removed_on', '=', None),
            ]
        ):
            result[installation.service_point.id] = installation.meter.id
        return result

    @classmethod
    def search_meter(cls, name, clause):
        return [
            (
                'installations',
                'where',
                [
                    ('removed_on', '=', None),
                    ('meter' + clause[0][len(name) :], *clause[1:]),
                ],
            )
        ]

    @property
    def current_installation(self):
        for installation in self.installations:
            if not installation.removed_on:
                return installation

    def install_meter(
        self, meter, date, reading=None, removal_reading=None, reason=None
    ):
        """Install meter here on date; the meter in place, if any, is removed
        on the same date with its final reading."""
        pool = Pool()
        Installation = pool.get('prepaid.meter.installation')
        Meter = pool.get('prepaid.meter')
        if self.connection_status == 'removed':
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_service_point_removed', point=self.rec_name
                )
            )
        if meter.state != 'in_stock':
            raise ValidationError(
                gettext(
                    'prepaid_vending.msg_meter_not_in_stock',
                    meter=meter.serial,
                    state=meter.state,
                )
            )
        current = self.current_installation
        if current:
            if date < current.installed_on:
                raise ValidationError(
                    gettext(
                        'prepaid_vending.msg_installation_before_current',
                        date=date,
                        current=current.rec_name,
                    )
                )
            current.removed_on = date
            current.removal_reading = removal_reading
            current.removal_reason = reason or gettext(
                'prepaid_vending.msg_replaced_by', meter=meter.serial
            )
            # The history is this code's to write (WorkflowOnlyMixin).
            with without_check_access():
                current.save()
            Meter.change_state([current.meter], 'removed', current.removal_reason)
        installation = Installation(
            meter=meter, service_point=self, installed_on=date, install_reading=reading
        )
        # The history is this code's to write (WorkflowOnlyMixin).
        with without_check_access():
            installation.save()
        Meter.change_state(
            [meter],
            'installed',
            gettext('prepaid_vending.msg_installed_on', point=self.rec_name),
        )
        return installation

    def remove_meter(self, date, reading=None, reason=None):
        Meter = Pool().get('prepaid.meter')
        current = self.current_installation
        if not current:
            raise ValidationError(
                gettext('prepaid_vending.msg_no_meter_installed', point=self.rec_name)
            )
        current.removed_on = date
        current.removal_reading = reading
        current.removal_reason = reason
        # The history is this code's to write (WorkflowOnlyMixin).
        with without_check_access():
            current.save()
        Meter.change_state([current.meter], 'removed', reason or '-')

    @classmethod
    @ModelView.button_action('prepaid_vending.wizard_install_meter')
    def install_meter_wizard(cls, points):
        pass


class InstallMeterStart(ModelView):
    __name__ = 'prepaid.service_point.install_meter.start'

    service_point = fields.Many2One(
        'prepaid.service_point', "Service Point", readonly=True
    )
    current_meter = fields.Many2One('prepaid.meter', "Current Meter", readonly=True)
    meter = fields.Many2One(
        'prepaid.meter', "New Meter", required=True, domain=[('state', '=', 'in_stock')]
    )
    date = fields.Date("Date", required=True)
    reading = fields.Numeric("New Meter Reading (kWh)", digits=(16, 2))
    removal_reading = fields.Numeric(
        "Final Reading of the Current Meter (kWh)",
        digits=(16, 2),
        states={'invisible': ~Eval('current_meter')},
    )
    reason = fields.Char("Reason", states={'invisible': ~Eval('current_meter')})


class InstallMeter(Wizard):
    "Install or replace the meter of a service point"

    __name__ = 'prepaid.service_point.install_meter'

    start = StateView(
        'prepaid.service_point.install_meter.start',
        'prepaid_vending.service_point_install_meter_start_form_view',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Install", 'install', 'tryton-ok', default=True),
        ],
    )
    install = StateTransition()

    def default_start(self, fields):
        return {
            'service_point': self.record.id,
            'current_meter': self.record.meter.id if self.record.meter else None,
            'date': dt.date.today(),
        }

    def transition_install(self):
        self.record.install_meter(
            self.start.meter,
            self.start.date,
            reading=self.start.reading,
            removal_reading=self.start.removal_reading,
            reason=self.start.reason,
        )
        return 'end'


class ChangeMeterStateStart(ModelView):
    __name__ = 'prepaid.meter.change_state.start'

    state = fields.Selection(
        [
            ('in_stock', "In Stock"),
            ('faulty', "Faulty"),
            ('scrapped', "Scrapped"),
        ],
        "New State",
        required=True,
    )
    reason = fields.Char("Reason", required=True)


class ChangeMeterState(Wizard):
    "Change the lifecycle state of meters"

    __name__ = 'prepaid.meter.change_state'

    start = StateView(
        'prepaid.meter.change_state.start',
        'prepaid_vending.meter_change_state_start_form_view',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Change", 'change', 'tryton-ok', default=True),
        ],
    )
    change = StateTransition()

    def transition_change(self):
        # Second line: the context cannot widen the groups checked here.
        require_wizard_groups(self.__name__)
        Meter = Pool().get('prepaid.meter')
        Meter.change_state(self.records, self.start.state, self.start.reason)
        return 'end'
