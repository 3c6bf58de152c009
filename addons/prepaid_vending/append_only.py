"""Append-only records: logs and audit trails nobody edits from a client.

A token log, a key-use audit, a vend or a print log is evidence: once written
it is never changed or deleted through the client, whatever the user's groups
(administrator included); a correction is a new record.  The model's own code
still writes what it must (a vend's cancellation, a command's delivery state)
with access checks off (``without_check_access``): Tryton then calls
``check_modification`` with ``external`` false.

Tryton's ``ir.model.access`` alone cannot say this: a model that takes its
access from another one (``__access__``) gets the *most* permissive of both,
so a log "inherits" write access from its meter.  The refusal here does not
depend on the access records.  A log with records of its own has them
read-only (per model XML); a child log (vend lines and tokens, history lines)
has none and takes its parent's, which may include write: this refusal holds.
"""

from trytond.i18n import gettext
from trytond.model.exceptions import AccessError
from trytond.transaction import Transaction


class AppendOnlyMixin:
    """Refuse write and delete from a client (access checks on), and create
    too unless ``_client_create`` is set.

    ``_client_create``: True for trails a user adds to by hand (a manual state
    change), False for logs only the model's code writes (token log)."""

    __slots__ = ()
    _client_create = False

    @classmethod
    def create(cls, vlist):
        # Refused before the insert (check_modification comes after it), so
        # that a refused create leaves nothing, even in the caller's
        # transaction.
        transaction = Transaction()
        if transaction.user and transaction.check_access and not cls._client_create:
            cls._refuse('create')
        return super().create(vlist)

    @classmethod
    def check_modification(cls, mode, records, values=None, external=False):
        super().check_modification(mode, records, values=values, external=external)
        if not external:
            return
        if mode == 'create' and cls._client_create:
            return
        cls._refuse(mode)

    @classmethod
    def _refuse(cls, mode: str):
        raise AccessError(
            gettext(
                f'prepaid_vending.msg_append_only_{mode}',
                model=cls.__names__()['model'],
            )
        )
