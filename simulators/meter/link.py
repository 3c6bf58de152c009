"""Per-connection link layers (sans-io): bytes in -> list of replies out.

Each reply is a list of byte strings that the transport sends as one unit, so
the drop fault drops a whole reply and latency delays it once per round trip.
"""

from __future__ import annotations

from . import framing
from .association import Meter, Session

SERVER_LOGICAL_DEVICE = 1


class WrapperLink:
    """IEC 62056-47 WRAPPER: one APDU per frame, wPort = SAP / logical device."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self._decoder = framing.WrapperDecoder()
        self._sessions: dict[int, Session] = {}

    def feed(self, data: bytes) -> list[bytes]:
        replies = []
        for frame in self._decoder.feed(data):
            if frame.destination != SERVER_LOGICAL_DEVICE:
                continue  # no such logical device: a real meter stays silent
            session = self._sessions.get(frame.source)
            if session is None:
                session = self._sessions[frame.source] = Session(
                    self.meter, frame.source
                )
            apdu = session.handle(frame.apdu)
            replies.append(framing.wrap(SERVER_LOGICAL_DEVICE, frame.source, apdu))
        return replies

    def close(self) -> None:
        for s in self._sessions.values():
            s.release()


class HdlcLink:
    """HDLC in normal response mode with window size 1 and segmentation."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self._decoder = framing.HdlcDecoder()
        self.connected = False
        self.session: Session | None = None
        self._server_addr = b""
        self._client_addr = b""
        self._vs = 0  # next send sequence number
        self._vr = 0  # next expected receive sequence number
        self._rx = bytearray()  # segmented request being reassembled
        self._tx: list[bytes] = []  # pending info segments of a long reply
        self.max_info_tx = meter.config.hdlc_max_info
        self.max_info_rx = meter.config.hdlc_max_info

    def feed(self, data: bytes) -> list[bytes]:
        replies: list[bytes] = []
        for raw in self._decoder.feed(data):
            try:
                frame = framing.parse_hdlc(raw)
            except framing.FramingError:
                continue  # corrupted frame: discard, the client will retry
            if framing.hdlc_address_value(frame.destination) != SERVER_LOGICAL_DEVICE:
                continue
            reply = self._frame(frame)
            if reply:
                replies.append(reply)
        return replies

    def _u(self, control: int, info: bytes = b"") -> bytes:
        return framing.build_hdlc(self._client_addr, self._server_addr, control, info)

    def _frame(self, frame: framing.HdlcFrame) -> bytes | None:
        control = frame.control
        if control & 0xEF == framing.SNRM & 0xEF:
            params = framing.parse_snrm_info(frame.info)
            ours = self.meter.config.hdlc_max_info
            # Client's max receive bounds what we send, and vice versa.
            self.max_info_tx = min(params.get(6, 128), ours)
            self.max_info_rx = min(params.get(5, 128), ours)
            self._server_addr, self._client_addr = frame.destination, frame.source
            self.connected = True
            self._vs = self._vr = 0
            self._rx.clear()
            self._tx.clear()
            sap = framing.hdlc_address_value(frame.source)
            if self.session is not None:
                self.session.release()
            self.session = Session(self.meter, sap)
            return self._u(
                framing.UA, framing.ua_info(self.max_info_tx, self.max_info_rx)
            )
        if control & 0xEF == framing.DISC & 0xEF:
            self._client_addr = frame.source
            self._server_addr = frame.destination
            was = self.connected
            self.close()
            return self._u(framing.UA if was else framing.DM)
        if not self.connected:
            self._client_addr, self._server_addr = frame.source, frame.destination
            return self._u(framing.DM)
        if frame.is_rr:
            if self._tx:
                return self._send_segment()
            return None
        if frame.is_information:
            self._vr = (frame.ssn + 1) % 8
            self._rx += frame.info
            if frame.segmented:
                return self._u(0x11 | (self._vr << 5))  # RR: send next segment
            apdu = bytes(self._rx)
            self._rx.clear()
            if apdu.startswith(framing.LLC_REQUEST):
                apdu = apdu[3:]
            assert self.session is not None
            response = framing.LLC_RESPONSE + self.session.handle(apdu)
            n = self.max_info_tx
            self._tx = [response[i : i + n] for i in range(0, len(response), n)]
            return self._send_segment()
        return None  # other control frames (RNR, UI...) are ignored

    def _send_segment(self) -> bytes:
        info = self._tx.pop(0)
        control = (self._vr << 5) | 0x10 | (self._vs << 1)
        self._vs = (self._vs + 1) % 8
        return framing.build_hdlc(
            self._client_addr, self._server_addr, control, info, bool(self._tx)
        )

    def close(self) -> None:
        self.connected = False
        if self.session is not None:
            self.session.release()
            self.session = None
        self._rx.clear()
        self._tx.clear()
