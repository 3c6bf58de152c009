"""The simulated G3-PLC network between a concentrator and its meters.

Figures and their public sources are in simulators/README.md ("G3-PLC
defaults"). The concentrator is the PAN coordinator (short address 0); each
node (a meter, or a data collector fronting RS485 meters) sits 1 to
``max_hops`` hops away, joins after a delay (or never), and a few "flaky"
nodes drop off and come back.

An exchange (one request and its answer) costs two traversals of every hop.
Each hop transmission fails with ``hop_loss``; the MAC layer retries it up
to ``mac_retries`` times, after which the frame is lost and the
concentrator waits ``app_timeout_s`` before it retries the whole exchange
(``app_retries`` times). :meth:`G3Network.exchange` returns whether it
worked and how long it took; it draws two random numbers, not one per hop,
so a day of a hundred thousand meters stays cheap.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class G3Config:
    pan_id: int = 0x781D
    max_hops: int = 10
    hop_decay: float = 0.55  # P(h hops) ~ hop_decay ** h: most meters 1-3 hops
    hop_latency_s: float = 0.08  # one hop, one frame (~100 bytes)
    hop_loss: float = 0.05  # one hop transmission, before MAC retries
    mac_retries: int = 4
    app_timeout_s: float = 10.0
    app_retries: int = 2
    rs485_latency_s: float = 0.1  # collector <-> RS485 meter, one way
    join_spread_s: float = 1800.0  # the network forms over half an hour
    never_join_fraction: float = 0.05
    flaky_fraction: float = 0.02
    flaky_online_s: tuple[float, float] = (6 * 3600.0, 48 * 3600.0)
    flaky_offline_s: tuple[float, float] = (600.0, 36 * 3600.0)

    def __post_init__(self) -> None:
        if not 1 <= self.max_hops <= 10:
            raise ValueError("G3 allows 1 to 10 hops")
        for name in ("hop_loss", "never_join_fraction", "flaky_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be within [0, 1)")


class G3Network:
    def __init__(self, config: G3Config, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        c = config
        # A frame is lost on a hop when the first try and every retry fail.
        self.frame_loss = c.hop_loss ** (c.mac_retries + 1)
        # Mean tries per hop transmission (a truncated geometric law).
        p = c.hop_loss
        self.mean_tries = sum(p**k for k in range(c.mac_retries + 1))
        weights = [c.hop_decay**h for h in range(1, c.max_hops + 1)]
        total = sum(weights)
        self._hop_cdf = list(_accumulate(w / total for w in weights))

    def draw_hops(self, rng: random.Random) -> int:
        u = rng.random()
        for hops, edge in enumerate(self._hop_cdf, start=1):
            if u <= edge:
                return hops
        return self.config.max_hops

    def one_way(self, hops: int, rs485: bool = False) -> float:
        t = hops * self.config.hop_latency_s * self.mean_tries
        return t + (self.config.rs485_latency_s if rs485 else 0.0)

    def exchange(self, hops: int, rs485: bool = False, count: int = 1):
        """``count`` request/response exchanges with a node ``hops`` away:
        (all answered, seconds it took)."""
        c = self.config
        ok_one = (1.0 - self.frame_loss) ** (2 * hops)
        rtt = 2 * self.one_way(hops, rs485)
        elapsed = 0.0
        for _ in range(count):
            for _attempt in range(c.app_retries + 1):
                if self.rng.random() < ok_one:
                    elapsed += rtt * (0.75 + 0.5 * self.rng.random())
                    break
                elapsed += c.app_timeout_s
            else:
                return False, elapsed
        return True, elapsed


def _accumulate(values):
    total = 0.0
    for v in values:
        total += v
        yield total


def flaky_windows(seed: int, start: float, config: G3Config):
    """Endless (goes_offline_at, back_online_at) pairs of a flaky node."""
    rng = random.Random(seed)
    t = start
    lo, hi = config.flaky_online_s
    off_lo, off_hi = config.flaky_offline_s
    while True:
        t += rng.uniform(lo, hi)
        back = t + math.exp(rng.uniform(math.log(off_lo), math.log(off_hi)))
        yield t, back
        t = back
