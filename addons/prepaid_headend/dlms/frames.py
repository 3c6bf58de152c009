"""Split the byte stream from a meter into whole frames before gurux parses them.

gurux re-parses its whole receive buffer every time bytes arrive, so a meter
that floods the line with bytes that never make a frame costs quadratic CPU,
and a frame header announcing 64 KiB keeps it waiting for ever.  The session
therefore hands gurux complete frames only, found here from the frame
headers (sans-io: bytes in, frames out):

- WRAPPER (IEC 62056-47): 8-byte header, version 1, then the announced
  length of APDU; any other version is not a DLMS wrapper stream.
- HDLC (IEC 62056-46, frame format type 3): flag 0x7E, a two-byte format
  field (0xA in the top four bits, 11 bits of length counting from the format
  field to the FCS), the frame, and a closing flag.  Bytes between frames are
  line noise and are dropped, up to MAX_HDLC_NOISE in a row.

Checksums, addresses and contents stay gurux's job.
"""

from __future__ import annotations

from .errors import MalformedReply

WRAPPER_HEADER = 8
WRAPPER_VERSION = 1
HDLC_FLAG = 0x7E
HDLC_FORMAT_TYPE = 0xA0
#: Noise tolerated between HDLC frames before the stream is declared garbage.
MAX_HDLC_NOISE = 4096


class FrameSplitter:
    """Reassemble whole frames of one framing from received chunks."""

    def __init__(self, framing: str) -> None:
        if framing not in ("wrapper", "hdlc"):
            raise ValueError(f"unknown framing {framing!r}")
        self.framing = framing
        self._buf = bytearray()
        self._noise = 0

    @property
    def pending(self) -> int:
        """Bytes received that do not make a whole frame yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        if self.framing == "wrapper":
            return self._wrapper_frames()
        return self._hdlc_frames()

    def _wrapper_frames(self) -> list[bytes]:
        frames = []
        buf = self._buf
        while len(buf) >= WRAPPER_HEADER:
            version = int.from_bytes(buf[0:2], "big")
            if version != WRAPPER_VERSION:
                raise MalformedReply(
                    f"not a DLMS wrapper frame (version {version}, expected 1)"
                )
            end = WRAPPER_HEADER + int.from_bytes(buf[6:8], "big")
            if len(buf) < end:
                break
            frames.append(bytes(buf[:end]))
            del buf[:end]
        return frames

    def _hdlc_frames(self) -> list[bytes]:
        frames = []
        buf = self._buf
        while buf:
            start = buf.find(HDLC_FLAG)
            if start < 0:
                self._drop(len(buf))
                break
            if start:
                self._drop(start)
            # buf[0] is a flag; flags may be shared or repeated between frames.
            if len(buf) < 3:
                break
            if buf[1] == HDLC_FLAG:
                self._drop(1)
                continue
            if buf[1] & 0xF0 != HDLC_FORMAT_TYPE:
                self._drop(1)
                continue
            end = (((buf[1] & 0x07) << 8) | buf[2]) + 2
            if len(buf) < end:
                break
            if buf[end - 1] != HDLC_FLAG:
                self._drop(1)  # a flag inside noise, not a frame start
                continue
            frames.append(bytes(buf[:end]))
            del buf[: end - 1]  # the closing flag may open the next frame
            self._noise = 0
        return frames

    def _drop(self, count: int) -> None:
        del self._buf[:count]
        self._noise += count
        if self._noise > MAX_HDLC_NOISE:
            raise MalformedReply(
                f"no HDLC frame in {self._noise} bytes received: not a DLMS meter"
            )
