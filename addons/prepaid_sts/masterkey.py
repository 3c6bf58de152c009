"""Encryption at rest of key material (vending keys, DLMS keys) with the master key.

The master key is a Fernet key read from ``[prepaid] master_key`` in
``trytond.conf`` or from the environment variable
``TRYTOND_PREPAID__MASTER_KEY`` (trytond's own override, so the environment
wins).  Nothing here logs or echoes key material: errors name the problem and
the fix, never the bytes.
"""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, InvalidToken

ENV_NAME = "TRYTOND_PREPAID__MASTER_KEY"


class MasterKeyError(Exception):
    """The master key is missing, malformed, or not the one that encrypted the data."""


def _configured_key() -> str:
    value = os.environ.get(ENV_NAME)
    if not value:
        try:
            from trytond import config

            value = config.get("prepaid", "master_key", default="")
        except ImportError:  # pragma: no cover - trytond is always there in Tryton
            value = ""
    value = (value or "").strip()
    if not value:
        raise MasterKeyError(
            "no master key is configured: set [prepaid] master_key in trytond.conf "
            f"or the {ENV_NAME} environment variable to a Fernet key "
            "(python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        )
    return value


def _fernet(master_key: str | None = None) -> Fernet:
    key = master_key if master_key is not None else _configured_key()
    try:
        return Fernet(key.encode("ascii") if isinstance(key, str) else key)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise MasterKeyError(
            "the configured master key is not a valid Fernet key (32 url-safe "
            "base64-encoded bytes); fix [prepaid] master_key or "
            f"{ENV_NAME}"
        ) from None


def encrypt(secret: bytes, master_key: str | None = None) -> str:
    """Encrypt key material; return the ASCII ciphertext to store."""
    if not isinstance(secret, bytes | bytearray):
        raise TypeError("only bytes can be encrypted")
    return _fernet(master_key).encrypt(bytes(secret)).decode("ascii")


def decrypt(ciphertext: str, master_key: str | None = None) -> bytes:
    """Decrypt what :func:`encrypt` stored; refuse a wrong master key clearly."""
    if not ciphertext:
        raise MasterKeyError("no key material is stored (the ciphertext is empty)")
    try:
        return _fernet(master_key).decrypt(ciphertext.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        raise MasterKeyError(
            "the stored key material cannot be decrypted with the configured master "
            "key: the master key was changed or is wrong; restore the master key "
            "that was used when the key was entered"
        ) from None


def generate_master_key() -> str:
    """A fresh Fernet key, for set-up scripts and tests."""
    return Fernet.generate_key().decode("ascii")
