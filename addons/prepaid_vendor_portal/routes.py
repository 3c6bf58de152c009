"""The XMLVend 2.1 server as a trytond route: ``POST /<database>/xmlvend``
(SOAP 1.1 or 1.2, dispatched on the Body by the core) and ``GET
/<database>/xmlvend?wsdl`` (the WSDL naming the URL it was fetched from).

One transaction per request, as root: a vending client is no Tryton user,
its terminal's API token is its login (xmlvend_backend.py).  A fault rolls
the transaction back, so a refused sale writes nothing; a serialisation
failure goes back to trytond's retry loop.

Every exchange is logged (``prepaid.vendor.xmlvend.log``, redacted): with
the sale in its transaction when answered, after the rollback when
faulted, together with the failed operator log-in the fault must not
forget (the lock-out count).

Configuration (trytond.conf, section ``[prepaid_vendor_portal]``):

- ``xmlvend_server_ean``: the utility's EAN, the ``serverID`` of every
  answer (without it: a ``GenericDeviceID`` with the database name);
- ``client_cert_sha256``: the environ key where the TLS-terminating proxy
  puts the client certificate's SHA-256 fingerprint (for terminals that
  require one), ``SSL_CLIENT_CERT_SHA256`` by default.
"""

from __future__ import annotations

import datetime as dt
import time

import trytond.config as config
from trytond import backend
from trytond.protocols.wrappers import (
    Response,
    set_max_request_size,
    with_pool,
    with_transaction,
)
from trytond.transaction import Transaction, TransactionError
from trytond.wsgi import app

from . import xmlvend as x
from .xmlvend_backend import TrytonXMLVend
from .xmlvend_log import TOKEN_HEADER

SECTION = 'prepaid_vendor_portal'
LIMITS = x.REQUEST_LIMITS
#: What werkzeug accepts at all; the core refuses above LIMITS.max_body with
#: a SOAP fault (only max_body + 1 bytes are read).
MAX_REQUEST = 1024 * 1024
_BODY = 'prepaid_vendor_portal.xmlvend_body'


def server_id(database: str) -> x.DeviceID:
    ean = config.get(SECTION, 'xmlvend_server_ean', default=None)
    return x.EANDeviceID(ean=ean) if ean else x.GenericDeviceID(id=database)


def _body(request) -> bytes:
    """At most max_body + 1 bytes of the request, read once (trytond runs
    the route again on a retry, the stream is read by then)"""
    if _BODY not in request.environ:
        request.environ[_BODY] = request.stream.read(LIMITS.max_body + 1)
    return request.environ[_BODY]


@app.route('/<database_name>/xmlvend', methods=['GET', 'POST'])
@set_max_request_size(MAX_REQUEST)
@with_pool
@with_transaction()
def xmlvend(request, pool):
    if request.method == 'GET':
        if 'wsdl' not in request.args:
            return Response('GET ?wsdl for the service description\n', status=404)
        url = request.base_url
        return Response(x.wsdl_document(url), content_type='text/xml; charset=utf-8')
    fingerprint_key = config.get(
        SECTION, 'client_cert_sha256', default='SSL_CLIENT_CERT_SHA256'
    )
    received, started = dt.datetime.now(dt.UTC), time.perf_counter()
    service = TrytonXMLVend(
        server_id(pool.database_name),
        request.remote_addr or '',
        request.environ.get(fingerprint_key),
        token=request.headers.get(TOKEN_HEADER) or None,
    )
    body = _body(request)
    exchange = x.process(
        body,
        request.headers.get('Content-Type'),
        request.headers.get('SOAPAction'),
        service,
        limits=LIMITS,
    )
    if exchange.fault is not None:
        # Nothing of a refused request is kept (a vend made before the
        # float refused it included).
        Transaction().rollback()
        if isinstance(
            service.error, (backend.DatabaseOperationalError, TransactionError)
        ):
            # trytond runs the request again: that run writes its log.
            raise service.error
        # Written after the rollback, committed by with_transaction: what
        # the fault must not undo.
        if service.failed_operator is not None:
            pool.get('prepaid.vendor.operator').count_failure([service.failed_operator])
    Log = pool.get('prepaid.vendor.xmlvend.log')
    Log.write_row(
        Log.values(
            body,
            exchange,
            received,
            started,
            request.remote_addr or '',
            # Committed records: a fault's rollback leaves them.
            terminal=service.terminal,
            operator=service.operator,
        )
    )
    return Response(
        exchange.body, status=exchange.status, content_type=exchange.content_type
    )
