"""A misbehaving meter on a loopback socket, for the head-end's failure tests.

Each behaviour is what a broken modem, a meter with bad firmware or a
hostile device on the meter network does to the head-end:

``silent``
    accepts the connection, reads every request and never answers.
``trickle``
    answers every request with a WRAPPER header announcing a 65535-byte
    APDU, then sends its bytes one at a time every ``interval`` seconds: the
    line is never silent long enough for a per-packet timeout.
``garbage``
    answers with up to ``flood_bytes`` bytes that are no frame at all.
``flood``
    a real association (the simulator's public client), then every GET is
    answered by an endless GET-response-with-datablock stream: each block
    valid and in sequence, never the last, until ``flood_bytes`` were sent
    (``interval`` seconds between blocks, default none).
``half_open``
    accepts, closes its sending side at once (FIN) and reads for ever.
``deaf``
    accepts and never reads: the client's sends pile up in full buffers.

The server runs in a daemon thread with blocking sockets; ``stop()`` (or the
context manager) closes everything.  ``sent`` counts the bytes it sent.
"""

from __future__ import annotations

import socket
import threading
import time

from simulators.meter.association import Meter, Session
from simulators.meter.framing import WrapperDecoder, wrap
from simulators.meter.model import MeterConfig

BEHAVIOURS = ("silent", "trickle", "garbage", "flood", "half_open", "deaf")
FLOOD_BYTES = 50 * 1024 * 1024
BLOCK = 60_000  # bytes of raw data per flood block
SERVER_SAP = 1


class HostileMeter:
    def __init__(
        self,
        behaviour: str,
        interval: float | None = None,
        flood_bytes: int = FLOOD_BYTES,
    ) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.behaviour = behaviour
        # trickle: between bytes (default 0.2 s); flood: between blocks (0).
        self.interval = interval
        self.flood_bytes = flood_bytes
        self.sent = 0
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._clients: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> HostileMeter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def client_gone(self, timeout: float = 5.0) -> bool:
        """Whether every connection ended within ``timeout`` (the head-end
        hung up rather than keep reading)."""
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def __enter__(self) -> HostileMeter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- server ---------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.settimeout(0.1)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            getattr(self, f"_{self.behaviour}")(conn)
        except OSError:
            pass  # the client hung up: what the head-end should do
        finally:
            conn.close()

    def _recv(self, conn: socket.socket) -> bytes | None:
        """Bytes from the client; b'' when it closed, None when nothing yet."""
        try:
            return conn.recv(65536)
        except TimeoutError:
            return None

    def _send(self, conn: socket.socket, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._stop.is_set():
            try:
                n = conn.send(view)
            except TimeoutError:
                continue
            self.sent += n
            view = view[n:]

    def _until_closed(self, conn: socket.socket) -> None:
        while not self._stop.is_set() and self._recv(conn) != b"":
            pass

    def _first_request(self, conn: socket.socket) -> bool:
        while not self._stop.is_set():
            data = self._recv(conn)
            if data == b"":
                return False
            if data:
                return True
        return False

    def _silent(self, conn: socket.socket) -> None:
        self._until_closed(conn)

    def _half_open(self, conn: socket.socket) -> None:
        conn.shutdown(socket.SHUT_WR)
        self._until_closed(conn)

    def _deaf(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self._stop.wait()

    def _trickle(self, conn: socket.socket) -> None:
        if not self._first_request(conn):
            return
        self._send(conn, wrap(SERVER_SAP, 16, b"")[:6] + b"\xff\xff")
        while not self._stop.is_set():
            self._send(conn, b"\x00")
            if self._stop.wait(0.2 if self.interval is None else self.interval):
                return

    def _garbage(self, conn: socket.socket) -> None:
        if not self._first_request(conn):
            return
        chunk = b"\x55" * 65536
        while self.sent < self.flood_bytes and not self._stop.is_set():
            self._send(conn, chunk)

    def _flood(self, conn: socket.socket) -> None:
        decoder = WrapperDecoder()
        meter = Meter(MeterConfig())
        sessions: dict[int, Session] = {}
        block = 0
        payload = b"\x00\x82" + BLOCK.to_bytes(2, "big") + b"\x11" * BLOCK
        while not self._stop.is_set() and self.sent < self.flood_bytes:
            data = self._recv(conn)
            if data == b"":
                return
            for frame in decoder.feed(data or b""):
                apdu = frame.apdu
                client = frame.source
                if apdu[0] == 0xC0:  # GET request (normal or next block)
                    block += 1
                    if self.interval and self._stop.wait(self.interval):
                        return
                    invoke = apdu[2]
                    reply = (
                        bytes([0xC4, 0x02, invoke, 0x00])
                        + block.to_bytes(4, "big")
                        + payload
                    )
                else:  # AARQ, RLRQ: a real association
                    session = sessions.setdefault(client, Session(meter, client))
                    reply = session.handle(apdu)
                self._send(conn, wrap(SERVER_SAP, client, reply))
