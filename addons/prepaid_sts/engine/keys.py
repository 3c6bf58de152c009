"""Decoder key generation: DKGA02 and DKGA04 (docs/sts.md sections 4.2 and 4.3).

Keys are bytes in canonical big-endian order (the order DES and HMAC produce).
NectarAPI prints its STA keys byte-reversed; do not feed those here unreversed.

Nothing here is cached: a cache keyed by the plaintext vending key would keep
decrypted vending keys (and cipher objects holding them) in worker memory
indefinitely.  Callers minting many tokens for one meter derive the decoder
key once and reuse it; the Tryton side may cache derived decoder keys per key
record and meter in a bounded in-process cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import AlgorithmError, KeyLengthError, ParameterError
from .identifiers import (
    control_block,
    pan_block,
    validate_base_date,
    validate_key_type,
    validate_krn,
    validate_pan,
    validate_sgc,
    validate_tariff_index,
)

if TYPE_CHECKING:
    from Crypto.Cipher._mode_ecb import EcbMode

#: Supported encryption algorithms and their decoder-key length in bytes.
EA_KEY_BYTES = {"07": 8, "11": 16}
DKGAS = ("02", "04")


def check_ea(ea: str) -> str:
    if ea not in EA_KEY_BYTES:
        raise AlgorithmError(
            f"unknown encryption algorithm EA {ea!r}: supported are '07' (STA) "
            f"and '11' (MISTY1)"
        )
    return ea


def check_decoder_key(key: bytes, ea: str) -> bytes:
    check_ea(ea)
    want = EA_KEY_BYTES[ea]
    if not isinstance(key, bytes | bytearray) or len(key) != want:
        got = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
        raise KeyLengthError(
            f"EA{ea} needs a {want * 8}-bit decoder key ({want} bytes), got {got}"
        )
    return bytes(key)


def _des_ecb(vending_key: bytes) -> EcbMode:
    """DES-ECB cipher of a vending key (a new object per use, never kept)."""
    from Crypto.Cipher import DES  # lazy: keeps the CLI import light

    return DES.new(vending_key, DES.MODE_ECB)


def dkga02(
    vending_key: bytes, pan: str, key_type: int, sgc: str, tariff_index: str, krn: int
) -> bytes:
    """DKGA02: ``D = PANBlock XOR CB; DK = DES_VK(D) XOR D XOR VK`` (64-bit VK)."""
    if len(vending_key) != 8:
        raise KeyLengthError(
            f"DKGA02 needs a 64-bit vending key (8 bytes), got {len(vending_key)}"
        )
    pb = int(pan_block(pan, key_type), 16)
    cb = int(control_block(key_type, sgc, tariff_index, krn), 16)
    data = (pb ^ cb).to_bytes(8, "big")
    enc = _des_ecb(vending_key).encrypt(data)
    dk = int.from_bytes(enc, "big") ^ (pb ^ cb) ^ int.from_bytes(vending_key, "big")
    return dk.to_bytes(8, "big")


def dkga04_message(
    pan: str,
    key_type: int,
    sgc: str,
    tariff_index: str,
    krn: int,
    base_date: str,
    ea: str,
) -> bytes:
    """The SP 800-108 KDF input of DKGA04 (label and context lists, then L)."""
    validate_pan(pan)
    validate_key_type(key_type)
    validate_sgc(sgc)
    validate_tariff_index(tariff_index)
    validate_krn(krn)
    validate_base_date(base_date)
    check_ea(ea)
    bits = EA_KEY_BYTES[ea] * 8

    def item(text: str) -> bytes:
        raw = text.encode("ascii")
        return bytes([len(raw)]) + raw

    label = b"\x04" + item("04") + item(base_date) + item(ea) + item(tariff_index)
    context = b"\x04" + item(sgc) + item(str(key_type)) + item(str(krn)) + item(pan)
    return label + b"\x00" + context + bits.to_bytes(4, "big")


def dkga04(
    vending_key: bytes,
    pan: str,
    key_type: int,
    sgc: str,
    tariff_index: str,
    krn: int,
    base_date: str,
    ea: str,
) -> bytes:
    """DKGA04: leading 64 (EA07) or 128 (EA11) bits of HMAC-SHA-256(VK, msg)."""
    if len(vending_key) != 20:
        raise KeyLengthError(
            f"DKGA04 needs a 160-bit vending key (20 bytes), got {len(vending_key)}"
        )
    import hashlib
    import hmac

    msg = dkga04_message(pan, key_type, sgc, tariff_index, krn, base_date, ea)
    out = hmac.digest(vending_key, msg, hashlib.sha256)
    return out[: EA_KEY_BYTES[ea]]


def derive_decoder_key(
    vending_key: bytes,
    dkga: str,
    pan: str,
    key_type: int,
    sgc: str,
    tariff_index: str,
    krn: int,
    base_date: str,
    ea: str,
) -> bytes:
    """Derive a meter's decoder key with DKGA02 or DKGA04 (not cached).

    ``base_date`` is an input of DKGA04 only but is validated for both, since a
    vending key is associated with a base date.
    """
    if not isinstance(vending_key, bytes):
        raise ParameterError("vending key must be bytes")
    check_ea(ea)
    validate_base_date(base_date)
    if dkga == "02":
        if ea != "07":
            raise AlgorithmError(
                "DKGA02 produces a 64-bit key, usable with EA07 only; EA11 needs DKGA04"
            )
        return dkga02(vending_key, pan, key_type, sgc, tariff_index, krn)
    if dkga == "04":
        return dkga04(vending_key, pan, key_type, sgc, tariff_index, krn, base_date, ea)
    raise AlgorithmError(
        f"unknown decoder key generation algorithm DKGA {dkga!r}: supported are "
        f"'02' and '04'"
    )
