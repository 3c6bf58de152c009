"""Communication channel of a meter and the invocation counters in the database.

The channel lives on ``prepaid.meter`` (PoolMeta): a direct TCP channel (host,
port), or, for a meter without one, the DLMS gateway of the concentrator whose
directory lists it (``dcu_route.py``). Secrets (LLS password / HLS secret,
block cipher key, authentication key) are write-only fields stored encrypted
with the master key of ``prepaid_sts.masterkey``, like the STS vending keys;
only the execution code decrypts them, under ``without_check_access``. Nobody
reads the ciphertexts (field access denied to every group); only Key
Custodians and Administrators may enter secrets (through the "Enter Keys"
wizard: custodians have no write access on meters), and only they may move the
channel (host, port) of a meter that has secrets, with an audit line:
repointing the host would otherwise harvest the LLS password or an HLS-MD5
challenge. Metering Engineers set the channel when they commission a meter,
before its keys are entered.

The authentication of a meter that has secrets is never lowered (HLS-GMAC to
LLS, HLS-MD5 to LLS...), by anyone: the weaker mechanism would send the
stored password in clear, and meters themselves only ever strengthen their
security policy (Blue Book, security setup).  A meter replaced by one of a
lower level is a meter change, with a new meter record.

The key fingerprint (and the list of meters sharing a key) is shown to Key
Custodians and Administrators only: it is keyed with a constant so that the
invocation-counter sequences survive a master-key change, so anyone could
compute the fingerprint of a well-known key (the DLMS UA test keys) and
compare.  Field access also stops searching and ordering on it.

The invocation counters of the AES-GCM frames are kept in
``prepaid.headend.invocation_counter`` per (client system title, block cipher
key fingerprint), not per meter: the GCM nonce is system title || counter, so
meters sharing a key share one sequence (see ``dlms.counters``).  A meter
whose key is shared by other meters shows it on its channel
(``hes_key_shared``).  :class:`DatabaseCounterStore` hands
them out in blocks taken under a row lock (``SELECT ... FOR UPDATE`` on
PostgreSQL) in an autonomous transaction that commits before the counters are
used, so two workers never use the same counter and a rolled back job never
gives its counters back.  On SQLite (one writer at a time, the demo and the
tests) the block is taken in the caller's transaction: a second connection
could not write while the caller holds the database lock.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from typing import Any

from sql.aggregate import Max
from trytond import backend
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.model.exceptions import AccessError, ValidationError
from trytond.model.modelsql import SQLConstraintError
from trytond.modules.prepaid_sts import masterkey
from trytond.modules.prepaid_vending import fastpath
from trytond.modules.prepaid_vending.limits import RangeMixin
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval, Id
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .dlms.counters import (
    MAX_INVOCATION_COUNTER,
    CounterExhausted,
    counter_key,
    key_fingerprint,
)
from .dlms.session import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, ConnectionSettings

# The fast path updates a meter's last STS TID (prepaid_sts): these hooks
# look at the head-end fields only when they are written.
fastpath.know_hook(
    'prepaid_headend.channel.Meter.check_modification',
    'run (host, port and authentication changes)',
)
fastpath.know_hook(
    'prepaid_headend.channel.Meter.validate_fields',
    'run (system title and host, when written)',
)
fastpath.know_hook(
    'prepaid_headend.channel.Meter.write',
    'checks who writes the DLMS secrets, which the fast path never writes',
)

FRAMINGS = [('wrapper', "WRAPPER (TCP/UDP, port 4059)"), ('hdlc', "HDLC over TCP")]
AUTHENTICATIONS = [
    ('none', "None (public client)"),
    ('lls', "Low (LLS password)"),
    ('hls-md5', "High (HLS-MD5 secret)"),
    ('hls-gmac', "High (HLS-GMAC, security suite 0)"),
]
# Usual client SAPs of the project's meters (docs/dlms.md section 3).
DEFAULT_CLIENT_ADDRESS = {'none': 16, 'lls': 32, 'hls-md5': 1, 'hls-gmac': 1}
#: Strength of each authentication: a meter with secrets never goes down.
AUTH_LEVEL = {'none': 0, 'lls': 1, 'hls-md5': 2, 'hls-gmac': 3}
CHANNEL_RANGES = {
    'hes_port': (1, 65535),
    'hes_client_address': (1, 0x7F),  # client SAP: one byte, 7 bits on HDLC
    'hes_server_address': (1, 0x3FFF),  # logical device (14 bits on HDLC)
    'hes_timeout': (0.1, 600.0),
    'hes_deadline': (1.0, 3600.0),
}
DEFAULT_SYSTEM_TITLE = b'PPSHES01'.hex().upper()
RELAY_STATES = [
    (None, ""),
    ('connected', "Connected"),
    ('disconnected', "Disconnected"),
    ('ready', "Ready for Reconnection"),
]
CONTROL_STATE = {0: 'disconnected', 1: 'connected', 2: 'ready'}
SECRET_FIELDS = {
    # write-only field -> stored cipher field
    'hes_password': 'hes_password_cipher',
    'hes_block_cipher_key': 'hes_block_cipher_key_cipher',
    'hes_authentication_key': 'hes_authentication_key_cipher',
}
_hes_states = {'invisible': ~Eval('hes_host')}
# Buttons that call the meter: a direct channel or a concentrator's gateway.
_reachable = {'invisible': ~Eval('hes_reachable'), 'depends': ['hes_reachable']}
# Counter rows of the first release were keyed per meter.
LEGACY_COUNTER_PREFIX = 'meter-'
SECRET_GROUPS = ('group_key_custodian', 'group_admin')
# The PYSON of "the user is a Key Custodian or an Administrator" (views).
_secret_groups = Id('prepaid_vending', 'group_key_custodian').in_(
    Eval('context', {}).get('groups', [])
) | Id('prepaid_vending', 'group_admin').in_(Eval('context', {}).get('groups', []))
# A channel with secrets moves only by a custodian or an administrator.
_channel_states = {
    'readonly': (Eval('hes_secrets_entered', 'none') != 'none') & ~_secret_groups
}
#: Longest LLS password / HLS secret accepted (octets, UTF-8 encoded): meters
#: take 8 to 16 in practice; more is a pasted key file or a typing error.
MAX_PASSWORD_BYTES = 64
KEY_BYTES = 16
KEY_LABELS = {
    'hes_block_cipher_key': "block cipher key",
    'hes_authentication_key': "authentication key",
}


def secret_bytes(name: str, value: str) -> bytes:
    """The raw bytes of secret ``name`` as typed, or ValidationError.

    The password is UTF-8 text (1 to MAX_PASSWORD_BYTES octets); the keys are
    16 bytes in hexadecimal (spaces allowed between digits)."""
    if name == 'hes_password':
        raw = value.encode('utf-8')
        if not raw or len(raw) > MAX_PASSWORD_BYTES:
            raise ValidationError(
                gettext(
                    'prepaid_headend.msg_password_length',
                    maximum=MAX_PASSWORD_BYTES,
                    length=len(raw),
                )
            )
        return raw
    if name not in SECRET_FIELDS:
        raise ValueError(f"not a meter secret: {name}")
    text = value.strip().replace(' ', '')
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b''
    if len(raw) != KEY_BYTES:
        raise ValidationError(
            gettext('prepaid_headend.msg_key_length', field=KEY_LABELS[name])
        )
    return raw


_HOST_LABEL = re.compile(r'(?!-)[A-Za-z0-9-]{1,63}(?<!-)')


def valid_host(host: str) -> bool:
    "An IP address or a DNS host name (RFC 1123), nothing else (no URL, port)"
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip('.').split('.')
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def user_in_groups(names, check: bool | None = None) -> bool:
    """Whether the user may act, for checks done in code (not by field access).

    Internal calls (no access check, root) may; RPC calls need one of the
    prepaid_vending groups ``names``.  ``check`` overrides the transaction's
    access-check flag (``check_modification`` runs without access checks and
    says in ``external`` whether the write came from a user)."""
    pool = Pool()
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    transaction = Transaction()
    if check is None:
        check = transaction.check_access
    if not check or not transaction.user:
        return True
    wanted = {ModelData.get_id('prepaid_vending', name) for name in names}
    return bool(wanted & set(User.get_groups()))


class Meter(RangeMixin, metaclass=PoolMeta):
    __name__ = 'prepaid.meter'

    hes_host = fields.Char(
        "Host",
        size=255,
        strip=True,
        states=_channel_states,
        help="IP address or host name of the meter's communication module "
        "(direct TCP channel). Once the meter has secrets, only a Key "
        "Custodian or an Administrator moves it.",
    )
    hes_port = fields.Integer("Port", states=_channel_states)
    hes_framing = fields.Selection(FRAMINGS, "Framing", required=True)
    hes_client_address = fields.Integer("Client Address", required=True)
    hes_server_address = fields.Integer("Server Address", required=True)
    hes_auth = fields.Selection(AUTHENTICATIONS, "Authentication", required=True)
    hes_system_title = fields.Char(
        "Client System Title",
        size=16,
        required=True,
        help="8 bytes in hexadecimal: the head-end's system title for HLS-GMAC.",
    )
    hes_timeout = fields.Float(
        "Timeout (s)",
        required=True,
        help="Longest silence of the meter within one round trip.",
    )
    hes_deadline = fields.Float(
        "Exchange Deadline (s)",
        required=True,
        help="Longest one exchange may take whatever the meter sends: the "
        "association, each request with all its blocks, the release. A meter "
        "that answers a byte at a time or keeps sending is cut off.",
    )
    # Read access denied to every group (channel.xml); lazy so that clients
    # reading a meter's eager fields never ask for them.
    hes_password_cipher = fields.Char(
        "Encrypted Password", readonly=True, loading='lazy'
    )
    hes_block_cipher_key_cipher = fields.Char(
        "Encrypted Block Cipher Key", readonly=True, loading='lazy'
    )
    hes_authentication_key_cipher = fields.Char(
        "Encrypted Authentication Key", readonly=True, loading='lazy'
    )
    hes_password = fields.Function(
        fields.Char(
            "LLS Password / HLS Secret",
            help="Write-only: stored encrypted with the master key.",
        ),
        'get_hes_secret',
        setter='set_hes_secret',
    )
    hes_block_cipher_key = fields.Function(
        fields.Char(
            "Block Cipher Key (hex)",
            help="Write-only, 16 bytes in hexadecimal (32 digits).",
        ),
        'get_hes_secret',
        setter='set_hes_secret',
    )
    hes_authentication_key = fields.Function(
        fields.Char(
            "Authentication Key (hex)",
            help="Write-only, 16 bytes in hexadecimal (32 digits).",
        ),
        'get_hes_secret',
        setter='set_hes_secret',
    )
    hes_secrets_entered = fields.Function(
        fields.Char("Secrets Entered"), 'get_hes_secrets_entered'
    )
    hes_key_fingerprint = fields.Char(
        "Block Cipher Key Fingerprint",
        readonly=True,
        help="Keyed hash identifying the block cipher key (never the key): "
        "meters with the same fingerprint share the key.",
    )
    hes_key_shared = fields.Function(
        fields.Char(
            "Shared Block Cipher Key",
            help="Other meters using the same block cipher key: they share one "
            "invocation counter sequence; give each meter its own key.",
        ),
        'get_hes_key_shared',
    )
    hes_group = fields.Many2One(
        'prepaid.headend.meter_group',
        "Reading Group",
        ondelete='SET NULL',
        domain=[('company', '=', Eval('company', -1))],
    )
    hes_online = fields.Boolean("Online", readonly=True)
    hes_last_contact = fields.Timestamp("Last Contact", readonly=True)
    hes_last_error = fields.Char("Last Communication Error", readonly=True)
    hes_relay_state = fields.Selection(RELAY_STATES, "Relay", readonly=True)
    hes_clock_drift = fields.Float(
        "Clock Drift (s)",
        readonly=True,
        help="Meter time minus head-end time at the last clock check.",
    )
    hes_alarm_register = fields.Integer("Alarm Register", readonly=True)
    # hes_load_limit, hes_limiter_read: see load_management.py
    hes_load_limit_read = fields.Integer("Load Limit in Meter (W)", readonly=True)
    hes_last_result = fields.Function(
        fields.Text("Last Job Result"), 'get_hes_last_result'
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._buttons.update(
            {
                'hes_read_now': _reachable,
                'hes_sync_clock': _reachable,
                'hes_write_load_limit': _reachable,
                'hes_read_load_limit': _reachable,
                # Keys may be entered before the channel is known.
                'hes_enter_keys': {},
            }
        )

    @staticmethod
    def default_hes_framing():
        return 'wrapper'

    @staticmethod
    def default_hes_auth():
        return 'hls-gmac'

    @staticmethod
    def default_hes_client_address():
        return DEFAULT_CLIENT_ADDRESS['hls-gmac']

    @staticmethod
    def default_hes_server_address():
        return 1

    @staticmethod
    def default_hes_system_title():
        return DEFAULT_SYSTEM_TITLE

    @staticmethod
    def default_hes_timeout():
        return DEFAULT_TIMEOUT

    @staticmethod
    def default_hes_deadline():
        return DEFAULT_DEADLINE

    @fields.depends('hes_auth')
    def on_change_hes_auth(self):
        if self.hes_auth:
            self.hes_client_address = DEFAULT_CLIENT_ADDRESS[self.hes_auth]

    @classmethod
    def setting_ranges(cls):
        return super().setting_ranges() | CHANNEL_RANGES

    @classmethod
    def validate_fields(cls, meters, field_names):
        super().validate_fields(meters, field_names)
        if not field_names or field_names & {'hes_system_title', 'hes_host'}:
            for meter in meters:
                meter.check_hes_system_title()
        if not field_names or 'hes_host' in field_names:
            for meter in meters:
                if meter.hes_host and not valid_host(meter.hes_host):
                    raise ValidationError(
                        gettext(
                            'prepaid_headend.msg_host_invalid',
                            meter=meter.serial,
                            host=meter.hes_host[:100],
                        )
                    )
        if not field_names or field_names & {'hes_timeout', 'hes_deadline'}:
            for meter in meters:
                if (meter.hes_timeout or 0) > (meter.hes_deadline or 0):
                    raise ValidationError(
                        gettext(
                            'prepaid_headend.msg_deadline_below_timeout',
                            meter=meter.serial,
                            timeout=meter.hes_timeout,
                            deadline=meter.hes_deadline,
                        )
                    )

    def check_hes_system_title(self):
        try:
            raw = bytes.fromhex(self.hes_system_title or '')
        except ValueError:
            raw = b''
        if len(raw) != 8:
            raise ValidationError(
                gettext('prepaid_headend.msg_system_title', meter=self.serial)
            )

    # --- secrets ----------------------------------------------------------
    @classmethod
    def get_hes_secret(cls, meters, name):
        # Write-only: the getter never returns key material.
        return {m.id: None for m in meters}

    @classmethod
    def get_hes_secrets_entered(cls, meters, name):
        with without_check_access():
            rows = cls.read([m.id for m in meters], list(SECRET_FIELDS.values()))
        labels = {
            'hes_password_cipher': "password",
            'hes_block_cipher_key_cipher': "block cipher key",
            'hes_authentication_key_cipher': "authentication key",
        }
        return {
            r['id']: ', '.join(labels[f] for f in labels if r[f]) or "none"
            for r in rows
        }

    @classmethod
    def get_hes_key_shared(cls, meters, name):
        result = {m.id: None for m in meters}
        prints = {m.hes_key_fingerprint for m in meters if m.hes_key_fingerprint}
        if not prints:
            return result
        with without_check_access():
            others = cls.search([('hes_key_fingerprint', 'in', list(prints))])
        for meter in meters:
            if not meter.hes_key_fingerprint:
                continue
            same = sorted(
                o.serial
                for o in others
                if o.hes_key_fingerprint == meter.hes_key_fingerprint
                and o.id != meter.id
            )
            if same:
                shown = ', '.join(same[:5]) + (', ...' if len(same) > 5 else '')
                result[meter.id] = gettext(
                    'prepaid_headend.msg_key_shared', count=len(same), meters=shown
                )
        return result

    @classmethod
    def set_hes_secret(cls, meters, name, value):
        if not value:
            return
        # Who may call this is checked in create()/write(): trytond calls
        # setters without access checks.
        raw = secret_bytes(name, value)
        try:
            cipher = masterkey.encrypt(raw)
        except masterkey.MasterKeyError as error:
            raise UserError(
                gettext('prepaid_headend.msg_master_key', error=str(error))
            ) from None
        values: dict[str, Any] = {SECRET_FIELDS[name]: cipher}
        if name == 'hes_block_cipher_key':
            values['hes_key_fingerprint'] = key_fingerprint(raw)
        with without_check_access():
            cls.write(list(meters), values)

    @classmethod
    def _check_secret_groups(cls, vlist) -> None:
        """Only Key Custodians / Administrators enter secrets (server-side:
        field access cannot stop an RPC write of a Function field)."""
        if any(v.get(f) for v in vlist for f in SECRET_FIELDS) and not (
            user_in_groups(SECRET_GROUPS)
        ):
            raise AccessError(gettext('prepaid_headend.msg_secret_group'))

    @classmethod
    def create(cls, vlist):
        cls._check_secret_groups(vlist)
        return super().create(vlist)

    @classmethod
    def write(cls, *args):
        cls._check_secret_groups(args[1::2])
        super().write(*args)

    @classmethod
    def check_modification(cls, mode, meters, values=None, external=False):
        super().check_modification(mode, meters, values=values, external=external)
        if mode != 'write' or not values:
            return
        if 'hes_auth' in values:
            cls._check_no_downgrade(meters, values['hes_auth'])
        if not values.keys() & {'hes_host', 'hes_port'}:
            return
        moved = [
            m
            for m in meters
            if any(
                k in values and values[k] != getattr(m, k)
                for k in ('hes_host', 'hes_port')
            )
            and m._hes_has_secrets()
        ]
        if not moved:
            return
        if not user_in_groups(SECRET_GROUPS, check=bool(external)):
            raise AccessError(
                gettext('prepaid_headend.msg_channel_move_group', meter=moved[0].serial)
            )
        for meter in moved:
            cls.log(
                [meter],
                'write',
                f"channel of a meter with DLMS secrets moved: "
                f"{meter.hes_host}:{meter.hes_port} -> "
                f"{values.get('hes_host', meter.hes_host)}:"
                f"{values.get('hes_port', meter.hes_port)}",
            )

    @classmethod
    def _check_no_downgrade(cls, meters, auth: str) -> None:
        """Refuse, to everyone, a weaker authentication on a meter that has
        secrets (see the module docstring)."""
        labels = dict(AUTHENTICATIONS)
        for meter in meters:
            if AUTH_LEVEL.get(auth, 0) >= AUTH_LEVEL[meter.hes_auth]:
                continue
            if meter._hes_has_secrets():
                raise AccessError(
                    gettext(
                        'prepaid_headend.msg_auth_downgrade',
                        meter=meter.serial,
                        current=labels[meter.hes_auth],
                        new=labels.get(auth, auth),
                    )
                )

    @classmethod
    def hes_move_channel(cls, meter, host: str | None, port: int | None) -> bool:
        """Move the channel of meter (Enter Keys wizard); whether it moved.
        An empty host or port keeps the current one.

        Key Custodians have no write access on meters: the group is checked
        here and the write (validated, audited by check_modification) runs
        without access checks."""
        host = (host or '').strip() or meter.hes_host
        port = port if port is not None else meter.hes_port
        if (host, port) == (meter.hes_host, meter.hes_port):
            return False
        if not user_in_groups(SECRET_GROUPS, check=True):
            raise AccessError(
                gettext('prepaid_headend.msg_channel_move_group', meter=meter.serial)
            )
        with without_check_access():
            cls.write([meter], {'hes_host': host, 'hes_port': port})
        return True

    @classmethod
    def hes_store_secrets(cls, meter, secrets: dict[str, str | None]) -> list[str]:
        """Encrypt and store the secrets typed for meter; the names written.

        For the Enter Keys wizard: Key Custodians have no write access on
        meters, so the group is checked here (always, root excepted) and the
        write runs without access checks.  Every value is validated before
        anything is written.  The audit line (ir.model.log: user, time, meter,
        field names) never carries a value."""
        if not user_in_groups(SECRET_GROUPS, check=True):
            raise AccessError(gettext('prepaid_headend.msg_secret_group'))
        entered = {name: value for name, value in secrets.items() if value}
        if not entered:
            raise ValidationError(
                gettext('prepaid_headend.msg_enter_keys_empty', meter=meter.serial)
            )
        for name, value in entered.items():
            secret_bytes(name, value)
        with without_check_access():
            cls.write([meter], entered)
        names = sorted(entered)
        cls.log([meter], 'write', ','.join(names))
        return names

    def _hes_has_secrets(self) -> bool:
        with without_check_access():
            row = self.__class__.read([self.id], list(SECRET_FIELDS.values()))[0]
        return any(row[f] for f in SECRET_FIELDS.values())

    def _hes_decrypt(self, field: str) -> bytes | None:
        with without_check_access():
            cipher = self.__class__.read([self.id], [field])[0][field]
        if not cipher:
            return None
        try:
            return masterkey.decrypt(cipher)
        except masterkey.MasterKeyError as error:
            raise UserError(
                gettext('prepaid_headend.msg_master_key', error=str(error))
            ) from None

    # --- connection -------------------------------------------------------
    @property
    def hes_counter_key(self) -> str:
        """Invocation-counter key of this meter's frames (system title, key)."""
        key = self._hes_decrypt('hes_block_cipher_key_cipher')
        if key is None or len(key) != 16:
            return f'{LEGACY_COUNTER_PREFIX}{self.id}'  # not ciphered: unused
        return counter_key(bytes.fromhex(self.hes_system_title), key)

    def hes_has_channel(self) -> bool:
        "Whether the head-end can call this meter (settings only)"
        return bool(self.hes_host and self.hes_port)

    def hes_transport(self):
        "A factory of the transport to the meter, or None for TCP to its host"
        return None

    def hes_connection_settings(self) -> ConnectionSettings:
        """Decrypted settings for the DLMS client (never log the result)."""
        if not self.hes_host or not self.hes_port:
            raise UserError(
                gettext('prepaid_headend.msg_no_channel', meter=self.serial)
            )
        return self._hes_settings(
            host=self.hes_host, port=self.hes_port, framing=self.hes_framing
        )

    def _hes_settings(self, **where: Any) -> ConnectionSettings:
        """The meter's association settings and secrets, reached as
        ``where`` says (host, port, framing)."""
        kwargs: dict[str, Any] = dict(where)
        password = self._hes_decrypt('hes_password_cipher')
        if self.hes_auth in {'lls', 'hls-md5'}:
            if password is None:
                raise UserError(
                    gettext(
                        'prepaid_headend.msg_secret_missing',
                        meter=self.serial,
                        secret="LLS password / HLS secret",
                    )
                )
            kwargs['password'] = password
        if self.hes_auth == 'hls-gmac':
            for name, label in [
                ('block_cipher_key', "block cipher key"),
                ('authentication_key', "authentication key"),
            ]:
                value = self._hes_decrypt(f'hes_{name}_cipher')
                if value is None:
                    raise UserError(
                        gettext(
                            'prepaid_headend.msg_secret_missing',
                            meter=self.serial,
                            secret=label,
                        )
                    )
                kwargs[name] = value
        return ConnectionSettings(
            client_address=self.hes_client_address,
            server_address=self.hes_server_address,
            auth=self.hes_auth,
            system_title=bytes.fromhex(self.hes_system_title),
            timeout=self.hes_timeout or DEFAULT_TIMEOUT,
            deadline=self.hes_deadline or DEFAULT_DEADLINE,
            meter_key=f'{LEGACY_COUNTER_PREFIX}{self.id}',  # label only
            **kwargs,
        )

    @classmethod
    def get_hes_last_result(cls, meters, name):
        Job = Pool().get('prepaid.headend.job')
        result = {}
        # Anyone who may read the meter sees the result of its last job.
        with without_check_access():
            for meter in meters:
                jobs = Job.search(
                    [('meter', '=', meter.id)], order=[('id', 'DESC')], limit=1
                )
                if not jobs:
                    result[meter.id] = None
                    continue
                job = jobs[0]
                detail = job.result or job.last_error or ''
                result[meter.id] = f"{job.rec_name}: {job.state}\n{detail}"
        return result

    # --- buttons ----------------------------------------------------------
    @classmethod
    @ModelView.button
    def hes_read_now(cls, meters):
        "Queue an on-demand read; the result shows on the meter when it lands"
        Job = Pool().get('prepaid.headend.job')
        Job.queue(Job.create_for(meters, 'read', {'on_demand': True}))

    @classmethod
    @ModelView.button
    def hes_sync_clock(cls, meters):
        Job = Pool().get('prepaid.headend.job')
        Job.queue(Job.create_for(meters, 'time_sync', {}))

    @classmethod
    @ModelView.button
    def hes_write_load_limit(cls, meters):
        Job = Pool().get('prepaid.headend.job')
        for meter in meters:
            if meter.hes_load_management is None:
                raise UserError(
                    gettext('prepaid_headend.msg_no_load_limit', meter=meter.serial)
                )
        Job.queue(Job.create_for(meters, 'load_limit', {'write': True}))

    @classmethod
    @ModelView.button
    def hes_read_load_limit(cls, meters):
        Job = Pool().get('prepaid.headend.job')
        Job.queue(Job.create_for(meters, 'load_limit', {'write': False}))

    @classmethod
    @ModelView.button_action('prepaid_headend.wizard_enter_keys')
    def hes_enter_keys(cls, meters):
        pass


