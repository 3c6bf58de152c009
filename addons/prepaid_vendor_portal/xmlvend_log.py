"""The XMLVend request log, for disputes: every request the route received
and what it answered, faults and refused authentications included
(docs/xmlvend.md section 6.1).

Written by the route (routes.py) only: in the request's transaction when
the answer is a response (so a sale and its row are committed together, or
neither), after the rollback when it is a fault (the row outlives the
refused sale).  Both bodies are stored redacted (``xmlvend.redact``: no
password, and no API token, which travels in ``authCred`` on a service
terminal) and cut at ``[prepaid_vendor_portal] xmlvend_log_max_body``
bytes.  Append-only (nobody edits a row from a client); a cron deletes the
rows older than ``xmlvend_log_days`` (400 by default).
"""

from __future__ import annotations

import datetime as dt
import time

from trytond import config
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.modules.prepaid_vending.append_only import AppendOnlyMixin
from trytond.pool import PoolMeta
from trytond.transaction import Transaction, without_check_access

from . import xmlvend as x

SECTION = 'prepaid_vendor_portal'
#: The HTTP header carrying the API token of a terminal with operators (in
#: no stored body: redact never sees it).
TOKEN_HEADER = 'X-XMLVend-Token'


def max_body() -> int:
    "Bytes kept of each redacted body: [prepaid_vendor_portal] xmlvend_log_max_body"
    return config.getint(SECTION, 'xmlvend_log_max_body', default=16384)


def retention_days() -> int:
    "Days a row is kept: [prepaid_vendor_portal] xmlvend_log_days"
    return config.getint(SECTION, 'xmlvend_log_days', default=400)


def _stored(body: bytes) -> tuple[str, bool]:
    "(the redacted body as text, cut at max_body, whether it was cut)"
    text = x.redact(body).decode('utf-8', 'replace') if body else ''
    limit = max_body()
    if len(text) > limit:
        return text[:limit], True
    return text, False


class RequestLog(AppendOnlyMixin, ModelSQL, ModelView):
    "XMLVend request log"

    __name__ = 'prepaid.vendor.xmlvend.log'

    company = fields.Many2One(
        'company.company',
        "Company",
        readonly=True,
        ondelete='RESTRICT',
        help="The terminal's utility; empty when no terminal was recognised.",
    )
    received = fields.Timestamp("Received", required=True, readonly=True)
    duration = fields.Integer("Duration (ms)", readonly=True)
    address = fields.Char("Client Address", size=64, readonly=True)
    client_id = fields.Char("Client ID", size=64, readonly=True)
    terminal_code = fields.Char(
        "Terminal ID", size=64, readonly=True, help="As the request gave it."
    )
    terminal = fields.Many2One(
        'prepaid.vendor.terminal',
        "Terminal",
        readonly=True,
        ondelete='RESTRICT',
        help="The terminal the request authenticated as; empty when refused.",
    )
    operator = fields.Many2One(
        'prepaid.vendor.operator', "Operator", readonly=True, ondelete='RESTRICT'
    )
    operation = fields.Char("Operation", size=64, readonly=True)
    msg_id = fields.Char("Message ID", size=64, readonly=True)
    outcome = fields.Selection(
        [('answered', "Answered"), ('fault', "Fault")],
        "Outcome",
        required=True,
        readonly=True,
    )
    fault = fields.Char("Fault", size=64, readonly=True)
    fault_desc = fields.Char("Fault Description", readonly=True)
    status = fields.Integer("HTTP Status", readonly=True)
    request = fields.Text("Request", readonly=True)
    response = fields.Text("Response", readonly=True)
    truncated = fields.Boolean(
        "Truncated", readonly=True, help="A body was longer than the log keeps."
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update(
            {
                Index(t, (t.received, Index.Range())),
                Index(t, (t.terminal, Index.Range()), (t.received, Index.Range())),
                Index(t, (t.msg_id, Index.Equality())),
            }
        )
        cls._order = [('received', 'DESC'), ('id', 'DESC')]

    @classmethod
    def values(
        cls,
        body: bytes,
        exchange: x.Exchange,
        received: dt.datetime,
        started: float,
        address: str,
        terminal=None,
        operator=None,
    ) -> dict:
        "The row of one exchange (the route's clock: started = perf_counter)"
        message = exchange.request
        fault = exchange.fault
        request, cut_request = _stored(body)
        response, cut_response = _stored(exchange.body)
        if isinstance(fault, x.SoapFault):
            fault_name, desc = f'soap:{fault.code}', fault.reason
        elif fault is not None:
            fault_name, desc = fault.wire_type, fault.desc
        else:
            fault_name = desc = None
        return {
            'company': terminal.company.id if terminal else None,
            'received': received.replace(tzinfo=None),
            'duration': round((time.perf_counter() - started) * 1000),
            'address': (address or '')[:64] or None,
            'client_id': message.client_id.key[:64] if message else None,
            'terminal_code': message.terminal_id.key[:64] if message else None,
            'terminal': terminal.id if terminal else None,
            'operator': operator.id if operator else None,
            'operation': exchange.operation,
            'msg_id': message.msg_id.key[:64] if message else None,
            'outcome': 'fault' if fault is not None else 'answered',
            'fault': fault_name,
            'fault_desc': (desc or '')[:1000] or None,
            'status': exchange.status,
            'request': request,
            'response': response,
            'truncated': cut_request or cut_response,
        }

    @classmethod
    def write_row(cls, values: dict) -> None:
        with without_check_access():
            cls.create([values])

    @classmethod
    def purge(cls, days: int | None = None) -> int:
        "Delete the rows older than the retention; the number deleted"
        days = retention_days() if days is None else days
        limit = dt.datetime.now() - dt.timedelta(days=days)
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        # Not through delete(): the rows are append-only for every client;
        # the retention is the one way out.
        cursor.execute(*table.delete(where=table.received < limit))
        return cursor.rowcount

    @classmethod
    def purge_old(cls):
        "The cron's entry point"
        cls.purge()


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            (
                'prepaid.vendor.xmlvend.log|purge_old',
                "Purge the XMLVend Request Log",
            )
        )
