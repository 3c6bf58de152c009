"""One guarded fast path for set-based writes: INSERT and UPDATE without the
ORM's per-record re-read, keeping what the ORM guarantees.

Why: ``ModelSQL.create`` re-reads every new record to validate it (the
domains of its relation fields above all) and ``write`` re-reads what it
wrote; on a vend that was about 70 % of the time (``bench/vend.py
--profile``), while every value the vend writes comes from records the
pipeline has just read and checked.  The Excel import has the same need for
100,000 rows.  Both write through this module.

What it keeps, as ``create`` / ``write`` do it:

- access, for every caller: the create (write) access of the user on the
  model and the write access of the fields given, whatever the context
  (``without_check_access`` does not turn it off), and the record rules of
  create (write).  A caller that writes as the system names it explicitly
  with a :class:`SystemWrite` (an append-only log nobody may create from a
  client, the vend): the check is then that the user belongs to one of the
  groups whose actions write such records, and the reason is written down;
- ``preprocess_values``, run as the ORM runs it (access checks off);
- defaults (``default_get``) of every stored field a row leaves out, per set
  of given fields as ``create`` computes them: a column given in only some
  rows gets its default in the others, not NULL;
- the required, size, digits, selection and forbidden-character checks of
  every field (those whose limits are fixed, not PYSON);
- ``validate``, ``validate_fields``, ``check_modification`` and
  ``on_modification`` of the model, run on the in-memory records (so they
  read what was written without re-reading it);
- ``create_uid`` / ``create_date`` (insert), ``write_uid`` / ``write_date``
  (update); the transaction counter, the cached record count, the list of
  created records, the record caches (an updated record is dropped from
  them, as ``write`` drops it); the ``ir.model.log`` of a user's update;
- ``ir.trigger``: queued on create as the ORM queues them; a model with
  triggers on write is written by the ORM;
- integrity and data errors: translated into Tryton's messages as ``create``
  translates them (a named SQL constraint, a missing required value).

What it deliberately skips (what makes it fast): the re-read of each record
and the domain checks of its relation fields (``Many2One`` domains, such as
"an active tariff"): the callers pass records they have just read under
their own checks; PYSON-dependent ``states``/``digits``/``size``;
``pre_validate`` (a client-side check); and the refusal to update records
loaded from XML data (nothing written here comes from a data file).

What it refuses, with :class:`FastPathUnsupported` at the first use of a
model (before anything is written): a model with a history table, a
translated field, a field only a setter writes (``Function`` with a setter,
``MultiValue``), tree fields (parent with left/right or path), a table
query, a hook override listed in ``HOOKS`` that ``KNOWN_HOOKS`` does not
list, and a model no module declared (:func:`declare`): the guard test
(``test_fastpath_guard``) checks every declared model, so a module adding
such a field or hook to one of them fails there first.

The switch :func:`through_orm` (or ``[prepaid] fast_path = False`` in the
configuration, ``TRYTOND_PREPAID__FAST_PATH=False``) makes the same calls
write through the ORM, with the same access semantics: the comparison tests
and ``bench/vend.py --orm`` use it.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sql import Column
from sql.functions import CurrentTimestamp
from sql.operators import In
from trytond import backend, config
from trytond.i18n import gettext
from trytond.model import fields
from trytond.model.exceptions import (
    AccessError,
    DigitsValidationError,
    ForbiddenCharValidationError,
    RequiredValidationError,
    SelectionValidationError,
    SizeValidationError,
)
from trytond.model.modelsql import ModelSQL
from trytond.pool import Pool
from trytond.pyson import PYSON
from trytond.tools import grouped_slice, is_instance_method
from trytond.transaction import Transaction, check_access, without_check_access

from . import limits, trytond_private

__all__ = [
    'FastPathUnsupported',
    'SystemWrite',
    'declare',
    'declare_update',
    'know_hook',
    'guard',
    'guard_update',
    'create',
    'save',
    'update',
    'through_orm',
    'orm_enabled',
    'scalar',
    'ids',
]

#: Columns the ORM fills itself.
_MAGIC = frozenset({'id', 'create_uid', 'create_date', 'write_uid', 'write_date'})

#: The model hooks the fast path must know when a model overrides them:
#: ``create``/``write`` because it does not call them, the others because it
#: calls them on in-memory records (an override that needs more, e.g. a
#: re-read, must be reviewed).
HOOKS = (
    'create',
    'write',
    'check_modification',
    'on_modification',
    'validate',
    'validate_fields',
    'compute_fields',
    'pre_validate',
)
#: The hooks that matter to an UPDATE (the ORM's write calls them; the
#: fast path does not call ``write`` nor ``on_write``).
UPDATE_HOOKS = tuple(h for h in HOOKS if h not in {'create', 'pre_validate'}) + (
    'on_write',
)

#: Hook overrides of the models written here, reviewed: 'module.Class.hook'
#: -> why the fast path keeps its guarantee.  trytond's own base classes
#: (``trytond.model``) are known.  Another module's override of a declared
#: model is refused until it is added here.
KNOWN_HOOKS: dict[str, str] = {
    'prepaid_vending.append_only.AppendOnlyMixin.create': (
        'refuses client creates before the insert; check_modification, '
        'which the fast path runs, refuses the same ones after it (the '
        'transaction is rolled back), and staff have no create access'
    ),
    'prepaid_vending.append_only.AppendOnlyMixin.check_modification': 'run',
    'prepaid_vending.company.CompanyMixin.check_modification': (
        'run (refuses moving a record to another company)'
    ),
    'prepaid_vending.company.CompanyMixin.validate_fields': (
        'run (links to records of another company refused)'
    ),
    'prepaid_vending.vend.Vend.check_modification': 'run (refuses delete)',
    'prepaid_vending.vend.VendToken.check_modification': 'run (write, delete)',
    'prepaid_vending.vend.VendToken.validate_fields': 'run (20 digits)',
    'prepaid_vending.vend.MonthPosition.check_modification': 'run',
    'prepaid_vending.remote.MeterCommand.check_modification': 'run',
    'prepaid_vending.meter.Meter.validate_fields': 'run (roles, when written)',
    'prepaid_vending.limits.RangeMixin.create': 'its check is run (_check_ranges)',
    'prepaid_vending.limits.RangeMixin.write': 'its check is run (_check_ranges)',
}


class FastPathUnsupported(Exception):
    "A model needs ORM work the fast path does not do (see the module doc)"


@dataclass(frozen=True)
class SystemWrite:
    """A write the model's own code makes as the system, named at the call.

    Staff have no create access to an append-only log or to a vend, so the
    user's model access cannot be the check; the check is that the user is
    root (cron, scripts) or belongs to one of groups (``module.fs_id``), the
    staff whose actions write such records.  Access checks are off for the
    write itself, as ``without_check_access`` sets them for the ORM (record
    rules included)."""

    reason: str
    groups: tuple[str, ...]

    def allows_user(self) -> bool:
        "Whether the transaction's user may cause this write"
        if not Transaction().user:
            return True
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        allowed = {ModelData.get_id(*group.split('.', 1)) for group in self.groups}
        # get_groups is cached per process (and includes implied groups).
        return bool(set(User.get_groups()) & allowed)

    def check(self, Model: Any) -> None:
        "Refuse (AccessError) a user outside the groups"
        if not self.allows_user():
            raise AccessError(
                gettext(
                    'prepaid_vending.msg_fastpath_system_write',
                    model=Model.__names__()['model'],
                    reason=self.reason,
                )
            )


# ----------------------------------------------------------------- switch
_orm: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    'prepaid_fastpath_orm', default=None
)


def orm_enabled() -> bool:
    "True when the callers write through the ORM instead (see the module doc)"
    forced = _orm.get()
    if forced is not None:
        return forced
    return not config.getboolean('prepaid', 'fast_path', default=True)


@contextlib.contextmanager
def through_orm(enabled: bool = True) -> Iterator[None]:
    "Within the block, the fast path's callers write through the ORM"
    token = _orm.set(enabled)
    try:
        yield
    finally:
        _orm.reset(token)


# ------------------------------------------------------------------ guard
_declared: dict[str, str] = {}
_declared_updates: dict[str, set[str]] = {}


def declare(module: str, *model_names: str) -> None:
    """Declare, at import time, that module creates records of model_names
    through the fast path: the guard test checks every declared model."""
    for name in model_names:
        _declared[name] = module


def declare_update(model_name: str, *field_names: str) -> None:
    """Declare that the fast path updates field_names of model_name (a model
    it may not create: the guard of an UPDATE looks at the fields written)."""
    _declared_updates.setdefault(model_name, set()).update(field_names)


def declared() -> dict[str, str]:
    "The models created through the fast path (model name -> module)"
    return dict(_declared)


def declared_updates() -> dict[str, frozenset[str]]:
    "The fields updated through the fast path, by model name"
    return {m: frozenset(f) for m, f in _declared_updates.items()}


def know_hook(name: str, why: str) -> None:
    """Add a reviewed override ('module.Class.hook') to KNOWN_HOOKS: called
    by the module that defines it, next to it, saying why the fast path
    keeps its guarantee."""
    KNOWN_HOOKS[name] = why


def _hook_name(klass: type, hook: str) -> str:
    module = klass.__module__.removeprefix('trytond.modules.')
    return f'{module}.{klass.__qualname__}.{hook}'


def unknown_hooks(Model: Any, hooks: Iterable[str] = HOOKS) -> list[str]:
    "The overrides of hooks in Model's classes that KNOWN_HOOKS does not list"
    unknown = []
    for klass in Model.__mro__:
        if klass.__module__.startswith('trytond.model'):
            continue
        for hook in hooks:
            if hook in vars(klass):
                name = _hook_name(klass, hook)
                if name not in KNOWN_HOOKS:
                    unknown.append(name)
    return unknown


def _setter(field: Any) -> bool:
    "A field that only a setter writes (not a column)"
    if isinstance(field, fields.Function):
        return bool(field.setter)
    return hasattr(field, 'set')


_guarded: dict[Any, str | None] = {}


def guard(Model: Any) -> None:
    """Raise FastPathUnsupported when creating Model needs ORM work the fast
    path does not do (see the module docstring); kept per class."""
    if Model not in _guarded:
        _guarded[Model] = _refusal(Model)
    refusal = _guarded[Model]
    if refusal:
        raise FastPathUnsupported(f'{Model.__name__}: {refusal}')


def guard_update(Model: Any, names: Iterable[str]) -> None:
    """Raise FastPathUnsupported when an UPDATE of names of Model needs ORM
    work the fast path does not do; kept per class and set of fields."""
    key = (Model, frozenset(names))
    if key not in _guarded:
        _guarded[key] = _update_refusal(Model, key[1])
    refusal = _guarded[key]
    if refusal:
        raise FastPathUnsupported(f'{Model.__name__}: {refusal}')


def _refusal(Model: Any) -> str | None:
    if Model.__name__ not in _declared:
        return 'not declared (fastpath.declare), so no guard test covers it'
    refusal = _model_refusal(Model)
    if refusal:
        return refusal
    for name, field in Model._fields.items():
        if getattr(field, 'translate', False):
            return f'field {name} is translated'
        if isinstance(field, fields.Function | fields.MultiValue) and _setter(field):
            return f'field {name} is written by a setter'
    unknown = unknown_hooks(Model)
    if unknown:
        return f'unknown hook overrides {", ".join(unknown)} (KNOWN_HOOKS)'
    return None


def _update_refusal(Model: Any, names: frozenset[str]) -> str | None:
    if not names <= _declared_updates.get(Model.__name__, set()):
        return f'{sorted(names)} not declared (fastpath.declare_update)'
    refusal = _model_refusal(Model)
    if refusal:
        return refusal
    for name in sorted(names):
        field = Model._fields[name]
        if getattr(field, 'translate', False):
            return f'field {name} is translated'
        if _setter(field) or field.sql_type() is None:
            return f'field {name} is written by a setter'
        if getattr(field, 'model_name', None) == Model.__name__:
            return f'field {name} is a tree parent (recursion check)'
    unknown = unknown_hooks(Model, UPDATE_HOOKS)
    if unknown:
        return f'unknown hook overrides {", ".join(unknown)} (KNOWN_HOOKS)'
    return None


def _model_refusal(Model: Any) -> str | None:
    if Model._history:
        return 'keeps a history table'
    if Model._mptt_fields or Model._path_fields:
        return 'is a tree with left/right or path fields'
    if Model.table_query is not ModelSQL.table_query:
        return 'is a table query'
    return None


def _columns(Model: Any) -> dict[str, Any]:
    """The stored fields of Model (name -> field), once per class: the
    fields of a pool's class do not change (read-only for callers)."""
    columns = _columns_memo.get(Model)
    if columns is None:
        columns = _columns_memo[Model] = {
            name: field
            for name, field in Model._fields.items()
            if name not in _MAGIC
            and not isinstance(field, fields.Function)
            and field.sql_type() is not None
        }
    return columns


