"""Exception hierarchy of the head-end DLMS client.

Callers (job runner, Tryton models, CLI) branch on these classes: only
`DlmsTimeout` and `ConnectionFailed` are considered transient and retried.
"""

from __future__ import annotations


class DlmsError(Exception):
    """Base class of every error raised by the DLMS client."""

    kind = "error"
    transient = False


class DlmsTimeout(DlmsError):
    """The meter did not answer within the per-request timeout."""

    kind = "timeout"
    transient = True


class DeadlineExceeded(DlmsError):
    """An exchange (association, one request, release) or a whole job ran
    past its overall deadline: the meter answers too slowly (a byte at a
    time), keeps sending, or the job has too much to do.  Cut off and not
    retried: a meter that trickles is not cured by asking again at once."""

    kind = "deadline"

    def __init__(self, message: str, scope: str = "exchange") -> None:
        super().__init__(message)
        self.scope = scope  # "exchange" or "job"


class ConnectionFailed(DlmsError):
    """TCP connection refused, reset or closed by the peer."""

    kind = "connection"
    transient = True


class AssociationRefused(DlmsError):
    """The meter rejected the AARQ for a reason other than authentication."""

    kind = "refused"

    def __init__(self, message: str, result: int | None = None, diagnostic=None):
        super().__init__(message)
        self.result = result
        self.diagnostic = diagnostic


class AuthenticationFailure(AssociationRefused):
    """Wrong password, secret or keys (AARE authentication-failure, HLS
    pass 4 mismatch). Never retried: retrying could lock the meter."""

    kind = "authentication"


class AccessDenied(DlmsError):
    """The association is established but the meter refuses the operation
    (read-write-denied, object unavailable for this client, ...)."""

    kind = "access_denied"

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class ServiceError(DlmsError):
    """The meter answered a GET/SET/ACTION with a data-access-result or
    action-result other than success (and not an access refusal)."""

    kind = "service"

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class MalformedReply(DlmsError):
    """The reply cannot be trusted or parsed: bad frame, GCM tag that does
    not verify, replayed invocation counter, unexpected structure."""

    kind = "malformed"


class ReplyTooLarge(MalformedReply):
    """The meter sent more bytes for one request than any reply may hold
    (a flood): the connection is cut off and nothing of it is kept."""

    kind = "oversize"


__all__ = [
    "AccessDenied",
    "AssociationRefused",
    "AuthenticationFailure",
    "ConnectionFailed",
    "DeadlineExceeded",
    "DlmsError",
    "DlmsTimeout",
    "MalformedReply",
    "ReplyTooLarge",
    "ServiceError",
]


class FirmwareError(DlmsError):
    """Image transfer refused, verification failed or activation failed."""

    kind = "firmware"

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


__all__.append("FirmwareError")
