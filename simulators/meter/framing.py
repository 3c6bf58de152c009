"""Sans-io transport framing: IEC 62056-47 WRAPPER and HDLC (IEC 62056-46).

Both decoders are fed raw TCP bytes and yield complete frames; the server glue
in :mod:`simulators.meter.server` decides what to answer.
"""

from __future__ import annotations

from dataclasses import dataclass


class FramingError(ValueError):
    """A frame that cannot be parsed (bad length, CRC, flags...)."""


# --- WRAPPER ----------------------------------------------------------------

WRAPPER_VERSION = 1


@dataclass(frozen=True)
class WrapperFrame:
    source: int  # wPort of the sender (client SAP on requests)
    destination: int  # wPort of the receiver (logical device on requests)
    apdu: bytes


def wrap(source: int, destination: int, apdu: bytes) -> bytes:
    return (
        WRAPPER_VERSION.to_bytes(2, "big")
        + source.to_bytes(2, "big")
        + destination.to_bytes(2, "big")
        + len(apdu).to_bytes(2, "big")
        + apdu
    )


class WrapperDecoder:
    """Reassembles WRAPPER frames from a TCP byte stream."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[WrapperFrame]:
        self._buf += data
        frames: list[WrapperFrame] = []
        while len(self._buf) >= 8:
            version = int.from_bytes(self._buf[0:2], "big")
            if version != WRAPPER_VERSION:
                raise FramingError(f"wrapper version {version} is not 1")
            length = int.from_bytes(self._buf[6:8], "big")
            if len(self._buf) < 8 + length:
                break
            frames.append(
                WrapperFrame(
                    int.from_bytes(self._buf[2:4], "big"),
                    int.from_bytes(self._buf[4:6], "big"),
                    bytes(self._buf[8 : 8 + length]),
                )
            )
            del self._buf[: 8 + length]
        return frames


# --- HDLC -------------------------------------------------------------------

FLAG = 0x7E
LLC_REQUEST = b"\xe6\xe6\x00"
LLC_RESPONSE = b"\xe6\xe7\x00"

# Control field values (P/F bit 0x10 set).
SNRM = 0x93
DISC = 0x53
UA = 0x73
DM = 0x1F
FRMR = 0x97


def _crc_table() -> list[int]:
    # CRC-16/X.25 (reflected poly 0x8408), the HDLC FCS of ISO/IEC 13239.
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def fcs16(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFF


def _fcs_bytes(data: bytes) -> bytes:
    return fcs16(data).to_bytes(2, "little")


@dataclass(frozen=True)
class HdlcFrame:
    destination: bytes  # raw address bytes as on the wire
    source: bytes
    control: int
    info: bytes
    segmented: bool

    @property
    def is_information(self) -> bool:
        return self.control & 0x01 == 0

    @property
    def is_rr(self) -> bool:
        return self.control & 0x0F == 0x01

    @property
    def ssn(self) -> int:
        return (self.control >> 1) & 0x07

    @property
    def rsn(self) -> int:
        return (self.control >> 5) & 0x07


def hdlc_address_value(raw: bytes) -> int:
    """Logical (upper) address of a 1/2/4-byte HDLC address."""
    if len(raw) in (1, 2):
        value = 0
        for b in raw:
            value = (value << 7) | (b >> 1)
        return value
    # 4 bytes: upper (logical) 2 bytes, lower (physical) 2 bytes.
    return ((raw[0] >> 1) << 7) | (raw[1] >> 1)


def hdlc_client_address(sap: int) -> bytes:
    return bytes([(sap << 1) | 1])


def _read_address(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    start = pos
    while pos < end:
        if buf[pos] & 1:
            return bytes(buf[start : pos + 1]), pos + 1
        pos += 1
    raise FramingError("unterminated HDLC address")


def parse_hdlc(frame: bytes) -> HdlcFrame:
    """Parse one frame including its opening and closing 0x7E flags."""
    if len(frame) < 9 or frame[0] != FLAG or frame[-1] != FLAG:
        raise FramingError("frame not delimited by 0x7E")
    body = frame[1:-1]
    fmt = int.from_bytes(body[0:2], "big")
    if fmt >> 12 != 0xA:
        raise FramingError("not an HDLC type-3 frame format")
    length = fmt & 0x7FF
    if length != len(body):
        raise FramingError(f"HDLC length {length} != {len(body)}")
    segmented = bool(fmt & 0x0800)
    if fcs16(body[:-2]) != int.from_bytes(body[-2:], "little"):
        raise FramingError("HDLC FCS mismatch")
    dest, pos = _read_address(body, 2, len(body))
    src, pos = _read_address(body, pos, len(body))
    control = body[pos]
    pos += 1
    info = b""
    if len(body) - 2 > pos:
        if fcs16(body[:pos]) != int.from_bytes(body[pos : pos + 2], "little"):
            raise FramingError("HDLC HCS mismatch")
        info = bytes(body[pos + 2 : -2])
    return HdlcFrame(dest, src, control, info, segmented)


def build_hdlc(
    dest: bytes, src: bytes, control: int, info: bytes = b"", segmented: bool = False
) -> bytes:
    header_len = 2 + len(dest) + len(src) + 1
    length = header_len + (len(info) + 4 if info else 2)
    if length > 0x7FF:
        raise FramingError("HDLC frame too long")
    fmt = 0xA000 | (0x0800 if segmented else 0) | length
    header = fmt.to_bytes(2, "big") + dest + src + bytes([control])
    body = header
    if info:
        body += _fcs_bytes(header) + info
    body += _fcs_bytes(body)
    return bytes([FLAG]) + body + bytes([FLAG])


class HdlcDecoder:
    """Splits a TCP byte stream into HDLC frames (flags may be shared)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            # Skip anything before a flag (and repeated flags between frames).
            while self._buf and self._buf[0] != FLAG:
                del self._buf[0]
            while len(self._buf) >= 2 and self._buf[1] == FLAG:
                del self._buf[0]
            if len(self._buf) < 3:
                return out
            length = int.from_bytes(self._buf[1:3], "big") & 0x7FF
            if len(self._buf) < length + 2:
                return out
            out.append(bytes(self._buf[: length + 2]))
            del self._buf[: length + 1]  # keep the closing flag as next opener
            if len(self._buf) == 1:
                del self._buf[0]


