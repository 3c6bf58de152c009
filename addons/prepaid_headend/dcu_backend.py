"""The Tryton side of the head-end's concentrator service:
:class:`TrytonHeadEnd` implements ``concentrator.wsgi.HeadEndBackend`` in the
current transaction (the route in ``routes.py`` opens it).

Idempotence (docs/concentrators.md sections 5, 6 and 9): a SOAP report is
stored once per (concentrator, ReportId, payload SHA-256), a report file once
per SHA-256, both under a unique ``key`` of ``prepaid.concentrator.report``;
the readings they carry are stored once per (meter, quantity, time) through
the reading tables' unique keys (``reading.insert_new``), so the same report
under another id or file name, out of order or after an outage adds nothing.

Rows of meter ids that are no meter of the concentrator's company are not
stored (the ids are listed on the received report).

A report file is checked whole in the request (name, certificate, digest,
bounded inflation, schema: a bad file is answered 400 there), then kept
(``prepaid.concentrator.report`` with its bytes, ``stored`` empty) and its
readings are written by a queue task (:meth:`ReceivedReport.ingest`, queue
``headend``, run by ``trytond-worker``; in the request's process after the
commit when no worker is configured): a file holds up to 512 meters x 4
days of load profile, minutes of work the concentrator must not wait for.
Its rows go to the reading tables set-based (``reading.insert_rows``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from trytond import backend
from trytond.model.exceptions import SQLConstraintError
from trytond.pool import Pool
from trytond.transaction import Transaction, without_check_access

from . import dcu
from . import reading as rd
from .concentrator import files, reports
from .concentrator import messages as m
from .concentrator.errors import Refused
from .concentrator.tls import Peer
from .concentrator.wsgi import Rejection, ReportFile
from .dlms import operations as ops

logger = logging.getLogger(__name__)

REACTIVE_IMPORT = '1.0.3.8.0.255'
REACTIVE_EXPORT = '1.0.4.8.0.255'
MAX_DEMAND = '1.0.1.6.0.255'
VOLTAGE = '1.0.32.7.0.255'
CURRENT = '1.0.31.7.0.255'
INTERVAL = dt.timedelta(minutes=15)
#: Bytes of refused input kept for audit (a refused 32 MiB file is not).
MAX_AUDIT_BYTES = 1024 * 1024


def _utc(moment: dt.datetime) -> dt.datetime:
    return rd.naive_utc(moment)


def _reading(obis: str, when: dt.datetime, value: float, unit: str) -> dict:
    return {'obis': obis, 'timestamp': when, 'value': float(value), 'unit': unit}


class TrytonHeadEnd:
    """``HeadEndBackend`` on the database of the current transaction.

    ``error``: the exception a method raised, if any. ``wsgi.HeadEndApp``
    turns it into a SOAP fault, so the route must know to roll back (and
    to let trytond retry a serialisation failure)."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self._concentrators: dict[str, Any] = {}

    def _guard(self, func, *args):
        try:
            return func(*args)
        except Refused:
            raise
        except BaseException as exc:
            self.error = exc
            raise

    # -- HeadEndBackend --------------------------------------------------------
    def authorise(self, dc_id: str, peer: Peer) -> None:
        return self._guard(self._authorise, dc_id, peer)

    def report(self, delivery: m.ReportDelivery, report: reports.Report) -> m.AckResult:
        return self._guard(self._report, delivery, report)

    def report_file(self, upload: ReportFile) -> m.AckResult:
        return self._guard(self._report_file, upload)

    def request_status(self, update: m.RequestStatusUpdate) -> None:
        return self._guard(self._request_status, update)

    def meters_status(self, update: m.MeterStatusUpdate) -> list[m.MeterDecision]:
        return self._guard(self._meters_status, update)

    def rejected(self, rejection: Rejection) -> None:
        return self._guard(self._rejected, rejection)

    # -- identity --------------------------------------------------------------
    def _concentrator(self, dc_id: str):
        if dc_id not in self._concentrators:
            Concentrator = Pool().get('prepaid.concentrator')
            found = Concentrator.search([('dc_id', '=', dc_id)], limit=1)
            self._concentrators[dc_id] = found[0] if found else None
        return self._concentrators[dc_id]

    def _authorise(self, dc_id: str, peer: Peer) -> None:
        # The alarm of a refusal is raised by rejected(), which HeadEndApp
        # calls for every Refused (with what was refused).
        record = self._concentrator(dc_id)
        if record is None or not record.active:
            raise Refused(f"unknown concentrator {dc_id}")
        if not record.certificate_fingerprint:
            raise Refused(f"no certificate registered for {dc_id}")
        if record.certificate_fingerprint != peer.fingerprint:
            raise Refused(f"certificate of {dc_id} is not the one registered")
        if record.certificate_revoked:
            raise Refused(f"certificate of {dc_id} is revoked")
        record.contact(dcu.now())
        record.save()

    # -- reports ---------------------------------------------------------------
    def _report(self, delivery: m.ReportDelivery, report: reports.Report):
        record = self._concentrator(delivery.dc_id)
        key = f'report:{record.id}:{delivery.report_id}:{delivery.sha256}'
        values = {
            'kind': 'soap',
            'report_id': delivery.report_id,
            'sha256': delivery.sha256,
            'size': len(delivery.payload.encode('utf-8')),
        }
        return self._store(record, key, report, values)

    def _report_file(self, upload: ReportFile) -> m.AckResult:
        record = self._concentrator(upload.name.dc_id)
        values = {
            'kind': 'file',
            'sha256': upload.sha256,
            'file_name': str(upload.name),
            'data': upload.raw,
            'size': len(upload.raw),
        }
        return self._store(
            record, f'file:{upload.sha256}', upload.report, values, queued=True
        )

    def _store(
        self,
        record,
        key: str,
        report: reports.Report,
        values: dict,
        queued: bool = False,
    ):
        Received = Pool().get('prepaid.concentrator.report')
        if Received.search([('key', '=', key)], limit=1):
            return m.AckResult.DUPLICATE
        if queued:
            stored, unknown = None, set()
        else:
            stored, unknown = ingest(record, report)
        moment = dcu.now()
        received = Received.create(
            [
                {
                    'concentrator': record.id,
                    'key': key,
                    'id_pet': report.id_pet,
                    'report_type': str(report.report_type),
                    'version': report.version,
                    'generated': _utc(report.generated),
                    'received': moment,
                    'rows': len(report.rows),
                    'stored': stored,
                    'unknown_meters': '\n'.join(sorted(unknown)) or None,
                    **values,
                }
            ]
        )
        record.contact(moment, report=True)
        record.save()
        if queued:
            with Transaction().set_context(queue_name='headend'):
                Received.__queue__.ingest(received)
        return m.AckResult.ACCEPTED

    # -- status updates --------------------------------------------------------
    def _request_status(self, update: m.RequestStatusUpdate) -> None:
        # Every status is kept (audit); one that answers an order of the
        # head-end (its IdPet) also updates the order and its meters.
        pool = Pool()
        Status = pool.get('prepaid.concentrator.request_status')
        Order = pool.get('prepaid.concentrator.order')
        record = self._concentrator(update.dc_id)
        Order.apply_status(record, update)
        Status.create(
            [
                {
                    'concentrator': record.id,
                    'id_pet': update.id_pet,
                    'status': str(update.status),
                    'message': update.message,
                    'outcomes': '\n'.join(
                        f'{o.meter_id}: {o.status}'
                        + (f' ({o.message})' if o.message else '')
                        for o in update.outcomes
                    )
                    or None,
                    'received': dcu.now(),
                }
            ]
        )

    def _meters_status(self, update: m.MeterStatusUpdate) -> list[m.MeterDecision]:
        record = self._concentrator(update.dc_id)
        entries = directory(record, {i.meter_id for i in update.items})
        decisions = []
        for item in update.items:
            entry = entries[item.meter_id]
            when = _utc(item.time)
            if entry.last_seen is None or when > entry.last_seen:
                entry.last_seen = when
            # Items can arrive out of order: the latest Time is in force.
            if entry.status_time is None or when >= entry.status_time:
                entry.status = str(item.status)
                entry.status_time = when
                entry.pda = bytes(item.pda).hex().upper()
                if item.short_address is not None:
                    entry.short_address = item.short_address
                if item.hops is not None:
                    entry.hops = item.hops
                if item.collector:
                    entry.collector = collector(record, item.collector)
            if item.status is m.MeterStatus.JOINED:
                if entry.joined_at is None or when < entry.joined_at:
                    entry.joined_at = when
                decisions.append(decide(entry))
        DirectoryEntry = Pool().get('prepaid.concentrator.directory')
        DirectoryEntry.save(list(entries.values()))
        return decisions

    def _rejected(self, rejection: Rejection) -> None:
        pool = Pool()
        Rejected = pool.get('prepaid.concentrator.rejection')
        Event = pool.get('prepaid.concentrator.event')
        record = self._concentrator(rejection.dc_id) if rejection.dc_id else None
        peer = rejection.peer
        raw = rejection.raw[:MAX_AUDIT_BYTES] if rejection.raw else None
        Rejected.create(
            [
                {
                    'concentrator': record.id if record else None,
                    'company': record.company.id if record else None,
                    'dc_id': rejection.dc_id,
                    'common_name': peer.common_name if peer else None,
                    'fingerprint': peer.fingerprint if peer else None,
                    'what': rejection.what,
                    'reason': rejection.reason,
                    'field': rejection.field,
                    'name': rejection.name,
                    'data': raw,
                    'received': dcu.now(),
                }
            ]
        )
        code = (
            dcu.EV_REFUSED_IDENTITY
            if rejection.what == 'identity'
            else dcu.EV_REFUSED_INPUT
        )
        who = rejection.dc_id or (peer.common_name if peer else None) or '?'
        Event.raise_alarm(
            record,
            code,
            f"{rejection.what} from {who}: {rejection.reason}",
            dc_id=rejection.dc_id or (peer.common_name if peer else None),
        )
        logger.warning("concentrator input refused: %s: %s", who, rejection.reason)


