"""Concurrent meter jobs: many associations in flight on one asyncio loop.

Real reads are latency-bound (PLC/cellular round trips of 0.1 s to seconds),
so the head-end keeps hundreds of associations open at once, bounded by a
semaphore, each with per-request timeouts and deadlines. Transient failures
(timeouts, connection errors) are retried with exponential backoff and
jitter; anything else (authentication, access, malformed replies, a deadline)
is reported at once. A job may have an overall deadline covering all its
attempts and the pauses between them. One meter's failure never blocks the
batch.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import operations as ops
from .counters import InvocationCounterStore
from .errors import DeadlineExceeded, DlmsError
from .session import ConnectionSettings, DlmsSession
from .transport import Transport

OperationFn = Callable[..., Awaitable[Any]]

# Operations a job may name; side-effecting ones are not repeated on retry.
OPERATIONS: dict[str, tuple[OperationFn, bool]] = {
    "read_register": (ops.read_register, True),
    "read_clock": (ops.read_clock, True),
    "set_clock": (ops.set_clock, True),
    "read_firmware_id": (ops.read_firmware_id, True),
    "read_alarm_register": (ops.read_alarm_register, True),
    "relay_status": (ops.relay_status, True),
    "disconnect": (ops.disconnect, True),
    "reconnect": (ops.reconnect, True),
    "read_capture_objects": (ops.read_capture_objects, True),
    "read_profile": (ops.read_profile, True),
    "read_profile_by_entry": (ops.read_profile_by_entry, True),
    "read_event_log": (ops.read_event_log, True),
    "read_limiter": (ops.read_limiter, True),
    "write_limiter_threshold": (ops.write_limiter_threshold, True),
    "write_limiter": (ops.write_limiter, True),
    "read_credit_wh": (ops.read_credit_wh, True),
    "read_last_token": (ops.read_last_token, True),
    "read_account": (ops.read_account, True),
    "enter_token": (ops.enter_token, False),
    "upgrade_firmware": (ops.upgrade_firmware, False),
}


@dataclass
class Operation:
    """One step of a job: a registered name (see OPERATIONS) or a coroutine
    function taking the session, plus keyword arguments."""

    name: str | OperationFn
    kwargs: dict[str, Any] = field(default_factory=dict)
    idempotent: bool | None = None  # default: from OPERATIONS, True for callables
    label: str | None = None  # key of the result; default the name

    def resolve(self) -> tuple[str, OperationFn, bool]:
        if callable(self.name):
            fn, idem = self.name, True
            label = self.label or getattr(fn, "__name__", "op")
        else:
            try:
                fn, idem = OPERATIONS[self.name]
            except KeyError:
                raise ValueError(f"unknown operation {self.name!r}") from None
            label = self.label or self.name
        return label, fn, idem if self.idempotent is None else self.idempotent


@dataclass
class MeterJob:
    key: str  # meter identifier, echoed in the result
    settings: ConnectionSettings
    operations: Sequence[Operation | str]
    # Whole job, every attempt included (None: only the exchanges' deadlines).
    deadline: float | None = None
    # A new transport for each attempt (None: TCP to settings.host:port),
    # e.g. the DLMS gateway of the meter's concentrator.
    transport: Callable[[], Transport] | None = None


@dataclass
class MeterResult:
    key: str
    ok: bool
    results: dict[str, Any]
    error: DlmsError | None = None
    attempts: int = 1
    elapsed: float = 0.0
    round_trips: int = 0

    @property
    def error_kind(self) -> str | None:
        return self.error.kind if self.error else None


@dataclass
class RetryPolicy:
    retries: int = 2  # extra attempts after the first
    base_delay: float = 0.5
    max_delay: float = 10.0
    jitter: float = 0.5  # +- fraction of the delay

    def delay(self, attempt: int, rng: random.Random) -> float:
        d = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return max(0.0, d * (1 + rng.uniform(-self.jitter, self.jitter)))


async def run_job(
    job: MeterJob,
    policy: RetryPolicy | None = None,
    counter_store: InvocationCounterStore | None = None,
    rng: random.Random | None = None,
    session_factory: Callable[..., DlmsSession] = DlmsSession,
) -> MeterResult:
    policy = policy or RetryPolicy()
    rng = rng or random.Random()
    steps = [Operation(op) if isinstance(op, str) else op for op in job.operations]
    resolved = [s.resolve() for s in steps]
    start = time.perf_counter()
    # What the attempts did so far, kept when the job deadline cuts them off.
    progress = MeterResult(job.key, False, {}, attempts=0)

    async def attempts() -> MeterResult:
        while True:
            progress.attempts += 1
            progress.results = results = {}
            side_effect_started = False
            options: dict[str, Any] = {"counter_store": counter_store}
            if job.transport is not None:
                options["transport"] = job.transport()
            session = session_factory(job.settings, **options)
            try:
                async with session:
                    for (label, fn, idem), step in zip(resolved, steps):
                        side_effect_started |= not idem
                        results[label] = await fn(session, **step.kwargs)
                progress.round_trips += session.round_trips
                progress.ok = True
                return progress
            except DlmsError as exc:
                progress.round_trips += session.round_trips
                retry = exc.transient and not side_effect_started
                if not retry or progress.attempts > policy.retries:
                    progress.error = exc
                    return progress
                await asyncio.sleep(policy.delay(progress.attempts, rng))
            except asyncio.CancelledError:
                progress.round_trips += session.round_trips
                raise

    try:
        async with asyncio.timeout(job.deadline):
            result = await attempts()
    except TimeoutError:
        result = progress
        result.ok = False
        result.error = DeadlineExceeded(
            f"job not finished within its {job.deadline:g} s deadline "
            f"({result.attempts} attempt(s)): cut off",
            scope="job",
        )
    result.elapsed = time.perf_counter() - start
    return result


async def read_meters_async(
    jobs: Iterable[MeterJob],
    concurrency: int = 100,
    policy: RetryPolicy | None = None,
    counter_store: InvocationCounterStore | None = None,
    seed: int | None = None,
) -> list[MeterResult]:
    """Run all jobs with at most `concurrency` associations in flight; the
    results come back in job order."""
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    sem = asyncio.Semaphore(concurrency)
    rng = random.Random(seed)

    async def one(job: MeterJob) -> MeterResult:
        async with sem:
            try:
                return await run_job(job, policy, counter_store, rng)
            except Exception as exc:  # a bug must not sink the batch
                err = DlmsError(f"unexpected error: {exc!r}")
                return MeterResult(job.key, False, {}, err)

    return list(await asyncio.gather(*(one(j) for j in jobs)))


def read_meters(
    jobs: Iterable[MeterJob],
    concurrency: int = 100,
    policy: RetryPolicy | None = None,
    counter_store: InvocationCounterStore | None = None,
    seed: int | None = None,
) -> list[MeterResult]:
    """Blocking wrapper of `read_meters_async` (runs its own event loop)."""
    return asyncio.run(
        read_meters_async(jobs, concurrency, policy, counter_store, seed)
    )
