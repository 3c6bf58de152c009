"""WSGI side of both services.

:class:`SoapApp` serves one :class:`soap.Service` (parse, check, dispatch,
render; faults name what is wrong; internal errors say nothing of the
internals). :class:`HeadEndApp` is the head-end's service that concentrators
call: SOAP operations plus the report-file uploads, with the rule that a
concentrator speaks only for itself (the certificate's common name is the
concentrator's id) and a :class:`HeadEndBackend` that the Tryton layer
implements (the trytond route wraps this application).

Routes of :class:`HeadEndApp` (under its ``prefix``, default ``/dcu``):

- ``POST {prefix}/soap``: SOAP 1.1 (``?wsdl`` with GET gives the WSDL);
- ``PUT {prefix}/files/{name}``: a report file, gzip, with an optional
  RFC 9530 ``Content-Digest``; 201 stored, 200 already had it (same
  SHA-256), 400 malformed, 403 not authorised, 413 too big.

Refusals for want of authorisation (no certificate, another concentrator's,
an unknown concentrator, a certificate not the registered one) are the SOAP
fault ``soap:Client.Refused`` or HTTP 403, recorded as ``identity``
rejections: the concentrator keeps what it sent and tries again, so nothing
is lost while an operator registers it. Every other refusal is about the
message itself and final.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from . import files, reports, soap, xmlsafe
from . import messages as m
from .errors import Refused, TooLarge, ValidationError
from .tls import Peer

log = logging.getLogger(__name__)

StartResponse = Callable[..., object]
CERT_KEY = "SSL_CLIENT_CERT"
_XML = [("Content-Type", soap.CONTENT_TYPE)]
_TEXT = [("Content-Type", "text/plain; charset=utf-8")]


def peer_from_environ(environ: dict, key: str = CERT_KEY) -> Peer | None:
    pem = environ.get(key)
    if not pem:
        return None
    try:
        return Peer.from_pem(pem)
    except (ValueError, TypeError):
        return None


def _read_body(environ: dict, limit: int) -> bytes:
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ValidationError("bad Content-Length", "Content-Length") from None
    if size > limit:
        raise TooLarge(f"body of {size} bytes exceeds the {limit} limit")
    data = environ["wsgi.input"].read(size) if size else b""
    if len(data) != size:
        raise ValidationError("body shorter than its Content-Length", "body")
    return data


def _respond(start: StartResponse, status: str, body: bytes, headers=None):
    start(status, list(headers or _XML))
    return [body]


Handler = Callable[[m.Message, Peer | None], m.Message]


class SoapApp:
    """One SOAP service over WSGI: ``handler(request, peer) -> response``."""

    def __init__(
        self,
        service: soap.Service,
        handler: Handler,
        *,
        max_bytes: int = xmlsafe.DEFAULT_MAX_BYTES,
        cert_key: str = CERT_KEY,
    ) -> None:
        self.service = service
        self.handler = handler
        self.max_bytes = max_bytes
        self.cert_key = cert_key

    def __call__(self, environ: dict, start: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method == "GET":
            return self.describe(environ, start)
        if method != "POST":
            return _respond(start, "405 Method Not Allowed", b"POST only\n", _TEXT)
        return self.soap(environ, start)

    def describe(self, environ: dict, start: StartResponse) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING", "")
        name = {"wsdl": self.service.wsdl, "xsd": soap.XSD}.get(query)
        if name is None:
            return _respond(start, "404 Not Found", b"?wsdl or ?xsd\n", _TEXT)
        return _respond(start, "200 OK", (xmlsafe.SCHEMA_DIR / name).read_bytes())

    def soap(self, environ: dict, start: StartResponse) -> Iterable[bytes]:
        peer = peer_from_environ(environ, self.cert_key)
        try:
            data = _read_body(environ, self.max_bytes)
            request = soap.parse_request(self.service, data, self.max_bytes)
        except TooLarge as exc:
            self.refused(peer, "soap", str(exc), None)
            return _respond(start, "413 Content Too Large", str(exc).encode(), _TEXT)
        except ValidationError as exc:
            self.refused(peer, "soap", exc.message, exc.field)
            fault = soap.render_fault(exc.message, client=True, field=exc.field)
            return _respond(start, "500 Internal Server Error", fault)
        try:
            response = soap.render(self.handler(request, peer))
        except Refused as exc:
            self.refused(peer, "identity", str(exc), None)
            fault = soap.render_fault(f"refused: {exc}", refused=True)
            return _respond(start, "500 Internal Server Error", fault)
        except Exception:
            log.exception("%s service: %s failed", self.service.name, type(request))
            fault = soap.render_fault("internal error", client=False)
            return _respond(start, "500 Internal Server Error", fault)
        return _respond(start, "200 OK", response)

    def refused(
        self, peer: Peer | None, what: str, reason: str, field: str | None
    ) -> None:
        """Called for every refused input (the head-end alarms and audits)."""
        log.warning(
            "%s service refused %s from %s: %s",
            self.service.name,
            what,
            peer.common_name if peer else "?",
            reason,
        )


# -- the head-end's service --------------------------------------------------
@dataclass(frozen=True)
class ReportFile:
    """A report file received: the bytes as uploaded (kept for audit), their
    SHA-256 (the ingestion key) and the parsed report."""

    name: files.FileName
    raw: bytes
    sha256: str
    report: reports.Report


@dataclass(frozen=True)
class Rejection:
    """Input refused by the head-end's service (for the audit trail and the
    alarm list): who sent it, what it was, why, and the bytes received."""

    dc_id: str | None
    peer: Peer | None
    what: str  # "identity" (not authorised) | "soap" | "report" | "file"
    reason: str
    field: str | None = None
    name: str | None = None
    raw: bytes = b""


class HeadEndBackend(Protocol):
    """What the head-end must implement behind :class:`HeadEndApp`.

    Every method receives validated, typed input and the verified peer; the
    identity rule (a concentrator speaks only for itself) is already checked.
    Implementations must be idempotent: the same report (``dc_id``,
    ``report_id`` and the payload's ``sha256``: a restarted concentrator
    numbers from 1 again), the same file (``sha256``, whatever its name) and
    the same readings (meter, quantity, time) delivered again change nothing.
    """

    def authorise(self, dc_id: str, peer: Peer) -> None:
        """Raise :class:`Refused` if ``peer`` may not speak for ``dc_id``
        (unknown concentrator, certificate not the registered one)."""

    def report(self, delivery: m.ReportDelivery, report: reports.Report) -> m.AckResult:
        """Store a pushed report: ACCEPTED, or DUPLICATE when the same
        (``dc_id``, ``report_id``, ``sha256``) was had. The same id with
        another digest is another report: stored, never a duplicate."""

    def report_file(self, upload: ReportFile) -> m.AckResult:
        """Store a report file once per ``sha256``: ACCEPTED or DUPLICATE.
        A name seen before with other content is another file (a clock set
        back, a restarted concentrator): stored too."""

    def request_status(self, update: m.RequestStatusUpdate) -> None: ...

    def meters_status(self, update: m.MeterStatusUpdate) -> Iterable[m.MeterDecision]:
        """Record joins, losses and removals; answer a decision per joined
        meter (approved with its directory entry, pending, refused). Items
        can arrive out of order (a delivery overtaken by the next): a
        meter's status is its item with the latest ``time``; an older one
        arriving later only adds to the history."""

    def rejected(self, rejection: Rejection) -> None:
        """Keep refused input for audit and raise an alarm."""


class HeadEndApp:
    def __init__(
        self,
        backend: HeadEndBackend,
        *,
        prefix: str = "/dcu",
        max_soap_bytes: int = 16 * 1024 * 1024,
        max_file_bytes: int = files.MAX_COMPRESSED,
        max_inflated: int = files.MAX_INFLATED,
        cert_key: str = CERT_KEY,
    ) -> None:
        self.backend = backend
        self.prefix = prefix.rstrip("/")
        self.max_file_bytes = max_file_bytes
        self.max_inflated = max_inflated
        self.cert_key = cert_key
        self.soap_app = SoapApp(
            soap.HEADEND, self.dispatch, max_bytes=max_soap_bytes, cert_key=cert_key
        )
        self.soap_app.refused = self._soap_refused  # type: ignore[method-assign]

    def __call__(self, environ: dict, start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == f"{self.prefix}/soap":
            return self.soap_app(environ, start)
        if path.startswith(f"{self.prefix}/files/"):
            if environ["REQUEST_METHOD"] != "PUT":
                return _respond(start, "405 Method Not Allowed", b"PUT only\n", _TEXT)
            return self.upload(environ, start, path[len(self.prefix) + 7 :])
        return _respond(start, "404 Not Found", b"not found\n", _TEXT)

    # -- identity ------------------------------------------------------------
    def _identify(self, peer: Peer | None, dc_id: str) -> None:
        if peer is None:
            raise Refused("no client certificate")
        if peer.common_name != dc_id:
            raise Refused(
                f"certificate of {peer.common_name!r} used to speak for {dc_id!r}"
            )
        self.backend.authorise(dc_id, peer)

    def _soap_refused(self, peer, what, reason, field) -> None:
        self.backend.rejected(
            Rejection(peer.common_name if peer else None, peer, what, reason, field)
        )

    # -- SOAP operations -----------------------------------------------------
    def dispatch(self, request: m.Message, peer: Peer | None) -> m.Message:
        self._identify(peer, request.dc_id)  # type: ignore[attr-defined]
        if isinstance(request, m.ReportDelivery):
            return self._report(request, peer)
        if isinstance(request, m.RequestStatusUpdate):
            self.backend.request_status(request)
            return m.StatusAck(m.AckResult.ACCEPTED)
        if isinstance(request, m.MeterStatusUpdate):
            decisions = tuple(self.backend.meters_status(request))
            return m.MetersAck(m.AckResult.ACCEPTED, decisions=decisions)
        raise TypeError(type(request).__name__)

    def _report(self, delivery: m.ReportDelivery, peer: Peer | None) -> m.Message:
        try:
            report = reports.parse(delivery.payload, expected_type=delivery.report_type)
            _consistent(report, delivery.dc_id, delivery.id_pet, delivery.version)
        except ValidationError as exc:
            self.backend.rejected(
                Rejection(
                    delivery.dc_id,
                    peer,
                    "report",
                    exc.message,
                    exc.field,
                    f"report {delivery.report_id}",
                    delivery.payload.encode("utf-8"),
                )
            )
            return m.Ack(m.AckResult.MALFORMED, _short(str(exc)))
        return m.Ack(self.backend.report(delivery, report))

    # -- report files --------------------------------------------------------
    def upload(self, environ: dict, start: StartResponse, name: str):
        peer = peer_from_environ(environ, self.cert_key)
        dc_id = None
        raw = b""
        try:
            file_name = files.parse_name(name)
            dc_id = file_name.dc_id
            self._identify(peer, dc_id)
            raw = _read_body(environ, self.max_file_bytes)
            files.check_digest(environ.get("HTTP_CONTENT_DIGEST"), raw)
            payload = files.unpack(raw, self.max_inflated)
            report = reports.parse(
                payload,
                max_bytes=self.max_inflated,
                expected_type=file_name.report_type,
            )
            _consistent(report, dc_id, file_name.id_pet, report.version)
            result = self.backend.report_file(
                ReportFile(file_name, raw, files.sha256(raw), report)
            )
        except Refused as exc:
            self.backend.rejected(
                Rejection(dc_id, peer, "identity", str(exc), None, name)
            )
            return _respond(start, "403 Forbidden", f"{exc}\n".encode(), _TEXT)
        except TooLarge as exc:
            self.backend.rejected(Rejection(dc_id, peer, "file", str(exc), None, name))
            return _respond(start, "413 Content Too Large", f"{exc}\n".encode(), _TEXT)
        except ValidationError as exc:
            self.backend.rejected(
                Rejection(dc_id, peer, "file", exc.message, exc.field, name, raw)
            )
            return _respond(start, "400 Bad Request", f"{exc}\n".encode(), _TEXT)
        if result is m.AckResult.DUPLICATE:
            return _respond(start, "200 OK", b"duplicate\n", _TEXT)
        return _respond(start, "201 Created", b"stored\n", _TEXT)


def _consistent(report: reports.Report, dc_id: str, id_pet: int, version: str) -> None:
    if report.dc_id != dc_id:
        raise ValidationError(f"payload of {report.dc_id!r} sent by {dc_id!r}", "dc")
    if report.id_pet != id_pet:
        raise ValidationError(
            f"payload answers request {report.id_pet}, not {id_pet}", "idPet"
        )
    if report.version != version:
        raise ValidationError(
            f"payload version {report.version} announced as {version}", "version"
        )


def _short(text: str, limit: int = 1000) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