# -- directory ---------------------------------------------------------------
def directory(record, meter_ids: Iterable[str]) -> dict[str, Any]:
    """The directory entries of these meter ids (new ones unsaved), each
    linked to the meter of that serial in the concentrator's company."""
    DirectoryEntry = Pool().get('prepaid.concentrator.directory')
    meter_ids = set(meter_ids)
    found = DirectoryEntry.search(
        [('concentrator', '=', record.id), ('meter_id', 'in', list(meter_ids))]
    )
    entries = {e.meter_id: e for e in found}
    meters = meters_of(record, meter_ids)
    for meter_id in meter_ids:
        entry = entries.get(meter_id)
        if entry is None:
            # Every field the updates read, set: an unsaved record has no
            # value for the others.
            entry = entries[meter_id] = DirectoryEntry(
                concentrator=record,
                meter_id=meter_id,
                approval='pending',
                meter=None,
                pda=None,
                short_address=None,
                hops=None,
                collector=None,
                joined_at=None,
                last_seen=None,
                status=None,
                status_time=None,
            )
        meter_pk = meters.get(meter_id)
        if meter_pk is not None and entry.meter is None:
            entry.meter = meter_pk
    return entries


def decide(entry) -> m.MeterDecision:
    """Approved when the meter is one of the company's (the concentrator
    collects it); otherwise pending, for an operator (refused stays)."""
    if entry.approval != 'refused':
        entry.approval = 'approved' if entry.meter else 'pending'
    decision = m.Decision(entry.approval)
    model = None
    if decision is m.Decision.APPROVED:
        model = entry.meter.model if entry.meter else None
    return m.MeterDecision(entry.meter_id, decision, model)


