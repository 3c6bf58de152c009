"""Tryton defaults this installation changes (issue 11 §1 and §2).

1. A wizard's group check trusts the ``action_id`` of the context: Tryton
   looks for the groups of that action of the wizard and, when the id names
   none of the wizard's actions, finds no groups and lets anyone run it.
   Here an ``action_id`` that is not one of the wizard's own actions is
   refused, for every wizard of the installation (``ir.action.wizard``);
   reports, which take the ``action_id`` of their data, likewise
   (``ir.action.report``).  ``require_wizard_groups`` lets a sensitive
   wizard check its groups again in its transitions, whatever the context.

2. Tryton hides ``res.user.password_hash`` by blanking it in ``read`` and
   shows ``password_reset`` (a valid temporary password) to any user, while
   both stay searchable and sortable: a binary search with ``>=`` recovers a
   hash.  Here they have no read access for anyone (``HIDDEN_FIELDS``), so
   Tryton's own field access check refuses them in search domains and
   orders (dotted paths included), like every field whose
   ``ir.model.field.access`` denies reading (key and password ciphers); a
   read gives None, so that clients reading every field keep working.
   Tryton 8 has no ``read_group``.

3. Tryton checks the field access of a search domain before converting it,
   but misses the sub-domains of ``where`` (``('create_uid', 'where',
   [('password_hash', '>=', ...)])``), which it then converts without
   checking access.  ``SearchGuard`` refuses, in the searches nested in a
   domain, the fields the user cannot read; every model with such fields
   takes it (a test checks that none is missed).
"""

from trytond.i18n import gettext
from trytond.model.exceptions import AccessError
from trytond.model.modelstorage import is_leaf
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access

#: Fields Tryton hides in code rather than with field access: nobody reads,
#: searches or orders by them through RPC.
HIDDEN_FIELDS: dict[str, frozenset[str]] = {
    'res.user': frozenset({'password_hash', 'password_reset'}),
}

#: Wizards that read ``action_id`` as data, not as one of their actions:
#: Tryton's move line toolbar passes a move template id there.  They keep
#: the groups of all their actions when the id names none of them.
ACTION_ID_AS_DATA = frozenset({'account.move.template.create'})

_NO_READ = {'read': 0}


class OwnActionMixin:
    "Groups of a wizard or report asked with an action_id of its own only"

    __slots__ = ()

    @classmethod
    def get_groups(cls, name, action_id=None):
        return super().get_groups(name, cls._own_action_id(name, action_id))

    @classmethod
    def _own_action_id(cls, name: str, action_id):
        "The action_id if it is one of the actions of name; refuse it if not"
        if not action_id or cls._is_action_of(name, action_id):
            return action_id
        if name in ACTION_ID_AS_DATA:
            return None
        raise AccessError(gettext('prepaid_vending.msg_foreign_action', name=name))

    @classmethod
    def _is_action_of(cls, name: str, action_id) -> bool:
        if not isinstance(action_id, int) or isinstance(action_id, bool):
            return False
        # As get_groups does: the user may not be allowed to list actions.
        with without_check_access():
            actions = cls.search(
                [(cls._action_name, '=', name), ('id', '=', action_id)], limit=1
            )
        return bool(actions)


class ActionWizard(OwnActionMixin, metaclass=PoolMeta):
    __name__ = 'ir.action.wizard'

    @classmethod
    def get_models(cls, name, action_id=None):
        return super().get_models(name, cls._own_action_id(name, action_id))


class ActionReport(OwnActionMixin, metaclass=PoolMeta):
    "Reports trust the action_id of their data the same way"

    __name__ = 'ir.action.report'


