"""A head-end kept in memory, behind the real head-end service.

It implements :class:`~trytond.modules.prepaid_headend.concentrator.wsgi.
HeadEndBackend` the way the Tryton layer must: a report is stored once per
(concentrator, report id, payload digest), a file once per SHA-256 (and
kept, whatever its name), a reading once per (meter, quantity, time), a
meter's status is the one with the latest time (status updates can arrive
out of order); refused input is kept with its reason. Concentrators may be
registered with their certificate's fingerprint, as the Tryton layer
registers them. The simulator's command line and the tests use it as the
head-end the concentrators call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator import reports
from trytond.modules.prepaid_headend.concentrator.errors import Refused
from trytond.modules.prepaid_headend.concentrator.tls import Peer
from trytond.modules.prepaid_headend.concentrator.wsgi import Rejection, ReportFile

Policy = Callable[[str, m.MeterStatusItem], m.MeterDecision | None]


def approve_all(dc_id: str, item: m.MeterStatusItem) -> m.MeterDecision:
    return m.MeterDecision(item.meter_id, m.Decision.APPROVED, "simulated")


def _key(dc_id: str, row: reports.Row) -> tuple:
    """What makes a reading unique (its quantity and time)."""
    if isinstance(row, reports.IntervalRow):
        return ("interval", row.meter_id, row.time)
    if isinstance(row, reports.DailyRow):
        return ("daily", row.meter_id, row.time)
    if isinstance(row, reports.MonthlyRow):
        return ("monthly", row.meter_id, row.time)
    if isinstance(row, reports.EventRow):
        return ("event", row.meter_id, row.time, row.log, row.code)
    if isinstance(row, reports.InstantRow):
        return ("instant", row.meter_id, row.time)
    if isinstance(row, reports.RelayRow):
        return ("relay", row.meter_id, row.time)
    if isinstance(row, reports.DcEventRow):
        return ("dc_event", dc_id, row.time, row.group, row.code, row.meter_id)
    if isinstance(row, reports.MeterEntry):
        return ("meter_list", dc_id, row.meter_id)
    return ("dc_parameters", dc_id)


class MemoryHeadEnd:
    def __init__(
        self,
        concentrators: Iterable[str] | None = None,
        policy: Policy = approve_all,
        *,
        fingerprints: dict[str, str] | None = None,
        max_readings: int | None = None,
    ) -> None:
        """``concentrators``: the registered ones (None: any); their
        certificates' SHA-256 ``fingerprints`` when pinned;
        ``max_readings``: keep at most that many readings, oldest dropped
        (a long-running sink: ``ingested`` still counts them all)."""
        self.concentrators = set(concentrators) if concentrators is not None else None
        self.fingerprints = dict(fingerprints or {})
        self.policy = policy
        self.max_readings = max_readings
        self.lock = threading.Lock()
        # (dc, report id, payload sha256) -> report
        self.reports: dict[tuple[str, int, str], reports.Report] = {}
        self.files: dict[str, tuple[str, bytes]] = {}  # sha256 -> (name, bytes)
        self.names: dict[str, list[str]] = {}  # file name -> sha256s, in order
        self.readings: dict[tuple, reports.Row] = {}
        self.ingested = 0  # readings stored (each once)
        # (dc, meter) -> the status item with the latest time
        self.directory: dict[tuple[str, str], m.MeterStatusItem] = {}
        self.arrivals: list[tuple[str, str, str]] = []  # (dc, kind, label) in order
        self.request_statuses: dict[tuple[str, int], list[m.RequestStatusUpdate]] = {}
        self.meter_statuses: list[tuple[str, m.MeterStatusItem]] = []
        self.rejections: list[Rejection] = []
        self.tls_refusals: list[tuple[str, str, str]] = []
        self.duplicates = 0

    # -- HeadEndBackend ----------------------------------------------------------
    def authorise(self, dc_id: str, peer: Peer) -> None:
        if self.concentrators is not None and dc_id not in self.concentrators:
            raise Refused(f"unknown concentrator {dc_id}")
        pinned = self.fingerprints.get(dc_id)
        if pinned is not None and pinned != peer.fingerprint:
            raise Refused(f"certificate of {dc_id} is not the one registered")

    def report(self, delivery: m.ReportDelivery, report: reports.Report) -> m.AckResult:
        key = (delivery.dc_id, delivery.report_id, delivery.sha256)
        with self.lock:
            if key in self.reports:
                self.duplicates += 1
                return m.AckResult.DUPLICATE
            self.reports[key] = report
            self.arrivals.append((delivery.dc_id, "report", str(delivery.report_id)))
            self._ingest(report)
        return m.AckResult.ACCEPTED

    def report_file(self, upload: ReportFile) -> m.AckResult:
        name = str(upload.name)
        with self.lock:
            if upload.sha256 in self.files:
                self.duplicates += 1
                return m.AckResult.DUPLICATE
            self.files[upload.sha256] = (name, upload.raw)
            self.names.setdefault(name, []).append(upload.sha256)
            self.arrivals.append((upload.name.dc_id, "file", name))
            self._ingest(upload.report)
        return m.AckResult.ACCEPTED

    def _ingest(self, report: reports.Report) -> None:
        readings = self.readings
        for row in report.rows:
            key = _key(report.dc_id, row)
            if key not in readings:
                readings[key] = row
                self.ingested += 1
        if self.max_readings is not None:
            while len(readings) > self.max_readings:
                del readings[next(iter(readings))]

    def request_status(self, update: m.RequestStatusUpdate) -> None:
        with self.lock:
            self.request_statuses.setdefault((update.dc_id, update.id_pet), []).append(
                update
            )
            self.arrivals.append((update.dc_id, "status", str(update.id_pet)))

    def meters_status(self, update: m.MeterStatusUpdate) -> list[m.MeterDecision]:
        decisions = []
        with self.lock:
            for item in update.items:
                self.meter_statuses.append((update.dc_id, item))
                key = (update.dc_id, item.meter_id)
                known = self.directory.get(key)
                if known is None or item.time >= known.time:
                    self.directory[key] = item
                if item.status is m.MeterStatus.JOINED:
                    decision = self.policy(update.dc_id, item)
                    if decision is not None:
                        decisions.append(decision)
            self.arrivals.append((update.dc_id, "meters", str(len(update.items))))
        return decisions

    def rejected(self, rejection: Rejection) -> None:
        with self.lock:
            self.rejections.append(rejection)

    def tls_refused(self, listener: str, peer: str, reason: str) -> None:
        with self.lock:
            self.tls_refusals.append((listener, peer, reason))

    # -- inspection -------------------------------------------------------------------
    def rows(self, kind: str, meter_id: str | None = None) -> list[reports.Row]:
        with self.lock:
            return sorted(
                (
                    row
                    for key, row in self.readings.items()
                    if key[0] == kind and (meter_id is None or key[1] == meter_id)
                ),
                key=lambda r: (getattr(r, "meter_id", "") or "", r.time),
            )

    def status(self, dc_id: str, id_pet: int) -> m.RequestStatusUpdate | None:
        with self.lock:
            updates = self.request_statuses.get((dc_id, id_pet))
            return updates[-1] if updates else None

    def report_for(self, dc_id: str, id_pet: int) -> list[reports.Report]:
        with self.lock:
            return [
                r
                for (dc, _, _), r in self.reports.items()
                if dc == dc_id and r.id_pet == id_pet
            ]
