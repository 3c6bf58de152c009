"""TLS contexts with client certificates on both sides, revocation, and the
check of who answered.

Both services run over HTTPS with mutual authentication: the concentrator
presents its certificate to the head-end and the head-end its own to the
concentrator. A certificate from another CA fails the handshake, and so does
a revoked one: the CA's CRL is a required argument (``None`` is the explicit
opt-out, for a CA that publishes none). OpenSSL checks the leaf against the
CRL of its issuer and refuses every certificate once that CRL is past its
next update: a stale CRL cannot say what was revoked since, so the CA must
publish a new one in time (:func:`crl_next_update` tells when).

A CA's certificates all look alike to TLS: any of them passes the handshake
whatever name it carries, so a client also checks the certificate of the
server it reached against a :class:`PeerPin` (its common name, or the
SHA-256 fingerprint registered for it). :class:`Reloading` rebuilds a context
when its files change (a CRL re-published, a certificate renewed), so a
revocation takes effect without restarting anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import secrets
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from os import PathLike

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from .errors import Refused

log = logging.getLogger(__name__)

Path = str | PathLike[str]
# A context, or a callable that gives the current one (:class:`Reloading`).
ContextSource = ssl.SSLContext | Callable[[], ssl.SSLContext]
CRL_WARNING = dt.timedelta(days=7)  # warn that long before a CRL expires


def crl_next_update(crl: Path) -> dt.datetime | None:
    """When the CRL in file ``crl`` (PEM or DER) stops being valid."""
    with open(crl, "rb") as f:
        data = f.read()
    if b"-----BEGIN" in data:
        loaded = x509.load_pem_x509_crl(data)
    else:
        loaded = x509.load_der_x509_crl(data)
    return loaded.next_update_utc


def _check_crl_dates(crl: Path) -> None:
    next_update = crl_next_update(crl)
    if next_update is None:
        return
    now = dt.datetime.now(dt.UTC)
    if next_update <= now:
        log.error(
            "CRL %s expired at %s: every peer certificate is refused until the "
            "CA publishes a new one",
            crl,
            next_update,
        )
    elif next_update - now <= CRL_WARNING:
        log.warning("CRL %s expires at %s: publish a new one", crl, next_update)


def _common(ctx: ssl.SSLContext, cert: Path, key: Path, ca: Path, crl: Path | None):
    ctx.load_cert_chain(cert, key)
    return _trust(ctx, ca, crl)


def _trust(ctx: ssl.SSLContext, ca: Path, crl: Path | None) -> ssl.SSLContext:
    "TLS 1.2 at least, a peer certificate of ``ca`` not revoked by ``crl``"
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=ca)
    if crl is not None:
        _check_crl_dates(crl)
        ctx.load_verify_locations(cafile=crl)
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def server_context(cert: Path, key: Path, ca: Path, crl: Path | None) -> ssl.SSLContext:
    """Server side: a client certificate from ``ca``, not revoked by
    ``crl``, is required (``crl=None``: revocation not checked)."""
    return _common(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert, key, ca, crl)


def client_context(cert: Path, key: Path, ca: Path, crl: Path | None) -> ssl.SSLContext:
    """Client side: presents ``cert``; the server's certificate must come
    from ``ca``, not be revoked by ``crl`` (``None``: not checked) and name
    the host called (host name checked)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return _common(ctx, cert, key, ca, crl)


