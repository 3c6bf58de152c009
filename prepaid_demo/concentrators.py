"""The demo's two data concentrators, with a few meters of the demo each.

``scripts/demo`` runs ``python -m prepaid_demo.concentrators`` (see
``main``): one process that plays

- the field: two simulated concentrators (``simulators.dcu``), DEMO-DCU-1
  and DEMO-DCU-2, each at one of the demo's transformers with the demo
  meters installed there (by serial: the head-end's directory links them to
  the meters, and *Topology Mismatch* stays off);
- the head-end's TLS terminator: trytond does not speak TLS, so the
  concentrator package's ``HttpsWsgiServer`` (the tests' stand-in for nginx,
  docs/concentrators.md section 9) serves trytond's concentrator routes, and
  only them, with client certificates, in this process.  The verified
  certificate reaches the route as ``SSL_CLIENT_CERT``; no header is trusted.

On every start a new test CA (``simulators.dcu.TestPki``, test keys in
``--pki-dir``) issues the head-end's and the concentrators' certificates,
and the concentrators' records get the SHA-256 of their new certificate
(they are created the first time, at the two transformers with the most
demo meters that are not on a direct channel).  Then the concentrators
start: their meters join within a minute, the joins reach the head-end's
directory, and a first report (instantaneous values, the meter list, the
concentrator's parameters) follows without waiting for the daily plan.

The constants import without trytond (the demo's banner has none).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DCU_IDS = ('DEMO-DCU-1', 'DEMO-DCU-2')
CA_NAME = 'Demo DCU CA'
HES_NAME = 'HES'  # the head-end's certificate (server and client)
METERS_PER_DCU = 5
DEFAULT_PORT = 4091  # the head-end's TLS port; the concentrators' on the next ones
PORTS = 1 + len(DCU_IDS)
JOIN_SPREAD_S = 20.0  # the demo's G3 networks form in 20 s (real ones: 30 min)
NETWORK_TICK_S = 10.0  # joins are announced every 10 s
FIRST_REPORT_S = 40.0  # then the first report, once the meters have joined
ELIGIBLE_KINDS = ('smart_prepaid', 'postpaid')  # meters with a communication module


# ------------------------------------------------------------- the database


def _eligible_meters() -> dict[int, list]:
    """transformer id -> the meters installed there that a concentrator may
    read (smart and postpaid meters not on a direct demo channel), by
    serial, in the context's company"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction, without_check_access

    from .headend import DEMO_GROUP

    Installation = Pool().get('prepaid.meter.installation')
    company = Transaction().context['company']
    with without_check_access():
        installations = Installation.search(
            [
                ('removed_on', '=', None),
                ('meter.kind', 'in', ELIGIBLE_KINDS),
                ('service_point.transformer.company', '=', company),
            ]
        )
    found: dict[int, list] = {}
    for installation in installations:
        meter = installation.meter
        if meter.hes_group and meter.hes_group.name == DEMO_GROUP:
            continue  # read directly by the head-end (prepaid-meter-sim)
        transformer = installation.service_point.transformer.id
        found.setdefault(transformer, []).append(meter)
    return {t: sorted(ms, key=lambda m: m.serial) for t, ms in found.items()}


