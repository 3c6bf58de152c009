"""Token log: every STS token issued, who issued it, when, why and from what.

The 20 digits (``digits``) are readable only by the groups that may reprint a
token (field access records in token.xml); cashiers see only the tokens they
issued (record rule).  Every token carries its meter's company (a record rule
shows a user the companies they work for).
"""

from __future__ import annotations

import datetime as dt

from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.modules.prepaid_vending.access import SearchGuard
from trytond.modules.prepaid_vending.append_only import AppendOnlyMixin
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.transaction import Transaction

from .common import BASE_DATES, TOKEN_KINDS
from .company import fill_company_from
from .engine.tid import datetime_from_tid
from .key import get_origin_selection


class Token(CompanyMixin, SearchGuard, AppendOnlyMixin, ModelSQL, ModelView):
    "STS Token"

    __name__ = "prepaid.sts.token"
    _rec_name = "description"
    # Searched by meter or digits (indexed), never by company: an index on
    # it would only slow every vend's insert.
    _company_index = False

    meter = fields.Many2One(
        "prepaid.meter", "Meter", required=True, readonly=True, ondelete="RESTRICT"
    )
    kind = fields.Selection(TOKEN_KINDS, "Kind", required=True, readonly=True)
    token_class = fields.Integer("Class", required=True, readonly=True)
    subclass = fields.Integer("Subclass", required=True, readonly=True)
    tid = fields.Integer("TID", readonly=True)
    tid_date = fields.Function(fields.DateTime("TID Date (UTC)"), "get_tid_date")
    base_date = fields.Selection([(None, "")] + BASE_DATES, "Base Date", readonly=True)
    sgc = fields.Char("Supply Group Code", readonly=True)
    krn = fields.Integer("Key Revision", readonly=True)
    tariff_index = fields.Char("Tariff Index", readonly=True)
    value = fields.Numeric("Value", digits=(16, 5), readonly=True)
    value16 = fields.Integer("Raw Value", readonly=True)
    digits = fields.Char("Token", readonly=True)
    description = fields.Char("Description", readonly=True)
    reason = fields.Char("Reason", readonly=True)
    issued_by = fields.Many2One("res.user", "Issued By", readonly=True)
    issued_at = fields.Timestamp("Issued At", readonly=True)
    origin = fields.Reference("Origin", selection="get_origins", readonly=True)
    key_change = fields.Many2One(
        "prepaid.sts.key_change", "Key Change", readonly=True, ondelete="RESTRICT"
    )
    sequence = fields.Integer("Sequence", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ("issued_at", "DESC"))
        cls._order.insert(1, ("id", "DESC"))
        # No __access__ on the meter: Tryton would give the log the meter's
        # write access (the most permissive wins); its own records in
        # token.xml make it read-only.
        t = cls.__table__()
        # Verify-by-digits and per-meter history are the frequent searches.
        cls._sql_indexes.update(
            {
                Index(t, (t.digits, Index.Equality())),
                Index(t, (t.meter, Index.Equality()), (t.tid, Index.Range())),
            }
        )

    @classmethod
    def _migrate_company(cls, module):
        # Before the one-company default of CompanyMixin: the meter's company,
        # also where the installation already had several.
        fill_company_from(cls, "meter", "prepaid.meter")
        super()._migrate_company(module)

    @staticmethod
    def default_issued_by():
        return Transaction().user

    @staticmethod
    def default_issued_at():
        return dt.datetime.now()

    @classmethod
    def get_origins(cls):
        return get_origin_selection()

    def get_tid_date(self, name):
        if self.tid is None or not self.base_date:
            return None
        return datetime_from_tid(self.tid, self.base_date).replace(tzinfo=None)

    def get_rec_name(self, name):
        return f"{self.meter.rec_name} {self.description or self.kind} TID {self.tid}"
