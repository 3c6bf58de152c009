"""Run the demo: ``scripts/demo`` calls this once the virtualenv and sao exist.

1. Files that hold secrets (the admin password, the master key, the database,
   logs, the simulated meters' keys) are created readable by their owner only
   (umask 077), and those of an older demo are tightened.
2. One demo per checkout: ``var/demo.lock`` is held while it runs.  A second
   run says where the first one serves and starts nothing.
3. The web port (``--port``, ``PREPAID_DEMO_PORT``, 8000), the 20 ports of
   the simulated meters (``--meter-port``, ``PREPAID_DEMO_METER_PORT``, 4061)
   and the 3 ports of the concentrators (``--dcu-port``,
   ``PREPAID_DEMO_DCU_PORT``, 4091: the head-end's TLS port for them, then
   each concentrator's service) must be free, or it says which one is taken
   and stops before any work.
4. The database ``demo`` (SQLite, ``var/db``) is created the first time,
   upgraded when the modules' code changed, and completed by
   ``setup_demo.py`` (idempotent: nothing is created twice).
5. It runs what production runs for the demo's features, as child processes:

   - ``prepaid-meter-sim``: 20 simulated DLMS meters, holding the STS decoder
     keys of the demo smart meters whose channels point at them;
   - ``python -m prepaid_demo.concentrators``: two simulated concentrators
     with a few demo meters each, reporting over mutual TLS to trytond's
     concentrator route, served in that process behind the concentrator
     package's HTTPS server (trytond does not speak TLS);
   - ``trytond``: the web client and JSON-RPC.  Queued tasks (e.g. the remote
     credit of a smart-meter sale) run in the process that queued them, right
     after its commit: ``trytond-worker`` waits for PostgreSQL's LISTEN/NOTIFY
     and cannot run on SQLite (it fails on start);
   - ``trytond-cron``: the scheduled actions, every minute (reading schedules,
     head-end command dispatch and its retries, load management, postings).

6. Ctrl-C (SIGINT), SIGTERM or SIGHUP stops them all.  The children share one
   process group of their own, so a terminal's Ctrl-C reaches only this
   script, which sends SIGTERM to the group (the cron's pool process
   included), and SIGKILL to what is left after ``STOP_TIMEOUT`` seconds.  A
   child that dies on its own stops the demo as well, with the tail of its
   log: a demo without its scheduler would quietly not deliver.  Processes
   left by a run that was killed outright (SIGKILL) are stopped by the next
   run, which finds them through ``var/demo.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / '.venv' / 'bin'
VAR = ROOT / 'var'
DB_DIR = VAR / 'db'
LOG_DIR = VAR / 'log'
LOCK_FILE = VAR / 'demo.lock'
STATE_FILE = VAR / 'demo.json'
PASSWORD_FILE = VAR / 'admin-password'
MASTER_KEY_FILE = VAR / 'master.key'
SIMULATOR_KEYS_FILE = VAR / 'meter-keys.json'
SAO_DIR = ROOT / 'sao' / 'tryton-sao'

DATABASE = 'demo'
DEFAULT_PORT = 8000
DEFAULT_METER_PORT = 4061
DEFAULT_DCU_PORT = 4091
METERS = 20
DCU_PORTS = 3  # the head-end's TLS port for the concentrators, then one each
DCU_PKI_DIR = VAR / 'dcu-pki'
MODULES = ('prepaid_vending', 'prepaid_sts', 'prepaid_headend')
STOP_TIMEOUT = 10
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
START_TIMEOUT = 120


class Stop(Exception):
    "A signal asked the demo to stop"

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class DemoError(Exception):
    "The demo cannot start: the message says why and what to do"


def say(text: str = '') -> None:
    try:
        print(text, flush=True)
    except OSError:
        pass  # the terminal is gone (SIGHUP): stopping must go on


class Signals:
    """SIGINT, SIGTERM and SIGHUP raise Stop, except inside ``starting()``:
    between the start of a child and its registration a signal waits, so
    that no child escapes the stop."""

    def __init__(self):
        self.deferring = False
        self.pending: int | None = None

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.handle)

    def handle(self, signum, frame) -> None:
        if self.deferring:
            self.pending = signum
        else:
            raise Stop(signum)

    @contextlib.contextmanager
    def starting(self):
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
            if self.pending is not None:
                raise Stop(self.pending)


SIGNALS = Signals()


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a port number: {text!r}') from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f'a port is from 1 to 65535, not {port}')
    return port


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='scripts/demo',
        description='Install and run the demo: a SQLite database with a small '
        'utility, 20 simulated meters, two simulated concentrators, the '
        'scheduler, and the Tryton web client on http://127.0.0.1:PORT/.  '
        'Ctrl-C stops everything it started.',
    )
    parser.add_argument(
        '--port',
        type=port_number,
        help=f'port of the web client (default: PREPAID_DEMO_PORT or {DEFAULT_PORT})',
    )
    parser.add_argument(
        '--meter-port',
        type=port_number,
        help=f'port of the first of the {METERS} simulated meters (default: '
        f'PREPAID_DEMO_METER_PORT or {DEFAULT_METER_PORT})',
    )
    parser.add_argument(
        '--dcu-port',
        type=port_number,
        help="port of the head-end's TLS service for the simulated "
        f'concentrators; they listen on the next {DCU_PORTS - 1} (default: '
        f'PREPAID_DEMO_DCU_PORT or {DEFAULT_DCU_PORT})',
    )
    args = parser.parse_args(argv)
    for name, variable, port in (
        ('port', 'PREPAID_DEMO_PORT', DEFAULT_PORT),
        ('meter_port', 'PREPAID_DEMO_METER_PORT', DEFAULT_METER_PORT),
        ('dcu_port', 'PREPAID_DEMO_DCU_PORT', DEFAULT_DCU_PORT),
    ):
        if getattr(args, name) is None:
            try:
                setattr(args, name, port_number(os.environ.get(variable) or str(port)))
            except argparse.ArgumentTypeError as error:
                parser.error(f'{variable}: {error}')
    if args.meter_port + METERS - 1 > 65535:
        parser.error(f'--meter-port: {METERS} ports from {args.meter_port} pass 65535')
    if args.meter_port <= args.port < args.meter_port + METERS:
        parser.error('--port falls inside the simulated meters\' ports')
    if args.dcu_port + DCU_PORTS - 1 > 65535:
        parser.error(f'--dcu-port: {DCU_PORTS} ports from {args.dcu_port} pass 65535')
    dcu = range(args.dcu_port, args.dcu_port + DCU_PORTS)
    if args.port in dcu:
        parser.error("--port falls inside the concentrators' ports")
    if set(dcu) & set(range(args.meter_port, args.meter_port + METERS)):
        parser.error("--dcu-port: the concentrators' ports overlap the meters'")
    return args


# --------------------------------------------------------------- secrets


def make_private() -> None:
    """Everything the demo writes is its owner's only: the umask for new
    files (children inherit it), and chmod for what an older demo left."""
    os.umask(0o077)
    for folder in (VAR, DB_DIR, LOG_DIR):
        folder.mkdir(exist_ok=True)
    for path in [VAR, *VAR.rglob('*')]:
        if path.is_symlink():
            continue
        mode = 0o700 if path.is_dir() else 0o600
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)


def ensure_secrets() -> None:
    if not PASSWORD_FILE.exists():
        PASSWORD_FILE.write_text('admin\n')
    if not MASTER_KEY_FILE.exists():
        from cryptography.fernet import Fernet

        MASTER_KEY_FILE.write_text(Fernet.generate_key().decode() + '\n')


def environment(args: argparse.Namespace) -> dict[str, str]:
    "The children's environment: the demo's settings, nothing left over"
    env = {
        k: v
        for k, v in os.environ.items()
        # A shell's leftovers (e.g. a PostgreSQL URI of the tests, a queue
        # worker setting) must not send the demo elsewhere.
        if not k.startswith('TRYTOND') and k != 'VIRTUAL_ENV'
    }
    env.update(
        PATH=f'{BIN}{os.pathsep}{env.get("PATH", os.defpath)}',
        TRYTOND_CONFIG=str(ROOT / 'trytond.conf'),
        TRYTOND_DATABASE__URI='sqlite://',
        TRYTOND_DATABASE__PATH=str(DB_DIR),
        TRYTOND_WEB__ROOT=str(SAO_DIR),
        TRYTOND_WEB__LISTEN=f'127.0.0.1:{args.port}',
        TRYTONPASSFILE=str(PASSWORD_FILE),
        TRYTOND_PREPAID__MASTER_KEY=MASTER_KEY_FILE.read_text().strip(),
    )
    from prepaid_demo import concentrators

    # The head-end calls the demo's concentrators (meters behind them).
    env.update(concentrators.headend_tls_environ(DCU_PKI_DIR))
    return env


# ----------------------------------------------------------- one demo only


def take_lock():
    "The lock file, locked; None when another run of this checkout holds it"
    handle = open(LOCK_FILE, 'a+')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def read_state() -> dict:
    try:
        return json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return {}


def write_state(**values) -> None:
    "var/demo.json: where the running demo is, for a second run to say so"
    STATE_FILE.write_text(json.dumps({**read_state(), **values}) + '\n')


def already_running(args: argparse.Namespace) -> int:
    "Say where the running demo is; exit status 0 when it serves the port asked"
    state = read_state()
    port = state.get('port')
    say(
        'The demo of this checkout is already running'
        + (f' (process {state["pid"]})' if state.get('pid') else '')
        + (f' on http://127.0.0.1:{port}/' if port else '')
        + ': not starting a second one.'
    )
    if port != args.port:
        say(f'It is not on port {args.port}: stop it first (Ctrl-C in its')
        say('terminal), then start the demo again on the port you want.')
        return 1
    say(f'Login: admin  password: {PASSWORD_FILE.read_text().strip()}')
    return 0


def stop_leftovers() -> None:
    """Stop the processes of a run that was killed outright: its process
    group, if its processes still run in this checkout."""
    pgid = read_state().get('process_group')
    if pgid and group_members(pgid):
        say(f'Stopping the processes left by a demo run that was killed ({pgid}).')
        stop_group(pgid)
    STATE_FILE.unlink(missing_ok=True)


def group_members(pgid: int) -> list[int]:
    "The processes of process group pgid whose working folder is this checkout"
    members = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / 'stat').read_text().rsplit(')', 1)[1].split()
            if int(fields[2]) == pgid and Path(os.readlink(entry / 'cwd')) == ROOT:
                members.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
    return members


def port_in_use(port: int) -> bool:
    "Whether a server could not listen on 127.0.0.1:port"
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return True
    return False


def check_ports(args: argparse.Namespace) -> None:
    if port_in_use(args.port):
        raise DemoError(
            f'Port {args.port} of 127.0.0.1 is used by another program.  Choose '
            f'another port: scripts/demo --port {args.port + 1} '
            f'(or PREPAID_DEMO_PORT={args.port + 1}).'
        )
    last = args.meter_port + METERS - 1
    taken = [p for p in range(args.meter_port, last + 1) if port_in_use(p)]
    if taken:
        raise DemoError(
            f'The simulated meters need ports {args.meter_port}-{last} of '
            f'127.0.0.1, but {", ".join(map(str, taken))} is used by another '
            'program.  Choose other ports: scripts/demo --meter-port N '
            '(or PREPAID_DEMO_METER_PORT=N).'
        )
    last = args.dcu_port + DCU_PORTS - 1
    taken = [p for p in range(args.dcu_port, last + 1) if port_in_use(p)]
    if taken:
        raise DemoError(
            f'The simulated concentrators need ports {args.dcu_port}-{last} of '
            f'127.0.0.1, but {", ".join(map(str, taken))} is used by another '
            'program.  Choose other ports: scripts/demo --dcu-port N '
            '(or PREPAID_DEMO_DCU_PORT=N).'
        )


# --------------------------------------------------------------- database


def addons_hash() -> str:
    "Changes with the modules' code: the database is upgraded when it does"
    digest = hashlib.sha1()
    for path in sorted((ROOT / 'addons').rglob('*')):
        if path.suffix in {'.py', '.xml', '.cfg'} and path.is_file():
            digest.update(str(path.relative_to(ROOT)).encode() + b'\0')
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def run_step(name: str, command: list, env: dict, log_name: str) -> None:
    """Run one set-up command in a process group of its own, its output in a
    log; a signal stops it with the demo."""
    log_path = LOG_DIR / log_name
    with open(log_path, 'a') as log:
        log.write(f'\n=== {time.strftime("%Y-%m-%d %H:%M:%S")} {name}\n')
        log.flush()
        process = None
        try:
            with SIGNALS.starting():
                process = subprocess.Popen(
                    [str(c) for c in command],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    process_group=0,
                )
            status = process.wait()
        finally:
            if process is not None and process.poll() is None:
                stop_group(process.pid, [process])
    if status:
        raise DemoError(f'{name} failed (exit {status}):\n{tail(log_path)}')


def prepare_database(args: argparse.Namespace, env: dict) -> None:
    database = DB_DIR / f'{DATABASE}.sqlite'
    stamp = DB_DIR / f'{DATABASE}.addons'
    current = addons_hash()
    if not stamp.exists():
        # A new database, or one whose set-up never finished (interrupted, or
        # stopped by an error): trytond-admin --all creates or completes it.
        say('==> Creating the demo database')
        database.touch()
        run_step(
            'trytond-admin',
            [BIN / 'trytond-admin', '-d', DATABASE, '--all']
            + ['--email', 'admin@example.com', '-l', 'en'],
            env,
            'admin.log',
        )
    elif stamp.read_text().strip() != current:
        say('==> Upgrading the demo database to the current modules')
        run_step(
            'trytond-admin',
            [BIN / 'trytond-admin', '-d', DATABASE, '-u', *MODULES],
            env,
            'admin.log',
        )
    say('==> Activating the prepaid modules and loading the demo data')
    run_step(
        'setup_demo.py',
        [BIN / 'python', ROOT / 'scripts' / 'setup_demo.py', '-d', DATABASE]
        + ['--meter-port', args.meter_port]
        + ['--simulator-keys', SIMULATOR_KEYS_FILE],
        env,
        'setup.log',
    )
    summary = [
        line
        for line in (LOG_DIR / 'setup.log').read_text().splitlines()
        if line.startswith('Demo data:')
    ]
    if summary:
        say(summary[-1])
    stamp.write_text(current + '\n')


# --------------------------------------------------------------- services


class Services:
    """The demo's long-running processes, in one process group of their own."""

    def __init__(self, env: dict):
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}
        self.pgid: int | None = None

    def start(self, name: str, command: list) -> subprocess.Popen:
        with open(LOG_DIR / f'{name}.log', 'w') as log, SIGNALS.starting():
            process = subprocess.Popen(
                [str(c) for c in command],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The first one leads the group; the others join it.
                process_group=self.pgid or 0,
            )
            if self.pgid is None:
                self.pgid = process.pid
                write_state(process_group=self.pgid)
            self.processes[name] = process
        return process

    def check(self) -> None:
        "Raise DemoError when one of them has stopped"
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise DemoError(
                    f'{name} stopped (exit {process.returncode}); the end of '
                    f'var/log/{name}.log:\n{tail(LOG_DIR / f"{name}.log")}'
                )

    def wait_until(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            self.check()
            if time.monotonic() > deadline:
                raise DemoError(f'{what} did not start in {START_TIMEOUT} s')
            time.sleep(0.3)

    def stop(self) -> None:
        if self.pgid is not None:
            stop_group(self.pgid, self.processes.values())


def stop_group(pgid: int, children=()) -> None:
    """SIGTERM to the process group, SIGKILL to what is left of it after
    STOP_TIMEOUT seconds (or at once on a second Ctrl-C)."""
    hurry = []

    def on_signal(signum, frame):
        hurry.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while group_alive(pgid, children):
            if hurry or time.monotonic() > deadline:
                signal_group(pgid, signal.SIGKILL)
            time.sleep(0.1)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def group_alive(pgid: int, children) -> bool:
    for child in children:
        child.poll()  # reap: a zombie still counts as a member of its group
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def web_ready(port: int):
    def ready() -> bool:
        try:
            with urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=2):
                return True
        except OSError:
            return False

    return ready


