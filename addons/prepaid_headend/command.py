"""Execution of the ``prepaid.meter.command`` records queued by prepaid_vending.

- ``disconnect`` / ``reconnect`` (remote-prepaid billing) become relay
  operations with the command as origin; a disconnect is held back while the
  configured friendly calendar says so (``FriendlyCalendar.is_friendly``).
- ``remote_credit`` puts STS tokens into a smart meter through the token
  gateway (class 115): the tokens are the payload's ``token``/``tokens``, or are
  minted by :meth:`MeterCommand.hes_dispatch` for the payload's ``kwh`` in a
  transaction of their own, committed BEFORE the job is queued (the STS meter
  lock is held for milliseconds, never across network I/O, and the token log,
  TID and digits survive whatever happens to the communication).  A dispatch
  that is retried finds the tokens already minted for the command in the token
  log and reuses them: one command, one set of TIDs.  The communication job
  only delivers the stored digits; a retry re-sends the same digits, and the
  meter's replay refusal (status 6) of a token it reports as its last one
  means "already delivered": accepted on retry, not rejected.

- ``low_credit_warning`` (remote-prepaid billing) is a message to the
  customer, not a meter operation: no SMS gateway or meter display object
  exists here, so the head-end publishes it through the MQTT bridge as an
  event (code :data:`LOW_CREDIT_CODE`, the balance and threshold in its
  text) on the meter's outbound topic ``prepaid/<site>/alarms/<serial>``,
  where a notification service subscribes.  Like the alarms it leaves after
  the commit (a broker failure is logged, the commit stands), and the
  command is marked sent and accepted.  With MQTT disabled the warning has
  nowhere to go and stays pending, like a command of a meter without a
  channel.

Commands are marked sent when their job is created and accepted / rejected /
failed from the job's outcome.

Remote credit of a vend is dispatched by a queue task pushed in the vend's
transaction (:meth:`MeterCommand.queue`): it runs right after the vend
commits (in the web server's process when no queue worker is configured, as
in the demo), and the every-minute cron remains the retry.  A delivery that
fails because the meter did not answer (time-out, connection) is sent again
by the cron after 1, 2, 4 ... minutes (at most :data:`CREDIT_RETRY_LIMIT`
sends, an hour apart at most: the same digits, which the meter accepts once).
A delivery that fails for good -- the meter refused the token, the retries
ran out, or the command could not be sent at all (keys, STS data) -- raises
an alarm: an event "Remote credit not delivered" (code
:data:`reading.DELIVERY_FAILED_CODE`) in the meter's events and alarms,
published over MQTT like the meter's own alarms, and a notification to every
Vending Manager.

Before any of this, every quote and vend asks
:meth:`Meter.vend_delivery_problems`: a smart prepaid meter sold remote credit
needs a channel, the keys of its authentication and its STS data (the credit
is an STS token entered through the token gateway), else the sale is refused
before any money is taken.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import fields
from trytond.modules.prepaid_sts.company import context_company_domain
from trytond.modules.prepaid_vending.credit import wall_clock
from trytond.modules.prepaid_vending.transactions import autonomous_for, run_committed
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access

from . import mqtt_bridge
from . import reading as rd
from .dlms import operations as ops
from .mqtt import EventMessage, encode
from .mqtt.topics import alarm_topic

#: Executed through the meter's channel.
HANDLED_KINDS = {'disconnect', 'reconnect', 'remote_credit'}
#: Published to the customer-notification side (MQTT), no meter channel needed.
NOTICE_KINDS = {'low_credit_warning'}
#: Event code of a published low-credit warning (outside the IDIS codes and
#: the simulator's 200-204, see reading.EVENT_CODES).
LOW_CREDIT_CODE = 230
#: Job error kinds after which a remote credit is sent again automatically:
#: the meter did not answer, or too slowly (a cut-off at the deadline on a
#: poor link), so it may simply be out of reach for a while.
RETRY_ERROR_KINDS = frozenset({'timeout', 'connection', 'deadline', 'lost'})
#: Sends of one remote credit (the first and the automatic retries).
CREDIT_RETRY_LIMIT = 8
#: Longest wait between two automatic sends.
CREDIT_RETRY_MAX_WAIT = dt.timedelta(hours=1)
#: Key material each authentication needs (encrypted columns of the meter).
AUTH_SECRETS = {
    'lls': [('hes_password_cipher', "LLS password / HLS secret")],
    'hls-md5': [('hes_password_cipher', "LLS password / HLS secret")],
    'hls-gmac': [
        ('hes_block_cipher_key_cipher', "block cipher key"),
        ('hes_authentication_key_cipher', "authentication key"),
    ],
}


def credit_retry_wait(sends: int) -> dt.timedelta:
    "Wait before the next send of a remote credit sent ``sends`` times"
    return min(dt.timedelta(minutes=2 ** max(sends - 1, 0)), CREDIT_RETRY_MAX_WAIT)


class Meter(metaclass=PoolMeta):
    __name__ = 'prepaid.meter'

    def vend_delivery_problems(self) -> list[str]:
        problems = super().vend_delivery_problems()
        if self.kind == 'smart_prepaid' and self.payment_mode == 'prepaid':
            problems += self.hes_channel_problems()
            problems += self.sts_receive_problems()
        return problems

    def hes_channel_problems(self) -> list[str]:
        """Why the head-end could not talk to this meter, each with its fix
        (settings only: no communication, no decryption)."""
        if not self.hes_has_channel():
            return [gettext('prepaid_headend.msg_no_channel', meter=self.serial)]
        needed = AUTH_SECRETS.get(self.hes_auth, [])
        if not needed:
            return []
        with without_check_access():
            (row,) = self.__class__.read([self.id], [f for f, _ in needed])
        return [
            gettext('prepaid_headend.msg_secret_missing', meter=self.serial, secret=n)
            for f, n in needed
            if not row[f]
        ]


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
    hes_accepted_on_retry = fields.Boolean(
        "Accepted on Retry",
        readonly=True,
        help="The meter refused a re-sent token as already used and reports it "
        "as its last token: an earlier attempt delivered it.",
    )
    hes_retry_at = fields.Timestamp(
        "Automatic Retry",
        readonly=True,
        help="When the head-end sends this failed command again by itself "
        "(the meter did not answer); empty: no automatic retry.",
    )

    @classmethod
    def queue(cls, meter, kind: str, payload: dict, vend=None, origin=None):
        """Queue the command; a remote credit is also handed to a queue task
        that dispatches it as soon as the vend commits (see the module
        docstring)."""
        command = super().queue(meter, kind, payload, vend=vend, origin=origin)
        if kind == 'remote_credit' and meter.hes_has_channel():
            with Transaction().set_context(queue_name='headend'):
                cls.__queue__.hes_dispatch([command])
        return command

    def delivery_retry_at(self):
        if self.state == 'failed' and not self.reconciled_undelivered:
            return self.hes_retry_at
        return None

    @classmethod
    def hes_retry_due(cls, now: dt.datetime | None = None) -> list:
        """Failed remote credits whose automatic retry is due, put back to
        pending (cron, before dispatching)."""
        now = now or dt.datetime.now()
        with without_check_access():
            due = cls.search(
                [
                    ('state', '=', 'failed'),
                    ('kind', '=', 'remote_credit'),
                    ('hes_retry_at', '<=', now),
                    ('reconciled_undelivered', '!=', True),
                    *context_company_domain('meter.company'),
                ]
            )
            if due:
                cls.write(due, {'hes_retry_at': None})
                cls.retry(due)
        return due

    @classmethod
    def mark_failed(cls, commands, error: str, retry_at=None):
        """Failed: sent again at retry_at (naive UTC) by the cron, or, without
        one, a remote credit raises the delivery alarm."""
        with without_check_access():
            cls.write(list(commands), {'hes_retry_at': retry_at})
        super().mark_failed(commands, error)
        if retry_at is None:
            cls.hes_delivery_alarm(commands, error)

    @classmethod
    def mark_rejected(cls, commands, error: str):
        super().mark_rejected(commands, error)
        cls.hes_delivery_alarm(commands, error)

    @classmethod
    def hes_delivery_alarm(cls, commands, error: str) -> None:
        """Remote credit that will not reach the meter by itself: an event in
        the meter's alarms (published over MQTT) and a notification to every
        Vending Manager."""
        pool = Pool()
        User = pool.get('res.user')
        Notification = pool.get('res.notification')
        ModelData = pool.get('ir.model.data')
        commands = [c for c in commands if c.kind == 'remote_credit']
        if not commands:
            return
        now = rd.naive_utc(dt.datetime.now())
        text = ' '.join((error or '').split())
        with without_check_access():
            managers = User.search(
                [
                    (
                        'groups',
                        '=',
                        ModelData.get_id('prepaid_vending', 'group_manager'),
                    ),
                ]
            )
            notifications = []
            for command in commands:
                vend = command.vend.number if command.vend else f"#{command.id}"
                description = gettext(
                    'prepaid_headend.msg_delivery_alarm',
                    meter=command.meter.serial,
                    vend=vend,
                    error=text,
                )
                rd.insert_new(
                    'prepaid.headend.event',
                    command.meter.id,
                    [
                        {
                            'log': 'standard',
                            'timestamp': now,
                            'code': rd.DELIVERY_FAILED_CODE,
                            'description': description[:250],
                        }
                    ],
                    key=('log', 'timestamp', 'code'),
                )
                notifications += [
                    {
                        'user': user.id,
                        'label': gettext(
                            'prepaid_headend.msg_delivery_alarm_label',
                            meter=command.meter.serial,
                        ),
                        'description': description,
                        'icon': 'tryton-warning',
                        'model': cls.__name__,
                        'records': json.dumps([command.id]),
                    }
                    for user in managers
                ]
            if notifications:
                Notification.create(notifications)

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
            # Cron: the automatic retries that are due are pending again.
            cls.hes_retry_due(now)
            commands = cls.search(
                [
                    ('state', '=', 'pending'),
                    # Cron runs per company: this company's meters only.
                    *context_company_domain('meter.company'),
                    [
                        'OR',
                        [
                            ('kind', 'in', list(HANDLED_KINDS)),
                            ('meter.hes_reachable', '=', True),
                        ],
                        ('kind', 'in', list(NOTICE_KINDS)),
                    ],
                ]
            )
        config = Configuration(1)
        notices = [
            c for c in commands if c.state == 'pending' and c.kind in NOTICE_KINDS
        ]
        if notices:
            cls.hes_publish_notices(notices)
        calendar = getattr(config, 'friendly_calendar', None)
        now = now or dt.datetime.now()
        jobs, sent, credit_jobs = [], [], []
        with without_check_access():
            for command in commands:
                if (
                    command.state == 'pending'
                    and command.kind == 'remote_credit'
                    and command.meter.hes_has_channel()
                ):
                    autonomous = autonomous_for(
                        cls.__name__, [command.id]
                    ) and autonomous_for('prepaid.meter', [command.meter.id])
                    try:
                        job_id = run_committed(
                            cls._hes_dispatch_credit,
                            command.id,
                            autonomous,
                            autonomous=autonomous,
                        )
                    except UserError as error:
                        # This command only: the others are still dispatched.
                        cls.mark_failed([command], error.message)
                        continue
                    if job_id is not None:
                        credit_jobs.append(job_id)
                        if not autonomous:
                            jobs.append(Job(job_id))
                    continue
                if (
                    command.state != 'pending'
                    or command.kind not in HANDLED_KINDS
                    or not command.meter.hes_has_channel()
                ):
                    continue
                if (
                    command.kind == 'disconnect'
                    and calendar
                    and calendar.is_friendly(wall_clock(now))
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
                                'company': command.meter.company.id,
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
                    continue  # remote credit: handled above
                command.hes_job = new[0]
                jobs += new
                sent.append(command)
            if sent:
                cls.save(sent)
                cls.mark_sent(sent)
        if jobs:
            Job.queue(jobs)
        queued = {j.id for j in jobs}
        return jobs + Job.browse([i for i in credit_jobs if i not in queued])

    @classmethod
    def hes_publish_notices(cls, commands) -> list:
        """Queue the warnings for MQTT publication after the commit and mark
        them accepted; returns the commands published (none with MQTT off)."""
        with without_check_access():
            publisher = mqtt_bridge.alarm_manager()
            if publisher is None:
                return []
            manager, site = publisher
            for command in commands:
                message = command.hes_notice_message()
                manager.messages.append(
                    (
                        alarm_topic(site, message.serial),
                        encode(message),
                        f"{message.serial} low credit (command {command.id})",
                    )
                )
            cls.mark_sent(commands)
            cls.mark_accepted(commands)
        return list(commands)

    def hes_notice_message(self) -> EventMessage:
        data = self.data
        return EventMessage(
            serial=self.meter.serial,
            timestamp=self.created_at.replace(microsecond=0, tzinfo=dt.UTC),
            source='hes',
            kind='event',
            code=LOW_CREDIT_CODE,
            log='standard',
            text=(
                f"Low credit: balance {data.get('balance', '?')} "
                f"below {data.get('threshold', '?')}"
            ),
        )

    @classmethod
    def _hes_dispatch_credit(cls, command_id: int, queue: bool) -> int | None:
        """Mint (or find back) the tokens, create the job, mark the command
        sent and, with ``queue``, queue the job: one transaction, committed
        by the caller on PostgreSQL before any I/O.  Doing it all here keeps
        the dispatching transaction off the meter row the mint just updated
        (it would fail to serialise under REPEATABLE READ)."""
        Job = Pool().get('prepaid.headend.job')
        command = cls(command_id)
        if command.state != 'pending':
            return None
        with without_check_access():
            command.hes_mint_tokens(autonomous=False)
            (job,) = Job.create_for([command.meter], 'token', {}, command=command.id)
            command.hes_job = job
            command.save()
            cls.mark_sent([command])
        if queue:
            Job.queue([job])
        return job.id

    # --- tokens -----------------------------------------------------------
    @property
    def hes_token_reason(self) -> str:
        "Reason of the token log lines minted for this command (finds them back)"
        return f"Remote token delivery (command {self.id})"

    @staticmethod
    def _clean(tokens) -> list[str]:
        return [t.replace(' ', '').replace('-', '') for t in tokens]

    def _stored_tokens(self) -> list[str]:
        data = self.data
        tokens = list(data.get('tokens') or [])
        if data.get('token'):
            tokens.insert(0, data['token'])
        return self._clean(tokens)

    def hes_mint_tokens(self, autonomous: bool | None = None) -> list[str]:
        """Mint the command's tokens, committed before any network I/O.

        Tokens already in the payload are kept; otherwise the token log is
        searched for tokens minted for this command by an earlier dispatch
        whose transaction did not commit (they are reused, never re-minted),
        and only then new ones are minted -- on PostgreSQL in a transaction
        of their own, committed at once.  The digits go into the payload."""
        tokens = self._stored_tokens()
        if tokens:
            return tokens
        if not self.data.get('kwh'):
            raise UserError(
                gettext('prepaid_headend.msg_command_no_token', command=self.id)
            )
        cls = self.__class__
        if autonomous is None:
            autonomous = autonomous_for(cls.__name__, [self.id]) and autonomous_for(
                'prepaid.meter', [self.meter.id]
            )
        tokens = run_committed(cls._hes_mint, self.id, autonomous=autonomous)
        data = self.data
        data['tokens'] = tokens
        with without_check_access():
            self.payload = json.dumps(data, sort_keys=True)
            self.save()
        return tokens

    @classmethod
    def _hes_mint(cls, command_id: int) -> list[str]:
        pool = Pool()
        Token = pool.get('prepaid.sts.token')
        command = cls(command_id)
        reason = command.hes_token_reason
        with without_check_access():
            minted = Token.search(
                [('meter', '=', command.meter.id), ('reason', '=', reason)],
                order=[('tid', 'ASC')],
            )
            if minted:
                return [t.digits for t in minted]
        from trytond.modules.prepaid_sts.meter import TokenRequest

        kwh = Decimal(str(command.data['kwh']))
        records = command.meter.sts_issue_tokens(
            [
                TokenRequest(
                    'credit', 0, 0, amount=kwh, description=f"Remote credit {kwh} kWh"
                )
            ],
            reason=reason,
            origin=command.vend or command.meter,
        )
        return [t.digits for t in records]

    def hes_prepare_tokens(self) -> list[str]:
        """The stored tokens to enter (never minted here: see hes_mint_tokens)."""
        tokens = self._stored_tokens()
        if not tokens:
            raise UserError(
                gettext('prepaid_headend.msg_command_no_token', command=self.id)
            )
        return tokens

    def hes_token_result(
        self,
        statuses,
        credit_wh,
        replayed: list[int] | None = None,
        mismatch: bool = False,
    ) -> None:
        replayed = replayed or []
        last = statuses[-1] if statuses else None
        self.hes_token_status = last.status if last else None
        self.hes_meter_credit = float(credit_wh)
        self.hes_accepted_on_retry = bool(replayed)
        with without_check_access():
            self.save()
        if last is not None and all(
            s.accepted or i in replayed for i, s in enumerate(statuses)
        ):
            self.hes_accepted(f"token accepted, credit {credit_wh} Wh")
        elif mismatch:
            self.hes_rejected(gettext('prepaid_headend.msg_token_replay_mismatch'))
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

    def hes_failed(self, message: str, error_kind: str | None = None) -> None:
        """The job failed: a remote credit the meter did not answer for is
        sent again later (``credit_retry_wait``), up to CREDIT_RETRY_LIMIT."""
        retry_at = None
        if (
            self.kind == 'remote_credit'
            and error_kind in RETRY_ERROR_KINDS
            and (self.attempts or 0) < CREDIT_RETRY_LIMIT
        ):
            retry_at = dt.datetime.now() + credit_retry_wait(self.attempts or 1)
        with without_check_access():
            if self.state == 'sent':
                self.__class__.mark_failed([self], message, retry_at=retry_at)
