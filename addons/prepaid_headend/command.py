"""Execution of the ``prepaid.meter.command`` records queued by prepaid_vending.

- ``disconnect`` / ``reconnect`` (remote-prepaid billing) become relay
  operations with the command as origin; a disconnect is held back while the
  configured friendly calendar says so (``FriendlyCalendar.is_friendly``).
- ``remote_credit`` puts STS tokens into a smart meter through the token
  gateway (class 115): the tokens are the payload's ``token``/``tokens``, or are
  minted here with prepaid_sts for the payload's ``kwh``.  Minted tokens are
  written into the payload before anything is sent, so a retry re-sends the same
  tokens instead of minting new ones.  The meter's token status is recorded:
  accepted (3 execution OK) or rejected with its status code.

Commands are marked sent when their job is created and accepted / rejected /
failed from the job's outcome.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.transaction import without_check_access

from .dlms import operations as ops

HANDLED_KINDS = {'disconnect', 'reconnect', 'remote_credit'}


class MeterCommand(metaclass=PoolMeta):
    __name__ = 'prepaid.meter.command'

    hes_job = fields.Many2One(
        'prepaid.headend.job', "Head-End Job", readonly=True, ondelete='SET NULL'
    )
    hes_token_status = fields.Integer(
        "Meter Token Status",
        readonly=True,
        help="Token gateway status (class 115 attribute 6): 3 execution OK, "
        "4 format, 5 authentication, 6 validation, 7 execution failure.",
    )
    hes_token_status_name = fields.Function(
        fields.Char("Meter Token Status Name"), 'get_hes_token_status_name'
    )
    hes_meter_credit = fields.Float("Credit in Meter (Wh)", readonly=True)

    def get_hes_token_status_name(self, name):
        if self.hes_token_status is None:
            return None
        return ops.TOKEN_STATUS.get(self.hes_token_status, str(self.hes_token_status))

    @classmethod
    def hes_dispatch(cls, commands=None, now: dt.datetime | None = None) -> list:
        """Cron / direct call: turn pending commands into head-end jobs.

        Returns the jobs queued.  Commands of meters without a channel, of
        kinds the head-end does not execute, and disconnects inside a friendly
        period stay pending.
        """
        pool = Pool()
        Job = pool.get('prepaid.headend.job')
        Relay = pool.get('prepaid.headend.relay')
        Configuration = pool.get('prepaid.configuration')
        if commands is None:
            commands = cls.search(
                [
                    ('state', '=', 'pending'),
                    ('kind', 'in', list(HANDLED_KINDS)),
                    ('meter.hes_host', '!=', None),
                ]
            )
        config = Configuration(1)
        calendar = getattr(config, 'friendly_calendar', None)
        now = now or dt.datetime.now()
        jobs, sent = [], []
        with without_check_access():
            for command in commands:
                if (
                    command.state != 'pending'
                    or command.kind not in HANDLED_KINDS
                    or not command.meter.hes_host
                ):
                    continue
                if (
                    command.kind == 'disconnect'
                    and calendar
                    and calendar.is_friendly(now)
                ):
                    continue
                if command.kind in {'disconnect', 'reconnect'}:
                    data = command.data
                    reason = f"Remote prepaid: balance {data.get('balance', '?')}" + (
                        f" below {data['limit']}" if 'limit' in data else ""
                    )
                    (relay,) = Relay.create(
                        [
                            {
                                'meter': command.meter.id,
                                'action': command.kind,
                                'reason': reason,
                                'command': command.id,
                                'state': 'queued',
                            }
                        ]
                    )
                    new = Job.create_for(
                        [command.meter],
                        'relay',
                        {'action': command.kind},
                        relay=relay.id,
                        command=command.id,
                    )
                else:
                    new = Job.create_for(
                        [command.meter], 'token', {}, command=command.id
                    )
                command.hes_job = new[0]
                jobs += new
                sent.append(command)
            if sent:
                cls.save(sent)
                cls.mark_sent(sent)
        if jobs:
            Job.queue(jobs)
        return jobs

    # --- tokens -----------------------------------------------------------
    def hes_prepare_tokens(self) -> list[str]:
        """The tokens to enter, minted (and saved in the payload) if needed."""
        data = self.data
        tokens = list(data.get('tokens') or [])
        if data.get('token'):
            tokens.insert(0, data['token'])
        if tokens:
            return [t.replace(' ', '').replace('-', '') for t in tokens]
        if not data.get('kwh'):
            raise UserError(
                gettext('prepaid_headend.msg_command_no_token', command=self.id)
            )
        from trytond.modules.prepaid_sts.meter import TokenRequest

        kwh = Decimal(str(data['kwh']))
        records = self.meter.sts_issue_tokens(
            [
                TokenRequest(
                    'credit', 0, 0, amount=kwh, description=f"Remote credit {kwh} kWh"
                )
            ],
            reason='Remote token delivery',
            origin=self.vend or self.meter,
        )
        tokens = [t.digits for t in records]
        data['tokens'] = tokens
        with without_check_access():
            self.payload = json.dumps(data, sort_keys=True)
            self.save()
        return tokens

    def hes_token_result(self, statuses, credit_wh) -> None:
        last = statuses[-1] if statuses else None
        self.hes_token_status = last.status if last else None
        self.hes_meter_credit = float(credit_wh)
        with without_check_access():
            self.save()
        if last is not None and all(s.accepted for s in statuses):
            self.hes_accepted(f"token accepted, credit {credit_wh} Wh")
        else:
            name = last.name if last else "no status"
            self.hes_rejected(
                gettext(
                    'prepaid_headend.msg_token_rejected',
                    status=name,
                    code=last.status if last else '',
                )
            )

    # --- outcome ----------------------------------------------------------
    def hes_accepted(self, note: str = '') -> None:
        with without_check_access():
            if self.state == 'sent':
                self.__class__.mark_accepted([self])

    def hes_rejected(self, message: str) -> None:
        with without_check_access():
            if self.state == 'sent':
                self.__class__.mark_rejected([self], message)

    def hes_failed(self, message: str) -> None:
        with without_check_access():
            if self.state == 'sent':
                self.__class__.mark_failed([self], message)
