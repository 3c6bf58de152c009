"""Vendors: a float account (or a credit line) in the utility's books, owned
by a contracting party, selling through outlets, terminals and operators
(docs/vendors.md sections 1-3).

The vendor's party is the contracting owner; the float is that party's
balance on the vendor's float account (a payable: the vendor's money the
utility holds), derived from posted moves (float.py).  A multi-level agent
is a vendor whose parent vendor sells it float.
"""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_vending.company import CompanyCodeMixin
from trytond.modules.prepaid_vending.network import CodeSearchMixin
from trytond.pool import Pool
from trytond.pyson import Eval

from . import limits as core
from .levels import LifecycleMixin, LimitsMixin

KINDS = [
    ('client', "Client"),
    ('gateway', "Gateway"),
    ('agent', "Agent"),
]


class Vendor(
    CompanyCodeMixin, CodeSearchMixin, LifecycleMixin, LimitsMixin, ModelSQL, ModelView
):
    __name__ = 'prepaid.vendor'
    _code_unique_error = 'prepaid_vendor_portal.msg_vendor_code_unique'
    _company_links = ('parent', 'float_account')

    name = fields.Char("Name", size=128, required=True)
    code = fields.Char(
        "Code",
        size=32,
        required=True,
        states={'readonly': Eval('state') != 'draft'},
        help="The vendor's code in files and statements.",
    )
    party = fields.Many2One(
        'party.party',
        "Owner",
        required=True,
        ondelete='RESTRICT',
        help="The contracting party: its balance on the float account is the float.",
    )
    kind = fields.Selection(KINDS, "Kind", required=True)
    parent = fields.Many2One(
        'prepaid.vendor',
        "Parent Vendor",
        ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1)), ('id', '!=', Eval('id', -1))],
        help="The vendor that sells float to this sub-agent.",
    )
    children = fields.One2Many('prepaid.vendor', 'parent', "Sub-agents", readonly=True)
    float_account = fields.Many2One(
        'account.account',
        "Float Account",
        ondelete='RESTRICT',
        domain=[
            ('company', '=', Eval('company', -1)),
            ('type.payable', '=', True),
            ('party_required', '=', True),
            ('closed', '!=', True),
        ],
        help="The payable account holding the vendor's float (per owner party).",
    )
    credit_line = fields.Numeric(
        "Credit Line",
        digits=(16, 2),
        required=True,
        domain=[('credit_line', '>=', 0)],
        help="How far the float may go below zero.",
    )
    outlets = fields.One2Many('prepaid.vendor.outlet', 'vendor', "Outlets")
    float_balance = fields.Function(
        fields.Numeric("Float Balance", digits=(16, 2)), 'get_float'
    )
    float_available = fields.Function(
        fields.Numeric("Available to Sell", digits=(16, 2)), 'get_float'
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('code', 'ASC'))
        cls._buttons.update(
            {
                'top_up_wizard': {
                    'invisible': Eval('state') == 'terminated',
                    'depends': ['state'],
                },
            }
        )

    @staticmethod
    def default_kind():
        return 'client'

    @staticmethod
    def default_credit_line():
        return Decimal(0)

    @classmethod
    def validate_fields(cls, vendors, field_names):
        super().validate_fields(vendors, field_names)
        for vendor in vendors:
            seen = set()
            parent = vendor.parent
            while parent:
                if parent.id in seen or parent.id == vendor.id:
                    raise ValidationError(
                        gettext(
                            'prepaid_vendor_portal.msg_vendor_parent_loop',
                            vendor=vendor.rec_name,
                        )
                    )
                seen.add(parent.id)
                parent = parent.parent
        accounts = [v for v in vendors if v.float_account]
        if accounts:
            # The float is the party's balance on the account: two vendors
            # sharing both would read each other's money.
            others = cls.search(
                [
                    ('id', 'not in', [v.id for v in accounts]),
                    [
                        'OR',
                        *(
                            [
                                ('party', '=', v.party.id),
                                ('float_account', '=', v.float_account.id),
                            ]
                            for v in accounts
                        ),
                    ],
                ],
                limit=1,
            )
            keys = [(v.party.id, v.float_account.id) for v in accounts]
            clash = others or [
                v for i, v in enumerate(accounts) if keys.index(keys[i]) != i
            ]
            if clash:
                raise ValidationError(
                    gettext(
                        'prepaid_vendor_portal.msg_vendor_float_shared',
                        vendor=clash[0].rec_name,
                    )
                )

    def get_rec_name(self, name):
        return f'[{self.code}] {self.name}'

    def node_code(self) -> str:
        return self.code

    @classmethod
    def create(cls, vlist):
        vendors = super().create(vlist)
        Pool().get('prepaid.vendor.float').open(vendors)
        return vendors

    @classmethod
    def write(cls, *args):
        Position = Pool().get('prepaid.vendor.float')
        actions = iter(args)
        changes = []
        for vendors, values in zip(actions, actions):
            if 'credit_line' in values:
                new = values['credit_line'] or Decimal(0)
                changes += [(v.id, new - v.credit_line) for v in vendors]
        super().write(*args)
        # The line moves the floor, in the same transaction as the change.
        for vendor_id, delta in changes:
            if delta:
                Position.fund(vendor_id, delta)

    @classmethod
    def get_float(cls, vendors, names):
        Position = Pool().get('prepaid.vendor.float')
        balances = Position.ledger_balances(vendors)
        positions = Position.positions(vendors)
        result = {'float_balance': {}, 'float_available': {}}
        for vendor in vendors:
            result['float_balance'][vendor.id] = balances.get(vendor.id)
            position = positions.get(vendor.id)
            result['float_available'][vendor.id] = (
                position.available if position else None
            )
        return {n: result[n] for n in names}

    @classmethod
    @ModelView.button_action('prepaid_vendor_portal.wizard_top_up')
    def top_up_wizard(cls, vendors):
        pass

    # ------------------------------------------------------------- decision
    def timezone(self) -> ZoneInfo:
        "The utility's time zone: hours and business days are its"
        return ZoneInfo(self.company.timezone or 'UTC')

    def owner_node(self) -> core.Node | None:
        """The agent network above a sub-agent, as the chain's top level:
        not active (or past a cut-off) anywhere above, no sale below."""
        if not self.parent:
            return None
        state = core.Lifecycle.ACTIVE
        cut_offs = []
        parent = self.parent
        while parent:
            if state == core.Lifecycle.ACTIVE and parent.state != 'active':
                state = parent.node_state()
            if parent.cut_off:
                cut_offs.append(parent.node_cut_off())
            parent = parent.parent
        return core.Node(
            core.Level.OWNER,
            self.parent.code,
            state=state,
            cut_off=min(cut_offs) if cut_offs else None,
        )

    def node(self, level: core.Level, record, revoked: bool = False) -> core.Node:
        """record (this vendor, or one of its outlets, terminals, operators)
        as a level of the chain.  Today's figures come with the sales (a
        later part of issue 13): zero until then."""
        return core.Node(
            level,
            record.node_code(),
            state=record.node_state(),
            limits=record.node_limits(),
            cut_off=record.node_cut_off(),
            revoked=revoked,
        )

    def float_state(self) -> core.Float:
        "The float as limits.check reads it (the position's committed view)"
        Position = Pool().get('prepaid.vendor.float')
        position = Position.positions([self])[self.id]
        return position.as_float()
