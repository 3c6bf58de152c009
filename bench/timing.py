"""Timing helper shared by the benchmarks (run as scripts from the project
root: ``bench/`` is then on the import path)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_call_us(func: Callable[[], object], calls: int, rounds: int = 7) -> float:
    "Median over ``rounds`` of the mean time of one call, in microseconds"
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            func()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)
