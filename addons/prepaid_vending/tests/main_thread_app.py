"""Serve trytond's WSGI app from the test's own thread.

The SQLite test database is in memory, one per thread: a server (HTTP or
TLS) that takes requests in its own threads hands each one to the test's
thread, which runs the app, while the client under test runs in a worker
thread (``MainThreadApp.run``).  Used by the head-end's concentrator
service tests and the vendor portal's XMLVend route tests.
"""

from __future__ import annotations

import io
import queue
import threading


class MainThreadApp:
    """A WSGI application that runs ``target`` in the thread that calls
    ``run``; ``log`` keeps (method, path, body, environ) of each request."""

    def __init__(self, target) -> None:
        self.target = target
        self.calls: queue.Queue = queue.Queue()
        self.log: list[tuple[str, str, bytes, dict]] = []

    def __call__(self, environ, start_response):
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

            body = environ['wsgi.input'].getvalue()
            reply['body'] = b''.join(self.target(environ, start))
            self.log.append(
                (environ['REQUEST_METHOD'], environ['PATH_INFO'], body, environ)
            )
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