def ensure_concentrators(
    dc_ids: tuple[str, ...] = DCU_IDS, meters: int = METERS_PER_DCU
) -> list[tuple[str, tuple[str, ...]]]:
    """The demo concentrators of the context's company, created once at the
    transformers with the most eligible meters: (id, meter serials) each."""
    from trytond.pool import Pool
    from trytond.transaction import Transaction, without_check_access

    Concentrator = Pool().get('prepaid.concentrator')
    company = Transaction().context['company']
    eligible = _eligible_meters()
    with without_check_access():
        records = {
            c.dc_id: c
            for c in Concentrator.search(
                [('dc_id', 'in', list(dc_ids)), ('company', '=', company)]
            )
        }
        free = sorted(
            (
                t
                for t in eligible
                if t
                not in {c.transformer.id for c in records.values() if c.transformer}
            ),
            key=lambda t: (-len(eligible[t]), t),
        )
        new = [d for d in dc_ids if d not in records]
        if len(free) < len(new):
            raise ValueError(
                f"the demo has {len(free)} transformer(s) with eligible meters "
                f"for {len(new)} new concentrator(s)"
            )
        for dc_id, transformer in zip(new, free, strict=False):
            (records[dc_id],) = Concentrator.create(
                [
                    {
                        'company': company,
                        'dc_id': dc_id,
                        'transformer': transformer,
                        'serial': f'SIM-{dc_id}',
                        'location': "Demo: simulated (prepaid-dcu-sim)",
                        # The demo's plan sends events hourly; a demo stopped
                        # for a while shows offline, then online again.
                        'reporting_window': 180,
                    }
                ]
            )
    plan = []
    for dc_id in dc_ids:
        transformer = records[dc_id].transformer
        serials = [
            m.serial for m in eligible.get(transformer.id if transformer else -1, [])
        ]
        if not serials:
            raise ValueError(f"no eligible demo meter at the transformer of {dc_id}")
        plan.append((dc_id, tuple(serials[:meters])))
    return plan


def headend_tls_environ(pki_dir: Path | str) -> dict[str, str]:
    """trytond's ``[prepaid_headend]`` settings, as environment variables,
    with which the head-end checks the demo's concentrators: the demo CA's
    certificate and CRL, by the file names ``TestPki`` gives them
    (``CA_NAME``).  The files are new at each start; the head-end reloads
    changed files.  The head-end's own certificate and key are stored in
    the database (:func:`store_headend_credentials`)."""
    directory = Path(pki_dir)
    slug = CA_NAME.lower().replace(' ', '-')
    return {
        'TRYTOND_PREPAID_HEADEND__DCU_CA': str(directory / f'{slug}.pem'),
        'TRYTOND_PREPAID_HEADEND__DCU_CRL': str(directory / f'{slug}.crl.pem'),
    }


def give_gateway_channels(serials) -> None:
    """The association settings and HLS keys (the simulated meters' public
    test keys, as the demo's direct meters have) of the postpaid meters
    behind the demo concentrators: the head-end reads them and operates
    their relays through the concentrator's DLMS gateway.  The smart
    prepaid ones are left without keys: their simulated meters do not hold
    the demo's STS decoder keys, so a sale to them is refused before payment
    (the meter cannot receive credit) rather than sent tokens it refuses."""
    from trytond.modules.prepaid_headend.dlms.session import (
        DEFAULT_AUTHENTICATION_KEY,
        DEFAULT_BLOCK_CIPHER_KEY,
    )
    from trytond.modules.prepaid_sts import masterkey
    from trytond.pool import Pool
    from trytond.transaction import without_check_access

    Meter = Pool().get('prepaid.meter')
    try:
        masterkey._configured_key()
    except masterkey.MasterKeyError:
        return  # keys are stored encrypted: none without a master key
    with without_check_access():
        meters = Meter.search(
            [('serial', 'in', list(serials)), ('kind', '=', 'postpaid')]
        )
        if not meters:
            return
        Meter.write(
            meters,
            {
                'hes_framing': 'wrapper',
                'hes_auth': 'hls-gmac',
                'hes_client_address': 1,
                'hes_server_address': 1,
            },
        )
        Meter.write(
            [m for m in meters if m.hes_secrets_entered == 'none'],
            {
                'hes_block_cipher_key': DEFAULT_BLOCK_CIPHER_KEY.hex(),
                'hes_authentication_key': DEFAULT_AUTHENTICATION_KEY.hex(),
            },
        )


