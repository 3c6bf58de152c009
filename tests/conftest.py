"""Shared fixtures of the tests in this folder.

The concentrator tests (test_dcu_*.py): ``pki``, one test CA for the session
(tests that revoke certificates make a CA of their own), and ``hes``, the
head-end's service with an in-memory backend over HTTPS on a free port.

The browser tests: a demo server with the sao web client and a
logged-in headless Chromium page.

One server per test session: trytond-admin and scripts/setup_demo.py build a
SQLite demo database with 20 customers (the same set-up as ``scripts/demo``,
sales set-up included, with a master key of its own), then trytond serves it
with sao on a free loopback port.  Screenshots go to test-artifacts/.
"""

import functools
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / 'test-artifacts'
SAO = ROOT / 'sao' / 'tryton-sao'
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
# trytond's console scripts are run with this interpreter: those of a
# copied virtualenv name the original's python in their first line, whose
# packages may differ.
BIN = Path(sys.executable).parent
DATABASE = 'browser'
MASTER_KEY_ENV = 'TRYTOND_PREPAID__MASTER_KEY'
CHROMIUM_ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
]


def require(condition: bool, message: str) -> None:
    if condition:
        return
    if os.environ.get('CI', '').lower() == 'true':
        pytest.fail(message + ' (CI=true: a missing browser is a failure)')
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _master_key() -> str:
    # The demo stores its vending key encrypted: it needs a master key.
    from cryptography.fernet import Fernet

    return os.environ.get(MASTER_KEY_ENV) or Fernet.generate_key().decode()


@pytest.fixture(scope='session')
def demo_server(tmp_path_factory):
    "The running demo server: url, database name and SQLite file"
    require(Path(CHROMIUM).exists(), f'Chromium not found at {CHROMIUM}')
    require((SAO / 'index.html').exists(), f'sao not installed in {SAO}')
    folder = tmp_path_factory.mktemp('browser-db')
    (folder / f'{DATABASE}.sqlite').touch()
    password = folder / 'password'
    password.write_text('admin\n')
    port = free_port()
    env = {
        **os.environ,
        'TRYTOND_DATABASE__URI': 'sqlite://',
        'TRYTOND_DATABASE__PATH': str(folder),
        'TRYTOND_WEB__LISTEN': f'127.0.0.1:{port}',
        'TRYTOND_WEB__ROOT': str(SAO),
        'TRYTONPASSFILE': str(password),
        'PREPAID_DEMO_CUSTOMERS': '20',
        MASTER_KEY_ENV: _master_key(),
    }
    env.pop('TRYTOND_CONFIG', None)
    log = open(folder / 'server.log', 'w')
    subprocess.run(
        [
            sys.executable,
            BIN / 'trytond-admin',
            '-d',
            DATABASE,
            '--all',
            '--email',
            'admin@example.com',
        ],
        env=env,
        check=True,
        stdout=log,
        stderr=log,
    )
    subprocess.run(
        [sys.executable, ROOT / 'scripts' / 'setup_demo.py', '-d', DATABASE],
        env=env,
        check=True,
        stdout=log,
        stderr=log,
    )
    process = subprocess.Popen(
        [sys.executable, BIN / 'trytond', '-d', DATABASE],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    url = f'http://127.0.0.1:{port}/'
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError as error:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(
                    'trytond did not start: ' + (folder / 'server.log').read_text()
                ) from error
            time.sleep(0.3)
    yield SimpleNamespace(
        url=url, database=DATABASE, file=folder / f'{DATABASE}.sqlite'
    )
    os.killpg(process.pid, 15)
    process.wait(timeout=10)
    log.close()


@pytest.fixture(scope='session')
def server(demo_server):
    "URL of the web client"
    return demo_server.url


@pytest.fixture(scope='session')
def database(demo_server):
    "Name of the demo database (the first part of sao's #-URLs)"
    return demo_server.database


@pytest.fixture(scope='session')
def artifacts():
    "Folder of screenshots and browser logs (kept by CI)"
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope='module')
def browser(server):
    """Chromium for one test module.  Not session-wide: Playwright's sync API
    keeps an asyncio loop running while it is open, and later modules that
    call asyncio.run() (the concentrator simulator's tests) would fail."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def log_in(page, server) -> None:
    """Log in as admin.  An Enter pressed while sao is still building its login
    form is lost (seen on a fast machine): it is pressed again until sao asks
    for the password; the first miss leaves a screenshot."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    page.goto(server)
    page.wait_for_load_state('networkidle')
    password = page.locator('input[type=password]:visible')
    for attempt in range(3):
        page.fill('input#login', 'admin')
        page.locator('input#login').press('Enter')
        try:
            password.wait_for(timeout=10_000)
            break
        except PlaywrightTimeoutError:
            if attempt == 0:
                page.screenshot(path=ARTIFACTS / 'login-retried.png')
    else:
        raise AssertionError('sao never asked for the password')
    password.fill('admin')
    password.press('Enter')
    page.wait_for_selector('text=Prepaid')


