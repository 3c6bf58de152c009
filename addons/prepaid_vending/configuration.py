"""Company-wide system parameters and per-office local parameters."""

from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin,
    ModelSingleton,
    ModelSQL,
    ModelView,
    Unique,
    fields,
)
from trytond.model.exceptions import ValidationError
from trytond.modules.company.model import CompanyMultiValueMixin, CompanyValueMixin
from trytond.pool import Pool
from trytond.pyson import Eval, Id

from .company import CompanyCodeMixin
from .excel_import.sheet import server_limits
from .limits import MAX_AMOUNT, MIN_AMOUNT, RangeMixin
from .tariff_model import CHANNELS

#: The settings each utility (company) sets for itself; the others (customer
#: numbering, default customer category, currency shown, import limits) are
#: the installation's: customers (parties) are shared by the utilities, and
#: the import limits protect the server's memory, whoever imports.
COMPANY_FIELDS = {
    'service_point_sequence',
    'min_vend_amount',
    'max_vend_amount',
    'max_kwh_per_vend',
    'reprint_count',
}

VEND_AMOUNT_HELP = {
    'min_vend_amount': "The smallest tender accepted for a vend.",
    'max_vend_amount': "The largest tender accepted for one vend "
    "(fraud and error guard).",
}


def _service_point_sequence(company) -> fields.Many2One:
    "The field on the configuration (company: the context's) and per company"
    return fields.Many2One(
        'ir.sequence',
        "Service Point Sequence",
        domain=[
            (
                'sequence_type',
                '=',
                Id('prepaid_vending', 'sequence_type_service_point'),
            ),
            ('company', 'in', [company, None]),
        ],
    )


class VendingSettingsChecked:
    """The ranges and checks of the vending settings, on the configuration
    and on its values per company alike (either may be written)"""

    __slots__ = ()

    @classmethod
    def setting_ranges(cls):
        return super().setting_ranges() | VENDING_RANGES

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        if not field_names or field_names & {'min_vend_amount', 'max_vend_amount'}:
            for record in records:
                check_vend_amount_order(record.min_vend_amount, record.max_vend_amount)


class Configuration(
    VendingSettingsChecked,
    RangeMixin,
    ModelSingleton,
    ModelSQL,
    ModelView,
    CompanyMultiValueMixin,
):
    "System parameters of the vending and metering platform"

    __name__ = 'prepaid.configuration'

    customer_sequence = fields.Many2One(
        'ir.sequence',
        "Customer Number Sequence",
        domain=[
            ('sequence_type', '=', Id('prepaid_vending', 'sequence_type_customer'))
        ],
    )
    service_point_sequence = fields.MultiValue(
        _service_point_sequence(Eval('context', {}).get('company', -1))
    )
    currency = fields.Many2One('currency.currency', "Currency")
    default_customer_category = fields.Many2One(
        'prepaid.customer.category', "Default Customer Category"
    )
    min_vend_amount = fields.MultiValue(
        fields.Numeric(
            "Minimum Vend Amount",
            digits=(16, 2),
            help=VEND_AMOUNT_HELP['min_vend_amount'],
        )
    )
    max_vend_amount = fields.MultiValue(
        fields.Numeric(
            "Maximum Vend Amount",
            digits=(16, 2),
            help=VEND_AMOUNT_HELP['max_vend_amount'],
        )
    )
    max_kwh_per_vend = fields.MultiValue(
        fields.Numeric("Maximum kWh per Vend", digits=(16, 1))
    )
    reprint_count = fields.MultiValue(
        fields.Integer(
            "Receipts Available for Reprint",
            help="How many of a meter's last receipts can be reprinted.",
        )
    )
    company_values = fields.One2Many(
        'prepaid.configuration.company', 'configuration', "Company Values"
    )
    import_queue_threshold = fields.Integer(
        "Queue Imports Above (rows)",
        help="Workbooks with more rows are imported by a queued task.",
    )
    import_max_rows = fields.Integer(
        "Import Row Limit",
        help="Workbooks with more data rows are refused before any work. "
        "At most the server's [prepaid] import_max_rows (default 200,000).",
    )
    import_max_megabytes = fields.Integer(
        "Import Size Limit (MB)",
        help="Larger workbooks are refused before any work. At most the "
        "server's [prepaid] import_max_megabytes (default 12).",
    )

    @classmethod
    def multivalue_model(cls, field):
        if field in cls._company_fields():
            return Pool().get('prepaid.configuration.company')
        return super().multivalue_model(field)

    @classmethod
    def _company_fields(cls) -> set[str]:
        "The company-dependent fields (extended by accounting.py)"
        return COMPANY_FIELDS

    @classmethod
    def default_customer_sequence(cls):
        return _default_id('sequence_customer')

    @classmethod
    def default_service_point_sequence(cls, **pattern):
        return cls.multivalue_model(
            'service_point_sequence'
        ).default_service_point_sequence()

    @classmethod
    def default_min_vend_amount(cls, **pattern):
        return cls.multivalue_model('min_vend_amount').default_min_vend_amount()

    @classmethod
    def default_max_vend_amount(cls, **pattern):
        return cls.multivalue_model('max_vend_amount').default_max_vend_amount()

    @classmethod
    def default_reprint_count(cls, **pattern):
        return cls.multivalue_model('reprint_count').default_reprint_count()

    @staticmethod
    def default_import_queue_threshold():
        return 2000

    @staticmethod
    def default_import_max_rows():
        return server_limits().max_rows

    @staticmethod
    def default_import_max_megabytes():
        return server_limits().megabytes

    @classmethod
    def setting_ranges(cls):
        # The import limits may lower the server's ceiling, never raise it:
        # above it, memory would run out.
        ceiling = server_limits()
        return super().setting_ranges() | {
            'import_queue_threshold': (1, 10_000_000),
            'import_max_rows': (1, ceiling.max_rows),
            'import_max_megabytes': (1, ceiling.megabytes),
        }


