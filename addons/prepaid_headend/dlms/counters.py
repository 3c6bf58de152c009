"""Invocation counter stores for the client's AES-GCM frames.

A GCM nonce is system title || invocation counter (IC): reusing an IC with the
same key breaks confidentiality and integrity, and meters reject any frame
whose IC is not greater than the last one they accepted. The client therefore
takes every IC from a store that hands each value out once, persisted across
processes (the Tryton side keeps it in the database).

The nonce depends on the client system title and the counter only, not on the
meter: two meters sharing a block cipher key (a utility-wide key, factory
defaults) would get identical nonces from per-meter counters.  Counters are
therefore keyed by :func:`counter_key`, i.e. (client system title, key
fingerprint), so a (key, nonce) pair is never used twice whatever the number
of meters sharing the key.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

MAX_INVOCATION_COUNTER = 0xFFFFFFFF
# HMAC key of the fingerprint.  Fixed on purpose: the fingerprint must stay
# the same across restarts and master-key rotations (a changed fingerprint
# would restart the counters from 1 under the same key).  It only tells
# whether two meters share a key, never the key.
FINGERPRINT_KEY = b"prepaid-headend/dlms/invocation-counter/v1"


def key_fingerprint(block_cipher_key: bytes) -> str:
    """Keyed hash (HMAC-SHA-256, 128 bits in hex) identifying a block cipher key."""
    if len(block_cipher_key) != 16:
        raise ValueError("block cipher key must be 16 bytes (AES-128)")
    mac = hmac.new(FINGERPRINT_KEY, bytes(block_cipher_key), hashlib.sha256)
    return mac.hexdigest()[:32]


def counter_key(system_title: bytes, block_cipher_key: bytes) -> str:
    """Counter-store key of every frame ciphered with this title and key."""
    if len(system_title) != 8:
        raise ValueError("system title must be 8 bytes")
    title = bytes(system_title).hex().upper()
    return f"gcm:{title}:{key_fingerprint(block_cipher_key)}"


class CounterExhausted(RuntimeError):
    """The 32-bit counter space for this key is used up: rotate the keys."""


@runtime_checkable
class InvocationCounterStore(Protocol):
    def get_and_increment(self, meter_key: str) -> int:
        """Return a counter never returned before for `meter_key` (strictly
        greater than all previous ones) and remember it as used."""
        ...


class MemoryCounterStore:
    """Process-local store; counters restart at `start` for unknown keys."""

    def __init__(self, start: int = 1) -> None:
        self._next: dict[str, int] = {}
        self._start = start
        self._lock = threading.Lock()

    def get_and_increment(self, meter_key: str) -> int:
        with self._lock:
            value = self._next.get(meter_key, self._start)
            if value > MAX_INVOCATION_COUNTER:
                raise CounterExhausted(f"invocation counter exhausted for {meter_key}")
            self._next[meter_key] = value + 1
            return value

    def peek(self, meter_key: str) -> int:
        """The value the next call would return (for tests and diagnostics)."""
        with self._lock:
            return self._next.get(meter_key, self._start)

    def set_floor(self, meter_key: str, value: int) -> None:
        """Never hand out anything below `value` (e.g. after reading the
        meter's view of our counter)."""
        with self._lock:
            self._next[meter_key] = max(self._next.get(meter_key, self._start), value)


class JsonFileCounterStore:
    """Counters kept in a JSON file {meter_key: next_value}.

    Safe across threads and processes: each call holds an exclusive flock on a
    side lock file, re-reads the file and replaces it atomically (write to a
    temporary file, fsync, rename) *before* returning the value, so a crash
    can waste a counter but never hand one out twice.

    `reserve` > 1 persists counters in blocks to cut file I/O: the values of a
    block are handed out from memory and the unused rest of a block is simply
    skipped after a restart (gaps are allowed, reuse is not).
    """

    def __init__(self, path: str | os.PathLike[str], start: int = 1, reserve: int = 1):
        if reserve < 1:
            raise ValueError("reserve must be >= 1")
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._start = start
        self._reserve = reserve
        self._blocks: dict[str, tuple[int, int]] = {}  # key -> (next, limit)
        self._lock = threading.Lock()

    def _load(self) -> dict[str, int]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        if not text.strip():
            return {}
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{self.path}: expected a JSON object")
        return {str(k): int(v) for k, v in data.items()}

    def _save(self, data: dict[str, int]) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def get_and_increment(self, meter_key: str) -> int:
        with self._lock:
            nxt, limit = self._blocks.get(meter_key, (0, 0))
            if nxt >= limit:
                nxt, limit = self._take_block(meter_key)
            self._blocks[meter_key] = (nxt + 1, limit)
            return nxt

    def _take_block(self, meter_key: str) -> tuple[int, int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = self._load()
                first = max(data.get(meter_key, self._start), self._start)
                if first > MAX_INVOCATION_COUNTER:
                    raise CounterExhausted(
                        f"invocation counter exhausted for {meter_key}"
                    )
                limit = min(first + self._reserve, MAX_INVOCATION_COUNTER + 1)
                data[meter_key] = limit
                self._save(data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return first, limit


__all__ = [
    "CounterExhausted",
    "counter_key",
    "key_fingerprint",
    "InvocationCounterStore",
    "JsonFileCounterStore",
    "MemoryCounterStore",
]