def ua_info(max_info_tx: int, max_info_rx: int, window: int = 1) -> bytes:
    """Negotiated HDLC parameters for UA (IEC 62056-46 6.4.4.4.3.2)."""
    params = (
        bytes([0x05, 0x01, max_info_tx])
        if max_info_tx < 256
        else bytes([0x05, 0x02]) + max_info_tx.to_bytes(2, "big")
    )
    params += (
        bytes([0x06, 0x01, max_info_rx])
        if max_info_rx < 256
        else bytes([0x06, 0x02]) + max_info_rx.to_bytes(2, "big")
    )
    params += bytes([0x07, 0x04]) + window.to_bytes(4, "big")
    params += bytes([0x08, 0x04]) + window.to_bytes(4, "big")
    return bytes([0x81, 0x80, len(params)]) + params


def parse_snrm_info(info: bytes) -> dict[int, int]:
    """Parameters proposed in SNRM: {5: max info tx, 6: max info rx, 7/8: window}."""
    out: dict[int, int] = {}
    if len(info) < 3 or info[0] != 0x81 or info[1] != 0x80:
        return out
    pos, end = 3, 3 + info[2]
    while pos + 2 <= min(end, len(info)):
        pid, plen = info[pos], info[pos + 1]
        out[pid] = int.from_bytes(info[pos + 2 : pos + 2 + plen], "big")
        pos += 2 + plen
    return out
