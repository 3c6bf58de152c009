"""Outlets: a vendor's shops, branches or agents' kiosks, each with its own
lifecycle and limits."""

from __future__ import annotations

from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.modules.prepaid_vending.network import CodeSearchMixin
from trytond.pyson import Eval

from .levels import LifecycleMixin, LimitsMixin


class Outlet(
    CompanyMixin, CodeSearchMixin, LifecycleMixin, LimitsMixin, ModelSQL, ModelView
):
    __name__ = 'prepaid.vendor.outlet'
    _company_links = ('vendor',)

    vendor = fields.Many2One(
        'prepaid.vendor',
        "Vendor",
        required=True,
        ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states={'readonly': Eval('id', -1) >= 0},
    )
    name = fields.Char("Name", size=128, required=True)
    code = fields.Char("Code", size=32, required=True)
    address = fields.Text("Address")
    terminals = fields.One2Many('prepaid.vendor.terminal', 'outlet', "Terminals")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'vendor_code_unique',
                Unique(t, t.vendor, t.code),
                'prepaid_vendor_portal.msg_outlet_code_unique',
            ),
        ]
        cls._order.insert(0, ('code', 'ASC'))

    def get_rec_name(self, name):
        return f'[{self.code}] {self.name}'

    def node_code(self) -> str:
        return self.code