def collector(record, code: str):
    Collector = Pool().get('prepaid.concentrator.collector')
    found = Collector.search(
        [('concentrator', '=', record.id), ('code', '=', code)], limit=1
    )
    if found:
        return found[0]
    (new,) = Collector.create([{'concentrator': record.id, 'code': code}])
    return new


def meters_of(record, meter_ids: Iterable[str]) -> dict[str, int]:
    "{serial: meter id} of the concentrator's company"
    Meter = Pool().get('prepaid.meter')
    ids = list(set(meter_ids))
    if not ids:
        return {}
    with Transaction().set_context(active_test=False):
        found = Meter.search(
            [('serial', 'in', ids), ('company', '=', record.company.id)]
        )
    return {meter.serial: meter.id for meter in found}


# -- ingestion ---------------------------------------------------------------
def ingest(record, report: reports.Report) -> tuple[int, set[str]]:
    """Map the report's rows onto the reading tables and the concentrator's
    models; returns (readings stored, unknown meter ids)."""
    kind = report.report_type
    if kind is m.ReportType.METER_LIST:
        return _meter_list(record, report), set()
    if kind is m.ReportType.DC_EVENTS:
        return _dc_events(record, report), set()
    if kind is m.ReportType.DC_PARAMETERS:
        for row in report.rows:
            record.firmware_version = row.firmware  # type: ignore[attr-defined]
            record.model = row.model  # type: ignore[attr-defined]
            record.clock = _utc(row.time)  # type: ignore[attr-defined]
        return 0, set()
    by_meter: dict[str, list[Any]] = defaultdict(list)
    for row in report.rows:
        by_meter[row.meter_id].append(row)  # type: ignore[attr-defined]
    meters = meters_of(record, by_meter)
    unknown = set(by_meter) - set(meters)
    mapper = _MAPPERS.get(kind)
    if mapper is None:  # relay_status: no reading table (yet)
        return 0, unknown
    known = [(meters[i], rows) for i, rows in by_meter.items() if i in meters]
    return mapper(known, record.dc_id), unknown


