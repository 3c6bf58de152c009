"""Workflow records: their state moves through buttons and code, not writes.

A key change, a head-end job or an import job is not a pure log (it moves
from state to state), but nobody may rewrite it from a client either: a raw
JSON-RPC ``write`` of a pending key change's new KRN, then Confirm, would
apply forged values.  So, with access checks on (a client request), a write
may change only the fields the model lists as editable in the record's
current state (usually none), a delete is refused outside the states the
model lists (usually all), and a create is refused unless the model lists the
fields a client may give.

Buttons still work: ``ModelView.button`` checks the user's groups, then runs
the method with access checks off, and the model's code writes with
``without_check_access`` (Tryton then calls ``check_modification`` with
``external`` false).  As with :mod:`append_only`, the refusal does not depend
on the ``ir.model.access`` records.
"""

from __future__ import annotations

from trytond.i18n import gettext
from trytond.model.exceptions import AccessError
from trytond.transaction import Transaction


class WorkflowOnlyMixin:
    """Refuse client writes, deletes and creates the model does not allow.

    ``_client_fields``: state -> the fields a client may write in that state
    (key ``None`` for a model without a state field); missing: none.
    ``_client_delete_states``: the states in which a client may delete.
    ``_client_create``: the fields a client may give to create a record;
    empty: only the model's code creates them.
    ``_workflow_state``: the state field, or None for a model without one."""

    __slots__ = ()
    _client_fields: dict[str | None, frozenset[str]] = {}
    _client_delete_states: frozenset[str] = frozenset()
    _client_create: frozenset[str] = frozenset()
    _workflow_state: str | None = 'state'

    @classmethod
    def create(cls, vlist):
        # Refused before the insert, so that nothing is left even in the
        # caller's transaction (as AppendOnlyMixin).
        transaction = Transaction()
        if transaction.user and transaction.check_access:
            given = set().union(*(v.keys() for v in vlist)) if vlist else set()
            if not cls._client_create or given - cls._client_create:
                raise AccessError(
                    gettext(
                        'prepaid_vending.msg_workflow_create',
                        model=cls.__names__()['model'],
                        fields=', '.join(sorted(given - cls._client_create)),
                    )
                )
        return super().create(vlist)

    @classmethod
    def check_modification(cls, mode, records, values=None, external=False):
        super().check_modification(mode, records, values=values, external=external)
        if not external:
            return
        if mode == 'write':
            for record in records:
                state = record._workflow_state_value()
                refused = set(values) - cls._client_fields.get(state, frozenset())
                if refused:
                    cls._refuse('write', record, state, refused)
        elif mode == 'delete':
            for record in records:
                state = record._workflow_state_value()
                if state not in cls._client_delete_states:
                    cls._refuse('delete', record, state)

    def _workflow_state_value(self) -> str | None:
        if self._workflow_state is None:
            return None
        return getattr(self, self._workflow_state)

    @classmethod
    def _refuse(cls, mode: str, record, state: str | None, names=()):
        raise AccessError(
            gettext(
                f'prepaid_vending.msg_workflow_{mode}',
                model=cls.__names__()['model'],
                record=record.rec_name,
                state=state or '-',
                fields=', '.join(sorted(names)),
            )
        )
