"""``DcuSimulator``: N concentrators, their meters and their HTTPS services.

    pki = TestPki(tmp_path)
    with DcuSimulator(2, 50, pki=pki, headend_url=url, latency_scale=0) as sim:
        client = ConcentratorClient(sim.url("DC0001"), head-end TLS context,
                                    peer="DC0001")
        sim.advance(hours=24)             # a simulated day, no sleeping

Each concentrator listens on its own loopback port (TLS with client
certificates: the head-end's, CN in ``head_ends``) and calls the head-end at
``headend_url`` with its own certificate (CN = its id), checking that the
server it reaches is a head-end (CN in ``head_ends``). Contexts reload the
test CA's CRL when it changes (``TestPki.revoke``).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace
from typing import Any

from trytond.modules.prepaid_headend.concentrator import soap
from trytond.modules.prepaid_headend.concentrator.client import HeadEndClient
from trytond.modules.prepaid_headend.concentrator.httpd import (
    HttpsWsgiServer,
    Listener,
)
from trytond.modules.prepaid_headend.concentrator.tls import (
    Reloading,
    client_context,
    server_context,
)
from trytond.modules.prepaid_headend.concentrator.wsgi import SoapApp

from .clock import VirtualClock
from .concentrator import Concentrator
from .config import DcConfig
from .fleet import MeterTemplate
from .pki import Credentials, TestPki
from .service import ConcentratorService
from .uplink import Uplink


def dc_id(number: int) -> str:
    return f"DC{number:04d}"


class DcuSimulator:
    def __init__(
        self,
        concentrators: int = 1,
        meters: int = 300,
        *,
        pki: TestPki,
        headend_url: str | None = None,
        head_ends: tuple[str, ...] = ("HES",),
        start: dt.datetime | None = None,
        seed: int = 0,
        latency_scale: float = 1.0,
        template: dict[str, Any] | None = None,
        host: str = "127.0.0.1",
        first_port: int = 0,
        **options: Any,
    ) -> None:
        """``options`` are :class:`DcConfig` fields for every concentrator
        (``per_dc={number: {field: value}}`` for single ones, e.g. its
        ``dc_id`` and ``meter_ids``)."""
        if concentrators < 1:
            raise ValueError("at least one concentrator")
        per_dc: dict[int, dict[str, Any]] = options.pop("per_dc", {})
        self.pki = pki
        self.clock = VirtualClock(start)
        self.template = MeterTemplate(
            start=self.clock.time(), seed=seed, **(template or {})
        )
        self.host = host
        self.first_port = first_port
        self.head_ends = frozenset(head_ends)
        self.headend_url = headend_url
        self.server = HttpsWsgiServer(on_tls_error=self._tls_refused)
        self.tls_refusals: list[tuple[str, str, str]] = []
        self.credentials: dict[str, Credentials] = {}
        self.listeners: dict[str, Listener] = {}
        self.concentrators: dict[str, Concentrator] = {}
        for number in range(1, concentrators + 1):
            config = DcConfig(
                dc_id=dc_id(number), number=number, meters=meters, **options
            )
            if number in per_dc:
                config = replace(config, **per_dc[number])
            name = config.dc_id
            if name in self.concentrators:
                raise ValueError(f"two concentrators named {name}")
            creds = self.credentials[name] = pki.issue(name)
            client = None
            if headend_url:
                context = Reloading(
                    client_context, creds.cert, creds.key, pki.ca_cert, pki.crl
                )
                client = HeadEndClient(
                    headend_url, context, peer=self.head_ends, timeout=30.0
                )
            uplink = Uplink(
                client, config.faults, random.Random(f"{seed}:up:{name}"), latency_scale
            )
            self.concentrators[name] = Concentrator(
                config,
                self.clock,
                self.template,
                uplink,
                seed=seed,
                latency_scale=latency_scale,
                on_online=lambda up, name=name: self._online(name, up),
            )
        self._started = False

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> DcuSimulator:
        for k, (name, dc) in enumerate(self.concentrators.items()):
            creds = self.credentials[name]
            context = Reloading(
                server_context, creds.cert, creds.key, self.pki.ca_cert, self.pki.crl
            )
            app = SoapApp(soap.CONCENTRATOR, ConcentratorService(dc, self.head_ends))
            port = self.first_port + k if self.first_port else 0
            self.listeners[name] = self.server.listen(
                app, context, port=port, host=self.host, name=name
            )
        self.server.start()
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self.server.stop()
            self._started = False
        for dc in self.concentrators.values():
            if dc.uplink.client is not None:
                dc.uplink.client.close()

    def __enter__(self) -> DcuSimulator:
        return self if self._started else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _online(self, name: str, up: bool) -> None:
        listener = self.listeners.get(name)
        if listener is None:
            return
        listener.offline = not up
        if not up:
            self.server.drop_connections(listener)

    def _tls_refused(self, listener: str, peer: str, reason: str) -> None:
        self.tls_refusals.append((listener, peer, reason))

    # -- use -------------------------------------------------------------------------
    def advance(self, seconds: float = 0.0, **delta: float) -> dt.datetime:
        return self.clock.advance(seconds, **delta)

    def url(self, name: str) -> str:
        return f"https://{self.host}:{self.listeners[name].port}/dcu"

    def concentrator(self, name: str) -> Concentrator:
        return self.concentrators[name]

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "id": name,
                "url": self.url(name) if name in self.listeners else None,
                "meters": len(dc.meters),
                "first_meter": dc.meters[0].meter_id,
                "cert": str(self.credentials[name].cert),
            }
            for name, dc in self.concentrators.items()
        ]
