"""The concentrator's buffers: per meter, fixed-depth rings, oldest dropped.

Depths follow a real product (Kaifa AJ102 manual: 13 months of billing
values, 32 days of daily values, 4 days of load profile, 200 events per
meter). Rows are packed in ``array('I')`` (unsigned 32-bit: epoch seconds
until 2106, energies up to 4.29 GWh), so a meter's full buffers take a few
kilobytes and a hundred thousand meters fit in memory.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

LOAD_PROFILE_DEPTH = 4 * 96
DAILY_DEPTH = 32
MONTHLY_DEPTH = 13
EVENT_DEPTH = 200

LOG_STANDARD, LOG_DISCONNECTOR = 0, 1
LOGS = ("standard", "disconnector")


class Ring:
    """Rows of ``width`` unsigned ints, at most ``depth`` of them."""

    __slots__ = ("width", "depth", "data", "dropped")

    def __init__(self, width: int, depth: int) -> None:
        self.width = width
        self.depth = depth
        self.data = array("I")
        self.dropped = 0  # rows pushed out since the start

    def append(self, *row: int) -> None:
        self.data.extend(row)
        excess = len(self.data) - self.depth * self.width
        if excess > 0:
            del self.data[:excess]
            self.dropped += excess // self.width

    def __len__(self) -> int:
        return len(self.data) // self.width

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        w, d = self.width, self.data
        for i in range(0, len(d), w):
            yield tuple(d[i : i + w])

    def last(self) -> tuple[int, ...] | None:
        if not self.data:
            return None
        return tuple(self.data[-self.width :])


class MeterStore:
    """What the concentrator keeps of one meter."""

    __slots__ = ("load_profile", "daily", "monthly", "events")

    def __init__(self) -> None:
        self.load_profile = Ring(4, LOAD_PROFILE_DEPTH)  # t, ai, p, status
        self.daily = Ring(5, DAILY_DEPTH)  # t, ai, ae, ri, re
        self.monthly = Ring(4, MONTHLY_DEPTH)  # t, ai, md, md time (0: none)
        self.events = Ring(3, EVENT_DEPTH)  # t, log, code

    def nbytes(self) -> int:
        return sum(
            r.data.buffer_info()[1] * r.data.itemsize
            for r in (self.load_profile, self.daily, self.monthly, self.events)
        )