_columns_memo: dict[type, dict[str, Any]] = {}


# ----------------------------------------------------------------- access
@contextlib.contextmanager
def _access(Model: Any, mode: str, names: Iterable[str], system: SystemWrite | None):
    """Check access for mode, then run the block with the access context the
    ORM would have: checks on for a user's write, off for a system write."""
    if system is not None:
        system.check(Model)
        with without_check_access():
            yield False
        return
    pool = Pool()
    with check_access():
        pool.get('ir.model.access').check(Model.__name__, mode)
        pool.get('ir.model.field.access').check(Model.__name__, list(names), 'write')
        yield bool(Transaction().user)


# ----------------------------------------------------------------- create
def create(
    Model: Any, rows: list[dict], *, system: SystemWrite | None = None
) -> list[int]:
    """Create rows of Model (values as for ``create``: records or ids for
    relations; no One2Many/Many2Many values) and return their ids, in order."""
    if not rows:
        return []
    if orm_enabled() or _has_create_triggers(Model):
        with _orm_access(system, Model):
            return [record.id for record in Model.create(rows)]
    guard(Model)
    records = [None] * len(rows)
    return _create(Model, rows, records, system)


def save(records: list, *, system: SystemWrite | None = None) -> None:
    """INSERT unsaved in-memory records (of one model): each keeps its values
    in memory, gets the defaults of the fields it lacks, and its id."""
    if not records:
        return
    Model = records[0].__class__
    if orm_enabled() or _has_create_triggers(Model):
        with _orm_access(system, Model):
            Model.save(records)
        return
    guard(Model)
    names = _columns(Model)
    rows = []
    for record in records:
        values = trytond_private.record_values(record)
        rows.append({n: v for n, v in values.items() if n in names})
    _create(Model, rows, list(records), system)


