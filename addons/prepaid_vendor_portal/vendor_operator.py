"""Operators: a person or a service login of a vendor, with a password
(hashed as trytond hashes its users' passwords) and a lock-out after too
many failed attempts."""

from __future__ import annotations

from sql.conditionals import Coalesce
from trytond import config
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

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

    def verify_password(self, password: str | None) -> bool:
        """Whether password is this operator's and the operator is not
        locked; writes nothing (the XMLVend server counts a failure in the
        transaction that outlives its fault: ``count_failure``)"""
        User = Pool().get('res.user')
        with without_check_access():
            operator = self.__class__(self.id)
            if operator.locked:
                return False
            return bool(
                password
                and operator.password_hash
                and User.check_password(password, operator.password_hash)[0]
            )

    @classmethod
    def count_failure(cls, ids) -> None:
        """One more failed attempt for each operator, locked at
        ``max_attempts``: an increment in SQL, so that two wrong guesses
        racing on two connections both count."""
        if not ids:
            return
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        attempts = Coalesce(table.failed_attempts, 0) + 1
        cursor.execute(
            *table.update(
                [table.failed_attempts, table.locked],
                [attempts, attempts >= max_attempts()],
                where=table.id.in_(list(ids)),
            )
        )
        cls._cache_invalidate(ids)

    @classmethod
    def _cache_invalidate(cls, ids) -> None:
        # Written behind the ORM's back: drop what this transaction cached.
        Transaction().counter += 1
        for cache in Transaction().cache.values():
            if cls.__name__ in cache:
                for id_ in ids:
                    cache[cls.__name__].pop(id_, None)

    def reset_failures(self) -> None:
        with without_check_access():
            if self.__class__(self.id).failed_attempts:
                self.__class__.write([self], {'failed_attempts': 0})

    def check_password(self, password: str | None) -> bool:
        """Whether password is this operator's; a failure counts towards the
        lock-out, a success resets the count.  A locked operator is refused
        whatever the password."""
        if self.verify_password(password):
            self.reset_failures()
            return True
        self.count_failure([self.id])
        return False

    def node_code(self) -> str:
        return self.login
