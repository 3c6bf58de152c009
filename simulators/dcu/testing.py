"""Helpers for tests and benchmarks: a head-end stand-in over real HTTPS.

pki = TestPki(tmp_path)
with HeadEndStandIn(pki) as hes:          # MemoryHeadEnd behind HeadEndApp
    sim = DcuSimulator(1, 20, pki=pki, headend_url=hes.url, latency_scale=0)
    client = hes.client(sim, "DC0001")    # ConcentratorClient pinned to DC0001
"""

from __future__ import annotations

from trytond.modules.prepaid_headend.concentrator.client import ConcentratorClient
from trytond.modules.prepaid_headend.concentrator.httpd import HttpsWsgiServer
from trytond.modules.prepaid_headend.concentrator.tls import (
    Reloading,
    client_context,
    server_context,
)
from trytond.modules.prepaid_headend.concentrator.wsgi import HeadEndApp

from .headend import MemoryHeadEnd
from .pki import TestPki


class HeadEndStandIn:
    def __init__(
        self, pki: TestPki, name: str = "HES", backend: MemoryHeadEnd | None = None
    ) -> None:
        self.pki = pki
        self.credentials = pki.issue(name)
        self.backend = backend or MemoryHeadEnd()
        self.app = HeadEndApp(self.backend)
        self.server = HttpsWsgiServer(on_tls_error=self.backend.tls_refused)
        c = self.credentials
        context = Reloading(server_context, c.cert, c.key, pki.ca_cert, pki.crl)
        self.listener = self.server.listen(self.app, context, name=name)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.listener.port}/dcu"

    def client_context(self) -> Reloading:
        """The head-end's context to call concentrators."""
        c = self.credentials
        return Reloading(client_context, c.cert, c.key, self.pki.ca_cert, self.pki.crl)

    def client(self, sim, name: str, **options) -> ConcentratorClient:
        """The head-end's client of concentrator ``name`` of ``sim``."""
        return ConcentratorClient(
            sim.url(name), self.client_context(), peer=name, **options
        )

    def start(self) -> HeadEndStandIn:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> HeadEndStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
