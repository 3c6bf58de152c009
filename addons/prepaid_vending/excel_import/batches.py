"""What both writers share: the customers a batch creates (once per ID),
and numbers drawn for a whole batch at once."""

from __future__ import annotations

from typing import Any

from trytond.pool import Pool

from .validation import CleanRow


def batch_parties(
    chunk: list[CleanRow], party_ids: dict[tuple[str, str], int]
) -> tuple[list[dict[str, Any]], list[CleanRow]]:
    "The customers a chunk creates, once per ID, and the rows that own them"
    new_parties: list[dict[str, Any]] = []
    owners: list[CleanRow] = []
    pending: set[tuple[str, str]] = set()
    for row in chunk:
        if row.party_id or (
            row.party_key and (row.party_key in party_ids or row.party_key in pending)
        ):
            continue
        if row.party_key:
            pending.add(row.party_key)
        new_parties.append(dict(row.party))
        owners.append(row)
    number_parties(new_parties)
    return new_parties, owners


def link_parties(
    chunk: list[CleanRow],
    owners: list[CleanRow],
    new_ids: list[int],
    party_ids: dict[tuple[str, str], int],
) -> None:
    for row, party_id in zip(owners, new_ids):
        if row.party_key:
            party_ids[row.party_key] = party_id
        else:
            row.party_id = party_id
    for row in chunk:
        if row.party_id is None:
            row.party_id = party_ids[row.party_key]


def sequence_values(sequence: Any, count: int) -> list[Any]:
    """Numbers for a whole batch at once: one sequence update instead of one
    per record (the models would draw them one by one)."""
    if not sequence or not count:
        return [None] * count
    return list(sequence.get_many(count))


def number_parties(values: list[dict[str, Any]]) -> None:
    "Give new customers their party code and customer number by batch"
    pool = Pool()
    Party = pool.get('party.party')
    Configuration = pool.get('prepaid.configuration')
    codes = sequence_values(Party._code_sequence(), len(values))
    numbers = sequence_values(Configuration(1).customer_sequence, len(values))
    for party, code, number in zip(values, codes, numbers):
        if code:
            party['code'] = code
        if number:
            party['customer_number'] = number
