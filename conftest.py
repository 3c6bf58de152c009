"""pytest set-up shared by every test of the project.

- The addons are imported as ``trytond.modules.<name>``; pytest would import the
  test files a second time as top-level ``<name>`` packages, duplicating module
  globals and HTTP routes, so those names are aliased to the real packages.
- Scenario doctests (``scenario_*.rst``) leave their last database behind; it
  is dropped when the session ends.
- ``require_service`` turns a missing PostgreSQL or Mosquitto into a skip on a
  developer machine and into a failure under ``CI=true``.
"""

import importlib
import importlib.abc
import importlib.util
import os
import socket
import sys

import pytest

ADDONS = ['prepaid_vending', 'prepaid_sts', 'prepaid_headend', 'prepaid_vendor_portal']


class _AddonAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolve ``<addon>.x.y`` to the module ``trytond.modules.<addon>.x.y``.

    A test file's relative import (``from ..receipt import ...``) asks for
    ``prepaid_vending.receipt``; without this, Python would load a second
    copy of the module and bind it on the package, so that trytond's pool
    registered that copy's classes (seen: a SearchGuard base that was not
    the one the tests import)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition('.')[0] in ADDONS and '.' in fullname:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(f'trytond.modules.{spec.name}')

    def exec_module(self, module):
        pass  # the real module is already executed


def _alias_addons() -> None:
    sys.meta_path.insert(0, _AddonAlias())
    for name in ADDONS:
        sys.modules.setdefault(name, importlib.import_module(f'trytond.modules.{name}'))


_alias_addons()


def _keep_sqlite_test_transactions_apart() -> None:
    """Stop trytond's cache sync from committing a SQLite test's transaction.

    Under ``sqlite://`` every transaction of the process shares one in-memory
    connection.  Once per ``[cache] clean_timeout`` (300 s) the next
    transaction to start runs ``Cache.sync``, which asks for an autocommit
    connection: on the shared connection Python's sqlite3 then COMMITs the
    open transaction, and a test's rows leak into the tests after it (they
    fail on duplicate codes at random, depending on timing).  The tests run
    in one process, so there is no other process's cache to follow: sync once
    at start-up, never again.
    """
    if os.environ.get('TRYTOND_DATABASE_URI', '').startswith('sqlite'):
        from trytond import config

        config.set('cache', 'clean_timeout', str(10**7))


_keep_sqlite_test_transactions_apart()


def in_ci() -> bool:
    return os.environ.get('CI', '').lower() == 'true'


def service_available(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if service_available(host, port):
        return
    message = f'{name} is not reachable on {host}:{port}'
    if in_ci():
        pytest.fail(message + ' (CI=true: a missing service is a failure)')
    pytest.skip(message)


@pytest.fixture
def mosquitto():
    require_service('Mosquitto', '127.0.0.1', 1883)
    return ('127.0.0.1', 1883)


DB_MARKERS = (
    'with_transaction',
    'ModuleTestCase',
    'activate_module',
    'activate_modules',
)


def uses_database(item) -> bool:
    "A test that needs a Tryton database (it runs on SQLite and on PostgreSQL)"
    if item.get_closest_marker('database'):
        return True
    if item.nodeid.split('::')[0].rsplit('/', 1)[-1].startswith('scenario_'):
        return True
    cls = getattr(item, 'cls', None)
    if cls and any(c.__module__.startswith('trytond.tests') for c in cls.__mro__[1:]):
        return True
    module = getattr(item, 'module', None)
    return bool(module) and any(name in vars(module) for name in DB_MARKERS)


def pytest_collection_modifyitems(config, items):
    # The PostgreSQL pass of scripts/test runs only the database tests: the
    # pure-Python ones (engines, protocols, simulators) already ran once.
    if os.environ.get('PREPAID_DB_TESTS_ONLY'):
        selected = [i for i in items if uses_database(i)]
        deselected = [i for i in items if not uses_database(i)]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture(scope='class', autouse=True)
def _database_per_test_class(request):
    """Each test class starts from the cached database and leaves none behind.

    Some classes commit fixtures (concurrency tests need committed rows); a
    class that ran after them on the same database would see their data.
    """
    yield
    module = sys.modules.get(getattr(request.cls, '__module__', ''), None)
    if module and any(name in vars(module) for name in DB_MARKERS):
        _drop_test_database()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # Fixtures (e.g. the browser's screenshot on failure) can see the outcome.
    report = yield
    setattr(item, f'rep_{report.when}', report)
    return report


def pytest_runtest_teardown(item, nextitem):
    # A scenario commits its data into the test database; drop it so the next
    # test class activates its modules on a clean database.
    if item.nodeid.split('::')[0].rsplit('/', 1)[-1].startswith('scenario_'):
        _drop_test_database()


def _drop_test_database():
    try:
        from trytond.tests.test_tryton import drop_db
    except ImportError:
        return
    try:
        drop_db()
    except Exception:
        pass


def pytest_sessionfinish(session, exitstatus):
    # The doctest runner of trytond does not drop the last scenario database.
    _drop_test_database()
