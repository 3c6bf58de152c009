"""The pure-Python cores import nothing from trytond.

Protocol and business cores (STS tokens, DLMS/COSEM, the concentrator
interface, tariffs, XMLVend, the vendor cores) are tested and reused
without a Tryton server; the Tryton layer fills their dataclasses.  Each
core is imported in a fresh interpreter: it may load its own package, the
addon packages above it (whose ``__init__`` must stay free of trytond
imports) and other pure cores, nothing else of trytond.
``trytond.modules`` itself, the namespace the addons live in, loads a few
trytond modules first (``trytond.config``, ``trytond.transaction``...), so
the source of every module loaded is also read for ``import trytond...``
statements, relative ones included: an import deferred into a function (the
Tryton layer of the module, e.g. ``from .. import mqtt_bridge``) is a
back-reference too, though importing the core does not run it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PREFIX = "trytond.modules."
CORES = (
    "prepaid_sts.engine",
    "prepaid_headend.dlms",
    "prepaid_headend.concentrator",
    "prepaid_headend.mqtt",
    "prepaid_headend.mqtt.cli",  # not imported by the package
    "prepaid_vending.tariff",
    "prepaid_vending.inputs",
    "prepaid_vendor_portal.xmlvend",
    "prepaid_vendor_portal.commission",
    "prepaid_vendor_portal.limits",
    "prepaid_vendor_portal.limits_text",
    "prepaid_vendor_portal.reconcile",
    "prepaid_vendor_portal.settlement",
    "prepaid_vendor_portal.money",
    "prepaid_vendor_portal.days",
    "prepaid_vendor_portal.portal_html",
)
ADDONS = {core.partition(".")[0] for core in CORES}
IMPORT = (
    "import importlib, json, sys, trytond.modules; before = set(sys.modules); "
    "importlib.import_module(sys.argv[1]); "
    "print(json.dumps({m: getattr(sys.modules[m], '__file__', None) "
    "for m in set(sys.modules) - before}))"
)


def _allowed(module: str) -> bool:
    name = module.removeprefix(PREFIX)
    return module.startswith(PREFIX) and (
        name in ADDONS
        or any(name == core or name.startswith(core + ".") for core in CORES)
    )


@pytest.mark.parametrize("core", CORES)
def test_core_imports_nothing_from_trytond(core):
    run = subprocess.run(
        [sys.executable, "-c", IMPORT, PREFIX + core], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = json.loads(run.stdout)
    assert PREFIX + core in loaded  # it was imported here, not before
    assert [m for m in loaded if m.startswith("trytond") and not _allowed(m)] == []
    imported = {
        (module, name)
        for module, path in loaded.items()
        if _allowed(module) and path
        for name in _imports(module, Path(path))
    }
    assert [
        (m, n) for m, n in imported if n.startswith("trytond") and not _allowed(n)
    ] == []


def _imports(module: str, path: Path) -> set[str]:
    """The modules that ``module`` (read from ``path``) imports anywhere in
    its source, relative names resolved; ``from X import y`` counts as X.y
    too (y may be a module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(package, node.level, node.module)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _resolve(package: str, level: int, name: str | None) -> str:
    "The absolute name of ``from <level dots><name> import ...`` in package"
    if not level:
        return name or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - level + 1])
    return f"{base}.{name}" if name else base


def test_deferred_relative_import_is_seen(tmp_path):
    "A core reaching its Tryton layer from inside a function is caught"
    source = tmp_path / "cli.py"
    source.write_text(
        "from .client import Subscriber\ndef main():\n    from .. import mqtt_bridge\n"
    )
    names = _imports(PREFIX + "prepaid_headend.mqtt.cli", source)
    assert PREFIX + "prepaid_headend.mqtt.client.Subscriber" in names
    assert [n for n in names if not _allowed(n)] == [
        PREFIX + "prepaid_headend.mqtt_bridge"
    ]
