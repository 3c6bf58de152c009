"""trytond's WSGI app on a real HTTP server on 127.0.0.1, for clients that
need a URL (zeep fetches the WSDL, then posts to the address in it).

The SQLite test database is in memory, one per thread: the server's thread
hands each request to the test's thread, which runs the app while the
client runs in a worker thread (``Pump.run``).
"""

from __future__ import annotations

import io
import queue
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Pump:
    def __init__(self, app) -> None:
        self.app = app
        self.calls: queue.Queue = queue.Queue()
        self.httpd = make_server('127.0.0.1', 0, self._handoff, handler_class=_Quiet)
        self.base = f'http://127.0.0.1:{self.httpd.server_port}'
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Pump:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def _handoff(self, environ, start_response):
        size = int(environ.get('CONTENT_LENGTH') or 0)
        body = environ['wsgi.input'].read(size) if size else b''
        environ = dict(environ, **{'wsgi.input': io.BytesIO(body)})
        reply: dict = {}
        done = threading.Event()
        self.calls.put((environ, reply, done))
        if not done.wait(60):
            raise TimeoutError('the test thread did not answer')
        start_response(reply['status'], reply['headers'])
        return [reply['body']]

    def _answer(self, environ, reply, done) -> None:
        try:

            def start(status, headers, exc_info=None):
                reply['status'], reply['headers'] = status, headers

            reply['body'] = b''.join(self.app(environ, start))
        finally:
            done.set()

    def run(self, fn):
        "fn() in a worker thread, answering its requests here; its result"
        result: dict = {}

        def work():
            try:
                result['value'] = fn()
            except BaseException as exc:  # re-raised in the test's thread
                result['error'] = exc

        worker = threading.Thread(target=work)
        worker.start()
        while worker.is_alive() or not self.calls.empty():
            try:
                self._answer(*self.calls.get(timeout=0.05))
            except queue.Empty:
                pass
        worker.join()
        if 'error' in result:
            raise result['error']
        return result.get('value')
