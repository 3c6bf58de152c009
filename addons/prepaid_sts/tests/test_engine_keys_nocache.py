"""The engine keeps no vending key in memory after a derivation: no cache is
keyed by plaintext vending keys (a memory dump of a vending server must not
yield the keys of every meter served since it started)."""

from __future__ import annotations

import functools
import gc
import sys
import types

from trytond.modules.prepaid_sts.engine import keys

ENGINE = "trytond.modules.prepaid_sts.engine"
ARGS_DKGA02 = ("02", "600727000000000009", 2, "123456", "01", 1, "93", "07")
ARGS_DKGA04 = ("04", "600727000000000009", 2, "123456", "01", 1, "14", "07")


def test_no_lru_cache_in_key_derivation():
    for name in ("derive_decoder_key", "_des_ecb", "dkga02", "dkga04"):
        fn = getattr(keys, name)
        assert not hasattr(fn, "cache_info"), name
    cached = [
        v
        for v in vars(keys).values()
        if isinstance(v, functools._lru_cache_wrapper)  # type: ignore[attr-defined]
    ]
    assert cached == []


def places_holding(obj: bytes) -> list[object]:
    """Objects other than stack frames that refer to ``obj``, and containers
    at module level in the engine that hold it.  The second search is needed
    because the garbage collector does not track a dict of bytes only, so
    ``gc.get_referrers`` cannot see one."""
    gc.collect()
    found = [o for o in gc.get_referrers(obj) if not isinstance(o, types.FrameType)]
    for name, module in list(sys.modules.items()):
        if not name.startswith(ENGINE) or module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, dict):
                contents = list(value) + list(value.values())
            elif isinstance(value, list | tuple | set | frozenset):
                contents = list(value)
            else:
                continue
            # A plain loop: a generator here would hold ``obj`` in a cell.
            for item in contents:
                if item is obj:
                    found.append(value)
                    break
    return found


def test_vending_key_not_kept_after_derivation():
    # The very objects handed to the engine: after the call only this test's
    # frame may still refer to them.
    vk64 = bytes.fromhex("5a5a5a5a5a5a5a5a")
    vk160 = bytes.fromhex("5a" * 20)
    first = keys.derive_decoder_key(vk64, *ARGS_DKGA02)
    keys.derive_decoder_key(vk160, *ARGS_DKGA04)
    assert places_holding(vk64) == []
    assert places_holding(vk160) == []
    # Without a cache the derivation is still deterministic.
    assert keys.derive_decoder_key(bytes.fromhex("5a" * 8), *ARGS_DKGA02) == first


def test_the_search_finds_caches(monkeypatch):
    """The check above can fail: a list anywhere (found by the collector) or a
    module-level dict in the engine (found by the module scan) holding the key.
    An lru_cache keys bytes by an untracked tuple that neither search sees:
    test_no_lru_cache_in_key_derivation covers that one."""
    vk = bytes.fromhex("5a5a5a5a5a5a5a5a")
    remembered = [vk]
    assert places_holding(vk) == [remembered]
    remembered.clear()
    monkeypatch.setattr(keys, "_KEYS_SEEN", {vk: b"decoder"}, raising=False)
    assert places_holding(vk) == [keys._KEYS_SEEN]
