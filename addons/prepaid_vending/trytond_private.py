"""The private trytond names this installation relies on, in one place.

Trytond has no public API for a few things the set-based write path
(:mod:`fastpath`) and the vend's row locks need.  Each is wrapped here, and
``tests/test_trytond_private.py`` checks against the installed trytond that
every name still exists and behaves as these wrappers expect: after an
upgrade of trytond, that test fails here, not a vend somewhere else.

Checked against trytond 8.0 (``TRYTOND_SERIES``).
"""

from __future__ import annotations

from typing import Any

from trytond.transaction import Transaction

#: The trytond series these wrappers were written and tested for.
TRYTOND_SERIES = '8.0'


def raise_integrity_error(Model: Any, exception: Exception, values: dict) -> None:
    """Raise the user-facing error that ``ModelSQL.create`` raises for a
    database integrity error on a row of values (a required field missing, a
    named SQL constraint), chained to exception; return when it names none.

    Must run in a new transaction (the failed one cannot query), as
    ``ModelSQL.create`` does; pass the failed one as ``transaction``."""
    Model._ModelSQL__raise_integrity_error(exception, values, transaction=Transaction())


def raise_data_error(Model: Any, exception: Exception, values: dict) -> None:
    "As :func:`raise_integrity_error`, for a database data error (too long...)"
    Model._ModelSQL__raise_data_error(exception, values, transaction=Transaction())


def check_domain_rule(Model: Any, ids: list[int], mode: str) -> None:
    """Refuse (AccessError) ids that the record rules of mode
    (``create``/``write``) do not let the transaction's user have, as
    ``ModelSQL.create`` and ``write`` do after writing."""
    Model._ModelSQL__check_domain_rule(ids, mode)


def mark_locked(table: str, ids) -> None:
    """Tell the transaction that rows ids of table are locked (the caller
    locked them with its own statement), so that ``Model.lock`` of them in
    the same transaction does not restart it to lock them again."""
    Transaction()._locked_records[table].update(ids)


def record_values(record) -> dict:
    """The values an unsaved (or in-memory) record holds, by field name: what
    ``save`` would write.  A copy; empty for a record holding none."""
    values = record._values
    return dict(values._items()) if values is not None else {}


def set_record_values(record, values: dict) -> None:
    """Put values into the in-memory values of record (field name -> value
    already as the record holds it), as the ORM leaves a record after
    writing them."""
    if record._values is None:
        record._values = record._record()
    for name, value in values.items():
        record._values[name] = value


def adopt_id(record, id_: int) -> None:
    """Give an unsaved record the id it was inserted with, keeping its values
    in memory, as ``ModelStorage.save`` does after ``create``."""
    record._ids.remove(record.id)
    record._id = id_
    record._ids = [id_]


def forget_local(record) -> None:
    "Drop the record's own read cache (``ModelStorage.write`` does)"
    record._local_cache.pop(record.id, None)


def drop_count(Model: Any) -> None:
    """Forget the cached record count of Model (``search_count`` without a
    domain), which ``create`` updates; a dropped count is read again."""
    Model._count_cache.set(Model.__name__, None)
