"""Set-based writing of the import's records, keeping what the ORM does on
create except the generic per-field validation (see below)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sql import Column, Null
from sql.conditionals import Coalesce
from trytond.i18n import gettext
from trytond.model import ModelSQL, fields
from trytond.pool import Pool
from trytond.transaction import Transaction, without_check_access

from .. import fastpath_copy, trytond_private
from .batches import batch_parties, link_parties, sequence_values
from .validation import CleanRow

if TYPE_CHECKING:
    from .importer import ImportResult

# What write_rows creates (multi-value and One2Many targets are checked as
# they come).
BULK_MODELS = (
    'party.party',
    'party.contact_mechanism',
    'prepaid.service_point',
    'prepaid.meter',
    'prepaid.meter.state_history',
    'prepaid.meter.installation',
)


# ---------------------------------------------------------------------------
# Set-based writing
#
# Why bypass ModelSQL.create: the profile of the ORM path shows that nearly
# all of its time goes to work this import has already done or does not
# need: the generic field validation of _after_create (required, selection,
# size, domain of every field, re-read record by record, with an O(n^2)
# assertion when browsing large batches), and the multi-value setters (the
# party language, company accounts) which read then write one record per
# party.  bulk_create() below keeps everything else the ORM does on create,
# in the ORM's own code where it can:
#
# - access rights, field access and preprocess_values (Model._before_create);
# - default values (Model.default_get, once per set of given fields);
# - computed columns (compute_fields), create_uid/create_date, and
#   write_uid/write_date when the ORM path would write the record again;
# - multi-value fields: one value record per record and value model, with
#   the same pattern (company) as set_multivalue; nested One2Many creates;
# - the model-specific checks (validate, validate_fields of every module,
#   e.g. national ID, phone numbers, STS or head-end parameters), the
#   check_modification and on_modification hooks, record rules on create,
#   triggers and the transaction's created-records list.
#
# What it leaves out is the generic per-field validation: every value comes
# from RowValidator (which checks formats, ranges, choices and references)
# or from the models' defaults, and uniqueness is enforced by the database
# constraints.  A model needing ORM work not listed above (history table,
# tree paths, translations, other relation setters) makes write_rows fall
# back to the ORM before anything is written.
#
# The rows themselves are written by the fast path's batch writer
# (fastpath_copy.insert_rows: COPY on PostgreSQL, executemany on SQLite).


class BulkUnsupported(Exception):
    "A model needs ORM work bulk_create does not replicate"


# Records per browse() in the post-insert hooks: ModelStorage.__init__ scans
# the whole id list (an assertion), so each instance costs the slice's length
# and slices stay small; 100 halves that scan against 200 for a few more reads.
HOOK_SLICE = 100
# The parent field of the trees bulk_create writes: their recursion check is
# done set-based (see set_based_checks).
TREE_PARENTS = {'prepaid.meter': 'master'}
_AUDIT = {'id', 'create_uid', 'create_date', 'write_uid', 'write_date'}


def _plain_defaults(Model: Any, given: Iterable[str]) -> dict[str, Any]:
    "The ORM's default values for the fields not given, as create computes them"
    names = [
        n
        for n, f in Model._fields.items()
        if n not in given
        and n not in _AUDIT
        and not (isinstance(f, fields.Function) and not f.setter)
    ]
    if not names:
        return {}
    return Model._clean_defaults(Model.default_get(names, with_rec_name=False))


def check_bulk_model(Model: Any) -> None:
    """Raise BulkUnsupported if the model's create does more than bulk_create,
    judging from the model and its default values (write_rows calls it
    before writing anything, so the fallback to the ORM is clean)."""
    if getattr(Model, '_history', False):
        raise BulkUnsupported(f'{Model.__name__} keeps a history table')
    if getattr(Model, '_mptt_fields', None) or getattr(Model, '_path_fields', None):
        raise BulkUnsupported(f'{Model.__name__} is a tree with stored paths')
    if Model.table_query is not ModelSQL.table_query:
        raise BulkUnsupported(f'{Model.__name__} is a table query')
    check_setters(Model, [_plain_defaults(Model, ())])


def check_setters(Model: Any, rows: list[dict[str, Any]]) -> None:
    "Raise BulkUnsupported for values only the ORM's field setters can write"
    for name in sorted({n for v in rows for n in v}):
        field_ = Model._fields[name]
        if not hasattr(field_, 'set') or isinstance(field_, fields.MultiValue):
            continue
        values = [v[name] for v in rows if v.get(name)]
        if isinstance(field_, fields.One2Many):
            # Nested creates are written by bulk_create on the target.
            if all(a[0] == 'create' for v in values for a in v):
                continue
        elif isinstance(field_, fields.Function | fields.Many2Many):
            # An empty value: the setter would write nothing.
            if not values:
                continue
        raise BulkUnsupported(
            f'{Model.__name__}.{name} needs its setter (ORM) for {values[:1]}'
        )


def bulk_create(
    Model: Any, vlist: list[dict[str, Any]], written: bool = False
) -> list[int]:
    """Create records like Model.create, set-based (see the section comment).
    written: the ORM path writes the records again right after creating them
    (the meter state change), so write_uid/write_date are set too."""
    if not vlist:
        return []
    check_bulk_model(Model)
    vlist = Model._before_create(vlist)
    defaults: dict[tuple[str, ...], dict[str, Any]] = {}
    full: list[dict[str, Any]] = []
    for values in vlist:
        schema = tuple(sorted(values))
        if schema not in defaults:
            defaults[schema] = _plain_defaults(Model, values)
        full.append({**defaults[schema], **values})

    plain: list[str] = sorted(
        {n for v in full for n in v if not hasattr(Model._fields[n], 'set')}
    )
    for name in plain:
        field_ = Model._fields[name]
        if getattr(field_, 'translate', False) and any(v.get(name) for v in full):
            raise BulkUnsupported(f'{Model.__name__}.{name} is translated')
    computes = Model.compute_fields is not ModelSQL.compute_fields
    rows = []
    for values in full:
        if computes:
            # The modules' own computation, on an unsaved record.
            computed = Model(**{n: values.get(n) for n in plain}).compute_fields()
            if computed:
                # The ORM writes computed values after the insert, which
                # sets the write fields (all records here, not only these).
                written = True
                values.update(computed)
        rows.append(values)
    plain = sorted({n for v in rows for n in v if not hasattr(Model._fields[n], 'set')})
    check_setters(Model, rows)
    ids = fastpath_copy.insert_rows(
        Model,
        plain,
        [[Model._fields[n].sql_format(v.get(n)) for n in plain] for v in rows],
        written,
    )
    _set_relations(Model, ids, rows)
    _after_bulk_create(Model, ids, None)
    return ids


def _set_relations(Model: Any, ids: list[int], rows: list[dict[str, Any]]) -> None:
    "Multi-value and nested One2Many values, as the ORM's field setters do"
    pool = Pool()
    context = Transaction().context
    value_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    setters = sorted({n for v in rows for n in v if hasattr(Model._fields[n], 'set')})
    multivalues: dict[str, list[str]] = defaultdict(list)
    for name in setters:
        if isinstance(Model._fields[name], fields.MultiValue):
            multivalues[Model.multivalue_model(name).__name__].append(name)
    for value_model, names in multivalues.items():
        Value = pool.get(value_model)
        link = next(
            n
            for n, f in Value._fields.items()
            if f._type == 'many2one' and f.model_name == Model.__name__
        )
        pattern = {}
        if 'company' in Value._fields and 'company' not in names:
            # CompanyMultiValueMixin.set_multivalue: the context's company.
            pattern['company'] = context.get('company')
        for id_, values in zip(ids, rows):
            value_rows[value_model].append(
                {link: id_, **pattern, **{n: values.get(n) for n in names}}
            )
    for name in setters:
        field_ = Model._fields[name]
        if not isinstance(field_, fields.One2Many):
            continue
        for id_, values in zip(ids, rows):
            for _, vlist in values.get(name) or []:  # creates (check_setters)
                for child in vlist:
                    children[field_.model_name].append({**child, field_.field: id_})
    for value_model, vlist in value_rows.items():
        bulk_create(pool.get(value_model), vlist)
    for child_model, vlist in children.items():
        bulk_create(pool.get(child_model), vlist)


def _after_bulk_create(Model: Any, ids: list[int], field_names: Any) -> None:
    "The create hooks of the ORM except the generic per-field validation"
    pool = Pool()
    Trigger = pool.get('ir.trigger')
    transaction = Transaction()
    external = bool(transaction.user and transaction.check_access)
    with without_check_access():
        triggers = Trigger.get_triggers(Model.__name__, 'create')
        for start in range(0, len(ids), HOOK_SLICE):
            records = Model.browse(ids[start : start + HOOK_SLICE])
            Model.validate(records)
            Model.validate_fields(records, set_based_checks(Model, records))
            Model.check_modification('create', records, external=external)
            Model.on_modification('create', records)
            for trigger in triggers:
                trigger.queue_trigger_action(records)
        transaction.create_records[Model.__name__].extend(ids)
    # Record rules on create, as ModelSQL.create checks them.
    trytond_private.check_domain_rule(Model, ids, 'create')


def set_based_checks(Model: Any, records: list[Any]) -> set[str] | None:
    """Run set-based the checks of validate_fields that read the records one
    by one, and return the field names to call validate_fields with for the
    others (None: every field, as create does).

    Each check left out of validate_fields by its field names is done here
    with the same outcome, and the same message (the model's own method
    raises it on the record at fault):

    - CompanyMixin.validate_fields (its links, or "company", in the names):
      a linked record of another company.  One query per link finds the
      records whose company differs from the linked record's (NULL counts
      as a company, as ``record.company != other.company`` does);
      same_company then raises on the first of them.
    - Meter.check_role (role, master_of_transformer, master_of_feeder or
      the tree parent in the names): the same condition as one query, when
      the tree parent is left out too.
    - The tree's check_recursion (its parent in the names): a record is on a
      cycle only if a chain of parents comes back to it, so some record has
      it as parent.  The records were just inserted, so only a record
      inserted with them can; if none is, no chain comes back (nothing to
      raise).  Else the tree's own check runs (parent field kept).

    Every other check of validate_fields keeps its field names: only these
    two checks look at "company", the company links or the tree parent
    (the modules' validate_fields, grep field_names)."""
    table = Model.__table__()
    cursor = Transaction().connection.cursor()
    ids = [r.id for r in records]
    done: set[str] = set()
    links = getattr(Model, '_company_links', None)
    if links is not None and hasattr(Model, 'same_company'):
        for link in links:
            Target = Model._fields[link].get_target()
            target = Target.__table__()
            cursor.execute(
                *table.join(target, condition=Column(table, link) == target.id).select(
                    table.id,
                    where=table.id.in_(ids)
                    & (Coalesce(table.company, -1) != Coalesce(target.company, -1)),
                    order_by=table.id,
                    limit=1,
                )
            )
            row = cursor.fetchone()
            if row:
                record = Model(row[0])
                Model.same_company(
                    getattr(record, link),
                    record,
                    'prepaid_vending.msg_company_mismatch',
                )
        done |= {'company', *links}
    parent = TREE_PARENTS.get(Model.__name__)
    if parent:
        cursor.execute(
            *table.select(table.id, where=Column(table, parent).in_(ids), limit=1)
        )
        if cursor.fetchone() is None:
            done.add(parent)
    if Model.__name__ == 'prepaid.meter' and parent in done:
        # Meter.check_role, run by validate_fields for these names (the tree
        # parent among them): a meter not of the master role that is the
        # master of a transformer or a feeder.
        cursor.execute(
            *table.select(
                table.id,
                where=table.id.in_(ids)
                & (table.role != 'master')
                & (
                    (table.master_of_transformer != Null)
                    | (table.master_of_feeder != Null)
                ),
                order_by=table.id,
                limit=1,
            )
        )
        row = cursor.fetchone()
        if row:
            Model(row[0]).check_role()
        done |= {'role', 'master_of_transformer', 'master_of_feeder'}
    if not done:
        return None
    return set(Model._fields) - done


def write_chunk(
    chunk: list[CleanRow],
    result: ImportResult,
    party_ids: dict[tuple[str, str], int],
) -> None:
    pool = Pool()
    Party = pool.get('party.party')
    ServicePoint = pool.get('prepaid.service_point')
    Meter = pool.get('prepaid.meter')
    History = pool.get('prepaid.meter.state_history')
    Installation = pool.get('prepaid.meter.installation')
    Configuration = pool.get('prepaid.configuration')
    reason = gettext('prepaid_vending.msg_import_installed')
    new_parties, owners = batch_parties(chunk, party_ids)
    new_ids = bulk_create(Party, new_parties)
    link_parties(chunk, owners, new_ids, party_ids)
    point_codes = sequence_values(Configuration(1).service_point_sequence, len(chunk))
    point_ids = bulk_create(
        ServicePoint,
        [
            {**r.point, 'customer': r.party_id, 'code': code}
            for r, code in zip(chunk, point_codes)
        ],
    )
    # Created in stock then moved to installed by change_state on the ORM
    # path: the same end state, write fields and history line here.
    meter_ids = bulk_create(
        Meter, [{**r.meter, 'state': 'installed'} for r in chunk], written=True
    )
    bulk_create(
        History,
        [
            {
                'meter': m,
                'from_state': 'in_stock',
                'to_state': 'installed',
                'reason': reason,
            }
            for m in meter_ids
        ],
    )
    bulk_create(
        Installation,
        [
            {
                'meter': m,
                'service_point': p,
                'installed_on': r.installed_on,
                'install_reading': r.install_reading,
            }
            for r, p, m in zip(chunk, point_ids, meter_ids)
        ],
    )
    result.parties += len(new_ids)
    result.service_points += len(point_ids)
    result.meters += len(meter_ids)
    result.imported += len(chunk)
    result.meter_ids.extend(meter_ids)
