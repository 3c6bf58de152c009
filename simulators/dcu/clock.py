"""Simulated time: one virtual UTC clock and the events scheduled on it.

Tests move time with :meth:`VirtualClock.advance` (a simulated day takes
what its events cost, no sleeping); the command line drives it from the
wall clock at a chosen speed. Events run in time order (first scheduled
first among equal times) in the thread that advances the clock. The clock
is also the ``clock`` callable of the simulated meters.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import threading
from collections.abc import Callable
from typing import Any


class Event:
    __slots__ = ("at", "seq", "fn", "args", "cancelled")

    def __init__(self, at: float, seq: int, fn: Callable, args: tuple) -> None:
        self.at, self.seq, self.fn, self.args = at, seq, fn, args
        self.cancelled = False

    def __lt__(self, other: Event) -> bool:
        return (self.at, self.seq) < (other.at, other.seq)

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    def __init__(self, start: dt.datetime | None = None) -> None:
        start = start or dt.datetime(2026, 1, 15, 0, 0, tzinfo=dt.UTC)
        if start.tzinfo is None:
            raise ValueError("the clock starts at an aware (UTC) datetime")
        self._t = start.timestamp()
        self._now = start.astimezone(dt.UTC)
        self._events: list[Event] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()  # the queue, shared with server threads
        self._advancing = threading.Lock()  # one advancing thread at a time

    # -- reading -------------------------------------------------------------
    def __call__(self) -> dt.datetime:
        return self._now

    def now(self) -> dt.datetime:
        return self._now

    def time(self) -> float:
        """Seconds since the epoch (the simulator's "true" time)."""
        return self._t

    # -- scheduling ----------------------------------------------------------
    def at(self, when: float, fn: Callable, *args: Any) -> Event:
        """Run ``fn(*args)`` at epoch ``when`` (now if already past)."""
        with self._lock:
            event = Event(max(when, self._t), next(self._seq), fn, args)
            heapq.heappush(self._events, event)
            return event

    def after(self, seconds: float, fn: Callable, *args: Any) -> Event:
        return self.at(self._t + seconds, fn, *args)

    # -- moving --------------------------------------------------------------
    def advance(self, seconds: float = 0.0, **delta: float) -> dt.datetime:
        step = dt.timedelta(seconds=seconds, **delta).total_seconds()
        if step < 0:
            raise ValueError("time only moves forward")
        return self.advance_to(self._t + step)

    def advance_to(self, when: float) -> dt.datetime:
        """Run every event due up to ``when``, then stand at ``when``."""
        with self._advancing:
            while True:
                with self._lock:
                    if not self._events or self._events[0].at > when:
                        break
                    event = heapq.heappop(self._events)
                if event.cancelled:
                    continue
                self._set(event.at)
                event.fn(*event.args)
            self._set(max(when, self._t))
            return self._now

    def _set(self, t: float) -> None:
        if t != self._t:
            self._t = t
            self._now = dt.datetime.fromtimestamp(t, dt.UTC)
