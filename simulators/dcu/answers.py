"""Requests the head-end makes of a concentrator: synchronous ones (answered
in the same HTTP exchange, the G3 delays slept for real) and asynchronous ones
and event queries (answered later through the outbox).

Every request is remembered by its IdPet: the same request again gets the
first answer (a synchronous one is not read again), another request under a
used IdPet gets ``malformed``."""

from __future__ import annotations

import time

from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator import reports


class RequestsMixin:
    """Part of :class:`~simulators.dcu.concentrator.Concentrator`."""

    # -- synchronous requests ------------------------------------------------
    def sync_request(self, request: m.SyncRequest) -> m.SyncResponse:
        with self.lock:
            seen, digest = self._answered(request)
        if seen is not None:
            return seen  # type: ignore[return-value]
        answer = self._sync_answer(request)
        with self.lock:
            self._remember(request, digest, answer)
        return answer

    def _sync_answer(self, request: m.SyncRequest) -> m.SyncResponse:
        kind, id_pet = request.report_type, request.id_pet
        if kind not in m.SYNC_REPORTS:
            return m.SyncResponse(
                id_pet,
                m.RequestStatus.MALFORMED,
                None,
                f"{kind} is answered asynchronously (AsyncRequest)",
            )
        with self.lock:
            snapshot = self._snapshot(kind)
            if snapshot is not None:
                payload = self._payload(kind, id_pet, snapshot)
                return m.SyncResponse(id_pet, m.RequestStatus.OK, payload)
            names = request.meters
            if not names or len(names) > self.config.sync_meter_limit:
                return m.SyncResponse(
                    id_pet,
                    m.RequestStatus.MALFORMED,
                    None,
                    f"name 1 to {self.config.sync_meter_limit} meters",
                )
            now = self.clock.time()
            unknown = [n for n in names if not self._known(n)]
            rows, timeouts, elapsed = [], [], 0.0
            for fm in self._targets(names):
                ok, t = self.g3.exchange(fm.hops, fm.rs485, count=2)
                if not fm.online(now):
                    ok, t = False, self.config.g3.app_timeout_s
                elapsed += t
                if ok:
                    fm.last_seen = now
                    rows += self._keep(fm, kind, self._read(fm, kind, now, 0))
                else:
                    timeouts.append(fm.meter_id)
        time.sleep(elapsed * self.latency_scale)
        if rows:
            status = (
                m.RequestStatus.PARTIAL if unknown or timeouts else m.RequestStatus.OK
            )
        elif timeouts:
            status = m.RequestStatus.METER_TIMEOUT
        else:
            status = m.RequestStatus.UNKNOWN_METER
        notes = []
        if timeouts:
            notes.append("no answer from " + ", ".join(timeouts))
        if unknown:
            notes.append("not in the directory: " + ", ".join(unknown))
        payload = self._payload(kind, id_pet, rows) if rows else None
        return m.SyncResponse(id_pet, status, payload, "; ".join(notes)[:1000] or None)

    def _payload(self, kind, id_pet: int, rows) -> str:
        generated = self._when(self.dc_time())
        report = reports.Report(kind, self.dc_id, id_pet, generated, tuple(rows))
        return reports.render(report)

    # -- asynchronous requests and report queries ----------------------------
    def accept_request(self, request: m.AsyncRequest | m.ReportQuery) -> m.Accepted:
        answer_type = (
            m.Accepted if isinstance(request, m.AsyncRequest) else m.ReportQueryAccepted
        )
        with self.lock:
            seen, digest = self._answered(request)
            if seen is not None:
                return seen  # type: ignore[return-value]
            names = request.meters
            if names and all(not self._known(n) for n in names):
                answer = answer_type(
                    request.id_pet, m.RequestStatus.UNKNOWN_METER, "no such meter here"
                )
            else:
                answer = answer_type(request.id_pet, m.RequestStatus.WORKING)
                self.clock.after(0.0, self._answer_request, request)
            self._remember(request, digest, answer)
            return answer

    def _answer_request(self, request: m.AsyncRequest | m.ReportQuery) -> None:
        now = self.clock.time()
        with self.lock:
            outcomes = self._unknown(request.meters)
            fms = self._targets(request.meters)
            if isinstance(request, m.ReportQuery):
                kind = m.ReportType.METER_EVENTS
                rows = [
                    r
                    for fm in fms
                    for r in self._stored(fm, kind, request.start, request.end)
                    if (request.event_log is None or r.log == request.event_log)
                    and (request.event_code is None or r.code == request.event_code)
                ]
                self._finish(request.id_pet, outcomes, 0.0, (kind, rows))
                return
            kind = request.report_type
            snapshot = self._snapshot(kind)
            stored = kind in (
                m.ReportType.LOAD_PROFILE,
                m.ReportType.DAILY,
                m.ReportType.MONTHLY,
                m.ReportType.METER_EVENTS,
            )
            if snapshot is not None:
                rows, elapsed = snapshot, 0.0
            elif request.source is m.Source.STORE and stored:
                period = (request.start, request.end)
                rows = [r for fm in fms for r in self._stored(fm, kind, *period)]
                elapsed = 0.0
            else:  # read the meters: their own buffers, for the period asked
                rows, elapsed = [], 0.0
                for fm in fms:
                    ok, t = self.g3.exchange(fm.hops, fm.rs485, count=3)
                    if not fm.online(now):
                        ok, t = False, self.config.g3.app_timeout_s
                    elapsed += t
                    if not ok:
                        outcomes.append(
                            m.MeterOutcome(fm.meter_id, m.RequestStatus.METER_TIMEOUT)
                        )
                        continue
                    fm.last_seen = now
                    if stored:
                        period = (request.start, request.end)
                        read = self._read_period(fm, kind, now, *period)
                    else:
                        read = self._read(fm, kind, now, 0)
                    rows += self._keep(fm, kind, read)
            self._finish(request.id_pet, outcomes, elapsed, (kind, rows))
