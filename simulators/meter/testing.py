"""Helpers for tests that drive simulated time (no sleeping)."""

from __future__ import annotations

import datetime as dt
import threading


class FakeClock:
    """A settable UTC clock to pass as ``MeterSimulator(..., clock=FakeClock())``."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs an aware (UTC) datetime")
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0.0, **delta: float) -> dt.datetime:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds, **delta)
            return self._now

    def set(self, when: dt.datetime) -> None:
        with self._lock:
            self._now = when