def register_certificates(certificates: dict[str, tuple[str, str]]) -> None:
    """dc_id -> (certificate SHA-256, service URL): this run's certificates"""
    from trytond.pool import Pool
    from trytond.transaction import without_check_access

    Concentrator = Pool().get('prepaid.concentrator')
    with without_check_access():
        args = []
        for record in Concentrator.search([('dc_id', 'in', list(certificates))]):
            fingerprint, url = certificates[record.dc_id]
            args += [
                [record],
                {
                    'certificate_fingerprint': fingerprint,
                    'certificate_revoked': False,
                    'url': url,
                },
            ]
        if args:
            Concentrator.write(*args)


def store_headend_credentials(cert_pem: str, key_pem: str) -> None:
    """This run's head-end certificate and key in the Communication Settings
    (the key encrypted with the master key), as a Key Custodian enters them."""
    from trytond.pool import Pool
    from trytond.transaction import without_check_access

    Communication = Pool().get('prepaid.headend.communication')
    with without_check_access():
        Communication.write(
            [Communication(1)], {'dcu_certificate': cert_pem, 'dcu_key': key_pem}
        )


def in_transaction(database: str) -> Callable[[Callable[[], Any]], Any]:
    """Run a function in its own committed transaction as root, in the
    company of the admin user (as scripts/setup_demo.py does)."""

    def run(func: Callable[[], Any]) -> Any:
        from trytond.modules.prepaid_vending.transactions import run_transaction
        from trytond.pool import Pool
        from trytond.transaction import Transaction

        def as_admin_company() -> Any:
            User = Pool().get('res.user')
            (admin,) = User.search([('login', '=', 'admin')])
            company = admin.company.id
            with Transaction().set_context(company=company, companies=[company]):
                return func()

        return run_transaction(database, 0, as_admin_company)

    return run


# ------------------------------------------------------------ the processes


def concentrator_routes_only(app: Callable, database: str) -> Callable:
    """trytond's WSGI application for the concentrator routes of ``database``
    only: anything else answers 404 (nginx's ``location / { return 404; }``)"""
    prefix = f'/{database}/concentrator/'

    def application(environ, start_response):
        if not environ.get('PATH_INFO', '').startswith(prefix):
            start_response('404 Not Found', [('Content-Type', 'text/plain')])
            return [b'not found\n']
        return app(environ, start_response)

    return application


