"""CRC-16 of STS tokens (docs/sts.md section 4.6).

CRC-16/MODBUS (polynomial 0x8005 reflected = 0xA001, init 0xFFFF, no final XOR)
over the 7 bytes holding ``Class || SubClass || RND || TID || Value`` (50 bits,
left-padded), stored byte-swapped in the token.  CRC_C (currency tokens) appends
one byte 0x01 to the data.
"""

from __future__ import annotations


def _make_table() -> list[int]:
    table = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc16_modbus(data: bytes) -> int:
    """Plain CRC-16/MODBUS of ``data``."""
    crc = 0xFFFF
    t = _TABLE
    for b in data:
        crc = (crc >> 8) ^ t[(crc ^ b) & 0xFF]
    return crc


def token_crc(data50: int, currency: bool = False) -> int:
    """Return the stored (byte-swapped) CRC field for the 50-bit token data.

    ``data50`` is ``class << 48 | subclass << 44 | ... | value``; when
    ``currency`` is true, CRC_C is computed (extra byte 0x01).
    """
    t = _TABLE
    crc = 0xFFFF
    # Unrolled over the 7 bytes, most significant first: this runs per token.
    crc = (crc >> 8) ^ t[(crc ^ (data50 >> 48)) & 0xFF]
    crc = (crc >> 8) ^ t[(crc ^ (data50 >> 40)) & 0xFF]
    crc = (crc >> 8) ^ t[(crc ^ (data50 >> 32)) & 0xFF]
    crc = (crc >> 8) ^ t[(crc ^ (data50 >> 24)) & 0xFF]
    crc = (crc >> 8) ^ t[(crc ^ (data50 >> 16)) & 0xFF]
    crc = (crc >> 8) ^ t[(crc ^ (data50 >> 8)) & 0xFF]
    crc = (crc >> 8) ^ t[(crc ^ data50) & 0xFF]
    if currency:
        crc = (crc >> 8) ^ t[(crc ^ 1) & 0xFF]
    return ((crc & 0xFF) << 8) | (crc >> 8)
