"""What every level of the vendor hierarchy (vendor, outlet, terminal,
operator) has: a lifecycle with a liability cut-off, and its limits, read
into the pure :mod:`.limits` values that ``limits.check`` decides on.

The lifecycle: draft > active > suspended > terminated (docs/vendors.md
section 1).  A suspended level may be reactivated; a terminated one is
terminated for good, and terminating sets its liability cut-off to now
unless an earlier one was agreed.
"""

from __future__ import annotations

import datetime as dt

from trytond.i18n import gettext
from trytond.model import ModelView, Workflow, fields
from trytond.model.exceptions import AccessError, ValidationError
from trytond.pyson import Eval
from trytond.transaction import Transaction

from . import limits as core
from .limits_text import parse_hours, parse_networks

STATES = [
    ('draft', "Draft"),
    ('active', "Active"),
    ('suspended', "Suspended"),
    ('terminated', "Terminated"),
]
_DONE = Eval('state') == 'terminated'


class LifecycleMixin(Workflow):
    """The lifecycle, moved by its buttons only: a client's write (or create)
    of the state, or of another field in ``_server_fields``, is refused, or a
    raw RPC write could reactivate a terminated vendor.  Buttons run with
    access checks off, so they and the server's code still write them."""

    __slots__ = ()
    _server_fields: frozenset[str] = frozenset({'state'})

    state = fields.Selection(STATES, "State", readonly=True, required=True)
    cut_off = fields.DateTime(
        "Liability Cut-off",
        states={'readonly': _DONE},
        help="No sale at or after this time is accepted, whatever the state "
        "(a termination agreed for midnight takes effect at midnight).",
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._transitions |= {
            ('draft', 'active'),
            ('active', 'suspended'),
            ('suspended', 'active'),
            ('draft', 'terminated'),
            ('active', 'terminated'),
            ('suspended', 'terminated'),
        }
        cls._buttons.update(
            {
                'activate': {
                    'invisible': ~Eval('state').in_(['draft', 'suspended']),
                    'depends': ['state'],
                },
                'suspend': {
                    'invisible': Eval('state') != 'active',
                    'depends': ['state'],
                },
                'terminate': {
                    'invisible': _DONE,
                    'depends': ['state'],
                },
            }
        )

    @staticmethod
    def default_state():
        return 'draft'

    @classmethod
    def create(cls, vlist):
        transaction = Transaction()
        if transaction.user and transaction.check_access:
            for values in vlist:
                cls._refuse_server_fields(values)
        return super().create(vlist)

    @classmethod
    def check_modification(cls, mode, records, values=None, external=False):
        super().check_modification(mode, records, values=values, external=external)
        if external and mode == 'write' and values:
            cls._refuse_server_fields(values)

    @classmethod
    def _refuse_server_fields(cls, values) -> None:
        refused = cls._server_fields & set(values)
        if refused:
            raise AccessError(
                gettext(
                    'prepaid_vendor_portal.msg_server_fields',
                    model=cls.__names__()['model'],
                    fields=', '.join(sorted(refused)),
                )
            )

    @classmethod
    @ModelView.button
    @Workflow.transition('active')
    def activate(cls, records):
        pass

    @classmethod
    @ModelView.button
    @Workflow.transition('suspended')
    def suspend(cls, records):
        pass

    @classmethod
    @ModelView.button
    @Workflow.transition('terminated')
    def terminate(cls, records):
        now = dt.datetime.now()  # trytond stores naive UTC
        for record in records:
            if record.cut_off is None or record.cut_off > now:
                record.cut_off = now
        cls.save(records)

    def node_state(self) -> core.Lifecycle:
        return core.Lifecycle(self.state)

    def node_cut_off(self) -> dt.datetime | None:
        if self.cut_off is None:
            return None
        return self.cut_off.replace(tzinfo=dt.UTC)


class LimitsMixin:
    """The limits of a level; empty means no limit at this level (the levels
    above and below still apply)."""

    __slots__ = ()

    min_amount = fields.Numeric(
        "Minimum Vend", digits=(16, 2), help="Smallest amount of one sale."
    )
    max_amount = fields.Numeric(
        "Maximum Vend", digits=(16, 2), help="Largest amount of one sale."
    )
    daily_amount = fields.Numeric(
        "Daily Amount",
        digits=(16, 2),
        help="Most money sold in one business day (the utility's day).",
    )
    daily_count = fields.Integer("Daily Sales", help="Most sales in one business day.")
    credit_limit = fields.Numeric(
        "Credit Limit",
        digits=(16, 2),
        help="Most money sold and not yet banked or settled at this level.",
    )
    allowed_networks = fields.Text(
        "Allowed Networks",
        help="One address or network a line (10.0.0.0/8); empty: any address.",
    )
    selling_hours = fields.Text(
        "Selling Hours",
        help="One window a line in the utility's time: 'Mon-Fri 08:00-17:00', "
        "'Sat 08:00-13:00', '22:00-02:00' crosses midnight; empty: any time.",
    )

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        for record in records:
            record.node_limits()  # refuses what the decision could not read

    def node_limits(self) -> core.Limits:
        "This level's limits as limits.check reads them (ValidationError if bad)"
        label = f'{self.__names__()["model"]} "{self.rec_name}"'
        try:
            values = core.Limits(
                min_amount=self.min_amount,
                max_amount=self.max_amount,
                daily_amount=self.daily_amount,
                daily_count=self.daily_count,
                credit_limit=self.credit_limit,
                networks=parse_networks(self.allowed_networks),
                hours=parse_hours(self.selling_hours),
            )
            values.validate(label)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                gettext(
                    'prepaid_vendor_portal.msg_limits_invalid',
                    record=label,
                    error=str(exc),
                )
            ) from exc
        return values
