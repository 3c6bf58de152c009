"""Invocation counter stores: never hand out a value twice."""

import json
import multiprocessing
import threading

import pytest
from trytond.modules.prepaid_headend.dlms.counters import (
    CounterExhausted,
    InvocationCounterStore,
    JsonFileCounterStore,
    MemoryCounterStore,
)


def test_memory_store_monotonic_per_key():
    s = MemoryCounterStore()
    assert isinstance(s, InvocationCounterStore)
    assert [s.get_and_increment("a") for _ in range(3)] == [1, 2, 3]
    assert s.get_and_increment("b") == 1
    s.set_floor("a", 100)
    assert s.get_and_increment("a") == 100
    s.set_floor("a", 5)  # a floor never moves the counter back
    assert s.get_and_increment("a") == 101


def test_memory_store_exhaustion():
    s = MemoryCounterStore(start=0xFFFFFFFF)
    assert s.get_and_increment("m") == 0xFFFFFFFF
    with pytest.raises(CounterExhausted):
        s.get_and_increment("m")


def test_memory_store_threads_unique():
    s = MemoryCounterStore()
    got: list[int] = []
    lock = threading.Lock()

    def work():
        vals = [s.get_and_increment("k") for _ in range(200)]
        with lock:
            got.extend(vals)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 801))


def test_json_store_persists_across_instances(tmp_path):
    path = tmp_path / "ic.json"
    a = JsonFileCounterStore(path)
    assert [a.get_and_increment("m1") for _ in range(3)] == [1, 2, 3]
    b = JsonFileCounterStore(path)  # e.g. a new process
    assert b.get_and_increment("m1") == 4
    assert b.get_and_increment("m2") == 1
    assert json.loads(path.read_text()) == {"m1": 5, "m2": 2}


def test_json_store_reserve_skips_but_never_reuses(tmp_path):
    path = tmp_path / "ic.json"
    a = JsonFileCounterStore(path, reserve=10)
    assert [a.get_and_increment("m") for _ in range(3)] == [1, 2, 3]
    assert json.loads(path.read_text()) == {"m": 11}
    b = JsonFileCounterStore(path, reserve=10)  # crash/restart: gap, no reuse
    assert b.get_and_increment("m") == 11


def test_json_store_rejects_bad_file(tmp_path):
    path = tmp_path / "ic.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        JsonFileCounterStore(path).get_and_increment("m")
    with pytest.raises(ValueError):
        JsonFileCounterStore(path, reserve=0)


def _worker(path, n, queue):
    s = JsonFileCounterStore(path)
    queue.put([s.get_and_increment("shared") for _ in range(n)])


def test_json_store_unique_across_processes(tmp_path):
    path = str(tmp_path / "ic.json")
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(path, 25, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    values = [v for _ in procs for v in queue.get(timeout=30)]
    for p in procs:
        p.join()
    assert sorted(values) == list(range(1, 76))