@pytest.fixture
def page(browser, server, request):
    "A fresh page, logged in as admin (each test gets its own client tabs)"
    page = browser.new_page(viewport={'width': 1280, 'height': 800})
    page.set_default_timeout(20000)
    console = open(ARTIFACTS / f'browser-console-{request.node.name}.log', 'w')
    page.on(
        'console',
        lambda message: console.write(f'{message.type}: {message.text}\n'),
    )
    page.on('pageerror', lambda error: console.write(f'pageerror: {error}\n'))
    log_in(page, server)
    yield page
    report = getattr(request.node, 'rep_call', None)
    if report is not None and report.failed:
        page.screenshot(path=ARTIFACTS / f'failed-{request.node.name}.png')
    page.close()
    console.close()


def rpc(demo_server, method: str, *params, session=None):
    """Call the demo server's JSON-RPC as admin (logs in on first use);
    returns the result, raises RuntimeError with the server's error."""
    import base64
    import json

    url = f'{demo_server.url}{demo_server.database}/rpc/'
    headers = {'Content-Type': 'application/json'}
    if method != 'common.db.login':
        if not getattr(demo_server, 'session', None):
            user_id, key, *_ = rpc(
                demo_server, 'common.db.login', 'admin', {'password': 'admin'}, 'en'
            )
            token = base64.b64encode(f'admin:{user_id}:{key}'.encode()).decode()
            demo_server.session = f'Session {token}'
        headers['Authorization'] = demo_server.session
    body = json.dumps({'id': 1, 'method': method, 'params': list(params)}).encode()
    request = urllib.request.Request(url, body, headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    if answer.get('error'):
        raise RuntimeError(f'{method}: {answer["error"]}')
    return answer['result']


@pytest.fixture(scope='session')
def demo_rpc(demo_server):
    "rpc() on the demo server: ``demo_rpc(method, *params)``"
    return functools.partial(rpc, demo_server)


@pytest.fixture(scope='session')
def simulated_meter(demo_server):
    """A demo smart meter that answers: a simulated DLMS meter in this
    process, on a free port, holding the meter's STS decoder key; the meter's
    channel points at it (and it is commissioned with the demo's STS data
    when the demo has not done so).  Yields the meter's serial."""
    from trytond.modules.prepaid_sts.engine import derive_decoder_key

    from prepaid_demo.sts import (
        DEMO_KEY_PARAMETERS,
        demo_pan,
        demo_vending_key,
    )
    from simulators.meter import MeterConfig, MeterSimulator

    fields = ['serial', 'sts_pan', 'sts_tariff_index', 'hes_host']
    meters = rpc(
        demo_server,
        'model.prepaid.meter.search_read',
        [
            ('kind', '=', 'smart_prepaid'),
            ('payment_mode', '=', 'prepaid'),
            ('state', '=', 'installed'),
            ('hes_host', '!=', None),
        ],
        0,
        50,
        [('serial', 'ASC')],
        fields + ['id'],
        {},
    )
    meter = next((m for m in meters if m['sts_pan'] or demo_pan(m['serial'])), None)
    require(meter is not None, 'the demo has no smart meter with a channel')
    p = DEMO_KEY_PARAMETERS
    if not meter['sts_pan']:
        meter['sts_pan'] = demo_pan(meter['serial'])
        meter['sts_tariff_index'] = '01'
        values = {
            'sts_pan': meter['sts_pan'],
            'sts_sgc': p['sgc'],
            'sts_krn': p['krn'],
            'sts_tariff_index': meter['sts_tariff_index'],
            'sts_key_type': p['key_type'],
            'sts_base_date': p['base_date'],
            'sts_ea': p['ea'],
        }
        rpc(demo_server, 'model.prepaid.meter.write', [meter['id']], values, {})
    decoder_key = derive_decoder_key(
        demo_vending_key(),
        p['dkga'],
        meter['sts_pan'],
        int(p['key_type']),
        p['sgc'],
        meter['sts_tariff_index'],
        p['krn'],
        p['base_date'],
        p['ea'],
    )
    simulator = MeterSimulator(
        [MeterConfig(index=0, port=free_port(), seed=1, decoder_key=decoder_key)]
    ).start()
    try:
        # Only a Key Custodian moves the channel of a meter with secrets.
        (custodian,) = rpc(
            demo_server,
            'model.res.group.search',
            [('name', '=', 'Key Custodian')],
            0,
            1,
            None,
            {},
        )
        (admin,) = rpc(
            demo_server,
            'model.res.user.search',
            [('login', '=', 'admin')],
            0,
            1,
            None,
            {},
        )
        rpc(
            demo_server,
            'model.res.user.write',
            [admin],
            {'groups': [('add', [custodian])]},
            {},
        )
        rpc(
            demo_server,
            'model.prepaid.meter.write',
            [meter['id']],
            {'hes_host': '127.0.0.1', 'hes_port': simulator.port(0)},
            {},
        )
        yield SimpleNamespace(serial=meter['serial'], simulator=simulator)
    finally:
        simulator.stop()


# -- concentrator tests ------------------------------------------------------
@pytest.fixture(scope='session')
def pki(tmp_path_factory):
    from simulators.dcu import TestPki

    return TestPki(tmp_path_factory.mktemp('pki'))


@pytest.fixture
def hes(pki):
    from simulators.dcu.testing import HeadEndStandIn

    with HeadEndStandIn(pki) as stand_in:
        yield stand_in
