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


# The faultcode of a refusal for want of authorisation (SOAP 1.1 section 4.4:
# a dot-separated refinement of Client): the message itself was fine, the
# sender may not send it. A concentrator keeps such a delivery and alarms.
REFUSED_FAULTCODE = "Client.Refused"


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


class Rejected(ConcentratorError):
    """The peer answered with an HTTP client error (4xx) that says the
    message itself will never be taken (too large, malformed): sending it
    again will not help."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}" if text else f"HTTP {status}")
        self.status = status
        self.text = text


class Refused(ConcentratorError):
    """Not authorised: the peer is not who it must be (server side: the
    client's certificate may not do this; client side: the server's
    certificate is not the one expected). Never a reason to drop data."""


class RefusedFault(SoapFault, Refused):
    """A SOAP fault ``Client.Refused``: the server does not authorise the
    sender (both a fault and a refusal)."""
