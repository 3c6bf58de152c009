"""Firmware: the concentrator's own image, and meter images distributed by
image transfer (class 18) with verification, retries, activation at a time,
rollback, and the campaign's resumption after a reboot.

One meter campaign runs at a time: a firmware order that arrives while one
runs waits in a queue and starts when it is over (two campaigns at once
would overwrite each other's transfers). Each scheduled step names its
campaign, so a step can only drive the campaign it belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field

from trytond.modules.prepaid_headend.concentrator import messages as m

from . import meterops
from .clock import Event
from .events import (
    EV_ACTIVATION_MISSED,
    EV_CAMPAIGN_QUEUED,
    EV_CAMPAIGN_RESUMED,
    EV_DC_ROLLED_BACK,
    EV_DC_UPGRADED,
    EV_METER_ROLLED_BACK,
    EV_METER_UPGRADE_FAILED,
    EV_METER_UPGRADED,
)
from .fleet import FleetMeter


@dataclass
class _Campaign:
    order: m.Order
    image_id: str
    image: bytes
    meters: list[FleetMeter]
    activate_at: float | None  # concentrator time
    index: int = 0
    verified: list[FleetMeter] = field(default_factory=list)
    outcomes: dict[str, m.MeterOutcome] = field(default_factory=dict)
    rebooted: bool = False
    next_step: Event | None = None  # cancelled by a reboot
    activation: Event | None = None  # once every meter has its image


class FirmwareMixin:
    """Part of :class:`~simulators.dcu.concentrator.Concentrator`."""

    # -- firmware ------------------------------------------------------------
    def _activate_own_image(self, order: m.Order) -> None:
        body = order.body
        assert isinstance(body, m.FirmwareOrder)
        with self.lock:
            old = self.firmware
            if self._image_fault_pending:
                self._image_fault_pending = False
                self.log(
                    EV_DC_ROLLED_BACK, detail=f"{body.image_id} did not start; {old}"
                )
                status = m.RequestStatus.FAILED
                message = f"{body.image_id} did not start; back on {old} (rolled back)"
            else:
                self.firmware = body.image_id
                self.log(EV_DC_UPGRADED, detail=f"{old} -> {body.image_id}")
                status, message = m.RequestStatus.OK, f"{old} -> {body.image_id}"
        self.reboot(f"activation of {body.image_id}")
        with self.lock:
            self._finish(
                order.id_pet, (), self.config.boot_s, status=status, message=message
            )

    def _campaign_start(self, order: m.Order) -> None:
        body = order.body
        assert isinstance(body, m.FirmwareOrder)
        with self.lock:
            if self.campaign is not None:
                self.campaign_queue.append(order)
                self.log(
                    EV_CAMPAIGN_QUEUED,
                    detail=f"{body.image_id} after {self.campaign.image_id}",
                )
                return
            at = body.activate_at.timestamp() if body.activate_at else None
            c = self.campaign = _Campaign(
                order, body.image_id, body.image, self._targets(body.meters), at
            )
            c.outcomes.update({o.meter_id: o for o in self._unknown(body.meters)})
        self._campaign_step(c)

    def _campaign_next(self, c: _Campaign, delay: float) -> None:
        c.next_step = self.clock.after(delay, self._campaign_step, c)

    def _campaign_step(self, c: _Campaign) -> None:
        with self.lock:
            c.next_step = None
            if c is not self.campaign or self.booting():
                return  # finished, or after a reboot _booted resumes it
            if c.index >= len(c.meters):
                if c.activation is None:
                    at = c.activate_at
                    when = self._true(at) if at is not None else self.clock.time()
                    c.activation = self.clock.at(when, self._campaign_activate, c)
                return
            fm = c.meters[c.index]
            now = self.clock.time()
            if not fm.online(now):
                c.outcomes[fm.meter_id] = m.MeterOutcome(
                    fm.meter_id, m.RequestStatus.METER_TIMEOUT, "not on the network"
                )
                c.index += 1
                self._campaign_next(c, self.config.g3.app_timeout_s)
                return
            meter = fm.materialise(self.clock)
            size, block = len(c.image), meterops.image_block_size(meter)
            count = -(-size // block)
            first = meterops.image_resume_point(meter, c.image_id, size)
            if first is None:
                meterops.image_initiate(meter, c.image_id, size)
                first = 0
            else:
                self.log(EV_CAMPAIGN_RESUMED, fm.meter_id, f"from block {first}")
            reboot_here = (
                self.faults.reboot_in_campaign_at == c.index and not c.rebooted
            )
            last = first + (count - first) // 2 if reboot_here else count
            self._send_blocks(meter, c, range(first, last), block)
            ok, elapsed = self.g3.exchange(fm.hops, fm.rs485, count=last - first + 2)
            if reboot_here:
                c.rebooted = True
                self.clock.after(elapsed, self.reboot, "power failure in a campaign")
                return
            status = meterops.image_verify(meter) if ok else None
            attempts = 1
            while ok and status != meterops.VERIFIED and attempts < 3:
                self._send_blocks(meter, c, range(count), block)  # all again
                ok, t = self.g3.exchange(fm.hops, fm.rs485, count=count + 1)
                elapsed += t
                status = meterops.image_verify(meter) if ok else None
                attempts += 1
            if status == meterops.VERIFIED:
                c.verified.append(fm)
            else:
                why = (
                    "transfer interrupted" if not ok else "verification failed 3 times"
                )
                self.log(EV_METER_UPGRADE_FAILED, fm.meter_id, why)
                c.outcomes[fm.meter_id] = m.MeterOutcome(
                    fm.meter_id,
                    m.RequestStatus.METER_TIMEOUT if not ok else m.RequestStatus.FAILED,
                    why,
                )
            c.index += 1
            self._campaign_next(c, elapsed)

    def _send_blocks(self, meter, c: _Campaign, numbers: range, size: int) -> None:
        rate = self.faults.corrupt_block_rate
        for n in numbers:
            data = c.image[n * size : (n + 1) * size]
            if rate and self.rng.random() < rate:
                data = meterops.corrupt(data, n)
            meterops.image_block(meter, n, data)

    def _campaign_activate(self, c: _Campaign) -> None:
        with self.lock:
            if c is not self.campaign:
                return
            elapsed = 0.0
            now = self.clock.time()
            for fm in c.verified:
                ok, t = self.g3.exchange(fm.hops, fm.rs485, count=2)
                if not fm.online(now):
                    ok, t = False, self.config.g3.app_timeout_s
                elapsed += t
                if not ok:  # the image waits in the meter, not activated
                    self.log(EV_ACTIVATION_MISSED, fm.meter_id, c.image_id)
                    c.outcomes[fm.meter_id] = m.MeterOutcome(
                        fm.meter_id,
                        m.RequestStatus.METER_TIMEOUT,
                        f"not reached to activate {c.image_id}; "
                        f"{fm.firmware()} still running",
                    )
                    continue
                meter = fm.materialise(self.clock)
                old = fm.firmware()
                status = meterops.image_activate(meter)
                now_running = fm.firmware()
                if status == meterops.ACTIVATED and now_running == c.image_id:
                    self.log(EV_METER_UPGRADED, fm.meter_id, f"{old} -> {c.image_id}")
                    c.outcomes[fm.meter_id] = m.MeterOutcome(
                        fm.meter_id, m.RequestStatus.OK, f"{old} -> {c.image_id}"
                    )
                else:
                    self.log(EV_METER_ROLLED_BACK, fm.meter_id, now_running)
                    c.outcomes[fm.meter_id] = m.MeterOutcome(
                        fm.meter_id,
                        m.RequestStatus.FAILED,
                        f"activation failed; {now_running} still running (rolled back)",
                    )
            self.campaign = None
            self._finish(c.order.id_pet, c.outcomes.values(), elapsed)
            queued = self.campaign_queue.popleft() if self.campaign_queue else None
        if queued is not None:
            self.clock.after(elapsed, self._campaign_start, queued)
