"""HTTPS clients of both services, with client certificates.

:class:`ConcentratorClient` is the head-end calling a concentrator;
:class:`HeadEndClient` is a concentrator calling the head-end (the simulator
uses it). Both keep one HTTP/1.1 connection alive and are safe to share
between threads (calls are serialised). Network failures raise
:class:`TransportError` (retry later); SOAP faults raise :class:`SoapFault`;
a reply that does not parse raises :class:`ValidationError`.

A request is re-sent once, on a fresh connection, only when an idle kept-alive
connection turns out closed by the peer before any answer: every message can
safely arrive twice (orders and requests carry ``IdPet``, reports their
``ReportId``, files their digest).
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse
from dataclasses import dataclass

from . import files, soap
from . import messages as m
from .errors import TransportError, ValidationError

DEFAULT_TIMEOUT = 60.0


class HttpsClient:
    def __init__(
        self,
        url: str,
        context: ssl.SSLContext,
        timeout: float = DEFAULT_TIMEOUT,
        max_response_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"an https:// URL is needed, not {url!r}")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or 443
        self.path = parts.path or "/"
        self.context = context
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._conn: http.client.HTTPSConnection | None = None
        self._used = False
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPSConnection:
        if self._conn is None:
            self._conn = http.client.HTTPSConnection(
                self.host, self.port, context=self.context, timeout=self.timeout
            )
            self._used = False
        return self._conn

    def exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                reused = self._used
                try:
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read(self.max_response_bytes + 1)
                except (http.client.RemoteDisconnected, BrokenPipeError,
                        ConnectionResetError, ssl.SSLEOFError) as exc:  # fmt: skip
                    self.close_locked()
                    if reused and attempt == 1:
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


class _SoapClient(HttpsClient):
    service: soap.Service

    def call(self, message: m.Message) -> m.Message:
        operation = self.service.operation_for(message)
        status, data = self.exchange(
            "POST",
            self.soap_path,
            soap.render(message),
            {"Content-Type": soap.CONTENT_TYPE, "SOAPAction": f'"{operation.action}"'},
        )
        if status not in (200, 500) or not data.lstrip().startswith(b"<"):
            raise TransportError(f"{self.url}: HTTP {status}")
        return soap.parse_response(operation, data, self.max_response_bytes)

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
    def refused(self) -> bool:
        """Refused for good: sending it again will not help."""
        return self.status in (400, 403, 409, 413)


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
        if status >= 500:
            raise TransportError(f"{self.url}: HTTP {status}")
        return UploadResult(status, body[:1000].decode("utf-8", "replace").strip())


__all__ = [
    "ConcentratorClient",
    "HeadEndClient",
    "HttpsClient",
    "UploadResult",
]
