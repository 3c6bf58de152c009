"""EA07: the Standard Transfer Algorithm (STA) of IEC 62055-41.

See docs/sts.md section 4.8.

A 16-round substitution-permutation cipher on a 64-bit block:

1. round key ``K = ROR64(NOT DK, 12)``;
2. each round: nibble n of the data goes through S2 when bit ``4n+3`` of K is 1,
   else S1; then bit i moves to bit ``P[i]``; then ``K = ROL64(K, 1)``.

The S1, S2 and P tables are data loaded from a JSON file (see
:func:`load_tables`); the production tables are controlled by the STS
Association.

Speed: the per-round work is done with byte-wise lookup tables.  For each byte
position j and each of the 4 possible S-box choices of its two nibbles, a
256-entry table gives the *permuted* 64-bit contribution of the substituted
byte.  These 8 x 4 tables do not depend on the key; a key schedule only picks,
for each of the 16 rounds, which of the 4 tables each byte uses.  A round is
then 8 lookups OR-ed together, and building a schedule costs microseconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import KeyLengthError, TablesError

_M64 = (1 << 64) - 1
DEFAULT_TABLES = Path(__file__).with_name("data") / "sta_tables.json"
SAMPLE_TABLES = Path(__file__).with_name("data") / "sta_sample_tables.json"
ENV_TABLES = "PREPAID_STS_TABLES"


def _check_perm(name: str, values: object, size: int) -> list[int]:
    if (
        not isinstance(values, list)
        or len(values) != size
        or sorted(v for v in values if isinstance(v, int)) != list(range(size))
    ):
        raise TablesError(f"STA table {name} must be a permutation of 0..{size - 1}")
    return list(values)


def _inverse(perm: list[int]) -> list[int]:
    inv = [0] * len(perm)
    for i, v in enumerate(perm):
        inv[v] = i
    return inv


def _bit_perm_tables(perm: list[int]) -> list[list[int]]:
    """For byte position j, table[j][v] = bit permutation of ``v << 8j``."""
    tables = []
    for j in range(8):
        masks = [1 << perm[8 * j + k] for k in range(8)]
        tbl = [0] * 256
        for v in range(1, 256):
            low = v & -v
            tbl[v] = tbl[v ^ low] | masks[low.bit_length() - 1]
        tables.append(tbl)
    return tables


def _byte_subst(lo: list[int], hi: list[int]) -> list[int]:
    return [lo[b & 15] | (hi[b >> 4] << 4) for b in range(256)]


class StaTables:
    """S1, S2, P and the derived lookup tables for one table set."""

    def __init__(self, s1: list[int], s2: list[int], p: list[int], name: str = ""):
        self.name = name
        self.s1 = _check_perm("S1", s1, 16)
        self.s2 = _check_perm("S2", s2, 16)
        self.p = _check_perm("P", p, 64)
        self.s1_inv = _inverse(self.s1)
        self.s2_inv = _inverse(self.s2)
        self.p_inv = _inverse(self.p)
        # Choice c of a byte: bit 0 -> low nibble uses S2, bit 1 -> high nibble.
        boxes = (self.s1, self.s2)
        inv_boxes = (self.s1_inv, self.s2_inv)
        subst = [_byte_subst(boxes[c & 1], boxes[c >> 1]) for c in range(4)]
        inv_subst = [_byte_subst(inv_boxes[c & 1], inv_boxes[c >> 1]) for c in range(4)]
        perm = _bit_perm_tables(self.p)
        perm_inv = _bit_perm_tables(self.p_inv)
        # enc[j][c][b]: P(S_c(b) << 8j).
        self.enc = [
            [[perm[j][s[b]] for b in range(256)] for s in subst] for j in range(8)
        ]
        # dec_p[j][b]: P^-1(b << 8j); dec_sp[j][c][b]: P^-1(S_c^-1(b) << 8j);
        # dec_s[j][c][b]: S_c^-1(b) << 8j.
        # enc_sel[j][b] for b in (0x00, 0x01, 0x10, 0x11): enc[j] indexed by the
        # choice bits as they sit in a byte (bit 0 low nibble, bit 4 high).
        self.enc_sel = [
            [self.enc[j][b & 1 | (b >> 3) & 2] for b in range(18)] for j in range(8)
        ]
        self.dec_p = perm_inv
        self.dec_sp = [
            [[perm_inv[j][s[b]] for b in range(256)] for s in inv_subst]
            for j in range(8)
        ]
        self.dec_s = [
            [[s[b] << (8 * j) for b in range(256)] for s in inv_subst] for j in range(8)
        ]


_TABLES_CACHE: dict[str, StaTables] = {}


def load_tables(path: str | os.PathLike[str] | None = None) -> StaTables:
    """Load (and cache) STA tables from a JSON file with keys S1, S2 and P.

    ``path`` defaults to the ``PREPAID_STS_TABLES`` environment variable, then
    to the shipped ``data/sta_tables.json``.
    """
    if path is None:
        path = os.environ.get(ENV_TABLES) or DEFAULT_TABLES
    key = os.fspath(path)
    tables = _TABLES_CACHE.get(key)
    if tables is None:
        try:
            with open(key, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as exc:
            raise TablesError(f"cannot read STA tables file {key}: {exc}") from None
        except ValueError as exc:
            raise TablesError(f"STA tables file {key} is not JSON: {exc}") from None
        if not isinstance(data, dict) or not {"S1", "S2", "P"} <= data.keys():
            raise TablesError(f"STA tables file {key} must hold S1, S2 and P")
        tables = StaTables(data["S1"], data["S2"], data["P"], data.get("name", key))
        _TABLES_CACHE[key] = tables
    return tables


_NIBBLE_TOP_BITS = 0x1111111111111111


class StaCipher:
    """EA07 encryption/decryption with one 64-bit decoder key."""

    __slots__ = ("_tables", "_choices", "_enc", "_dec")

    def __init__(self, key: bytes, tables: StaTables | None = None):
        if len(key) != 8:
            raise KeyLengthError(
                f"EA07 (STA) needs a 64-bit decoder key (8 bytes), got {len(key)}"
            )
        t = tables if tables is not None else load_tables()
        self._tables = t
        k = ~int.from_bytes(key, "big") & _M64
        k = ((k >> 12) | (k << 52)) & _M64  # ROR64(NOT DK, 12)
        # For each round, the S-box choice bits (bit 3 of every nibble of the
        # round key) moved to bit 0 of each nibble: byte j of that value is
        # 0x00, 0x01, 0x10 or 0x11, which indexes t.enc_sel[j] directly.
        choices = []
        for _ in range(16):
            choices.append(((k >> 3) & _NIBBLE_TOP_BITS).to_bytes(8, "little"))
            k = ((k << 1) | (k >> 63)) & _M64
        self._choices = choices
        e0, e1, e2, e3, e4, e5, e6, e7 = t.enc_sel
        self._enc = [
            (e0[b[0]], e1[b[1]], e2[b[2]], e3[b[3]], e4[b[4]], e5[b[5]], e6[b[6]],
             e7[b[7]])
            for b in choices
        ]  # fmt: skip
        self._dec: list[tuple[list[int], ...]] | None = None  # built on first use

    def _dec_schedule(self) -> list[tuple[list[int], ...]]:
        # Decryption: P^-1 first, then rounds 15..1 as S^-1 followed by P^-1,
        # then the substitution of round 0 alone.
        t = self._tables
        choices = self._choices
        sel = [c & 1 | (c >> 3) & 2 for c in range(18)]
        rounds: list[tuple[list[int], ...]] = [tuple(t.dec_p)]
        for b in reversed(choices[1:]):
            rounds.append(tuple(t.dec_sp[j][sel[b[j]]] for j in range(8)))
        rounds.append(tuple(t.dec_s[j][sel[choices[0][j]]] for j in range(8)))
        self._dec = rounds
        return rounds

    def encrypt(self, x: int) -> int:
        return _run_rounds(self._enc, x)

    def decrypt(self, x: int) -> int:
        rounds = self._dec if self._dec is not None else self._dec_schedule()
        return _run_rounds(rounds, x)


def _run_rounds(rounds: list[tuple[list[int], ...]], x: int) -> int:
    "x through the rounds of a schedule: per round, 8 byte lookups OR-ed"
    for t0, t1, t2, t3, t4, t5, t6, t7 in rounds:
        x = (
            t0[x & 255]
            | t1[(x >> 8) & 255]
            | t2[(x >> 16) & 255]
            | t3[(x >> 24) & 255]
            | t4[(x >> 32) & 255]
            | t5[(x >> 40) & 255]
            | t6[(x >> 48) & 255]
            | t7[x >> 56]
        )
    return x