class EnterKeysStart(ModelView):
    "Enter the DLMS secrets of a meter"

    __name__ = 'prepaid.headend.enter_keys.start'

    meter = fields.Many2One('prepaid.meter', "Meter", readonly=True)
    entered = fields.Char("Secrets Already Stored", readonly=True)
    host = fields.Char(
        "Host", strip=True, help="Change to move the meter's channel (audited)."
    )
    port = fields.Integer("Port")
    password = fields.Char(
        "LLS Password / HLS Secret",
        help="Leave empty to keep the stored one.",
    )
    block_cipher_key = fields.Char(
        "Block Cipher Key (hex)",
        help="16 bytes as 32 hexadecimal digits. Leave empty to keep the stored one.",
    )
    authentication_key = fields.Char(
        "Authentication Key (hex)",
        help="16 bytes as 32 hexadecimal digits. Leave empty to keep the stored one.",
    )


#: wizard field -> write-only field of prepaid.meter
ENTER_KEYS_FIELDS = {
    'password': 'hes_password',
    'block_cipher_key': 'hes_block_cipher_key',
    'authentication_key': 'hes_authentication_key',
}


class EnterKeys(Wizard):
    """Enter the DLMS secrets of one meter (Key Custodian / Administrator).

    The values only pass through: they are encrypted into the meter and
    removed from the wizard before its session is saved in the database."""

    __name__ = 'prepaid.headend.enter_keys'

    start = StateView(
        'prepaid.headend.enter_keys.start',
        'prepaid_headend.enter_keys_start_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Store Encrypted", 'store', 'tryton-ok', default=True),
        ],
    )
    store = StateTransition()

    def _meter(self):
        if len(self.records) != 1:
            raise UserError(gettext('prepaid_headend.msg_enter_keys_one_meter'))
        return self.records[0]

    def default_start(self, fields):
        meter = self._meter()
        return {
            'meter': meter.id,
            'entered': meter.hes_secrets_entered,
            'host': meter.hes_host,
            'port': meter.hes_port,
        }

    def transition_store(self):
        Meter = Pool().get('prepaid.meter')
        meter = self._meter()
        secrets = {
            target: getattr(self.start, name, None)
            for name, target in ENTER_KEYS_FIELDS.items()
        }
        # Wizard.execute saves the state views in ir.session.wizard after
        # the transition: forget the plaintext first.
        for name in ENTER_KEYS_FIELDS:
            setattr(self.start, name, None)
        moved = Meter.hes_move_channel(
            meter, getattr(self.start, 'host', None), getattr(self.start, 'port', None)
        )
        if any(secrets.values()) or not moved:
            Meter.hes_store_secrets(meter, secrets)
        return 'end'


