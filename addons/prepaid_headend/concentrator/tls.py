"""TLS contexts with client certificates on both sides, and revocation.

Both services run over HTTPS with mutual authentication: the concentrator
presents its certificate to the head-end and the head-end its own to the
concentrator. A certificate from another CA fails the handshake; with a CRL
loaded, a revoked certificate does too (OpenSSL checks the leaf against the
CRL of its issuer, which must then be present: an empty CRL is fine).
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass
from os import PathLike

from cryptography import x509
from cryptography.x509.oid import NameOID

Path = str | PathLike[str]


def _common(ctx: ssl.SSLContext, cert: Path, key: Path, ca: Path, crl: Path | None):
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cafile=ca)
    if crl is not None:
        ctx.load_verify_locations(cafile=crl)
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def server_context(
    cert: Path, key: Path, ca: Path, crl: Path | None = None
) -> ssl.SSLContext:
    """Server side: a client certificate from ``ca`` is required."""
    return _common(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert, key, ca, crl)


def client_context(
    cert: Path, key: Path, ca: Path, crl: Path | None = None
) -> ssl.SSLContext:
    """Client side: presents ``cert``; the server's certificate must come
    from ``ca`` and name the host called (host name checked)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return _common(ctx, cert, key, ca, crl)


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
