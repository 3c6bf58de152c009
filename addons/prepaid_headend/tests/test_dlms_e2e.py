"""Head-end client against the meter simulator over real TCP on 127.0.0.1.

Skipped when the simulator (simulators.meter, MeterSimulator) is absent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading

import pytest
from trytond.modules.prepaid_headend.dlms import operations as ops
from trytond.modules.prepaid_headend.dlms.counters import MemoryCounterStore
from trytond.modules.prepaid_headend.dlms.errors import (
    AccessDenied,
    AuthenticationFailure,
    ConnectionFailed,
    DlmsTimeout,
    FirmwareError,
    MalformedReply,
    ServiceError,
)
from trytond.modules.prepaid_headend.dlms.runner import (
    MeterJob,
    Operation,
    RetryPolicy,
    read_meters,
)
from trytond.modules.prepaid_headend.dlms.session import (
    ConnectionSettings,
    DlmsSession,
)
from trytond.modules.prepaid_sts.engine import api as sts_engine

from simulators.meter import MeterConfig, MeterSimulator

UTC = dt.UTC
OTHER_EK = bytes.fromhex("0F0E0D0C0B0A09080706050403020100")
DK = bytes.fromhex("0123456789ABCDEF")  # STS decoder key (EA 07) of W2, H2
OTHER_AK = bytes.fromhex("DFDEDDDCDBDAD9D8D7D6D5D4D3D2D1D0")

# Meter indexes of the module fleet.
W, H, WRONG_KEYS, W2, H2 = 0, 1, 2, 3, 4
AUTH_SAP = {"none": 16, "lls": 32, "hls-md5": 1, "hls-gmac": 1}


def free_port_block(count: int) -> int:
    """First port of `count` consecutive free ports."""
    for base in range(24000, 32000, 97):  # below the ephemeral range
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


@pytest.fixture(scope="module")
def sim():
    base = free_port_block(5)
    configs = [
        MeterConfig(index=W, port=base, framing="wrapper", seed=1),
        MeterConfig(index=H, port=base + 1, framing="hdlc", seed=2),
        MeterConfig(
            index=WRONG_KEYS,
            port=base + 2,
            framing="wrapper",
            block_cipher_key=OTHER_EK,
            authentication_key=OTHER_AK,
        ),
        MeterConfig(index=W2, port=base + 3, framing="wrapper", seed=4, decoder_key=DK),
        MeterConfig(index=H2, port=base + 4, framing="hdlc", seed=5, decoder_key=DK),
    ]
    with MeterSimulator(configs) as s:
        s.base_port = base
        yield s


STORE = MemoryCounterStore()


def conn(sim, index: int, auth: str = "lls", **kw) -> ConnectionSettings:
    framing = "hdlc" if index in (H, H2) else "wrapper"
    kw.setdefault("timeout", 5.0)
    # One counter sequence per meter: the meter remembers our last counter.
    kw.setdefault("meter_key", f"meter-{index}")
    return ConnectionSettings(
        port=sim.base_port + index,
        framing=framing,
        client_address=AUTH_SAP[auth],
        auth=auth,
        **kw,
    )


def run(coro):
    return asyncio.run(coro)


async def _with(settings, fn, store=STORE):
    async with DlmsSession(settings, counter_store=store) as s:
        return await fn(s)


@pytest.mark.parametrize("index", [W, H])
@pytest.mark.parametrize("auth", ["none", "lls", "hls-md5", "hls-gmac"])
def test_associate_and_read_clock(sim, index, auth):
    meter_time = run(_with(conn(sim, index, auth), ops.read_clock))
    now = dt.datetime.now(UTC)
    offset = sim.meter(index).clock_offset_s
    assert abs((meter_time - now).total_seconds() - offset) < 5


@pytest.mark.parametrize("index", [W, H])
def test_read_energy_with_scaler_and_unit(sim, index):
    reading = run(
        _with(conn(sim, index), lambda s: ops.read_register(s, ops.ENERGY_IMPORT))
    )
    assert reading.unit_name == "Wh" and reading.scaler == 0
    assert reading.value == reading.raw
    assert abs(reading.raw - sim.meter(index).energy_import_wh) < 50_000


def test_read_voltage_applies_negative_scaler(sim):
    r = run(_with(conn(sim, W), lambda s: ops.read_register(s, "1.0.32.7.0.255")))
    assert r.unit_name == "V" and r.scaler == -1
    assert r.value == pytest.approx(r.raw / 10)
    assert 150 < r.value < 300


@pytest.mark.parametrize("index", [W, H])
def test_profile_by_range_last_three_hours(sim, index):
    async def go(s):
        now = await ops.read_clock(s)
        return now, await ops.read_profile(
            s, ops.LOAD_PROFILE, now - dt.timedelta(hours=3), now
        )

    now, (cols, rows) = run(_with(conn(sim, index), go))
    assert cols == ["0.0.1.0.0.255:2", "1.0.1.8.0.255:2", "1.0.1.7.0.255:2"]
    assert 11 <= len(rows) <= 13
    times = [r[0] for r in rows]
    assert all(now - dt.timedelta(hours=3) <= t <= now for t in times)
    assert all(t.minute % 15 == 0 and t.tzinfo is not None for t in times)
    assert times == sorted(times)
    energies = [r[1] for r in rows]
    assert energies == sorted(energies)  # cumulative register


@pytest.mark.parametrize("index", [W, H])
@pytest.mark.parametrize("auth", ["lls", "hls-gmac"])
def test_profile_full_buffer_is_multi_block(sim, index, auth):
    # 192 rows need GET block transfer (and HDLC segmentation); ciphered, every
    # block request takes a fresh invocation counter or the meter refuses it.
    settings = conn(sim, index, auth)
    store_before = STORE.peek(settings.counter_key)
    cols, rows = run(
        _with(
            settings,
            lambda s: ops.read_profile_by_entry(s, ops.LOAD_PROFILE),
        )
    )
    assert len(rows) == 192  # 2 days of 15-min rows
    times = [r[0] for r in rows]
    assert times == sorted(times) and len(set(times)) == 192
    if auth == "hls-gmac":
        assert STORE.peek(settings.counter_key) - store_before >= 4


@pytest.mark.parametrize("index", [W, H])
def test_profile_by_entry(sim, index):
    async def go(s):
        _c, all_rows = await ops.read_profile_by_entry(s, ops.LOAD_PROFILE, 1, 0)
        _c, some = await ops.read_profile_by_entry(s, ops.LOAD_PROFILE, 2, 4)
        return all_rows, some

    all_rows, some = run(_with(conn(sim, index), go))
    assert len(some) == 3
    assert some == all_rows[1:4]


def test_set_clock_round_trip(sim):
    target = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(minutes=7)
    back = run(_with(conn(sim, W2), lambda s: ops.set_clock(s, target)))
    assert abs((back - target).total_seconds()) < 3
    assert abs(sim.meter(W2).clock_offset_s - 420) < 3
    now = dt.datetime.now(UTC)  # restore
    run(_with(conn(sim, W2), lambda s: ops.set_clock(s, now)))


@pytest.mark.parametrize("index", [W, H])
def test_disconnect_then_reconnect_confirmed(sim, index):
    settings = conn(sim, index, "hls-gmac")
    off = run(_with(settings, ops.disconnect))
    assert off == ops.RelayState(False, 0)
    assert sim.meter(index).relay_connected is False
    on = run(_with(settings, ops.reconnect))
    assert on == ops.RelayState(True, 1)
    assert sim.meter(index).relay_connected is True


def test_lls_client_may_not_act(sim):
    with pytest.raises(AccessDenied):
        run(_with(conn(sim, W), ops.disconnect))


def test_wrong_lls_password_is_authentication_failure(sim):
    with pytest.raises(AuthenticationFailure):
        run(_with(conn(sim, W, password="wrong-pw"), ops.read_clock))


def test_wrong_hls_md5_secret_is_authentication_failure(sim):
    with pytest.raises(AuthenticationFailure):
        run(_with(conn(sim, H, "hls-md5", password="NotGurux"), ops.read_clock))


def test_wrong_gmac_keys_reported(sim):
    # The meter at WRONG_KEYS holds other EK/AK than the head-end: it cannot
    # decrypt the ciphered xDLMS-initiate of the AARQ and answers with an AARE
    # rejected-permanent / authentication-failure (not a timeout).
    with pytest.raises(AuthenticationFailure) as err:
        run(_with(conn(sim, WRONG_KEYS, "hls-gmac"), ops.read_clock))
    assert err.value.diagnostic == 13 and not err.value.transient


def test_counters_come_from_store_and_are_never_reused(sim):
    store = MemoryCounterStore()
    settings = conn(sim, W2, "hls-gmac", meter_key="meter-w2")
    key = settings.counter_key  # (system title, key fingerprint), not the meter
    store.set_floor(key, 1_000_000)  # above anything used before
    run(_with(settings, ops.read_clock, store))
    first = store.peek(key)
    assert first > 1_000_000
    run(_with(settings, ops.read_clock, store))
    assert store.peek(key) > first
    # A fresh store would restart at 1: the meter refuses the replayed
    # counter in the AARQ (AARE authentication-failure), never retried.
    with pytest.raises(AuthenticationFailure):
        run(_with(settings, ops.read_clock, MemoryCounterStore()))


# -- faults injected by small local servers ------------------------------------
class Proxy:
    """TCP proxy flipping one ciphertext byte of ciphered replies (meter to
    client) once the association is up."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.tampered = 0

    async def handle(self, reader, writer):
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(src, dst, tamper):
            try:
                while data := await src.read(65536):
                    if tamper:
                        data = self.tamper(data)
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_w, False), pump(up_r, writer, True))

    def tamper(self, data: bytes) -> bytes:
        # WRAPPER: 8-byte header then the APDU; glo-get/action responses.
        if len(data) > 30 and data[8] in (0xCC, 0xCF, 0xDB):
            buf = bytearray(data)
            buf[-13] ^= 0x01  # last ciphertext byte, just before the 12-byte tag
            self.tampered += 1
            return bytes(buf)
        return data


