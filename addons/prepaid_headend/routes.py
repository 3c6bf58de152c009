"""The head-end's concentrator service as trytond routes.

``/<database>/concentrator/soap`` (POST: SOAP; GET ``?wsdl``/``?xsd``) and
``/<database>/concentrator/files/<name>`` (PUT: a report file) serve
``concentrator.wsgi.HeadEndApp`` with :class:`dcu_backend.TrytonHeadEnd`,
one transaction per call (as root: a concentrator is no Tryton user; the
certificate is its login, checked by ``authorise``).

TLS is terminated in front of trytond (docs/concentrators.md section 9,
nginx): the verified client certificate, PEM, reaches the route in the
environ key named by ``[prepaid_headend] client_cert`` in trytond.conf,
``SSL_CLIENT_CERT`` by default (a TLS-terminating WSGI server's variable),
``HTTP_X_SSL_CLIENT_CERT`` for the header nginx sets (URL-escaped PEM,
``$ssl_client_escaped_cert``). A header is only as trustworthy as the proxy
that sets it: trytond must then be reachable through that proxy only.
"""

from __future__ import annotations

import urllib.parse

import trytond.config as config
from trytond import backend
from trytond.protocols.wrappers import (
    Response,
    set_max_request_size,
    with_pool,
    with_transaction,
)
from trytond.transaction import Transaction
from trytond.wsgi import app

from .concentrator import files
from .concentrator.wsgi import CERT_KEY, HeadEndApp
from .dcu_backend import TrytonHeadEnd

PREFIX = 'concentrator'


def client_cert_key() -> str:
    return config.get('prepaid_headend', 'client_cert', default=CERT_KEY)


def _environ(request) -> dict:
    "The request's environ with the proxy's certificate under CERT_KEY"
    environ = dict(request.environ)
    key = client_cert_key()
    value = environ.pop(key, None) if key != CERT_KEY else environ.get(key)
    if key != CERT_KEY:
        environ.pop(CERT_KEY, None)
    if value and '%' in value:  # nginx's escaped PEM (a PEM has no '%')
        value = urllib.parse.unquote(value)
    if value:
        environ[CERT_KEY] = value
    return environ


def _serve(request, pool):
    head_end = TrytonHeadEnd()
    application = HeadEndApp(head_end, prefix=f'/{pool.database_name}/{PREFIX}')
    reply: dict = {}

    def start_response(status, headers, exc_info=None):
        reply['status'], reply['headers'] = status, headers

    environ = _environ(request)
    # werkzeug's request is not read: the application reads the body
    # itself, within its own limits.
    body = b''.join(application(environ, start_response))
    if head_end.error is not None:
        # HeadEndApp answered a fault; nothing of this call is kept, and a
        # serialisation failure goes back to trytond's retry loop.
        Transaction().rollback()
        if isinstance(head_end.error, backend.DatabaseOperationalError):
            raise head_end.error
    return Response(body, status=reply['status'], headers=reply['headers'])


@app.route(f'/<database_name>/{PREFIX}/soap', methods=['GET', 'POST'])
@set_max_request_size(16 * 1024 * 1024)
@with_pool
@with_transaction()
def concentrator_soap(request, pool):
    return _serve(request, pool)


@app.route(f'/<database_name>/{PREFIX}/files/<name>', methods=['PUT'])
@set_max_request_size(files.MAX_COMPRESSED)
@with_pool
@with_transaction()
def concentrator_file(request, pool, name):
    return _serve(request, pool)
