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
import time

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

from simulators.dcu import (
    DEFAULT_PLAN,
    DcuSimulator,
    Faults,
    G3Config,
    MemoryHeadEnd,
    meterops,
)
from simulators.dcu import events as ev
from simulators.dcu.concentrator import retry_delay
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
    return hes.client(sim, name)


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


def test_retry_delay_doubles_up_to_an_hour_and_never_overflows():
    assert [retry_delay(n) for n in (1, 2, 3, 4, 5)] == [300, 600, 1200, 2400, 3600]
    assert retry_delay(1025) == retry_delay(10**6) == 3600  # 43 days offline


def test_a_restarted_concentrator_is_not_taken_for_a_duplicate(pki, hes):
    """Report ids count from 1 again after a restart: the head-end tells the
    new reports from the old ones by their digest and loses none."""
    hourly = tuple(
        m.CollectionTask(m.ReportType.LOAD_PROFILE, m.Period.HOUR, True,
                         m.Delivery.SOAP)
        if t.report_type is m.ReportType.LOAD_PROFILE else t
        for t in DEFAULT_PLAN
    )  # fmt: skip
    for day in (15, 16):
        start = dt.datetime(2026, 1, day, tzinfo=UTC)
        with DcuSimulator(
            1, 2, pki=pki, headend_url=hes.url, latency_scale=0, g3=STEADY,
            start=start, plan=hourly,
        ) as sim:  # fmt: skip
            sim.advance(hours=3, minutes=10)
    ids = sorted(key[1] for key in hes.backend.reports)
    assert ids.count(1) == 2  # the same ReportId, two reports
    assert hes.backend.duplicates == 0
    for day in (15, 16):
        times = {r.time for r in hes.backend.rows("interval") if r.time.day == day}
        assert len(times) >= 8, day  # the first hours of both runs arrived


def test_unregistered_concentrator_keeps_its_deliveries_until_registered(pki):
    backend = MemoryHeadEnd(concentrators={"DC0002"})  # DC0001 not yet
    with HeadEndStandIn(pki, backend=backend) as hes:
        with DcuSimulator(
            1, 4, pki=pki, headend_url=hes.url, latency_scale=0, g3=STEADY
        ) as sim:
            dc = sim.concentrator("DC0001")
            sim.advance(hours=25)
            held = dc.events_logged(ev.EV_DELIVERY_HELD)
            assert len(held) == 1 and "unknown concentrator DC0001" in held[0][5]
            assert not dc.events_logged(ev.EV_DELIVERY_REFUSED)
            waiting = [item.label for item in dc.outbox]
            assert any("load_profile" in label for label in waiting)
            assert any("MeterStatusUpdate" in label for label in waiting)
            assert {r.what for r in backend.rejections} == {"identity"}
            assert not backend.meter_statuses and not backend.files
            backend.concentrators.add("DC0001")  # an operator registers it
            sim.advance(hours=2)  # the backoff is an hour at most
            assert not dc.outbox and dc.events_logged(ev.EV_BACKHAUL_RESTORED)
            assert len(backend.meter_statuses) == 4  # the join announcements
            assert len({r.meter_id for r in backend.rows("interval")}) == 4


def test_a_delivery_too_large_for_the_head_end_is_dropped_not_blocking(make_sim, hes):
    hes.app.soap_app.max_bytes = 6000  # the meter list of 30 meters is larger
    sim = make_sim(meters=30)
    dc = sim.concentrator("DC0001")
    sim.advance(hours=25, minutes=10)
    refused = dc.events_logged(ev.EV_DELIVERY_REFUSED)
    assert refused and all("HTTP 413" in e[5] for e in refused)
    assert not dc.outbox and not dc.events_logged(ev.EV_DELIVERY_FAILING)
    # what came after it arrived: the day's files and the small reports
    assert any("_load_profile_" in n for n in hes.backend.names)
    assert hes.backend.rows("interval") and hes.backend.rejections


