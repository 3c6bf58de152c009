"""Overall deadlines and reply limits of the DLMS client, against misbehaving
meters on loopback sockets (see hostile_meter).

A per-packet timeout alone lets a meter that sends a byte now and then, or
keeps sending, hold the head-end for ever.  These tests assert the cut-off
and how it is reported; time is only checked against generous bounds.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
from trytond.modules.prepaid_headend.dlms import operations as ops
from trytond.modules.prepaid_headend.dlms.cli import (
    EXIT_DEADLINE,
    EXIT_DLMS_ERROR,
    EXIT_OVERSIZE,
)
from trytond.modules.prepaid_headend.dlms.errors import (
    ConnectionFailed,
    DeadlineExceeded,
    DlmsTimeout,
    MalformedReply,
    ReplyTooLarge,
)
from trytond.modules.prepaid_headend.dlms.frames import FrameSplitter
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
from trytond.modules.prepaid_headend.tests.hostile_meter import HostileMeter

# Generous: the cut-off must come near the deadline, not within milliseconds
# (two shared CPU cores run the suite).
MARGIN = 3.0


def settings(meter: HostileMeter, **values) -> ConnectionSettings:
    values.setdefault("timeout", 1.0)
    values.setdefault("deadline", 1.5)
    return ConnectionSettings(port=meter.port, **values)


async def read_clock(settings: ConnectionSettings):
    async with DlmsSession(settings) as session:
        return await ops.read_clock(session)


def timed(fn, *args):
    start = time.monotonic()
    try:
        return fn(*args), time.monotonic() - start
    except Exception as exc:
        return exc, time.monotonic() - start


def test_trickling_meter_is_cut_off_at_the_deadline():
    with HostileMeter("trickle", interval=0.2) as meter:
        error, elapsed = timed(asyncio.run, read_clock(settings(meter)))
        assert isinstance(error, DeadlineExceeded), error
        assert error.kind == "deadline" and error.scope == "exchange"
        assert "association" in str(error) and "1.5 s deadline" in str(error)
        assert meter.sent > 8  # it did trickle: the per-packet timeout never fired
        assert elapsed < 1.5 + MARGIN
        assert meter.client_gone()


def test_flood_is_cut_off_by_the_reply_limit():
    with HostileMeter("flood") as meter:
        cfg = settings(meter, deadline=60.0, max_reply_bytes=1024 * 1024)
        error, elapsed = timed(asyncio.run, read_clock(cfg))
        assert isinstance(error, ReplyTooLarge), error
        assert error.kind == "oversize" and "flood" in str(error)
        assert meter.sent < 4 * 1024 * 1024  # cut off, not read to the end
        assert meter.client_gone()


def test_flood_within_the_reply_limit_is_cut_off_at_the_deadline():
    with HostileMeter("flood", interval=0.05, flood_bytes=10**9) as meter:
        # A reply limit the paced flood (about 1.2 MB/s) cannot reach before
        # the deadline: only the deadline may cut it off.  The limit stays
        # finite so that a deadline that failed to fire ends the test with a
        # failure, not a read of the whole flood.
        cfg = settings(meter, max_reply_bytes=64 * 2**20)
        error, elapsed = timed(asyncio.run, read_clock(cfg))
        assert isinstance(error, DeadlineExceeded), error
        assert "request" in str(error)
        assert elapsed < 1.5 + MARGIN
        assert meter.client_gone()


def test_garbage_is_refused_at_the_first_chunk():
    for framing in ("wrapper", "hdlc"):
        with HostileMeter("garbage") as meter:
            cfg = settings(meter, framing=framing, deadline=30.0)
            error, elapsed = timed(asyncio.run, read_clock(cfg))
            assert isinstance(error, MalformedReply), (framing, error)
            assert meter.sent < meter.flood_bytes
            assert meter.client_gone()


def test_silent_meter_times_out_per_packet():
    with HostileMeter("silent") as meter:
        error, elapsed = timed(asyncio.run, read_clock(settings(meter, timeout=0.5)))
        assert isinstance(error, DlmsTimeout) and error.transient, error
        assert elapsed < 0.5 + MARGIN


def test_half_open_meter_is_a_connection_failure():
    with HostileMeter("half_open") as meter:
        error, _ = timed(asyncio.run, read_clock(settings(meter, deadline=30.0)))
        assert isinstance(error, ConnectionFailed), error
        assert meter.client_gone()


def test_send_to_a_meter_that_stopped_reading_is_cut_off():
    """The deadline also covers sending: a peer whose receive window stays
    full would hold a write (firmware blocks) for ever."""

    async def send_big():
        session = DlmsSession(settings(meter, deadline=1.0))
        await session.transport.open(1.0)
        try:
            await session.request([b"\x00" * (64 * 1024 * 1024)])
        finally:
            await session.close()

    with HostileMeter("deaf") as meter:
        error, elapsed = timed(asyncio.run, send_big())
        assert isinstance(error, DeadlineExceeded), error
        assert elapsed < 1.0 + MARGIN


def test_runner_job_deadline_covers_every_attempt():
    """Retries of a silent meter stop at the job's deadline, reported as the
    job's own cut-off with the attempts made."""
    with HostileMeter("silent") as meter:
        job = MeterJob(
            "m1",
            settings(meter, timeout=0.4, deadline=5.0),
            [Operation("read_clock")],
            deadline=1.5,
        )
        policy = RetryPolicy(retries=50, base_delay=0.05, max_delay=0.05)
        (result,), elapsed = timed(read_meters, [job], 1, policy)
        assert not result.ok
        assert result.error_kind == "deadline"
        assert result.error.scope == "job"
        assert "1.5 s deadline" in str(result.error)
        assert 2 <= result.attempts < 50
        assert elapsed < 1.5 + MARGIN