def log_says(name: str, text: str):
    def ready() -> bool:
        try:
            return text in (LOG_DIR / f'{name}.log').read_text()
        except OSError:
            return False

    return ready


def tail(path: Path, lines: int = 20) -> str:
    try:
        return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:])
    except OSError:
        return '(no log)'


def serve(args: argparse.Namespace, env: dict) -> None:
    services = Services(env)
    try:
        services.start(
            'meter-sim',
            [BIN / 'prepaid-meter-sim', '--meters', METERS]
            + ['--port', args.meter_port, '--decoder-keys', SIMULATOR_KEYS_FILE],
        )
        services.wait_until(log_says('meter-sim', '{"meters"'), 'prepaid-meter-sim')
        # Before trytond: it registers this run's certificates in the
        # database, then its concentrators report to the route it serves.
        services.start(
            'dcu',
            [BIN / 'python', '-m', 'prepaid_demo.concentrators', '-d', DATABASE]
            + ['--port', args.dcu_port, '--pki-dir', DCU_PKI_DIR],
        )
        services.wait_until(log_says('dcu', '{"headend"'), 'The concentrators')
        services.start('web', [BIN / 'trytond', '-d', DATABASE])
        # One cron process: the demo's SQLite database has one writer at a time.
        services.start('cron', [BIN / 'trytond-cron', '-d', DATABASE, '-n', '1'])
        services.wait_until(web_ready(args.port), 'The web server (trytond)')
        banner(args)
        while True:
            services.check()
            time.sleep(0.5)
    finally:
        say('==> Stopping the demo')
        services.stop()