class BigInteger(fields.Integer):
    "64-bit integer column: invocation counters go up to 2**32 - 1"

    _sql_type = 'BIGINT'


class InvocationCounter(ModelSQL, ModelView):
    "Next invocation counter the head-end may use with a meter's keys"

    __name__ = 'prepaid.headend.invocation_counter'
    __string__ = "Invocation Counter"

    key = fields.Char("Key", required=True, readonly=True)
    next_value = BigInteger("Next Value", required=True, readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('key_unique', Unique(t, t.key), 'prepaid_headend.msg_counter_key_unique'),
        ]

    @classmethod
    def initial_value(cls, key: str) -> int:
        """First counter of a new row.

        Rows of the first release were per meter (``meter-<id>``): a new
        (system title, key) row starts above all of them, so counters already
        used under that key by any meter are never handed out again."""
        if key.startswith(LEGACY_COUNTER_PREFIX):
            return 1
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(
            *table.select(
                Max(table.next_value),
                where=table.key.like(LEGACY_COUNTER_PREFIX + '%'),
            )
        )
        (legacy,) = cursor.fetchone()
        return max(1, int(legacy or 0))

    @classmethod
    def row_id(cls, key: str, start: int | None = None) -> int:
        """Id of the counter row of ``key``, created (and committed) if missing."""
        for _ in range(3):
            with Transaction().new_transaction() as transaction, without_check_access():
                records = cls.search([('key', '=', key)], limit=1)
                if records:
                    return records[0].id
                if start is None:
                    start = cls.initial_value(key)
                try:
                    (record,) = cls.create([{'key': key, 'next_value': start}])
                    transaction.commit()
                    return record.id
                except (backend.DatabaseIntegrityError, SQLConstraintError):
                    transaction.rollback()  # another worker created it: re-read
        raise RuntimeError(f"cannot create the invocation counter of {key}")

    @classmethod
    def take(
        cls, key: str, count: int = 1, start: int | None = None
    ) -> tuple[int, int]:
        """Reserve ``count`` counters for ``key``: return (first, limit).

        The caller serialises: the row is locked when the transaction starts
        (``_lock_records``, see DatabaseCounterStore) or the database allows
        one writer at a time (SQLite).
        """
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        with without_check_access():
            records = cls.search([('key', '=', key)], limit=1)
            if start is None:
                start = 1 if records else cls.initial_value(key)
            if not records:
                records = cls.create([{'key': key, 'next_value': start}])
            # Read bypassing any cached value of the record.
            cursor.execute(
                *table.select(table.next_value, where=table.id == records[0].id)
            )
            (first,) = cursor.fetchone()
            first = max(int(first), start)
            if first > MAX_INVOCATION_COUNTER:
                raise CounterExhausted(f"invocation counter exhausted for {key}")
            limit = min(first + count, MAX_INVOCATION_COUNTER + 1)
            cursor.execute(
                *table.update(
                    [table.next_value], [limit], where=table.id == records[0].id
                )
            )
        return first, limit

    @classmethod
    def set_floor(cls, key: str, value: int) -> None:
        "Never hand out anything below value (e.g. after a meter reset)"
        DatabaseCounterStore().set_floor(key, value)

    @classmethod
    def _raise_to(cls, key: str, value: int) -> None:
        first, _ = cls.take(key, 0)
        if value > first:
            table = cls.__table__()
            cursor = Transaction().connection.cursor()
            cursor.execute(
                *table.update([table.next_value], [value], where=table.key == key)
            )

    @classmethod
    def peek(cls, key: str) -> int | None:
        "The next value (diagnostics and tests; committed state on PostgreSQL)"
        if backend.name == 'sqlite':
            with without_check_access():
                records = cls.search([('key', '=', key)], limit=1)
                return records[0].next_value if records else None
        with Transaction().new_transaction(readonly=True), without_check_access():
            records = cls.search([('key', '=', key)], limit=1)
            return records[0].next_value if records else None


