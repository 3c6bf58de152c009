"""Per-meter configuration and the simulated physics (energy, credit, relay).

Time is injectable: :class:`MeterState` reads "true" UTC time from a ``clock``
callable, so tests advance simulated time without sleeping. The meter's own
clock is true time plus ``clock_offset_s`` (clock drift fault, or SET clock).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], dt.datetime]

DEFAULT_EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
DEFAULT_AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")

CAPTURE_PERIOD_S = 900
LOAD_PROFILE_ROWS = 2 * 96  # last 2 days of 15-minute rows
BILLING_ROWS = 12
EVENT_LOG_ROWS = 100
TID_MEMORY = 50
LOAD_SHAPE_AMPLITUDE = 0.5  # power swings +-50 % around load_kw over a day
_OMEGA = 2 * math.pi / 86400

# Event codes. 1-99 follow the IDIS event code list (standard / disconnector
# logs); 200+ are simulator-specific and documented in simulators/README.md.
EV_CLOCK_ADJUSTED_OLD = 4
EV_CLOCK_ADJUSTED_NEW = 5
EV_FIRMWARE_READY = 17
EV_FIRMWARE_ACTIVATED = 18
EV_REMOTE_DISCONNECTION = 50
EV_REMOTE_CONNECTION = 51
EV_LOCAL_DISCONNECTION = 52
EV_LIMITER_EXCEEDED = 53
EV_CREDIT_EXHAUSTED = 200
EV_TOKEN_ACCEPTED = 201
EV_TOKEN_REJECTED = 202
EV_TAMPER_CLEARED = 203
EV_FIRMWARE_VERIFY_FAILED = 204
EV_FIRMWARE_ACTIVATION_FAILED = 205

ALARM_TAMPER = 1 << 8  # IDIS alarm register 1, bit 8 "fraud attempt"

# Disconnect control states (class 70 attr 3).
DISCONNECTED = 0
CONNECTED = 1
READY_FOR_RECONNECTION = 2


@dataclass
class MeterConfig:
    """Everything that differs between simulated meters (contract fields)."""

    index: int = 0
    serial: str = ""
    port: int = 0
    framing: str = "wrapper"  # "wrapper" | "hdlc"
    lls_password: bytes = b"12345678"
    hls_secret: bytes = b"Gurux"
    block_cipher_key: bytes = DEFAULT_EK
    authentication_key: bytes = DEFAULT_AK
    decoder_key: bytes | None = None
    sts_ea: str = "07"  # "07" (STA) | "11" (MISTY1)
    load_kw: float = 1.0
    prepaid: bool = True
    initial_credit_kwh: float = 50.0
    firmware_id: str = "FW-1.0.0"
    clock_offset_s: float = 0.0
    latency_ms: float = 0.0
    drop_rate: float = 0.0
    seed: int = 0
    initial_energy_wh: int = 1_500_000
    server_max_pdu: int = 1024  # largest APDU the meter sends/receives
    hdlc_max_info: int = 128  # HDLC information field length (both ways)
    # Fault: that many activations fail (the meter keeps its old firmware).
    activation_failures: int = 0

    def __post_init__(self) -> None:
        if self.framing not in ("wrapper", "hdlc"):
            raise ValueError(f"framing must be 'wrapper' or 'hdlc': {self.framing!r}")
        if self.sts_ea not in ("07", "11"):
            raise ValueError(f"sts_ea must be '07' or '11': {self.sts_ea!r}")
        if not 0.0 <= self.drop_rate <= 1.0:
            raise ValueError("drop_rate must be within [0, 1]")
        for name in ("block_cipher_key", "authentication_key"):
            if len(getattr(self, name)) != 16:
                raise ValueError(f"{name} must be 16 bytes (security suite 0)")
        if not self.serial:
            self.serial = f"{self.index:08d}"

    @property
    def system_title(self) -> bytes:
        """ASCII ``PPS`` + 5-byte big-endian meter index."""
        return b"PPS" + self.index.to_bytes(5, "big")

    @property
    def logical_device_name(self) -> bytes:
        return b"PPS" + self.serial.encode("ascii")


def energy_between(p0_w: float, t1: float, t2: float) -> float:
    """Energy (Wh) drawn between true times ``t1`` and ``t2`` by a load of
    mean ``p0_w`` with the daily shape of :meth:`MeterState.power_at`
    (closed form, so a meter can be evaluated at any time without stepping)."""
    a = LOAD_SHAPE_AMPLITUDE
    return (
        p0_w
        / 3600.0
        * ((t2 - t1) + a / _OMEGA * (math.cos(_OMEGA * t2) - math.cos(_OMEGA * t1)))
    )


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ts(t: dt.datetime) -> float:
    return t.timestamp()


def _from_ts(s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(s, dt.UTC)


@dataclass
class ProfileRow:
    time: dt.datetime  # meter time at capture
    values: tuple[int, ...]


@dataclass
class TokenStatus:
    status: int = 0  # class 115 token_status enum
    data: str = ""  # bit-string


@dataclass
class ImageState:
    identifier: bytes = b""
    size: int = 0
    blocks: dict[int, bytes] = field(default_factory=dict)
    status: int = 0  # 0 not initiated ... 7 activation failed


class MeterState:
    """Live state of one simulated meter; all mutation goes through here."""

    def __init__(self, config: MeterConfig, clock: Clock = utc_now) -> None:
        self.config = config
        self._clock = clock
        # The server thread and test code may both advance the physics.
        self._lock = threading.RLock()
        now = _ts(clock())
        self._t = now  # true time up to which physics has been integrated
        self.clock_offset_s = float(config.clock_offset_s)
        self._p0 = config.load_kw * 1000.0
        self.energy_import_wh = float(config.initial_energy_wh)
        self.energy_export_wh = 0.0
        self.credit_wh = config.initial_credit_kwh * 1000.0 if config.prepaid else 0.0
        self.prepaid = config.prepaid
        self.account_status = 2  # active
        self.relay_connected = True
        self.control_state = CONNECTED
        # Disconnect control's control_mode (class 70 attribute 4): in modes
        # 2 and 4 a remote reconnection closes the relay; in 1, 3, 5 and 6 it
        # only makes it ready for the customer to reconnect.
        self.control_mode = 2
        self.disconnect_reason: str | None = None
        self.firmware_id = config.firmware_id
        self.alarm_register = 0
        self.token_status = TokenStatus()
        self.last_token = b""
        self.token_time: dt.datetime | None = None
        self.accepted_tids: list[int] = []
        self.events: deque[ProfileRow] = deque(maxlen=EVENT_LOG_ROWS)
        self.disconnector_events: deque[ProfileRow] = deque(maxlen=EVENT_LOG_ROWS)
        self.limiter_threshold_active_w = 0  # 0 = limiter disabled
        self.limiter_threshold_normal_w = 0
        self.limiter_threshold_emergency_w = 0
        self.limiter_min_over_s = 60
        self.limiter_min_under_s = 60
        self._over_since: float | None = None
        self.max_demand_w = 0
        self.max_demand_time: dt.datetime | None = None
        self.image = ImageState()
        self.activation_failures = config.activation_failures
        self.special_days: list[tuple[int, bytes, int]] = [
            (1, bytes.fromhex("FFFF0C19FF"), 1)  # every 25 December -> day 1
        ]
        self.calendar_passive: dict[int, object] = {}
        self.load_profile: deque[ProfileRow] = deque(maxlen=LOAD_PROFILE_ROWS)
        self.billing: deque[ProfileRow] = deque(maxlen=BILLING_ROWS)
        self._backfill(now)
        self._next_capture = self._next_boundary(now)
        self._interval_start_energy = self.energy_import_wh

    # --- time ---------------------------------------------------------------

    def true_now(self) -> float:
        return _ts(self._clock())

    def meter_time(self) -> dt.datetime:
        """The meter's own clock (true time + offset), after advancing physics."""
        self.advance()
        return _from_ts(self._t + self.clock_offset_s)

    def set_meter_time(self, new: dt.datetime) -> None:
        old = self.meter_time()
        self.clock_offset_s = _ts(new) - self._t
        self._next_capture = self._next_boundary(self._t)
        self.log_event(EV_CLOCK_ADJUSTED_OLD, old)
        self.log_event(EV_CLOCK_ADJUSTED_NEW)

    def _next_boundary(self, true_t: float) -> float:
        meter_t = true_t + self.clock_offset_s
        boundary = (math.floor(meter_t / CAPTURE_PERIOD_S) + 1) * CAPTURE_PERIOD_S
        return boundary - self.clock_offset_s

    # --- load model ---------------------------------------------------------

    def power_at(self, true_t: float) -> float:
        """Demanded power (W) with a daily shape peaking at 18:00 UTC."""
        return self._p0 * (1.0 - LOAD_SHAPE_AMPLITUDE * math.sin(_OMEGA * true_t))

    def _energy_between(self, t1: float, t2: float) -> float:
        """Closed-form integral of power_at over [t1, t2], in Wh."""
        return energy_between(self._p0, t1, t2)

    @property
    def active_power_w(self) -> float:
        self.advance()
        return self.power_at(self._t) if self.relay_connected else 0.0

    # --- history back-fill --------------------------------------------------

    def _backfill(self, now: float) -> None:
        """Pretend the meter ran connected before ``now``: fill the profiles.

        A register cannot go below zero: where the simulated load would need
        more energy than the meter has counted, the meter was not installed
        yet and its history reads zero.
        """
        offset = self.clock_offset_s
        meter_now = now + offset
        last = math.floor(meter_now / CAPTURE_PERIOD_S) * CAPTURE_PERIOD_S
        for k in range(LOAD_PROFILE_ROWS - 1, -1, -1):
            b_meter = last - k * CAPTURE_PERIOD_S
            b_true = b_meter - offset
            e = max(0.0, self.energy_import_wh - self._energy_between(b_true, now))
            avg = self._energy_between(b_true - CAPTURE_PERIOD_S, b_true) * 4
            self.load_profile.append(
                ProfileRow(_from_ts(b_meter), (round(e), round(avg)))
            )
        start = _from_ts(meter_now)
        month = dt.datetime(start.year, start.month, 1, tzinfo=dt.UTC)
        ends = []
        for _ in range(BILLING_ROWS):
            ends.append(month)
            month = (month - dt.timedelta(days=1)).replace(day=1)
        for end in reversed(ends):
            e = max(
                0.0,
                self.energy_import_wh - self._energy_between(_ts(end) - offset, now),
            )
            peak = round(self._p0 * (1 + LOAD_SHAPE_AMPLITUDE))
            self.billing.append(ProfileRow(end, (round(e), peak)))

    # --- physics ------------------------------------------------------------

    def advance(self) -> None:
        """Integrate consumption from the last update up to the clock's now."""
        now = self.true_now()
        with self._lock:
            while self._t < now:
                step_end = min(now, self._t + 60.0, self._next_capture)
                self._check_limiter(self._t)
                if self.relay_connected:
                    self._consume(self._t, step_end)
                self._t = step_end
                if self._t >= self._next_capture:
                    self._capture()

    def _consume(self, t1: float, t2: float) -> None:
        de = self._energy_between(t1, t2)
        if self.prepaid and de >= self.credit_wh:
            # Credit runs out inside the step: stop at the (linearly
            # interpolated) crossing; the rest of the step has no supply.
            used = max(self.credit_wh, 0.0)
            self.energy_import_wh += used
            self.credit_wh = 0.0
            cross = t1 + (t2 - t1) * (used / de if de > 0 else 0.0)
            when = _from_ts(cross + self.clock_offset_s)
            self.open_relay("credit", EV_CREDIT_EXHAUSTED, when)
            return
        self.energy_import_wh += de
        if self.prepaid:
            self.credit_wh -= de

    def _check_limiter(self, t: float) -> None:
        thr = self.limiter_threshold_active_w
        if not thr or not self.relay_connected or self.power_at(t) <= thr:
            self._over_since = None
            return
        if self._over_since is None:
            self._over_since = t
        if t - self._over_since >= self.limiter_min_over_s:
            self._over_since = None
            self.open_relay("limiter", EV_LIMITER_EXCEEDED)

    def _capture(self) -> None:
        b_meter = self._next_capture + self.clock_offset_s
        stamp = _from_ts(round(b_meter))
        interval = self.energy_import_wh - self._interval_start_energy
        demand = round(interval * 3600 / CAPTURE_PERIOD_S)
        self._interval_start_energy = self.energy_import_wh
        self.load_profile.append(
            ProfileRow(stamp, (round(self.energy_import_wh), demand))
        )
        if demand > self.max_demand_w:
            self.max_demand_w, self.max_demand_time = demand, stamp
        if stamp.day == 1 and stamp.hour == 0 and stamp.minute == 0:
            self.billing.append(
                ProfileRow(stamp, (round(self.energy_import_wh), self.max_demand_w))
            )
            self.max_demand_w, self.max_demand_time = 0, None
        self._next_capture = self._next_boundary(self._t)

    # --- relay, credit, events ----------------------------------------------

    def open_relay(
        self, reason: str, event: int, when: dt.datetime | None = None
    ) -> None:
        if not self.relay_connected and self.control_state == DISCONNECTED:
            return
        self.relay_connected = False
        self.control_state = DISCONNECTED
        self.disconnect_reason = reason
        code = EV_REMOTE_DISCONNECTION if reason == "remote" else EV_LOCAL_DISCONNECTION
        self.log_disconnector(code, when)
        if event != code:
            self.log_event(event, when)

    def close_relay(self, reason: str = "remote") -> None:
        self.advance()
        if self.relay_connected:
            return
        self.relay_connected = True
        self.control_state = CONNECTED
        self.disconnect_reason = None
        self.log_disconnector(EV_REMOTE_CONNECTION)

    def remote_reconnect(self) -> None:
        """Class 70 remote_reconnect, as the control mode says."""
        self.advance()
        if self.relay_connected:
            return
        if self.control_mode in (1, 3, 5, 6):
            self.control_state = READY_FOR_RECONNECTION
        else:
            self.close_relay()

    def manual_reconnect(self) -> None:
        """The customer presses the meter's button: a relay that is ready
        for reconnection closes."""
        self.advance()
        if self.control_state == READY_FOR_RECONNECTION:
            self.close_relay("manual")

    def add_credit_wh(self, wh: float) -> None:
        self.advance()
        self.credit_wh += wh
        if self.disconnect_reason == "credit" and self.credit_wh > 0:
            # A prepayment meter restores supply once credit is available.
            self.close_relay("credit")

    def _now_meter(self) -> dt.datetime:
        return _from_ts(self._t + self.clock_offset_s)

    def log_event(self, code: int, when: dt.datetime | None = None) -> None:
        self.events.append(ProfileRow(when or self._now_meter(), (code,)))

    def log_disconnector(self, code: int, when: dt.datetime | None = None) -> None:
        self.disconnector_events.append(ProfileRow(when or self._now_meter(), (code,)))

    def remember_tid(self, tid: int) -> None:
        self.accepted_tids.append(tid)
        self.accepted_tids.sort()
        del self.accepted_tids[:-TID_MEMORY]

    def tid_rejected(self, tid: int) -> bool:
        """TID already used, or older than the oldest remembered when memory is full."""
        if tid in self.accepted_tids:
            return True
        return len(self.accepted_tids) >= TID_MEMORY and tid < self.accepted_tids[0]
