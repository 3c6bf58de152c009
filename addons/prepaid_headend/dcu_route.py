"""How the head-end reaches a meter behind a concentrator.

A meter with a direct channel (host and port, ``channel.py``) is called over
TCP.  A meter without one is reached through the concentrator whose
directory lists it, approved and not removed: the DLMS association is the
same (the meter's own HLS keys, which never leave the head-end), carried by
the concentrator's DLMS gateway (``concentrator.dlms_gateway``) over mutual
TLS, the head-end presenting its certificate (Communication Settings, the
key encrypted with the master key; the CA and CRL from trytond.conf
``[prepaid_headend] dcu_ca``, ``dcu_crl``) and checking that the
concentrator answers with the certificate registered for it.  So every
head-end job (reading, relay, load limit, clock, remote credit, firmware)
runs on such a meter as on a direct one.

The scheduled readings stay direct-only: a concentrator collects its
meters' registers and profiles on its own plan and delivers them in its
reports (docs/concentrators.md).
"""

from __future__ import annotations

from collections.abc import Callable

from sql import Literal, Null
from sql.conditionals import Coalesce
from sql.operators import In, NotIn
from trytond import backend
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access

from .concentrator.dlms_gateway import GatewayTransport
from .dlms.session import ConnectionSettings
from .dlms.transport import Transport

#: Directory entries through which a meter is not called.
UNREACHABLE = ('removed', 'never_joined')


class Meter(metaclass=PoolMeta):
    __name__ = 'prepaid.meter'

    hes_concentrator = fields.Function(
        fields.Many2One(
            'prepaid.concentrator',
            "Reached Through",
            help="The concentrator that relays the head-end's DLMS traffic "
            "to this meter (meters without a direct channel).",
        ),
        'get_hes_concentrator',
    )
    hes_reachable = fields.Function(
        fields.Boolean(
            "Reachable by the Head-End",
            help="A direct channel, or an approved entry in a concentrator's "
            "directory.",
        ),
        'get_hes_reachable',
        searcher='search_hes_reachable',
    )

    @classmethod
    def _hes_routes(cls, columns):
        """The directory entries a meter may be called through: approved, of
        a known meter with a G3 address, not removed, of an active
        concentrator whose certificate is not revoked."""
        pool = Pool()
        Entry = pool.get('prepaid.concentrator.directory')
        Concentrator = pool.get('prepaid.concentrator')
        entry = Entry.__table__()
        concentrator = Concentrator.__table__()
        usable = (
            (entry.approval == 'approved')
            & (entry.meter != Null)
            & (entry.pda != Null)
            & ((entry.status == Null) | NotIn(entry.status, UNREACHABLE))
            & (concentrator.active == Literal(True))
            & (Coalesce(concentrator.certificate_revoked, False) == Literal(False))
        )
        return entry, entry.join(
            concentrator, condition=entry.concentrator == concentrator.id
        ).select(*columns(entry), where=usable)

    @classmethod
    def _hes_route_entries(cls, meters) -> dict[int, int]:
        "meter id -> the directory entry it is called through"
        routes: dict[int, int] = {}
        ids = [m.id for m in meters if not m.hes_host]
        cursor = Transaction().connection.cursor()
        for chunk in grouped_slice(ids, backend.MAX_QUERY_PARAMS):
            entry, query = cls._hes_routes(lambda e: [e.meter, e.id])
            query.where &= In(entry.meter, list(chunk))
            # The latest heard of first, when a meter moved.
            query.order_by = [entry.last_seen.desc.nulls_last, entry.id.desc]
            cursor.execute(*query)
            for meter_id, entry_id in cursor:
                routes.setdefault(meter_id, entry_id)
        return routes

    @classmethod
    def get_hes_concentrator(cls, meters, name):
        Entry = Pool().get('prepaid.concentrator.directory')
        routes = cls._hes_route_entries(meters)
        with without_check_access():
            entries = {e.id: e for e in Entry.browse(list(routes.values()))}
        return {
            m.id: entries[routes[m.id]].concentrator.id if m.id in routes else None
            for m in meters
        }

    @classmethod
    def get_hes_reachable(cls, meters, name):
        routes = cls._hes_route_entries(meters)
        return {m.id: bool(m.hes_host and m.hes_port) or m.id in routes for m in meters}

    @classmethod
    def search_hes_reachable(cls, name, clause):
        _, operator, value = clause
        if operator not in {'=', '!='}:
            return [('id', '=', -1)]
        _, routed = cls._hes_routes(lambda e: [e.meter])
        reachable = [
            'OR',
            [('hes_host', '!=', None), ('hes_port', '!=', None)],
            [('hes_host', '=', None), ('id', 'in', routed)],
        ]
        if bool(value) == (operator == '='):
            return reachable
        return [
            ['OR', ('hes_host', '=', None), ('hes_port', '=', None)],
            ['OR', ('hes_host', '!=', None), ('id', 'not in', routed)],
        ]

    def hes_gateway_entry(self):
        "The directory entry the head-end calls this meter through, or None"
        if self.hes_host:
            return None
        entry_id = self._hes_route_entries([self]).get(self.id)
        if entry_id is None:
            return None
        with without_check_access():
            return Pool().get('prepaid.concentrator.directory')(entry_id)

    def hes_connection_settings(self) -> ConnectionSettings:
        entry = self.hes_gateway_entry()
        if entry is None:
            return super().hes_connection_settings()
        # WRAPPER framing end to end: the concentrator relays the APDUs.
        return self._hes_settings(framing='wrapper')

    def hes_transport(self) -> Callable[[], Transport] | None:
        """A factory of the transport to this meter (one per attempt), or
        None for the direct TCP channel.  Built before the I/O: the factory
        touches no record."""
        entry = self.hes_gateway_entry()
        if entry is None:
            return None
        with without_check_access():
            client = entry.concentrator.client()
            try:
                pda = bytes.fromhex(entry.pda)
            except ValueError:
                raise UserError(
                    gettext(
                        'prepaid_headend.msg_directory_bad_pda',
                        meter=self.serial,
                        concentrator=entry.concentrator.dc_id,
                    )
                ) from None
        return lambda: GatewayTransport(client, pda)

    def hes_has_channel(self) -> bool:
        return super().hes_has_channel() or self.hes_gateway_entry() is not None