def test_report_file_names_stay_apart_when_the_clock_is_set_back(make_sim, hes):
    sim = make_sim(meters=3, clock_offset_s=3600.0)  # an hour ahead
    dc = sim.concentrator("DC0001")
    c = client(sim, hes)
    sim.advance(hours=23, minutes=20)  # its "00:05" came at 23:05 true time
    first = set(hes.backend.names)
    c.order(m.Order(1, window(sim), m.TimeSyncOrder(sim.clock.now())))
    sim.advance(hours=1)  # the true 00:05: the same clock stamp again
    stamps = [files.parse_name(n) for n in hes.backend.names]
    daily = [n for n in stamps if n.report_type is m.ReportType.DAILY]
    assert len(daily) == 2 and daily[0].generated == daily[1].generated
    assert len(hes.backend.names) == 4 and first < set(hes.backend.names)
    assert not dc.events_logged(ev.EV_DELIVERY_REFUSED)
    last = dc.meters[0].store.load_profile.last()[0]
    times = [r.time for r in hes.backend.rows("interval", dc.meters[0].meter_id)]
    assert max(times).timestamp() == last  # all the buffer reached the head-end


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
            assert abs(fm.clock_offset()) < 1  # set to the concentrator's
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
    names = [files.parse_name(n) for n in hes.backend.names]
    daily = [n for n in names if n.report_type is m.ReportType.DAILY]
    midnight = dt.datetime(2026, 1, 16, 0, 5, tzinfo=UTC)
    assert daily and all(n.generated == midnight for n in daily)


def test_time_sync_sets_the_clock_on_receipt_and_the_meters_at_start(make_sim, hes):
    sim = make_sim(meters=4, clock_offset_s=-7200.0)  # two hours behind
    dc = sim.concentrator("DC0001")
    c = client(sim, hes)
    sim.advance(hours=1)
    # Start an hour from now (true time): by the concentrator's own wrong
    # clock that is three hours away; the clock must not wait for it
    order = m.Order(1, window(sim, hours=4, start=1), m.TimeSyncOrder(sim.clock.now()))
    assert c.order(order).status is m.RequestStatus.WORKING
    assert abs(dc.clock_offset) < 1 and dc.events_logged(ev.EV_CLOCK_SET)
    sim.advance(minutes=30)
    assert hes.backend.status("DC0001", 1) is None  # meters: not before Start
    sim.advance(minutes=40)
    update = hes.backend.status("DC0001", 1)
    assert update.status is m.RequestStatus.OK and len(update.outcomes) == 4
    assert abs(dc.clock_offset) < 1
    # the same order again (a resend) does not set the clock a second time
    sets = len(dc.events_logged(ev.EV_CLOCK_SET))
    assert c.order(order).status is m.RequestStatus.WORKING
    assert len(dc.events_logged(ev.EV_CLOCK_SET)) == sets
    # a window that ends before the time it sets is refused
    stale = m.Order(
        2, m.Window(end=sim.clock.now() - dt.timedelta(minutes=1)),
        m.TimeSyncOrder(sim.clock.now()),
    )  # fmt: skip
    assert c.order(stale).status is m.RequestStatus.EXPIRED


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
    armed = dc.meter(a).meter.state
    assert (armed.control_state, armed.control_mode) == (2, 2)  # mode put back
    armed.manual_reconnect()  # the customer presses the button
    assert armed.relay_connected
    assert dc.meter(b).meter.state.relay_connected  # reconnected at once
    # arming goes through the meter's class 70: a meter that does not let its
    # control mode be written is not armed, and says so
    c.order(m.Order(12, window(sim), m.RelayOrder(m.RelayAction.DISCONNECT, (b,))))
    sim.advance(minutes=5)
    control = dc.meter(b).meter.objects[meterops.DISCONNECT_CONTROL]
    control.writable = frozenset()
    c.order(m.Order(13, window(sim), m.RelayOrder(m.RelayAction.ARM, (b,))))
    sim.advance(minutes=5)
    refused = outcome(hes.backend.status("DC0001", 13), b)
    assert refused.status is m.RequestStatus.FAILED and "attribute 4" in refused.message
    assert dc.meter(b).meter.state.control_state == 0  # still disconnected
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
    # the same register read by the head-end's own DLMS client, end to end
    # through the gateway: what the concentrator reported is the meter's
    register = asyncio.run(
        _through_gateway(
            sim, hes, dc.meter(a).pda, lambda s: ops.read_register(s, "1.0.1.8.0.255")
        )
    )
    assert (register.raw, register.unit) == (rows[0].ai, 30)  # Wh
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


