"""The utility (company) a vending record belongs to.

One installation may host several utilities.  Every record that belongs to
one of them (network, meters, service points, tariffs, sales points, shifts,
vends, debts, remote accounts, commands, import jobs) carries its company:
the record rules (``ir.rule``, in each model's XML) then show a user only the
records of the companies they are allowed (``companies`` in the context), as
Tryton's sale and account modules do.

A record never moves to another company: its numbering, tariffs and books
belong to the utility that made it, so the company is read-only once the
record exists (for clients and for code alike).
"""

from __future__ import annotations

import weakref

from sql import Null
from trytond.i18n import gettext
from trytond.model import Index, Unique, fields
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction


def context_company() -> int | None:
    "The id of the user's current company (the context's), or None"
    return Transaction().context.get('company')


#: transaction -> (user, company, transaction counter) last found allowed:
#: a vend asks twice (the RPC lookup, the pipeline's check) before it writes.
_allowed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def current_company():
    """The company the user works in: the context's, which must be one of the
    user's companies (a client chooses its context, not its rights).

    Lookups by number that run with access checks off (the RPC vend, the
    import) resolve within it: the same meter number may exist at another
    utility of the installation."""
    pool = Pool()
    transaction = Transaction()
    company_id = transaction.context.get('company')
    if not company_id:
        raise AccessError(gettext('prepaid_vending.msg_no_company'))
    if transaction.user:
        # One indexed query on the user's companies (res.user.companies'
        # table), not the ORM read of the user and its Many2Many: this runs
        # on every vend (about 3 ms of it through the ORM).
        if not isinstance(company_id, int) or isinstance(company_id, bool):
            # A client's context: only an id may match (as before, "1" is
            # not company 1).
            raise AccessError(gettext('prepaid_vending.msg_company_not_allowed'))
        key = (transaction.user, company_id, transaction.counter)
        if _allowed.get(transaction) != key:
            relation = pool.get('res.user-company.company').__table__()
            cursor = transaction.connection.cursor()
            cursor.execute(
                *relation.select(
                    relation.id,
                    where=(relation.user == transaction.user)
                    & (relation.company == company_id),
                    limit=1,
                )
            )
            if cursor.fetchone() is None:
                raise AccessError(gettext('prepaid_vending.msg_company_not_allowed'))
            _allowed[transaction] = key
    return pool.get('company.company')(company_id)


class CompanyMixin:
    """A required company, the context's by default, fixed once set.

    ``_company_index``: False where a unique constraint already starts with
    the company (its index serves the record rules)."""

    __slots__ = ()
    _company_index = True
    # Unique constraints that became per company (dropped on update, their
    # replacement starts with the company).
    _company_replaces: tuple[str, ...] = ()
    # Links to records of a company that must be of this record's company
    # (a transformer of one utility on a feeder of another would mix their
    # networks, a shift at another utility's sales point their cash).
    _company_links: tuple[str, ...] = ()

    company = fields.Many2One(
        'company.company',
        "Company",
        required=True,
        ondelete='RESTRICT',
        states={'readonly': Eval('id', -1) >= 0},
        help="The utility this record belongs to.",
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        if cls._company_index:
            t = cls.__table__()
            cls._sql_indexes.add(Index(t, (t.company, Index.Range())))
        # A party's company-dependent values (its accounts ...) are read for
        # the record's utility, as Tryton's own company records do.
        for name in dir(cls):
            field = getattr(cls, name, None)
            if not isinstance(field, fields.Field) or name == 'company':
                continue
            target = getattr(field, '_field', field)
            context = dict(getattr(target, 'context', None) or {})
            if getattr(target, 'model_name', None) == 'party.party' and (
                'company' not in context
            ):
                context['company'] = Eval('company', -1)
                target.context = context
                target.depends = set(target.depends or ()) | {'company'}

    @classmethod
    def __register__(cls, module):
        table_h = cls.__table_handler__(module)
        had_company = table_h.column_exist('company')
        for ident in cls._company_replaces:
            table_h.drop_constraint(ident)
        super().__register__(module)
        if not had_company:
            cls._migrate_company(module)

    @classmethod
    def _migrate_company(cls, module) -> None:
        """Records made before the company existed belong to the one
        company of the installation (with several, an administrator must
        assign them: the column stays nullable until then)."""
        company = Pool().get('company.company').__table__()
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*company.select(company.id, limit=2))
        ids = [i for (i,) in cursor]
        if len(ids) != 1:
            return
        cursor.execute(
            *table.update([table.company], [ids[0]], where=table.company == Null)
        )
        cls.__table_handler__(module).not_null_action('company', 'add')

    @staticmethod
    def default_company():
        return context_company()

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        links = cls._company_links
        if field_names:
            links = [n for n in links if n in field_names or 'company' in field_names]
        for name in links:
            for record in records:
                other = getattr(record, name)
                if other is not None:
                    cls.same_company(
                        other, record, 'prepaid_vending.msg_company_mismatch'
                    )

    @classmethod
    def check_modification(cls, mode, records, values=None, external=False):
        super().check_modification(mode, records, values=values, external=external)
        if mode == 'write' and values and 'company' in values:
            moved = [
                r for r in records if r.company and r.company.id != values['company']
            ]
            if moved:
                raise AccessError(
                    gettext(
                        'prepaid_vending.msg_company_fixed',
                        model=cls.__names__()['model'],
                        record=moved[0].rec_name,
                    )
                )

    @classmethod
    def same_company(cls, record, other, error: str, **names):
        """Refuse to link records of two utilities (a sales point of one
        selling to a meter of the other): ``error`` is the message id."""
        if record.company != other.company:
            Company = Pool().get('company.company')
            raise AccessError(
                gettext(
                    error,
                    record=record.rec_name,
                    other=other.rec_name,
                    company=Company(record.company.id).rec_name,
                    other_company=Company(other.company.id).rec_name,
                    **names,
                )
            )


class CompanyCodeMixin(CompanyMixin):
    """A code unique within its company: two utilities of one installation
    may both have a feeder F1 or a tariff R1.  ``_code_unique_error`` is the
    message id of the constraint (whose index, starting with the company,
    also serves the record rules)."""

    __slots__ = ()
    _company_index = False
    _code_unique_error: str = ''

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'company_code_unique',
                Unique(t, t.company, t.code),
                cls._code_unique_error,
            ),
        ]
