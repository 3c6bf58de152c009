"""Firmware campaigns: one image rolled out to many meters in waves.

A Metering Engineer drafts a campaign (image, target identifier, activation
now or at a time, which meters: model, current firmware version, feeder), a
wave size and a failure threshold.  Start selects the meters into lines (a
meter already on the target version is skipped) and upgrades the first wave;
each meter's upgrade is an ordinary ``prepaid.headend.firmware`` record, so
the transfer, verification, activation and read-back are those of one meter
(directly over TCP or through the meter's concentrator).

``advance`` (cron, and the end of every upgrade of a campaign) takes the
outcomes into the lines; once the current wave is over, a failure rate above
the threshold pauses the campaign with the failures named (a failed line
shows the version the meter kept: the meter rolled back), otherwise the next
wave starts, and the campaign is done when no line is left.  Resume accepts
the finished wave and goes on; Cancel skips the lines not started (upgrades
under way finish and are recorded).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Workflow, fields
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.modules.prepaid_vending.workflow_only import WorkflowOnlyMixin
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import without_check_access

STATES = [
    ('draft', "Draft"),
    ('running', "Running"),
    ('paused', "Paused"),
    ('done', "Done"),
    ('cancelled', "Cancelled"),
]
OUTCOMES = [
    ('pending', "Pending"),
    ('in_progress', "In Progress"),
    ('activated', "Activated"),
    ('failed', "Failed (Kept Its Version)"),
    ('skipped', "Skipped"),
]
#: The line's outcome from the state of its meter's upgrade.
UPGRADE_OUTCOME = {
    'draft': 'in_progress',
    'queued': 'in_progress',
    'verified': 'in_progress',
    'activated': 'activated',
    'failed': 'failed',
}
#: Failed meters named in the message of a paused campaign; the lines show all.
MAX_NAMED = 20
#: What a client may give or change, in a draft only (WorkflowOnlyMixin).
DRAFT_FIELDS = frozenset(
    {
        'company',
        'name',
        'identifier',
        'image',
        'image_name',
        'activation',
        'activate_at',
        'meter_model',
        'from_version',
        'feeder',
        'wave_size',
        'failure_threshold',
    }
)


def wave_over_threshold(failed: int, total: int, threshold: Decimal) -> bool:
    """Whether ``failed`` of ``total`` devices exceed ``threshold`` percent
    (0: any failure pauses; 100: none does)."""
    return total > 0 and failed * 100 > threshold * total


def waves(count: int, size: int) -> list[int]:
    "The wave number (from 1) of each of ``count`` devices, ``size`` a wave."
    if size < 1:
        raise ValueError(f"wave size must be positive: {size}")
    return [i // size + 1 for i in range(count)]


class Campaign(CompanyMixin, WorkflowOnlyMixin, Workflow, ModelSQL, ModelView):
    "Firmware campaign"

    __name__ = 'prepaid.headend.firmware.campaign'
    __string__ = "Firmware Campaign"
    _client_create = DRAFT_FIELDS
    _client_fields = {'draft': DRAFT_FIELDS}
    _client_delete_states = frozenset({'draft'})

    _draft = {'readonly': Eval('state') != 'draft'}
    name = fields.Char("Name", required=True, size=128, states=_draft)
    identifier = fields.Char(
        "Image Identifier",
        size=128,
        required=True,
        states=_draft,
        help="Firmware identifier the meters report once the image is active.",
    )
    image = fields.Binary("Image", filename='image_name', states=_draft)
    image_name = fields.Char("Image File Name", size=255, states=_draft)
    activation = fields.Selection(
        [('now', "Immediately"), ('at', "At a Given Time")],
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
    meter_model = fields.Char(
        "Meter Model", size=64, states=_draft, help="Empty: any model."
    )
    from_version = fields.Char(
        "Current Firmware Version",
        size=64,
        states=_draft,
        help="Only the meters on this version; empty: any.",
    )
    feeder = fields.Many2One(
        'prepaid.feeder',
        "Feeder",
        ondelete='RESTRICT',
        states=_draft,
        domain=[('company', '=', Eval('company', -1))],
        help="Only the meters installed on this feeder; empty: any.",
    )
    wave_size = fields.Integer(
        "Wave Size",
        required=True,
        states=_draft,
        domain=[('wave_size', '>', 0)],
        help="Meters upgraded together before the outcomes are weighed.",
    )
    failure_threshold = fields.Numeric(
        "Failure Threshold (%)",
        digits=(5, 2),
        required=True,
        states=_draft,
        domain=[('failure_threshold', '>=', 0), ('failure_threshold', '<=', 100)],
        help="Share of a wave's meters that may fail; above it the campaign pauses.",
    )
    state = fields.Selection(STATES, "State", required=True, readonly=True)
    current_wave = fields.Integer("Current Wave", readonly=True)
    lines = fields.One2Many(
        'prepaid.headend.firmware.campaign.line', 'campaign', "Meters", readonly=True
    )
    message = fields.Text("Message", readonly=True)
    del _draft

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('id', 'DESC')]
        cls._transitions |= {
            ('draft', 'running'),
            ('running', 'paused'),
            ('paused', 'running'),
            ('running', 'done'),
            ('draft', 'cancelled'),
            ('running', 'cancelled'),
            ('paused', 'cancelled'),
        }
        cls._buttons.update(
            {
                'start': {
                    'invisible': Eval('state') != 'draft',
                    'depends': ['state'],
                },
                'pause': {
                    'invisible': Eval('state') != 'running',
                    'depends': ['state'],
                },
                'resume': {
                    'invisible': Eval('state') != 'paused',
                    'depends': ['state'],
                },
                'cancel': {
                    'invisible': ~Eval('state').in_(['draft', 'running', 'paused']),
                    'depends': ['state'],
                },
            }
        )

    @staticmethod
    def default_state():
        return 'draft'

    @staticmethod
    def default_activation():
        return 'now'

    @staticmethod
    def default_wave_size():
        return 10

    @staticmethod
    def default_failure_threshold():
        return Decimal(0)

    # --- selection ----------------------------------------------------------
    def meter_domain(self) -> list:
        "The meters the campaign's criteria select."
        domain = [
            ('company', '=', self.company.id),
            ('kind', '=', 'smart_prepaid'),
            ('state', 'not in', ['scrapped', 'removed']),
        ]
        if self.meter_model:
            domain.append(('model', '=', self.meter_model))
        if self.from_version:
            domain.append(('firmware_version', '=', self.from_version))
        if self.feeder:
            domain.append(('service_point.transformer.feeder', '=', self.feeder.id))
        return domain

    def select_meters(self):
        Meter = Pool().get('prepaid.meter')
        with without_check_access():
            return Meter.search(self.meter_domain(), order=[('serial', 'ASC')])

    # --- buttons ------------------------------------------------------------
    @classmethod
    @ModelView.button
    def start(cls, campaigns):
        """Select the meters into lines and upgrade the first wave.  A meter
        already on the target version, or in another campaign not over, is
        skipped."""
        Line = Pool().get('prepaid.headend.firmware.campaign.line')
        drafts = [c for c in campaigns if c.state == 'draft']
        cls.lock(drafts)
        for campaign in drafts:
            if not campaign.image:
                raise UserError(
                    gettext(
                        'prepaid_headend.msg_campaign_no_image',
                        campaign=campaign.rec_name,
                    )
                )
            meters = campaign.select_meters()
            if not meters:
                raise UserError(
                    gettext(
                        'prepaid_headend.msg_campaign_no_meter',
                        campaign=campaign.rec_name,
                    )
                )
            busy = campaign._busy_meters(meters)
            todo, skipped = [], []
            for meter in meters:
                if meter.firmware_version == campaign.identifier:
                    skipped.append((meter, "Already on the target version"))
                elif meter.id in busy:
                    skipped.append((meter, f"In campaign {busy[meter.id]}"))
                else:
                    todo.append(meter)
            with without_check_access():
                Line.create(
                    [
                        {
                            'campaign': campaign.id,
                            'meter': m.id,
                            'wave': wave,
                            'outcome': 'pending',
                            'version_before': m.firmware_version,
                        }
                        for m, wave in zip(
                            todo, waves(len(todo), campaign.wave_size), strict=True
                        )
                    ]
                    + [
                        {
                            'campaign': campaign.id,
                            'meter': m.id,
                            'outcome': 'skipped',
                            'version_before': m.firmware_version,
                            'message': why[:255],
                        }
                        for m, why in skipped
                    ]
                )
        with without_check_access():
            cls.write(drafts, {'current_wave': 0, 'message': None})
        cls._run(drafts)
        for campaign in cls.browse(drafts):
            campaign._next_wave()

    def _busy_meters(self, meters) -> dict[int, str]:
        "The meters of another campaign not over: meter id -> that campaign"
        Line = Pool().get('prepaid.headend.firmware.campaign.line')
        with without_check_access():
            lines = Line.search(
                [
                    ('meter', 'in', [m.id for m in meters]),
                    ('campaign', '!=', self.id),
                    ('campaign.state', 'in', ['running', 'paused']),
                    ('outcome', 'in', ['pending', 'in_progress']),
                ]
            )
            return {ln.meter.id: ln.campaign.rec_name for ln in lines}

    @classmethod
    @Workflow.transition('running')
    def _run(cls, campaigns):
        pass

    @classmethod
    @ModelView.button
    @Workflow.transition('paused')
    def pause(cls, campaigns):
        pass

    @classmethod
    @ModelView.button
    def resume(cls, campaigns):
        """Accept the finished wave (its failures included) and go on; a wave
        still under way is weighed when it is over."""
        paused = [c for c in campaigns if c.state == 'paused']
        cls.lock(paused)
        cls._resume(paused)
        for campaign in cls.browse(paused):
            if not campaign._wave_under_way():
                campaign._next_wave()

    @classmethod
    @ModelView.button
    @Workflow.transition('cancelled')
    def cancel(cls, campaigns):
        Line = Pool().get('prepaid.headend.firmware.campaign.line')
        with without_check_access():
            lines = Line.search(
                [
                    ('campaign', 'in', [c.id for c in campaigns]),
                    ('outcome', '=', 'pending'),
                ]
            )
            Line.write(lines, {'outcome': 'skipped', 'message': "Campaign cancelled"})

    @classmethod
    @Workflow.transition('running')
    def _resume(cls, campaigns):
        with without_check_access():
            cls.write(list(campaigns), {'message': None})

    @classmethod
    @Workflow.transition('paused')
    def _paused(cls, campaigns):
        pass

    @classmethod
    @Workflow.transition('done')
    def _done(cls, campaigns):
        pass

    # --- progress -------------------------------------------------------------
    @classmethod
    def advance(cls, campaigns: Sequence | None = None) -> None:
        """Take the upgrades' outcomes into the lines and, for a running
        campaign whose wave is over, pause it or start the next wave (cron
        every few minutes, and the end of each upgrade of a campaign)."""
        pool = Pool()
        Line = pool.get('prepaid.headend.firmware.campaign.line')
        with without_check_access():
            if campaigns is None:
                lines = Line.search([('outcome', '=', 'in_progress')])
                campaigns = cls.search(
                    [
                        'OR',
                        ('state', '=', 'running'),
                        ('id', 'in', list({ln.campaign.id for ln in lines})),
                    ]
                )
            campaigns = cls.browse(campaigns)
            cls.lock(campaigns)
            Line.sync(
                Line.search(
                    [
                        ('campaign', 'in', [c.id for c in campaigns]),
                        ('outcome', '=', 'in_progress'),
                    ]
                )
            )
            for campaign in cls.browse(campaigns):
                if campaign.state != 'running' or campaign._wave_under_way():
                    continue
                wave = [ln for ln in campaign.lines if ln.wave == campaign.current_wave]
                failed = [ln for ln in wave if ln.outcome == 'failed']
                if wave_over_threshold(
                    len(failed), len(wave), campaign.failure_threshold
                ):
                    campaign._pause_for(failed, len(wave))
                else:
                    campaign._next_wave()

    def _wave_under_way(self) -> bool:
        return any(
            ln.outcome == 'in_progress'
            for ln in self.lines
            if ln.wave == self.current_wave
        )

    def _pause_for(self, failed, total: int) -> None:
        failures = '; '.join(
            f"{ln.meter.serial}: kept {ln.version_after or '?'}"
            + (f" ({ln.message})" if ln.message else '')
            for ln in failed[:MAX_NAMED]
        )
        if len(failed) > MAX_NAMED:
            failures += f"; and {len(failed) - MAX_NAMED} more (see the lines)"
        self.message = gettext(
            'prepaid_headend.msg_campaign_paused',
            wave=self.current_wave,
            failed=len(failed),
            total=total,
            threshold=self.failure_threshold,
            failures=failures,
        )
        with without_check_access():
            self.save()
            self._paused([self])

    def _next_wave(self) -> None:
        """Upgrade the meters of the next wave with pending lines, or finish."""
        pool = Pool()
        Line = pool.get('prepaid.headend.firmware.campaign.line')
        Upgrade = pool.get('prepaid.headend.firmware')
        pending = [ln for ln in self.lines if ln.outcome == 'pending']
        if not pending:
            with without_check_access():
                self._done([self])
            return
        number = min(ln.wave for ln in pending)
        lines = [ln for ln in pending if ln.wave == number]
        with without_check_access():
            upgrades = Upgrade.create(
                [
                    {
                        'company': self.company.id,
                        'meter': ln.meter.id,
                        'identifier': self.identifier,
                        'image': self.image,
                        'image_name': self.image_name,
                        'activation': self.activation,
                        'activate_at': self.activate_at,
                    }
                    for ln in lines
                ]
            )
            for line, upgrade in zip(lines, upgrades, strict=True):
                line.upgrade = upgrade
                line.outcome = 'in_progress'
            Line.save(lines)
            self.current_wave = number
            self.save()
            Upgrade.start(upgrades)


class CampaignLine(WorkflowOnlyMixin, ModelSQL, ModelView):
    "Meter of a firmware campaign"

    __name__ = 'prepaid.headend.firmware.campaign.line'
    __string__ = "Firmware Campaign Meter"
    # The campaign's code makes and updates them; a client only reads.

    campaign = fields.Many2One(
        'prepaid.headend.firmware.campaign',
        "Campaign",
        required=True,
        ondelete='CASCADE',
        readonly=True,
    )
    meter = fields.Many2One(
        'prepaid.meter', "Meter", required=True, ondelete='RESTRICT', readonly=True
    )
    wave = fields.Integer("Wave", readonly=True)
    outcome = fields.Selection(OUTCOMES, "Outcome", required=True, readonly=True)
    upgrade = fields.Many2One(
        'prepaid.headend.firmware', "Upgrade", readonly=True, ondelete='SET NULL'
    )
    version_before = fields.Char("Version Before", size=64, readonly=True)
    version_after = fields.Char(
        "Version Now",
        size=64,
        readonly=True,
        help="Read back from the meter: the new version, or the one it kept "
        "(rolled back) after a failure.",
    )
    message = fields.Char("Message", size=255, readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('campaign')
        cls._order = [('wave', 'ASC NULLS LAST'), ('id', 'ASC')]

    def _workflow_state_value(self) -> str | None:
        return self.campaign.state

    @staticmethod
    def default_outcome():
        return 'pending'

    @classmethod
    def sync(cls, lines) -> None:
        "Take each line's outcome from its meter's upgrade."
        for line in lines:
            upgrade = line.upgrade
            if not upgrade:
                continue
            line.outcome = UPGRADE_OUTCOME[upgrade.state]
            if upgrade.previous_version:
                line.version_before = upgrade.previous_version
            if line.outcome == 'activated':
                line.version_after = upgrade.active_version
                line.message = None
            elif line.outcome == 'failed':
                # The version the meter reported after the failure (it
                # rolled back), else the one it had before (a meter never
                # reached keeps the version it was selected with).
                line.version_after = (
                    upgrade.active_version
                    or upgrade.previous_version
                    or line.version_before
                )
                line.message = ' '.join((upgrade.error or '').split())[:250] or None
        with without_check_access():
            cls.save(list(lines))


class FirmwareUpgrade(metaclass=PoolMeta):
    __name__ = 'prepaid.headend.firmware'

    def activated(self, active: str) -> str:
        result = super().activated(active)
        self._advance_campaign()
        return result

    def failed(self, message: str, active: str | None = None) -> None:
        super().failed(message, active)
        self._advance_campaign()

    def _advance_campaign(self) -> None:
        "The end of a campaign's upgrade may end its wave."
        pool = Pool()
        Line = pool.get('prepaid.headend.firmware.campaign.line')
        Campaign = pool.get('prepaid.headend.firmware.campaign')
        with without_check_access():
            lines = Line.search([('upgrade', '=', self.id)])
        if lines:
            Campaign.advance(list({ln.campaign for ln in lines}))


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            (
                'prepaid.headend.firmware.campaign|advance',
                "Advance Firmware Campaigns",
            )
        )
