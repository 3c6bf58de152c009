"""One DLMS/COSEM association driven over a Transport with gurux-dlms.

gurux builds and parses the PDUs (AARQ/AARE, GET/SET/ACTION, block transfer,
HDLC and WRAPPER framing); this module owns the I/O, timeouts, invocation
counters and the translation of gurux's exceptions into `errors`.

Two clocks bound a conversation: ``timeout`` is the longest silence of the
meter within a round trip, ``deadline`` the longest any exchange may take as
a whole (the association with its connection and HLS passes, each request
with all its blocks, the release).  A meter that sends a byte now and then
never trips the first and always trips the second.  ``max_reply_bytes``
bounds what one request may receive, so a flood is cut off before it costs
memory; gurux only ever sees whole frames (see `frames`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import secrets
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from gurux_dlms import GXByteBuffer, GXDLMSException, GXReplyData
from gurux_dlms.enums import (
    Authentication,
    Conformance,
    DataType,
    InterfaceType,
    ObjectType,
    Security,
)
from gurux_dlms.GXCiphering import GXCiphering
from gurux_dlms.secure import GXDLMSSecureClient

from . import gcm  # noqa: F401  (installs the verified AES-GCM in gurux)
from .counters import InvocationCounterStore, MemoryCounterStore, counter_key
from .errors import (
    AccessDenied,
    AssociationRefused,
    AuthenticationFailure,
    ConnectionFailed,
    DeadlineExceeded,
    DlmsError,
    MalformedReply,
    ReplyTooLarge,
    ServiceError,
)
from .frames import FrameSplitter
from .transport import TcpTransport, Transport

AUTH_KINDS = {
    "none": Authentication.NONE,
    "lls": Authentication.LOW,
    "hls-md5": Authentication.HIGH_MD5,
    "hls-gmac": Authentication.HIGH_GMAC,
}
FRAMINGS = {"wrapper": InterfaceType.WRAPPER, "hdlc": InterfaceType.HDLC}

DEFAULT_BLOCK_CIPHER_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
DEFAULT_AUTHENTICATION_KEY = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
DEFAULT_SYSTEM_TITLE = b"PPSHES01"
DEFAULT_TIMEOUT = 10.0
DEFAULT_DEADLINE = 30.0
#: Largest reply to one request (all its blocks): a month of 15-minute load
#: profile is a few hundred KiB, so this only stops floods.
DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024

# AARE diagnostics (acse-service-user) meaning "your credentials are wrong".
_DIAG_AUTHENTICATION_FAILURE = 13
_DIAG_AUTH_REQUIRED = 14
_DIAG_MECHANISM = (10, 11, 12)
# Data-access-result / action-result codes meaning "not for you".
_ACCESS_CODES = {3: "read-write-denied", 13: "scope-of-access-violated"}

_SHARED_MEMORY_STORE = MemoryCounterStore()


@dataclass
class ConnectionSettings:
    """How to reach and authenticate to one meter."""

    host: str = "127.0.0.1"
    port: int = 4059
    framing: str = "wrapper"
    client_address: int = 16
    server_address: int = 1
    auth: str = "none"
    # Secrets stay out of repr(): settings end up in logs and tracebacks.
    password: str | bytes | None = field(default=None, repr=False)  # LLS / HLS-MD5
    system_title: bytes = DEFAULT_SYSTEM_TITLE  # client's, for HLS-GMAC
    block_cipher_key: bytes = field(default=DEFAULT_BLOCK_CIPHER_KEY, repr=False)
    authentication_key: bytes = field(default=DEFAULT_AUTHENTICATION_KEY, repr=False)
    timeout: float = DEFAULT_TIMEOUT  # longest silence within a round trip
    deadline: float = DEFAULT_DEADLINE  # longest exchange, whatever the meter sends
    connect_timeout: float | None = None  # defaults to `timeout`
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    meter_key: str | None = None  # label of the meter (not the counter key)
    max_pdu_size: int = 0xFFFF
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {sorted(FRAMINGS)}")
        if self.auth not in AUTH_KINDS:
            raise ValueError(f"auth must be one of {sorted(AUTH_KINDS)}")
        for name in ("timeout", "deadline", "max_reply_bytes"):
            value = getattr(self, name)
            if not value > 0:  # also refuses NaN
                raise ValueError(f"{name} must be positive, not {value!r}")
        if self.auth == "hls-gmac":
            if len(self.system_title) != 8:
                raise ValueError("system title must be 8 bytes")
            for name in ("block_cipher_key", "authentication_key"):
                if len(getattr(self, name)) != 16:
                    raise ValueError(f"{name} must be 16 bytes (AES-128)")

    @property
    def counter_key(self) -> str:
        """Invocation-counter key: (client system title, key fingerprint).

        Not per meter: the GCM nonce is system title || counter, so meters
        sharing a block cipher key must share one counter sequence."""
        return counter_key(self.system_title, self.block_cipher_key)

    @property
    def ciphered(self) -> bool:
        return self.auth == "hls-gmac"


class _CountedCiphering(GXCiphering):
    """GXCiphering whose `invocationCounter` comes from a counter store.

    gurux reads `cipher.invocationCounter` to cipher a frame and then assigns
    it + 1. Turning the attribute into a property lets every value read for a
    frame be freshly taken from the store (the read reserves it, the
    assignment marks it consumed), so counters survive the process and are
    never reused, whatever gurux does internally (AARQ, HLS pass 3, blocks).
    """

    def _get_ic(self) -> int:
        current = self.__dict__.get("_pps_current")
        if current is None:
            current = self._pps_store.get_and_increment(self._pps_key)
            self.__dict__["_pps_current"] = current
        return current

    def _set_ic(self, value: int) -> None:
        # Any assignment (gurux's "+ 1", reset() to 0) consumes the value.
        self.__dict__["_pps_current"] = None

    invocationCounter = property(_get_ic, _set_ic)  # noqa: N815


def _quiet(fn, *args):
    """Call a gurux function that may print() diagnostics to stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