def test_tampered_gcm_reply_is_malformed(sim):
    async def go():
        proxy = Proxy(sim.base_port + W)
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings = conn(sim, W, "hls-gmac")
        settings.port = port
        try:
            with pytest.raises(MalformedReply, match="tag"):
                async with DlmsSession(settings, counter_store=STORE) as s:
                    await ops.read_clock(s)
        finally:
            server.close()
        return proxy.tampered

    assert run(go()) >= 1


def test_silent_meter_times_out():
    async def go():
        held = []

        async def accept(reader, writer):
            held.append(writer)  # accept and never answer

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings = ConnectionSettings(port=port, timeout=0.3)
        try:
            with pytest.raises(DlmsTimeout):
                await _with(settings, ops.read_clock)
        finally:
            for w in held:
                w.close()
            server.close()

    run(go())


def test_refused_connection():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(ConnectionFailed):
        run(_with(ConnectionSettings(port=port, timeout=1), ops.read_clock))


# -- firmware --------------------------------------------------------------------
def test_firmware_upgrade_success_then_corrupt_image_refused(sim):
    settings = conn(sim, H2, "hls-gmac")
    body = bytes(range(256)) * 20  # 5 kB, 27 blocks of 192 bytes
    result = run(
        _with(
            settings,
            lambda s: ops.upgrade_firmware(s, "FW-2.0.0", ops.build_image(body)),
        )
    )
    assert result.active_firmware_id == "FW-2.0.0"
    assert result.blocks == (len(body) + 32 + 191) // 192
    assert sim.meter(H2).firmware_id == "FW-2.0.0"

    corrupt = bytearray(ops.build_image(body))
    corrupt[100] ^= 0xFF
    with pytest.raises(FirmwareError) as err:
        run(
            _with(
                settings, lambda s: ops.upgrade_firmware(s, "FW-3.0.0", bytes(corrupt))
            )
        )
    assert err.value.status == 4
    assert sim.meter(H2).firmware_id == "FW-2.0.0"