def require_wizard_groups(wizard_name: str) -> None:
    """Refuse a user outside the groups of all the wizard's actions.

    The second line of sensitive wizards: called from their transitions, it
    ignores the context (no action_id), so a forged context cannot widen it.
    """
    pool = Pool()
    ActionWizard = pool.get('ir.action.wizard')
    User = pool.get('res.user')
    if Transaction().user == 0:
        return
    groups = ActionWizard.get_groups(wizard_name)
    if groups and not groups & set(User.get_groups()):
        raise AccessError(
            gettext('prepaid_vending.msg_wizard_groups', wizard=wizard_name)
        )


def unreadable_fields(model_name: str) -> set[str]:
    "The fields of the model the user's groups may not read"
    FieldAccess = Pool().get('ir.model.field.access')
    accesses = FieldAccess.get_access([model_name])[model_name]
    return {name for name, access in accesses.items() if not access['read']}


def _leaf_fields(domain) -> set[str]:
    "The local field names a domain uses (dotted paths: their first part)"
    if is_leaf(domain):
        return {domain[0].split('.', 1)[0]}
    names = set()
    for clause in domain:
        if isinstance(clause, (list, tuple)):
            names |= _leaf_fields(clause)
    return names


class SearchGuard:
    """Refuse unreadable fields in a search nested in a domain.

    Tryton converts a domain without checking access, so a ``where`` or
    dotted clause reaches the target's search with ``query=True`` and no
    check: here it is checked for any user but root.
    """

    __slots__ = ()

    @classmethod
    def search(cls, domain, offset=0, limit=None, order=None, count=False, query=False):
        if query and Transaction().user:
            refused = _leaf_fields(domain) & unreadable_fields(cls.__name__)
            if refused:
                raise AccessError(
                    gettext(
                        'prepaid_vending.msg_search_hidden_field',
                        field=sorted(refused)[0],
                        model=cls.__name__,
                    )
                )
        # ModelSingleton.search takes no query argument.
        extra = {'query': query} if query else {}
        return super().search(
            domain, offset=offset, limit=limit, order=order, count=count, **extra
        )


class User(SearchGuard, metaclass=PoolMeta):
    __name__ = 'res.user'

    @classmethod
    def read(cls, ids, fields_names):
        # Clients such as proteus read every field of a user: the hidden ones
        # read as None (as Tryton did for password_hash) instead of failing.
        hidden = HIDDEN_FIELDS[cls.__name__] & set(fields_names)
        if not hidden or not Transaction().check_access:
            return super().read(ids, fields_names)
        shown = [name for name in fields_names if name not in hidden]
        result = super().read(ids, shown)
        for values in result:
            values.update(dict.fromkeys(hidden))
        return result


class Meter(SearchGuard, metaclass=PoolMeta):
    __name__ = 'prepaid.meter'


class VendToken(SearchGuard, metaclass=PoolMeta):
    __name__ = 'prepaid.vend.token'


class MeterCommand(SearchGuard, metaclass=PoolMeta):
    __name__ = 'prepaid.meter.command'


# Tryton's account module hides amounts from users outside accounting.
class Account(SearchGuard, metaclass=PoolMeta):
    __name__ = 'account.account'


class AccountType(SearchGuard, metaclass=PoolMeta):
    __name__ = 'account.account.type'


class Company(SearchGuard, metaclass=PoolMeta):
    __name__ = 'company.company'


class Party(SearchGuard, metaclass=PoolMeta):
    __name__ = 'party.party'


class ModelFieldAccess(metaclass=PoolMeta):
    __name__ = 'ir.model.field.access'

    @classmethod
    def get_access(cls, models):
        accesses = super().get_access(models)
        for model in models:
            hidden = HIDDEN_FIELDS.get(model)
            if hidden:
                # Copies: Tryton caches (and shares) the dictionaries.
                model_access = dict(accesses[model])
                for name in hidden:
                    model_access[name] = {
                        **model_access.get(
                            name,
                            {'read': 1, 'write': 1, 'create': 1, 'delete': 1},
                        ),
                        **_NO_READ,
                    }
                accesses[model] = model_access
        return accesses
