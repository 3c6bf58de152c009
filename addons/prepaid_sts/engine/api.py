"""High-level API of the STS engine (re-exported by the package)."""

from __future__ import annotations

import os
from datetime import datetime
from decimal import Decimal

from .errors import ParameterError
from .keys import check_decoder_key, check_ea, derive_decoder_key
from .tid import tid_from_datetime
from .tokens import (
    DecodedToken,
    build_token,
    class1_token,
    decode,
    get_cipher,
    key_change_blocks,
    render,
)

Tables = str | os.PathLike[str] | None


def credit_token(
    decoder_key: bytes,
    ea: str,
    token_class: int,
    subclass: int,
    amount: Decimal | int | str | None = None,
    value16: int | None = None,
    tid: int | None = None,
    rnd: int = 0,
    *,
    issued_at: datetime | None = None,
    base_date: str | None = None,
    tables: Tables = None,
) -> str:
    """Build one 20-digit class 0 or class 2 token (not a key change token).

    Give the value as ``amount`` (Decimal: kWh/m3/minutes for class 0
    subclasses 0-3, currency units for 4-7, watts for class 2 subclasses 0 and
    6) or as the raw 16-bit ``value16``.  Give ``tid`` (minutes since the base
    date) or ``issued_at`` with ``base_date``.
    """
    if tid is None:
        if issued_at is None or base_date is None:
            raise ParameterError("give tid, or issued_at with base_date")
        tid = tid_from_datetime(issued_at, base_date)
    cipher = get_cipher(check_ea(ea), check_decoder_key(decoder_key, ea), tables)
    return build_token(cipher, token_class, subclass, tid, value16, amount, rnd)


def key_change_tokens(
    old_decoder_key: bytes,
    ea: str,
    new_decoder_key: bytes,
    new_krn: int,
    new_key_type: int,
    new_tariff_index: str,
    new_sgc: str,
    ken: int = 255,
    rollover: bool = False,
    sections: int | None = None,
    *,
    tables: Tables = None,
) -> list[str]:
    """Key change token set, encrypted with the old key, in customer entry order.

    ``ea`` is the algorithm of the old key.  ``sections``: 2 or 3 for a 64-bit
    new key (3 = STA 3-KCT variant carrying the new SGC), 4 for a 128-bit new
    key; default 2 or 4.  ``rollover`` sets RO (base date change).
    """
    cipher = get_cipher(check_ea(ea), check_decoder_key(old_decoder_key, ea), tables)
    blocks = key_change_blocks(
        new_decoder_key,
        new_krn,
        new_key_type,
        new_tariff_index,
        new_sgc,
        ken,
        rollover,
        sections,
    )
    return [render(2, cipher.encrypt(b)) for b in blocks]


def decode_token(
    token: str, decoder_key: bytes | None, ea: str = "07", *, tables: Tables = None
) -> DecodedToken:
    """Decode and verify a token (``crc_ok``); class 1 tokens need no key."""
    return decode(token, decoder_key, ea, tables)


__all__ = [
    "DecodedToken",
    "class1_token",
    "credit_token",
    "decode_token",
    "derive_decoder_key",
    "key_change_tokens",
    "tid_from_datetime",
]
