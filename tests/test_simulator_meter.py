"""Meter behaviour over TCP: tokens, firmware, relay, limiter, profiles, faults.

Simulated time is driven with FakeClock (no sleeping). The client is the
independent dlms-cosem library; argument encodings use the simulator's A-XDR.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import structlog
from dlms_cosem import cosem, enumerations, exceptions, utils
from dlms_cosem.client import ActionError, DlmsClient
from dlms_cosem.io import BlockingTcpIO, TcpTransport
from dlms_cosem.security import (
    HighLevelSecurityGmacAuthentication,
    LowLevelSecurityAuthentication,
    NoSecurityAuthentication,
)
from trytond.modules.prepaid_sts import engine as sts_engine

from simulators.meter import MeterConfig, MeterSimulator, model
from simulators.meter.axdr import decode_all, encode, i8, octets, struct_, u8, u16, u32
from simulators.meter.testing import FakeClock

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
START = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
DECODER_KEY = bytes.fromhex("0123456789ABCDEF")
OTHER_KEY = bytes.fromhex("1123456789ABCDEF")

CI = enumerations.CosemInterface
CLOCK = cosem.CosemAttribute(CI.CLOCK, cosem.Obis(0, 0, 1, 0, 0), 2)
ENERGY = cosem.CosemAttribute(CI.REGISTER, cosem.Obis(1, 0, 1, 8, 0), 2)
PROFILE = cosem.CosemAttribute(CI.PROFILE_GENERIC, cosem.Obis(1, 0, 99, 1, 0), 2)
OUTPUT_STATE = cosem.CosemAttribute(
    CI.DISCONNECT_CONTROL, cosem.Obis(0, 0, 96, 3, 10), 2
)
CREDIT = cosem.CosemAttribute(112, cosem.Obis(0, 0, 19, 10, 0), 2)
TOKEN_STATUS = cosem.CosemAttribute(115, cosem.Obis(0, 0, 19, 40, 0), 6)
TOKEN_ENTER = cosem.CosemMethod(115, cosem.Obis(0, 0, 19, 40, 0), 1)
FIRMWARE = cosem.CosemAttribute(CI.DATA, cosem.Obis(1, 0, 0, 2, 0), 2)
LIMITER_THRESHOLD = cosem.CosemAttribute(71, cosem.Obis(0, 0, 17, 0, 0), 3)
DISCONNECTOR_LOG = cosem.CosemAttribute(
    CI.PROFILE_GENERIC, cosem.Obis(0, 0, 99, 98, 2), 2
)
IMAGE = cosem.Obis(0, 0, 44, 0, 0)
IMAGE_STATUS = cosem.CosemAttribute(CI.IMAGE_TRANSFER, IMAGE, 6)


def image_method(n: int) -> cosem.CosemMethod:
    return cosem.CosemMethod(CI.IMAGE_TRANSFER, IMAGE, n)


_ic = iter(range(1, 10**9, 1000))


def client(
    sim: MeterSimulator, index: int, auth: str, timeout: float = 5
) -> DlmsClient:
    io = BlockingTcpIO(host="127.0.0.1", port=sim.port(index), timeout=timeout)
    sap = {"none": 16, "lls": 32, "gmac": 1}[auth]
    transport = TcpTransport(
        client_logical_address=sap, server_logical_address=1, io=io, timeout=timeout
    )
    if auth == "none":
        return DlmsClient(
            transport=transport, authentication=NoSecurityAuthentication()
        )
    if auth == "lls":
        return DlmsClient(
            transport=transport,
            authentication=LowLevelSecurityAuthentication(secret=b"12345678"),
        )
    return DlmsClient(
        transport=transport,
        authentication=HighLevelSecurityGmacAuthentication(challenge_length=32),
        encryption_key=EK,
        authentication_key=AK,
        client_system_title=b"HES00001",
        client_initial_invocation_counter=next(_ic),
    )


def value(raw: bytes):
    return utils.parse_as_dlms_data(raw)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


def start_sim(clock: FakeClock, **config) -> MeterSimulator:
    return MeterSimulator([MeterConfig(index=0, **config)], clock=clock).start()


# --- relay and credit ---------------------------------------------------------


def test_credit_running_out_opens_the_relay(clock: FakeClock) -> None:
    with start_sim(clock, prepaid=True, initial_credit_kwh=1.0, load_kw=1.0) as sim:
        meter = sim.meter(0)
        e0 = meter.energy_import_wh
        clock.advance(hours=3)  # ~3 kWh demanded, only 1 kWh paid for
        with client(sim, 0, "none").session() as c:
            assert value(c.get(OUTPUT_STATE)) is False
            assert value(c.get(CREDIT)) == 0
            energy = value(c.get(ENERGY))
            log = value(c.get(DISCONNECTOR_LOG))
        assert energy - e0 == pytest.approx(1000, abs=1)
        assert log[-1][1] == model.EV_LOCAL_DISCONNECTION
        assert meter.disconnect_reason == "credit"
        assert any(r.values[0] == model.EV_CREDIT_EXHAUSTED for r in meter.events)
        # The relay stops consumption: more time, no more energy.
        clock.advance(hours=2)
        assert meter.active_power_w == 0
        assert meter.energy_import_wh == pytest.approx(e0 + 1000, abs=1)


def test_credit_mode_meter_never_disconnects(clock: FakeClock) -> None:
    with start_sim(clock, prepaid=False, load_kw=2.0) as sim:
        clock.advance(hours=10)
        meter = sim.meter(0)
        assert meter.relay_connected
        with client(sim, 0, "none").session() as c:
            energy = value(c.get(ENERGY))
    assert energy - meter.config.initial_energy_wh > 15_000  # ~20 kWh


def test_limiter_opens_relay_when_power_stays_above_threshold(
    clock: FakeClock,
) -> None:
    with start_sim(clock, prepaid=False, load_kw=1.0) as sim:
        with client(sim, 0, "lls").session() as c:
            result = c.set(LIMITER_THRESHOLD, encode(u32(500)))
        assert result.result == enumerations.DataAccessResult.SUCCESS
        clock.advance(minutes=5)
        meter = sim.meter(0)  # advances the physics to the new time
        assert not meter.relay_connected
        assert meter.disconnect_reason == "limiter"
        assert any(r.values[0] == model.EV_LIMITER_EXCEEDED for r in meter.events)


def test_limiter_rejects_wrong_type(clock: FakeClock) -> None:
    with start_sim(clock) as sim, client(sim, 0, "lls").session() as c:
        result = c.set(LIMITER_THRESHOLD, encode(octets(b"x")))
    assert result.result == enumerations.DataAccessResult.TYPE_UNMATCHED


# --- profiles -----------------------------------------------------------------


class EntryDescriptor:
    """Selective access by entry (selector 2), which dlms-cosem lacks."""

    def __init__(self, first: int, last: int, first_col: int, last_col: int) -> None:
        self.params = [first, last, first_col, last_col]

    def to_bytes(self) -> bytes:
        from simulators.meter.axdr import u16

        f, t, fc, tc = self.params
        return b"\x02" + encode(struct_(u32(f), u32(t), u16(fc), u16(tc)))


def test_profile_by_entry_last_rows_and_columns(clock: FakeClock) -> None:
    with start_sim(clock, prepaid=False) as sim, client(sim, 0, "none").session() as c:
        rows = value(c.get(PROFILE, access_descriptor=EntryDescriptor(189, 0, 1, 2)))
        all_rows = value(c.get(PROFILE))
    assert len(all_rows) == 192  # two days of quarter hours
    assert len(rows) == 4 and all(len(r) == 2 for r in rows)
    assert rows[-1][0][5:7] == bytes([12, 0])  # last capture at 12:00
    assert [r[1] for r in rows] == [r[1] for r in all_rows[-4:]]


def test_profile_captures_new_rows_as_time_passes(clock: FakeClock) -> None:
    with start_sim(clock, prepaid=False) as sim:
        clock.advance(hours=1)
        with client(sim, 0, "none").session() as c:
            rows = value(c.get(PROFILE, access_descriptor=EntryDescriptor(1, 0, 0, 0)))
    assert len(rows) == 192
    assert rows[-1][0][5:7] == bytes([13, 0])
    # Quarter-hour energy deltas agree with the recorded average power.
    delta = rows[-1][1] - rows[-2][1]
    assert rows[-1][2] == pytest.approx(delta * 4, abs=8)


# --- token gateway --------------------------------------------------------------


def enter(c: DlmsClient, token: str) -> list:
    c.action(TOKEN_ENTER, encode(octets(token.encode("ascii"))))
    # dlms-cosem cannot parse bit-strings: decode token_status ourselves.
    return decode_all(c.get(TOKEN_STATUS)).py()


def test_token_gateway_with_sts_engine(clock: FakeClock) -> None:
    engine = sts_engine
    token = engine.credit_token(DECODER_KEY, "07", 0, 0, amount="12.5", tid=1000)
    foreign = engine.credit_token(OTHER_KEY, "07", 0, 0, amount="5", tid=1001)
    with start_sim(clock, decoder_key=DECODER_KEY, initial_credit_kwh=10) as sim:
        meter = sim.meter(0)
        with client(sim, 0, "gmac").session() as c:
            before = value(c.get(CREDIT))
            assert enter(c, token)[0] == 3  # execution OK
            after = value(c.get(CREDIT))
            assert enter(c, token)[0] == 6  # same TID again: validation failure
            assert enter(c, foreign)[0] == 5  # other key: CRC does not verify
            assert enter(c, "1234")[0] == 4  # not 20 digits: format failure
            assert value(c.get(CREDIT)) == after
        assert after - before == 12_500
        assert meter.accepted_tids == [1000]


def test_token_clears_credit_and_tamper_and_sets_limit(clock: FakeClock) -> None:
    engine = sts_engine
    clear_credit = engine.credit_token(DECODER_KEY, "07", 2, 1, value16=0, tid=2000)
    clear_tamper = engine.credit_token(DECODER_KEY, "07", 2, 5, value16=0, tid=2001)
    limit = engine.credit_token(DECODER_KEY, "07", 2, 0, amount=3000, tid=2002)
    with start_sim(clock, decoder_key=DECODER_KEY, prepaid=False) as sim:
        meter = sim.meter(0)
        meter.credit_wh = 5000.0
        meter.alarm_register = model.ALARM_TAMPER | 1
        with client(sim, 0, "gmac").session() as c:
            assert enter(c, clear_credit)[0] == 3
            assert enter(c, clear_tamper)[0] == 3
            assert enter(c, limit)[0] == 3
            threshold = value(c.get(LIMITER_THRESHOLD))
        assert meter.credit_wh == 0
        assert meter.alarm_register == 1
        assert threshold == 3000


def test_token_credit_restores_supply_after_credit_disconnection(
    clock: FakeClock,
) -> None:
    engine = sts_engine
    token = engine.credit_token(DECODER_KEY, "07", 0, 0, amount="2", tid=3000)
    with start_sim(clock, decoder_key=DECODER_KEY, initial_credit_kwh=0.5) as sim:
        clock.advance(hours=2)
        assert not sim.meter(0).relay_connected
        with client(sim, 0, "gmac").session() as c:
            assert enter(c, token)[0] == 3
            assert value(c.get(OUTPUT_STATE)) is True


def test_token_without_decoder_key_is_an_execution_failure(clock: FakeClock) -> None:
    with start_sim(clock) as sim, client(sim, 0, "gmac").session() as c:
        assert enter(c, "0" * 20)[0] == 7


# --- image transfer -------------------------------------------------------------


def transfer(c: DlmsClient, identifier: bytes, image: bytes, size: int) -> None:
    c.action(image_method(1), encode(struct_(octets(identifier), u32(size))))
    for n in range(0, len(image), 192):
        block = struct_(u32(n // 192), octets(image[n : n + 192]))
        c.action(image_method(2), encode(block))


def test_good_image_is_verified_and_activated(clock: FakeClock) -> None:
    body = os.urandom(2000)
    image = body + hashlib.sha256(body).digest()
    with start_sim(clock) as sim, client(sim, 0, "gmac").session() as c:
        transfer(c, b"FW-1.1.0", image, len(image))
        c.action(image_method(3), encode(i8(0)))
        assert value(c.get(IMAGE_STATUS)) == 3
        c.action(image_method(4), encode(i8(0)))
        assert value(c.get(FIRMWARE)) == b"FW-1.1.0"
        assert value(c.get(IMAGE_STATUS)) == 6


@pytest.mark.parametrize("fault", ["corrupt", "short"])
def test_bad_image_is_refused_and_old_firmware_kept(
    clock: FakeClock, fault: str
) -> None:
    body = os.urandom(1000)
    image = body + hashlib.sha256(body).digest()
    size = len(image)
    if fault == "corrupt":
        image = image[:100] + bytes([image[100] ^ 1]) + image[101:]
    else:
        size += 192  # announced size larger than what is sent
    with start_sim(clock) as sim, client(sim, 0, "gmac").session() as c:
        transfer(c, b"FW-9.9.9", image, size)
        with pytest.raises(ActionError, match="OTHER_REASON"):
            c.action(image_method(3), encode(i8(0)))
        assert value(c.get(IMAGE_STATUS)) == 4
        with pytest.raises(ActionError):
            c.action(image_method(4), encode(i8(0)))
        assert value(c.get(FIRMWARE)) == b"FW-1.0.0"


# --- faults ---------------------------------------------------------------------


def test_clock_drift_is_visible(clock: FakeClock) -> None:
    with start_sim(clock, clock_offset_s=3600) as sim:
        with client(sim, 0, "none").session() as c:
            raw = value(c.get(CLOCK))
    assert raw[5:7] == bytes([13, 0])  # 12:00 true time + 1 h drift


def test_latency_delays_each_reply(clock: FakeClock) -> None:
    # A lower bound only: the meter sleeps before answering each request.
    with start_sim(clock, latency_ms=150) as sim:
        c = client(sim, 0, "none")
        c.connect()
        begin = time.monotonic()
        c.associate()
        c.get(ENERGY)
        elapsed = time.monotonic() - begin
        c.release_association()
        c.disconnect()
    assert elapsed >= 0.3


def test_dropped_replies_make_the_client_time_out(clock: FakeClock) -> None:
    with start_sim(clock, drop_rate=1.0) as sim:
        c = client(sim, 0, "none", timeout=0.3)
        c.connect()
        with pytest.raises(exceptions.CommunicationError):
            c.associate()
        c.transport.io.tcp_socket.close()
        assert sim.dropped_replies(0) == 1


def test_config_validation_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="framing"):
        MeterConfig(framing="serial")
    with pytest.raises(ValueError, match="16 bytes"):
        MeterConfig(block_cipher_key=b"short")
    with pytest.raises(ValueError, match="drop_rate"):
        MeterConfig(drop_rate=2)


def test_fleet_builds_distinct_meters(clock: FakeClock) -> None:
    with MeterSimulator.fleet(3, 0, clock=clock, load_kw=2.0) as sim:
        ports = {sim.port(i) for i in range(3)}
        titles = {sim.configs[i].system_title for i in range(3)}
        with client(sim, 2, "none").session() as c:
            c.get(ENERGY)
    assert len(ports) == 3 and all(ports)
    assert titles == {b"PPS" + i.to_bytes(5, "big") for i in range(3)}


# --- command line -----------------------------------------------------------------


def test_cli_prints_meters_and_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.meter.cli", "--meters", "2", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        meters = json.loads(line)["meters"]
        assert [m["index"] for m in meters] == [0, 1]
        io = BlockingTcpIO(host="127.0.0.1", port=meters[1]["port"], timeout=5)
        transport = TcpTransport(
            client_logical_address=16, server_logical_address=1, io=io
        )
        with DlmsClient(transport, NoSecurityAuthentication()).session() as c:
            assert value(c.get(ENERGY)) > 0
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_cli_rejects_bad_arguments() -> None:
    from simulators.meter.cli import main

    assert main(["--meters", "0"]) == 2
    assert main(["--meters", "1", "--decoder-key", "zz"]) == 2


def test_cli_decoder_keys_from_a_file(tmp_path) -> None:
    "One key per meter from a JSON file (scripts/demo), null for none"
    from simulators.meter.cli import main, read_decoder_keys

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(["00" * 16, None]))
    default = bytes(range(16))
    assert read_decoder_keys(str(keys), 3, default) == [bytes(16), None, default]
    assert read_decoder_keys(None, 2, None) == [None, None]
    for bad in ('["zz"]', "[1]", '{"0": "00"}', "[null, null, null, null]", "no"):
        keys.write_text(bad)
        with pytest.raises(ValueError, match="keys.json"):
            read_decoder_keys(str(keys), 3, None)
        assert main(["--meters", "3", "--port", "0", "--decoder-keys", str(keys)]) == 2
    assert main(["--meters", "1", "--decoder-keys", str(tmp_path / "none")]) == 2


def test_history_of_a_new_meter_never_reads_below_zero():
    # A default meter (1.5 MWh on the register) under 1 kW has less energy than
    # a year of billing history would need: the early months read zero.
    config = MeterConfig(index=0, serial="H0", port=0, load_kw=1.0)
    with MeterSimulator([config]) as simulator:
        state = simulator.meter(0)
        energies = [row.values[0] for row in state.billing]
        assert min(energies) == 0
        assert energies == sorted(energies)
        assert all(row.values[0] >= 0 for row in state.load_profile)


# --- activity calendar and special days (friendly days) -------------------------

SPECIAL_DAYS = cosem.CosemAttribute(
    CI.SPECIAL_DAYS_TABLE, cosem.Obis(0, 0, 11, 0, 0), 2
)
CALENDAR = cosem.Obis(0, 0, 13, 0, 0)


def special_day_method(n: int) -> cosem.CosemMethod:
    return cosem.CosemMethod(CI.SPECIAL_DAYS_TABLE, cosem.Obis(0, 0, 11, 0, 0), n)


def calendar_attr(n: int) -> cosem.CosemAttribute:
    return cosem.CosemAttribute(CI.ACTIVITY_CALENDAR, CALENDAR, n)


def test_special_days_insert_replace_delete(clock: FakeClock) -> None:
    "Holidays go into the special days table (class 11) by index"
    christmas = bytes([0xFF, 0xFF, 12, 25, 0xFF])  # every year, 25 December
    new_year = bytes([0xFF, 0xFF, 1, 1, 0xFF])
    with start_sim(clock) as sim:
        with client(sim, 0, "gmac").session() as c:
            for index, date, day_id in ((2, christmas, 9), (1, new_year, 9)):
                entry = struct_(u16(index), octets(date), u8(day_id))
                c.action(special_day_method(1), encode(entry))
            assert value(c.get(SPECIAL_DAYS)) == [[1, new_year, 9], [2, christmas, 9]]
            # The same index again replaces the entry; delete removes it.
            replaced = struct_(u16(2), octets(christmas), u8(7))
            c.action(special_day_method(1), encode(replaced))
            c.action(special_day_method(2), encode(u16(1)))
            assert value(c.get(SPECIAL_DAYS)) == [[2, christmas, 7]]
            with pytest.raises(ActionError):
                c.action(special_day_method(1), encode(u16(3)))  # not an entry
        # Methods are for the management client only (SAP 1, HLS-GMAC).
        with client(sim, 0, "lls").session() as c:
            with pytest.raises(ActionError):
                c.action(special_day_method(2), encode(u16(2)))
            assert value(c.get(SPECIAL_DAYS)) == [[2, christmas, 7]]


def test_activity_calendar_passive_becomes_active(clock: FakeClock) -> None:
    "A passive calendar written, then activated (class 20 method 1)"
    with start_sim(clock) as sim, client(sim, 0, "gmac").session() as c:
        result = c.set(calendar_attr(6), encode(octets(b"FRIENDLY")))
        assert result.result == enumerations.DataAccessResult.SUCCESS
        assert value(c.get(calendar_attr(2))) == b""  # not active yet
        refused = c.set(calendar_attr(2), encode(octets(b"X")))  # active: read-only
        assert refused.result != enumerations.DataAccessResult.SUCCESS
        c.action(cosem.CosemMethod(CI.ACTIVITY_CALENDAR, CALENDAR, 1), encode(i8(0)))
        assert value(c.get(calendar_attr(2))) == b"FRIENDLY"