class DlmsSession:
    """An association with one meter. Use as `async with DlmsSession(...)`."""

    def __init__(
        self,
        settings: ConnectionSettings,
        transport: Transport | None = None,
        counter_store: InvocationCounterStore | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport or TcpTransport(settings.host, settings.port)
        self.counter_store = counter_store or _SHARED_MEMORY_STORE
        self.client = self._make_client()
        self.associated = False
        self.round_trips = 0
        self._server_ic: dict[bytes, int] = {}
        self._splitter = FrameSplitter(settings.framing)
        self._frames: deque[bytes] = deque()  # whole frames not parsed yet
        self._received = 0  # bytes received for the current request
        self._in_exchange = False
        # Set when the stream can no longer be trusted (cut off, flood):
        # nothing more is sent, not even the release.
        self.broken = False

    # -- setup -------------------------------------------------------------
    def _make_client(self) -> GXDLMSSecureClient:
        s = self.settings
        password = s.password
        if s.auth == "lls" and password is None:
            password = "12345678"
        if s.auth == "hls-md5" and password is None:
            password = "Gurux"
        if isinstance(password, str):
            password = password.encode()
        client = GXDLMSSecureClient(
            True,
            s.client_address,
            s.server_address,
            AUTH_KINDS[s.auth],
            password if s.auth in ("lls", "hls-md5") else None,
            FRAMINGS[s.framing],
        )
        client.settings.maxPduSize = s.max_pdu_size
        if s.ciphered:
            cipher = client.settings.cipher
            cipher.__class__ = _CountedCiphering
            cipher._pps_store = self.counter_store
            cipher._pps_key = s.counter_key
            cipher.__dict__.pop("invocationCounter", None)
            cipher.security = Security.AUTHENTICATION_ENCRYPTION
            cipher.systemTitle = bytearray(s.system_title)
            cipher.blockCipherKey = bytearray(s.block_cipher_key)
            cipher.authenticationKey = bytearray(s.authentication_key)
            if s.framing == "hdlc":
                # Meters cannot always take segmented general-glo over HDLC:
                # use service-specific glo APDUs there (docs/dlms.md section 4).
                client.proposedConformance &= ~Conformance.GENERAL_PROTECTION
            # Replies must carry strictly increasing counters (replay guard).
            client.settings.pps_reply_guard = self._check_server_ic
        elif s.auth != "hls-md5":  # gurux's HLS code reads the cipher object
            client.settings.cipher = None
        return client

    def _check_server_ic(self, system_title: bytes, ic: int) -> None:
        last = self._server_ic.get(system_title)
        if last is not None and ic <= last:
            raise MalformedReply(
                f"replayed reply: invocation counter {ic} <= last accepted {last}"
            )
        self._server_ic[system_title] = ic

    # -- I/O ---------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _deadline(self, what: str) -> AsyncIterator[None]:
        """Bound one exchange by ``settings.deadline`` (not nested: a request
        made during the association counts against the association's)."""
        if self._in_exchange:
            yield
            return
        if self.broken:
            raise ConnectionFailed(
                f"{self.transport.description}: the connection was cut off"
            )
        limit = self.settings.deadline
        self._in_exchange = True
        try:
            async with asyncio.timeout(limit):
                yield
        except TimeoutError:
            self.broken = True
            raise DeadlineExceeded(
                f"{self.transport.description}: {what} not complete within its "
                f"{limit:g} s deadline (the meter answers too slowly or keeps "
                "sending): cut off"
            ) from None
        finally:
            self._in_exchange = False

    async def _next_frame(self) -> bytes:
        """The next whole frame from the meter, within the reply budget."""
        while not self._frames:
            chunk = await self.transport.receive(self.settings.timeout)
            self._received += len(chunk)
            if self._received > self.settings.max_reply_bytes:
                self.broken = True
                raise ReplyTooLarge(
                    f"{self.transport.description}: more than "
                    f"{self.settings.max_reply_bytes} bytes received for one "
                    "request (a flood): cut off"
                )
            try:
                self._frames.extend(self._splitter.feed(chunk))
            except MalformedReply:
                self.broken = True
                raise
        return self._frames.popleft()

    async def _exchange(self, frame: bytes | None, reply: GXReplyData) -> None:
        """Send one frame (None = only wait, for streaming) and read until
        gurux has a complete reply."""
        if frame is not None:
            await self.transport.send(bytes(frame))
        self.round_trips += 1
        notify = GXReplyData()
        while True:
            buf = GXByteBuffer(await self._next_frame())
            try:
                done = self.client.getData(buf, reply, notify)
            except DlmsError:
                raise
            except gcm.GcmError as exc:
                raise MalformedReply(f"ciphered reply rejected: {exc}") from exc
            except GXDLMSException as exc:
                raise _service_error(getattr(exc, "errorCode", None), str(exc)) from exc
            except Exception as exc:  # gurux raises bare Exceptions when parsing
                raise MalformedReply(f"cannot parse reply: {exc!r}") from exc
            if done:
                return

    async def request(self, frames: Any) -> GXReplyData:
        """Send the frames gurux generated for one request, follow block
        transfer, and return the reply (raising on data-access errors)."""
        reply = GXReplyData()
        if frames is None:
            return reply
        if isinstance(frames, (bytes, bytearray)):
            frames = [frames]
        async with self._deadline("the request"):
            self._received = 0
            for frame in frames:
                reply.clear()
                await self._exchange(frame, reply)
                while reply.isMoreData():
                    streaming = reply.isStreaming()
                    nxt = None if streaming else self.client.receiverReady(reply)
                    await self._exchange(nxt, reply)
        if reply.error:
            raise _service_error(reply.error, reply.getErrorMessage())
        return reply

    # -- association -------------------------------------------------------
    async def open(self) -> DlmsSession:
        s = self.settings
        try:
            async with self._deadline("the association"):
                await self.transport.open(s.connect_timeout or s.timeout)
                await self._associate()
        except BaseException:
            await self.transport.close()
            raise
        return self

    async def _associate(self) -> None:
        c = self.client
        if self.settings.framing == "hdlc":
            reply = await self.request(c.snrmRequest())
            try:
                c.parseUAResponse(reply.data)
            except Exception as exc:
                raise AssociationRefused(f"SNRM refused: {exc}") from exc
        if self.settings.auth.startswith("hls"):
            # gurux draws the client challenge with the random module, which
            # is predictable; a challenge must come from the OS's CSPRNG.
            c.settings.useCustomChallenge = True
            c.settings.ctoSChallenge = list(secrets.token_bytes(16))
        try:
            reply = await self.request(c.aarqRequest())
        except (ServiceError, AccessDenied) as exc:
            raise AssociationRefused(f"AARQ refused: {exc}") from exc
        try:
            _quiet(c.parseAareResponse, reply.data)
        except GXDLMSException as exc:
            raise _aare_error(exc) from exc
        except gcm.GcmError as exc:
            raise MalformedReply(f"AARE ciphering rejected: {exc}") from exc
        except DlmsError:
            raise
        except Exception as exc:
            raise MalformedReply(f"cannot parse AARE: {exc!r}") from exc
        # HLS needs passes 3/4 whatever the AARE diagnostic says: a meter that
        # answers "null" instead of "authentication-required" must still
        # prove it knows the secret before we trust the association.
        if c.getIsAuthenticationRequired() or self.settings.auth.startswith("hls"):
            try:
                reply = await self.request(c.getApplicationAssociationRequest())
                _quiet(c.parseApplicationAssociationResponse, reply.data)
            except (ServiceError, AccessDenied) as exc:
                raise AuthenticationFailure(
                    f"HLS pass 3 refused by the meter: {exc}"
                ) from exc
            except MalformedReply:
                raise
            except DlmsError:
                raise
            except Exception as exc:
                raise AuthenticationFailure(
                    f"HLS pass 4 failed (meter secret/keys differ): {exc}"
                ) from exc
        self.associated = True

    async def close(self) -> None:
        """Release the association (RLRQ, and DISC over HDLC) and close.

        A connection that was cut off is closed without a release: the meter
        is not trusted with another exchange."""
        try:
            if self.associated and not self.broken:
                self.associated = False
                try:
                    async with self._deadline("the release"):
                        await self.request(self.client.releaseRequest())
                        if self.settings.framing == "hdlc":
                            await self.request(self.client.disconnectRequest())
                except DlmsError:
                    pass  # the meter may drop the line first; nothing to do
        finally:
            self.associated = False
            await self.transport.close()

    async def __aenter__(self) -> DlmsSession:
        return await self.open()

    async def __aexit__(self, exc_type: type | None, *exc_info: object) -> None:
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            # The caller's own deadline ran out: leave at once.
            self.broken = True
        await self.close()

    # -- services ----------------------------------------------------------
    async def get(
        self, obis: str, class_id: int, attr: int, access: bytes | None = None
    ) -> Any:
        """GET one attribute; `access` = selector byte + A-XDR parameters.
        Returns gurux's decoded value (ints, bytearray, lists...)."""
        frames = self.client._read(
            obis, ObjectType(class_id), attr, GXByteBuffer(access) if access else None
        )
        return (await self.request(frames)).value

    async def set(self, obis: str, class_id: int, attr: int, encoded: bytes) -> None:
        """SET one attribute to an already A-XDR encoded value (see axdr)."""
        frames = self.client._GXDLMSClient__write(
            obis, bytes(encoded), DataType.STRUCTURE, ObjectType(class_id), attr
        )
        await self.request(frames)

    async def action(
        self, obis: str, class_id: int, method: int, encoded: bytes = b"\x0f\x00"
    ) -> Any:
        """ACTION with an A-XDR encoded parameter (default integer 0)."""
        frames = self.client._GXDLMSClient__method(
            obis, ObjectType(class_id), method, bytes(encoded), DataType.STRUCTURE
        )
        return (await self.request(frames)).value


def _service_error(code: int | None, message: str) -> DlmsError:
    code_int = int(code) if code is not None else None
    if code_int in _ACCESS_CODES:
        return AccessDenied(f"{_ACCESS_CODES[code_int]}: {message}", code_int)
    if code_int is not None and code_int < 0:
        return MalformedReply(f"link layer error {code_int}: {message}")
    return ServiceError(f"meter error {code_int}: {message}", code_int)


def _aare_error(exc: GXDLMSException) -> DlmsError:
    result = getattr(exc, "result", None)
    diagnostic = getattr(exc, "diagnostic", None)
    diag = int(diagnostic) if diagnostic is not None else None
    msg = f"association rejected (result {result}, diagnostic {diag}): {exc}"
    if diag == _DIAG_AUTHENTICATION_FAILURE or diag in _DIAG_MECHANISM:
        return AuthenticationFailure(msg, result, diag)
    if diag == _DIAG_AUTH_REQUIRED:
        return AuthenticationFailure(msg, result, diag)
    return AssociationRefused(msg, result, diag)