class DemoConcentrators:
    """The TLS terminator in front of trytond's route and the simulated
    concentrators (see the module's docstring).

    ``transaction(func)`` runs ``func`` in a committed transaction with the
    demo company in the context (:func:`in_transaction`; the tests pass
    theirs); ``app`` is trytond's WSGI application."""

    def __init__(
        self,
        database: str,
        app: Callable,
        pki_dir: Path | str,
        transaction: Callable[[Callable[[], Any]], Any],
        *,
        port: int = 0,
        host: str = '127.0.0.1',
        dc_ids: tuple[str, ...] = DCU_IDS,
        meters: int = METERS_PER_DCU,
        start: dt.datetime | None = None,
    ) -> None:
        """``start``: the concentrators' clock at start (UTC; None: the
        simulator's fixed date, for tests on simulated time)."""
        self.database = database
        self.app = app
        self.pki_dir = Path(pki_dir)
        self.transaction = transaction
        self.port = port
        self.host = host
        self.dc_ids = dc_ids
        self.meters = meters
        self.start_at = start
        self.front = None
        self.sim = None
        self.url: str | None = None  # the head-end's, for the concentrators
        self.urls: dict[str, str] = {}  # the concentrators' services
        self.plan: list[tuple[str, tuple[str, ...]]] = []
        self.tls_refusals: list[tuple[str, str, str]] = []

    def start(self) -> DemoConcentrators:
        from trytond.modules.prepaid_headend.concentrator.httpd import HttpsWsgiServer
        from trytond.modules.prepaid_headend.concentrator.messages import ReportType
        from trytond.modules.prepaid_headend.concentrator.tls import (
            Peer,
            Reloading,
            server_context,
        )

        from simulators.dcu import DcuSimulator, G3Config, TestPki

        self.plan = self.transaction(
            lambda: ensure_concentrators(self.dc_ids, self.meters)
        )
        pki = TestPki(self.pki_dir, name=CA_NAME)
        hes = pki.issue(HES_NAME)
        self.front = HttpsWsgiServer(
            on_tls_error=lambda *refusal: self.tls_refusals.append(refusal)
        )
        listener = self.front.listen(
            concentrator_routes_only(self.app, self.database),
            Reloading(server_context, hes.cert, hes.key, pki.ca_cert, pki.crl),
            port=self.port,
            host=self.host,
            name='HES',
        )
        self.front.start()
        self.url = f'https://{self.host}:{listener.port}/{self.database}/concentrator'
        self.sim = DcuSimulator(
            len(self.plan),
            1,
            pki=pki,
            headend_url=self.url,
            host=self.host,
            first_port=self.port + 1 if self.port else 0,
            per_dc={
                number: {'dc_id': dc_id, 'meter_ids': serials}
                for number, (dc_id, serials) in enumerate(self.plan, 1)
            },
            g3=G3Config(
                join_spread_s=JOIN_SPREAD_S, never_join_fraction=0.0, flaky_fraction=0.0
            ),
            network_tick_s=NETWORK_TICK_S,
            collector_fraction=0.0,
            start=self.start_at,
        )
        try:
            self.sim.start()
            self.urls = {name: self.sim.url(name) for name in self.sim.concentrators}
            certificates = {
                name: (
                    Peer.from_pem(creds.cert.read_text()).fingerprint,
                    self.urls[name],
                )
                for name, creds in self.sim.credentials.items()
            }
            # Registered before the first delivery: nothing is refused.
            self.transaction(lambda: register_certificates(certificates))
            self.transaction(
                lambda: store_headend_credentials(
                    hes.cert.read_text(), hes.key.read_text()
                )
            )
            serials = [serial for _, group in self.plan for serial in group]
            self.transaction(lambda: give_gateway_channels(serials))
        except BaseException:
            self.stop()
            raise
        for dc in self.sim.concentrators.values():
            for report_type in (
                ReportType.DC_PARAMETERS,
                ReportType.METER_LIST,
                ReportType.INSTANT,
            ):
                self.sim.clock.after(FIRST_REPORT_S, dc.collect_now, report_type)
        return self

    def stop(self) -> None:
        if self.sim is not None:
            self.sim.stop()
        if self.front is not None:
            self.front.stop()

    def describe(self) -> dict[str, Any]:
        return {
            'headend': self.url,
            'concentrators': [
                {'id': dc_id, 'url': self.urls[dc_id], 'meters': list(serials)}
                for dc_id, serials in self.plan
            ],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m prepaid_demo.concentrators',
        description="The demo's simulated concentrators and the TLS terminator "
        "in front of trytond's concentrator route (test keys only).",
    )
    parser.add_argument('--database', '-d', required=True)
    parser.add_argument('--port', type=int, default=DEFAULT_PORT)
    parser.add_argument('--pki-dir', required=True)
    parser.add_argument('--speed', type=float, default=1.0)
    args = parser.parse_args(argv)

    # trytond's application module must be imported before any thread runs.
    from trytond.application import app
    from trytond.pool import Pool

    Pool(args.database).init()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    demo = DemoConcentrators(
        args.database,
        app,
        args.pki_dir,
        in_transaction(args.database),
        port=args.port,
        # On the head-end's time: readings, events and the concentrators'
        # clocks are today's, not the simulator's fixed date.
        start=dt.datetime.now(dt.UTC).replace(microsecond=0),
    )
    try:
        demo.start()
    except (ValueError, OSError) as error:
        print(f'prepaid_demo.concentrators: {error}', file=sys.stderr)
        return 2
    try:
        print(json.dumps(demo.describe()), flush=True)
        wall, virtual = time.monotonic(), demo.sim.clock.time()
        while not stop.wait(1.0):
            demo.sim.clock.advance_to(virtual + (time.monotonic() - wall) * args.speed)
    finally:
        demo.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
