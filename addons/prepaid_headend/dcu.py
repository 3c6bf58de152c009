"""Data concentrators (DCUs): the concentrator, its data collectors, its meter
directory, the reports it delivered, its events and the input refused from
it (docs/concentrators.md section 9).

A concentrator's id (``dc_id``, the common name of its certificate) is
unique in the installation, not per company: the head-end's service learns
who calls from the certificate alone, before it knows any company.

The online status is kept by the head-end's service (every authorised call
is a contact) and by a cron that marks a concentrator offline once it has
been silent longer than its reporting window, with an alarm event.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from pathlib import Path

from sql import Literal, Null
from sql.conditionals import Coalesce
from trytond import config
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin,
    Index,
    ModelSQL,
    ModelView,
    Unique,
    fields,
)
from trytond.modules.prepaid_vending.append_only import AppendOnlyMixin
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.modules.prepaid_vending.fingerprint import FingerprintMixin
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from .concentrator.client import ConcentratorClient
from .concentrator.tls import PeerPin, Reloading, client_context_pem

STATES = [
    ('unknown', "Never Contacted"),
    ('online', "Online"),
    ('offline', "Offline"),
]
COMMUNICATION = [
    (None, ""),
    ('never_joined', "Never Joined"),
    ('joined', "Joined"),
    ('lost', "Lost"),
    ('removed', "Removed"),
]
APPROVAL = [
    ('pending', "Pending"),
    ('approved', "Approved"),
    ('refused', "Refused"),
]
REPORT_KINDS = [('soap', "SOAP Report"), ('file', "Report File")]
REJECTIONS = [
    ('identity', "Not Authorised"),
    ('soap', "SOAP Message"),
    ('report', "Report Payload"),
    ('file', "Report File"),
]

#: Events the head-end raises about a concentrator (group 100: the groups
#: below 100 are the concentrator's own, docs/concentrators.md section 8).
HEADEND_GROUP = 100
EV_REFUSED_IDENTITY = 1  # unknown concentrator, other or revoked certificate
EV_REFUSED_INPUT = 2  # malformed or oversized input
EV_OFFLINE = 3  # silent past its reporting window
EV_ONLINE = 4  # heard from again after being offline
HEADEND_EVENTS = {
    EV_REFUSED_IDENTITY: "Concentrator refused (identity)",
    EV_REFUSED_INPUT: "Input from concentrator refused",
    EV_OFFLINE: "Concentrator silent past its reporting window",
    EV_ONLINE: "Concentrator back online",
}
#: Concentrator events (group, code) that are alarms (section 8).
DC_ALARMS = frozenset({(4, 16), (4, 18), (4, 20), (6, 2), (6, 5), (6, 7)})


def now() -> dt.datetime:
    "Naive UTC, to the second, as Tryton stores timestamps"
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


#: trytond.conf [prepaid_headend]: the concentrators' CA and its CRL (PEM
#: files, public).  The head-end's own certificate and private key are in the
#: Communication Settings, the key encrypted with the master key.
TLS_OPTIONS = ('dcu_ca', 'dcu_crl')
_contexts: dict[tuple, Reloading] = {}


def headend_tls() -> Reloading:
    """The head-end's client TLS context, rebuilt when the CA or CRL file
    changes, and anew when the certificate or key is replaced (only the
    current one is kept)."""
    Communication = Pool().get('prepaid.headend.communication')
    ca, crl = (config.get('prepaid_headend', o, default='') for o in TLS_OPTIONS)
    try:
        cert, key = Communication(1).dcu_credentials()
    except ValueError:
        cert = key = b''
    if not (cert and key and ca):
        raise UserError(gettext('prepaid_headend.msg_concentrator_tls_missing'))
    wanted = (hashlib.sha256(cert + key).hexdigest(), ca, crl)
    if wanted not in _contexts:
        _contexts.clear()
        _contexts[wanted] = Reloading(
            functools.partial(client_context_pem, cert, key),
            Path(ca),
            Path(crl) if crl else None,
        )
    return _contexts[wanted]


class Concentrator(
    CompanyMixin, FingerprintMixin, DeactivableMixin, ModelSQL, ModelView
):
    "Data Concentrator"

    __name__ = 'prepaid.concentrator'
    __string__ = "Concentrator"
    _fingerprint_field = 'certificate_fingerprint'
    _fingerprint_error = 'prepaid_headend.msg_concentrator_fingerprint'
    _rec_name = 'dc_id'
    _company_links = ('transformer',)

    dc_id = fields.Char(
        "Concentrator Id",
        size=64,
        required=True,
        strip=True,
        help="The id it reports (IdDC), the common name of its certificate.",
    )
    serial = fields.Char("Serial Number", size=64)
    model = fields.Char("Model", size=64)
    firmware_version = fields.Char("Firmware Version", size=64)
    location = fields.Char("Location", size=255)
    transformer = fields.Many2One(
        'prepaid.transformer',
        "Transformer",
        ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        help="The transformer (substation) the concentrator sits at.",
    )
    url = fields.Char(
        "Service URL", size=255, help="https:// URL of the concentrator's service."
    )
    certificate_fingerprint = fields.Char(
        "Certificate SHA-256",
        size=64,
        strip=True,
        help="SHA-256 of its registered client certificate (DER), in hex: "
        "another certificate, even from the same CA, is refused.",
    )
    certificate_revoked = fields.Boolean(
        "Certificate Revoked",
        help="Refuse the registered certificate (also revoke it at the CA).",
    )
    reporting_window = fields.Integer(
        "Reporting Window (min)",
        required=True,
        domain=[('reporting_window', '>', 0)],
        help="Silent longer than this, the concentrator is marked offline.",
    )
    state = fields.Selection(STATES, "Status", readonly=True, required=True)
    offline_since = fields.Timestamp("Offline Since (UTC)", readonly=True)
    last_contact = fields.Timestamp("Last Contact (UTC)", readonly=True)
    last_report = fields.Timestamp("Last Report (UTC)", readonly=True)
    signal = fields.Integer(
        "Signal (dBm)", readonly=True, help="Backhaul signal when last reported."
    )
    clock = fields.Timestamp(
        "Clock (UTC)", readonly=True, help="Its clock in its last parameters."
    )
    collectors = fields.One2Many(
        'prepaid.concentrator.collector', 'concentrator', "Data Collectors"
    )
    directory = fields.One2Many(
        'prepaid.concentrator.directory', 'concentrator', "Meter Directory"
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'dc_id_unique',
                Unique(t, t.dc_id),
                'prepaid_headend.msg_concentrator_unique',
            ),
        ]
        cls._sql_indexes.add(Index(t, (t.state, Index.Equality())))
        cls._order.insert(0, ('dc_id', 'ASC'))
        cls._buttons.update(
            {
                'sync_clock': {
                    'invisible': ~Eval('active', True),
                    'depends': ['active'],
                },
                'send_collection_plan': {
                    'invisible': ~Eval('active', True),
                    'depends': ['active'],
                },
            }
        )

    @staticmethod
    def default_state():
        return 'unknown'

    @staticmethod
    def default_reporting_window():
        # The default collection plan sends events every hour.
        return 180

    @staticmethod
    def default_certificate_revoked():
        return False

    def client(self) -> ConcentratorClient:
        """The head-end's client of this concentrator, pinned to its id and
        registered certificate (a concentrator whose certificate is revoked
        or unknown is never called)."""
        if self.certificate_revoked or not self.certificate_fingerprint:
            raise UserError(
                gettext(
                    'prepaid_headend.msg_concentrator_not_callable',
                    concentrator=self.dc_id,
                )
            )
        if not self.url:
            raise UserError(
                gettext(
                    'prepaid_headend.msg_concentrator_no_url',
                    concentrator=self.dc_id,
                )
            )
        pin = PeerPin(
            frozenset({self.dc_id}), frozenset({self.certificate_fingerprint})
        )
        return ConcentratorClient(self.url, headend_tls(), peer=pin)

    @classmethod
    @ModelView.button
    def sync_clock(cls, concentrators):
        "Set their clocks (and their meters' beyond the threshold) now"
        cls._order_now(concentrators, 'time_sync', 'msg_order_reason_sync')

    @classmethod
    @ModelView.button
    def send_collection_plan(cls, concentrators):
        "Their collection plans from the reading schedules, sent now"
        cls._order_now(concentrators, 'collection_plan', 'msg_order_reason_plan')

    @classmethod
    def _order_now(cls, concentrators, kind: str, reason: str) -> None:
        # The button is the check (its groups): the order is created and
        # sent as the head-end, as the Send button of a drafted order does.
        Order = Pool().get('prepaid.concentrator.order')
        with without_check_access():
            for concentrator in concentrators:
                Order.create_and_send(
                    concentrator, kind, gettext(f'prepaid_headend.{reason}')
                )

    def contact(self, moment: dt.datetime, report: bool = False) -> None:
        "Record an authorised call (the caller saves)"
        if self.state == 'offline':
            Event = Pool().get('prepaid.concentrator.event')
            Event.raise_alarm(
                self, EV_ONLINE, f"offline since {self.offline_since}", alarm=False
            )
        self.state = 'online'
        self.offline_since = None
        self.last_contact = moment
        if report:
            self.last_report = moment

    @classmethod
    def mark_offline(cls, moment: dt.datetime | None = None) -> list:
        """Concentrators silent past their reporting window: offline since
        their last contact, with an alarm (cron)."""
        moment = moment or now()
        Event = Pool().get('prepaid.concentrator.event')
        silent = []
        for record in cls.search([('state', '=', 'online')]):
            deadline = record.last_contact + dt.timedelta(
                minutes=record.reporting_window
            )
            if deadline < moment:
                silent.append(record)
        for record in silent:
            record.state = 'offline'
            record.offline_since = record.last_contact
            Event.raise_alarm(
                record,
                EV_OFFLINE,
                f"last contact {record.last_contact}, window "
                f"{record.reporting_window} min",
            )
        cls.save(silent)
        return silent


class Collector(ModelSQL, ModelView):
    "Data collector behind a concentrator (RS485 meters on a G3 node)"

    __name__ = 'prepaid.concentrator.collector'
    __string__ = "Data Collector"
    _rec_name = 'code'

    concentrator = fields.Many2One(
        'prepaid.concentrator', "Concentrator", required=True, ondelete='CASCADE'
    )
    code = fields.Char(
        "Collector Id", size=64, required=True, help="As the concentrator names it."
    )
    serial = fields.Char("Serial Number", size=64)
    model = fields.Char("Model", size=64)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'concentrator_code_unique',
                Unique(t, t.concentrator, t.code),
                'prepaid_headend.msg_collector_unique',
            ),
        ]
        cls.__access__.add('concentrator')


class DirectoryEntry(ModelSQL, ModelView):
    "Meter in a concentrator's directory"

    __name__ = 'prepaid.concentrator.directory'
    __string__ = "Meter Directory Entry"
    _rec_name = 'meter_id'

    concentrator = fields.Many2One(
        'prepaid.concentrator',
        "Concentrator",
        required=True,
        ondelete='CASCADE',
        readonly=True,
    )
    meter_id = fields.Char(
        "Meter Id", size=64, required=True, readonly=True, help="As reported."
    )
    meter = fields.Many2One(
        'prepaid.meter',
        "Meter",
        ondelete='SET NULL',
        readonly=True,
        help="The meter of that serial in the concentrator's company.",
    )
    pda = fields.Char(
        "G3 Address (PDA)", size=64, readonly=True, help="System title, hex."
    )
    short_address = fields.Integer("G3 Short Address", readonly=True)
    hops = fields.Integer("Hops", readonly=True)
    collector = fields.Many2One(
        'prepaid.concentrator.collector',
        "Data Collector",
        ondelete='SET NULL',
        readonly=True,
    )
    joined_at = fields.Timestamp("Joined (UTC)", readonly=True)
    last_seen = fields.Timestamp("Last Seen (UTC)", readonly=True)
    status = fields.Selection(COMMUNICATION, "Communication", readonly=True)
    status_time = fields.Timestamp(
        "Status Time (UTC)",
        readonly=True,
        help="Time of the status update in force (the latest wins).",
    )
    approval = fields.Selection(APPROVAL, "Approval", required=True)
    topology_mismatch = fields.Function(
        fields.Boolean(
            "Topology Mismatch",
            help="The meter's service point is on another transformer than "
            "the concentrator.",
        ),
        'get_topology_mismatch',
        searcher='search_topology_mismatch',
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'concentrator_meter_unique',
                Unique(t, t.concentrator, t.meter_id),
                'prepaid_headend.msg_directory_unique',
            ),
        ]
        cls._sql_indexes.add(Index(t, (t.meter, Index.Equality())))
        cls._order = [('concentrator', 'ASC'), ('meter_id', 'ASC'), ('id', 'ASC')]
        cls.__access__.add('concentrator')

    @staticmethod
    def default_approval():
        return 'pending'

    @classmethod
    def _mismatch_query(cls):
        "(entry id, mismatch) for every entry: one query, searchable"
        pool = Pool()
        entry = cls.__table__()
        dcu = pool.get('prepaid.concentrator').__table__()
        installation = pool.get('prepaid.meter.installation').__table__()
        point = pool.get('prepaid.service_point').__table__()
        current = installation.join(
            point, condition=installation.service_point == point.id
        ).select(
            installation.meter,
            point.transformer,
            where=installation.removed_on == Null,
        )
        query = (
            entry.join(dcu, condition=entry.concentrator == dcu.id)
            .join(current, 'LEFT', condition=current.meter == entry.meter)
            .select(
                entry.id.as_('id'),
                (
                    (dcu.transformer != Null)
                    & (current.transformer != Null)
                    & (current.transformer != dcu.transformer)
                ).as_('mismatch'),
            )
        )
        return query

    @classmethod
    def get_topology_mismatch(cls, entries, name):
        result = {e.id: False for e in entries}
        query = cls._mismatch_query()
        cursor = Transaction().connection.cursor()
        cursor.execute(*query.select(query.id, query.mismatch))
        for id_, mismatch in cursor:
            if id_ in result:
                result[id_] = bool(mismatch)
        return result

    @classmethod
    def search_topology_mismatch(cls, name, clause):
        _, operator, value = clause[:3]
        if operator not in ('=', '!='):
            return []
        wanted = bool(value) if operator == '=' else not value
        query = cls._mismatch_query()
        flag = Coalesce(query.mismatch, Literal(False))
        return [('id', 'in', query.select(query.id, where=flag == Literal(wanted)))]


class ReceivedReport(AppendOnlyMixin, ModelSQL, ModelView):
    """A report or report file received from a concentrator, once per
    (concentrator, report id, payload SHA-256), a file once per SHA-256."""

    __name__ = 'prepaid.concentrator.report'
    __string__ = "Concentrator Report"

    concentrator = fields.Many2One(
        'prepaid.concentrator',
        "Concentrator",
        required=True,
        ondelete='RESTRICT',
        readonly=True,
    )
    kind = fields.Selection(REPORT_KINDS, "Kind", required=True, readonly=True)
    key = fields.Char("Key", required=True, readonly=True)
    report_id = fields.Integer("Report Id", readonly=True)
    id_pet = fields.Integer("Request (IdPet)", readonly=True)
    report_type = fields.Char("Report Type", readonly=True)
    version = fields.Char("Version", readonly=True)
    generated = fields.Timestamp("Generated (UTC)", readonly=True)
    received = fields.Timestamp("Received (UTC)", readonly=True)
    sha256 = fields.Char("SHA-256", readonly=True)
    file_name = fields.Char("File Name", readonly=True)
    data = fields.Binary(
        "File", readonly=True, help="The report file as received (gzip), for audit."
    )
    size = fields.Integer("Size (bytes)", readonly=True)
    rows = fields.Integer("Rows", readonly=True)
    stored = fields.Integer("Readings Stored", readonly=True)
    unknown_meters = fields.Text(
        "Unknown Meters", readonly=True, help="Meter ids of no meter of the company."
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('key_unique', Unique(t, t.key), 'prepaid_headend.msg_report_unique'),
        ]
        cls._order = [('received', 'DESC'), ('id', 'DESC')]
        cls.__access__.add('concentrator')

    @classmethod
    def ingest(cls, reports):
        """Queue task: store the readings of the report files received and
        not ingested yet (``stored`` empty); a task run again (retried,
        queued twice) finds them ingested and does nothing."""
        from . import dcu_backend  # it imports this module

        cls.lock(reports)
        # Read again under the lock: another worker may have ingested them.
        for report in cls.browse([r.id for r in reports]):
            if report.kind == 'file' and report.stored is None:
                dcu_backend.ingest_file(report)


class AboutConcentratorMixin:
    """A log row about a concentrator that may be unknown to the head-end (a
    refused certificate, an id of no record): the id it claimed is kept."""

    __slots__ = ()
    concentrator = fields.Many2One(
        'prepaid.concentrator', "Concentrator", ondelete='CASCADE', readonly=True
    )
    company = fields.Many2One(
        'company.company', "Company", ondelete='CASCADE', readonly=True
    )
    dc_id = fields.Char("Concentrator Id", readonly=True)


class ConcentratorEvent(AboutConcentratorMixin, AppendOnlyMixin, ModelSQL, ModelView):
    """An event of a concentrator (its dc_events reports) or an alarm the
    head-end raises about one (refused certificate or input, offline)."""

    __name__ = 'prepaid.concentrator.event'
    __string__ = "Concentrator Event"

    timestamp = fields.Timestamp("Timestamp (UTC)", required=True, readonly=True)
    group = fields.Integer("Group", required=True, readonly=True)
    code = fields.Integer("Code", required=True, readonly=True)
    meter_id = fields.Char("Meter Id", readonly=True)
    detail = fields.Char("Detail", readonly=True)
    alarm = fields.Boolean("Alarm", readonly=True)
    key = fields.Char("Key", readonly=True, help="What makes a reported event unique.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('key_unique', Unique(t, t.key), 'prepaid_headend.msg_dc_event_unique'),
        ]
        cls._sql_indexes.add(
            Index(t, (t.concentrator, Index.Equality()), (t.timestamp, Index.Range()))
        )
        cls._order = [('timestamp', 'DESC'), ('id', 'DESC')]

    @classmethod
    def raise_alarm(
        cls,
        concentrator,
        code: int,
        detail: str,
        *,
        dc_id: str | None = None,
        alarm: bool = True,
    ):
        "An event of the head-end about a concentrator (known or not)"
        (event,) = cls.create(
            [
                {
                    'concentrator': concentrator.id if concentrator else None,
                    'company': concentrator.company.id if concentrator else None,
                    'dc_id': concentrator.dc_id if concentrator else dc_id,
                    'timestamp': now(),
                    'group': HEADEND_GROUP,
                    'code': code,
                    'detail': detail[:255],
                    'alarm': alarm,
                }
            ]
        )
        return event


class Rejection(AboutConcentratorMixin, AppendOnlyMixin, ModelSQL, ModelView):
    "Input the head-end's concentrator service refused, kept for audit"

    __name__ = 'prepaid.concentrator.rejection'
    __string__ = "Refused Concentrator Input"

    common_name = fields.Char("Certificate Name", readonly=True)
    fingerprint = fields.Char("Certificate SHA-256", readonly=True)
    what = fields.Selection(REJECTIONS, "Refused", readonly=True)
    reason = fields.Text("Reason", readonly=True)
    field = fields.Char("Field", readonly=True)
    name = fields.Char("Name", readonly=True)
    data = fields.Binary("Received", readonly=True)
    received = fields.Timestamp("Received (UTC)", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('received', 'DESC'), ('id', 'DESC')]


class RequestStatus(AppendOnlyMixin, ModelSQL, ModelView):
    "A request or order status a concentrator reported (UpdateRequestStatus)"

    __name__ = 'prepaid.concentrator.request_status'
    __string__ = "Concentrator Request Status"

    concentrator = fields.Many2One(
        'prepaid.concentrator',
        "Concentrator",
        required=True,
        ondelete='CASCADE',
        readonly=True,
    )
    id_pet = fields.Integer("Request (IdPet)", required=True, readonly=True)
    status = fields.Char("Status", required=True, readonly=True)
    message = fields.Text("Message", readonly=True)
    outcomes = fields.Text("Outcomes", readonly=True, help="One line per meter.")
    received = fields.Timestamp("Received (UTC)", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(t, (t.concentrator, Index.Equality()), (t.id_pet, Index.Equality()))
        )
        cls._order = [('received', 'DESC'), ('id', 'DESC')]
        cls.__access__.add('concentrator')


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            ('prepaid.concentrator|mark_offline', "Mark Silent Concentrators Offline")
        )


# The concentrator service's routes register with trytond's WSGI app when
# trytond loads these models: the package's __init__ imports no trytond, so
# that its pure cores (dlms/, concentrator/, mqtt/) import alone.
from . import routes  # noqa: E402,F401