VENDING_RANGES = {
    'min_vend_amount': (MIN_AMOUNT, MAX_AMOUNT),
    'max_vend_amount': (MIN_AMOUNT, MAX_AMOUNT),
    'max_kwh_per_vend': (Decimal('0.1'), Decimal('1000000')),
    'reprint_count': (0, 100),
}


def _default_id(xml_id):
    try:
        return Pool().get('ir.model.data').get_id('prepaid_vending', xml_id)
    except KeyError:
        return None


def check_vend_amount_order(low, high) -> None:
    if low is not None and high is not None and low > high:
        raise ValidationError(
            gettext(
                'prepaid_vending.msg_vend_amount_order',
                minimum=low,
                maximum=high,
            )
        )


class ConfigurationCompany(
    VendingSettingsChecked, RangeMixin, ModelSQL, CompanyValueMixin
):
    """The vending settings of one utility (company)

    Written through the configuration's company-dependent fields, for the
    company of the user's context (Tryton's CompanyMultiValueMixin).  The
    ranges and checks are those of the configuration: a client could write
    these records directly."""

    __name__ = 'prepaid.configuration.company'

    configuration = fields.Many2One(
        'prepaid.configuration',
        "Configuration",
        ondelete='CASCADE',
        context={'company': Eval('company', -1)},
        depends={'company'},
    )
    service_point_sequence = _service_point_sequence(Eval('company', -1))
    min_vend_amount = fields.Numeric(
        "Minimum Vend Amount", digits=(16, 2), help=VEND_AMOUNT_HELP['min_vend_amount']
    )
    max_vend_amount = fields.Numeric(
        "Maximum Vend Amount", digits=(16, 2), help=VEND_AMOUNT_HELP['max_vend_amount']
    )
    max_kwh_per_vend = fields.Numeric("Maximum kWh per Vend", digits=(16, 1))
    reprint_count = fields.Integer("Receipts Available for Reprint")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'company_unique',
                Unique(t, t.company),
                'prepaid_vending.msg_configuration_company_unique',
            ),
        ]

    @classmethod
    def default_service_point_sequence(cls):
        return _default_id('sequence_service_point')

    @staticmethod
    def default_min_vend_amount():
        return Decimal('10.00')

    @staticmethod
    def default_max_vend_amount():
        return Decimal('10000.00')

    @staticmethod
    def default_reprint_count():
        return 5


class SalesPoint(CompanyCodeMixin, RangeMixin, DeactivableMixin, ModelSQL, ModelView):
    "Sales point: an office or mobile vending unit with its local parameters"

    __name__ = 'prepaid.sales_point'
    _code_unique_error = 'prepaid_vending.msg_sales_point_code_unique'
    _company_replaces = ('code_unique',)

    name = fields.Char("Name", size=128, required=True)
    code = fields.Char("Code", size=32, required=True)
    kind = fields.Selection(
        [
            ('office', "Office"),
            ('mobile', "Mobile Vending Unit"),
            ('kiosk', "Kiosk / Agent"),
        ],
        "Kind",
        required=True,
    )
    address = fields.Char("Address", size=255)
    receipt_header = fields.Text("Receipt Header")
    receipt_footer = fields.Text("Receipt Footer")
    receipt_width_mm = fields.Selection(
        [
            ('58', "58 mm"),
            ('80', "80 mm"),
            ('a4', "A4"),
        ],
        "Receipt Paper",
        required=True,
    )
    max_vend_amount = fields.Numeric(
        "Maximum Vend Amount",
        digits=(16, 2),
        help="Overrides the system maximum for this sales point when lower.",
    )
    channel = fields.Selection(
        CHANNELS,
        "Vending Channel",
        required=True,
        help="The channel of every vend made here (it sets the channel fee "
        "and whether a cashier shift is needed): clients cannot choose it.",
    )
    offline_allowed = fields.Boolean(
        "Offline Vending Allowed",
        help="Mobile units may vend offline and synchronise later.",
    )
    cash_account = fields.Many2One(
        'account.account',
        "Cash Account",
        domain=[('closed', '!=', True), ('type', '!=', None)],
        help="Where cash received here is booked (vending accounting).",
    )
    bank_account = fields.Many2One(
        'account.account',
        "Bank Account",
        domain=[('closed', '!=', True), ('type', '!=', None)],
        help="Where card, mobile money and transfer receipts are booked.",
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()

    @staticmethod
    def default_kind():
        return 'office'

    @staticmethod
    def default_receipt_width_mm():
        return '80'

    @staticmethod
    def default_channel():
        return 'counter'

    @classmethod
    def setting_ranges(cls):
        return super().setting_ranges() | {'max_vend_amount': (MIN_AMOUNT, MAX_AMOUNT)}
