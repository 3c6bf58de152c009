"""The runtime modules import no demo, proteus or test code.

What a server loads (every file of the addons outside their ``tests``
folders) must not need proteus, Tryton's test tools or the demo package
(``prepaid_demo``): demo data and the company set-up of the demo and the
tests live outside the modules.  Every import statement counts, also one
deferred into a function, since calling the function would run it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDONS = ROOT / "addons"
FORBIDDEN = ("proteus", "prepaid_demo")
#: (file, module) imports allowed on purpose, with why.
ALLOWED = {
    # ``prepaid-import --demo`` fills a database with the demo data: the
    # command line tool asks for the demo package only for that option.
    ("prepaid_vending/import_cli.py", "prepaid_demo.vending"),
}


def imported_modules(source: str, filename: str = "<source>") -> set[str]:
    "Absolute modules imported anywhere in source (relative ones as '.name')"
    names = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def forbidden(name: str) -> bool:
    parts = name.lstrip(".").split(".")
    return parts[0] in FORBIDDEN or "tests" in parts


def runtime_files() -> list[Path]:
    return sorted(
        path
        for path in ADDONS.rglob("*.py")
        if "tests" not in path.relative_to(ADDONS).parts
    )


def test_runtime_modules_import_no_demo_or_test_code():
    files = runtime_files()
    assert len(files) > 50  # the scan sees the modules
    found = sorted(
        (str(path.relative_to(ADDONS)), name)
        for path in files
        for name in imported_modules(path.read_text(), str(path))
        if forbidden(name)
    )
    assert [f for f in found if f not in ALLOWED] == []
    # An allowance that is no longer needed goes.
    assert set(found) == ALLOWED


def test_the_scan_finds_deferred_and_relative_imports():
    source = (
        "import os\n"
        "from .engine import make_pan\n"
        "def setup():\n"
        "    from proteus import Model\n"
        "    from ..tests.tools import set_master_key\n"
        "    from trytond.modules.account.tests.tools import create_chart\n"
        "    import prepaid_demo.vending\n"
    )
    found = sorted(n for n in imported_modules(source) if forbidden(n))
    assert found == [
        "..tests.tools",
        "prepaid_demo.vending",
        "proteus",
        "trytond.modules.account.tests.tools",
    ]
