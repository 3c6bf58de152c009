"""Operators: a person or a service login of a vendor, with a password
(hashed as trytond hashes its users' passwords) and a lock-out after too
many failed attempts."""

from __future__ import annotations

from trytond import config
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import without_check_access

from .levels import LifecycleMixin, LimitsMixin


def max_attempts() -> int:
    "Failed logins before an operator is locked: [prepaid] vendor_max_attempts"
    return config.getint('prepaid', 'vendor_max_attempts', default=5)


class Operator(CompanyMixin, LifecycleMixin, LimitsMixin, ModelSQL, ModelView):
    __name__ = 'prepaid.vendor.operator'
    _company_links = ('vendor',)
    _server_fields = frozenset({'state', 'failed_attempts', 'locked', 'password_hash'})

    vendor = fields.Many2One(
        'prepaid.vendor',
        "Vendor",
        required=True,
        ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states={'readonly': Eval('id', -1) >= 0},
    )
    login = fields.Char("Login", size=64, required=True, strip=True)
    name = fields.Char("Name", size=128)
    password_hash = fields.Char("Password Hash", size=255, readonly=True)
    password = fields.Function(
        fields.Char("Password", strip=False),
        'get_password',
        setter='set_password',
    )
    failed_attempts = fields.Integer("Failed Attempts", readonly=True)
    locked = fields.Boolean(
        "Locked", readonly=True, help="Too many failed attempts: unlock to retry."
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'vendor_login_unique',
                Unique(t, t.vendor, t.login),
                'prepaid_vendor_portal.msg_operator_login_unique',
            ),
        ]
        cls._order.insert(0, ('login', 'ASC'))
        cls._buttons.update(
            {
                'unlock': {
                    'invisible': ~Eval('locked', False),
                    'depends': ['locked'],
                },
            }
        )

    @staticmethod
    def default_failed_attempts():
        return 0

    @staticmethod
    def default_locked():
        return False

    def get_rec_name(self, name):
        return self.login

    def get_password(self, name):
        return 'x' * 10 if self.password_hash else None

    @classmethod
    def set_password(cls, operators, name, value):
        if not value:
            return
        User = Pool().get('res.user')
        # Written by the server: no client writes the hash (field access).
        with without_check_access():
            cls.write(operators, {'password_hash': User.hash_password(value)})

    @classmethod
    @ModelView.button
    def unlock(cls, operators):
        cls.write(operators, {'failed_attempts': 0, 'locked': False})

    def check_password(self, password: str | None) -> bool:
        """Whether password is this operator's; a failure counts towards the
        lock-out, a success resets the count.  A locked operator is refused
        whatever the password.  The caller commits the count even when it
        answers with a fault (else a client could guess for ever)."""
        User = Pool().get('res.user')
        with without_check_access():
            operator = self.__class__(self.id)
            if operator.locked:
                return False
            valid = bool(
                password
                and operator.password_hash
                and User.check_password(password, operator.password_hash)[0]
            )
            if valid:
                if operator.failed_attempts:
                    self.__class__.write([operator], {'failed_attempts': 0})
                return True
            attempts = (operator.failed_attempts or 0) + 1
            self.__class__.write(
                [operator],
                {'failed_attempts': attempts, 'locked': attempts >= max_attempts()},
            )
            return False

    def node_code(self) -> str:
        return self.login