def banner(args: argparse.Namespace) -> None:
    from prepaid_demo import concentrators, vendors

    last = args.meter_port + METERS - 1
    dcus = ', '.join(concentrators.DCU_IDS)
    say(
        f"""
  Prepaid vending and AMR platform: demo
  Web client:  http://127.0.0.1:{args.port}/
  Database:    {DATABASE}
  Login:       admin
  Password:    {PASSWORD_FILE.read_text().strip()}
  XMLVend:     http://127.0.0.1:{args.port}/{DATABASE}/xmlvend?wsdl
               client ID {vendors.CLIENT_ID}, terminal ID {vendors.TERMINAL_ID},
               API token (authCred password) {vendors.API_TOKEN}
  Vendor portal: http://127.0.0.1:{args.port}/{DATABASE}/vendor-portal/
               e-mail {vendors.PORTAL_EMAIL}, password {vendors.PORTAL_PASSWORD}
  Running:     trytond (web client, JSON-RPC; queued tasks after each commit),
               trytond-cron (scheduled actions every minute),
               {METERS} simulated meters on 127.0.0.1:{args.meter_port}-{last}
  Concentrators: {dcus} (simulated, up to {concentrators.METERS_PER_DCU}
               demo meters each), online in Head-End > Concentrators within
               a minute; mutual TLS (test CA in var/dcu-pki/) to
               https://127.0.0.1:{args.dcu_port}/{DATABASE}/concentrator;
               their postpaid meters read through the concentrator
  Logs:        var/log/
  Ctrl-C stops everything the demo started.
"""
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    SIGNALS.install()
    try:
        make_private()
        lock = take_lock()
        if lock is None:
            return already_running(args)
        with lock:
            stop_leftovers()
            check_ports(args)
            write_state(pid=os.getpid(), port=args.port, meter_port=args.meter_port)
            try:
                ensure_secrets()
                env = environment(args)
                prepare_database(args, env)
                serve(args, env)
            finally:
                STATE_FILE.unlink(missing_ok=True)
    except DemoError as error:
        say(f'scripts/demo: {error}')
        return 1
    except Stop as stop:
        say(f'Demo stopped ({stop}).')
        return 0
    return 0


if __name__ == '__main__':
    sys.exit(main())
