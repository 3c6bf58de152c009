"""The concentrator simulator against the head-end's real service, over HTTPS
with client certificates, on simulated time: store-and-forward, discovery,
time, orders and requests, firmware with faults, backhaul faults, and a
token delivered through the DLMS gateway pass-through."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import signal
import subprocess
import sys

import pytest
from trytond.modules.prepaid_headend.concentrator import files, reports
from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator.client import ConcentratorClient
from trytond.modules.prepaid_headend.concentrator.dlms_gateway import (
    GatewayTransport,
)
from trytond.modules.prepaid_headend.concentrator.errors import TransportError
from trytond.modules.prepaid_headend.concentrator.tls import client_context
from trytond.modules.prepaid_headend.dlms import operations as ops
from trytond.modules.prepaid_headend.dlms.counters import MemoryCounterStore
from trytond.modules.prepaid_headend.dlms.errors import DlmsError
from trytond.modules.prepaid_headend.dlms.session import (
    ConnectionSettings,
    DlmsSession,
)
from trytond.modules.prepaid_sts.engine import api as sts_engine

from simulators.dcu import DcuSimulator, Faults, G3Config, MemoryHeadEnd, TestPki
from simulators.dcu import events as ev
from simulators.dcu.store import EVENT_DEPTH, LOAD_PROFILE_DEPTH, MeterStore
from simulators.dcu.testing import HeadEndStandIn
from simulators.meter.model import (
    EV_CLOCK_ADJUSTED_NEW,
    EV_FIRMWARE_ACTIVATED,
    EV_FIRMWARE_VERIFY_FAILED,
)

UTC = dt.UTC
DK = bytes.fromhex("0123456789ABCDEF")  # STS decoder key of the simulated fleet
STEADY = G3Config(never_join_fraction=0.0, flaky_fraction=0.0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def hes(pki):
    with HeadEndStandIn(pki) as stand_in:
        yield stand_in


@pytest.fixture
def make_sim(pki, hes):
    sims = []

    def make(concentrators=1, meters=12, **options):
        options.setdefault("latency_scale", 0)
        options.setdefault("g3", STEADY)
        sim = DcuSimulator(
            concentrators, meters, pki=pki, headend_url=hes.url, **options
        ).start()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.stop()


def client(sim, hes, name="DC0001") -> ConcentratorClient:
    return ConcentratorClient(sim.url(name), hes.client_context())


def window(sim, hours: float = 2, start: float | None = None) -> m.Window:
    now = sim.clock.now()
    begin = now + dt.timedelta(hours=start) if start is not None else None
    return m.Window(end=now + dt.timedelta(hours=hours), start=begin)


def ids(dc, *numbers) -> tuple[str, ...]:
    return tuple(dc.meters[n].meter_id for n in numbers)


def outcome(update, meter_id) -> m.MeterOutcome:
    return next(o for o in update.outcomes if o.meter_id == meter_id)


# -- buffers -----------------------------------------------------------------
def test_buffers_keep_the_depth_of_real_products_dropping_the_oldest():
    store = MeterStore()
    for k in range(LOAD_PROFILE_DEPTH + 16):
        store.load_profile.append(900 * k, k, 1, 0)
    for k in range(EVENT_DEPTH + 50):
        store.events.append(k, 0, 1)
    assert len(store.load_profile) == 4 * 96
    assert next(iter(store.load_profile))[0] == 900 * 16  # the oldest went first
    assert store.load_profile.dropped == 16
    assert len(store.events) == 200 and store.events.last() == (249, 0, 1)
    assert store.nbytes() == (384 * 4 + 200 * 3) * 4  # 4 bytes per value


# -- store-and-forward -------------------------------------------------------
def test_a_day_offline_is_buffered_then_replayed_in_order(make_sim, hes):
    sim = make_sim(meters=10)
    dc = sim.concentrator("DC0001")
    sim.advance(hours=1)  # the network forms, joins are announced
    assert len(hes.backend.meter_statuses) == 10
    dc.go_offline(26 * 3600)
    before = len(hes.backend.arrivals)
    sim.advance(hours=25)
    assert len(hes.backend.arrivals) == before  # nothing got through
    waiting = [item.label for item in dc.outbox]
    assert any("load_profile" in label for label in waiting)
    assert dc.events_logged(ev.EV_DELIVERY_FAILING)
    with pytest.raises(TransportError):  # the concentrator is unreachable too
        client(sim, hes).request(m.SyncRequest(1, m.ReportType.METER_LIST))
    sim.advance(hours=2)  # back online: the outbox is replayed
    assert not dc.outbox
    replayed = hes.backend.arrivals[before:]
    assert [label for _, _, label in replayed][: len(waiting)] == [
        label.split(" #")[-1] if " #" in label else label for label in waiting
    ]
    assert dc.events_logged(ev.EV_BACKHAUL_RESTORED)
    # the whole day collected while offline arrived, for every meter
    day = dt.datetime(2026, 1, 15, tzinfo=UTC)
    for fm in dc.meters:
        times = {r.time for r in hes.backend.rows("interval", fm.meter_id)}
        wanted = {day + dt.timedelta(minutes=15 * k) for k in range(1, 97)}
        assert wanted <= times, fm.meter_id
    assert len(hes.backend.rows("daily")) >= 10


def test_report_files_are_split_into_parts(make_sim, hes):
    sim = make_sim(meters=5, meters_per_file=2)
    sim.advance(hours=25)
    names = [files.parse_name(n) for n in hes.backend.names]
    parts = sorted(n.part for n in names if n.report_type is m.ReportType.LOAD_PROFILE)
    assert parts == [0, 1, 2]
    assert len({r.meter_id for r in hes.backend.rows("interval")}) == 5


# -- discovery ---------------------------------------------------------------
def test_discovery_approval_pending_and_lost_meters(pki):
    def policy(dc_id, item):
        if int(item.meter_id) % 2:
            return m.MeterDecision(item.meter_id, m.Decision.PENDING)
        return m.MeterDecision(item.meter_id, m.Decision.APPROVED, "MX-1")

    with HeadEndStandIn(pki, backend=MemoryHeadEnd(policy=policy)) as hes:
        g3 = G3Config(never_join_fraction=0.25, flaky_fraction=0.0)
        with DcuSimulator(
            1, 12, pki=pki, headend_url=hes.url, latency_scale=0, g3=g3,
            directory="empty", lost_after_s=3600, seed=3,
        ) as sim:  # fmt: skip
            dc = sim.concentrator("DC0001")
            sim.advance(hours=1)
            joined = {i.meter_id for _, i in hes.backend.meter_statuses}
            never = {fm.meter_id for fm in dc.meters if fm.join_at == float("inf")}
            assert never and joined == {fm.meter_id for fm in dc.meters} - never
            approved = {fm.meter_id for fm in dc.meters if fm.approved}
            assert approved == {j for j in joined if int(j) % 2 == 0}
            assert all(dc.meter(a).model == "MX-1" for a in approved)
            # the pending ones are listed but not collected
            pending = sorted(joined - approved)
            sim.advance(hours=24)
            collected = {r.meter_id for r in hes.backend.rows("interval")}
            assert collected == approved
            listing = reports.parse(
                client(sim, hes)
                .request(m.SyncRequest(1, m.ReportType.METER_LIST))
                .payload
            )
            status = {e.meter_id: e.status for e in listing.rows}
            assert {status[p] for p in pending} == {"pending"}
            # the operator approves one pending meter with a MeterAdd order
            fm = dc.meter(pending[0])
            entry = m.DirectoryEntry(fm.meter_id, fm.pda, "MX-2")
            order = m.Order(2, window(sim), m.MeterAddOrder((entry,)))
            assert client(sim, hes).order(order).status is m.RequestStatus.WORKING
            sim.advance(minutes=1)
            assert hes.backend.status("DC0001", 2).status is m.RequestStatus.OK
            assert fm.approved and fm.model == "MX-2"
            # a meter that drops off is reported lost, then back
            gone = sorted(approved)[0]
            dc.force_offline(gone, 3 * 3600)
            sim.advance(hours=2, minutes=10)
            lost = [i for _, i in hes.backend.meter_statuses if i.meter_id == gone]
            assert lost[-1].status is m.MeterStatus.LOST
            assert dc.events_logged(ev.EV_METER_LOST)[-1][4] == gone
            sim.advance(hours=1, minutes=10)
            back = [i for _, i in hes.backend.meter_statuses if i.meter_id == gone]
            assert back[-1].status is m.MeterStatus.JOINED


# -- time --------------------------------------------------------------------
def test_time_sync_sets_the_concentrator_then_the_drifting_meters(make_sim, hes):
    sim = make_sim(
        meters=12,
        clock_offset_s=3 * 3600.0,  # a clock far off
        time_max_auto_s=600.0,
        template={"drifted_fraction": 0.5, "drifted_s": (60.0, 1200.0)},
    )
    dc = sim.concentrator("DC0001")
    sim.advance(minutes=40)
    params = reports.parse(
        client(sim, hes).request(m.SyncRequest(1, m.ReportType.DC_PARAMETERS)).payload
    ).rows[0]
    assert params.time - sim.clock.now() == dt.timedelta(hours=3)
    drift = {fm.meter_id: fm.clock_offset() for fm in dc.meters}
    order = m.Order(2, window(sim), m.TimeSyncOrder(sim.clock.now()))
    assert client(sim, hes).order(order).status is m.RequestStatus.WORKING
    sim.advance(minutes=5)
    assert abs(dc.clock_offset) < 1
    update = hes.backend.status("DC0001", 2)
    for meter_id, before in drift.items():
        result = outcome(update, meter_id)
        fm = dc.meter(meter_id)
        if abs(before) <= 30:
            assert result.status is m.RequestStatus.OK and fm.meter is None
        elif abs(before) <= 600:
            assert result.message.startswith("clock set")
            assert abs(fm.clock_offset()) < 5 * 60 + 2  # set during the sync
            codes = [r.values[0] for r in fm.meter.state.events]
            assert EV_CLOCK_ADJUSTED_NEW in codes
        else:
            assert result.status is m.RequestStatus.FAILED
            assert "forced order" in result.message
    assert update.status is m.RequestStatus.PARTIAL
    assert dc.events_logged(ev.EV_METER_CLOCK_SET)
    assert dc.events_logged(ev.EV_METER_DRIFT_TOO_LARGE)
    # a forced order sets the rest, whatever their drift
    force = m.Order(3, window(sim), m.TimeSyncOrder(sim.clock.now(), force=True))
    client(sim, hes).order(force)
    sim.advance(minutes=5)
    assert hes.backend.status("DC0001", 3).status is m.RequestStatus.OK
    assert all(abs(fm.clock_offset()) < 1 for fm in dc.meters)
    # the collection plan now runs on the corrected clock: 00:05 true time
    sim.advance(hours=24)
    daily = [n for n in hes.backend.names if "_daily_" in n]
    assert daily and all(n.endswith("20260116000500.xml.gz") for n in daily)


# -- orders ------------------------------------------------------------------
def test_relay_orders_with_execution_window_and_expiry(make_sim, hes):
    sim = make_sim(meters=6)
    dc = sim.concentrator("DC0001")
    c = client(sim, hes)
    sim.advance(hours=1)
    a, b, off = ids(dc, 0, 1, 2)
    dc.force_offline(off, 6 * 3600)
    order = m.Order(
        7, window(sim, hours=1, start=0.5),
        m.RelayOrder(m.RelayAction.DISCONNECT, (a, b, off, "NOSUCH")),
    )  # fmt: skip
    accepted = c.order(order)
    assert accepted.status is m.RequestStatus.WORKING
    assert "1 meter(s) not in the directory" in accepted.message
    assert c.order(order) == accepted  # the same IdPet again: not run twice
    sim.advance(minutes=20)
    assert hes.backend.status("DC0001", 7) is None  # not before its window
    sim.advance(hours=2)
    update = hes.backend.status("DC0001", 7)
    assert update.status is m.RequestStatus.PARTIAL
    assert outcome(update, a).message == "disconnected"
    assert outcome(update, off).status is m.RequestStatus.EXPIRED
    assert outcome(update, "NOSUCH").status is m.RequestStatus.UNKNOWN_METER
    assert not dc.meter(a).meter.state.relay_connected
    relay = {r.meter_id: r for r in hes.backend.rows("relay")}
    assert set(relay) == {a, b} and not relay[a].connected and relay[a].state == 0
    arm = m.Order(8, window(sim), m.RelayOrder(m.RelayAction.ARM, (a,)))
    reconnect = m.Order(9, window(sim), m.RelayOrder(m.RelayAction.RECONNECT, (b,)))
    c.order(arm), c.order(reconnect)
    sim.advance(minutes=5)
    assert outcome(hes.backend.status("DC0001", 8), a).message == (
        "ready_for_reconnection"
    )
    assert dc.meter(b).meter.state.relay_connected
    late = m.Order(10, m.Window(end=sim.clock.now()), m.RelayOrder(
        m.RelayAction.DISCONNECT, (a,)))  # fmt: skip
    assert c.order(late).status is m.RequestStatus.EXPIRED
    nobody = m.Order(11, window(sim), m.RelayOrder(m.RelayAction.DISCONNECT, ("X",)))
    assert c.order(nobody).status is m.RequestStatus.UNKNOWN_METER


def test_meter_remove_and_collection_plan_orders(make_sim, hes):
    sim = make_sim(meters=4)
    dc = sim.concentrator("DC0001")
    c = client(sim, hes)
    sim.advance(hours=1)
    gone = ids(dc, 3)[0]
    c.order(m.Order(1, window(sim), m.MeterRemoveOrder((gone,))))
    hourly = m.CollectionTask(
        m.ReportType.LOAD_PROFILE, m.Period.HOUR, True, m.Delivery.SOAP
    )
    c.order(m.Order(2, window(sim), m.CollectionPlanOrder((hourly,))))
    sim.advance(hours=3)
    assert hes.backend.status("DC0001", 1).status is m.RequestStatus.OK
    removed = [i for _, i in hes.backend.meter_statuses if i.meter_id == gone]
    assert removed[-1].status is m.MeterStatus.REMOVED
    assert dc.plan == (hourly,)
    soap_lp = [
        r for r in hes.backend.reports.values()
        if r.report_type is m.ReportType.LOAD_PROFILE
    ]  # fmt: skip
    assert len(soap_lp) == 3 and not hes.backend.names
    assert gone not in {r.meter_id for r in hes.backend.rows("interval")}
    assert len({r.meter_id for r in hes.backend.rows("interval")}) == 3


# -- requests ----------------------------------------------------------------
def test_synchronous_requests(make_sim, hes):
    sim = make_sim(meters=4)
    dc = sim.concentrator("DC0001")
    c = client(sim, hes)
    sim.advance(hours=1)
    a, b, off = ids(dc, 0, 1, 2)
    answer = c.request(m.SyncRequest(1, m.ReportType.INSTANT, (a, b)))
    assert answer.status is m.RequestStatus.OK
    rows = reports.parse(answer.payload).rows
    assert [r.meter_id for r in rows] == [a, b]
    assert rows[0].ai == dc.meter(a).instant(sim.clock.time())[0]
    relay = c.request(m.SyncRequest(2, m.ReportType.RELAY_STATUS, (a,)))
    assert reports.parse(relay.payload).rows[0].connected
    dc.force_offline(off, 3600)
    partial = c.request(m.SyncRequest(3, m.ReportType.INSTANT, (a, off, "X")))
    assert partial.status is m.RequestStatus.PARTIAL
    assert (
        f"no answer from {off}" in partial.message and "directory: X" in partial.message
    )
    assert c.request(m.SyncRequest(4, m.ReportType.INSTANT, ("X",))).status is (
        m.RequestStatus.UNKNOWN_METER
    )
    refused = c.request(m.SyncRequest(5, m.ReportType.DAILY, (a,)))
    assert refused.status is m.RequestStatus.MALFORMED
    assert "asynchronously" in refused.message


def test_asynchronous_requests_and_event_queries(make_sim, hes):
    sim = make_sim(meters=4)
    dc = sim.concentrator("DC0001")
    c = client(sim, hes)
    sim.advance(hours=25)
    a, b = ids(dc, 0, 1)
    day = dt.datetime(2026, 1, 15, 12, tzinfo=UTC)
    store = m.AsyncRequest(
        1, m.ReportType.LOAD_PROFILE, (a,), day, day + dt.timedelta(hours=2)
    )
    assert c.async_request(store).status is m.RequestStatus.WORKING
    sim.advance(minutes=1)
    assert hes.backend.status("DC0001", 1).status is m.RequestStatus.OK
    (report,) = hes.backend.report_for("DC0001", 1)
    assert len(report.rows) == 9 and {r.meter_id for r in report.rows} == {a}
    live = m.AsyncRequest(2, m.ReportType.INSTANT, (a, b), source=m.Source.METER)
    c.async_request(live)
    sim.advance(minutes=1)
    (report,) = hes.backend.report_for("DC0001", 2)
    assert {r.meter_id for r in report.rows} == {a, b}
    # a disconnection lands in the meter's disconnector log, the hourly
    # collection brings it to the store, a query finds it
    c.order(m.Order(3, window(sim), m.RelayOrder(m.RelayAction.DISCONNECT, (b,))))
    sim.advance(hours=1, minutes=10)
    query = m.ReportQuery(
        4, sim.clock.now() - dt.timedelta(hours=3), sim.clock.now(), (a, b),
        event_log="disconnector", event_code=50,
    )  # fmt: skip
    assert c.report_query(query).status is m.RequestStatus.WORKING
    sim.advance(minutes=1)
    (report,) = hes.backend.report_for("DC0001", 4)
    assert [(r.meter_id, r.code) for r in report.rows] == [(b, 50)]
    unknown = m.AsyncRequest(5, m.ReportType.DAILY, ("X",))
    assert c.async_request(unknown).status is m.RequestStatus.UNKNOWN_METER


# -- firmware ----------------------------------------------------------------
def _firmware_order(id_pet, sim, meters, image_id="FW-2.0.0", at=None, target=None):
    image = ops.build_image(bytes(range(256)) * 12)  # the meters' image format
    return m.Order(
        id_pet,
        window(sim, hours=48),
        m.FirmwareOrder(
            target or m.FirmwareTarget.METERS, image_id, image,
            hashlib.sha256(image).digest(), meters, at,
        ),
    )  # fmt: skip


def test_firmware_campaign_with_corrupt_blocks_failed_activation_and_reboot(
    make_sim, hes
):
    sim = make_sim(meters=6, seed=5)
    dc = sim.concentrator("DC0001")
    failing = dc.meters[3].meter_id
    dc.faults = Faults(
        corrupt_block_rate=0.04, failing_activation=frozenset({failing}),
        reboot_in_campaign_at=1,
    )  # fmt: skip
    dc.meters[3].activation_failures = 1
    sim.advance(hours=1)
    targets = ids(dc, 0, 1, 2, 3, 4)
    at = sim.clock.now() + dt.timedelta(hours=6)
    c = client(sim, hes)
    assert c.order(_firmware_order(1, sim, targets, at=at)).status is (
        m.RequestStatus.WORKING
    )
    sim.advance(hours=5)  # transferred and verified, not yet activated
    assert dc.events_logged(ev.EV_BOOT)  # the reboot in the middle
    resumed = dc.events_logged(ev.EV_CAMPAIGN_RESUMED)
    assert any(e[4] == targets[1] and "from block" in e[5] for e in resumed)
    assert {dc.meter(t).firmware() for t in targets} == {"FW-1.0.0"}
    sim.advance(hours=2)
    update = hes.backend.status("DC0001", 1)
    corrupted = 0
    for meter_id in targets:
        fm, result = dc.meter(meter_id), outcome(update, meter_id)
        codes = [r.values[0] for r in fm.meter.state.events]
        corrupted += EV_FIRMWARE_VERIFY_FAILED in codes
        if meter_id == failing:
            assert result.status is m.RequestStatus.FAILED
            assert "FW-1.0.0 still running (rolled back)" in result.message
            assert fm.firmware() == "FW-1.0.0" and fm.meter.state.image.status == 7
        elif result.status is m.RequestStatus.OK:
            assert fm.firmware() == "FW-2.0.0" and EV_FIRMWARE_ACTIVATED in codes
        else:
            assert "verification failed 3 times" in result.message
    assert corrupted, "no block was corrupted: the fault was not exercised"
    assert update.status is m.RequestStatus.PARTIAL
    assert dc.events_logged(ev.EV_METER_ROLLED_BACK)


def test_concentrator_firmware_activation_and_rollback(make_sim, hes):
    sim = make_sim(meters=2, faults=Faults(image_fails_to_boot=True))
    dc = sim.concentrator("DC0001")
    c = client(sim, hes)
    target = m.FirmwareTarget.CONCENTRATOR
    c.order(_firmware_order(1, sim, (), "DCU-2.0.0", target=target))
    sim.advance(minutes=5)
    first = hes.backend.status("DC0001", 1)
    assert first.status is m.RequestStatus.FAILED and "rolled back" in first.message
    assert dc.firmware == "DCU-1.0.0"
    c.order(_firmware_order(2, sim, (), "DCU-2.0.0", target=target))
    sim.advance(minutes=5)
    assert hes.backend.status("DC0001", 2).status is m.RequestStatus.OK
    assert dc.firmware == "DCU-2.0.0" and len(dc.events_logged(ev.EV_BOOT)) == 2
    bad = _firmware_order(3, sim, (), target=target)
    bad = m.Order(3, bad.window, m.FirmwareOrder(
        target, "X", bad.body.image, b"\x00" * 32))  # fmt: skip
    assert c.order(bad).status is m.RequestStatus.MALFORMED


# -- backhaul faults ---------------------------------------------------------
def test_duplicates_reordering_losses_and_malformed_payloads(make_sim, hes):
    faults = Faults(
        duplicate_rate=0.3, reorder_rate=0.3, malformed_rate=0.25, backhaul_loss=0.2
    )
    sim = make_sim(meters=6, faults=faults, seed=11)
    dc = sim.concentrator("DC0001")
    sim.advance(hours=50)
    backend = hes.backend
    refused = dc.events_logged(ev.EV_DELIVERY_REFUSED)
    assert refused and len(backend.rejections) >= len(refused)
    assert backend.duplicates > 0 and not dc.outbox
    # nothing was ingested twice, and what was refused is still in the store
    keys = [(r.meter_id, r.time) for r in backend.rows("interval")]
    assert len(keys) == len(set(keys))
    missing_days = [d for d in (16, 17) if not any(
        r.time.day == d for r in backend.rows("interval"))]  # fmt: skip
    dc.faults = Faults()
    dc.uplink.faults = Faults()
    request = m.AsyncRequest(
        99, m.ReportType.LOAD_PROFILE, (), dt.datetime(2026, 1, 15, tzinfo=UTC),
        dt.datetime(2026, 1, 17, tzinfo=UTC),
    )  # fmt: skip
    client(sim, hes).async_request(request)
    sim.advance(minutes=1)
    for d in missing_days:
        assert any(r.time.day == d for r in backend.rows("interval"))
    for fm in dc.meters:
        times = {r.time for r in backend.rows("interval", fm.meter_id)}
        assert len(times) >= 2 * 96


# -- the DLMS gateway pass-through -------------------------------------------
def _settings(**kw) -> ConnectionSettings:
    kw.setdefault("timeout", 5.0)
    return ConnectionSettings(
        framing="wrapper", client_address=1, auth="hls-gmac", **kw
    )


# The meter remembers the last invocation counter of the head-end's system
# title: every session of this module takes its counters from one store.
COUNTERS = MemoryCounterStore()


async def _through_gateway(sim, hes, pda, operation, settings=None):
    transport = GatewayTransport(client(sim, hes), pda)
    store = COUNTERS
    async with DlmsSession(
        settings or _settings(), transport=transport, counter_store=store
    ) as session:
        return await operation(session)


def test_token_delivered_through_the_gateway_is_accepted(make_sim, hes):
    sim = make_sim(meters=4, template={"decoder_key": DK}, latency_scale=0.001)
    dc = sim.concentrator("DC0001")
    sim.advance(hours=1)
    fm = dc.meters[2]
    assert dc.materialised() == 0  # lazy until the head-end needs the meter
    credit = fm.instant(sim.clock.time())[6]
    token = sts_engine.credit_token(
        DK, "07", 0, 0, amount=25, issued_at=sim.clock.now(), base_date="14"
    )
    status = asyncio.run(
        _through_gateway(sim, hes, fm.pda, lambda s: ops.enter_token(s, token))
    )
    assert status.accepted
    assert fm.meter.state.credit_wh - credit == pytest.approx(25_000, abs=5)
    assert dc.materialised() == 1
    again = asyncio.run(
        _through_gateway(sim, hes, fm.pda, lambda s: ops.enter_token(s, token))
    )
    assert again.status == 6  # the meter refuses a token used before
    clock = asyncio.run(_through_gateway(sim, hes, fm.pda, ops.read_clock))
    expected = sim.clock.now() + dt.timedelta(seconds=fm.clock_offset())
    assert abs((clock - expected).total_seconds()) < 2


def test_gateway_refusals_reach_the_dlms_client(make_sim, hes):
    sim = make_sim(meters=2)
    dc = sim.concentrator("DC0001")
    sim.advance(hours=1)
    with pytest.raises(DlmsError, match="unknown_meter"):
        asyncio.run(
            _through_gateway(sim, hes, b"PPS\x00\x00\x00\xff\xff", ops.read_clock)
        )
    wrong_keys = _settings(block_cipher_key=bytes(16))
    with pytest.raises(DlmsError, match="rejected|authentication"):
        asyncio.run(
            _through_gateway(sim, hes, dc.meters[0].pda, ops.read_clock, wrong_keys)
        )
    dc.force_offline(dc.meters[1].meter_id, 3600)
    with pytest.raises(DlmsError, match="no answer"):
        asyncio.run(_through_gateway(sim, hes, dc.meters[1].pda, ops.read_clock))


# -- the command line --------------------------------------------------------
def test_command_line_serves_until_interrupted(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.dcu.cli", "--concentrators", "2",
         "--meters", "5", "--headend-sink", "--speed", "3600",
         "--latency-scale", "0", "--pki-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        info = json.loads(proc.stdout.readline())
        assert [d["id"] for d in info["concentrators"]] == ["DC0001", "DC0002"]
        context = client_context(info["headend_cert"], info["headend_key"], info["ca"])
        c = ConcentratorClient(info["concentrators"][1]["url"], context)
        answer = c.request(m.SyncRequest(1, m.ReportType.METER_LIST))
        assert len(reports.parse(answer.payload).rows) == 5
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    totals = json.loads(out.strip().splitlines()[-1])
    assert totals["rejections"] == 0 and totals["reports"] >= 0
