"""One simulated data concentrator (DCU): its G3 network, directory, clock,
collection plan, buffers, outbox and DLMS gateway; the requests, orders and
firmware it handles are in ``answers.py``, ``orders.py`` and ``firmware.py``.

Time: the simulator's virtual clock is true time; the concentrator's own
clock is true time plus ``clock_offset`` (wrong until the head-end sets it)
and drives the collection plan; meters have clocks of their own. Work that
talks to meters (collection, orders, firmware) runs as events on the
virtual clock and takes the time the G3 model says it takes; the head-end's
synchronous calls (Request, Gateway) run in the server's threads and sleep
the G3 delays for real, scaled by ``latency_scale``.

Every method that touches state holds ``self.lock`` (the server threads and
the thread advancing the clock share the concentrator); deliveries to the
head-end are made without it.
"""

from __future__ import annotations

import calendar
import collections
import datetime as dt
import hashlib
import math
import random
import threading
import time
from collections.abc import Callable, Iterable

from trytond.modules.prepaid_headend.concentrator import files, gateway, reports, soap
from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator.errors import ValidationError

from simulators.meter.link import WrapperLink

from .answers import RequestsMixin
from .clock import Event, VirtualClock
from .config import DcConfig
from .events import (
    EV_BACKHAUL_RESTORED,
    EV_BOOT,
    EV_CAMPAIGN_RESUMED,
    EV_DELIVERY_FAILING,
    EV_DELIVERY_HELD,
    EV_DELIVERY_REFUSED,
    EV_METER_JOINED,
    EV_METER_LOST,
    EV_METER_PENDING,
    EV_OUTBOX_OVERFLOW,
)
from .firmware import FirmwareMixin, _Campaign
from .fleet import FleetMeter, MeterTemplate, unit
from .g3 import G3Network, flaky_windows
from .orders import OrdersMixin
from .store import LOGS
from .uplink import DELIVERED, HELD, REFUSED, TRANSIENT, OutboxItem, Uplink

UTC = dt.UTC
DELIVERY_BACKOFF_S = (300.0, 3600.0)  # first retry, longest wait
ALARM_AFTER_FAILURES = 3
REMEMBERED_REQUESTS = 1000  # IdPets answered again without running twice

_PERIODS = {m.Period.QUARTER_HOUR: 900, m.Period.HOUR: 3600, m.Period.DAY: 86400}


def next_boundary(period: m.Period, t: float) -> float:
    """The first period boundary strictly after ``t`` (UTC, epoch seconds)."""
    if period in _PERIODS:
        step = _PERIODS[period]
        return (math.floor(t / step) + 1) * step
    d = dt.datetime.fromtimestamp(t, UTC)
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return float(calendar.timegm((year, month, 1, 0, 0, 0)))


def period_seconds(period: m.Period) -> float:
    return _PERIODS.get(period, 31 * 86400)


def _dt(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, UTC)


def retry_delay(failures: int) -> float:
    """Seconds before the next delivery attempt after ``failures`` failed
    ones in a row: doubling from the first wait up to the longest."""
    first, longest = DELIVERY_BACKOFF_S
    doublings = min(max(failures - 1, 0), 32)  # 2**32 * first is far past longest
    return min(first * 2.0**doublings, longest)


def fingerprint(request: m.Message) -> bytes:
    """What identifies a request's content (its envelope's digest)."""
    return hashlib.sha256(soap.render(request)).digest()


