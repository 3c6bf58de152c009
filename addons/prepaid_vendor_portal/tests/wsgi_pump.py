"""trytond's WSGI app on a real HTTP server on 127.0.0.1, for clients that
need a URL (zeep fetches the WSDL, then posts to the address in it); the
app runs in the test's thread (main_thread_app.py says why), the client
in a worker thread (``Pump.run``)."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

from trytond.modules.prepaid_vending.tests.main_thread_app import MainThreadApp


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Pump(MainThreadApp):
    def __init__(self, app) -> None:
        super().__init__(app)
        self.httpd = make_server('127.0.0.1', 0, self, handler_class=_Quiet)
        self.base = f'http://127.0.0.1:{self.httpd.server_port}'
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Pump:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)