def ingest_file(received) -> None:
    """Store the readings of a received report file (the queue task of
    ``ReceivedReport.ingest``): parse the kept bytes again (they were
    checked in the request), write its readings and what was stored."""
    Received = Pool().get('prepaid.concentrator.report')
    report = reports.parse(
        files.unpack(received.data, files.MAX_INFLATED),
        max_bytes=files.MAX_INFLATED,
    )
    record = received.concentrator
    try:
        stored, unknown = ingest(record, report)
    except (SQLConstraintError, backend.DatabaseIntegrityError) as exc:
        # Another worker stored some of these readings meanwhile (the same
        # readings in another file): run the task again, which then skips
        # them, as a serialisation failure is run again.
        raise backend.DatabaseOperationalError(
            f'readings of {received.file_name} stored concurrently'
        ) from exc
    record.save()  # a concentrator's parameters report updates it
    with without_check_access():
        Received.write(
            [received],
            {'stored': stored, 'unknown_meters': '\n'.join(sorted(unknown)) or None},
        )


def _intervals(known: list[tuple[int, list[reports.IntervalRow]]], dc_id: str) -> int:
    out = []
    series = []
    for meter, rows in known:
        rows = sorted(rows, key=lambda r: r.time)
        series.append((meter, rows, _utc(rows[0].time) - INTERVAL))
    # The interval before the first of each meter's rows, if it was stored
    # already (the previous day's report): its consumption is the difference.
    previous = _stored_energy({(meter, when) for meter, _, when in series})
    for meter, rows, _ in series:
        for row in rows:
            when = _utc(row.time)
            before = previous.get((meter, when - INTERVAL))
            item = _reading(ops.ENERGY_IMPORT, when, row.ai, 'Wh')
            item['meter'] = meter
            item['consumption'] = float(row.ai - before) if before is not None else None
            out.append(item)
            power = _reading(ops.ACTIVE_POWER, when, row.p, 'W')
            power['meter'] = meter
            out.append(power)
            previous[(meter, when)] = row.ai
    return rd.insert_rows('prepaid.headend.interval', out)


def _stored_energy(
    wanted: set[tuple[int, dt.datetime]],
) -> dict[tuple[int, dt.datetime], float]:
    "{(meter, time): energy register} of the stored intervals wanted"
    Interval = Pool().get('prepaid.headend.interval')
    table = Interval.__table__()
    cursor = Transaction().connection.cursor()
    found: dict[tuple[int, dt.datetime], float] = {}
    meters = sorted({meter for meter, _ in wanted})
    times = sorted({when for _, when in wanted})
    for start in range(0, len(meters), 1_000):
        cursor.execute(
            *table.select(
                table.meter,
                table.timestamp,
                table.value,
                where=table.meter.in_(meters[start : start + 1_000])
                & (table.obis == ops.ENERGY_IMPORT)
                & table.timestamp.in_(times),
            )
        )
        for meter, when, value in cursor:
            if isinstance(when, str):  # SQLite without types
                when = dt.datetime.fromisoformat(when)
            key = (meter, when.replace(microsecond=0, tzinfo=None))
            if key in wanted:
                found[key] = value
    return found


class _Registers:
    """A report whose rows each give a few register values at one time:
    stored as readings of ``model``, one per (OBIS, row attribute, divisor,
    unit) of ``columns`` (the divisor turns the report's scaled integers
    into the unit)."""

    def __init__(self, model: str, *columns: tuple[str, str, int, str]):
        self.model = model
        self.columns = columns

    def __call__(self, known: list[tuple[int, list[Any]]], dc_id: str) -> int:
        out = []
        for meter, rows in known:
            for row in rows:
                when = _utc(row.time)
                for obis, attribute, divisor, unit in self.columns:
                    value = getattr(row, attribute)
                    if divisor != 1:
                        value = value / divisor
                    item = _reading(obis, when, value, unit)
                    item['meter'] = meter
                    out.append(item)
        return rd.insert_rows(self.model, out)


