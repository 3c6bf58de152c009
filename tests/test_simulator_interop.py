"""The simulator against the independent dlms-cosem 25.1.0 client, over real TCP.

dlms-cosem shares no code with the simulator's codec, so a bug common to both
sides would have to be made twice.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import socket

import pytest
import structlog
from dlms_cosem import cosem, enumerations, exceptions, utils
from dlms_cosem import state as dlms_state
from dlms_cosem.client import ActionError, DlmsClient
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor
from dlms_cosem.io import BlockingTcpIO, HdlcTransport, TcpTransport
from dlms_cosem.protocol import xdlms
from dlms_cosem.security import (
    HighLevelSecurityGmacAuthentication,
    LowLevelSecurityAuthentication,
    NoSecurityAuthentication,
)

from simulators.meter import MeterConfig, MeterSimulator
from simulators.meter.testing import FakeClock

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
START = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)

CI = enumerations.CosemInterface
CLOCK = cosem.CosemAttribute(CI.CLOCK, cosem.Obis(0, 0, 1, 0, 0), 2)
ENERGY = cosem.CosemAttribute(CI.REGISTER, cosem.Obis(1, 0, 1, 8, 0), 2)
ENERGY_SU = cosem.CosemAttribute(CI.REGISTER, cosem.Obis(1, 0, 1, 8, 0), 3)
PROFILE = cosem.CosemAttribute(CI.PROFILE_GENERIC, cosem.Obis(1, 0, 99, 1, 0), 2)
OUTPUT_STATE = cosem.CosemAttribute(
    CI.DISCONNECT_CONTROL, cosem.Obis(0, 0, 96, 3, 10), 2
)
CONTROL_STATE = cosem.CosemAttribute(
    CI.DISCONNECT_CONTROL, cosem.Obis(0, 0, 96, 3, 10), 3
)
OBJECT_LIST = cosem.CosemAttribute(CI.ASSOCIATION_LN, cosem.Obis(0, 0, 40, 0, 0), 2)
DISCONNECT = cosem.CosemMethod(CI.DISCONNECT_CONTROL, cosem.Obis(0, 0, 96, 3, 10), 1)
RECONNECT = cosem.CosemMethod(CI.DISCONNECT_CONTROL, cosem.Obis(0, 0, 96, 3, 10), 2)
INT0 = b"\x0f\x00"  # integer(0), the argument of methods 1 and 2 of class 70


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(scope="module")
def sim(clock: FakeClock):
    configs = [
        MeterConfig(index=0, framing="wrapper", prepaid=False),
        MeterConfig(index=1, framing="hdlc", prepaid=False),
        # Meter 2 holds other keys than the head-end (the "wrong keys" fault).
        MeterConfig(index=2, block_cipher_key=bytes(16), prepaid=False),
    ]
    with MeterSimulator(configs, clock=clock) as simulator:
        yield simulator


# The meter refuses invocation counters it has already seen from a system
# title, so every client starts well above the previous one (a real head-end
# persists its counter).
_CLIENT_IC = itertools.count(1, 1000)


def make_client(sim: MeterSimulator, index: int, auth: str, **kw) -> DlmsClient:
    io = BlockingTcpIO(host="127.0.0.1", port=sim.port(index), timeout=5)
    sap = {"none": 16, "lls": 32, "gmac": 1}[auth]
    if sim.configs[index].framing == "hdlc":
        transport = HdlcTransport(
            client_logical_address=sap, server_logical_address=1, io=io, timeout=5
        )
    else:
        transport = TcpTransport(
            client_logical_address=sap, server_logical_address=1, io=io, timeout=5
        )
    if auth == "none":
        return DlmsClient(
            transport=transport, authentication=NoSecurityAuthentication()
        )
    if auth == "lls":
        secret = kw.pop("password", b"12345678")
        return DlmsClient(
            transport=transport,
            authentication=LowLevelSecurityAuthentication(secret=secret),
        )
    return DlmsClient(
        transport=transport,
        authentication=HighLevelSecurityGmacAuthentication(challenge_length=32),
        encryption_key=kw.pop("ek", EK),
        authentication_key=kw.pop("ak", AK),
        client_system_title=kw.pop("title", b"HES00001"),
        client_initial_invocation_counter=kw.pop("ic", next(_CLIENT_IC)),
        **kw,
    )


def value(raw: bytes):
    return utils.parse_as_dlms_data(raw)


FRAMINGS = pytest.mark.parametrize("index", [0, 1], ids=["wrapper", "hdlc"])


@FRAMINGS
def test_public_reads_clock_energy_and_scaler_unit(sim, clock, index: int) -> None:
    with make_client(sim, index, "none").session() as c:
        raw_time = value(c.get(CLOCK))
        energy = value(c.get(ENERGY))
        scaler_unit = value(c.get(ENERGY_SU))
    assert raw_time[:7] == bytes([0x07, 0xEA, 1, 15, 4, 12, 0])  # Thu 12:00
    assert energy == sim.meter(index).config.initial_energy_wh
    assert scaler_unit == [0, 30]


@FRAMINGS
def test_lls_set_clock_moves_meter_time(sim, clock, index: int) -> None:
    from simulators.meter.axdr import datetime_data, encode

    target = clock() + dt.timedelta(minutes=5)
    with make_client(sim, index, "lls").session() as c:
        result = c.set(CLOCK, encode(datetime_data(target)))
        assert result.result == enumerations.DataAccessResult.SUCCESS
        raw = value(c.get(CLOCK))
    assert raw[5:7] == bytes([12, 5])
    assert sim.meter(index).clock_offset_s == pytest.approx(300)
    sim.meter(index).clock_offset_s = 0.0


def test_public_client_cannot_write(sim) -> None:
    from simulators.meter.axdr import datetime_data, encode

    with make_client(sim, 0, "none").session() as c:
        result = c.set(CLOCK, encode(datetime_data(START)))
    assert result.result == enumerations.DataAccessResult.READ_WRITE_DENIED


def test_wrong_lls_password_is_rejected(sim) -> None:
    c = make_client(sim, 0, "lls", password=b"00000000")
    c.connect()
    try:
        with pytest.raises(exceptions.DlmsClientException) as info:
            c.associate()
    finally:
        c.disconnect()
    assert "REJECTED_PERMANENT" in str(info.value)
    assert "AUTHENTICATION_FAILED: 13" in str(info.value)


def test_lls_client_may_not_invoke_actions(sim) -> None:
    with make_client(sim, 0, "lls").session() as c:
        with pytest.raises(ActionError, match="READ_WRITE_DENIED"):
            c.action(DISCONNECT, INT0)
    assert sim.meter(0).relay_connected


@FRAMINGS
def test_hls_gmac_disconnect_and_reconnect(sim, index: int) -> None:
    with make_client(sim, index, "gmac").session() as c:
        c.action(DISCONNECT, INT0)
        assert value(c.get(OUTPUT_STATE)) is False
        assert value(c.get(CONTROL_STATE)) == 0
        assert sim.meter(index).relay_connected is False
        c.action(RECONNECT, INT0)
        assert value(c.get(OUTPUT_STATE)) is True
        assert value(c.get(CONTROL_STATE)) == 1
    codes = [row.values[0] for row in sim.meter(index).disconnector_events]
    assert codes[-2:] == [50, 51]  # remote disconnection, remote connection


@FRAMINGS
def test_profile_by_range_returns_the_quarter_hours(sim, clock, index: int) -> None:
    now = clock()
    lo, hi = now - dt.timedelta(hours=3), now
    clock_obj = CaptureObject(
        cosem.CosemAttribute(CI.CLOCK, cosem.Obis(0, 0, 1, 0, 0), 2)
    )
    descriptor = RangeDescriptor(clock_obj, lo, hi)
    with make_client(sim, index, "gmac").session() as c:
        rows = value(c.get(PROFILE, access_descriptor=descriptor))
    assert len(rows) == 13  # 12:00 back to 09:00 inclusive
    minutes = [(r[0][5], r[0][6]) for r in rows]
    assert minutes[0] == (9, 0) and minutes[-1] == (12, 0)
    energies = [r[1] for r in rows]
    assert energies == sorted(energies) and energies[-1] - energies[0] > 0


def test_gmac_block_transfer_of_object_list(sim) -> None:
    with make_client(sim, 0, "gmac").session() as c:
        objects = value(c.get(OBJECT_LIST))
    # Larger than the 1024-byte PDU: it came in several GET blocks.
    names = {bytes(o[2]) for o in objects}
    assert bytes([0, 0, 19, 40, 0, 255]) in names  # token gateway
    assert len(objects) == len(sim._meters[0].objects) + 1


def test_gmac_with_wrong_keys_is_rejected(sim) -> None:
    c = make_client(sim, 2, "gmac")
    c.connect()
    try:
        with pytest.raises(exceptions.DlmsClientException, match="REJECTED"):
            c.associate()
    finally:
        c.disconnect()


def test_tampered_and_replayed_requests_are_refused(sim) -> None:
    c = make_client(sim, 0, "gmac")
    c.connect()
    c.associate()
    try:
        conn = c.dlms_connection
        request = conn.send(
            xdlms.ActionRequestNormal(cosem_method=DISCONNECT, data=INT0)
        )
        tampered = bytearray(request)
        tampered[-1] ^= 0x01  # flip one bit of the GCM tag
        reply = c.transport.send_request(bytes(tampered))
        assert reply == b"\xd8\x01\x05"  # exception: deciphering error
        assert sim.meter(0).relay_connected

        # Drive dlms-cosem's connection by hand: back to READY between frames.
        conn.state.current_state = dlms_state.READY
        good = conn.send(xdlms.GetRequestNormal(cosem_attribute=ENERGY))
        assert c.transport.send_request(good)[0] == 0xDB  # a real answer
        reply = c.transport.send_request(good)  # the same frame again
        assert reply == b"\xd8\x01\x06"  # exception: invocation counter error
    finally:
        c.disconnect()


def test_meter_invocation_counter_is_monotonic_across_associations(sim) -> None:
    meter = sim._meters[0]
    first = meter.server_ic
    for _ in range(2):
        with make_client(sim, 0, "gmac", title=b"HES00002").session() as c:
            c.get(ENERGY)
    assert meter.server_ic > first + 4
    # A fresh client that restarts its counter at 0 replays old nonces: refused.
    c = make_client(sim, 0, "gmac", title=b"HES00002", ic=0)
    c.connect()
    try:
        with pytest.raises(exceptions.DlmsClientException, match="REJECTED"):
            c.associate()
    finally:
        c.disconnect()


def test_third_connection_waits_for_a_free_one(sim) -> None:
    """Two connections at once (class 41 nb_of_sim_conn = 2), each with its
    association; a third is served when one of them leaves."""
    aarq = bytes.fromhex(
        "601DA109060760857405080101BE10040E01000000065F1F040000181F0100"
    )
    frame = b"\x00\x01\x00\x10\x00\x01" + len(aarq).to_bytes(2, "big") + aarq
    address = ("127.0.0.1", sim.port(0))
    with (
        socket.create_connection(address, timeout=5) as first,
        socket.create_connection(address, timeout=5) as second,
    ):
        for client in (first, second):
            client.sendall(frame)
            assert client.recv(4096)[8] == 0x61  # AARE: served at once
        third = socket.create_connection(address, timeout=0.3)
        third.sendall(frame)
        with pytest.raises(TimeoutError):
            third.recv(4096)
    third.settimeout(5)
    assert third.recv(4096)[8] == 0x61  # served once a connection left
    third.close()
