"""Terminals: a till or an API client of a vendor's outlet, known by its
XMLVend client ID and terminal ID (unique per utility), authenticated by an
API token and optionally by its TLS client certificate's fingerprint; a
terminal with ``operator_required`` also needs an operator of its vendor
and the operator's password on every request (docs/xmlvend.md section 6.1).

The API token is stored as its SHA-256 digest, never as such: a token is
random and long (at least 32 characters), so a fast digest cannot be
reversed by guessing, and it is checked on every request, where a slow
password hash would cost each sale tens of milliseconds.  Nobody reads the
digest through the client (field access in terminal.xml).
"""

from __future__ import annotations

import hashlib
import hmac

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.modules.prepaid_vending.fingerprint import (
    FingerprintMixin,
    normalise_fingerprint,
)
from trytond.modules.prepaid_vending.network import CodeSearchMixin
from trytond.pyson import Eval
from trytond.transaction import without_check_access

from . import limits as core
from .levels import LifecycleMixin, LimitsMixin

#: Shortest API token accepted: a token is a random secret, not a password.
MIN_TOKEN = 32


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode('utf-8')).hexdigest()


class Terminal(
    CompanyMixin,
    CodeSearchMixin,
    FingerprintMixin,
    LifecycleMixin,
    LimitsMixin,
    ModelSQL,
    ModelView,
):
    __name__ = 'prepaid.vendor.terminal'
    _company_index = False
    _company_links = ('outlet',)
    _code_search_fields = ('terminal_id', 'client_id', 'name')
    _fingerprint_field = 'cert_fingerprint'
    _fingerprint_error = 'prepaid_vendor_portal.msg_terminal_fingerprint'
    _server_fields = frozenset({'state', 'revoked', 'token_hash'})

    outlet = fields.Many2One(
        'prepaid.vendor.outlet',
        "Outlet",
        required=True,
        ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states={'readonly': Eval('id', -1) >= 0},
    )
    vendor = fields.Function(
        fields.Many2One('prepaid.vendor', "Vendor"),
        'on_change_with_vendor',
        searcher='search_vendor',
    )
    name = fields.Char("Name", size=128)
    client_id = fields.Char(
        "Client ID", size=64, required=True, help="The XMLVend clientID (EANDeviceID)."
    )
    terminal_id = fields.Char(
        "Terminal ID", size=64, required=True, help="The XMLVend terminalID."
    )
    token_hash = fields.Char("API Token Digest", size=64, readonly=True)
    api_token = fields.Function(
        fields.Char(
            "API Token",
            help="Type a new token (at least 32 characters) to replace the "
            "current one; it is stored as its digest only.",
        ),
        'get_api_token',
        setter='set_api_token',
    )
    cert_fingerprint = fields.Char(
        "Client Certificate SHA-256",
        size=95,
        help="Fingerprint of the TLS client certificate the reverse proxy "
        "reports; empty: no certificate required.",
    )
    operator_required = fields.Boolean(
        "Operator Required",
        help="Every request names an operator of the vendor and carries its "
        "password (authCred); the API token then travels in the "
        "X-XMLVend-Token HTTP header.  Off: a service terminal, its API "
        "token in authCred and no operator.",
    )
    revoked = fields.Boolean(
        "Credentials Revoked",
        readonly=True,
        help="Token and certificate refused until new ones are set.",
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'company_client_terminal_unique',
                Unique(t, t.company, t.client_id, t.terminal_id),
                'prepaid_vendor_portal.msg_terminal_id_unique',
            ),
        ]
        cls._order.insert(0, ('terminal_id', 'ASC'))
        cls._buttons.update(
            {
                'revoke': {
                    'invisible': Eval('revoked', False),
                    'depends': ['revoked'],
                },
            }
        )

    @staticmethod
    def default_revoked():
        return False

    @staticmethod
    def default_operator_required():
        return False

    @fields.depends('outlet', '_parent_outlet.vendor')
    def on_change_with_vendor(self, name=None):
        return self.outlet.vendor if self.outlet else None

    @classmethod
    def search_vendor(cls, name, clause):
        return [('outlet.vendor' + clause[0][len(name) :], *clause[1:])]

    def get_rec_name(self, name):
        return f'{self.client_id}/{self.terminal_id}'

    def get_api_token(self, name):
        return 'x' * 10 if self.token_hash else None  # shows "set", never the token

    @classmethod
    def set_api_token(cls, terminals, name, value):
        if not value:
            return
        if len(value) < MIN_TOKEN:
            raise ValidationError(
                gettext(
                    'prepaid_vendor_portal.msg_terminal_token_short', size=MIN_TOKEN
                )
            )
        # A new token replaces a revoked one: the terminal may sell again.
        # Written by the server: no client writes the digest (field access).
        with without_check_access():
            cls.write(terminals, {'token_hash': token_digest(value), 'revoked': False})

    @classmethod
    @ModelView.button
    def revoke(cls, terminals):
        "Refuse the terminal's token and certificate (a stolen till)"
        cls.write(terminals, {'revoked': True})

    def check_token(self, token: str | None, fingerprint: str | None = None) -> bool:
        """Whether token (and, when the terminal has one registered, the
        client certificate's fingerprint) authenticate this terminal; a
        revoked terminal authenticates nothing.  Compared in constant time."""
        with without_check_access():
            stored = self.__class__(self.id)
            digest, revoked = stored.token_hash, stored.revoked
            expected_cert = stored.cert_fingerprint
        if revoked or not digest or not token:
            return False
        ok = hmac.compare_digest(digest, token_digest(token))
        if expected_cert:
            given = normalise_fingerprint(fingerprint) or ''
            ok = hmac.compare_digest(expected_cert, given) and ok
        return ok

    def node_code(self) -> str:
        return self.terminal_id

    def limits_chain(self, operator=None) -> tuple[core.Node, ...]:
        """The chain limits.check decides on for a sale at this terminal by
        operator (None for an API client without operators): owner (the
        agent network above a sub-agent), vendor, outlet, terminal, operator"""
        outlet = self.outlet
        vendor = outlet.vendor
        if operator is not None and operator.vendor != vendor:
            raise ValidationError(
                gettext(
                    'prepaid_vendor_portal.msg_operator_other_vendor',
                    operator=operator.rec_name,
                    terminal=self.rec_name,
                )
            )
        chain = [
            vendor.owner_node(),
            vendor.node(core.Level.VENDOR, vendor),
            vendor.node(core.Level.OUTLET, outlet),
            vendor.node(core.Level.TERMINAL, self, revoked=bool(self.revoked)),
        ]
        if operator is not None:
            chain.append(
                vendor.node(
                    core.Level.OPERATOR, operator, revoked=bool(operator.locked)
                )
            )
        return tuple(node for node in chain if node is not None)


# The XMLVend route registers with trytond's WSGI app when trytond loads
# these models: the package's __init__ imports no trytond, so that its pure
# cores (xmlvend/, limits.py ...) import alone.
from . import routes  # noqa: E402,F401
