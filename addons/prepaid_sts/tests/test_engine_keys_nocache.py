"""Review fix: the engine keeps no cache keyed by plaintext vending keys."""

from __future__ import annotations

import functools
import gc

from trytond.modules.prepaid_sts.engine import keys

VK = bytes.fromhex("abababababababab")


def test_no_lru_cache_in_key_derivation():
    for name in ("derive_decoder_key", "_des_ecb", "dkga02", "dkga04"):
        fn = getattr(keys, name)
        assert not hasattr(fn, "cache_info"), name  # was functools.lru_cache
    cached = [
        v
        for v in vars(keys).values()
        if isinstance(v, functools._lru_cache_wrapper)  # type: ignore[attr-defined]
    ]
    assert cached == []


def test_vending_key_not_kept_after_derivation():
    key = bytearray(b"\x5a" * 8)
    keys.derive_decoder_key(bytes(key), "02", "600727000000000009", 2,
                            "123456", "01", 1, "93", "07")  # fmt: skip
    gc.collect()
    secret = bytes(key)
    # Nothing the module can reach still references the vending key bytes.
    held = [o for o in gc.get_referrers(secret) if o is not vars()]
    assert not any(isinstance(o, dict) and secret in o for o in held)
    # Same inputs still give the same key (no behaviour change without cache).
    args = ("02", "600727000000000009", 2, "123456", "01", 1, "93", "07")
    assert keys.derive_decoder_key(VK, *args) == keys.derive_decoder_key(VK, *args)
