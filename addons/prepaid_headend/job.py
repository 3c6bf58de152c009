"""Head-end jobs: one record per meter and operation, executed by queue tasks.

Cron (schedules), buttons (on-demand read, relay, load limit, firmware) and the
command dispatcher create ``prepaid.headend.job`` records and queue
:meth:`Job.execute` on batches of them.  A batch runs every meter concurrently
on one asyncio loop (``dlms.read_meters``), each job in its own association;
the outcome of every meter is stored, so one failed meter (timeout, wrong keys)
never blocks the others.  Jobs move pending -> running -> done / failed and
keep their attempts and last error.

Every job has an overall deadline (``hes_job_deadline``, or
``hes_firmware_deadline`` for firmware, in the configuration; kept on the
job), on top of the meter's per-round-trip timeout and per-exchange deadline:
a meter that trickles or floods fails its job with the error kind
``deadline`` (or ``oversize`` for a flood) instead of holding the worker or
the engineer who pressed the button.

No lock and no write is held across the network run: on PostgreSQL the jobs
are claimed (running, attempt counted) in a transaction committed before any
I/O, and each meter's outcome is stored in its own transaction committed right
after the batch (:func:`run_committed`), so a counter vend on a meter of the
batch never waits for the batch, and a meter's verdict (a token accepted) is
never lost with a rolled-back batch.  Token jobs only deliver digits minted and
committed beforehand (``MeterCommand.hes_dispatch``).  Records created by the
calling transaction itself (tests, SQLite with one writer) are handled in the
caller's transaction, since no other transaction could see them.

A job carries its meter's company; the queue tasks of a batch run in that
company's context (the company-dependent settings they read are its own).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from trytond.bus import notify
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.modules.prepaid_sts.company import (
    context_company_domain,
    fill_company_from,
)
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.modules.prepaid_vending.transactions import autonomous_for, run_committed
from trytond.modules.prepaid_vending.workflow_only import WorkflowOnlyMixin
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction, TransactionError, without_check_access

from . import reading as rd
from .channel import CONTROL_STATE, DatabaseCounterStore
from .dlms import MeterJob, MeterResult, Operation, RetryPolicy, read_meters
from .dlms import operations as ops
from .dlms.errors import DlmsError

JOB_KINDS = [
    ('read', "Read"),
    ('time_sync', "Time Synchronisation"),
    ('relay', "Relay Control"),
    ('load_limit', "Load Limit"),
    ('token', "Token Delivery"),
    ('firmware', "Firmware Transfer"),
    ('firmware_activate', "Firmware Activation"),
]
JOB_STATES = [
    ('pending', "Pending"),
    ('running', "Running"),
    ('done', "Done"),
    ('failed', "Failed"),
]
ERROR_KINDS = [
    (None, ""),
    ('timeout', "Timeout"),
    ('connection', "Connection"),
    ('authentication', "Authentication Failure"),
    ('refused', "Association Refused"),
    ('access_denied', "Access Denied"),
    ('service', "Service Error"),
    ('malformed', "Malformed Reply"),
    ('deadline', "Deadline Exceeded"),
    ('oversize', "Reply Too Large (flood)"),
    ('lost', "Worker Lost"),
    ('firmware', "Firmware"),
    ('configuration', "Configuration"),
    ('error', "Error"),
]
#: Added to the longest time a claimed batch can take before a running job
#: with no outcome is taken for lost (see Job.fail_lost).
LOST_GRACE = dt.timedelta(minutes=5)
REPLAY_STATUS = 6  # token_status validation_failure: TID already used
REGISTERS = [
    (ops.ENERGY_IMPORT, ops.CLASS_REGISTER),
    (ops.ENERGY_EXPORT, ops.CLASS_REGISTER),
    (ops.ACTIVE_POWER, ops.CLASS_REGISTER),
    ('1.0.32.7.0.255', ops.CLASS_REGISTER),
    ('1.0.31.7.0.255', ops.CLASS_REGISTER),
]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- coroutines run inside one association -----------------------------------
async def _scalers(session, captures) -> dict[str, tuple[int, int]]:
    out = {}
    for c in captures:
        if (
            c.class_id in (ops.CLASS_REGISTER, ops.CLASS_DEMAND_REGISTER)
            and c.attr == 2
        ):
            out[c.obis] = await ops.read_scaler_unit(session, c.obis, c.class_id)
    return out


async def read_meter(
    session,
    registers: bool = True,
    profile_hours: int = 24,
    billing: bool = False,
    events: bool = False,
    sync_threshold: float | None = None,
) -> dict[str, Any]:
    """Everything a read job asks for, in one association."""
    out: dict[str, Any] = {}
    out['clock'] = clock = await ops.read_clock(session)
    out['now'] = utc_now()
    if sync_threshold is not None:
        out['sync'] = await _sync_clock(session, clock, out['now'], sync_threshold)
    if registers:
        out['registers'] = [
            await ops.read_register(session, obis, class_id)
            for obis, class_id in REGISTERS
        ]
        out['firmware'] = await ops.read_firmware_id(session)
    if profile_hours:
        captures = await ops.read_capture_objects(session, ops.LOAD_PROFILE)
        out['profile'] = (
            await ops.read_profile(
                session,
                ops.LOAD_PROFILE,
                clock - dt.timedelta(hours=profile_hours),
                clock,
                captures,
            ),
            await _scalers(session, captures),
        )
    if events:
        out['events'] = {
            'standard': await ops.read_event_log(session, ops.STANDARD_EVENT_LOG),
            'disconnector': await ops.read_event_log(
                session, ops.DISCONNECTOR_EVENT_LOG
            ),
        }
        out['alarm'] = await ops.read_alarm_register(session)
    if billing:
        # Last, and optional: a meter whose billing buffer cannot be read (the
        # line drops, an object is missing) still gives the rest of the read.
        try:
            captures = await ops.read_capture_objects(session, ops.BILLING_PROFILE)
            out['billing'] = (
                await ops.read_profile_by_entry(
                    session, ops.BILLING_PROFILE, 1, 0, captures
                ),
                await _scalers(session, captures),
            )
        except DlmsError as exc:
            out['billing_error'] = f"{exc.kind}: {exc}"
    return out


async def _sync_clock(session, meter_time, now, threshold: float) -> dict[str, Any]:
    drift = (meter_time - now).total_seconds()
    result: dict[str, Any] = {'drift': drift, 'corrected': False, 'after': drift}
    if abs(drift) > threshold:
        back = await ops.set_clock(session, utc_now())
        result['corrected'] = True
        result['after'] = (back - utc_now()).total_seconds()
    return result


async def sync_clock(session, threshold: float) -> dict[str, Any]:
    meter_time = await ops.read_clock(session)
    return await _sync_clock(session, meter_time, utc_now(), threshold)


async def load_limit(session, values: dict[str, int] | None = None) -> dict[str, int]:
    "Write the limiter values, if any (verified), and read the limiter back"
    if values:
        return await ops.write_limiter(session, values)
    return await ops.read_limiter(session)


async def deliver_tokens(
    session, tokens: list[str], retry: bool = False
) -> dict[str, Any]:
    """Enter the tokens in order; stop at the first one the meter refuses.

    On a retry of the same stored digits, a token refused as a replay
    (validation failure, status 6) whose digits the meter reports as its last
    token was delivered by an earlier attempt: it is noted in ``replayed`` and
    the next token is entered."""
    statuses: list[ops.TokenStatus] = []
    replayed: list[int] = []
    mismatch = False
    for index, token in enumerate(tokens):
        status = await ops.enter_token(session, token)
        statuses.append(status)
        if status.accepted:
            continue
        if retry and status.status == REPLAY_STATUS:
            if await ops.read_last_token(session) == token:
                replayed.append(index)
                continue
            mismatch = True
        break
    return {
        'statuses': statuses,
        'replayed': replayed,
        'mismatch': mismatch,
        'credit': await ops.read_credit_wh(session),
    }


async def relay(session, action: str) -> ops.RelayState:
    if action == 'disconnect':
        return await ops.disconnect(session)
    if action == 'reconnect':
        return await ops.reconnect(session)
    return await ops.relay_status(session)


async def firmware_transfer(
    session, identifier: str, image: bytes, activate: bool
) -> dict[str, Any]:
    previous = await ops.read_firmware_id(session)
    try:
        result = await ops.upgrade_firmware(
            session, identifier, image, activate=activate, poll_interval=0.05
        )
    except DlmsError as exc:
        # Say which version the meter kept: read back after the failure.
        exc.firmware_active = await _safe_firmware_id(session)  # type: ignore
        raise
    return {'previous': previous, 'result': result}


async def _safe_firmware_id(session) -> str | None:
    try:
        return await ops.read_firmware_id(session)
    except DlmsError:
        return None


async def firmware_activate(session, identifier: str) -> ops.FirmwareResult:
    return await ops.activate_image(session, identifier, poll_interval=0.05)


class Job(CompanyMixin, WorkflowOnlyMixin, ModelSQL, ModelView):
    """Head-end job: one operation on one meter

    A client changes nothing on a job: jobs are created by the head-end's
    buttons, schedules and dispatcher, a failed one goes back to pending
    only through Retry, and none is deleted (WorkflowOnlyMixin)."""

    __name__ = 'prepaid.headend.job'
    __string__ = "Head-End Job"

    meter = fields.Many2One(
        'prepaid.meter', "Meter", required=True, ondelete='CASCADE', readonly=True
    )
    kind = fields.Selection(JOB_KINDS, "Kind", required=True, readonly=True)
    state = fields.Selection(JOB_STATES, "State", required=True, readonly=True)
    params = fields.Text("Parameters (JSON)", readonly=True)
    schedule = fields.Many2One(
        'prepaid.headend.schedule', "Schedule", readonly=True, ondelete='SET NULL'
    )
    command = fields.Many2One(
        'prepaid.meter.command', "Command", readonly=True, ondelete='SET NULL'
    )
    relay = fields.Many2One(
        'prepaid.headend.relay', "Relay Operation", readonly=True, ondelete='SET NULL'
    )
    firmware = fields.Many2One(
        'prepaid.headend.firmware',
        "Firmware Upgrade",
        readonly=True,
        ondelete='SET NULL',
    )
    attempts = fields.Integer("Attempts", required=True, readonly=True)
    last_error = fields.Text("Last Error", readonly=True)
    error_kind = fields.Selection(ERROR_KINDS, "Error Kind", readonly=True)
    result = fields.Text("Result", readonly=True)
    created_at = fields.Timestamp("Created", required=True, readonly=True)
    started_at = fields.Timestamp("Started", readonly=True)
    finished_at = fields.Timestamp("Finished", readonly=True)
    round_trips = fields.Integer("Round Trips", readonly=True)
    duration = fields.Float("Duration (s)", readonly=True)
    deadline = fields.Float(
        "Deadline (s)",
        readonly=True,
        help="Longest the job could talk to the meter, every attempt included.",
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('id', 'DESC')]
        # No __access__ on the meter: Tryton would grant the wider of both
        # accesses, so every group that may write meters (the Vending
        # Operator too) could write these.  Their own access records decide.
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(
                t,
                (t.state, Index.Equality()),
                where=t.state.in_(['pending', 'running']),
            )
        )
        cls._buttons.update(
            {
                'retry': {'invisible': Eval('state') != 'failed', 'depends': ['state']},
            }
        )

    @classmethod
    def _migrate_company(cls, module):
        # Before the one-company default of CompanyMixin: the meter's company,
        # also where the installation already had several.
        fill_company_from(cls, 'meter', 'prepaid.meter')
        super()._migrate_company(module)

    @staticmethod
    def default_state():
        return 'pending'

    @staticmethod
    def default_attempts():
        return 0

    @staticmethod
    def default_created_at():
        return dt.datetime.now()

    def get_rec_name(self, name):
        return f"{dict(JOB_KINDS)[self.kind]} #{self.id} {self.meter.serial}"

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.params) if self.params else {}

    # --- creation and queueing ------------------------------------------
    @classmethod
    def create_for(cls, meters, kind: str, params: dict[str, Any], **values):
        # The web client that pressed the button hears how it went
        # (_notify_requester); jobs of cron have none.
        client = Transaction().context.get('client')
        requester = {'client': client} if client else {}
        with without_check_access():
            return cls.create(
                [
                    {
                        'meter': m.id,
                        'company': m.company.id,
                        'kind': kind,
                        'params': json.dumps({**params, **requester}, sort_keys=True),
                        **values,
                    }
                    for m in meters
                ]
            )

    @classmethod
    def queue(cls, jobs, delay: dt.timedelta | None = None) -> None:
        """Queue execute() in batches (one queue task per batch), each batch
        of one company and run in its context (a task keeps the context it
        was queued with)."""
        Configuration = Pool().get('prepaid.configuration')
        context: dict[str, Any] = {'queue_name': 'headend'}
        if delay is not None:
            context['queue_scheduled_at'] = delay
        by_company: dict[int, list[int]] = {}
        for job in jobs:
            by_company.setdefault(job.company.id, []).append(job.id)
        for company, ids in by_company.items():
            with Transaction().set_context(company=company, **context):
                size = Configuration(1).hes_batch_size or 200
                for i in range(0, len(ids), size):
                    cls.__queue__.execute(cls.browse(ids[i : i + size]))

    @classmethod
    @ModelView.button
    def retry(cls, jobs):
        failed = [j for j in jobs if j.state == 'failed']
        cls.write(failed, {'state': 'pending'})
        cls.queue(failed)

    # --- execution ------------------------------------------------------
    @classmethod
    def execute(cls, jobs, autonomous: bool | None = None) -> list[MeterResult]:
        """Run the pending jobs concurrently and store every outcome.

        Claiming and storing are committed on their own (see the module
        docstring): the caller's transaction only reads during the I/O."""
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        config = Configuration(1)
        ids = [j.id for j in jobs]
        if autonomous is None:
            autonomous = autonomous_for(cls.__name__, ids)
        claimed = run_committed(cls._claim, ids, autonomous=autonomous)
        if not claimed:
            return []
        jobs = cls.browse(list(claimed))
        runnable, meter_jobs, failures = [], [], []
        for job in jobs:
            try:
                settings = job.meter.hes_connection_settings()
                transport = job.meter.hes_transport()
                operation = job._operation(config, attempts=claimed[job.id])
            except TransactionError:
                raise  # e.g. a record lock: trytond restarts the task
            except Exception as exc:  # configuration error: this job only
                failures.append((job.id, _message(exc)))
                continue
            runnable.append(job.id)
            deadline = config.hes_deadline_for(job.kind)
            meter_jobs.append(
                MeterJob(
                    str(job.id),
                    settings,
                    [operation],
                    deadline=deadline,
                    transport=transport,
                )
            )
        for job_id, message in failures:
            run_committed(cls._store_failure_id, job_id, message, autonomous=autonomous)
        if not meter_jobs:
            return []
        results = read_meters(
            meter_jobs,
            concurrency=config.hes_concurrency or 100,
            policy=RetryPolicy(
                retries=config.hes_retries if config.hes_retries is not None else 2,
                base_delay=0.2,
            ),
            counter_store=DatabaseCounterStore(reserve=config.hes_counter_reserve or 1),
        )
        for job_id, meter_job, result in zip(
            runnable, meter_jobs, results, strict=True
        ):
            # One transaction per meter: a failure to store one outcome
            # neither loses nor repeats the others.
            run_committed(
                cls._store_id, job_id, result, meter_job.deadline, autonomous=autonomous
            )
        return results

    @classmethod
    def _claim(cls, ids: list[int]) -> dict[int, int]:
        """Mark the runnable jobs running and count the attempt (committed
        before the I/O: a retried task knows the meter may have been reached)."""
        jobs = [j for j in cls.browse(ids) if j.state in {'pending', 'running'}]
        now = dt.datetime.now()
        with without_check_access():
            for job in jobs:
                job.state = 'running'
                job.attempts += 1
                job.started_at = now
            cls.save(jobs)
        # The caller's snapshot may predate this commit: hand the counts over.
        return {j.id: j.attempts for j in jobs}

    @classmethod
    def fail_lost(cls, now: dt.datetime | None = None) -> list:
        """Cron: fail the running jobs whose worker was lost.

        A queue task whose worker dies (killed, host restarted) is not run
        again by trytond's queue, and its jobs would show *Running* for ever.
        A claimed batch runs at most ceil(batch size / concurrency) rounds,
        each cut off at the job deadline, then stores every outcome: a job
        still running LOST_GRACE after that is failed with the error kind
        ``lost``.  Its failure hooks run as for any failure, so a remote
        credit is sent again by the command's retry policy (a token the lost
        worker did deliver is then recognised by the meter as a replay of its
        last token, see :func:`deliver_tokens`) and a relay or firmware
        record learns its job failed.  Returns the jobs failed."""
        Configuration = Pool().get('prepaid.configuration')
        config = Configuration(1)
        now = now or dt.datetime.now()
        size = config.hes_batch_size or 200
        concurrency = config.hes_concurrency or 100
        rounds = -(-size // concurrency)

        def limit(kind: str) -> dt.timedelta:
            seconds = config.hes_deadline_for(kind) * rounds
            return dt.timedelta(seconds=seconds) + LOST_GRACE

        shortest = min(limit(kind) for kind, _ in JOB_KINDS)
        candidates = cls.search(
            [
                ('state', '=', 'running'),
                ('started_at', '<', now - shortest),
                # Cron runs per company: this company's jobs only.
                *context_company_domain('company'),
            ]
        )
        candidates = [j for j in candidates if j.started_at < now - limit(j.kind)]
        if not candidates:
            return []
        # A worker storing its outcome right now wins: lock, then look again.
        cls.lock(candidates)
        lost = [j for j in cls.browse(candidates) if j.state == 'running']
        for job in lost:
            minutes = (now - job.started_at).total_seconds() / 60
            job._store_failure(
                'lost',
                f"No outcome stored {minutes:.0f} min after the job started "
                "(its worker stopped: crash or restart). The meter may have "
                "acted: check it or retry.",
            )
        return lost

    @classmethod
    def _store_id(
        cls, job_id: int, result: MeterResult, deadline: float | None = None
    ) -> None:
        job = cls(job_id)
        job.deadline = deadline
        job._store(result)

    @classmethod
    def _store_failure_id(cls, job_id: int, message: str) -> None:
        cls(job_id)._store_failure('configuration', message)

    def _operation(self, config, attempts: int | None = None) -> Operation:
        data = self.data
        threshold = config.hes_clock_threshold or 10
        builders: dict[str, Callable[[], Operation]] = {
            'read': lambda: Operation(
                read_meter,
                {
                    'registers': data.get('registers', True),
                    'profile_hours': data.get(
                        'profile_hours', config.hes_profile_hours or 24
                    ),
                    'billing': data.get('billing', bool(data.get('on_demand'))),
                    'events': data.get('events', bool(data.get('on_demand'))),
                    'sync_threshold': threshold if data.get('sync_clock') else None,
                },
                label='read',
            ),
            'time_sync': lambda: Operation(
                sync_clock, {'threshold': threshold}, label='read'
            ),
            'relay': lambda: Operation(relay, {'action': data['action']}, label='read'),
            'load_limit': lambda: Operation(
                load_limit,
                # The values due when the job runs, not when it was queued.
                {
                    'values': self.meter.hes_limiter_target()
                    if data.get('write')
                    else None
                },
                label='read',
            ),
            'token': lambda: Operation(
                deliver_tokens,
                {'tokens': self._tokens(), 'retry': self._token_retry(attempts)},
                idempotent=False,
                label='read',
            ),
            'firmware': lambda: Operation(
                firmware_transfer,
                {
                    'identifier': self.firmware.identifier,
                    'image': bytes(self.firmware.image or b''),
                    'activate': self.firmware.activation == 'now',
                },
                idempotent=False,
                label='read',
            ),
            'firmware_activate': lambda: Operation(
                firmware_activate,
                {'identifier': self.firmware.identifier},
                idempotent=False,
                label='read',
            ),
        }
        return builders[self.kind]()

    def _tokens(self) -> list[str]:
        return self.command.hes_prepare_tokens()

    def _token_retry(self, attempts: int | None = None) -> bool:
        """Whether these digits may have reached the meter before: the job
        was claimed before (attempts are committed before the I/O) or the
        command was dispatched before."""
        attempts = self.attempts if attempts is None else attempts
        return attempts > 1 or (self.command.attempts or 0) > 1

    def _store(self, result: MeterResult) -> None:
        Meter = Pool().get('prepaid.meter')
        now = dt.datetime.now()
        meter_values: dict[str, Any] = {
            'hes_online': result.ok
            or result.error_kind not in {'timeout', 'connection'}
        }
        if result.ok or result.error_kind not in {'timeout', 'connection'}:
            meter_values['hes_last_contact'] = now
        meter_values['hes_last_error'] = (
            None if result.ok else ' '.join(_message(result.error).split())[:250]
        )
        with without_check_access():
            Meter.write([self.meter], meter_values)
        self.round_trips = result.round_trips
        self.duration = round(result.elapsed, 3)
        self.attempts += result.attempts - 1
        handler = getattr(self, f'_store_{self.kind}')
        if result.ok:
            summary = handler(result.results['read'])
            self.state = 'done'
            self.result = summary
            self.last_error = None
            self.error_kind = None
        else:
            self.state = 'failed'
            self.error_kind = result.error_kind
            self.last_error = _message(result.error)
            handler_failed = getattr(self, f'_failed_{self.kind}', None)
            if handler_failed:
                handler_failed(result.error)
        self.finished_at = now
        with without_check_access():
            self.save()
        self._notify_requester()

    def _store_failure(self, kind: str, message: str) -> None:
        self.state = 'failed'
        self.error_kind = kind
        self.last_error = message
        self.finished_at = dt.datetime.now()
        handler_failed = getattr(self, f'_failed_{self.kind}', None)
        if handler_failed:
            handler_failed(None, message)
        with without_check_access():
            self.save()
        self._notify_requester()

    def _notify_requester(self) -> None:
        """A notification to the web client whose button queued this job: the
        outcome shows when it arrives, even when a queue worker runs the job
        long after the click (trytond's bus, PostgreSQL; delivered on commit)."""
        client = self.data.get('client')
        if not client:
            return
        kind = dict(JOB_KINDS)[self.kind]
        notify(
            f"{self.meter.serial}: {kind} {self.state}",
            body=(self.result if self.state == 'done' else self.last_error) or '',
            priority=1 if self.state == 'done' else 3,
            client=client,
        )

    # --- storing results, one method per kind -----------------------------
    def _store_read(self, out: dict[str, Any]) -> str:
        Meter = Pool().get('prepaid.meter')
        meter = self.meter
        lines = [f"Meter clock {out['clock']:%Y-%m-%d %H:%M:%S} UTC"]
        meter_values: dict[str, Any] = {}
        if 'sync' in out:
            lines.append(self._record_sync(out['sync']))
        if 'registers' in out:
            when = rd.naive_utc(out['clock'])
            rows = [
                {
                    'obis': r.obis,
                    'timestamp': when,
                    'value': float(r.value),
                    'unit': r.unit_name,
                    'job': self.id,
                }
                for r in out['registers']
            ]
            rd.insert_new('prepaid.headend.register', meter.id, rows)
            lines += [
                f"{rd.OBIS_NAMES.get(r.obis, r.obis)}: {r.value} {r.unit_name}"
                for r in out['registers']
            ]
            if out.get('firmware'):
                meter_values['firmware_version'] = out['firmware']
        if 'profile' in out:
            (columns, rows), scalers = out['profile']
            created = rd.insert_new(
                'prepaid.headend.interval',
                meter.id,
                rd.profile_rows(columns, rows, scalers, self.id, with_consumption=True),
            )
            lines.append(
                f"Load profile: {len(rows)} intervals read, {created} values stored"
            )
        if 'billing' in out:
            (columns, rows), scalers = out['billing']
            created = rd.insert_new(
                'prepaid.headend.billing',
                meter.id,
                rd.profile_rows(columns, rows, scalers, self.id),
            )
            lines.append(
                f"Billing values: {len(rows)} periods read, {created} values stored"
            )
        if 'events' in out:
            events = []
            for log, entries in out['events'].items():
                for when, code in entries:
                    if when is None:
                        continue
                    events.append(
                        {
                            'log': log,
                            'timestamp': rd.naive_utc(when),
                            'code': code,
                            'description': rd.describe_event(code),
                            'job': self.id,
                        }
                    )
            alarm = out.get('alarm', 0)
            if alarm and alarm != meter.hes_alarm_register:
                events.append(
                    {
                        'log': 'alarm',
                        'timestamp': rd.naive_utc(out['clock']),
                        'code': alarm,
                        'description': rd.describe_alarm(alarm),
                        'job': self.id,
                    }
                )
            meter_values['hes_alarm_register'] = alarm
            created = rd.insert_new(
                'prepaid.headend.event',
                meter.id,
                events,
                key=('log', 'timestamp', 'code'),
            )
            lines.append(f"Events: {created} new")
        if 'billing_error' in out:
            lines.append(f"Billing values not read: {out['billing_error']}")
        if meter_values:
            with without_check_access():
                Meter.write([meter], meter_values)
        return "\n".join(lines)

    def _record_sync(self, sync: dict[str, Any]) -> str:
        pool = Pool()
        Sync = pool.get('prepaid.headend.clock_sync')
        Meter = pool.get('prepaid.meter')
        with without_check_access():
            Sync.create(
                [
                    {
                        'meter': self.meter.id,
                        'job': self.id,
                        'drift': round(sync['drift'], 3),
                        'corrected': sync['corrected'],
                        'drift_after': round(sync['after'], 3),
                    }
                ]
            )
            Meter.write([self.meter], {'hes_clock_drift': round(sync['after'], 3)})
        return f"Clock drift {sync['drift']:.1f} s" + (
            f", corrected (now {sync['after']:.1f} s)"
            if sync['corrected']
            else ", within the threshold"
        )

    def _store_time_sync(self, out: dict[str, Any]) -> str:
        return self._record_sync(out)

    def _store_relay(self, state: ops.RelayState) -> str:
        Meter = Pool().get('prepaid.meter')
        relay_state = CONTROL_STATE.get(state.control_state)
        with without_check_access():
            Meter.write([self.meter], {'hes_relay_state': relay_state})
        if self.relay:
            self.relay.job_done(state)
        return (
            f"Relay output {'on' if state.output_state else 'off'}, "
            f"control state {relay_state}"
        )

    def _failed_relay(self, error, message: str | None = None) -> None:
        if self.relay:
            self.relay.job_failed(message or _message(error))

    def _store_load_limit(self, out: dict[str, int]) -> str:
        Meter = Pool().get('prepaid.meter')
        with without_check_access():
            Meter.write(
                [self.meter],
                {
                    'hes_load_limit_read': out['active'],
                    'hes_limiter_read': json.dumps(out, sort_keys=True),
                },
            )
        return ", ".join(f"{k}: {v}" for k, v in out.items())

    def _store_token(self, out: dict[str, Any]) -> str:
        statuses, replayed, credit_wh = out['statuses'], out['replayed'], out['credit']
        self.command.hes_token_result(
            statuses, credit_wh, replayed=replayed, mismatch=out['mismatch']
        )
        return (
            "\n".join(
                f"Token {i + 1}: "
                + (
                    "already delivered by an earlier attempt"
                    if i in replayed
                    else f"{s.name} ({s.status})"
                )
                for i, s in enumerate(statuses)
            )
            + f"\nCredit in meter: {credit_wh} Wh"
        )

    def _failed_token(self, error, message: str | None = None) -> None:
        if self.command:
            # The error kind tells whether an automatic retry may help.
            self.command.hes_failed(message or _message(error), self.error_kind)

    def _store_firmware(self, out: dict[str, Any]) -> str:
        return self.firmware.transfer_done(out['previous'], out['result'])

    def _failed_firmware(self, error, message: str | None = None) -> None:
        if self.firmware:
            self.firmware.failed(
                message or _message(error), getattr(error, 'firmware_active', None)
            )

    def _store_firmware_activate(self, out: ops.FirmwareResult) -> str:
        return self.firmware.activated(out.active_firmware_id)

    _failed_firmware_activate = _failed_firmware


def _message(error: BaseException | None) -> str:
    if error is None:
        return ""
    if isinstance(error, DlmsError):
        return f"{error.kind}: {error}"
    message = getattr(error, 'message', None)
    return str(message or error)