class Concentrator(RequestsMixin, OrdersMixin, FirmwareMixin):
    def __init__(
        self,
        config: DcConfig,
        clock: VirtualClock,
        template: MeterTemplate,
        uplink: Uplink,
        *,
        seed: int = 0,
        latency_scale: float = 1.0,
        on_online: Callable[[bool], None] | None = None,
    ) -> None:
        self.config = config
        self.dc_id = config.dc_id
        self.clock = clock
        self.uplink = uplink
        self.latency_scale = latency_scale
        self.on_online = on_online
        self.lock = threading.RLock()
        self.rng = random.Random(f"{seed}:{config.dc_id}")
        self.g3 = G3Network(config.g3, self.rng)
        self.faults = config.faults
        self.firmware = config.firmware
        self._image_fault_pending = config.faults.image_fails_to_boot
        self.clock_offset = config.clock_offset_s
        self.clock_set: float | None = None  # true time the head-end set the clock
        self.booted_at = clock.time()
        self.offline_until = 0.0
        self.meters: list[FleetMeter] = []
        self.by_id: dict[str, FleetMeter] = {}
        self.by_pda: dict[bytes, FleetMeter] = {}
        self.flaky: set[FleetMeter] = set()
        self._build_network(template, seed)
        self._join_order = sorted(
            (fm for fm in self.meters if fm.join_at < math.inf),
            key=lambda fm: fm.join_at,
        )
        self._join_next = 0
        self._next_short = 1
        self._announce: list[m.MeterStatusItem] = []
        self.dc_events: collections.deque = collections.deque(maxlen=1000)
        self._event_seq = 0
        self._events_reported = 0
        self.outbox: collections.deque[OutboxItem] = collections.deque()
        self._outbox_bytes = 0
        self._seq = 0
        self._failures = 0
        self._held = False  # the head-end refuses our deliveries for now
        self._retry: Event | None = None
        self.plan: tuple[m.CollectionTask, ...] = ()
        self._plan_events: list[Event] = []
        # IdPet -> (the request's fingerprint, the answer given)
        self._requests: collections.OrderedDict[int, tuple[bytes, m.Message]] = (
            collections.OrderedDict()
        )
        self.campaign: _Campaign | None = None
        self.campaign_queue: collections.deque[m.Order] = collections.deque()
        self._links: dict[bytes, WrapperLink] = {}
        self.report_log: list[tuple[m.ReportType, int, int]] = []  # type, rows, bytes
        self._dt_cache: dict[int, dt.datetime] = {}
        self.set_plan(config.plan)
        clock.after(0.0, self._network_tick)

    # -- construction --------------------------------------------------------
    def _build_network(self, template: MeterTemplate, seed: int) -> None:
        c, g = self.config, self.config.g3
        start = self.clock.time()
        provisioned = c.directory == "provisioned"
        members: list[FleetMeter] = []
        for i in range(c.meters):
            fm = FleetMeter(
                c.number * 10000 + i,
                template,
                c.meter_ids[i] if c.meter_ids else None,
            )
            key = (seed, fm.index)
            fm.hops = self.g3.draw_hops(random.Random(unit(*key, 10)))
            if unit(*key, 11) >= g.never_join_fraction:
                fm.join_at = start + g.join_spread_s * unit(*key, 12)
            if unit(*key, 13) < g.flaky_fraction:
                self._make_flaky(fm, fm, seed)
            if unit(*key, 14) < c.collector_fraction:
                members.append(fm)
            fm.in_directory = fm.approved = provisioned
            fm.activation_failures = int(fm.meter_id in self.faults.failing_activation)
            self.meters.append(fm)
            self.by_id[fm.meter_id] = fm
            self.by_pda[fm.pda] = fm
        # RS485 meters share the G3 node of their data collector: its hops,
        # its join and its drop-offs.
        size = max(1, c.meters_per_collector)
        for k in range(0, len(members), size):
            group = members[k : k + size]
            head = group[0]
            for fm in group:
                fm.collector = f"{self.dc_id}-C{k // size + 1:03d}"
                fm.hops, fm.join_at = head.hops, head.join_at
                if head.flaky:
                    self._make_flaky(fm, head, seed)
                elif fm.flaky:
                    fm.flaky, fm.windows = False, None
                    fm.off_at = fm.back_at = math.inf
                    self.flaky.discard(fm)

    def _make_flaky(self, fm: FleetMeter, node: FleetMeter, seed: int) -> None:
        """``fm`` drops off and comes back like G3 node ``node``."""
        fm.flaky = True
        start = min(node.join_at, self.clock.time() + 365 * 86400)
        fm.windows = flaky_windows(seed * 1_000_003 + node.index, start, self.config.g3)
        fm.off_at, fm.back_at = next(fm.windows)
        self.flaky.add(fm)

    # -- time ----------------------------------------------------------------
    def dc_time(self) -> float:
        """The concentrator's own clock (epoch seconds)."""
        return self.clock.time() + self.clock_offset

    def _true(self, dc_t: float) -> float:
        return dc_t - self.clock_offset

    def _when(self, t: float) -> dt.datetime:
        key = int(t)
        cached = self._dt_cache.get(key)
        if cached is None:
            if len(self._dt_cache) > 4096:
                self._dt_cache.clear()
            cached = self._dt_cache[key] = _dt(key)
        return cached

    def is_online(self) -> bool:
        return self.clock.time() >= self.offline_until

    def booting(self) -> bool:
        return self.clock.time() < self.booted_at

    # -- concentrator events -------------------------------------------------
    def log(self, event: tuple[int, int], meter_id=None, detail=None) -> None:
        self._event_seq += 1
        detail = detail[:256] if detail else None
        self.dc_events.append(
            (self._event_seq, self.dc_time(), event[0], event[1], meter_id, detail)
        )

    def events_logged(self, event: tuple[int, int]) -> list[tuple]:
        return [e for e in self.dc_events if (e[2], e[3]) == event]

    # -- the G3 network: joins, drop-offs, losses ----------------------------
    def _network_tick(self) -> None:
        now = self.clock.time()
        with self.lock:
            order = self._join_order
            while (
                self._join_next < len(order) and order[self._join_next].join_at <= now
            ):
                fm = order[self._join_next]
                self._join_next += 1
                if fm.online(now):
                    self._joined(fm, max(fm.join_at, now - self.config.network_tick_s))
            for fm in list(self.flaky):
                self._follow_flaky(fm, now)
            announce, self._announce = self._announce, []
        self.clock.after(self.config.network_tick_s, self._network_tick)
        if announce:
            self._enqueue(
                [
                    OutboxItem(
                        self._next_seq(),
                        m.MeterStatusUpdate(self.dc_id, tuple(announce[k : k + 1024])),
                    )
                    for k in range(0, len(announce), 1024)
                ]
            )

    def _follow_flaky(self, fm: FleetMeter, now: float) -> None:
        while fm.back_at <= now:  # an offline window is over
            back = fm.back_at
            fm.off_at, fm.back_at = next(fm.windows)
            if fm.state == "lost" or (fm.state == "not_seen" and fm.join_at <= back):
                self._joined(fm, back)
        if fm.state == "not_seen" and fm.join_at <= now and fm.online(now):
            self._joined(fm, now)
        if fm.state == "joined" and not fm.online(now):
            silent_since = max(fm.off_at, fm.last_seen or 0.0)
            if now - silent_since >= self.config.lost_after_s:
                self._lost(fm, silent_since)

    def _joined(self, fm: FleetMeter, t: float) -> None:
        was = fm.state
        fm.state = "joined"
        fm.last_seen = t
        if fm.joined_at is None:
            fm.joined_at = t
        if fm.short_address is None:
            fm.short_address = self._next_short
            self._next_short += 1
        if fm.refused:
            return
        if not (fm.in_directory and fm.approved):
            self.log(EV_METER_PENDING, fm.meter_id)
        self.log(EV_METER_JOINED, fm.meter_id, "back" if was == "lost" else None)
        self._announce.append(self._status_item(fm, m.MeterStatus.JOINED, t))

    def _lost(self, fm: FleetMeter, since: float) -> None:
        fm.state = "lost"
        fm.last_seen = since
        self.log(
            EV_METER_LOST, fm.meter_id, f"silent since {_dt(since):%Y-%m-%d %H:%M}"
        )
        if fm.in_directory:
            now = self.clock.time()
            self._announce.append(self._status_item(fm, m.MeterStatus.LOST, now))

    def _status_item(self, fm: FleetMeter, status, t: float) -> m.MeterStatusItem:
        return m.MeterStatusItem(
            fm.meter_id,
            fm.pda,
            status,
            _dt(t + self.clock_offset),
            fm.short_address,
            fm.hops,
            fm.collector,
        )

    def force_offline(self, meter_id: str, seconds: float) -> None:
        """Fault: the meter drops off the network now for ``seconds``."""
        with self.lock:
            fm = self.by_id[meter_id]
            now = self.clock.time()
            fm.flaky = True
            fm.windows = iter([(math.inf, math.inf)])
            fm.off_at, fm.back_at = now, now + seconds
            if fm.state == "joined":
                fm.last_seen = now
            self.flaky.add(fm)

    def _targets(self, names: Iterable[str] = ()) -> list[FleetMeter]:
        names = tuple(names)
        if names:
            return [self.by_id[n] for n in names if self._known(n)]
        return [fm for fm in self.meters if fm.in_directory and fm.approved]

    def _known(self, name: str) -> bool:
        fm = self.by_id.get(name)
        return fm is not None and fm.in_directory

    # -- collection plan -----------------------------------------------------
    def set_plan(self, tasks: Iterable[m.CollectionTask]) -> None:
        for event in self._plan_events:
            event.cancel()
        self.plan = tuple(tasks)
        self._plan_events = [self._schedule(task) for task in self.plan]

    def _schedule(self, task: m.CollectionTask) -> Event:
        # Shortly after the boundary, so that meters whose clocks are a little
        # behind have captured the interval too.
        delay = self.config.collect_after_s
        boundary = next_boundary(task.period, self.dc_time() - delay) + delay
        return self.clock.at(self._true(boundary), self._run_task, task)

    def _run_task(self, task: m.CollectionTask) -> None:
        with self.lock:
            if task not in self.plan:
                return
            self._plan_events[self.plan.index(task)] = self._schedule(task)
            if self.booting():
                return  # a run missed while booting is caught up by the next
            span = period_seconds(task.period)
            rows, elapsed = self._collect(task.report_type, self._targets(), span)
            items = []
            if task.send:
                items = self._report_items(
                    task.report_type, rows, 0, m.RequestStatus.OK, task.delivery
                )
        if items:
            self.clock.after(elapsed, self._enqueue, items)

    def collect_now(
        self, report_type: m.ReportType, delivery: m.Delivery = m.Delivery.SOAP
    ) -> None:
        """Collect ``report_type`` from the directory's meters now and send
        it, as a task of the plan does at its boundary (e.g. a first report
        right after start-up, without waiting for the plan)."""
        with self.lock:
            if self.booting():
                return
            rows, elapsed = self._collect(report_type, self._targets(), 86400.0)
            items = self._report_items(
                report_type, rows, 0, m.RequestStatus.OK, delivery
            )
        if items:
            self.clock.after(elapsed, self._enqueue, items)

    def _collect(self, report_type, fms: list[FleetMeter], span: float):
        """Read ``fms`` (new data since the last run, ``span`` back at most for
        a meter never read) into the buffers: (report rows, seconds taken)."""
        now = self.clock.time()
        snapshot = self._snapshot(report_type)
        if snapshot is not None:
            return snapshot, 0.0
        rows: list[reports.Row] = []
        elapsed = 0.0
        for fm in fms:
            if not fm.online(now):
                elapsed += self.config.g3.app_timeout_s
                continue
            read = self._read(fm, report_type, now, span)
            ok, t = self.g3.exchange(fm.hops, fm.rs485, count=2 + len(read) // 40)
            elapsed += t
            if not ok:
                continue  # missed: the next run collects it from the meter
            fm.last_seen = now
            rows.extend(self._keep(fm, report_type, read))
            if report_type is m.ReportType.DAILY and self.clock_set is not None:
                self._sync_meter(fm, self.config.time_threshold_s, force=False)
        return rows, elapsed

    def _read(self, fm: FleetMeter, report_type, now: float, span: float) -> list:
        meter_now = now + fm.clock_offset()
        default = int(meter_now - span)
        store = fm.buffers()
        if report_type is m.ReportType.LOAD_PROFILE:
            last = store.load_profile.last()
            return fm.load_profile(last[0] if last else default, now)
        if report_type is m.ReportType.DAILY:
            last = store.daily.last()
            return fm.daily(last[0] if last else default, now)
        if report_type is m.ReportType.MONTHLY:
            last = store.monthly.last()
            return fm.monthly(last[0] if last else int(meter_now - 40 * 86400), now)
        if report_type is m.ReportType.METER_EVENTS:
            last = store.events.last()
            if last is None:
                return fm.events(default, now)
            have = {row for row in store.events if row[0] == last[0]}
            return [e for e in fm.events(last[0] - 1, now) if e not in have]
        if report_type is m.ReportType.INSTANT:
            return [fm.instant(now)]
        if report_type is m.ReportType.RELAY_STATUS:
            return [fm.relay(now)]
        raise ValueError(report_type)

    def _read_period(self, fm: FleetMeter, report_type, now: float, start, end) -> list:
        """What the meter itself holds within [start, end] (meter time; no
        start: all it holds), whatever the concentrator has collected."""
        after = int(start.timestamp()) - 1 if start else 0
        hi = end.timestamp() if end else math.inf
        read = {
            m.ReportType.LOAD_PROFILE: fm.load_profile,
            m.ReportType.DAILY: fm.daily,
            m.ReportType.MONTHLY: fm.monthly,
            m.ReportType.METER_EVENTS: fm.events,
        }[report_type](after, now)
        return [row for row in read if row[0] <= hi]

    @staticmethod
    def _ring(store, report_type):
        return {
            m.ReportType.LOAD_PROFILE: store.load_profile,
            m.ReportType.DAILY: store.daily,
            m.ReportType.MONTHLY: store.monthly,
            m.ReportType.METER_EVENTS: store.events,
        }.get(report_type)

    def _keep(self, fm: FleetMeter, report_type, read: list) -> list[reports.Row]:
        """Store what was read (the rows newer than the buffer's last: a
        period read again from the meter is not buffered twice) and turn it
        into report rows."""
        mid, when = fm.meter_id, self._when
        ring = self._ring(fm.buffers(), report_type)
        if ring is not None:
            last = ring.last()
            last_t = last[0] if last else None
            same_time: set | None = None  # rows of the last second buffered
            for r in read:
                if last_t is None or r[0] > last_t:
                    ring.append(*r)
                elif r[0] == last_t:  # another event of the last second?
                    if same_time is None:
                        same_time = {row for row in ring if row[0] == last_t}
                    if tuple(r) not in same_time:
                        ring.append(*r)
                        same_time.add(tuple(r))
        if report_type is m.ReportType.LOAD_PROFILE:
            return [
                reports.IntervalRow(mid, when(t), ai, p, st) for t, ai, p, st in read
            ]
        if report_type is m.ReportType.DAILY:
            return [reports.DailyRow(mid, when(r[0]), *r[1:]) for r in read]
        if report_type is m.ReportType.MONTHLY:
            return [self._monthly_row(mid, r) for r in read]
        if report_type is m.ReportType.METER_EVENTS:
            return [reports.EventRow(mid, when(t), LOGS[g], c) for t, g, c in read]
        now = self._when(self.clock.time() + fm.clock_offset())
        if report_type is m.ReportType.INSTANT:
            return [reports.InstantRow(mid, now, *r) for r in read]
        return [reports.RelayRow(mid, now, *r) for r in read]

    def _monthly_row(self, mid: str, r: tuple) -> reports.MonthlyRow:
        return reports.MonthlyRow(
            mid, self._when(r[0]), r[1], r[2], self._when(r[3]) if r[3] else None
        )

    def _stored(self, fm: FleetMeter, report_type, start, end) -> list[reports.Row]:
        """Rows of the buffers within [start, end] (meter time)."""
        lo = start.timestamp() if start else 0
        hi = end.timestamp() if end else math.inf
        ring = self._ring(fm.buffers(), report_type)
        picked = [row for row in ring if lo <= row[0] <= hi]
        mid, when = fm.meter_id, self._when
        if report_type is m.ReportType.LOAD_PROFILE:
            return [reports.IntervalRow(mid, when(r[0]), *r[1:]) for r in picked]
        if report_type is m.ReportType.DAILY:
            return [reports.DailyRow(mid, when(r[0]), *r[1:]) for r in picked]
        if report_type is m.ReportType.MONTHLY:
            return [self._monthly_row(mid, r) for r in picked]
        return [reports.EventRow(mid, when(t), LOGS[g], c) for t, g, c in picked]

    def _snapshot(self, report_type) -> list[reports.Row] | None:
        if report_type is m.ReportType.METER_LIST:
            return self._meter_list()
        if report_type is m.ReportType.DC_PARAMETERS:
            return [self._parameters()]
        if report_type is m.ReportType.DC_EVENTS:
            rows = [
                reports.DcEventRow(self._when(t), g, c, mid, detail)
                for seq, t, g, c, mid, detail in self.dc_events
                if seq > self._events_reported
            ]
            self._events_reported = self._event_seq
            return rows
        return None

    def _meter_list(self) -> list[reports.Row]:
        now = self.clock.time()
        rows = []
        for fm in self.meters:
            if fm.refused or not (fm.in_directory or fm.state == "joined"):
                continue
            if fm.state == "lost":
                status = "lost"
            elif fm.state == "joined":
                status = "joined" if fm.in_directory and fm.approved else "pending"
            else:
                status = "never_joined"
            seen = now if fm.state == "joined" and fm.online(now) else fm.last_seen
            seen_at = self._when(seen + self.clock_offset) if seen else None
            joined = fm.joined_at
            rows.append(
                reports.MeterEntry(
                    fm.meter_id,
                    fm.pda,
                    status,
                    fm.in_directory and fm.approved,
                    fm.short_address,
                    fm.hops if joined else None,
                    fm.collector,
                    self._when(joined + self.clock_offset) if joined else None,
                    seen_at,
                    fm.firmware(),
                    fm.model,
                )
            )
        return rows

    def _parameters(self) -> reports.DcParameters:
        now = self.clock.time()
        return reports.DcParameters(
            dc_id=self.dc_id,
            model=self.config.model,
            firmware=self.firmware,
            time=self._when(self.dc_time()),
            uptime=int(max(0.0, now - self.booted_at)),
            meters=sum(1 for fm in self.meters if fm.in_directory),
            joined=sum(1 for fm in self.meters if fm.state == "joined"),
            pan=self.config.g3.pan_id.to_bytes(2, "big"),
            outbox=len(self.outbox),
            clock_set=(
                self._when(self.clock_set + self.clock_offset)
                if self.clock_set is not None
                else None
            ),
            tasks=tuple(
                reports.TaskRow(t.report_type.value, t.period.value, t.send, t.delivery)
                for t in self.plan
            ),
        )

    # -- reports and the outbox ----------------------------------------------
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _report_items(
        self, report_type, rows, id_pet: int, status, delivery
    ) -> list[OutboxItem]:
        if (
            not rows
            and id_pet == 0
            and report_type
            not in (
                m.ReportType.METER_LIST,
                m.ReportType.DC_PARAMETERS,
            )
        ):
            return []  # nothing new: nothing to send
        generated = self._when(self.dc_time())
        items = []
        if delivery is m.Delivery.FILE:
            for part, chunk in enumerate(self._parts(report_type, rows)):
                payload = reports.render(
                    reports.Report(report_type, self.dc_id, id_pet, generated, chunk)
                )
                seq = self._next_seq()
                name = files.FileName(
                    self.dc_id, id_pet, report_type, part, generated, seq
                )
                data = files.pack(payload)
                items.append(OutboxItem(seq, name=str(name), data=data))
                self.report_log.append(
                    (report_type, len(chunk), len(payload), len(data))
                )
            return items
        payload = reports.render(
            reports.Report(report_type, self.dc_id, id_pet, generated, tuple(rows))
        )
        seq = self._next_seq()
        message = m.ReportDelivery(
            id_pet, self.dc_id, seq, status, report_type, reports.VERSION, payload
        )
        self.report_log.append((report_type, len(rows), len(payload), len(payload)))
        return [OutboxItem(seq, message)]

    def _parts(self, report_type, rows) -> list[tuple]:
        if report_type not in reports.GROUPED:
            return [tuple(rows)]
        parts: list[list] = [[]]
        seen: set[str] = set()
        for row in rows:
            if row.meter_id not in seen:
                if len(seen) == self.config.meters_per_file:
                    parts.append([])
                    seen = set()
                seen.add(row.meter_id)
            parts[-1].append(row)
        return [tuple(p) for p in parts]

    def _enqueue(self, items: list[OutboxItem]) -> None:
        with self.lock:
            for item in items:
                self.outbox.append(item)
                self._outbox_bytes += item.size
            dropped = 0
            while self._outbox_bytes > self.config.outbox_limit_bytes and self.outbox:
                old = self.outbox.popleft()
                self._outbox_bytes -= old.size
                dropped += 1
            if dropped:
                self.log(
                    EV_OUTBOX_OVERFLOW, detail=f"{dropped} oldest deliveries dropped"
                )
        self.flush()

    def flush(self) -> None:
        """Deliver the outbox in order until it is empty or the head-end is
        unreachable (then retry later, waiting longer each time)."""
        while True:
            with self.lock:
                if not self.outbox or self._retry is not None:
                    return
                rate = self.faults.reorder_rate
                if rate and len(self.outbox) > 1 and self.rng.random() < rate:
                    self.outbox[0], self.outbox[1] = self.outbox[1], self.outbox[0]
                item = self.outbox[0]
                online = self.is_online()
            if online:
                outcome, answer = self.uplink.deliver(item)
            else:
                outcome, answer = TRANSIENT, "backhaul down"
            with self.lock:
                if outcome in (DELIVERED, REFUSED):
                    if item in self.outbox:
                        self.outbox.remove(item)
                        self._outbox_bytes -= item.size
                    if outcome == REFUSED:
                        self.log(EV_DELIVERY_REFUSED, detail=f"{item.label}: {answer}")
                        continue
                    if self._failures >= ALARM_AFTER_FAILURES or self._held:
                        self.log(EV_BACKHAUL_RESTORED)
                    self._failures = 0
                    self._held = False
                    self._apply(answer)
                    continue
                # TRANSIENT or HELD: the item stays at the head of the outbox
                item.attempts += 1
                self._failures += 1
                if outcome == HELD and not self._held:
                    self._held = True  # alarm once, until it gets through
                    self.log(EV_DELIVERY_HELD, detail=f"{item.label}: {answer}")
                elif self._failures == ALARM_AFTER_FAILURES and outcome != HELD:
                    self.log(EV_DELIVERY_FAILING, detail=str(answer))
                delay = retry_delay(self._failures)
                self._retry = self.clock.after(delay, self._retry_flush)
                return

    def _retry_flush(self) -> None:
        with self.lock:
            self._retry = None
        self.flush()

    def _apply(self, answer) -> None:
        """The head-end's decisions about joined meters."""
        for decision in getattr(answer, "decisions", ()):
            fm = self.by_id.get(decision.meter_id)
            if fm is None:
                continue
            if decision.decision is m.Decision.APPROVED:
                fm.in_directory = fm.approved = True
                fm.refused = False
                fm.model = decision.model or fm.model
            elif decision.decision is m.Decision.REFUSED:
                fm.refused = True
                fm.approved = fm.in_directory = False

    # -- outages and reboots -------------------------------------------------
    def go_offline(self, seconds: float) -> None:
        """Fault: the backhaul is down for ``seconds`` (both directions)."""
        with self.lock:
            self.offline_until = max(self.offline_until, self.clock.time() + seconds)
            until = self.offline_until
        if self.on_online:
            self.on_online(False)
        self.clock.at(until, self._back_online)

    def _back_online(self) -> None:
        with self.lock:
            if not self.is_online():
                return  # the outage was extended
            if self._retry is not None:
                self._retry.cancel()
                self._retry = None
        if self.on_online:
            self.on_online(True)
        self.flush()

    def reboot(self, reason: str) -> None:
        """Volatile state is lost (DLMS sessions); the directory, buffers,
        outbox and a firmware campaign survive (flash)."""
        with self.lock:
            self._links.clear()
            self.booted_at = self.clock.time() + self.config.boot_s
            self.log(EV_BOOT, detail=reason)
            if self.campaign is not None and self.campaign.next_step is not None:
                self.campaign.next_step.cancel()  # _booted resumes it
                self.campaign.next_step = None
        self.go_offline(self.config.boot_s)
        self.clock.at(self.booted_at, self._booted)

    def _booted(self) -> None:
        campaign = self.campaign
        if campaign is not None and campaign.activation is None:
            if campaign.index < len(campaign.meters):
                with self.lock:
                    self.log(EV_CAMPAIGN_RESUMED, detail=campaign.image_id)
            self._campaign_step(campaign)

    # -- requests and orders: bookkeeping ------------------------------------
    def _answered(self, request: m.Message) -> tuple[m.Message | None, bytes]:
        """(the answer already given to this IdPet, the request's digest):
        the same answer for the same request (it is never run twice),
        ``malformed`` for another request under a used IdPet, None for a
        new IdPet."""
        digest = fingerprint(request)
        seen = self._requests.get(request.id_pet)  # type: ignore[attr-defined]
        if seen is None:
            return None, digest
        first, answer = seen
        if first == digest:
            return answer, digest
        id_pet = request.id_pet  # type: ignore[attr-defined]
        why = f"IdPet {id_pet} was used for another request"
        malformed = m.RequestStatus.MALFORMED
        if isinstance(request, m.SyncRequest):
            return m.SyncResponse(id_pet, malformed, None, why), digest
        response = soap.CONCENTRATOR.operation_for(request).response
        return response(id_pet, malformed, why), digest  # type: ignore[call-arg]

    def _remember(self, request: m.Message, digest: bytes, answer: m.Message) -> None:
        self._requests[request.id_pet] = (digest, answer)  # type: ignore[attr-defined]
        while len(self._requests) > REMEMBERED_REQUESTS:
            self._requests.popitem(last=False)

    def _finish(
        self,
        id_pet: int,
        outcomes: Iterable[m.MeterOutcome],
        elapsed: float,
        report: tuple[m.ReportType, list] | None = None,
        status: m.RequestStatus | None = None,
        message: str | None = None,
    ) -> None:
        outcomes = tuple(outcomes)
        status = status or overall(outcomes)
        items: list[OutboxItem] = []
        if report is not None:
            report_type, rows = report
            delivery = m.Delivery.FILE if len(rows) > 20000 else m.Delivery.SOAP
            items += self._report_items(report_type, rows, id_pet, status, delivery)
        update = m.RequestStatusUpdate(
            id_pet, self.dc_id, status, message, outcomes[:1024]
        )
        items.append(OutboxItem(self._next_seq(), update))
        self.clock.after(elapsed, self._enqueue, items)

    def _unknown(self, names: Iterable[str]) -> list[m.MeterOutcome]:
        return [
            m.MeterOutcome(n, m.RequestStatus.UNKNOWN_METER, "not in the directory")
            for n in names
            if not self._known(n)
        ]

    # -- the DLMS gateway ----------------------------------------------------
    def gateway(self, frame: bytes) -> m.GatewayResponse:
        """Relay one gateway request to the addressed meter's own DLMS server
        and wrap its answer; sleeps the G3 round trip for real."""
        try:
            outer = gateway.decode_wrapper(frame)
            request = gateway.unwrap_request(outer.apdu)
        except ValidationError as exc:
            return m.GatewayResponse(m.RequestStatus.MALFORMED, None, str(exc))
        with self.lock:
            fm = self.by_pda.get(request.pda)
            if (
                request.network_id != self.config.network_id
                or fm is None
                or not (fm.in_directory and fm.approved)
            ):
                return m.GatewayResponse(
                    m.RequestStatus.UNKNOWN_METER,
                    None,
                    f"no meter {request.pda.hex().upper()} on network "
                    f"{request.network_id} of {self.dc_id}",
                )
            ok, elapsed = self.g3.exchange(fm.hops, fm.rs485)
            if not fm.online(self.clock.time()):
                ok, elapsed = False, self.config.g3.app_timeout_s
        time.sleep(elapsed * self.latency_scale)
        if not ok:
            return m.GatewayResponse(
                m.RequestStatus.METER_TIMEOUT, None, f"no answer from {fm.meter_id}"
            )
        with self.lock:
            meter = fm.materialise(self.clock)
            link = self._links.get(fm.pda)
            if link is None:
                link = self._links[fm.pda] = WrapperLink(meter)
            inner = gateway.WrapperFrame(outer.source, outer.destination, request.apdu)
            replies = link.feed(gateway.encode_wrapper(inner))
            fm.last_seen = self.clock.time()
        if not replies:
            return m.GatewayResponse(
                m.RequestStatus.METER_TIMEOUT, None, f"{fm.meter_id} did not answer"
            )
        answer = gateway.decode_wrapper(replies[0])
        wrapped = gateway.wrap_response(
            gateway.GatewayApdu(request.network_id, request.pda, answer.apdu)
        )
        return m.GatewayResponse(
            m.RequestStatus.OK,
            gateway.encode_wrapper(
                gateway.WrapperFrame(answer.source, answer.destination, wrapped)
            ),
        )

    # -- inspection ----------------------------------------------------------
    def meter(self, meter_id: str) -> FleetMeter:
        return self.by_id[meter_id]

    def materialised(self) -> int:
        return sum(1 for fm in self.meters if fm.meter is not None)


def overall(outcomes: tuple[m.MeterOutcome, ...]) -> m.RequestStatus:
    """The request's status from its meters' outcomes."""
    if not outcomes:
        return m.RequestStatus.OK
    statuses = {o.status for o in outcomes}
    if statuses == {m.RequestStatus.OK}:
        return m.RequestStatus.OK
    if m.RequestStatus.OK in statuses:
        return m.RequestStatus.PARTIAL
    if len(statuses) == 1:
        return statuses.pop()
    return m.RequestStatus.FAILED
