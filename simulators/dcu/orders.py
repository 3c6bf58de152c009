"""Orders the head-end gives a concentrator: relay, time, directory and
collection plan (firmware orders are in ``firmware.py``), run on the
simulated clock within their execution window.

A TimeSync order sets the concentrator's clock when it arrives: its Time is
the head-end's clock when it sent the order, true only then. Waiting for the
window's Start by a clock that is wrong (the reason for the order) would set
a stale time; Start governs the meters' part only, run by the corrected
clock."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator import reports

from . import meterops
from .events import (
    EV_CLOCK_SET,
    EV_IMAGE_REFUSED,
    EV_METER_CLOCK_SET,
    EV_METER_DRIFT_TOO_LARGE,
    EV_METER_REMOVED,
)
from .fleet import FleetMeter
from .uplink import OutboxItem

RETRY_S = 900.0  # relay orders retry unreachable meters every 15 minutes


@dataclass
class _OrderRun:
    order: m.Order
    meters: list[FleetMeter]
    outcomes: dict[str, m.MeterOutcome] = field(default_factory=dict)
    rows: list[reports.Row] = field(default_factory=list)
    elapsed: float = 0.0


class OrdersMixin:
    """Part of :class:`~simulators.dcu.concentrator.Concentrator`."""

    # -- orders --------------------------------------------------------------
    def accept_order(self, order: m.Order) -> m.OrderAccepted:
        with self.lock:
            seen, digest = self._answered(order)
            if seen is not None:
                return seen  # type: ignore[return-value]
            answer = self._check_order(order)
            self._remember(order, digest, answer)
            if answer.status is m.RequestStatus.WORKING:
                if isinstance(order.body, m.TimeSyncOrder):
                    self._set_own_clock(order.body.time)
                start = order.window.start
                at = self._true(start.timestamp()) if start else self.clock.time()
                self.clock.at(at, self._execute, order)
            return answer

    def _check_order(self, order: m.Order) -> m.OrderAccepted:
        body, id_pet = order.body, order.id_pet
        if isinstance(body, m.TimeSyncOrder):
            # Judged by the time it carries, not by our clock (which may be
            # the very thing that is wrong).
            if order.window.end <= body.time:
                return m.OrderAccepted(
                    id_pet,
                    m.RequestStatus.EXPIRED,
                    "the execution window ends before the time the order sets",
                )
        elif order.window.end.timestamp() <= self.dc_time():
            return m.OrderAccepted(
                id_pet,
                m.RequestStatus.EXPIRED,
                "the execution window had ended when the order arrived",
            )
        if isinstance(body, m.FirmwareOrder):
            if hashlib.sha256(body.image).digest() != body.sha256:
                self.log(EV_IMAGE_REFUSED, detail=body.image_id)
                return m.OrderAccepted(
                    id_pet,
                    m.RequestStatus.MALFORMED,
                    "image does not match its SHA-256",
                )
        if isinstance(body, m.MeterAddOrder):
            return m.OrderAccepted(id_pet, m.RequestStatus.WORKING)
        names = getattr(body, "meters", ())
        unknown = [n for n in names if not self._known(n)]
        if names and len(unknown) == len(names):
            return m.OrderAccepted(
                id_pet,
                m.RequestStatus.UNKNOWN_METER,
                "not in the directory: " + ", ".join(unknown[:20]),
            )
        notes = [f"{len(unknown)} meter(s) not in the directory"] if unknown else []
        if isinstance(body, m.FirmwareOrder) and body.target is m.FirmwareTarget.METERS:
            ahead = len(self.campaign_queue) + (self.campaign is not None)
            if ahead:
                notes.append(f"queued behind {ahead} firmware campaign(s)")
        return m.OrderAccepted(
            id_pet, m.RequestStatus.WORKING, "; ".join(notes) or None
        )

    def _execute(self, order: m.Order) -> None:
        body = order.body
        if isinstance(body, m.RelayOrder):
            with self.lock:
                run = _OrderRun(order, self._targets(body.meters))
                run.outcomes.update({o.meter_id: o for o in self._unknown(body.meters)})
            self._relay_attempt(run)
        elif isinstance(body, m.TimeSyncOrder):
            self._time_sync(order)
        elif isinstance(body, m.MeterAddOrder):
            self._meter_add(order)
        elif isinstance(body, m.MeterRemoveOrder):
            self._meter_remove(order)
        elif isinstance(body, m.CollectionPlanOrder):
            with self.lock:
                self.set_plan(body.tasks)
                self._finish(order.id_pet, (), 0.0)
        elif isinstance(body, m.FirmwareOrder):
            if body.target is m.FirmwareTarget.CONCENTRATOR:
                at = body.activate_at
                when = self._true(at.timestamp()) if at else self.clock.time()
                self.clock.at(when, self._activate_own_image, order)
            else:
                self._campaign_start(order)

    def _relay_attempt(self, run: _OrderRun) -> None:
        body = run.order.body
        assert isinstance(body, m.RelayOrder)
        now = self.clock.time()
        with self.lock:
            elapsed = 0.0
            for fm in run.meters:
                if fm.meter_id in run.outcomes or not fm.online(now):
                    continue
                ok, t = self.g3.exchange(fm.hops, fm.rs485, count=3)
                elapsed += t
                if not ok:
                    continue
                meter = fm.materialise(self.clock)
                fm.last_seen = now
                try:
                    connected, state = meterops.relay(meter, body.action.value)
                except meterops.MeterRefused as exc:
                    run.outcomes[fm.meter_id] = m.MeterOutcome(
                        fm.meter_id, m.RequestStatus.FAILED, str(exc)[:200]
                    )
                    continue
                names = ("disconnected", "connected", "ready_for_reconnection")
                run.outcomes[fm.meter_id] = m.MeterOutcome(
                    fm.meter_id, m.RequestStatus.OK, names[state]
                )
                meter_now = self._when(now + fm.clock_offset())
                run.rows.append(
                    reports.RelayRow(fm.meter_id, meter_now, connected, state)
                )
            left = [fm for fm in run.meters if fm.meter_id not in run.outcomes]
            end = self._true(run.order.window.end.timestamp())
            if left and now + RETRY_S < end:
                self.clock.after(RETRY_S, self._relay_attempt, run)
                return
            for fm in left:
                run.outcomes[fm.meter_id] = m.MeterOutcome(
                    fm.meter_id,
                    m.RequestStatus.EXPIRED,
                    "not reached within the execution window",
                )
            self._finish(
                run.order.id_pet,
                run.outcomes.values(),
                elapsed,
                (m.ReportType.RELAY_STATUS, run.rows),
            )

    def _set_own_clock(self, time) -> None:
        now = self.clock.time()
        with self.lock:
            old = self.clock_offset
            self.clock_offset = time.timestamp() - now
            self.clock_set = now
            self.log(EV_CLOCK_SET, detail=f"moved {self.clock_offset - old:+.1f} s")
            self.set_plan(self.plan)  # the plan follows the new clock

    def _time_sync(self, order: m.Order) -> None:
        """The meters' part of a TimeSync order (the concentrator's own clock
        was set when the order arrived)."""
        body = order.body
        assert isinstance(body, m.TimeSyncOrder)
        now = self.clock.time()
        with self.lock:
            threshold = body.threshold_s
            if threshold is None:
                threshold = self.config.time_threshold_s
            outcomes = self._unknown(body.meters)
            elapsed = 0.0
            for fm in self._targets(body.meters):
                if fm.state != "joined" or not fm.online(now):
                    outcomes.append(
                        m.MeterOutcome(fm.meter_id, m.RequestStatus.METER_TIMEOUT)
                    )
                    continue
                ok, t = self.g3.exchange(fm.hops, fm.rs485, count=2)
                elapsed += t
                if not ok:
                    outcomes.append(
                        m.MeterOutcome(fm.meter_id, m.RequestStatus.METER_TIMEOUT)
                    )
                    continue
                outcomes.append(self._sync_meter(fm, threshold, body.force))
            self._finish(order.id_pet, outcomes, elapsed)

    def _sync_meter(self, fm: FleetMeter, threshold: float, force: bool):
        drift = fm.clock_offset() - self.clock_offset
        mid = fm.meter_id
        if abs(drift) <= threshold and not force:
            return m.MeterOutcome(
                mid, m.RequestStatus.OK, f"drift {drift:+.1f} s, within {threshold:g} s"
            )
        if abs(drift) > self.config.time_max_auto_s and not force:
            self.log(EV_METER_DRIFT_TOO_LARGE, mid, f"drift {drift:+.0f} s")
            return m.MeterOutcome(
                mid,
                m.RequestStatus.FAILED,
                f"drift {drift:+.0f} s beyond {self.config.time_max_auto_s:g} s: "
                "set only by a forced order",
            )
        meterops.set_clock(fm.materialise(self.clock), self._when(self.dc_time()))
        self.log(EV_METER_CLOCK_SET, mid, f"drift {drift:+.0f} s")
        return m.MeterOutcome(
            mid, m.RequestStatus.OK, f"clock set (drift {drift:+.0f} s)"
        )

    def _meter_add(self, order: m.Order) -> None:
        body = order.body
        assert isinstance(body, m.MeterAddOrder)
        with self.lock:
            outcomes = []
            for entry in body.entries:
                fm = self.by_pda.get(entry.pda)
                if fm is None:
                    outcomes.append(
                        m.MeterOutcome(
                            entry.meter_id,
                            m.RequestStatus.UNKNOWN_METER,
                            "no meter with this PDA on this network",
                        )
                    )
                elif fm.meter_id != entry.meter_id:
                    outcomes.append(
                        m.MeterOutcome(
                            entry.meter_id,
                            m.RequestStatus.FAILED,
                            f"this PDA is meter {fm.meter_id}",
                        )
                    )
                else:
                    fm.in_directory = fm.approved = True
                    fm.refused = False
                    fm.model = entry.model or fm.model
                    outcomes.append(m.MeterOutcome(fm.meter_id, m.RequestStatus.OK))
            self._finish(order.id_pet, outcomes, 0.0)

    def _meter_remove(self, order: m.Order) -> None:
        body = order.body
        assert isinstance(body, m.MeterRemoveOrder)
        now = self.clock.time()
        with self.lock:
            outcomes = self._unknown(body.meters)
            removed = []
            for fm in self._targets(body.meters):
                fm.in_directory = fm.approved = False
                self.log(EV_METER_REMOVED, fm.meter_id)
                removed.append(self._status_item(fm, m.MeterStatus.REMOVED, now))
                outcomes.append(m.MeterOutcome(fm.meter_id, m.RequestStatus.OK))
            self._finish(order.id_pet, outcomes, 0.0)
        if removed:
            self._enqueue(
                [
                    OutboxItem(
                        self._next_seq(),
                        m.MeterStatusUpdate(self.dc_id, tuple(removed)),
                    )
                ]
            )
