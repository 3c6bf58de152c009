"""Vendor portal users: a Tryton web user (``web_user``) linked to one
vendor with a role.  The portal's pages (portal.py) serve only that
vendor's records; the web user has no back-office login at all.

Roles: a Vendor Administrator sees the vendor's pages and adds operators
(within the limits the utility set for the vendor); a Vendor Operator only
sees the pages.
"""

from __future__ import annotations

from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.pool import Pool
from trytond.pyson import Eval

from . import portal  # noqa: F401  (registers the portal's routes)

ADMINISTRATOR = 'administrator'
OPERATOR = 'operator'
ROLES = [
    (ADMINISTRATOR, "Vendor Administrator"),
    (OPERATOR, "Vendor Operator"),
]


class PortalUser(CompanyMixin, ModelSQL, ModelView):
    "Vendor Portal User"

    __name__ = 'prepaid.vendor.web_user'
    _company_links = ('vendor',)

    web_user = fields.Many2One(
        'web.user',
        "Web User",
        required=True,
        ondelete='CASCADE',
        help="The portal login (its e-mail and password).",
    )
    vendor = fields.Many2One(
        'prepaid.vendor',
        "Vendor",
        required=True,
        ondelete='CASCADE',
        domain=[('company', '=', Eval('company', -1))],
    )
    role = fields.Selection(ROLES, "Role", required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        # One vendor per login: a page never has to choose whose data to show.
        cls._sql_constraints += [
            (
                'web_user_unique',
                Unique(t, t.web_user),
                'prepaid_vendor_portal.msg_portal_user_unique',
            ),
        ]

    @staticmethod
    def default_role():
        return OPERATOR

    def get_rec_name(self, name):
        return f'{self.web_user.rec_name} @ {self.vendor.code}'

    @property
    def is_administrator(self) -> bool:
        return self.role == ADMINISTRATOR

    @classmethod
    def of_web_user(cls, web_user) -> PortalUser | None:
        "The portal link of a logged-in web user (None: no portal access)"
        links = cls.search([('web_user', '=', web_user.id)], limit=1)
        return links[0] if links else None

    @classmethod
    def of_session(cls, key: str | None) -> PortalUser | None:
        """The portal link of a web user session key, when the session is
        valid and the vendor may still use the portal"""
        if not key:
            return None
        web_user = Pool().get('web.user').get_user(key)
        if web_user is None or not web_user.active:
            return None
        link = cls.of_web_user(web_user)
        if link is None or link.vendor.state == 'terminated':
            return None
        return link