class DatabaseCounterStore:
    """The DLMS client's InvocationCounterStore on the database table.

    ``reserve`` counters are taken per database round trip: the unused rest of
    a block is skipped after the job (gaps are allowed, reuse is not).
    """

    def __init__(self, reserve: int = 1, autonomous: bool | None = None) -> None:
        if reserve < 1:
            raise ValueError("reserve must be >= 1")
        self.reserve = reserve
        self.lock_attempts = 10
        self.autonomous = backend.name != 'sqlite' if autonomous is None else autonomous
        self._blocks: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def get_and_increment(self, meter_key: str) -> int:
        with self._lock:
            nxt, limit = self._blocks.get(meter_key, (0, 0))
            if nxt >= limit:
                nxt, limit = self._take(meter_key)
            self._blocks[meter_key] = (nxt + 1, limit)
            return nxt

    def _take(self, meter_key: str) -> tuple[int, int]:
        Counter = Pool().get('prepaid.headend.invocation_counter')
        return self._locked(meter_key, lambda: Counter.take(meter_key, self.reserve))

    def set_floor(self, meter_key: str, value: int) -> None:
        Counter = Pool().get('prepaid.headend.invocation_counter')
        self._locked(meter_key, lambda: Counter._raise_to(meter_key, value))
        with self._lock:
            self._blocks.pop(meter_key, None)

    def _locked(self, meter_key: str, fn):
        Counter = Pool().get('prepaid.headend.invocation_counter')
        if not self.autonomous:
            # SQLite: the caller's transaction holds the database write lock
            # from its first write to its commit, so nobody else can take
            # counters meanwhile.
            return fn()
        # Tryton takes record locks when a transaction starts (SELECT ... FOR
        # UPDATE NOWAIT, retried): a second worker waits for our commit.
        row_id = Counter.row_id(meter_key)
        for attempt in range(self.lock_attempts):
            try:
                with Transaction().new_transaction(
                    _lock_records={Counter._table: [row_id]}
                ):
                    return fn()
            except backend.DatabaseOperationalError:
                # Another worker held the row through trytond's own retries.
                if attempt + 1 == self.lock_attempts:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")
