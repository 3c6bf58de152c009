"""The ingest loop: take batches of valid messages, store them, then ack.

Storage is a callback (the Tryton side opens one transaction per batch), so
the loop is pure Python.  A batch is acknowledged to the broker only after
``store`` returned (the commit): with a persistent session and manual acks a
crash loses nothing, the broker redelivers and the store is idempotent.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from .client import Inbound, Subscriber

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    unknown_meter: int = 0


@dataclasses.dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    unknown_meter: int = 0
    rejected: Counter[str] = dataclasses.field(default_factory=Counter)
    batches: int = 0
    failed_batches: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def summary(self) -> str:
        reasons = ', '.join(f"{k} {v}" for k, v in sorted(self.rejected.items()))
        return (
            f"received {self.received}, stored {self.stored}, duplicates "
            f"{self.duplicates}, unknown meter {self.unknown_meter}, rejected "
            f"{self.rejected_total}"
            + (f" ({reasons})" if reasons else "")
            + f", batches {self.batches}"
        )


class IngestError(Exception):
    "A batch could not be stored after the retries"


def ingest_loop(
    subscriber: Subscriber,
    store: Callable[[Sequence[Inbound]], BatchResult],
    duration: float | None = None,
    max_messages: int | None = None,
    batch_size: int = 500,
    batch_wait: float = 1.0,
    retries: int = 3,
    retry_delay: float = 0.5,
    stop: threading.Event | None = None,
) -> IngestStats:
    """Run until ``duration`` elapsed, ``max_messages`` messages (valid or
    not) were received and handled, or ``stop`` is set.

    A batch that cannot be stored is retried ``retries`` times (a concurrent
    insert of the same event loses a unique-key race once, then skips the
    row); after that :class:`IngestError` is raised and nothing of the batch is
    acknowledged, so the broker redelivers it to the next run.
    """
    stats = IngestStats()
    deadline = None if duration is None else time.monotonic() + duration
    stop = stop or threading.Event()
    while not stop.is_set():
        wait = batch_wait
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            wait = min(wait, left)
        if max_messages is not None and _received(subscriber) >= max_messages:
            if subscriber.items.empty():
                break
            wait = 0
        batch = subscriber.get_batch(batch_size, wait)
        if not batch:
            continue
        result = _store(store, batch, retries, retry_delay, stats)
        subscriber.ack(batch)
        stats.batches += 1
        stats.stored += result.stored
        stats.duplicates += result.duplicates
        stats.unknown_meter += result.unknown_meter
        logger.info(
            "MQTT batch of %d: %d stored, %d duplicates, %d unknown meter",
            len(batch),
            result.stored,
            result.duplicates,
            result.unknown_meter,
        )
    stats.received = _received(subscriber)
    stats.rejected = Counter(subscriber.stats.rejected)
    return stats


def _received(subscriber: Subscriber) -> int:
    return subscriber.stats.received


def _store(
    store: Callable[[Sequence[Inbound]], BatchResult],
    batch: Sequence[Inbound],
    retries: int,
    retry_delay: float,
    stats: IngestStats,
) -> BatchResult:
    for attempt in range(retries + 1):
        try:
            return store(batch)
        except Exception as error:
            stats.failed_batches += 1
            logger.warning(
                "MQTT batch of %d not stored (attempt %d): %s",
                len(batch),
                attempt + 1,
                error,
            )
            if attempt == retries:
                raise IngestError(
                    f"batch of {len(batch)} message(s) not stored after "
                    f"{retries + 1} attempts: {error}"
                ) from error
            time.sleep(retry_delay * (attempt + 1))
    raise AssertionError("unreachable")
