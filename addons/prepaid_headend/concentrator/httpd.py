"""A small threaded HTTPS server for WSGI applications, for tests and the
concentrator simulator (in production the head-end's service is a trytond
route behind the utility's TLS terminator).

One acceptor thread serves any number of listening sockets (the simulator
runs a hundred concentrators on as many ports); each connection gets its own
thread, does the TLS handshake there (a slow client never blocks the
acceptor) and then HTTP/1.1 with keep-alive. The verified client
certificate reaches the application as ``SSL_CLIENT_CERT`` (PEM), as
Apache's mod_ssl exports it. A handshake that fails (unknown CA, revoked
certificate, no certificate) is reported to ``on_tls_error`` so that it can
be alarmed. A listener's context may be a callable that gives the current
one (``tls.Reloading``): each connection takes it, and a request on a
connection whose handshake used an older context is not answered (the
connection closes, the client handshakes again), so a CRL re-published
refuses a certificate revoked since from its next request on. An
application that fails answers 500, never a closed connection.
"""

from __future__ import annotations

import contextlib
import io
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any

from .tls import ContextSource, current

log = logging.getLogger(__name__)

TlsErrorHandler = Callable[[str, str, str], None]  # listener, peer address, reason
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 30.0
# A body the application refused unread is read and dropped up to this size
# so the answer reaches the client (closing a socket with unread input sends
# a reset that can overtake the answer); beyond it the connection is closed.
DRAIN_LIMIT = 64 * 1024 * 1024
STOP_WAIT = 5.0  # stop() waits that long for the connections' threads


class Listener:
    """One listening socket with its application and TLS context."""

    def __init__(self, app: Callable, context: ContextSource, sock, name: str):
        self.app = app
        self.context = context
        self.sock = sock
        self.name = name
        self.offline = False  # refuse every connection (a concentrator offline)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "prepaid-dcu"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    listener: Listener
    peer_pem: str | None
    tls_context: ssl.SSLContext  # the context of this connection's handshake

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # requests are logged by the applications, not on stderr

    def do_GET(self) -> None:  # noqa: N802
        self._wsgi()

    do_POST = do_PUT = do_GET  # noqa: N815

    def _wsgi(self) -> None:
        if current(self.listener.context) is not self.tls_context:
            # A CRL (or certificate) changed since this connection's
            # handshake: no answer on it, the client reconnects and the new
            # handshake decides (a kept-alive connection of a certificate
            # revoked since ends here).
            self.close_connection = True
            return
        method = self.command
        length = self.headers.get("Content-Length")
        if method in ("POST", "PUT") and length is None:
            self.send_error(411, "Content-Length required")
            return
        try:
            size = int(length or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return
        body = _Body(self.rfile, size)
        path, _, query = self.path.partition("?")
        environ = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(size),
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.listener.port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https",
            "wsgi.input": body,
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if self.peer_pem:
            environ["SSL_CLIENT_CERT"] = self.peer_pem
        for key, value in self.headers.items():
            name = "HTTP_" + key.upper().replace("-", "_")
            if name not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[name] = value
        reply: dict[str, Any] = {}

        def start_response(status: str, headers: list, exc_info=None):
            reply["status"], reply["headers"] = status, headers

        try:
            chunks: Iterable[bytes] = self.listener.app(environ, start_response)
            try:
                data = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close:
                    close()
            if "status" not in reply:
                raise RuntimeError("the application started no response")
        except Exception:
            log.exception("%s: %s %s failed", self.listener.name, method, path)
            reply = {
                "status": "500 Internal Server Error",
                "headers": [("Content-Type", "text/plain; charset=utf-8")],
            }
            data = b"internal error\n"
        code, _, reason = reply["status"].partition(" ")
        self.send_response(int(code), reason)
        for key, value in reply["headers"]:
            if key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        if body.remaining > DRAIN_LIMIT:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)
        while body.remaining and not self.close_connection:
            if not body.read(min(body.remaining, 1 << 20)):
                break


class _Body(io.RawIOBase):
    """``wsgi.input``: at most Content-Length bytes of the request."""

    def __init__(self, raw, size: int) -> None:
        self.raw = raw
        self.remaining = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self.remaining:
            n = self.remaining
        data = self.raw.read(n) if n else b""
        self.remaining -= len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class HttpsWsgiServer:
    def __init__(
        self,
        on_tls_error: TlsErrorHandler | None = None,
        max_connections: int = 512,
    ) -> None:
        self.on_tls_error = on_tls_error
        self.listeners: list[Listener] = []
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._slots = threading.BoundedSemaphore(max_connections)
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False

    def listen(
        self,
        app: Callable,
        context: ContextSource,
        port: int = 0,
        host: str = "127.0.0.1",
        name: str = "",
    ) -> Listener:
        sock = socket.create_server((host, port), backlog=64)
        sock.setblocking(False)
        listener = Listener(app, context, sock, name or f"{host}:{port}")
        with self._lock:
            self.listeners.append(listener)
            self._selector.register(sock, selectors.EVENT_READ, listener)
        return listener

    def start(self) -> HttpsWsgiServer:
        self._running = True
        self._thread = threading.Thread(
            target=self._accept_loop, name="https-accept", daemon=True
        )
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        while self._running:
            for key, _ in self._selector.select(timeout=1.0):
                listener = key.data
                if listener is None:
                    self._wake_r.recv(64)
                    continue
                try:
                    conn, addr = listener.sock.accept()
                except (BlockingIOError, OSError):
                    continue
                if listener.offline or not self._slots.acquire(blocking=False):
                    conn.close()
                    continue
                thread = threading.Thread(
                    target=self._serve,
                    args=(listener, conn, addr),
                    name=f"https-{listener.name}",
                    daemon=True,
                )
                with self._lock:
                    self._threads.add(thread)
                thread.start()

    def _serve(self, listener: Listener, conn: socket.socket, addr) -> None:
        with self._lock:
            self._connections.add(conn)
        try:
            conn.setblocking(True)
            conn.settimeout(HANDSHAKE_TIMEOUT)
            try:
                context = current(listener.context)
                tls = context.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                if self.on_tls_error is not None:
                    reason = getattr(exc, "verify_message", None) or str(exc)
                    self.on_tls_error(listener.name, f"{addr[0]}:{addr[1]}", reason)
                return
            with self._lock:
                self._connections.discard(conn)
                self._connections.add(tls)
            conn = tls
            der = tls.getpeercert(binary_form=True)
            handler = type(
                "Handler",
                (_Handler,),
                {
                    "listener": listener,
                    "peer_pem": ssl.DER_cert_to_PEM_cert(der) if der else None,
                    "tls_context": context,
                },
            )
            with contextlib.suppress(OSError, ssl.SSLError, ValueError):
                handler(tls, addr, self)
        finally:
            with self._lock:
                self._connections.discard(conn)
                self._threads.discard(threading.current_thread())
            with contextlib.suppress(OSError):
                conn.close()
            self._slots.release()

    def drop_connections(self, listener: Listener) -> None:
        """Cut the open connections of ``listener`` (an outage)."""
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                if conn.getsockname()[1] == listener.port:
                    conn.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._running = False
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            for listener in self.listeners:
                with contextlib.suppress(Exception):
                    self._selector.unregister(listener.sock)
                listener.sock.close()
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with self._lock:
            threads = list(self._threads)
        deadline = time.monotonic() + STOP_WAIT
        for thread in threads:  # they end once their socket is shut
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> HttpsWsgiServer:
        return self if self._thread else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