# -- job runner --------------------------------------------------------------------
def test_runner_reports_each_meter_without_blocking(sim):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead_port = s.getsockname()[1]
    s.close()
    ops_list = [
        Operation("read_clock"),
        Operation("read_register", {"obis": ops.ENERGY_IMPORT}),
    ]
    jobs = [
        MeterJob("w", conn(sim, W), ops_list),
        MeterJob("h", conn(sim, H, "hls-gmac"), ops_list),
        MeterJob("bad-pw", conn(sim, W2, password="nope"), ops_list),
        MeterJob("dead", ConnectionSettings(port=dead_port, timeout=1), ops_list),
    ]
    results = read_meters(
        jobs,
        concurrency=4,
        policy=RetryPolicy(retries=2, base_delay=0.01),
        counter_store=STORE,
        seed=1,
    )
    by_key = {r.key: r for r in results}
    assert by_key["w"].ok and by_key["h"].ok
    assert by_key["w"].results["read_register"].unit_name == "Wh"
    assert by_key["bad-pw"].error_kind == "authentication"
    assert by_key["bad-pw"].attempts == 1  # never retried
    assert by_key["dead"].error_kind == "connection"
    assert by_key["dead"].attempts == 3  # transient: retried twice


def test_runner_retries_through_dropped_replies():
    # A meter that swallows the first connection's request, then answers.
    base = free_port_block(1)
    cfg = MeterConfig(index=9, port=base, drop_rate=0.3, seed=7)
    with MeterSimulator([cfg]):
        jobs = [
            MeterJob(
                f"j{i}",
                ConnectionSettings(
                    port=base, client_address=32, auth="lls", timeout=0.5
                ),
                ["read_clock"],
            )
            for i in range(4)
        ]
        results = read_meters(
            jobs, concurrency=1, policy=RetryPolicy(retries=6, base_delay=0.01), seed=3
        )
    assert all(r.ok for r in results), [(r.key, r.error) for r in results]
    assert any(r.attempts > 1 for r in results)


