"""HTTPS clients of both services, with client certificates.

:class:`ConcentratorClient` is the head-end calling a concentrator;
:class:`HeadEndClient` is a concentrator calling the head-end (the simulator
uses it). Both keep one HTTP/1.1 connection alive and are safe to share
between threads (calls are serialised). Each checks, after the handshake,
that the server is the one it meant to reach (``peer``: its certificate's
common name or registered fingerprint; a certificate of the same CA with
another name is refused).

What a call raises says what to do with the message:

- :class:`TransportError`: not delivered, or not known to be; send it again
  later (the same ``IdPet``);
- :class:`Refused`: the server, or this client, is not authorised (HTTP
  403, the wrong server, or :class:`RefusedFault`, the SOAP fault
  ``Client.Refused``): keep the message,
  alarm, and send it again once an operator has fixed the registration;
- :class:`Rejected`: an HTTP client error (413 too large, 400...): this
  message will never be taken, sending it again does not help;
- :class:`SoapFault`: the server refused the message (``faultcode``);
- :class:`ValidationError`: the answer does not parse.

A request is re-sent once, on a fresh connection, when an idle kept-alive
connection turns out closed by the peer before any answer, because orders
and requests carry an ``IdPet``, reports their ``ReportId`` and digest,
files their digest: the server recognises them the second time. A
``Gateway`` frame carries no such identity (the meter would see the APDU
twice), so it is never re-sent: the DLMS client above decides.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from . import files, soap
from . import messages as m
from .errors import Refused, Rejected, TransportError, ValidationError
from .tls import ContextSource, Peer, PeerPin, current

DEFAULT_TIMEOUT = 60.0
# Client errors that are about the moment, not the message.
_RETRY_LATER = frozenset({408, 425, 429})


class HttpsClient:
    def __init__(
        self,
        url: str,
        context: ContextSource,
        *,
        peer: PeerPin | str | Iterable[str] | None,
        timeout: float = DEFAULT_TIMEOUT,
        max_response_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        """``peer``: who the server must be (``None``: anyone the CA
        certified, for tests of that refusal only)."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"an https:// URL is needed, not {url!r}")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or 443
        self.path = parts.path or "/"
        self.context = context
        self.peer = PeerPin.of(peer) if peer is not None else None
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._conn: http.client.HTTPSConnection | None = None
        self._conn_context: ssl.SSLContext | None = None
        self._used = False
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPSConnection:
        context = current(self.context)
        if self._conn is not None and self._conn_context is not context:
            self.close_locked()  # a CRL or certificate changed: handshake again
        if self._conn is None:
            conn = http.client.HTTPSConnection(
                self.host, self.port, context=context, timeout=self.timeout
            )
            conn.connect()
            if self.peer is not None:
                der = conn.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
                try:
                    self.peer.check(Peer.from_der(der))
                except Refused as exc:
                    conn.close()
                    raise Refused(f"{self.url}: {exc}") from None
            self._conn, self._conn_context, self._used = conn, context, False
        return self._conn

    def exchange(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        *,
        resend: bool = True,
    ) -> tuple[int, bytes]:
        """One HTTP exchange; ``resend``: the request may reach the server
        twice (see the module's docstring)."""
        with self._lock:
            for attempt in (1, 2):
                reused = False
                try:
                    conn = self._connection()
                    reused = self._used
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read(self.max_response_bytes + 1)
                except (http.client.RemoteDisconnected, BrokenPipeError,
                        ConnectionResetError, ssl.SSLEOFError) as exc:  # fmt: skip
                    self.close_locked()
                    if reused and attempt == 1 and resend:
                        continue  # the peer had closed the idle connection
                    raise TransportError(f"{self.url}: {exc}") from exc
                except TimeoutError as exc:
                    self.close_locked()
                    raise TransportError(f"{self.url}: no answer in time") from exc
                except ssl.SSLError as exc:
                    self.close_locked()
                    raise TransportError(f"{self.url}: TLS refused: {exc}") from exc
                except (OSError, http.client.HTTPException) as exc:
                    self.close_locked()
                    raise TransportError(f"{self.url}: {exc}") from exc
                if len(data) > self.max_response_bytes:
                    self.close_locked()
                    raise ValidationError(
                        f"answer larger than {self.max_response_bytes} bytes", "body"
                    )
                self._used = True
                if response.will_close:
                    self.close_locked()
                return response.status, data
        raise AssertionError("unreachable")

    def close_locked(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()


def _text(data: bytes) -> str:
    return data[:1000].decode("utf-8", "replace").strip()


class _SoapClient(HttpsClient):
    service: soap.Service

    def call(self, message: m.Message) -> m.Message:
        operation = self.service.operation_for(message)
        status, data = self.exchange(
            "POST",
            self.soap_path,
            soap.render(message),
            {"Content-Type": soap.CONTENT_TYPE, "SOAPAction": f'"{operation.action}"'},
            resend=not isinstance(message, m.GatewayRequest),
        )
        if status in (200, 500) and data.lstrip().startswith(b"<"):
            return soap.parse_response(operation, data, self.max_response_bytes)
        if status == 403:
            raise Refused(f"{self.url}: HTTP 403: {_text(data)}")
        if 400 <= status < 500 and status not in _RETRY_LATER:
            raise Rejected(status, _text(data))
        raise TransportError(f"{self.url}: HTTP {status}")

    @property
    def soap_path(self) -> str:
        return self.path


class ConcentratorClient(_SoapClient):
    """The head-end's client of one concentrator (``url`` of its service)."""

    service = soap.CONCENTRATOR

    def request(self, message: m.SyncRequest) -> m.SyncResponse:
        return self.call(message)  # type: ignore[return-value]

    def async_request(self, message: m.AsyncRequest) -> m.Accepted:
        return self.call(message)  # type: ignore[return-value]

    def report_query(self, message: m.ReportQuery) -> m.Accepted:
        return self.call(message)  # type: ignore[return-value]

    def order(self, message: m.Order) -> m.Accepted:
        return self.call(message)  # type: ignore[return-value]

    def gateway(self, frame: bytes) -> m.GatewayResponse:
        return self.call(m.GatewayRequest(frame))  # type: ignore[return-value]


@dataclass(frozen=True)
class UploadResult:
    status: int  # HTTP status
    text: str

    @property
    def stored(self) -> bool:
        """The head-end has the file (new or already had)."""
        return self.status in (200, 201)

    @property
    def held(self) -> bool:
        """Refused until an operator acts at the head-end (403 not
        authorised, 409 a name conflict): keep it and send it again later."""
        return self.status in (403, 409)

    @property
    def refused(self) -> bool:
        """Refused for good (400 malformed, 413 too large...): sending it
        again will not help."""
        return (
            400 <= self.status < 500
            and not self.held
            and (self.status not in _RETRY_LATER)
        )


class HeadEndClient(_SoapClient):
    """A concentrator's client of the head-end (``url`` = the service's base,
    for example ``https://hes.example:8443/dcu``)."""

    service = soap.HEADEND

    @property
    def soap_path(self) -> str:
        return self.path.rstrip("/") + "/soap"

    def report(self, delivery: m.ReportDelivery) -> m.Ack:
        return self.call(delivery)  # type: ignore[return-value]

    def request_status(self, update: m.RequestStatusUpdate) -> m.StatusAck:
        return self.call(update)  # type: ignore[return-value]

    def meters_status(self, update: m.MeterStatusUpdate) -> m.MetersAck:
        return self.call(update)  # type: ignore[return-value]

    def upload(self, name: str, data: bytes) -> UploadResult:
        files.parse_name(name)  # never send a name the head-end would refuse
        path = self.path.rstrip("/") + "/files/" + urllib.parse.quote(name)
        status, body = self.exchange(
            "PUT",
            path,
            data,
            {
                "Content-Type": "application/gzip",
                "Content-Digest": files.content_digest(data),
            },
        )
        if status >= 500 or status in _RETRY_LATER:
            raise TransportError(f"{self.url}: HTTP {status}")
        return UploadResult(status, _text(body))


__all__ = [
    "ConcentratorClient",
    "HeadEndClient",
    "HttpsClient",
    "UploadResult",
]