def _has_create_triggers(Model: Any) -> bool:
    Trigger = Pool().get('ir.trigger')
    with without_check_access():
        return bool(Trigger.get_triggers(Model.__name__, 'create'))


@contextlib.contextmanager
def _orm_access(system: SystemWrite | None, Model: Any):
    "The ORM path with the fast path's access semantics"
    if system is not None:
        system.check(Model)
        with without_check_access():
            yield
    else:
        with check_access():
            yield


def _create(Model: Any, rows: list[dict], records: list, system) -> list[int]:
    transaction = Transaction()
    stored = _columns(Model)
    given = set().union(*rows)
    for name in given:
        if name not in stored:
            raise FastPathUnsupported(
                f'{Model.__name__}.{name}: not a column (written by a setter)'
            )
    with _access(Model, 'create', given, system) as external:
        transaction.counter += 1
        trytond_private.drop_count(Model)
        with without_check_access():
            given_rows, rows = (
                rows,
                [Model.preprocess_values('create', row) for row in rows],
            )
        full = _with_defaults(Model, rows)
        _check_ranges(Model, rows)
        names = sorted(set().union(*full))
        new_ids = _insert(Model, names, full)
        for index, (record, values, id_) in enumerate(zip(records, full, new_ids)):
            if record is None:
                records[index] = Model(id_, **values)
            else:
                # The record holds what was written: defaults, preprocessing.
                trytond_private.adopt_id(record, id_)
                given = given_rows[index]
                for name, value in values.items():
                    if name not in given or given[name] is not value:
                        setattr(record, name, value)
        transaction.create_records[Model.__name__].extend(new_ids)
        if external:
            trytond_private.check_domain_rule(Model, new_ids, 'create')
        with without_check_access():
            _check_values(Model, records, names)
            Model.validate(records)
            Model.validate_fields(records, set(names))
            Model.check_modification('create', records, external=external)
            Model.on_modification('create', records)
    return new_ids


