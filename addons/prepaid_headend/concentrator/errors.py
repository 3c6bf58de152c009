"""Errors of the concentrator interface core.

Every error that comes from outside input says what is wrong and where
(``field``: the element or attribute concerned), so an operator reading the
head-end's log, or a concentrator vendor reading a fault, can fix the sender.
"""

from __future__ import annotations


class ConcentratorError(Exception):
    """Base class of every error raised by the concentrator core."""


class ValidationError(ConcentratorError):
    """External input refused: malformed XML, a schema violation, a value
    out of range, an inconsistent message."""

    code = "malformed"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field


class TooLarge(ValidationError):
    """Input larger than the configured bound (bytes, depth, decompressed size)."""

    code = "too_large"


class UnsupportedVersion(ValidationError):
    """A report payload of a major version this codec does not know."""

    code = "version_unsupported"


class SoapFault(ConcentratorError):
    """A SOAP fault received from the peer (client side)."""

    def __init__(
        self, faultcode: str, faultstring: str, field: str | None = None
    ) -> None:
        super().__init__(f"{faultcode}: {faultstring}")
        self.faultcode = faultcode
        self.faultstring = faultstring
        self.field = field


class TransportError(ConcentratorError):
    """The peer could not be reached or did not answer in time (transient)."""


class Refused(ConcentratorError):
    """The peer is not allowed to do this (wrong certificate identity)."""
