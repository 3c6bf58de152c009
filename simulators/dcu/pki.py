"""A test certificate authority made with ``cryptography`` (tests, demos).

Never for production: the keys are written unencrypted to a folder of the
caller's choosing (a temporary folder in the tests). EC P-256 keys, so a
fleet of a hundred concentrators gets its certificates in a fraction of a
second.

    pki = TestPki(tmp_path)
    dc = pki.issue("DC0001")            # server + client certificate
    pki.revoke(dc); pki.write_crl()     # refused from now on
    Reloading(server_context, dc.cert, dc.key, pki.ca_cert, pki.crl)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True)
class Credentials:
    name: str
    cert: Path
    key: Path
    serial: int


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "prepaid-platform test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


class TestPki:
    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path | str, name: str = "Test CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        slug = name.lower().replace(" ", "-")
        self.now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._ca = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now)
            .not_valid_after(self.now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),  # fmt: skip
                True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_cert = self.directory / f"{slug}.pem"
        self.ca_cert.write_bytes(self._ca.public_bytes(serialization.Encoding.PEM))
        self.crl = self.directory / f"{slug}.crl.pem"
        self._revoked: set[int] = set()
        self.write_crl()

    def issue(
        self, common_name: str, *, hosts=("127.0.0.1", "localhost")
    ) -> Credentials:
        """A certificate for both TLS roles (a concentrator is server and
        client), valid for ``hosts``."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self._ca.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(self.now)
            .not_valid_after(self.now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(x509.SubjectAlternativeName(names), False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                False,
            )
            .sign(self._key, hashes.SHA256())
        )
        stem = self.directory / common_name
        cert_path = stem.with_suffix(".pem")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path = stem.with_suffix(".key")
        _write_key(key, key_path)
        return Credentials(common_name, cert_path, key_path, serial)

    def revoke(self, credentials: Credentials) -> None:
        self._revoked.add(credentials.serial)
        self.write_crl()

    def write_crl(self, next_update: dt.datetime | None = None) -> Path:
        """Publish the CRL (valid until ``next_update``, default 30 days)."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self._ca.subject)
            .last_update(
                self.now
                if next_update is None or next_update > self.now
                else next_update - dt.timedelta(days=1)
            )
            .next_update(next_update or self.now + VALIDITY)
        )
        for serial in sorted(self._revoked):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(self.now)
                .build()
            )
        crl = builder.sign(self._key, hashes.SHA256())
        self.crl.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        return self.crl
