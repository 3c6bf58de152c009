"""The deployment files are consistent with the code: the compose stack's
images, commands and settings, the configuration file and the CI entry."""

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

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
    assert parser.get('database', 'uri').startswith('sqlite://')
    # The master key never sits in the file: it comes from the environment.
    assert not parser.has_option('prepaid', 'master_key')


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / 'README.md').read_text()
    commands = re.findall(r'^\s*(\./scripts/\w+)\s*$', readme, re.MULTILINE)
    assert commands[:2] == ['./scripts/demo', './scripts/test']
    ci = (ROOT / '.ci' / 'run').read_text()
    assert 'exec ./scripts/test' in ci
