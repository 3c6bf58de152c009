"""Work committed in transactions of its own, inside a request or cron run.

Used where one failure must not undo the rest (each account of a billing run,
each meter's outcome of a head-end batch) and where a lock must not be held
across slow work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from trytond import backend
from trytond.transaction import Transaction, TransactionError


def autonomous_for(model: str, ids) -> bool:
    """Whether work on these records may run in transactions of its own.

    Not on SQLite (a second connection cannot write while the caller holds the
    database lock) nor for records the caller created (uncommitted: invisible
    to another transaction)."""
    if backend.name == 'sqlite':
        return False
    created = set(Transaction().create_records.get(model, ()))
    return not created.intersection(ids)


def run_committed(fn: Callable[..., Any], *args: Any, autonomous: bool) -> Any:
    """Run ``fn(*args)`` in a transaction committed before returning.

    Record locks asked for inside (``Model.lock``) restart this transaction
    only, with the locks taken at its start, as trytond does for a request.
    ``fn`` must return plain data, not records of the closed transaction.
    Without ``autonomous`` it simply runs in the caller's transaction."""
    if not autonomous:
        return fn(*args)
    extras: dict[str, Any] = {}
    attempts = 5
    for attempt in range(attempts):
        try:
            with Transaction().new_transaction(**extras) as transaction:
                try:
                    result = fn(*args)
                except TransactionError as exc:
                    transaction.rollback()
                    exc.fix(extras)
                    continue
                transaction.commit()
                return result
        except backend.DatabaseOperationalError:
            # e.g. a counter vend updated the meter row meanwhile (REPEATABLE
            # READ): start again on a fresh snapshot, as trytond does.
            if attempt + 1 == attempts:
                raise
            time.sleep(0.02 * (attempt + 1))
    raise RuntimeError(f"no commit after {attempts} attempts (record locks)")


def run_transaction(
    database: str,
    user: int,
    fn: Callable[[], Any],
    context: dict | None = None,
    attempts: int = 5,
) -> Any:
    """Run ``fn()`` in a new transaction on ``database`` as ``user``,
    committed before returning, for commands and processes outside a
    request (trytond's dispatcher does this for a request): a table or
    record lock asked for inside (a new singleton, a strict sequence)
    starts the transaction again holding it."""
    extras: dict[str, Any] = {}
    for attempt in range(attempts):
        with Transaction().start(
            database, user, context=context or {}, **extras
        ) as transaction:
            try:
                result = fn()
            except TransactionError as exc:
                transaction.rollback()
                if attempt + 1 == attempts:
                    raise
                exc.fix(extras)
                continue
            transaction.commit()
            return result
    raise RuntimeError(f"no commit after {attempts} attempts (locks)")