def _with_defaults(Model: Any, rows: list[dict]) -> list[dict]:
    """Rows with the defaults of the stored fields each one leaves out, per
    set of given fields (as ModelSQL.create)."""
    stored = _columns(Model)
    by_schema: dict[tuple[str, ...], dict] = {}
    full = []
    for row in rows:
        schema = tuple(sorted(row))
        defaults = by_schema.get(schema)
        if defaults is None:
            missing = [
                name
                for name, field in Model._fields.items()
                if name not in row
                and name not in _MAGIC
                and not (isinstance(field, fields.Function) and not field.setter)
            ]
            values = Model.default_get(missing, with_rec_name=False) if missing else {}
            defaults = Model._clean_defaults(values)
            for name, value in defaults.items():
                if name not in stored and value:
                    raise FastPathUnsupported(
                        f'{Model.__name__}.{name}: a default only a setter writes'
                    )
            defaults = by_schema[schema] = {
                n: v for n, v in defaults.items() if n in stored
            }
        full.append({**defaults, **row})
    return full


def _insert(Model: Any, names: list[str], rows: list[dict]) -> list[int]:
    "INSERT rows (all with names), as ModelSQL.create does; return the ids"
    transaction = Transaction()
    database = transaction.database
    cursor = transaction.connection.cursor()
    table = Model.__table__()
    stored = _columns(Model)
    columns = [table.create_uid, table.create_date] + [Column(table, n) for n in names]
    values = [
        [transaction.user, CurrentTimestamp()]
        + [stored[n].sql_format(row.get(n)) for n in names]
        for row in rows
    ]
    new_ids: list[int] = []
    size = max(1, backend.MAX_QUERY_PARAMS // (len(columns) + 1))
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        try:
            new_ids.extend(
                _insert_chunk(database, cursor, Model, table, columns, chunk)
            )
        except (backend.DatabaseIntegrityError, backend.DatabaseDataError) as error:
            if isinstance(error, backend.DatabaseIntegrityError):
                raise_error = trytond_private.raise_integrity_error
            else:
                raise_error = trytond_private.raise_data_error
            with transaction.new_transaction():
                for row in rows[start : start + size]:
                    raise_error(Model, error, row)
            raise
    return new_ids


def _insert_chunk(database, cursor, Model, table, columns, chunk) -> list[int]:
    connection = Transaction().connection
    if len(chunk) > 1 and database.has_multirow_insert():
        new_ids = database.nextid(connection, Model._table, count=len(chunk))
        if new_ids is not None:
            cursor.execute(
                *table.insert(
                    columns + [table.id], [v + [i] for v, i in zip(chunk, new_ids)]
                )
            )
            return list(new_ids)
    new_ids = []
    for value in chunk:
        if database.has_returning():
            cursor.execute(*table.insert(columns, [value], [table.id]))
            new_ids.append(cursor.fetchone()[0])
        else:
            cursor.execute(*table.insert(columns, [value]))
            new_ids.append(database.lastid(cursor))
    return new_ids


# ----------------------------------------------------------------- checks
def _check_values(Model: Any, records: list, names: Iterable[str]) -> None:
    """The per-field checks of ModelStorage._validate whose limits are fixed
    (required, size, digits, forbidden characters, selection), on the
    in-memory records."""
    for name in names:
        field = Model._fields[name]
        if field.required:
            for record in records:
                value = getattr(record, name)
                if (
                    isinstance(value, type(None) | bool | list | tuple | str | dict)
                    and not value
                ):
                    raise RequiredValidationError(
                        gettext(
                            'ir.msg_required_validation_record',
                            **Model.__names__(name, record),
                        )
                    )
        size = getattr(field, 'size', None)
        if isinstance(size, int):
            for record in records:
                length = len(getattr(record, name) or '')
                if length > size >= 0:
                    raise SizeValidationError(
                        gettext(
                            'ir.msg_size_validation_record',
                            size=length,
                            max_size=size,
                            **Model.__names__(name, record),
                        )
                    )
        digits = getattr(field, 'digits', None)
        if isinstance(digits, tuple) and not any(isinstance(d, PYSON) for d in digits):
            for record in records:
                if not _digits_ok(getattr(record, name), digits):
                    raise DigitsValidationError(
                        gettext(
                            'ir.msg_digits_validation_record',
                            digits=digits,
                            **Model.__names__(name, record),
                        )
                    )
        forbidden = getattr(field, 'forbidden_chars', None)
        if forbidden:
            for record in records:
                value = getattr(record, name)
                if value and any(c in value for c in forbidden):
                    raise ForbiddenCharValidationError(
                        gettext(
                            'ir.msg_forbidden_char_validation_record',
                            chars=','.join(repr(c) for c in forbidden if c in value),
                            **Model.__names__(name, record),
                        )
                    )
        allowed = _selection(Model, field)
        if allowed is not None:
            for record in records:
                value = getattr(record, name)
                if field._type == 'reference':
                    if isinstance(value, ModelSQL):
                        value = value.__class__.__name__
                    elif value:
                        value = value.split(',')[0]
                if value not in allowed:
                    raise SelectionValidationError(
                        gettext(
                            'ir.msg_selection_validation_record',
                            **Model.__names__(name, record),
                        )
                    )


def _check_ranges(Model: Any, rows: list[dict]) -> None:
    "The ranges of a RangeMixin model, as its create and write check them"
    setting_ranges = getattr(Model, 'setting_ranges', None)
    if setting_ranges is not None:
        ranges = setting_ranges()
        for row in rows:
            limits.check_values(Model, row, ranges)


def _digits_ok(value: Any, digits: tuple) -> bool:
    if value is None:
        return True
    int_size, dec_size = digits
    if int_size is not None and value:
        if math.ceil(math.log10(abs(value))) > int_size:
            return False
    if dec_size is not None:
        if isinstance(value, Decimal):
            return value.as_tuple().exponent >= -dec_size
        return round(value, dec_size) == value
    return True


def _selection(Model: Any, field: Any) -> set | None:
    """The allowed values of a (single) selection or reference field whose
    options do not depend on the record; None for another field."""
    selection = getattr(field, 'selection', None)
    if not selection or field._type == 'multiselection':
        return None
    if isinstance(selection, str):
        if is_instance_method(Model, selection):
            return None  # options per record: left to the caller
        selection = getattr(Model, selection)()
    allowed = set(dict(selection))
    if '' in allowed or None in allowed:
        allowed |= {'', None}
    return allowed


# ----------------------------------------------------------------- update
def update(records: list, values: dict, *, system: SystemWrite | None = None) -> None:
    """UPDATE values (as for ``write``: no One2Many/Many2Many) on records of
    one model, with write_uid/write_date.  As after ``write``, the record
    caches forget the records, whose next read sees the new values."""
    if not records:
        return
    Model = records[0].__class__
    if orm_enabled() or _has_write_triggers(Model):
        with _orm_access(system, Model):
            Model.write(records, values)
        return
    guard_update(Model, values)
    stored = _columns(Model)
    transaction = Transaction()
    record_ids = [r.id for r in records]
    with _access(Model, 'write', values, system) as external:
        if external:
            trytond_private.check_domain_rule(Model, record_ids, 'write')
        with without_check_access():
            Model.check_modification('write', records, values, external=external)
            _check_ranges(Model, [values])
            values = Model.preprocess_values('write', values)
            if external or transaction.context.get('_log'):
                Model.log(records, 'write', ','.join(sorted(values)))
        table = Model.__table__()
        names = sorted(values)
        cursor = transaction.connection.cursor()
        sql_values = [stored[n].sql_format(values[n]) for n in names]
        for sub_ids in grouped_slice(record_ids, 1000):
            try:
                cursor.execute(
                    *table.update(
                        [Column(table, n) for n in names]
                        + [table.write_uid, table.write_date],
                        sql_values + [transaction.user, CurrentTimestamp()],
                        where=In(table.id, list(sub_ids)),
                    )
                )
            except backend.DatabaseIntegrityError as error:
                with transaction.new_transaction():
                    trytond_private.raise_integrity_error(Model, error, values)
                raise
        _forget(Model, records)
        if external:
            trytond_private.check_domain_rule(Model, record_ids, 'write')
        # The checks read the new values from these, not from the database.
        written = [Model(id_, **values) for id_ in record_ids]
        with without_check_access():
            _check_values(Model, written, names)
            Model.validate(written)
            Model.validate_fields(written, set(names))
            Model.on_modification('write', written, set(names))


def _has_write_triggers(Model: Any) -> bool:
    Trigger = Pool().get('ir.trigger')
    with without_check_access():
        return bool(Trigger.get_triggers(Model.__name__, 'write'))


def _forget(Model: Any, records: list) -> None:
    """Drop records from the transaction's record caches and their own, as
    ``ModelStorage.write`` does (the counter alone leaves them)."""
    transaction = Transaction()
    transaction.counter += 1
    for cache in transaction.cache.values():
        if Model.__name__ in cache:
            cached = cache[Model.__name__]
            for record in records:
                cached.pop(record.id, None)
    for record in records:
        trytond_private.forget_local(record)


# ------------------------------------------------------------------ reads
def scalar(query) -> Any:
    """The first column of the first row of a python-sql query, or None.

    The vend's lookups (tariff of a meter, version at a date, idempotency
    key...) need one id or value: ``ModelSQL.search`` builds and parses a
    domain, adds the access rules and instantiates records for it, which cost
    about ten times the query.  The caller answers for access (a read of
    records its own checks have let it reach)."""
    cursor = Transaction().connection.cursor()
    cursor.execute(*query)
    row = cursor.fetchone()
    return row[0] if row else None


def ids(query) -> list[int]:
    """The first column of every row of a python-sql query (record ids), for
    the lists every vend asks for (open debts...): see ``scalar``."""
    cursor = Transaction().connection.cursor()
    cursor.execute(*query)
    return [row[0] for row in cursor]