_daily = _Registers(
    'prepaid.headend.register',
    (ops.ENERGY_IMPORT, 'ai', 1, 'Wh'),
    (ops.ENERGY_EXPORT, 'ae', 1, 'Wh'),
    (REACTIVE_IMPORT, 'ri', 1, 'varh'),
    (REACTIVE_EXPORT, 're', 1, 'varh'),
)
_monthly = _Registers(
    'prepaid.headend.billing',
    (ops.ENERGY_IMPORT, 'ai', 1, 'Wh'),
    (MAX_DEMAND, 'max_demand', 1, 'W'),
)
_instant = _Registers(
    'prepaid.headend.register',
    (ops.ENERGY_IMPORT, 'ai', 1, 'Wh'),
    (ops.ENERGY_EXPORT, 'ae', 1, 'Wh'),
    (ops.ACTIVE_POWER, 'p', 1, 'W'),
    (VOLTAGE, 'v', 10, 'V'),
    (CURRENT, 'i', 100, 'A'),
)


def _events(known: list[tuple[int, list[reports.EventRow]]], dc_id: str) -> int:
    out = [
        {
            'meter': meter,
            'log': row.log,
            'timestamp': _utc(row.time),
            'code': row.code,
            'description': rd.describe_event(row.code),
            'source': dc_id,
        }
        for meter, rows in known
        for row in rows
    ]
    return rd.insert_rows(
        'prepaid.headend.event', out, key=('log', 'timestamp', 'code')
    )


_MAPPERS = {
    m.ReportType.LOAD_PROFILE: _intervals,
    m.ReportType.DAILY: _daily,
    m.ReportType.MONTHLY: _monthly,
    m.ReportType.INSTANT: _instant,
    m.ReportType.METER_EVENTS: _events,
}


def _meter_list(record, report: reports.Report) -> int:
    """The concentrator's list: what it holds of each meter (the status in
    force is still the one of the latest status update)."""
    rows: list[reports.MeterEntry] = list(report.rows)  # type: ignore[arg-type]
    entries = directory(record, {r.meter_id for r in rows})
    listed = _utc(report.generated)
    for row in rows:
        entry = entries[row.meter_id]
        entry.pda = bytes(row.pda).hex().upper()
        if row.short_address is not None:
            entry.short_address = row.short_address
        if row.hops is not None:
            entry.hops = row.hops
        if row.joined_at and entry.joined_at is None:
            entry.joined_at = _utc(row.joined_at)
        if row.last_seen:
            seen = _utc(row.last_seen)
            if entry.last_seen is None or seen > entry.last_seen:
                entry.last_seen = seen
        if row.collector:
            entry.collector = collector(record, row.collector)
        status = {'pending': 'joined'}.get(row.status, row.status)
        if status in {'joined', 'lost', 'removed', 'never_joined'} and (
            entry.status_time is None or listed > entry.status_time
        ):
            entry.status, entry.status_time = status, listed
    DirectoryEntry = Pool().get('prepaid.concentrator.directory')
    DirectoryEntry.save(list(entries.values()))
    return 0


def _dc_events(record, report: reports.Report) -> int:
    Event = Pool().get('prepaid.concentrator.event')
    rows: list[reports.DcEventRow] = list(report.rows)  # type: ignore[arg-type]
    values = {}
    for row in rows:
        when = _utc(row.time)
        key = f'{record.dc_id}|{when.isoformat()}|{row.group}|{row.code}|'
        key += row.meter_id or ''
        values[key] = {
            'concentrator': record.id,
            'company': record.company.id,
            'dc_id': record.dc_id,
            'timestamp': when,
            'group': row.group,
            'code': row.code,
            'meter_id': row.meter_id,
            'detail': (row.detail or '')[:255] or None,
            'alarm': (row.group, row.code) in dcu.DC_ALARMS,
            'key': key,
        }
    if not values:
        return 0
    known = {e.key for e in Event.search([('key', 'in', list(values))])}
    new = [v for k, v in values.items() if k not in known]
    if new:
        Event.create(new)
    return 0
