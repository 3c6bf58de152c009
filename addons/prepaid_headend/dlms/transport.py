"""Byte transports for DLMS sessions.

The session only needs to send a frame and receive bytes; framing (WRAPPER or
HDLC) is done by gurux on top. Concentrator / gateway transports implement the
same interface later.
"""

from __future__ import annotations

import asyncio
import socket
from abc import ABC, abstractmethod

from .errors import ConnectionFailed, DlmsTimeout


class Transport(ABC):
    """One bidirectional byte stream to one meter (one association)."""

    @abstractmethod
    async def open(self, timeout: float) -> None: ...

    @abstractmethod
    async def send(self, data: bytes) -> None: ...

    @abstractmethod
    async def receive(self, timeout: float) -> bytes:
        """Return the next non-empty chunk of bytes.

        Raises DlmsTimeout when nothing arrives in time and ConnectionFailed
        when the peer closed the stream."""

    @abstractmethod
    async def close(self) -> None: ...

    @property
    def description(self) -> str:
        return type(self).__name__


class TcpTransport(Transport):
    """Plain TCP (IEC 62056-47 wrapper or HDLC-over-TCP)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def description(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    async def open(self, timeout: float) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout
            )
        except TimeoutError as exc:
            raise DlmsTimeout(f"connect to {self.description} timed out") from exc
        except OSError as exc:
            raise ConnectionFailed(
                f"cannot connect to {self.description}: {exc}"
            ) from exc
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            # Request/response traffic of small frames: Nagle only adds delay.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def send(self, data: bytes) -> None:
        if self._writer is None:
            raise ConnectionFailed(f"{self.description}: not connected")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            raise ConnectionFailed(f"{self.description}: send failed: {exc}") from exc

    async def receive(self, timeout: float) -> bytes:
        if self._reader is None:
            raise ConnectionFailed(f"{self.description}: not connected")
        try:
            chunk = await asyncio.wait_for(self._reader.read(65536), timeout)
        except TimeoutError as exc:
            raise DlmsTimeout(
                f"{self.description}: no reply within {timeout:g} s"
            ) from exc
        except OSError as exc:
            raise ConnectionFailed(
                f"{self.description}: receive failed: {exc}"
            ) from exc
        if not chunk:
            raise ConnectionFailed(f"{self.description}: connection closed by meter")
        return chunk

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        try:
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (OSError, TimeoutError):
            pass
