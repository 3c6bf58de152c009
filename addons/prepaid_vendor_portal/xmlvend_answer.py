"""The answers of the XMLVend server, stored: what a retry of a sale and a
last-response advice get back, byte for byte (docs/xmlvend.md section 6).

One row per sale answered (credit vend), and per confirmation, reversal
and batch request answered (``operation`` says which): its idempotency key
(client and msgID), the fingerprint of the request that made it (a reuse
of the msgID for another request is refused), the terminal that asked (and
its operator, on a terminal that requires one),
the sales batch (batch.py) and the response element as the core encodes
it.  Written by the XMLVend backend only, in
the sale's transaction: a refused or rolled-back sale leaves no row, so a
last-response advice then says "no such transaction" and the client may
sell again.  A server table (no views): staff read it through the
dispute tools to come.
"""

from __future__ import annotations

from trytond.model import Index, ModelSQL, Unique, fields
from trytond.modules.prepaid_vending.company import CompanyMixin


class Answer(CompanyMixin, ModelSQL):
    "XMLVend answer kept for retries and last-response advice"

    __name__ = 'prepaid.vendor.xmlvend.answer'
    _company_index = False  # the unique key starts with the company
    _company_links = ('terminal',)

    # <client key>/<dateTime>:<number>: at most 3 + 64 + 1 + 17 + 1 + 20.
    key = fields.Char("Idempotency Key", size=128, required=True, readonly=True)
    fingerprint = fields.Char(
        "Request Fingerprint", size=64, required=True, readonly=True
    )  # SHA-256, hex
    operation = fields.Char("Operation", size=64, required=True, readonly=True)
    terminal = fields.Many2One(
        'prepaid.vendor.terminal',
        "Terminal",
        required=True,
        readonly=True,
        ondelete='RESTRICT',
    )
    vend = fields.Many2One('prepaid.vend', "Vend", readonly=True, ondelete='RESTRICT')
    meter = fields.Many2One(
        'prepaid.meter', "Meter", readonly=True, ondelete='RESTRICT'
    )
    # The operator who signed the request in (a terminal with
    # operator_required); none for a service terminal.
    operator = fields.Many2One(
        'prepaid.vendor.operator', "Operator", readonly=True, ondelete='RESTRICT'
    )
    payload = fields.Binary("Response", required=True, readonly=True)
    # The sales batch a sale was made in (batch.py); advice and batch
    # answers have none.
    batch = fields.Many2One(
        'prepaid.vendor.batch', "Batch", readonly=True, ondelete='RESTRICT'
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'key_unique',
                Unique(t, t.company, t.key),
                'prepaid_vendor_portal.msg_xmlvend_answer_key_unique',
            ),
        ]
        # Reprint reads a meter's latest answers.
        cls._sql_indexes.add(Index(t, (t.meter, Index.Range()), (t.id, Index.Range())))
        cls._sql_indexes.add(Index(t, (t.batch, Index.Range())))
        cls._order.insert(0, ('id', 'DESC'))
