"""The reference write path: Model.create and change_state, batch by batch
(the set-based writer falls back to it, and the tests compare the two)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trytond.i18n import gettext
from trytond.pool import Pool

from .batches import batch_parties, link_parties, sequence_values
from .validation import CleanRow

if TYPE_CHECKING:
    from .importer import ImportResult


def write_chunk(
    chunk: list[CleanRow],
    result: ImportResult,
    party_ids: dict[tuple[str, str], int],
) -> None:
    "The reference path: Model.create and change_state"
    pool = Pool()
    Party = pool.get('party.party')
    ServicePoint = pool.get('prepaid.service_point')
    Meter = pool.get('prepaid.meter')
    Installation = pool.get('prepaid.meter.installation')
    Configuration = pool.get('prepaid.configuration')
    new_parties, owners = batch_parties(chunk, party_ids)
    parties = Party.create(new_parties)
    link_parties(chunk, owners, [p.id for p in parties], party_ids)
    point_codes = sequence_values(Configuration(1).service_point_sequence, len(chunk))
    points = ServicePoint.create(
        [
            {**r.point, 'customer': r.party_id, 'code': code}
            for r, code in zip(chunk, point_codes)
        ]
    )
    meters = Meter.create([r.meter for r in chunk])
    Installation.create(
        [
            {
                'meter': m.id,
                'service_point': p.id,
                'installed_on': r.installed_on,
                'install_reading': r.install_reading,
            }
            for r, p, m in zip(chunk, points, meters)
        ]
    )
    # Through change_state so every meter gets its history line.
    Meter.change_state(
        meters, 'installed', gettext('prepaid_vending.msg_import_installed')
    )
    result.parties += len(parties)
    result.service_points += len(points)
    result.meters += len(meters)
    result.imported += len(chunk)
    result.meter_ids.extend(m.id for m in meters)