def test_runner_does_not_retry_a_trickling_meter():
    with HostileMeter("trickle") as meter:
        job = MeterJob("m1", settings(meter, deadline=1.0), ["read_clock"])
        (result,) = read_meters([job], policy=RetryPolicy(retries=3, base_delay=0))
        assert result.error_kind == "deadline" and result.attempts == 1
        assert meter.connections == 1


def test_settings_refuse_non_positive_limits():
    for name in ("timeout", "deadline", "max_reply_bytes"):
        for value in (0, -1, float("nan")):
            with pytest.raises(ValueError, match=name):
                ConnectionSettings(**{name: value})


# --- frame splitter ------------------------------------------------------
def test_wrapper_frames_are_split_from_any_chunking():
    frame = bytes.fromhex("0001000100100003") + b"abc"
    stream = frame * 3
    splitter = FrameSplitter("wrapper")
    out = []
    for byte in stream:
        out += splitter.feed(bytes([byte]))
    assert out == [frame] * 3 and splitter.pending == 0


def test_hdlc_frames_with_shared_flags_and_noise():
    content = bytes([0x03, 0x21, 0x73, 0xAA, 0xBB])  # addresses, control, FCS
    length = 2 + len(content)  # the format field counts itself
    frame = b"\x7e" + bytes([0xA0, length]) + content + b"\x7e"
    splitter = FrameSplitter("hdlc")
    # noise, a frame, a second frame sharing the closing flag, a repeated flag
    stream = b"\x01\x02" + frame + frame[1:] + b"\x7e" + frame
    out = []
    for i in range(0, len(stream), 3):
        out += splitter.feed(stream[i : i + 3])
    assert out == [frame] * 3


def test_hdlc_noise_without_frames_is_refused():
    splitter = FrameSplitter("hdlc")
    with pytest.raises(MalformedReply, match="no HDLC frame"):
        for _ in range(10):
            splitter.feed(b"\x7e\x55" * 512)


# --- prepaid-dlms ----------------------------------------------------------
def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str, float]:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "trytond.modules.prepaid_headend.dlms.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


def one_json_line(stdout: str) -> dict:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout[:500]
    return json.loads(lines[0])


def test_cli_flood_of_50_mb_prints_one_json_error():
    with HostileMeter("flood") as meter:
        rc, out, _, _ = cli("--port", str(meter.port), "clock", "get")
        assert rc == EXIT_OVERSIZE
        answer = one_json_line(out)
        assert answer["kind"] == "oversize"
        assert meter.sent < meter.flood_bytes


def test_cli_trickle_exits_at_the_deadline():
    with HostileMeter("trickle", interval=0.3) as meter:
        rc, out, _, elapsed = cli(
            "--port", str(meter.port), "--timeout", "3", "--deadline", "2",
            "clock", "get",
        )  # fmt: skip
        assert rc == EXIT_DEADLINE
        assert one_json_line(out)["kind"] == "deadline"
        assert elapsed < 2 + MARGIN + 2  # + interpreter start-up


def test_cli_garbage_is_one_json_error():
    with HostileMeter("garbage") as meter:
        rc, out, _, _ = cli("--port", str(meter.port), "clock", "get")
        assert rc == EXIT_DLMS_ERROR
        assert one_json_line(out)["kind"] == "malformed"


def test_cli_refuses_a_bad_deadline():
    rc, out, err, _ = cli("--deadline", "nan", "clock", "get")
    assert rc == 64 and out == "" and "--deadline" in err
