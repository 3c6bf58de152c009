"""A DLMS transport that reaches a meter through its concentrator.

:class:`GatewayTransport` implements the head-end client's
``dlms.Transport``: each WRAPPER frame the DLMS session sends is turned into
a gateway request (0xE6, the meter's network id and PDA in front of the
APDU), carried by the concentrator's ``Gateway`` SOAP operation over mutual
TLS, and the gateway response (0xE7) is turned back into the WRAPPER frame
the session expects. The session, its association and its keys are the same
as for a meter reached directly: the concentrator relays opaque APDUs.

    client = ConcentratorClient(url, context, peer=PeerPin(...))
    transport = GatewayTransport(client, pda)
    async with DlmsSession(settings, transport=transport) as session:
        status = await operations.enter_token(session, token)

WRAPPER framing only (``ConnectionSettings(framing="wrapper")``): HDLC stays
on the meter's side of the concentrator. A frame whose exchange fails is
never re-sent by the client below (:class:`TransportError`, reported as
``ConnectionFailed``): the DLMS session decides, as for a direct meter.
"""

from __future__ import annotations

import asyncio

from ..dlms.errors import ConnectionFailed, DlmsError, DlmsTimeout, MalformedReply
from ..dlms.transport import Transport
from . import gateway
from .client import ConcentratorClient
from .errors import (
    ConcentratorError,
    Refused,
    SoapFault,
    TransportError,
    ValidationError,
)
from .messages import RequestStatus


class GatewayTransport(Transport):
    def __init__(
        self, client: ConcentratorClient, pda: bytes, network_id: int = 0
    ) -> None:
        self.client = client
        self.pda = bytes(pda)
        self.network_id = network_id
        self._pending = b""
        self._replies: asyncio.Queue[bytes | DlmsError] | None = None
        self._calls: list[asyncio.Task] = []

    @property
    def description(self) -> str:
        return f"{self.client.url} gateway to {self.pda.hex().upper()}"

    async def open(self, timeout: float) -> None:
        self._pending = b""
        self._replies = asyncio.Queue()

    async def send(self, data: bytes) -> None:
        if self._replies is None:
            raise ConnectionFailed(f"{self.description}: not open")
        try:
            frames, self._pending = gateway.split_wrapper(self._pending + data)
        except ValidationError as exc:
            raise ConnectionFailed(f"{self.description}: {exc}") from exc
        for frame in frames:
            # One exchange at a time, in order: the next frame leaves only
            # once the previous one is answered (DLMS is request/response).
            self._calls = [t for t in self._calls if not t.done()]
            previous = self._calls[-1] if self._calls else None
            self._calls.append(asyncio.create_task(self._relay(frame, previous)))

    async def _relay(self, frame: gateway.WrapperFrame, previous) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        assert self._replies is not None
        request = gateway.encode_wrapper(
            gateway.WrapperFrame(
                frame.source,
                frame.destination,
                gateway.wrap_request(
                    gateway.GatewayApdu(self.network_id, self.pda, frame.apdu)
                ),
            )
        )
        try:
            answer = await asyncio.to_thread(self.client.gateway, request)
            self._replies.put_nowait(self._unwrap(answer))
        except DlmsError as exc:
            self._replies.put_nowait(exc)
        except (TransportError, Refused) as exc:  # unreachable, or not who it must be
            self._replies.put_nowait(ConnectionFailed(f"{self.description}: {exc}"))
        except (SoapFault, ConcentratorError) as exc:
            self._replies.put_nowait(MalformedReply(f"{self.description}: {exc}"))

    def _unwrap(self, answer) -> bytes:
        if answer.status is RequestStatus.METER_TIMEOUT:
            raise DlmsTimeout(f"{self.description}: {answer.message or 'no answer'}")
        if answer.status is not RequestStatus.OK or answer.frame is None:
            raise DlmsError(
                f"{self.description}: concentrator answers {answer.status}: "
                f"{answer.message or ''}".rstrip(": ")
            )
        try:
            outer = gateway.decode_wrapper(answer.frame)
            inner = gateway.unwrap_response(outer.apdu)
        except ValidationError as exc:
            raise MalformedReply(f"{self.description}: {exc}") from exc
        if inner.pda != self.pda or inner.network_id != self.network_id:
            raise MalformedReply(
                f"{self.description}: answer from {inner.pda.hex().upper()} "
                f"(network {inner.network_id})"
            )
        return gateway.encode_wrapper(
            gateway.WrapperFrame(outer.source, outer.destination, inner.apdu)
        )

    async def receive(self, timeout: float) -> bytes:
        if self._replies is None:
            raise ConnectionFailed(f"{self.description}: not open")
        try:
            item = await asyncio.wait_for(self._replies.get(), timeout)
        except TimeoutError as exc:
            raise DlmsTimeout(
                f"{self.description}: no reply within {timeout:g} s"
            ) from exc
        if isinstance(item, DlmsError):
            raise item
        return item

    async def close(self) -> None:
        for task in self._calls:
            if not task.done():
                task.cancel()
        self._calls.clear()
        self._replies = None
