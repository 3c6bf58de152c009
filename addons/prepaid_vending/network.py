"""The supply network: substations, feeders and distribution transformers."""

from trytond.model import DeactivableMixin, ModelSQL, ModelView, fields

from .company import CompanyCodeMixin


class CodeSearchMixin:
    """Found by its code as well as by its name: operators know the network
    by codes (the one painted on the transformer), not only by names.
    ``_code_search_fields``: the fields a search by name looks in."""

    __slots__ = ()
    _code_search_fields: tuple[str, ...] = ('name', 'code')

    @classmethod
    def search_rec_name(cls, name, clause):
        if clause[1].startswith('!') or clause[1].startswith('not '):
            bool_op = 'AND'
        else:
            bool_op = 'OR'
        return [bool_op, *((field, *clause[1:]) for field in cls._code_search_fields)]


class Substation(
    CompanyCodeMixin, CodeSearchMixin, DeactivableMixin, ModelSQL, ModelView
):
    __name__ = 'prepaid.substation'
    _code_unique_error = 'prepaid_vending.msg_substation_code_unique'
    _company_replaces = ('code_unique',)

    name = fields.Char("Name", size=128, required=True)
    code = fields.Char("Code", size=32, required=True)
    voltage_kv = fields.Numeric("Voltage (kV)", digits=(6, 2))
    latitude = fields.Float("Latitude", digits=(9, 6))
    longitude = fields.Float("Longitude", digits=(9, 6))
    feeders = fields.One2Many('prepaid.feeder', 'substation', "Feeders")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('code', 'ASC'))


class Feeder(CompanyCodeMixin, CodeSearchMixin, DeactivableMixin, ModelSQL, ModelView):
    __name__ = 'prepaid.feeder'
    _code_unique_error = 'prepaid_vending.msg_feeder_code_unique'
    _company_links = ('substation',)
    _company_replaces = ('code_unique',)

    name = fields.Char("Name", size=128, required=True)
    code = fields.Char("Code", size=32, required=True)
    substation = fields.Many2One(
        'prepaid.substation', "Substation", required=True, ondelete='RESTRICT'
    )
    transformers = fields.One2Many('prepaid.transformer', 'feeder', "Transformers")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('code', 'ASC'))


class Transformer(
    CompanyCodeMixin, CodeSearchMixin, DeactivableMixin, ModelSQL, ModelView
):
    __name__ = 'prepaid.transformer'
    _code_unique_error = 'prepaid_vending.msg_transformer_code_unique'
    _company_links = ('feeder',)
    _company_replaces = ('code_unique',)

    name = fields.Char("Name", size=128, required=True)
    code = fields.Char("Code", size=32, required=True)
    feeder = fields.Many2One(
        'prepaid.feeder', "Feeder", required=True, ondelete='RESTRICT'
    )
    substation = fields.Function(
        fields.Many2One('prepaid.substation', "Substation"),
        'on_change_with_substation',
        searcher='search_substation',
    )
    rated_kva = fields.Numeric(
        "Rated Power (kVA)",
        digits=(10, 1),
        domain=['OR', ('rated_kva', '=', None), ('rated_kva', '>', 0)],
    )
    location = fields.Char("Location", size=255)
    latitude = fields.Float("Latitude", digits=(9, 6))
    longitude = fields.Float("Longitude", digits=(9, 6))
    service_points = fields.One2Many(
        'prepaid.service_point', 'transformer', "Service Points", readonly=True
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('code', 'ASC'))

    @fields.depends('feeder', '_parent_feeder.substation')
    def on_change_with_substation(self, name=None):
        return self.feeder.substation if self.feeder else None

    @classmethod
    def search_substation(cls, name, clause):
        return [('feeder.substation' + clause[0][len(name) :], *clause[1:])]
