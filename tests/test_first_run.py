"""The first run on a fresh machine, as a new user follows the README.

From a fresh copy of the repository, in a clean environment, the test runs the
demo command the README's Set-up section gives, on free ports, and then:

1. waits until the web client answers (sao's index page and its scripts);
2. logs in through JSON-RPC (``common.db.login`` on ``/<db>/rpc/``, what sao
   calls), opens a cashier shift at the Head Office (``create``, as sao saves
   a new record) and sells through the Sell Electricity wizard (sao's
   ``wizard.<name>.create``/``execute`` calls): a keypad meter's token, which
   the STS engine decodes with the demo key to the kWh sold, and a smart
   meter's sale, whose remote credit the demo's own processes (the queue and
   the scheduler) deliver until the simulated meter confirms it (token
   status 3, its credit register holding the kWh sold);
3. stops the demo with SIGINT to the script (Ctrl-C) and checks that nothing
   it started is left: its process group, any process in the copy, the ports;
4. runs the command again: nothing is created twice (same counts through
   RPC), login works, files that hold secrets are 0600 (also those loosened
   in between); a third run while it serves says so and starts nothing;
   SIGTERM stops it, again leaving nothing.

What it reuses, to stay offline and fast (no network but 127.0.0.1):

- the virtualenv ``scripts/bootstrap.sh`` built (``.venv``; a pip install
  would need the network).  It is copied with hard links (a plain copy across
  file systems) and relocated offline: the few files that name the original
  checkout (script shebangs, the editable install's path finder, pyvenv.cfg,
  direct_url.json) are rewritten into NEW files, never through a hard link,
  so the original virtualenv stays as it was.  Its requirements stamp then
  matches the copy, and the bootstrap installs nothing;
- the sao web client, as a symbolic link.

Nothing else: the copy holds the files git tracks plus the untracked ones it
does not ignore (a developer's uncommitted work is tested too), and the demo
runs with only PATH (the system's, no virtualenv), HOME (new and empty), LANG
and PREPAID_DEMO_CUSTOMERS (a small utility, for time); no TRYTOND_*
variable.  Its output must show no installation step.  Under CI=true a
missing piece (git, the virtualenv, sao) is a failure, never a skip.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATABASE = 'demo'
METERS = 20  # simulated meters the demo starts (scripts/run_demo.py)
DCU_PORTS = 3  # the head-end's TLS port for the concentrators, one each
DCU_IDS = ('DEMO-DCU-1', 'DEMO-DCU-2')
CUSTOMERS = '20'
CLEAN_PATH = '/usr/local/bin:/usr/bin:/bin'
START_TIMEOUT = 300  # a first run on a busy 2-core machine
DELIVERY_TIMEOUT = 150  # the scheduler runs every minute
#: Models whose counts must not change when the demo runs again.
COUNTED = (
    'party.party',
    'prepaid.meter',
    'prepaid.service_point',
    'prepaid.transformer',
    'prepaid.tariff',
    'prepaid.sales_point',
    'prepaid.vend',
    'prepaid.meter.command',
    'prepaid.cashier.session',
    'prepaid.concentrator',
)

pytestmark = pytest.mark.slow


def require(condition: bool, message: str) -> None:
    if condition:
        return
    if os.environ.get('CI', '').lower() == 'true':
        pytest.fail(message + ' (CI=true: a missing piece is a failure)')
    pytest.skip(message)


# ------------------------------------------------------------ the fresh copy


def demo_command() -> list[str]:
    "The demo command of the README's Set-up section (an indented code line)"
    readme = (ROOT / 'README.md').read_text()
    section = readme.split('## Set-up', 1)[1].split('\n## ', 1)[0]
    commands = re.findall(r'^    (\./scripts/demo\b.*)$', section, re.M)
    assert commands, "the README's Set-up section shows no ./scripts/demo command"
    return shlex.split(commands[0])


def repository_files() -> list[str]:
    "Tracked files and untracked files git does not ignore (paths from ROOT)"
    listing = subprocess.run(
        ['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({p for p in listing.split('\0') if p})


def copy_repository(target: Path) -> None:
    for name in repository_files():
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree: a fresh clone would lack it too
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)


def link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:  # another file system
        shutil.copy2(source, destination)


def requirements_stamp(root: Path) -> str:
    "What scripts/bootstrap.sh compares with .venv/.requirements.sha1"
    content = (root / 'requirements.txt').read_bytes()
    content += (root / 'pyproject.toml').read_bytes()
    return hashlib.sha1(content).hexdigest()


def relocate_virtualenv(source_root: Path, target_root: Path) -> None:
    """Copy source_root/.venv to target_root/.venv (hard links) and point the
    files that name source_root at target_root, each written as a new file."""
    source, target = source_root / '.venv', target_root / '.venv'
    shutil.copytree(source, target, symlinks=True, copy_function=link_or_copy)
    old = re.compile(re.escape(str(source_root)).encode() + rb'(?=[/"\'\s]|$)')
    site = next(target.glob('lib/python3*/site-packages'))
    candidates = [
        target / 'pyvenv.cfg',
        *(p for p in (target / 'bin').iterdir() if p.is_file() and not p.is_symlink()),
        *site.glob('*.pth'),
        *site.glob('__editable__*.py'),
        *site.glob('*.dist-info/direct_url.json'),
    ]
    for path in candidates:
        content = path.read_bytes()
        if not old.search(content):
            continue
        replacement = path.with_name(path.name + '.relocated')
        replacement.write_bytes(old.sub(str(target_root).encode(), content))
        shutil.copymode(path, replacement)
        os.replace(replacement, path)  # a new inode: the original is untouched
    for cached in site.glob('__pycache__/__editable__*'):
        cached.unlink()


@pytest.fixture(scope='module')
def fresh_copy(tmp_path_factory) -> Path:
    require(shutil.which('git') is not None, 'git is not installed')
    require(
        subprocess.run(
            ['git', 'rev-parse', '--is-inside-work-tree'],
            cwd=ROOT,
            capture_output=True,
        ).returncode
        == 0,
        f'{ROOT} is not a git checkout',
    )
    stamp = ROOT / '.venv' / '.requirements.sha1'
    require(
        stamp.exists() and stamp.read_text().strip() == requirements_stamp(ROOT),
        'the virtualenv is missing or older than requirements.txt: run '
        'scripts/demo or scripts/test once',
    )
    sao = (ROOT / 'sao').resolve()
    require((sao / 'tryton-sao' / 'index.html').exists(), 'sao is not installed')
    copy = tmp_path_factory.mktemp('first-run') / 'prepaid'
    copy.mkdir()
    copy_repository(copy)
    relocate_virtualenv(ROOT, copy)
    (copy / 'sao').symlink_to(sao, target_is_directory=True)
    return copy


# ----------------------------------------------------------- ports, processes


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def free_range(count: int) -> int:
    "The first of count free consecutive ports, below the ephemeral range"
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(20000, 32000 - count)
        if all(port_free(p) for p in range(first, first + count)):
            return first
    raise RuntimeError(f'no {count} consecutive free ports')


def processes_in(folder: Path) -> list[str]:
    "Processes working in folder (every process the demo starts does)"
    found = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / 'cwd'))
            command = (entry / 'cmdline').read_bytes().replace(b'\0', b' ')
        except OSError:
            continue
        if cwd == folder or folder in cwd.parents:
            found.append(f'{entry.name}: {command.decode(errors="replace")}')
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Demo:
    "One run of the README's demo command in the copy"

    def __init__(
        self, copy: Path, port: int, meter_port: int, dcu_port: int, name: str
    ):
        self.copy, self.port, self.meter_port = copy, port, meter_port
        self.dcu_port = dcu_port
        self.log = copy.parent / f'{name}.log'
        self.url = f'http://127.0.0.1:{port}/'
        home = copy.parent / f'home-{name}'
        home.mkdir()
        self.env = {
            'PATH': CLEAN_PATH,
            'HOME': str(home),
            'LANG': 'C.UTF-8',
            'PREPAID_DEMO_CUSTOMERS': CUSTOMERS,
        }
        self.process: subprocess.Popen | None = None
        self.group: int | None = None

    def command(self) -> list[str]:
        return (
            demo_command()
            + ['--port', str(self.port)]
            + [
                '--meter-port',
                str(self.meter_port),
            ]
            + ['--dcu-port', str(self.dcu_port)]
        )

    def start(self) -> None:
        with open(self.log, 'w') as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.copy,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The script alone gets the signals, as from a terminal.
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors='replace')

    def wait_until_served(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process.poll() is None, (
                f'the demo stopped (exit {self.process.returncode}):\n'
                + self.output()[-4000:]
            )
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:
                    page = answer.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, (
                    'the web client never answered:\n' + self.output()[-4000:]
                )
                time.sleep(1)
        # sao's index page, and the scripts it loads from its own folder.
        assert '<title>Tryton</title>' in page and 'dist/tryton-sao.js' in page
        for script in ('dist/tryton-sao.js', 'node_modules/jquery/dist/jquery.js'):
            with urllib.request.urlopen(self.url + script, timeout=10) as answer:
                assert answer.status == 200
        state = json.loads((self.copy / 'var' / 'demo.json').read_text())
        self.group = state['process_group']
        assert group_alive(self.group)

    def stop(self, signum: int) -> None:
        os.kill(self.process.pid, signum)
        assert self.process.wait(timeout=60) == 0, self.output()[-4000:]

    def kill(self) -> None:
        "Clean-up after a failure: nothing of the demo may outlive the test"
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        if self.group and processes_in(self.copy):
            try:
                os.killpg(self.group, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def assert_nothing_left(self) -> None:
        assert self.group and not group_alive(self.group), 'a demo process is left'
        assert processes_in(self.copy) == []
        ports = [
            self.port,
            *range(self.meter_port, self.meter_port + METERS),
            *range(self.dcu_port, self.dcu_port + DCU_PORTS),
        ]
        assert [p for p in ports if not port_free(p)] == []
        assert not (self.copy / 'var' / 'demo.json').exists()


# ------------------------------------------------------------------ JSON-RPC


def encode(value):
    if isinstance(value, Decimal):
        return {'__class__': 'Decimal', 'decimal': str(value)}
    raise TypeError(f'{value!r} is not JSON')


def decode(value: dict):
    if value.get('__class__') == 'Decimal':
        return Decimal(value['decimal'])
    return value


class JsonRpc:
    "The JSON-RPC calls sao makes, with its session header"

    def __init__(self, url: str, database: str):
        self.endpoint = f'{url}{database}/rpc/'
        self.authorization = None
        self.context: dict = {}
        self.calls = 0

    def __call__(self, method: str, *params):
        self.calls += 1
        body = json.dumps(
            {'id': self.calls, 'method': method, 'params': list(params)},
            default=encode,
        ).encode()
        request = urllib.request.Request(
            self.endpoint, data=body, headers={'Content-Type': 'application/json'}
        )
        if self.authorization:
            request.add_header('Authorization', self.authorization)
        with urllib.request.urlopen(request, timeout=120) as answer:
            reply = json.loads(answer.read(), object_hook=decode)
        if reply.get('error'):
            raise AssertionError(f'{method}: {reply["error"]}')
        return reply['result']

    def login(self, login: str, password: str) -> int:
        user_id, session = self('common.db.login', login, {'password': password}, 'en')[
            :2
        ]
        token = base64.b64encode(f'{login}:{user_id}:{session}'.encode()).decode()
        self.authorization = f'Session {token}'
        self.context = self('model.res.user.get_preferences', True, {})
        return user_id

    def model(self, name: str, method: str, *args):
        return self(f'model.{name}.{method}', *args, self.context)

    def search(self, name: str, domain: list, limit=None, order=None) -> list[int]:
        return self.model(name, 'search', domain, 0, limit, order)

    def read(self, name: str, ids: list[int], fields: list[str]) -> list[dict]:
        return self.model(name, 'read', ids, fields)

    def count(self, name: str) -> int:
        return self.model(name, 'search_count', [])


def sell(rpc: JsonRpc, meter: dict, tender: Decimal) -> dict:
    """Sell through the Sell Electricity wizard as sao drives it: fill what the
    cashier types in each view and press its default button, up to the view
    that shows the vend (the sale view has no default button, so that Enter
    never sells: there the cashier presses Issue).  Returns that view's
    values."""
    wizard = 'wizard.prepaid.vend.wizard'
    session, state, _ = rpc(f'{wizard}.create', rpc.context)
    typed = {
        'search': meter['serial'],
        'meter': meter['id'],
        'tender': tender,
        'payment_method': 'cash',
    }
    result = rpc(f'{wizard}.execute', session, {}, state, rpc.context)
    try:
        for _ in range(6):
            view = result['view']
            fields = view['fields_view']['fields']
            if 'vend' in fields and view['defaults'].get('vend'):
                return view['defaults']
            values = {k: v for k, v in typed.items() if k in fields}
            buttons = view['buttons']
            (button,) = [b['state'] for b in buttons if b.get('default')] or [
                b['state'] for b in buttons if b['state'] == 'issue'
            ]
            result = rpc(
                f'{wizard}.execute',
                session,
                {view['state']: values},
                button,
                rpc.context,
            )
        raise AssertionError(f'the wizard never showed the vend: {result}')
    finally:
        rpc(f'{wizard}.delete', session, rpc.context)


def demo_meter(rpc: JsonRpc, kind: str) -> dict:
    "An installed, STS-commissioned prepaid meter of kind (smart: with a channel)"
    domain = [
        ('kind', '=', kind),
        ('state', '=', 'installed'),
        ('payment_mode', '=', 'prepaid'),
        ('sts_pan', '!=', None),
    ]
    if kind == 'smart_prepaid':
        domain.append(('hes_host', '!=', None))
    ids = rpc.search('prepaid.meter', domain, limit=1, order=[('serial', 'ASC')])
    assert ids, f'the demo has no commissioned {kind} meter'
    fields = ['serial', 'sts_pan', 'sts_sgc', 'sts_krn', 'sts_tariff_index']
    return rpc.read('prepaid.meter', ids, fields)[0]


def wait_for_concentrators(rpc: JsonRpc) -> list[dict]:
    """The demo's concentrators once online with a first report and their
    meters joined (the demo announces joins within a minute)"""
    deadline = time.monotonic() + 180
    while True:
        ids = rpc.search('prepaid.concentrator', [('dc_id', 'in', list(DCU_IDS))])
        found = rpc.read(
            'prepaid.concentrator', ids, ['dc_id', 'state', 'last_report', 'directory']
        )
        ready = [
            c
            for c in found
            if c['state'] == 'online' and c['last_report'] and c['directory']
        ]
        if len(ready) == len(DCU_IDS) or time.monotonic() > deadline:
            return found
        time.sleep(2)


def open_shift(rpc: JsonRpc) -> None:
    if rpc.search('prepaid.cashier.session', [('state', '=', 'open')]):
        return
    (head_office,) = rpc.search('prepaid.sales_point', [('code', '=', 'HO')])
    rpc.model('prepaid.cashier.session', 'create', [{'sales_point': head_office}])


def wait_for_delivery(rpc: JsonRpc, vend_id: int) -> dict:
    "The remote-credit command of the vend once the meter answered it"
    fields = ['state', 'last_error', 'hes_token_status', 'hes_meter_credit']
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        ids = rpc.search('prepaid.meter.command', [('vend', '=', vend_id)])
        assert len(ids) == 1, ids
        (command,) = rpc.read('prepaid.meter.command', ids, fields)
        if command['state'] in {'accepted', 'rejected', 'failed'}:
            return command
        assert time.monotonic() < deadline, f'never delivered: {command}'
        time.sleep(2)


def secret_files(copy: Path) -> list[Path]:
    var = copy / 'var'
    return [
        var / 'admin-password',
        var / 'master.key',
        var / 'meter-keys.json',
        var / 'db' / f'{DATABASE}.sqlite',
        *sorted((var / 'log').iterdir()),
    ]


def modes(paths) -> dict[str, str]:
    return {p.name: oct(p.stat().st_mode & 0o777) for p in paths}


# ---------------------------------------------------------------------- test


def test_first_run_sells_stops_and_runs_again(fresh_copy):
    from trytond.modules.prepaid_sts.engine import decode_token

    from prepaid_demo.sts import demo_decoder_key

    port, meter_port = free_port(), free_range(METERS)
    dcu_port = free_range(DCU_PORTS)
    first = Demo(fresh_copy, port, meter_port, dcu_port, 'first')
    try:
        first.start()
        first.wait_until_served()
        # The command prints its banner once it has seen the web client
        # answer, so just after the test has: wait for it.
        banner = f'http://127.0.0.1:{port}/'
        deadline = time.monotonic() + 60
        while banner not in first.output() and time.monotonic() < deadline:
            time.sleep(0.5)
        output = first.output()
        assert 'Installing' not in output and 'Creating the virtualenv' not in output
        assert banner in output, output[-4000:]

        rpc = JsonRpc(first.url, DATABASE)
        assert rpc.login('admin', 'admin') == 1
        open_shift(rpc)

        keypad = demo_meter(rpc, 'sts_keypad')
        receipt = sell(rpc, keypad, Decimal('100.00'))
        (vend,) = rpc.read('prepaid.vend', [receipt['vend']], ['units_kwh'])
        digits = re.findall(r'\d{4}(?: \d{4}){4}', receipt['tokens'])
        assert len(digits) == 1, receipt['tokens']
        key = demo_decoder_key(SimpleNamespace(**keypad))
        token = decode_token(digits[0].replace(' ', ''), key, '07')
        assert token.crc_ok and (token.token_class, token.subclass) == (0, 0)
        assert token.amount == vend['units_kwh'] > 0

        smart = demo_meter(rpc, 'smart_prepaid')
        receipt = sell(rpc, smart, Decimal('150.00'))
        (vend,) = rpc.read('prepaid.vend', [receipt['vend']], ['units_kwh'])
        command = wait_for_delivery(rpc, receipt['vend'])
        assert command['state'] == 'accepted', command
        assert command['hes_token_status'] == 3  # the meter's "execution OK"
        assert command['hes_meter_credit'] >= float(vend['units_kwh']) * 1000

        # Two concentrators online, their meters joined, not misplaced.
        concentrators = wait_for_concentrators(rpc)
        assert sorted(c['dc_id'] for c in concentrators) == list(DCU_IDS)
        for concentrator in concentrators:
            assert concentrator['state'] == 'online', concentrator
            assert concentrator['last_report'], concentrator
            entries = rpc.read(
                'prepaid.concentrator.directory',
                concentrator['directory'],
                ['status', 'approval', 'meter', 'topology_mismatch'],
            )
            assert entries and all(
                (e['status'], e['approval'], bool(e['meter']), e['topology_mismatch'])
                == ('joined', 'approved', True, False)
                for e in entries
            ), entries
        assert 'Concentrators: DEMO-DCU-1, DEMO-DCU-2' in first.output()

        counts = {name: rpc.count(name) for name in COUNTED}
        assert modes(secret_files(fresh_copy)) == {
            p.name: '0o600' for p in secret_files(fresh_copy)
        }
        first.stop(signal.SIGINT)
        assert 'Demo stopped (SIGINT)' in first.output()
        first.assert_nothing_left()
    finally:
        first.kill()

    # An older demo left files others could read: the next run tightens them.
    (fresh_copy / 'var' / 'admin-password').chmod(0o644)
    (fresh_copy / 'var' / 'db' / f'{DATABASE}.sqlite').chmod(0o644)

    second = Demo(fresh_copy, port, meter_port, dcu_port, 'second')
    third = Demo(fresh_copy, port, meter_port, dcu_port, 'third')
    try:
        second.start()
        second.wait_until_served()
        output = second.output()
        assert 'Creating the demo database' not in output
        summary = re.search(r'^Demo data: (.*)$', output, re.M).group(1)
        for nothing_new in (
            'created False',
            'tariffs_created 0',
            'sts_meters_commissioned 0',
            'meter_channels_moved 0',
            'system_defaults_set 0',
        ):
            assert nothing_new in summary
        rpc = JsonRpc(second.url, DATABASE)
        assert rpc.login('admin', 'admin') == 1
        assert {name: rpc.count(name) for name in COUNTED} == counts
        assert modes(secret_files(fresh_copy)) == {
            p.name: '0o600' for p in secret_files(fresh_copy)
        }
        assert oct((fresh_copy / 'var').stat().st_mode & 0o777) == '0o700'

        # Once more while it serves: it says so and starts nothing.
        third.start()
        assert third.process.wait(timeout=120) == 0, third.output()
        assert 'already running' in third.output()
        assert f'http://127.0.0.1:{port}/' in third.output()

        second.stop(signal.SIGTERM)
        assert 'Demo stopped (SIGTERM)' in second.output()
        second.assert_nothing_left()
    finally:
        third.kill()
        second.kill()


def test_setup_demo_takes_the_backend_from_the_configuration(tmp_path):
    """setup_demo.py with no TRYTOND_* variable at all: proteus once took the
    bare database name for the URI ("No module named 'trytond.backend.'");
    now trytond's own default (sqlite://, databases in ~/db) is used, and a
    configured URI gets the database name as its path."""
    python = ROOT / '.venv' / 'bin' / 'python'
    require(python.exists(), 'the virtualenv is missing: run scripts/demo once')
    env = {'PATH': CLEAN_PATH, 'HOME': str(tmp_path), 'LANG': 'C.UTF-8'}
    missing = subprocess.run(
        [python, ROOT / 'scripts' / 'setup_demo.py', '-d', 'missing'],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0
    assert 'trytond.backend' not in missing.stderr
    assert f"Database '{tmp_path}/db/missing.sqlite' doesn't exist" in missing.stderr

    def uri(**variables) -> str:
        code = 'import setup_demo; print(setup_demo.database_uri("demo"))'
        return subprocess.run(
            [python, '-c', code],
            cwd=ROOT / 'scripts',
            env={**env, **variables},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()

    assert uri() == 'sqlite:///demo'
    postgresql = 'postgresql://tryton:secret@db:5432/'
    assert uri(TRYTOND_DATABASE__URI=postgresql) == postgresql + 'demo'
    assert uri(TRYTOND_DATABASE_URI=postgresql) == postgresql + 'demo'
