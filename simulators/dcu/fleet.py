"""The meters behind the simulated concentrators, created only when needed.

A hundred thousand :class:`~simulators.meter.association.Meter` objects
would not fit in memory (each keeps two days of profile and its COSEM
objects), and most meters of a simulated day are only ever read. So each
meter is a small :class:`FleetMeter`: its identity and network place, and
its readings computed in closed form from the same load model as the meter
simulator (``simulators.meter.model.energy_between``), with the settings
every meter shares kept once in a :class:`MeterTemplate`. The first time
something needs the real meter (the gateway pass-through, a relay order, a
clock set, a firmware image) it is materialised with the energy, credit and
clock it has reached by then, and from that moment its own state answers.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from simulators.meter.association import Meter
from simulators.meter.model import (
    CAPTURE_PERIOD_S,
    DEFAULT_AK,
    DEFAULT_EK,
    EV_CREDIT_EXHAUSTED,
    EV_LOCAL_DISCONNECTION,
    LOAD_PROFILE_ROWS,
    LOAD_SHAPE_AMPLITUDE,
    Clock,
    MeterConfig,
    energy_between,
)

from .store import LOG_DISCONNECTOR, LOG_STANDARD, MeterStore

REACTIVE_RATIO = 0.3287  # the meter's reactive registers (power factor 0.95)
BILLING_ROWS = 12  # months a meter keeps (simulators/meter/model.py)
_OMEGA = 2 * math.pi / 86400


def unit(*keys: int) -> float:
    """A deterministic number in [0, 1) from integers (no stored RNG)."""
    x = 0x9E3779B97F4A7C15
    for k in keys:
        x = ((x ^ (k & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
        x = (x * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return (x >> 11) / float(1 << 53)


@dataclass(frozen=True)
class MeterTemplate:
    """What every simulated meter of a fleet shares (held once)."""

    start: float  # true epoch at which the fleet starts
    seed: int = 0
    lls_password: bytes = b"12345678"
    hls_secret: bytes = b"Gurux"
    block_cipher_key: bytes = field(default=DEFAULT_EK, repr=False)
    authentication_key: bytes = field(default=DEFAULT_AK, repr=False)
    decoder_key: bytes | None = field(default=None, repr=False)
    sts_ea: str = "07"
    prepaid: bool = True
    initial_credit_kwh: float = 2000.0
    firmware_id: str = "FW-1.0.0"
    load_kw: tuple[float, float] = (0.3, 3.0)
    clock_spread_s: float = 5.0  # most meters are within +-5 s
    drifted_fraction: float = 0.02  # a few are minutes off
    drifted_s: tuple[float, float] = (60.0, 1200.0)


class FleetMeter:
    """One meter behind a concentrator: identity, network place, directory
    status, buffers, and its readings (closed form until materialised)."""

    __slots__ = (
        "index", "template", "meter", "store", "hops", "collector",
        "join_at", "flaky", "windows", "off_at", "back_at", "state",
        "short_address", "joined_at", "last_seen", "in_directory",
        "approved", "refused", "model", "activation_failures", "p0", "e0",
        "offset0", "_crossing", "meter_id",
    )  # fmt: skip

    def __init__(
        self, index: int, template: MeterTemplate, meter_id: str | None = None
    ) -> None:
        self.index = index
        # The meter's id (its serial) in reports and the directory.
        self.meter_id = meter_id or f"{index:08d}"
        self.template = template
        self.meter: Meter | None = None
        self.store: MeterStore | None = None
        self.hops = 1
        self.collector: str | None = None  # data collector id (RS485 meter)
        self.join_at = math.inf  # true epoch of the first join (inf: never)
        self.flaky = False
        self.windows = None  # (offline from, back at) pairs of a flaky node
        self.off_at = math.inf  # the current or next offline window
        self.back_at = math.inf
        self.state = "not_seen"  # not_seen | joined | lost
        self.short_address: int | None = None
        self.joined_at: float | None = None
        self.last_seen: float | None = None
        self.in_directory = False
        self.approved = False
        self.refused = False
        self.model: str | None = None
        self.activation_failures = 0  # fault injected when materialised
        # The load (W) and the register at the start, drawn once from the seed.
        lo, hi = template.load_kw
        self.p0 = 1000.0 * (lo + (hi - lo) * unit(template.seed, index, 1))
        self.e0 = 1_000_000.0 + 4_000_000.0 * unit(template.seed, index, 2)
        self.offset0 = self._initial_offset()
        self._crossing: float | None = -1.0  # not computed yet

    # -- identity ------------------------------------------------------------
    @property
    def pda(self) -> bytes:
        """The meter's system title (MeterConfig.system_title)."""
        return b"PPS" + self.index.to_bytes(5, "big")

    @property
    def rs485(self) -> bool:
        return self.collector is not None

    def online(self, t: float) -> bool:
        """Reachable on the G3 network at true time ``t``."""
        return t >= self.join_at and not self.off_at <= t < self.back_at

    # -- the shared load model -----------------------------------------------
    @property
    def credit0(self) -> float:
        return self.template.initial_credit_kwh * 1000.0 if self.template.prepaid else 0

    def clock_offset(self) -> float:
        """Seconds the meter's clock is ahead of true time."""
        if self.meter is not None:
            return self.meter.state.clock_offset_s
        return self.offset0

    def _initial_offset(self) -> float:
        t = self.template
        u = unit(t.seed, self.index, 3)
        if unit(t.seed, self.index, 4) < t.drifted_fraction:
            lo, hi = t.drifted_s
            size = lo + (hi - lo) * u
            return size if unit(t.seed, self.index, 5) < 0.5 else -size
        return (2 * u - 1) * t.clock_spread_s

    def _energy(self, true_t: float) -> float:
        """Energy import register (Wh) of the untouched meter at ``true_t``."""
        return self._energy_curve()(true_t)

    def _energy_curve(self):
        """``t -> register`` for the untouched meter: the integral of the load
        shape from the fleet's start (``energy_between`` with its constant
        terms folded, one cosine a value), capped where the credit runs out,
        never below zero before the start."""
        t = self.template
        k = self.p0 / 3600.0
        a = LOAD_SHAPE_AMPLITUDE / _OMEGA
        base = self.e0 - k * (t.start + a * math.cos(_OMEGA * t.start))
        cap = self.e0 + self.credit0 if t.prepaid else math.inf
        start, cos, w = t.start, math.cos, _OMEGA

        def energy(true_t: float) -> float:
            e = base + k * (true_t + a * cos(w * true_t))
            if true_t >= start:
                return min(e, cap)  # supply stops with the credit
            return max(0.0, e)

        return energy

    def _credit(self, true_t: float) -> float:
        if not self.template.prepaid:
            return 0.0
        return max(0.0, self.credit0 - (self._energy(true_t) - self.e0))

    def _exhausted_at(self) -> float | None:
        """True time the credit runs out (computed once)."""
        if self._crossing is not None and self._crossing < 0:
            self._crossing = self._find_crossing()
        return self._crossing

    def _find_crossing(self) -> float | None:
        """Bisection on the energy curve."""
        if not self.template.prepaid:
            return None
        start, target = self.template.start, self.credit0
        hi = start + 3600.0
        while energy_between(self.p0, start, hi) < target:
            hi += (hi - start) * 2
            if hi - start > 50 * 365 * 86400:
                return None
        lo = start
        for _ in range(60):
            mid = (lo + hi) / 2
            if energy_between(self.p0, start, mid) < target:
                lo = mid
            else:
                hi = mid
        return hi

    # -- readings ------------------------------------------------------------
    def load_profile(self, after: int, true_now: float) -> list[tuple[int, ...]]:
        """(time, ai Wh, p W, status) of every 15-minute capture the meter still
        holds that ends after meter time ``after`` (epoch seconds)."""
        if self.meter is not None:
            st = self.meter.state
            st.advance()
            rows = []
            for row in st.load_profile:
                t = int(row.time.timestamp())
                if t > after:
                    rows.append((t, row.values[0], row.values[1], 0))
            return rows
        off = self.clock_offset()
        first, last = self._captures(after, true_now + off)
        energy = self._energy_curve()
        rows = []
        previous = energy(first - CAPTURE_PERIOD_S - off)
        for b in range(first, last + 1, CAPTURE_PERIOD_S):
            e = energy(b - off)
            demand = round((e - previous) * 4)  # Wh in 15 minutes -> W
            rows.append((b, round(e), demand if demand > 0 else 0, 0))
            previous = e
        return rows

    @staticmethod
    def _captures(after: float, meter_now: float) -> tuple[int, int]:
        """First and last capture times (meter clock) a meter still holds
        after ``after``: its buffer keeps two days."""
        last = math.floor(meter_now / CAPTURE_PERIOD_S) * CAPTURE_PERIOD_S
        first = (math.floor(after / CAPTURE_PERIOD_S) + 1) * CAPTURE_PERIOD_S
        return int(max(first, last - (LOAD_PROFILE_ROWS - 1) * CAPTURE_PERIOD_S)), int(
            last
        )

    def daily(self, after: int, true_now: float) -> list[tuple[int, ...]]:
        """(midnight, ai, ae, ri, re): the midnight captures of the profile."""
        if self.meter is not None:
            midnights = [
                (t, ai) for t, ai, _p, _st in self.load_profile(after, true_now)
                if t % 86400 == 0
            ]  # fmt: skip
        else:
            off = self.clock_offset()
            first, last = self._captures(after, true_now + off)
            energy = self._energy_curve()
            start = -(-first // 86400) * 86400
            midnights = [
                (t, round(energy(t - off))) for t in range(start, last + 1, 86400)
            ]
        return [(t, ai, 0, round(ai * REACTIVE_RATIO), 0) for t, ai in midnights]

    def monthly(self, after: int, true_now: float) -> list[tuple[int, ...]]:
        """(billing reset, ai, max demand W, its time or 0) after ``after``."""
        if self.meter is not None:
            st = self.meter.state
            st.advance()
            return [
                (int(r.time.timestamp()), r.values[0], r.values[1], 0)
                for r in st.billing
                if r.time.timestamp() > after
            ]
        off = self.clock_offset()
        meter_now = dt.datetime.fromtimestamp(true_now + off, dt.UTC)
        month = dt.datetime(meter_now.year, meter_now.month, 1, tzinfo=dt.UTC)
        starts = []
        for _ in range(BILLING_ROWS):
            starts.append(month)
            month = (month - dt.timedelta(days=1)).replace(day=1)
        peak = round(self.p0 * (1 + LOAD_SHAPE_AMPLITUDE))
        out = []
        for start in reversed(starts):
            t = int(start.timestamp())
            if t > after:
                out.append((t, round(self._energy(t - off)), peak, 0))
        return out

    def events(self, after: int, true_now: float) -> list[tuple[int, int, int]]:
        """(time, log, code) logged after meter time ``after``."""
        if self.meter is not None:
            st = self.meter.state
            st.advance()
            rows = [
                (int(r.time.timestamp()), LOG_STANDARD, r.values[0]) for r in st.events
            ]
            rows += [
                (int(r.time.timestamp()), LOG_DISCONNECTOR, r.values[0])
                for r in st.disconnector_events
            ]
            return sorted(r for r in rows if r[0] > after)
        crossing = self._exhausted_at()
        if crossing is None or crossing > true_now:
            return []
        t = int(crossing + self.clock_offset())
        if t <= after:
            return []
        return [
            (t, LOG_DISCONNECTOR, EV_LOCAL_DISCONNECTION),
            (t, LOG_STANDARD, EV_CREDIT_EXHAUSTED),
        ]

    def instant(
        self, true_now: float
    ) -> tuple[int, int, int, int, int, bool, int | None]:
        """(ai, ae, p, v dV, i cA, relay connected, credit Wh)."""
        if self.meter is not None:
            st = self.meter.state
            st.advance()
            ai, ae, p = st.energy_import_wh, st.energy_export_wh, st.active_power_w
            connected, credit = st.relay_connected, st.credit_wh
        else:
            ai, ae = self._energy(true_now), 0.0
            credit = self._credit(true_now)
            connected = credit > 0 or not self.template.prepaid
            shape = 1.0 - LOAD_SHAPE_AMPLITUDE * math.sin(_OMEGA * true_now)
            p = self.p0 * shape if connected else 0.0
        current = round(p / 230.0 / 0.95 * 100)
        credit_out = round(credit) if self.template.prepaid else None
        return round(ai), round(ae), round(p), 2300, current, connected, credit_out

    def relay(self, true_now: float) -> tuple[bool, int]:
        """(output connected, control state)."""
        if self.meter is not None:
            st = self.meter.state
            st.advance()
            return st.relay_connected, st.control_state
        connected = self.instant(true_now)[5]
        return connected, 1 if connected else 0

    def firmware(self) -> str:
        return self.meter.state.firmware_id if self.meter else self.template.firmware_id

    # -- the real meter ------------------------------------------------------
    def materialise(self, clock: Clock) -> Meter:
        """The meter's own DLMS server and state, from now on."""
        if self.meter is not None:
            return self.meter
        t = self.template
        now = clock().timestamp()
        config = MeterConfig(
            index=self.index,
            serial=self.meter_id,
            lls_password=t.lls_password,
            hls_secret=t.hls_secret,
            block_cipher_key=t.block_cipher_key,
            authentication_key=t.authentication_key,
            decoder_key=t.decoder_key,
            sts_ea=t.sts_ea,
            load_kw=self.p0 / 1000.0,
            prepaid=t.prepaid,
            initial_credit_kwh=self._credit(now) / 1000.0,
            firmware_id=t.firmware_id,
            clock_offset_s=self.clock_offset(),
            initial_energy_wh=round(self._energy(now)),
            seed=self.index,
            activation_failures=self.activation_failures,
        )
        self.meter = Meter(config, clock)
        return self.meter

    def buffers(self) -> MeterStore:
        if self.store is None:
            self.store = MeterStore()
        return self.store
