"""Head-end DLMS/COSEM client (pure Python on gurux-dlms, no Tryton import).

Importing the package installs the verified AES-GCM shim (see gcm.py).
"""

from .counters import (
    InvocationCounterStore,
    JsonFileCounterStore,
    MemoryCounterStore,
)
from .errors import (
    AccessDenied,
    AssociationRefused,
    AuthenticationFailure,
    ConnectionFailed,
    DlmsError,
    DlmsTimeout,
    FirmwareError,
    MalformedReply,
    ServiceError,
)
from .runner import MeterJob, MeterResult, Operation, RetryPolicy, read_meters
from .session import ConnectionSettings, DlmsSession
from .transport import TcpTransport, Transport

__all__ = [
    "AccessDenied",
    "AssociationRefused",
    "AuthenticationFailure",
    "ConnectionFailed",
    "ConnectionSettings",
    "DlmsError",
    "DlmsSession",
    "DlmsTimeout",
    "FirmwareError",
    "InvocationCounterStore",
    "JsonFileCounterStore",
    "MalformedReply",
    "MemoryCounterStore",
    "MeterJob",
    "MeterResult",
    "Operation",
    "RetryPolicy",
    "ServiceError",
    "TcpTransport",
    "Transport",
    "read_meters",
]
