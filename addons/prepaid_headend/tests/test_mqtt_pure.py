"""The ``mqtt`` package is pure Python: importing any of its modules (the
``prepaid-mqtt-ingest`` command's ``cli`` included) loads no Tryton layer,
neither trytond's ORM nor this module's models; the database side is given
to ``cli.main`` by ``mqtt_ingest.py``.

Each import runs in a fresh interpreter: in the test process the Tryton
layer is loaded already.  Living under ``trytond.modules``, the package is
reached through trytond's ``modules`` package, whose own imports are the
baseline."""

import json
import pkgutil
import subprocess
import sys
import unittest

from trytond.modules.prepaid_headend import mqtt

PROBE = '''
import importlib, json, sys
import trytond.modules
before = set(sys.modules)
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(set(sys.modules) - before)))
'''


def loaded_by(module: str) -> list[str]:
    "The modules that importing module loads beyond trytond.modules itself"
    result = subprocess.run(
        [sys.executable, '-c', PROBE, module],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout)


class MqttPureTestCase(unittest.TestCase):
    "The mqtt package imports no Tryton layer"

    def test_every_module_of_the_package(self):
        names = [
            f'{mqtt.__name__}.{m.name}' for m in pkgutil.iter_modules(mqtt.__path__)
        ]
        self.assertIn(f'{mqtt.__name__}.cli', names)
        for name in [mqtt.__name__, *names]:
            with self.subTest(module=name):
                loaded = loaded_by(name)
                self.assertIn(name, loaded)  # the probe did import it
                tryton = [
                    m
                    for m in loaded
                    if m.startswith('trytond.')
                    and not m.startswith(mqtt.__name__)
                    and m != 'trytond.modules.prepaid_headend'
                ]
                self.assertEqual(tryton, [])

    def test_the_probe_sees_the_tryton_layer(self):
        # The check above would pass vacuously if the probe missed imports.
        loaded = loaded_by('trytond.modules.prepaid_headend.mqtt_bridge')
        self.assertIn('trytond.model', loaded)
