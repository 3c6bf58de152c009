"""DLMS client hygiene: secrets out of repr, GCM nonces never
reused across meters sharing a key, reflected request frames refused."""

from __future__ import annotations

import asyncio

import pytest
from trytond.modules.prepaid_headend.dlms import operations as ops
from trytond.modules.prepaid_headend.dlms.counters import (
    MemoryCounterStore,
    counter_key,
    key_fingerprint,
)
from trytond.modules.prepaid_headend.dlms.errors import MalformedReply
from trytond.modules.prepaid_headend.dlms.runner import MeterJob, Operation
from trytond.modules.prepaid_headend.dlms.session import (
    ConnectionSettings,
    DlmsSession,
)
from trytond.modules.prepaid_headend.dlms.transport import TcpTransport

from simulators.meter import MeterConfig, MeterSimulator

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
OTHER_EK = bytes.fromhex("0F0E0D0C0B0A09080706050403020100")
PASSWORD = b"s3cr3t-LLS-pw"


def _settings(**kw) -> ConnectionSettings:
    kw.setdefault("auth", "hls-gmac")
    kw.setdefault("client_address", 1)
    kw.setdefault("block_cipher_key", EK)
    kw.setdefault("authentication_key", AK)
    return ConnectionSettings(**kw)


# --- repr -------------------------------------------------------------------
def test_connection_settings_repr_has_no_secrets():
    s = _settings(password=PASSWORD)
    for text in (repr(s), str(s)):
        assert EK.hex() not in text.lower() and AK.hex() not in text.lower()
        assert "D0D1D2" not in text.upper().replace("\\X", "")
        assert "s3cr3t" not in text
        assert "block_cipher_key" not in text and "password" not in text
    assert "127.0.0.1" in repr(s)  # the non-secret part stays useful


def test_meter_job_repr_has_no_secrets():
    job = MeterJob("42", _settings(password=PASSWORD), [Operation("read_clock")])
    text = repr(job)
    assert EK.hex() not in text.lower() and AK.hex() not in text.lower()
    assert "s3cr3t" not in text and "\\x00\\x01\\x02" not in text


# --- invocation counters keyed by (system title, key) ------------------------
def test_meters_sharing_a_key_share_one_counter_sequence():
    # Two meters, same utility-wide key: before the fix each had its own
    # counter (meter_key) and both got nonce title || 1, title || 2...
    a = _settings(host="10.0.0.1", meter_key="meter-1")
    b = _settings(host="10.0.0.2", meter_key="meter-2")
    assert a.counter_key == b.counter_key
    store = MemoryCounterStore()
    used = [store.get_and_increment(s.counter_key) for s in (a, b, a, b)]
    assert len(set(used)) == 4  # never the same (title, counter) under EK


def test_other_key_or_title_has_its_own_sequence():
    base = _settings()
    assert base.counter_key != _settings(block_cipher_key=OTHER_EK).counter_key
    assert base.counter_key != _settings(system_title=b"PPSHES02").counter_key


def test_counter_key_holds_a_fingerprint_not_the_key():
    key = counter_key(b"PPSHES01", EK)
    assert EK.hex() not in key.lower() and EK.hex().upper() not in key
    assert key == f"gcm:{b'PPSHES01'.hex().upper()}:{key_fingerprint(EK)}"
    assert len(key_fingerprint(EK)) == 32 and key_fingerprint(EK) != EK.hex()
    with pytest.raises(ValueError):
        key_fingerprint(b"short")


# --- reflected frames -----------------------------------------------------------


class ReflectingTransport(TcpTransport):
    """Man in the middle: once armed, answers the client with its own frame
    (WRAPPER ports swapped so that it looks like the meter's)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.armed = False
        self.last_sent = b""

    async def send(self, data: bytes) -> None:
        self.last_sent = bytes(data)
        if not self.armed:
            await super().send(data)

    async def receive(self, timeout: float) -> bytes:
        if not self.armed:
            return await super().receive(timeout)
        frame = bytearray(self.last_sent)
        frame[2:4], frame[4:6] = self.last_sent[4:6], self.last_sent[2:4]
        return bytes(frame)


def test_reflected_request_is_a_malformed_reply():
    from trytond.modules.prepaid_headend.tests.test_dlms_e2e import free_port_block

    port = free_port_block(1)
    with MeterSimulator([MeterConfig(index=0, port=port, seed=1)]):
        settings = _settings(port=port, timeout=5.0)
        transport = ReflectingTransport("127.0.0.1", port)
        store = MemoryCounterStore(start=5_000_000)

        async def go():
            session = DlmsSession(settings, transport=transport, counter_store=store)
            async with session:
                assert await ops.read_clock(session)  # genuine reply accepted
                transport.armed = True
                try:
                    with pytest.raises(MalformedReply, match="not a reply|title"):
                        await ops.read_clock(session)
                finally:
                    transport.armed = False
                    session.associated = False  # the line is not trustworthy

        asyncio.run(go())


# --- HLS challenge ------------------------------------------------------------


def test_hls_challenge_comes_from_the_os_csprng(monkeypatch):
    """gurux draws the client-to-server challenge with ``random``, whose state
    can be recovered from its outputs: the session gives its own, from
    ``secrets``, a new one per association, and never calls gurux's."""
    from gurux_dlms.GXSecure import GXSecure
    from trytond.modules.prepaid_headend.tests.test_dlms_e2e import free_port_block

    def predictable():
        raise AssertionError("gurux's random-module challenge was used")

    monkeypatch.setattr(
        GXSecure, "generateChallenge", classmethod(lambda cls: predictable())
    )
    port = free_port_block(1)
    challenges = []
    with MeterSimulator([MeterConfig(index=0, port=port, seed=1)]):
        for start in (7_000_000, 8_000_000):

            async def go(start=start):
                session = DlmsSession(
                    _settings(port=port, timeout=5.0),
                    counter_store=MemoryCounterStore(start=start),
                )
                async with session:
                    assert await ops.read_clock(session)
                    challenges.append(bytes(session.client.settings.ctoSChallenge))

            asyncio.run(go())
    assert len(challenges[0]) == 16 and challenges[0] != challenges[1]
