"""Customers are parties with a customer number and a category."""

import re

from trytond.i18n import gettext
from trytond.model import DeactivableMixin, Index, ModelSQL, ModelView, Unique, fields
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Bool, Eval

from .company import CompanyMixin

# National ID: digits only, 6 to 20 of them (South African IDs have 13, Kenyan
# 7-8, Nigerian NIN 11).  A utility with one national format can tighten this
# in the configuration; the importer uses the same check.
NATIONAL_ID = re.compile(r'^[0-9]{6,20}$')
REGISTRATION_NUMBER = re.compile(r'^[A-Za-z0-9/\-]{4,30}$')
# E.164-style phone numbers: optional +, 7 to 15 digits, spaces allowed.
PHONE = re.compile(r'^\+?[0-9 ]{7,20}$')


def check_national_id(value: str) -> bool:
    return bool(NATIONAL_ID.match(value))


def check_registration_number(value: str) -> bool:
    return bool(REGISTRATION_NUMBER.match(value))


def check_phone(value: str) -> bool:
    digits = value.replace(' ', '').lstrip('+')
    return bool(PHONE.match(value)) and 7 <= len(digits) <= 15


class CustomerCategory(CompanyMixin, DeactivableMixin, ModelSQL, ModelView):
    """How a customer is classified (residential, commercial ...)

    A category is a property of the party, and parties are shared by all the
    utilities of the installation (as in Tryton), so the categories are too:
    the module's own ones have no company.  A utility may add categories of
    its own (the context's company by default), which only its users see.
    The codes stay unique in the installation: a party's category must mean
    the same thing to every utility that reads it."""

    __name__ = 'prepaid.customer.category'

    name = fields.Char("Name", size=128, required=True, translate=True)
    code = fields.Char("Code", size=32, required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.company.required = False
        cls.company.help = "The utility that uses this category; empty: all of them."
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'code_unique',
                Unique(t, t.code),
                'prepaid_vending.msg_customer_category_code_unique',
            ),
        ]


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'

    customer_number = fields.Char("Customer Number", readonly=True)
    national_id = fields.Char("National ID", size=20)
    registration_number = fields.Char("Company Registration Number", size=30)
    customer_category = fields.Many2One(
        'prepaid.customer.category', "Customer Category", ondelete='RESTRICT'
    )
    service_points = fields.One2Many(
        'prepaid.service_point', 'customer', "Service Points"
    )
    meters = fields.Function(
        fields.Many2Many('prepaid.meter', None, None, "Meters"),
        'get_meters',
        searcher='search_meters',
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # Tryton leaves party names unbounded: a customer's name is printed
        # on receipts and sent to vendors, so it gets the project's size.
        cls.name.size = 200
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'customer_number_unique',
                Unique(t, t.customer_number),
                'prepaid_vending.msg_customer_number_unique',
            ),
        ]
        # A customer is known by the customer number: the party code (Tryton's
        # own sequence) would show a second, different number beside it.
        cls.code.states = {
            **cls.code.states,
            'invisible': Bool(cls.code.states.get('invisible', False))
            | Bool(Eval('customer_number')),
        }
        # Staff and the importer look customers up by national ID.
        cls._sql_indexes.add(Index(t, (t.national_id, Index.Equality())))
        cls._buttons.update(
            {
                'make_customer': {
                    'invisible': Bool(Eval('customer_number')),
                },
            }
        )

    @classmethod
    def view_attributes(cls):
        # The code's label follows the code (hidden for a customer, see
        # __setup__); the Customers list has no code column.
        is_customer = Bool(Eval('customer_number'))
        in_customer_list = Eval('context', {}).get('prepaid_customers', False)
        return super().view_attributes() + [
            (
                '/form//label[@name="code"]',
                'states',
                {'invisible': is_customer},
                ['customer_number'],
            ),
            ('/tree/field[@name="code"]', 'tree_invisible', in_customer_list),
        ]

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if (
            mode == 'create'
            and values.get('customer_category')
            and not values.get('customer_number')
        ):
            values['customer_number'] = cls._new_customer_number()
        return values

    @classmethod
    def _new_customer_number(cls):
        Configuration = Pool().get('prepaid.configuration')
        sequence = Configuration(1).customer_sequence
        if not sequence:
            raise ValidationError(gettext('prepaid_vending.msg_no_customer_sequence'))
        return sequence.get()

    @classmethod
    @ModelView.button
    def make_customer(cls, parties):
        for party in parties:
            if not party.customer_number:
                party.customer_number = cls._new_customer_number()
        cls.save(parties)

    @classmethod
    def validate_fields(cls, parties, field_names):
        super().validate_fields(parties, field_names)
        for party in parties:
            if party.national_id and not check_national_id(party.national_id):
                raise ValidationError(
                    gettext(
                        'prepaid_vending.msg_invalid_national_id',
                        value=party.national_id,
                        party=party.rec_name,
                    )
                )
            if party.registration_number and not check_registration_number(
                party.registration_number
            ):
                raise ValidationError(
                    gettext(
                        'prepaid_vending.msg_invalid_registration_number',
                        value=party.registration_number,
                        party=party.rec_name,
                    )
                )

    @classmethod
    def search_rec_name(cls, name, clause):
        domain = super().search_rec_name(name, clause)
        _, operator, value = clause[:3]
        if operator.startswith('!') or operator.startswith('not '):
            return domain
        return [
            'OR',
            domain,
            ('customer_number', operator, value),
            ('national_id', operator, value),
            ('meters.serial', operator, value),
            ('service_points.street', operator, value),
            ('service_points.city', operator, value),
        ]

    @classmethod
    def get_meters(cls, parties, name):
        Meter = Pool().get('prepaid.meter')
        result = {p.id: [] for p in parties}
        for meter in Meter.search([('customer', 'in', [p.id for p in parties])]):
            result[meter.customer.id].append(meter.id)
        return result

    @classmethod
    def search_meters(cls, name, clause):
        return [
            (
                'service_points',
                'where',
                [
                    (
                        'installations',
                        'where',
                        [
                            ('removed_on', '=', None),
                            ('meter' + clause[0][len(name) :], *clause[1:]),
                        ],
                    ),
                ],
            )
        ]
