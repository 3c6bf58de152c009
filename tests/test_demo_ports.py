"""The demo command's ports (scripts/run_demo.py): the concentrators' ports
are chosen like the meters' and checked free before any work."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='module')
def run_demo():
    spec = importlib.util.spec_from_file_location(
        'run_demo', ROOT / 'scripts' / 'run_demo.py'
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults_and_environment(run_demo, monkeypatch):
    monkeypatch.delenv('PREPAID_DEMO_DCU_PORT', raising=False)
    assert run_demo.parse_args([]).dcu_port == 4091
    monkeypatch.setenv('PREPAID_DEMO_DCU_PORT', '5001')
    assert run_demo.parse_args([]).dcu_port == 5001
    assert run_demo.parse_args(['--dcu-port', '6001']).dcu_port == 6001


@pytest.mark.parametrize(
    'argv',
    [
        ['--dcu-port', '4070'],  # inside the meters' 4061-4080
        ['--dcu-port', '4059'],  # 4059-4061 reaches the first meter
        ['--port', '4092'],  # a concentrator's port
        ['--dcu-port', '65534'],  # 65534-65536
        ['--dcu-port', 'x'],
    ],
)
def test_conflicting_ports_refused(run_demo, monkeypatch, argv, capsys):
    monkeypatch.delenv('PREPAID_DEMO_DCU_PORT', raising=False)
    with pytest.raises(SystemExit) as exit_:
        run_demo.parse_args(argv)
    assert exit_.value.code == 2
    assert 'dcu-port' in capsys.readouterr().err or '--port' in ' '.join(argv)


def test_taken_concentrator_port_named(run_demo):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = run_demo.parse_args(
            ['--port', str(free_port()), '--meter-port', str(free_block(20))]
            + ['--dcu-port', str(port - 1)]
        )
        with pytest.raises(run_demo.DemoError, match=f'{port}.*--dcu-port'):
            run_demo.check_ports(args)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def free_block(count: int) -> int:
    for first in range(30000, 40000, count):
        if all(_free(p) for p in range(first, first + count)):
            return first
    raise RuntimeError('no free block')


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def test_banner_prints_the_portal_login(run_demo, monkeypatch, tmp_path):
    "The banner names the XMLVend till and, beside it, the vendor portal's login"
    from prepaid_demo import vendors

    password = tmp_path / 'admin-password'
    password.write_text('secret\n')
    printed = []
    monkeypatch.setattr(run_demo, 'PASSWORD_FILE', password)
    monkeypatch.setattr(run_demo, 'say', printed.append)
    run_demo.banner(run_demo.parse_args(['--port', '8123']))
    (text,) = printed
    xmlvend = text.index('http://127.0.0.1:8123/demo/xmlvend?wsdl')
    portal = text.index('Vendor portal: http://127.0.0.1:8123/demo/vendor-portal/')
    assert xmlvend < portal
    assert f'e-mail {vendors.PORTAL_EMAIL}, password {vendors.PORTAL_PASSWORD}' in text
