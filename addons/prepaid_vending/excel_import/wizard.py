"""The import wizard: upload a workbook (the template offered), import it
at once or queue it above the configured threshold, show the outcome."""

from __future__ import annotations

from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool
from trytond.transaction import without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from ..access import require_wizard_groups
from .columns import check_header, template_workbook
from .job import JOB_STATES, MODES_SELECTION, import_limits
from .sheet import Sheet, check_upload


class ImportStart(ModelView):
    __name__ = 'prepaid.import.wizard.start'

    file = fields.Binary(
        "Workbook",
        filename='filename',
        required=True,
        help="An .xlsx or .xls workbook laid out as the template.",
    )
    filename = fields.Char("File Name")
    mode = fields.Selection(
        MODES_SELECTION,
        "Mode",
        required=True,
        help="All or nothing: one rejected row means nothing is imported.\n"
        "Valid rows only: the valid rows are imported, the others returned.",
    )
    template = fields.Binary("Template", filename='template_name', readonly=True)
    template_name = fields.Char("Template Name", readonly=True)
    limits = fields.Char("Limits", readonly=True)


class ImportResultView(ModelView):
    __name__ = 'prepaid.import.wizard.result'

    job = fields.Many2One('prepaid.import.job', "Job", readonly=True)
    state = fields.Selection(JOB_STATES, "State", readonly=True)
    total_rows = fields.Integer("Total Rows", readonly=True)
    imported_rows = fields.Integer("Imported Rows", readonly=True)
    rejected_rows = fields.Integer("Rejected Rows", readonly=True)
    rejects = fields.Binary(
        "Rejected Rows File", filename='rejects_filename', readonly=True
    )
    rejects_filename = fields.Char("Rejected Rows File Name", readonly=True)
    message = fields.Text("Message", readonly=True)


class ImportWizard(Wizard):
    "Import customers, service points and meters from a workbook"

    __name__ = 'prepaid.import.wizard'

    start = StateView(
        'prepaid.import.wizard.start',
        'prepaid_vending.import_wizard_start_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Import", 'import_', 'tryton-ok', default=True),
        ],
    )
    import_ = StateTransition()
    result = StateView(
        'prepaid.import.wizard.result',
        'prepaid_vending.import_wizard_result_view_form',
        [
            Button("Close", 'end', 'tryton-close', default=True),
        ],
    )

    def default_start(self, fields):
        limits = import_limits()
        return {
            'mode': 'all',
            'limits': gettext(
                'prepaid_vending.msg_import_limits',
                rows=limits.max_rows,
                megabytes=limits.megabytes,
            ),
            'template': template_workbook(),
            'template_name': 'prepaid-import-template.xlsx',
        }

    def transition_import_(self):
        # Second line: the context cannot widen the groups checked here.
        require_wizard_groups(self.__name__)
        pool = Pool()
        Job = pool.get('prepaid.import.job')
        Configuration = pool.get('prepaid.configuration')
        threshold = Configuration(1).import_queue_threshold or 0
        data = bytes(self.start.file or b'')
        # Refused before anything is stored or read row by row.
        limits = import_limits()
        check_upload(data, limits)
        sheet = Sheet(data, limits.max_rows)
        check_header(sheet.header)
        rows = sheet.declared_rows()
        if rows is None:
            rows = sheet.count()
        job = Job(
            filename=self.start.filename or 'import.xlsx',
            file=data,
            mode=self.start.mode,
            total_rows=rows,
        )
        # The job is the wizard's record: no client creates or writes one.
        with without_check_access():
            job.save()
        self.result.job = job
        if threshold and rows > threshold:
            Job.queue([job])
            Job._write_progress(
                [job],
                {'message': gettext('prepaid_vending.msg_import_queued', rows=rows)},
            )
        else:
            Job.process([job])
        return 'result'

    def default_result(self, fields):
        job = self.result.job
        job = job.__class__(job.id)
        return {
            'job': job.id,
            'state': job.state,
            'total_rows': job.total_rows,
            'imported_rows': job.imported_rows,
            'rejected_rows': job.rejected_rows,
            'rejects': job.rejects,
            'rejects_filename': job.rejects_filename,
            'message': job.message,
        }
