"""Staff users for the tests of every module of the project.

A test creates the users it needs with their groups (:func:`create_user`) and
calls as one of them with the checks a client's request has
(:func:`acting_as`: the user set, ``_check_access`` on).  :func:`as_new_user`
does both for a test that only needs "someone in these groups".

A group is given as a ``res.group`` record or id, as ``'module.xml_id'``, or
as a prepaid_vending group: ``'group_cashier'`` or just ``'cashier'``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from trytond.pool import Pool
from trytond.transaction import Transaction

_LOGINS = itertools.count(1)

#: The project's staff groups, as create_user() takes them.
STAFF_ROLES = (
    'operator',
    'cashier',
    'engineer',
    'key_custodian',
    'manager',
    'accountant',
    'admin',
)


def group_id(group: Any) -> int:
    "The id of a group given as a record, an id or an xml id (see above)"
    if isinstance(group, int):
        return group
    if not isinstance(group, str):
        return group.id
    module, _, xml_id = group.rpartition('.')
    if not module and not xml_id.startswith('group_'):
        xml_id = f'group_{xml_id}'
    return Pool().get('ir.model.data').get_id(module or 'prepaid_vending', xml_id)


def create_user(login: str, *groups: Any, company: Any = None):
    """A new user in the groups, working for company (by default the
    context's): the record rules show a user only their companies' records"""
    pool = Pool()
    User = pool.get('res.user')
    if company is None and Transaction().context.get('company'):
        company = pool.get('company.company')(Transaction().context['company'])
    values: dict[str, Any] = {
        'login': login,
        'name': login,
        'groups': [('add', [group_id(g) for g in groups])],
    }
    if company is not None:
        values['companies'] = [('add', [company.id])]
        values['company'] = company.id
    (user,) = User.create([values])
    return user


@contextmanager
def acting_as(user: Any, **context: Any) -> Iterator[None]:
    "Call as user (a record or an id) would through RPC: access checked"
    user_id = user if isinstance(user, int) else user.id
    transaction = Transaction()
    with (
        transaction.set_user(user_id),
        transaction.set_context(_check_access=True, **context),
    ):
        yield


@contextmanager
def as_new_user(*groups: Any, login: str | None = None) -> Iterator[Any]:
    "Act as a new user of the groups (numbered: a test may ask twice)"
    names = '_'.join(str(g) for g in groups) or 'nobody'
    user = create_user(login or f'as_{names}_{next(_LOGINS)}', *groups)
    with acting_as(user):
        yield user
