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
from trytond.pool import Pool
from trytond.pyson import Id

from .excel_import.sheet import server_limits
from .limits import MAX_AMOUNT, MIN_AMOUNT, RangeMixin
from .tariff_model import CHANNELS


class Configuration(RangeMixin, ModelSingleton, ModelSQL, ModelView):
    "System parameters of the vending and metering platform"

    __name__ = 'prepaid.configuration'

    customer_sequence = fields.Many2One(
        'ir.sequence',
        "Customer Number Sequence",
        domain=[
            ('sequence_type', '=', Id('prepaid_vending', 'sequence_type_customer'))
        ],
    )
    service_point_sequence = fields.Many2One(
        'ir.sequence',
        "Service Point Sequence",
        domain=[
            ('sequence_type', '=', Id('prepaid_vending', 'sequence_type_service_point'))
        ],
    )
    currency = fields.Many2One('currency.currency', "Currency")
    default_customer_category = fields.Many2One(
        'prepaid.customer.category', "Default Customer Category"
    )
    min_vend_amount = fields.Numeric(
        "Minimum Vend Amount",
        digits=(16, 2),
        help="The smallest tender accepted for a vend.",
    )
    max_vend_amount = fields.Numeric(
        "Maximum Vend Amount",
        digits=(16, 2),
        help="The largest tender accepted for one vend (fraud and error guard).",
    )
    max_kwh_per_vend = fields.Numeric("Maximum kWh per Vend", digits=(16, 1))
    reprint_count = fields.Integer(
        "Receipts Available for Reprint",
        help="How many of a meter's last receipts can be reprinted.",
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
    def default_customer_sequence(cls):
        return cls._default_id('sequence_customer')

    @classmethod
    def default_service_point_sequence(cls):
        return cls._default_id('sequence_service_point')

    @staticmethod
    def _default_id(xml_id):
        try:
            return Pool().get('ir.model.data').get_id('prepaid_vending', xml_id)
        except KeyError:
            return None

    @staticmethod
    def default_min_vend_amount():
        return Decimal('10.00')

    @staticmethod
    def default_max_vend_amount():
        return Decimal('10000.00')

    @staticmethod
    def default_reprint_count():
        return 5

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
            'min_vend_amount': (MIN_AMOUNT, MAX_AMOUNT),
            'max_vend_amount': (MIN_AMOUNT, MAX_AMOUNT),
            'max_kwh_per_vend': (Decimal('0.1'), Decimal('1000000')),
            'reprint_count': (0, 100),
            'import_queue_threshold': (1, 10_000_000),
            'import_max_rows': (1, ceiling.max_rows),
            'import_max_megabytes': (1, ceiling.megabytes),
        }

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        if not field_names or field_names & {'min_vend_amount', 'max_vend_amount'}:
            for record in records:
                low, high = record.min_vend_amount, record.max_vend_amount
                if low is not None and high is not None and low > high:
                    raise ValidationError(
                        gettext(
                            'prepaid_vending.msg_vend_amount_order',
                            minimum=low,
                            maximum=high,
                        )
                    )


class SalesPoint(RangeMixin, DeactivableMixin, ModelSQL, ModelView):
    "Sales point: an office or mobile vending unit with its local parameters"

    __name__ = 'prepaid.sales_point'

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
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'code_unique',
                Unique(t, t.code),
                'prepaid_vending.msg_sales_point_code_unique',
            ),
        ]

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
