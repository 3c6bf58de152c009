"""The concentrator's SOAP service: who may call it and what each call does."""

from __future__ import annotations

from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator.errors import Refused
from trytond.modules.prepaid_headend.concentrator.tls import Peer

from .concentrator import Concentrator


class ConcentratorService:
    """``handler`` of ``wsgi.SoapApp(soap.CONCENTRATOR, ...)`` for one
    concentrator. Only the head-end may call it: a certificate of the right
    CA with another name (another concentrator's, say) is refused."""

    def __init__(self, dc: Concentrator, head_ends: frozenset[str]) -> None:
        self.dc = dc
        self.head_ends = head_ends

    def __call__(self, request: m.Message, peer: Peer | None) -> m.Message:
        if peer is None or peer.common_name not in self.head_ends:
            who = peer.common_name if peer else "a client without certificate"
            raise Refused(f"{who} may not call concentrator {self.dc.dc_id}")
        if isinstance(request, m.SyncRequest):
            return self.dc.sync_request(request)
        if isinstance(request, (m.AsyncRequest, m.ReportQuery)):
            return self.dc.accept_request(request)
        if isinstance(request, m.Order):
            return self.dc.accept_order(request)
        if isinstance(request, m.GatewayRequest):
            return self.dc.gateway(request.frame)
        raise TypeError(type(request).__name__)
