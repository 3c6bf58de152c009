"""Demo data generator: counts, structure, determinism and idempotence."""

import unittest
from collections import Counter

from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, drop_db, with_transaction
from trytond.transaction import Transaction

from ..demo import create_demo_data, luhn_digit


def _snapshot() -> list[tuple]:
    Meter = Pool().get('prepaid.meter')
    return [
        (
            m.serial,
            m.kind,
            m.phases,
            m.manufacturer,
            m.customer.name if m.customer else None,
            m.customer.national_id if m.customer else None,
            m.installations[0].installed_on,
        )
        for m in Meter.search([], order=[('serial', 'ASC')])
    ]


class DemoTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A scenario run earlier in the session leaves its committed data in
        # the shared test database: start from the clean cached one.
        drop_db()
        activate_module('prepaid_vending')

    def test_luhn_digit(self):
        # Worked example of the Luhn algorithm (ISO/IEC 7812-1 annex B,
        # also the Wikipedia "Luhn algorithm" article): 7992739871 -> 3.
        self.assertEqual(luhn_digit('7992739871'), '3')
        self.assertEqual(luhn_digit('0000000000'), '0')

    @with_transaction()
    def test_counts_and_structure(self):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Party = pool.get('party.party')
        Transformer = pool.get('prepaid.transformer')
        ServicePoint = pool.get('prepaid.service_point')

        result = create_demo_data(seed=1, customers=20)

        self.assertTrue(result['created'])
        self.assertEqual(result['substations'], 2)
        self.assertEqual(result['feeders'], 4)
        self.assertEqual(result['transformers'], 12)
        self.assertEqual(result['master_meters'], 12)
        self.assertEqual(result['customers'], 20)
        self.assertEqual(result['service_points'], 32)
        self.assertEqual(result['meters'], 32)
        self.assertEqual(len(result['meter_ids']), 32)
        self.assertEqual(Party.search_count([('customer_number', '!=', None)]), 20)
        self.assertEqual(ServicePoint.search_count([]), 32)
        for transformer in Transformer.search([]):
            self.assertIn(int(transformer.rated_kva), {100, 200, 315, 500})
        masters = Meter.search([('role', '=', 'master')])
        self.assertEqual(len(masters), 12)
        self.assertTrue(all(m.master_of_transformer for m in masters))
        customers_meters = Meter.search([('role', '=', 'customer')])
        for meter in customers_meters:
            # Each customer meter hangs below the check meter of its
            # transformer, and is installed (with a history line).
            self.assertEqual(
                meter.master.master_of_transformer, meter.service_point.transformer
            )
            self.assertEqual(meter.state, 'installed')
            self.assertEqual(len(meter.state_history), 1)
            self.assertEqual(meter.serial[-1], luhn_digit(meter.serial[:-1]))
            self.assertTrue(meter.customer.contact_mechanisms)
            self.assertTrue(meter.customer.customer_category)

    @with_transaction()
    def test_proportions_200(self):
        "The default size has mostly residential keypad customers"
        Meter = Pool().get('prepaid.meter')
        result = create_demo_data()
        self.assertEqual(result['customers'], 200)
        meters = Meter.search([('role', '=', 'customer')])
        kinds = Counter(m.kind for m in meters)
        categories = Counter(m.customer.customer_category.code for m in meters)
        self.assertGreater(kinds['sts_keypad'], 100)
        self.assertGreater(kinds['smart_prepaid'], 10)
        self.assertGreater(kinds['postpaid'], 0)
        self.assertGreater(categories['RESIDENTIAL'], 140)
        self.assertEqual(
            set(categories), {'RESIDENTIAL', 'COMMERCIAL', 'INDUSTRIAL', 'GOVERNMENT'}
        )
        self.assertEqual({m.phases for m in meters}, {'1', '3'})

    @with_transaction()
    def test_deterministic_and_idempotent(self):
        first = create_demo_data(seed=42, customers=10)
        snapshot = _snapshot()
        # A second call finds the demo substations and does nothing.
        self.assertEqual(create_demo_data(seed=42, customers=10), {'created': False})
        self.assertEqual(_snapshot(), snapshot)
        Transaction().rollback()
        second = create_demo_data(seed=42, customers=10)
        self.assertEqual(_snapshot(), snapshot)
        self.assertEqual(
            {k: v for k, v in first.items() if k != 'meter_ids'},
            {k: v for k, v in second.items() if k != 'meter_ids'},
        )
        Transaction().rollback()
        create_demo_data(seed=43, customers=10)
        self.assertNotEqual(_snapshot(), snapshot)