def check_key_pair(cert_pem: bytes, key_pem: bytes) -> None:
    """ValueError unless ``cert_pem`` is a PEM certificate and ``key_pem``
    the PEM private key of its public key."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ValueError("the certificate is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ValueError("the key is not an unencrypted PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if key.public_key().public_bytes(
        encoding, public
    ) != cert.public_key().public_bytes(encoding, public):
        raise ValueError("the key is not the certificate's") from None


def client_context_pem(
    cert_pem: bytes, key_pem: bytes, ca: Path, crl: Path | None
) -> ssl.SSLContext:
    """:func:`client_context` for a certificate and key held in memory (the
    key from an encrypted store).  OpenSSL's Python binding loads a key from
    a file only: the key is written re-encrypted under a one-time password
    to a private temporary file, loaded, and the file removed, so the clear
    key never touches the disk."""
    check_key_pair(cert_pem, key_pem)
    password = secrets.token_bytes(32)
    key = serialization.load_pem_private_key(key_pem, password=None)
    sealed = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with tempfile.TemporaryDirectory(prefix="hes-tls-") as directory:
        cert_file = os.path.join(directory, "cert.pem")
        key_file = os.path.join(directory, "key.pem")
        for name, data in ((cert_file, cert_pem), (key_file, sealed)):
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert_file, key_file, password=password)
    return _trust(ctx, ca, crl)


def current(source: ContextSource) -> ssl.SSLContext:
    return source if isinstance(source, ssl.SSLContext) else source()


class Reloading:
    """``build(*files)`` again whenever one of the files changes.

        source = Reloading(server_context, cert, key, ca, crl)
        server.listen(app, source)    # each connection: source()

    A file caught half-written keeps the previous context (and is tried
    again at the next connection)."""

    def __init__(
        self, build: Callable[..., ssl.SSLContext], *files: Path | None
    ) -> None:
        self._build = build
        self._files = files
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._context: ssl.SSLContext | None = None

    def _stamps(self) -> tuple:
        stamps = []
        for path in self._files:
            if path is None:
                stamps.append(None)
                continue
            try:
                st = os.stat(path)
            except OSError:
                stamps.append(None)
            else:
                stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(stamps)

    def __call__(self) -> ssl.SSLContext:
        stamp = self._stamps()
        with self._lock:
            if stamp != self._stamp or self._context is None:
                try:
                    self._context = self._build(*self._files)
                except (ssl.SSLError, OSError, ValueError):
                    if self._context is None:
                        raise
                    log.exception("TLS files changed but do not load: kept the old")
                    return self._context
                self._stamp = stamp
            return self._context


@dataclass(frozen=True)
class Peer:
    """The verified certificate of the other side."""

    common_name: str
    fingerprint: str  # SHA-256 of the DER certificate, hex
    serial: int

    @classmethod
    def from_der(cls, der: bytes) -> Peer:
        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(names[0].value) if names else ""
        return cls(name, hashlib.sha256(der).hexdigest(), cert.serial_number)

    @classmethod
    def from_pem(cls, pem: str | bytes) -> Peer:
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        return cls.from_der(ssl.PEM_cert_to_DER_cert(data.decode("ascii")))


@dataclass(frozen=True)
class PeerPin:
    """Who the server a client reaches must be: one of ``names`` (the
    certificate's common name) and, when given, one of ``fingerprints``
    (SHA-256 of the certificate, hex: the certificate registered for it)."""

    names: frozenset[str] = frozenset()
    fingerprints: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.names and not self.fingerprints:
            raise ValueError("a peer pin names a peer or a fingerprint")

    @classmethod
    def of(cls, value: PeerPin | str | Iterable[str]) -> PeerPin:
        """A pin from a pin, a common name or several common names."""
        if isinstance(value, PeerPin):
            return value
        if isinstance(value, str):
            return cls(frozenset({value}))
        return cls(frozenset(value))

    def check(self, peer: Peer) -> None:
        if self.names and peer.common_name not in self.names:
            expected = ", ".join(sorted(self.names))
            raise Refused(f"answered by {peer.common_name!r}, not {expected}")
        fingerprints = {f.lower().replace(":", "") for f in self.fingerprints}
        if fingerprints and peer.fingerprint not in fingerprints:
            raise Refused(
                f"answered by {peer.common_name!r} with certificate "
                f"{peer.fingerprint[:16]}..., not the one registered"
            )