def test_async_request_from_the_meter_reads_the_period_asked(make_sim, hes):
    sim = make_sim(meters=2)
    dc = sim.concentrator("DC0001")
    c = client(sim, hes)
    sim.advance(hours=1, minutes=50)  # joined, nothing collected yet
    a = dc.meters[0].meter_id
    start = dt.datetime(2026, 1, 15, 0, 30, tzinfo=UTC)
    end = start + dt.timedelta(hours=1)

    def ask(id_pet, source):
        c.async_request(
            m.AsyncRequest(
                id_pet, m.ReportType.LOAD_PROFILE, (a,), start, end, source=source
            )
        )
        sim.advance(minutes=1)
        assert hes.backend.status("DC0001", id_pet).status is m.RequestStatus.OK
        return [r for rep in hes.backend.report_for("DC0001", id_pet)
                for r in rep.rows]  # fmt: skip

    assert ask(1, m.Source.STORE) == []  # the concentrator has not read it yet
    from_meter = ask(2, m.Source.METER)
    assert [r.time for r in from_meter] == [
        start + dt.timedelta(minutes=15 * k) for k in range(5)
    ]
    assert all(x.ai < y.ai for x, y in zip(from_meter, from_meter[1:]))
    # read again after the concentrator collected the day: the same values,
    # and its buffer holds each interval once
    sim.advance(hours=23)
    assert ask(3, m.Source.METER) == from_meter
    assert ask(4, m.Source.STORE) == from_meter
    times = [row[0] for row in dc.meter(a).store.load_profile]
    assert len(times) == len(set(times))


def test_an_idpet_is_answered_once_and_never_reused_for_something_else(make_sim, hes):
    sim = make_sim(meters=2)
    dc = sim.concentrator("DC0001")
    c = client(sim, hes)
    sim.advance(hours=1)
    a = dc.meters[0].meter_id
    read = m.SyncRequest(1, m.ReportType.INSTANT, (a,))
    first = c.request(read)
    sim.advance(hours=1)  # the energy moves on; a repeated IdPet is not re-read
    assert c.request(read) == first
    other = c.request(m.SyncRequest(1, m.ReportType.RELAY_STATUS, (a,)))
    assert other.status is m.RequestStatus.MALFORMED
    assert "IdPet 1 was used for another request" in other.message
    relay = m.Order(2, window(sim), m.RelayOrder(m.RelayAction.DISCONNECT, (a,)))
    assert c.order(relay).status is m.RequestStatus.WORKING
    query = m.AsyncRequest(2, m.ReportType.DAILY, (a,))
    assert c.async_request(query).status is m.RequestStatus.MALFORMED
    reconnect = m.Order(2, window(sim), m.RelayOrder(m.RelayAction.RECONNECT, (a,)))
    assert c.order(reconnect).status is m.RequestStatus.MALFORMED
    sim.advance(minutes=5)
    assert not dc.meter(a).meter.state.relay_connected  # only the first ran


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


def test_a_second_firmware_order_waits_for_the_running_campaign(make_sim, hes):
    sim = make_sim(meters=6)
    dc = sim.concentrator("DC0001")
    c = client(sim, hes)
    sim.advance(hours=1)
    first, second = ids(dc, 0, 1, 2, 3), ids(dc, 4, 5)
    assert c.order(_firmware_order(1, sim, first)).status is m.RequestStatus.WORKING
    sim.advance(seconds=20)  # the first campaign is under way
    assert dc.campaign is not None and 0 < dc.campaign.index < 4
    queued = c.order(_firmware_order(2, sim, second, "FW-3.0.0"))
    assert queued.status is m.RequestStatus.WORKING
    assert "queued behind 1 firmware campaign" in queued.message
    sim.advance(hours=5)
    for id_pet, meters, version in ((1, first, "FW-2.0.0"), (2, second, "FW-3.0.0")):
        update = hes.backend.status("DC0001", id_pet)
        assert update.status is m.RequestStatus.OK, id_pet
        assert {o.meter_id for o in update.outcomes} == set(meters)
        assert {dc.meter(x).firmware() for x in meters} == {version}
    assert dc.events_logged(ev.EV_CAMPAIGN_QUEUED)
    assert dc.campaign is None and not dc.campaign_queue


