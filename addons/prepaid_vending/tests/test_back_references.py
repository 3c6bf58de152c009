"""Vending depends on no module built on it: its code never names a model,
wizard or report of such a module (``Pool().get('prepaid.sts.key_change')``)
nor imports one.  A module that needs to add to a sale extends a vending
model's hook instead (``Meter.vend_pending_key_changes``,
``Meter.vend_delivery_problems``, ``Vend.issue_credit_tokens``).

The modules built on vending are those whose tryton.cfg depends on it,
directly or not; their models are the classes that define a ``__name__``
(not the PoolMeta extensions of other modules' models).  Read from the
source, so a new module or model is covered without changing this test.
"""

import ast
import importlib
import re
import unittest
from pathlib import Path

from trytond.modules import get_module_info, get_modules

MODULE = 'prepaid_vending'


def module_dir(name: str) -> Path:
    return Path(importlib.import_module(f'trytond.modules.{name}').__file__).parent


def runtime_files(directory: Path, suffix: str) -> list[Path]:
    "The module's own files, its tests excluded"
    return [
        path
        for path in sorted(directory.rglob(f'*{suffix}'))
        if 'tests' not in path.relative_to(directory).parts
    ]


def dependents(module: str) -> set[str]:
    "The installed modules that depend on module, directly or not"
    depends = {
        name: set(get_module_info(name).get('depends', ())) for name in get_modules()
    }
    found, grown = set(), True
    while grown:
        new = {n for n, d in depends.items() if d & (found | {module})} - found
        grown = bool(new)
        found |= new
    return found


def defined_names(directory: Path) -> set[str]:
    "The ``__name__`` of the models, wizards and reports a module defines"
    names = set()
    for path in runtime_files(directory, '.py'):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ClassDef) or any(
                k.arg == 'metaclass' for k in node.keywords
            ):
                continue
            for statement in node.body:
                if (
                    isinstance(statement, ast.Assign)
                    and any(
                        isinstance(t, ast.Name) and t.id == '__name__'
                        for t in statement.targets
                    )
                    and isinstance(statement.value, ast.Constant)
                ):
                    names.add(statement.value.value)
    return names


def mentions(text: str, names: set[str]) -> set[str]:
    "The names that occur in text as a whole dotted name"
    return {
        name
        for name in names
        if re.search(rf'(?<![\w.]){re.escape(name)}(?![\w])', text)
    }


class BackReferenceTestCase(unittest.TestCase):
    "prepaid_vending names nothing of the modules built on it"

    @classmethod
    def setUpClass(cls):
        cls.directory = module_dir(MODULE)
        cls.dependents = dependents(MODULE)
        cls.foreign = set().union(
            *(defined_names(module_dir(m)) for m in cls.dependents)
        ) - defined_names(cls.directory)

    def test_the_check_sees_the_modules_built_on_vending(self):
        # Without them the tests below would pass vacuously.
        self.assertIn('prepaid_sts', self.dependents)
        self.assertIn('prepaid.sts.key_change', self.foreign)
        self.assertNotIn('prepaid.vend', self.foreign)
        self.assertEqual(
            mentions("KeyChange = pool.get('prepaid.sts.key_change')", self.foreign),
            {'prepaid.sts.key_change'},
        )

    def test_no_model_of_a_dependent_module_named(self):
        found = []
        for path in runtime_files(self.directory, '.py'):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    for name in mentions(node.value, self.foreign):
                        found.append(f'{path.name}:{node.lineno}: {name}')
        for path in runtime_files(self.directory, '.xml'):
            for name in mentions(path.read_text(), self.foreign):
                found.append(f'{path.name}: {name}')
        self.assertEqual(found, [])

    def test_no_dependent_module_imported(self):
        prefixes = tuple(f'trytond.modules.{m}' for m in self.dependents)
        found = []
        for path in runtime_files(self.directory, '.py'):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    modules = [node.module or '']
                else:
                    continue
                found += [
                    f'{path.name}:{node.lineno}: {m}'
                    for m in modules
                    if m.startswith(prefixes)
                ]
        self.assertEqual(found, [])
