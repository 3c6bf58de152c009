"""STS token engine (IEC 62055-41), pure Python; imports nothing from trytond.

High-level API (all raise subclasses of :class:`StsError`, a ``ValueError``)::

    derive_decoder_key(vending_key: bytes, dkga: str, pan: str, key_type: int,
                       sgc: str, tariff_index: str, krn: int, base_date: str,
                       ea: str) -> bytes
        DKGA02 (8-byte vending key, EA07 only) or DKGA04 (20-byte key; 8-byte
        decoder key for EA07, 16-byte for EA11).  Nothing is cached (keys.py).
    credit_token(decoder_key, ea, token_class, subclass, amount=None,
                 value16=None, tid=None, rnd=0, *, issued_at=None,
                 base_date=None, tables=None) -> str
        Class 0 (subclasses 0-7, currency 4-7 with S&E and CRC_C) and class 2
        (subclasses 0, 1, 2, 5, 6, 7) tokens; amount is a Decimal (kWh, m3,
        minutes / currency units / watts) rounded as the standard requires.
    class1_token(subclass, control: int, mfr_code: int) -> str
    key_change_tokens(old_decoder_key, ea, new_decoder_key, new_krn,
                      new_key_type, new_tariff_index, new_sgc, ken=255,
                      rollover=False, sections=None, *, tables=None) -> list[str]
    decode_token(token, decoder_key, ea="07", *, tables=None) -> DecodedToken
        DecodedToken: token_class, subclass, tid, value16, amount, crc_ok,
        block, fields (KCT pieces, class 1 control/mfr_code, rnd / s_and_e).
    tid_from_datetime(dt, base_date) -> int   (refuses past 2**24 minutes)
    make_pan(iin, drn) -> str ; validate_pan(pan) -> str

Conventions: keys are canonical big-endian bytes (NectarAPI prints EA07 keys
byte-reversed); base dates are the codes "93", "14", "35"; EA is "07" (STA)
or "11" (MISTY1).

EA07 tables: S1, S2 and P are data read from a JSON file: the ``tables``
argument, else the ``PREPAID_STS_TABLES`` environment variable, else the
shipped ``data/sta_tables.json`` (production tables from a public source; a
production deployment must hold the STS Association licence).  The IEC sample
tables are in ``data/sta_sample_tables.json``.

Command line: ``prepaid-sts`` (:mod:`.cli`), including the JSON-lines ``batch``
sub-command.  Reference: docs/sts.md sections 4 and 7.
"""

from .api import (
    DecodedToken,
    class1_token,
    credit_token,
    decode_token,
    derive_decoder_key,
    key_change_tokens,
    tid_from_datetime,
)
from .errors import (
    AlgorithmError,
    AmountError,
    KeyLengthError,
    PanError,
    ParameterError,
    StsError,
    TablesError,
    TidRangeError,
    TokenFormatError,
)
from .identifiers import make_pan, validate_pan

__all__ = [
    "AlgorithmError",
    "AmountError",
    "DecodedToken",
    "KeyLengthError",
    "PanError",
    "ParameterError",
    "StsError",
    "TablesError",
    "TidRangeError",
    "TokenFormatError",
    "class1_token",
    "credit_token",
    "decode_token",
    "derive_decoder_key",
    "key_change_tokens",
    "make_pan",
    "tid_from_datetime",
    "validate_pan",
]