def test_activation_needs_the_meter_on_the_network(make_sim, hes):
    sim = make_sim(meters=2)
    dc = sim.concentrator("DC0001")
    sim.advance(hours=1)
    a, b = ids(dc, 0, 1)
    at = sim.clock.now() + dt.timedelta(hours=2)
    client(sim, hes).order(_firmware_order(1, sim, (a, b), at=at))
    sim.advance(hours=1)  # both images transferred and verified
    dc.force_offline(b, 3 * 3600)  # b is off the network when activation is due
    sim.advance(hours=2)
    update = hes.backend.status("DC0001", 1)
    assert outcome(update, a).status is m.RequestStatus.OK
    missed = outcome(update, b)
    assert missed.status is m.RequestStatus.METER_TIMEOUT
    assert "not reached to activate FW-2.0.0" in missed.message
    assert dc.meter(b).firmware() == "FW-1.0.0"
    assert dc.meter(b).meter.state.image.status == 3  # verified, waiting
    assert dc.events_logged(ev.EV_ACTIVATION_MISSED)[-1][4] == b


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
         "--meters", "5", "--headend-sink", "--speed", "36000",
         "--latency-scale", "0", "--pki-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        info = json.loads(proc.stdout.readline())
        assert [d["id"] for d in info["concentrators"]] == ["DC0001", "DC0002"]
        context = client_context(
            info["headend_cert"], info["headend_key"], info["ca"], info["crl"]
        )
        c = ConcentratorClient(info["concentrators"][1]["url"], context, peer="DC0002")
        answer = c.request(m.SyncRequest(1, m.ReportType.METER_LIST))
        assert len(reports.parse(answer.payload).rows) == 5
        # simulated time runs: wait until the concentrator's clock passed its
        # first hourly collection (05 past), so that reports were sent
        for id_pet in range(2, 200):
            params = c.request(m.SyncRequest(id_pet, m.ReportType.DC_PARAMETERS))
            clock = reports.parse(params.payload).rows[0].time
            if clock >= dt.datetime(2026, 1, 15, 2, tzinfo=UTC):
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    totals = json.loads(out.strip().splitlines()[-1])
    assert totals["rejections"] == 0
    assert totals["reports"] > 0 and totals["readings"] > 0


# -- named concentrators and meters --------------------------------------------
def test_named_concentrators_report_their_meters_by_the_ids_given(make_sim, hes):
    "A head-end's serials as meter ids; collect_now sends outside the plan"
    serials = ("07399882476", "CHK0005-21570")
    sim = make_sim(
        2,
        1,
        per_dc={1: {"dc_id": "DEMO-DCU-1", "meter_ids": serials}},
        g3=G3Config(join_spread_s=20, never_join_fraction=0.0, flaky_fraction=0.0),
        network_tick_s=10,
    )
    assert set(sim.concentrators) == {"DEMO-DCU-1", "DC0002"}
    named = sim.concentrator("DEMO-DCU-1")
    assert [fm.meter_id for fm in named.meters] == list(serials)
    assert len(sim.concentrator("DC0002").meters) == 1
    sim.advance(seconds=30)
    assert {
        i.meter_id for dc, i in hes.backend.meter_statuses if dc == "DEMO-DCU-1"
    } == set(serials)
    assert not hes.backend.rows("instant")  # the plan has no instant task
    named.collect_now(m.ReportType.INSTANT)
    sim.advance(seconds=30)
    assert {r.meter_id for r in hes.backend.rows("instant")} == set(serials)


@pytest.mark.parametrize(
    ("per_dc", "error"),
    [
        ({1: {"meter_ids": ("A1", "A1")}}, "repeat"),
        ({1: {"meter_ids": ("A 1",)}}, "not a meter id"),
        ({1: {"dc_id": "DC/1"}}, "not a concentrator id"),
        ({2: {"dc_id": "DC0001"}}, "two concentrators named DC0001"),
    ],
)
def test_bad_names_are_refused(pki, per_dc, error):
    with pytest.raises(ValueError, match=error):
        DcuSimulator(2, 1, pki=pki, per_dc=per_dc)
