"""The simulator against the gurux-dlms 1.0.203 client (the head-end's library).

Covers what dlms-cosem cannot: HLS-MD5, service-specific glo ciphering (gurux
over HDLC without GENERAL_PROTECTION), segmented HDLC requests (192-byte image
blocks over a 128-byte information field) and read-by-entry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import socket

import pytest
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import (
    Authentication,
    Conformance,
    InterfaceType,
    Security,
)
from gurux_dlms.objects import (
    GXDLMSClock,
    GXDLMSDisconnectControl,
    GXDLMSImageTransfer,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)
from gurux_dlms.secure import GXDLMSSecureClient

from simulators.meter import MeterConfig, MeterSimulator
from simulators.meter.testing import FakeClock

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
START = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


class GuruxSession:
    """Minimal blocking transport loop around a gurux client."""

    def __init__(self, client: GXDLMSClient, port: int, hdlc: bool) -> None:
        self.c = client
        self.hdlc = hdlc
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def one(self, frame) -> GXReplyData:
        reply = GXReplyData()
        buf = GXByteBuffer()
        self.sock.sendall(bytes(frame))
        while not self.c.getData(buf, reply, GXReplyData()):
            buf.set(self.sock.recv(4096))
        while reply.isMoreData():
            self.sock.sendall(bytes(self.c.receiverReady(reply)))
            while not self.c.getData(buf, reply, GXReplyData()):
                buf.set(self.sock.recv(4096))
        return reply

    def send(self, frames) -> GXReplyData:
        reply = None
        for frame in frames:
            reply = self.one(frame)
        return reply

    def open(self, hls: bool) -> None:
        if self.hdlc:
            self.c.parseUAResponse(self.one(self.c.snrmRequest()).data)
        self.c.parseAareResponse(self.send(self.c.aarqRequest()).data)
        if hls:
            reply = self.send(self.c.getApplicationAssociationRequest())
            self.c.parseApplicationAssociationResponse(reply.data)

    def read(self, obj, attr: int):
        self.c.updateValue(obj, attr, self.send(self.c.read(obj, attr)).value)
        return obj

    def close(self) -> None:
        self.send(self.c.releaseRequest())
        if self.hdlc:
            self.one(self.c.disconnectRequest())
        self.sock.close()


@pytest.fixture(scope="module")
def sim():
    configs = [
        MeterConfig(index=0, framing="wrapper", prepaid=False),
        MeterConfig(index=1, framing="hdlc", prepaid=False),
    ]
    with MeterSimulator(configs, clock=FakeClock(START)) as simulator:
        yield simulator


def open_session(sim, index: int, auth: str, general: bool = False) -> GuruxSession:
    hdlc = sim.configs[index].framing == "hdlc"
    itf = InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER
    if auth == "md5":
        c = GXDLMSSecureClient(True, 1, 1, Authentication.HIGH_MD5, b"Gurux", itf)
    elif auth == "gmac":
        c = GXDLMSSecureClient(True, 1, 1, Authentication.HIGH_GMAC, None, itf)
        c.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
        c.ciphering.systemTitle = bytearray(b"GRX%05d" % (os.getpid() % 100000))
        c.ciphering.blockCipherKey = bytearray(EK)
        c.ciphering.authenticationKey = bytearray(AK)
        c.ciphering.invocationCounter = open_session.ic
        open_session.ic += 1000
        if not general:
            # gurux then uses service-specific glo (0xC8...) instead of 0xDB.
            c.proposedConformance &= ~Conformance.GENERAL_PROTECTION
    else:
        c = GXDLMSClient(True, 32, 1, Authentication.LOW, b"12345678", itf)
    s = GuruxSession(c, sim.port(index), hdlc)
    s.open(hls=auth in ("md5", "gmac"))
    return s


open_session.ic = 1


@contextlib.contextmanager
def quiet():
    # gurux prints "Encryption is applied." for every ciphered PDU.
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@pytest.mark.parametrize("index", [0, 1], ids=["wrapper", "hdlc"])
@pytest.mark.parametrize("auth", ["lls", "md5", "gmac"])
def test_gurux_reads_clock_energy_and_profile(sim, index: int, auth: str) -> None:
    with quiet():
        s = open_session(sim, index, auth)
        clock = s.read(GXDLMSClock(), 2)
        reg = s.read(s.read(GXDLMSRegister("1.0.1.8.0.255"), 3), 2)
        pg = s.read(GXDLMSProfileGeneric("1.0.99.1.0.255"), 3)
        s.c.updateValue(pg, 2, s.send(s.c.readRowsByEntry(pg, 1, 3)).value)
        s.close()
    assert clock.time.value.replace(tzinfo=None) == START.replace(tzinfo=None)
    assert reg.value == sim.configs[index].initial_energy_wh and reg.unit == 30
    assert len(pg.buffer) == 3 and len(pg.buffer[0]) == 3


@pytest.mark.parametrize("general", [False, True], ids=["glo", "general-glo"])
@pytest.mark.parametrize("index", [0, 1], ids=["wrapper", "hdlc"])
def test_gurux_relay_and_image_transfer(sim, index: int, general: bool) -> None:
    body = os.urandom(1500)
    image = body + hashlib.sha256(body).digest()
    with quiet():
        s = open_session(sim, index, "gmac", general)
        dc = GXDLMSDisconnectControl("0.0.96.3.10.255")
        s.send(dc.remoteDisconnect(s.c))
        assert sim.meter(index).relay_connected is False
        s.send(dc.remoteReconnect(s.c))
        assert sim.meter(index).relay_connected is True
        img = s.read(GXDLMSImageTransfer(), 2)
        s.send(img.imageTransferInitiate(s.c, "FW-2.0.0", len(image)))
        for frames in img.imageBlockTransfer(s.c, image, [0]):
            s.send(frames if isinstance(frames, list) else [frames])
        s.send(img.imageVerify(s.c))
        s.send(img.imageActivate(s.c))
        s.close()
    assert sim.meter(index).firmware_id == "FW-2.0.0"


def test_gurux_md5_with_wrong_secret_fails(sim) -> None:
    c = GXDLMSSecureClient(
        True, 1, 1, Authentication.HIGH_MD5, b"wrong", InterfaceType.WRAPPER
    )
    s = GuruxSession(c, sim.port(0), False)
    with pytest.raises(Exception):  # noqa: B017 - gurux raises assorted types
        s.open(hls=True)
    s.sock.close()
