"""The deployment files are consistent with the code: the compose stack's
images, commands and settings, the configuration file, the CI entry and the
package's data files."""

import configparser
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def compose():
    return yaml.safe_load((ROOT / 'docker-compose.yml').read_text())


def test_compose_has_the_production_services():
    services = compose()['services']
    assert set(services) == {'db', 'mqtt', 'init', 'web', 'worker', 'cron'}


def test_compose_images_are_pinned():
    for name, service in compose()['services'].items():
        image = service['image']
        repository, _, tag = image.rpartition(':')
        assert repository and tag and tag != 'latest', f'{name}: {image}'


def test_compose_commands_exist_in_the_project_environment():
    services = compose()['services']
    for name in ('init', 'web', 'worker', 'cron'):
        executable = services[name]['command'][0]
        assert (BIN / executable).exists() or shutil.which(executable), (
            f'{name}: {executable} is not installed by requirements.txt'
        )
    assert 'trytond.application:app' in services['web']['command']
    # Imported in a process of its own: trytond.application initialises the
    # pool, which refuses to start while other tests' threads are running.
    check = subprocess.run(
        [sys.executable, '-c', 'import trytond.application as a; assert a.app'],
        capture_output=True,
        text=True,
        env={**os.environ, 'TRYTOND_DATABASE_URI': 'sqlite://'},
        timeout=120,
    )
    assert check.returncode == 0, check.stderr


def test_compose_activates_the_project_modules():
    command = compose()['services']['init']['command']
    for module in ('prepaid_vending', 'prepaid_sts', 'prepaid_headend'):
        assert module in command
        assert (ROOT / 'addons' / module / 'tryton.cfg').exists()


def test_compose_trytond_services_share_settings_from_the_environment():
    services = compose()['services']
    for name in ('init', 'web', 'worker', 'cron'):
        environment = services[name]['environment']
        uri = environment['TRYTOND_DATABASE__URI']
        assert uri.startswith('postgresql://') and '@db:5432' in uri
        # Secrets are required from the environment, never written here.
        assert environment['TRYTOND_PREPAID__MASTER_KEY'].startswith('${')
        assert environment['TRYTOND_QUEUE__WORKER'] == 'True'
    for name in ('web', 'worker', 'cron'):
        depends = services[name]['depends_on']
        assert depends['init']['condition'] == 'service_completed_successfully'
    assert services['db']['healthcheck']['test'][1] == 'pg_isready'


def test_trytond_conf_has_the_project_sections():
    parser = configparser.ConfigParser()
    parser.read(ROOT / 'trytond.conf')
    for section in ('database', 'web', 'queue', 'cron', 'prepaid'):
        assert parser.has_section(section), section
    # The master key never sits in the file: it comes from the environment.
    assert not parser.has_option('prepaid', 'master_key')


def effective_settings(environment: dict, config_file: Path) -> list[str]:
    "The settings trytond ends up with, loaded in a process as the image does"
    env = {
        key: value for key, value in os.environ.items() if not key.startswith('TRYTOND')
    }
    env.update(environment, TRYTOND_CONFIG=str(config_file))
    check = subprocess.run(
        [
            sys.executable,
            '-c',
            'from trytond import config; '
            'print(config.get("database", "uri")); '
            'print(config.getboolean("queue", "worker"))',
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    return check.stdout.split()


def test_compose_environment_wins_over_the_shipped_trytond_conf():
    """trytond reads the file after the environment, so a database URI or a
    queue setting in trytond.conf would silently turn the production stack
    into SQLite without workers."""
    environment = {
        key: value
        for key, value in compose()['services']['worker']['environment'].items()
        if not value.startswith('${')
    }
    environment['TRYTOND_DATABASE__URI'] = 'postgresql://tryton:secret@db:5432/'
    uri, worker = effective_settings(environment, ROOT / 'trytond.conf')
    assert uri == 'postgresql://tryton:secret@db:5432/'
    assert worker == 'True'
    # Without the environment (the demo) the same file gives SQLite, no workers.
    assert effective_settings({}, ROOT / 'trytond.conf') == ['sqlite://', 'False']


def test_sts_tables_setting_reaches_the_engine(tmp_path):
    sample = ROOT / 'addons/prepaid_sts/engine/data/sta_sample_tables.json'
    config_file = tmp_path / 'trytond.conf'
    config_file.write_text(f'[prepaid]\nsts_tables = {sample}\n')
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(('TRYTOND', 'PREPAID_STS'))
    }
    env['TRYTOND_CONFIG'] = str(config_file)
    check = subprocess.run(
        [
            sys.executable,
            '-c',
            'import trytond.modules.prepaid_sts.common; '
            'from trytond.modules.prepaid_sts.engine.sta import load_tables; '
            'print(load_tables().name)',
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    # The shipped default file is the production one; the setting chose the sample.
    assert 'IEC 62055-41 sample' in check.stdout, check.stdout


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / 'README.md').read_text()
    commands = re.findall(r'^\s*(\./scripts/\w+)\s*$', readme, re.MULTILINE)
    assert commands[:2] == ['./scripts/demo', './scripts/test']
    ci = (ROOT / '.ci' / 'run').read_text()
    assert 'exec ./scripts/test' in ci


def _glob_matches(relative, pattern):
    "setuptools' package-data glob: '*' stays within a folder"
    path, glob = PurePosixPath(relative).parts, PurePosixPath(pattern).parts
    return len(path) == len(glob) and all(
        fnmatch.fnmatchcase(part, rule) for part, rule in zip(path, glob)
    )


def test_every_data_file_of_the_addons_is_packaged():
    # An installed (non-editable) module must find its views, schemas, test
    # samples and scenarios: every tracked file of addons/ that is not
    # Python matches a package-data pattern of a package above it.
    if shutil.which('git') is None or not (ROOT / '.git').exists():
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail('not a git checkout: tracked files unknown')
        pytest.skip('not a git checkout: tracked files unknown')
    tracked = subprocess.run(
        ['git', 'ls-files', '-z', 'addons'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split('\0')
    setup = tomllib.loads((ROOT / 'pyproject.toml').read_text())['tool']['setuptools']
    roots = setup['package-dir']
    folders = {}
    for package in setup['packages']:
        root = max(
            (r for r in roots if package == r or package.startswith(r + '.')), key=len
        )
        rest = package[len(root) :].lstrip('.').replace('.', '/')
        folders[package] = PurePosixPath(roots[root], rest)
    patterns = setup['package-data']
    missing = []
    for name in filter(None, tracked):
        if name.endswith('.py'):
            continue
        path = PurePosixPath(name)
        if not any(
            path.is_relative_to(folder)
            and any(
                _glob_matches(path.relative_to(folder), pattern)
                for pattern in patterns.get('*', []) + patterns.get(package, [])
            )
            for package, folder in folders.items()
        ):
            missing.append(name)
    assert missing == [], 'add them to [tool.setuptools.package-data]'
