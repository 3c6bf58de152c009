"""The import job: a workbook imported at once or by a queued task, with
its progress, outcome and rejects file."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from trytond import backend
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from ..company import CompanyMixin
from ..workflow_only import WorkflowOnlyMixin
from .columns import COLUMNS, TEXT_FIELDS, Column
from .importer import import_rows
from .sheet import Limits, Sheet, check_upload, server_limits

logger = logging.getLogger(__name__)


def import_limits() -> Limits:
    """The limits of an upload: the system parameters, within the server's
    ceiling (sheet.server_limits)."""
    Configuration = Pool().get('prepaid.configuration')
    config = Configuration(1)
    ceiling = server_limits()
    rows = config.import_max_rows or ceiling.max_rows
    megabytes = config.import_max_megabytes or ceiling.megabytes
    return Limits(
        max_bytes=min(megabytes * (1 << 20), ceiling.max_bytes),
        max_rows=min(rows, ceiling.max_rows),
    )


JOB_STATES = [
    ('draft', "Draft"),
    ('queued', "Queued"),
    ('running', "Running"),
    ('done', "Done"),
    ('rejected', "Rejected"),
    ('failed', "Failed"),
]
MODES_SELECTION = [
    ('all', "All or nothing"),
    ('valid', "Valid rows only"),
]


class ImportJob(CompanyMixin, WorkflowOnlyMixin, ModelSQL, ModelView):
    """Import of a workbook of customers, service points and meters

    A client changes nothing on an import job: the import wizard creates it,
    the import writes its progress and outcome, and a draft or failed one
    is started again only through its Queue button; a client deletes only a
    draft job (WorkflowOnlyMixin)."""

    _client_delete_states = frozenset({'draft'})

    __name__ = 'prepaid.import.job'
    _rec_name = 'filename'

    filename = fields.Char("File Name", readonly=True)
    file = fields.Binary("File", filename='filename', readonly=True)
    mode = fields.Selection(MODES_SELECTION, "Mode", required=True, readonly=True)
    state = fields.Selection(JOB_STATES, "State", required=True, readonly=True)
    user = fields.Many2One('res.user', "User", readonly=True)
    submitted_at = fields.Timestamp("Submitted At", readonly=True)
    started_at = fields.Timestamp("Started At", readonly=True)
    finished_at = fields.Timestamp("Finished At", readonly=True)
    total_rows = fields.Integer("Total Rows", readonly=True)
    validated_rows = fields.Integer("Validated Rows", readonly=True)
    processed_rows = fields.Integer(
        "Processed Rows", readonly=True, help="Rows written or rejected so far."
    )
    imported_rows = fields.Integer("Imported Rows", readonly=True)
    rejected_rows = fields.Integer("Rejected Rows", readonly=True)
    progress = fields.Function(fields.Float("Progress", digits=(1, 2)), 'get_progress')
    parties_created = fields.Integer("Customers Created", readonly=True)
    service_points_created = fields.Integer("Service Points Created", readonly=True)
    meters_created = fields.Integer("Meters Created", readonly=True)
    rejects = fields.Binary(
        "Rejected Rows File", filename='rejects_filename', readonly=True
    )
    rejects_filename = fields.Char("Rejected Rows File Name", readonly=True)
    message = fields.Text("Message", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('submitted_at', 'DESC'))
        cls._buttons.update(
            {
                'queue': {
                    'invisible': ~Eval('state').in_(['draft', 'failed']),
                    'depends': ['state'],
                },
            }
        )

    @staticmethod
    def default_state():
        return 'draft'

    @staticmethod
    def default_mode():
        return 'all'

    @staticmethod
    def default_user():
        return Transaction().user

    @staticmethod
    def default_submitted_at():
        return dt.datetime.now()

    @classmethod
    def default_total_rows(cls):
        return 0

    @classmethod
    def default_validated_rows(cls):
        return 0

    @classmethod
    def default_processed_rows(cls):
        return 0

    @classmethod
    def default_imported_rows(cls):
        return 0

    @classmethod
    def default_rejected_rows(cls):
        return 0

    # -- what other modules add to the import (prepaid_sts: STS columns) --

    @classmethod
    def import_columns(cls) -> tuple[Column, ...]:
        "The workbook's columns (the template's, in its order)"
        return COLUMNS

    @classmethod
    def import_text_fields(cls) -> dict[str, tuple[str, str]]:
        "column -> (model, field) whose size bounds the column's text"
        return dict(TEXT_FIELDS)

    @classmethod
    def import_meter_values(
        cls,
        values: dict[str, str],
        kind: str | None,
        extra: dict[str, Any],
        err: Callable[[str], None],
    ) -> dict[str, Any]:
        """More values for the row's new meter, from its cells as text
        (values) and the meter kind; problems go to err.  extra is the
        import's own store for look-ups (loaded once)."""
        return {}

    def get_progress(self, name):
        if not self.total_rows:
            return 0.0
        return round(min(1.0, (self.processed_rows or 0) / self.total_rows), 2)

    @classmethod
    def check_modification(cls, mode, jobs, values=None, external=False):
        super().check_modification(mode, jobs, values=values, external=external)
        if mode == 'delete':
            for job in jobs:
                if job.state in {'queued', 'running'}:
                    raise AccessError(
                        gettext(
                            'prepaid_vending.msg_import_job_delete_running',
                            job=job.rec_name,
                        )
                    )

    @classmethod
    @ModelView.button
    def queue(cls, jobs):
        "Import the jobs in a queued task (workers or after the commit)"
        for job in jobs:
            if job.state not in {'draft', 'failed'}:
                raise UserError(
                    gettext(
                        'prepaid_vending.msg_import_job_not_queueable',
                        job=job.rec_name,
                        state=job.state,
                    )
                )
        cls.write(list(jobs), {'state': 'queued', 'message': None})
        with Transaction().set_context(
            prepaid_import_queued=True, queue_name='prepaid_import', queue_batch=1
        ):
            cls.__queue__.process(list(jobs))

    @classmethod
    def process(cls, jobs):
        """Run the imports.  From the queue, a failure marks the job failed
        instead of losing it; run directly (wizard), the error is raised."""
        queued = bool(Transaction().context.get('prepaid_import_queued'))
        for job in jobs:
            if queued and job.state not in {'queued', 'running'}:
                continue  # processed or re-queued meanwhile
            try:
                job._run(queued)
            except Exception as exception:
                if not queued:
                    raise
                logger.exception("import job %s failed", job.id)
                Transaction().rollback()
                cls._write_progress(
                    [cls(job.id)],
                    {
                        'state': 'failed',
                        'finished_at': dt.datetime.now(),
                        'message': str(
                            getattr(exception, 'message', None) or exception
                        ),
                    },
                )

    def _run(self, queued: bool) -> None:
        # On PostgreSQL a queued job reports progress in short side
        # transactions so the back office sees it while the import runs.
        # SQLite allows one writer at a time: there progress shows at the end.
        side = queued and backend.name == 'postgresql'
        cls = self.__class__
        job_id = self.id
        if side:
            # A job queued and run in one transaction (the tests, or a
            # worker-less setup running tasks before the commit) is not
            # visible from a side transaction: report in place then.
            with Transaction().new_transaction():
                side = bool(cls.search([('id', '=', job_id)], count=True))

        def update(**values: Any) -> None:
            if side:
                with Transaction().new_transaction():
                    cls._write_progress([cls(job_id)], values)
            else:
                cls._write_progress([cls(job_id)], values)

        limits = import_limits()
        check_upload(self.file, limits)
        sheet = Sheet(self.file, limits.max_rows)
        update(
            state='running',
            started_at=dt.datetime.now(),
            total_rows=sheet.declared_rows() or self.total_rows or 0,
            validated_rows=0,
            processed_rows=0,
        )

        def progress(validated: int, processed: int) -> None:
            update(
                total_rows=max(validated, self.total_rows or 0),
                validated_rows=validated,
                processed_rows=processed,
            )

        # The job's utility owns what it imports (defaults) and its numbers
        # are matched within it (load_lookups), whoever runs the task.
        with Transaction().set_context(company=self.company.id):
            result = import_rows(sheet.header, sheet, mode=self.mode, progress=progress)
        rejects = result.rejects_workbook()
        if side:
            # Commit the data, so the final job write below starts a fresh
            # snapshot and does not conflict with the progress updates.
            Transaction().commit()
        values = {
            'finished_at': dt.datetime.now(),
            'total_rows': result.total,
            'validated_rows': result.total,
            'processed_rows': result.total,
            'imported_rows': result.imported,
            'rejected_rows': len(result.rejected),
            'parties_created': result.parties,
            'service_points_created': result.service_points,
            'meters_created': result.meters,
            'rejects': rejects,
            'rejects_filename': (
                f'rejected-{self.filename or "import.xlsx"}'.rsplit('.', 1)[0] + '.xlsx'
                if rejects
                else None
            ),
        }
        if result.written:
            values['state'] = 'done'
            values['message'] = gettext(
                'prepaid_vending.msg_import_done',
                imported=result.imported,
                rejected=len(result.rejected),
            )
        else:
            values['state'] = 'rejected'
            values['processed_rows'] = len(result.rejected)
            values['message'] = gettext(
                'prepaid_vending.msg_import_all_or_nothing',
                rejected=len(result.rejected),
            )
        cls._write_progress([cls(job_id)], values)

    @classmethod
    def _write_progress(cls, jobs, values: dict[str, Any]) -> None:
        "The import's own record of its progress (no client may write it)"
        with without_check_access():
            cls.write(jobs, values)