def test_threads_do_not_share_state(sim):
    errors = []

    def worker(index):
        try:
            run(_with(conn(sim, index, "hls-gmac"), ops.read_clock))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in (W, H)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# -- prepayment tokens (STS engine from addons/prepaid_sts) ---------------------
def _sts_token(kwh: int, minutes_ago: int = 0) -> str:
    engine = sts_engine
    issued = dt.datetime.now(UTC) - dt.timedelta(minutes=minutes_ago)
    return engine.credit_token(
        DK, "07", 0, 0, amount=kwh, issued_at=issued, base_date="14"
    )


def test_enter_token_adds_credit_and_rejects_reuse(sim):
    token = _sts_token(10, minutes_ago=5)
    settings = conn(sim, H2, "hls-gmac")
    before = sim.meter(H2).credit_wh
    st = run(_with(settings, lambda s: ops.enter_token(s, token)))
    assert st.status == 3 and st.accepted
    assert sim.meter(H2).credit_wh - before == pytest.approx(10_000, abs=500)
    again = run(_with(settings, lambda s: ops.enter_token(s, token)))
    assert again.status == 6  # TID already used


def test_enter_token_format_and_authentication_failures(sim):
    settings = conn(sim, H2, "hls-gmac")
    assert run(_with(settings, lambda s: ops.enter_token(s, "12345"))).status == 4
    status = run(_with(settings, lambda s: ops.enter_token(s, "1" * 20))).status
    if status == 7:
        pytest.xfail("simulator does not check the STS engine's crc_ok flag")
    assert status == 5


def test_limiter_threshold_write_read(sim):
    settings = conn(sim, W, "hls-gmac")
    assert run(_with(settings, lambda s: ops.write_limiter_threshold(s, 4600))) == 4600
    values = run(_with(settings, ops.read_limiter))
    assert values["active"] == 4600


def test_limiter_settings_written_and_verified(sim):
    settings = conn(sim, W, "hls-gmac")
    wanted = {
        "active": 2500,
        "normal": 5000,
        "emergency": 1200,
        "min_over_threshold_duration": 30,
        "min_under_threshold_duration": 90,
    }
    assert run(_with(settings, lambda s: ops.write_limiter(s, wanted))) == wanted
    meter = sim.meter(W)
    assert meter.limiter_threshold_active_w == 2500
    assert meter.limiter_threshold_normal_w == 5000
    assert meter.limiter_threshold_emergency_w == 1200
    assert (meter.limiter_min_over_s, meter.limiter_min_under_s) == (30, 90)
    with pytest.raises(ValueError, match="unknown limiter"):
        run(_with(settings, lambda s: ops.write_limiter(s, {"bogus": 1})))


