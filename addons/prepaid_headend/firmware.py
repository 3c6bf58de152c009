"""Remote firmware upgrade of one directly connected meter.

The image (as the manufacturer delivers it: for the project's meters the body
followed by its SHA-256) is uploaded on the record; ``start`` queues a job that
transfers it block by block, has the meter verify it and, for "activate now",
activates it and reads back the active firmware identifier.  "Activate at" stops
after verification and queues the activation as a queue task scheduled at that
time.  Any failure is recorded with the version the meter kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Workflow, fields
from trytond.modules.prepaid_sts.company import (
    fill_company_from,
)
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import without_check_access

STATES = [
    ('draft', "Draft"),
    ('queued', "Queued"),
    ('verified', "Verified, Awaiting Activation"),
    ('activated', "Activated"),
    ('failed', "Failed"),
]


class FirmwareUpgrade(CompanyMixin, Workflow, ModelSQL, ModelView):
    "Firmware upgrade of one meter"

    __name__ = 'prepaid.headend.firmware'
    __string__ = "Firmware Upgrade"

    _draft = {'readonly': Eval('state') != 'draft'}
    meter = fields.Many2One(
        'prepaid.meter',
        "Meter",
        required=True,
        ondelete='CASCADE',
        states=_draft,
        domain=[('company', '=', Eval('company', -1))],
    )
    identifier = fields.Char(
        "Image Identifier",
        size=128,
        required=True,
        states=_draft,
        help="Firmware identifier the meter reports once the image is active.",
    )
    image = fields.Binary("Image", required=True, filename='image_name', states=_draft)
    image_name = fields.Char("Image File Name", size=255, states=_draft)
    image_size = fields.Function(fields.Integer("Image Size"), 'get_image_info')
    image_sha256 = fields.Function(fields.Char("Image SHA-256"), 'get_image_info')
    activation = fields.Selection(
        [
            ('now', "Immediately"),
            ('at', "At a Given Time"),
        ],
        "Activation",
        required=True,
        states=_draft,
    )
    activate_at = fields.Timestamp(
        "Activate At",
        states={
            'required': Eval('activation') == 'at',
            'invisible': Eval('activation') != 'at',
            'readonly': Eval('state') != 'draft',
        },
    )
    state = fields.Selection(STATES, "State", required=True, readonly=True)
    previous_version = fields.Char("Previous Version", readonly=True)
    active_version = fields.Char("Active Version Read Back", readonly=True)
    blocks = fields.Integer("Blocks Transferred", readonly=True)
    error = fields.Text("Error", readonly=True)
    jobs = fields.One2Many('prepaid.headend.job', 'firmware', "Jobs", readonly=True)
    del _draft

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('id', 'DESC')]
        # No __access__ on the meter: Tryton would grant the wider of both
        # accesses, so every group that may write meters (the Vending
        # Operator too) could write these.  Their own access records decide.
        cls._transitions |= {
            ('draft', 'queued'),
            ('failed', 'queued'),
            ('queued', 'verified'),
            ('queued', 'activated'),
            ('queued', 'failed'),
            ('verified', 'activated'),
            ('verified', 'failed'),
        }
        cls._buttons.update(
            {
                'start': {
                    'invisible': ~Eval('state').in_(['draft', 'failed']),
                    'depends': ['state'],
                },
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
        return 'draft'

    @staticmethod
    def default_activation():
        return 'now'

    def get_rec_name(self, name):
        return f"{self.identifier} on {self.meter.serial}"

    @classmethod
    def get_image_info(cls, upgrades, names):
        result = {n: {} for n in names}
        for upgrade in upgrades:
            image = bytes(upgrade.image or b'')
            if 'image_size' in names:
                result['image_size'][upgrade.id] = len(image)
            if 'image_sha256' in names:
                result['image_sha256'][upgrade.id] = (
                    hashlib.sha256(image).hexdigest() if image else None
                )
        return result

    @classmethod
    @ModelView.button
    @Workflow.transition('queued')
    def start(cls, upgrades):
        Job = Pool().get('prepaid.headend.job')
        jobs = []
        for upgrade in upgrades:
            if not upgrade.image:
                raise UserError(
                    gettext(
                        'prepaid_headend.msg_firmware_no_image',
                        upgrade=upgrade.rec_name,
                    )
                )
            jobs += Job.create_for([upgrade.meter], 'firmware', {}, firmware=upgrade.id)
        cls.write(list(upgrades), {'error': None})
        Job.queue(jobs)

    def transfer_done(self, previous: str, result) -> str:
        Job = Pool().get('prepaid.headend.job')
        self.previous_version = previous
        self.blocks = result.blocks
        with without_check_access():
            self.save()
        if result.active_firmware_id is not None:
            return self.activated(result.active_firmware_id)
        with without_check_access():
            self._verified([self])
        when = self.activate_at or dt.datetime.now()
        delay = max(when - dt.datetime.now(), dt.timedelta(0))
        jobs = Job.create_for([self.meter], 'firmware_activate', {}, firmware=self.id)
        Job.queue(jobs, delay=delay)
        return (
            f"Image {self.identifier} transferred ({result.blocks} blocks) "
            f"and verified; activation at {when:%Y-%m-%d %H:%M} UTC"
        )

    def activated(self, active: str) -> str:
        Meter = Pool().get('prepaid.meter')
        self.active_version = active
        self.error = None
        with without_check_access():
            self.save()
            self._activated([self])
            Meter.write([self.meter], {'firmware_version': active})
        return f"Firmware {active} active (was {self.previous_version})"

    def failed(self, message: str, active: str | None = None) -> None:
        self.error = message
        if active:
            self.active_version = active
        with without_check_access():
            self.save()
            self._failed([self])

    @classmethod
    @Workflow.transition('verified')
    def _verified(cls, upgrades):
        pass

    @classmethod
    @Workflow.transition('activated')
    def _activated(cls, upgrades):
        pass

    @classmethod
    @Workflow.transition('failed')
    def _failed(cls, upgrades):
        pass