class _ClampingLimiter:
    """A limiter that caps every threshold at 4 kW, as a meter with a lower
    rating would: the write succeeds, the read-back tells the truth."""

    def __init__(self) -> None:
        self.values: dict[int, int] = {}

    async def set(self, obis, class_id, attr, value) -> None:
        number = int.from_bytes(value[1:], "big")  # A-XDR double-long-unsigned
        self.values[attr] = min(number, 4000) if attr <= 5 else number

    async def get(self, obis, class_id, attr):
        return self.values.get(attr, 0)


def test_limiter_read_back_mismatch_is_an_error():
    wanted = {"active": 5000, "normal": 5000}
    with pytest.raises(ServiceError, match="read-back differs"):
        run(ops.write_limiter(_ClampingLimiter(), wanted))


def test_event_log_and_alarm_register(sim):
    settings = conn(sim, W, "hls-gmac")
    run(_with(settings, ops.disconnect))
    run(_with(settings, ops.reconnect))
    events = run(
        _with(settings, lambda s: ops.read_event_log(s, ops.DISCONNECTOR_EVENT_LOG))
    )
    codes = [code for _t, code in events]
    assert 50 in codes and 51 in codes  # remote disconnection / connection
    assert all(t.tzinfo is not None for t, _c in events)
    assert isinstance(run(_with(settings, ops.read_alarm_register)), int)


# -- the prepaid-dlms command ------------------------------------------------------
def cli(*args: str) -> tuple[int, dict]:
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "trytond.modules.prepaid_headend.dlms.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    return proc.returncode, json.loads(lines[0])


def test_cli_read_clock_relay_profile_token(sim, tmp_path):
    port = str(sim.base_port + W2)
    lls = ["--port", port, "--auth", "lls", "--password", "12345678"]
    # Each run is a new process: counters persist in a file, and a distinct
    # client system title keeps them apart from the in-process tests.
    hls = [
        "--port", port, "--auth", "hls-gmac", "--system-title", "5050534845533032",
        "--counter-file", str(tmp_path / "ic.json"),
    ]  # fmt: skip

    rc, out = cli(*lls, "read", "1.0.1.8.0.255", "--class", "3", "--attr", "2")
    assert rc == 0 and out["obis"] == "1.0.1.8.0.255" and out["value"] > 0
    assert (out["class"], out["attr"]) == (3, 2)

    rc, out = cli(*lls, "clock", "set", "2030-01-02T03:04:05Z")
    assert rc == 0 and out["time"].startswith("2030-01-02T03:04:0")
    rc, out = cli(*lls, "clock", "get")
    assert rc == 0 and out["time"].startswith("2030-01-02T03:0")
    rc, out = cli(*lls, "clock", "set")  # now
    assert rc == 0
    got = dt.datetime.fromisoformat(out["time"].replace("Z", "+00:00"))
    assert abs((got - dt.datetime.now(UTC)).total_seconds()) < 10

    rc, out = cli(*hls, "relay", "disconnect")
    assert (rc, out) == (0, {"output_state": False, "control_state": 0})
    rc, out = cli(*hls, "relay", "reconnect")
    assert (rc, out) == (0, {"output_state": True, "control_state": 1})
    rc, out = cli(*lls, "relay", "status")
    assert out == {"output_state": True, "control_state": 1}

    end = dt.datetime.now(UTC)
    start = end - dt.timedelta(hours=2)
    rc, out = cli(
        *lls, "profile", "1.0.99.1.0.255",
        "--from", start.isoformat(), "--to", end.isoformat(),
    )  # fmt: skip
    assert rc == 0 and out["columns"][0] == "0.0.1.0.0.255:2"
    assert 7 <= len(out["rows"]) <= 9 and out["rows"][0][0].endswith("Z")

    rc, out = cli(*hls, "token", "12345")
    assert rc == 0 and out["status"] == 4 and out["name"] == "format_failure"


def test_cli_errors_exit_non_zero(sim):
    port = str(sim.base_port + W2)
    rc, out = cli("--port", port, "--auth", "lls", "--password", "bad", "clock", "get")
    assert rc != 0 and out["kind"] == "authentication" and out["error"]
    rc, out = cli("--port", port, "--auth", "lls", "relay", "disconnect")
    assert rc != 0 and out["kind"] == "access_denied"
    rc, out = cli("--port", "1", "clock", "get")
    assert rc != 0 and out["kind"] == "connection"
