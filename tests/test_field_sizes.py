"""Text that staff type has a documented size, and longer text is refused
(issue 11: 32,767-character names were accepted); coordinates are numbers.

The sizes follow one convention (README, "Input limits"): codes 32,
identifiers 64, names 128 (customers 200), addresses and one-line reasons 255,
file paths 1024.  Fields that only the platform writes (readonly) are left
out: their values come from code, not from a user.
"""

import unittest
from decimal import Decimal

from trytond.model import ModelSQL, fields
from trytond.model.exceptions import SizeValidationError, ValidationError
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module

MODULES = ['prepaid_vending', 'prepaid_sts', 'prepaid_headend', 'prepaid_vendor_portal']


class FieldSizesTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module(MODULES)

    @with_company
    def test_every_typed_char_field_has_a_size(self):
        pool = Pool()
        ModelField = pool.get('ir.model.field')
        unsized = []
        checked = 0
        for record in ModelField.search(
            [('module', 'in', MODULES), ('ttype', '=', 'char')]
        ):
            Model = pool.get(record.model)
            field = Model._fields[record.name]
            stored = issubclass(Model, ModelSQL) and not isinstance(
                field, fields.Function
            )
            if not stored or field.readonly is True:
                continue
            checked += 1
            if not isinstance(field.size, int):
                unsized.append(f'{record.model}.{record.name}')
        self.assertGreater(checked, 40)
        self.assertEqual(unsized, [])
        # Tryton's party name, the customer's name, too.
        self.assertEqual(pool.get('party.party').name.size, 200)

    # One refusal per transaction: on PostgreSQL the VARCHAR(n) column
    # refuses the insert, which ends the transaction (Tryton then reports it
    # as the same size error).

    @with_company
    def test_longer_name_refused(self):
        Party = Pool().get('party.party')
        (party,) = Party.create([{'name': 'N' * 200}])
        self.assertEqual(len(party.name), 200)
        with self.assertRaisesRegex(SizeValidationError, 'Name'):
            Party.create([{'name': 'N' * 32767}])

    @with_company
    def test_longer_code_refused(self):
        Substation = Pool().get('prepaid.substation')
        with self.assertRaisesRegex(SizeValidationError, 'Code'):
            Substation.create([{'code': 'C' * 33, 'name': 'S'}])

    @with_company
    def test_coordinates_are_numbers(self):
        "A NaN latitude was stored as empty on SQLite"
        pool = Pool()
        Substation = pool.get('prepaid.substation')
        Feeder = pool.get('prepaid.feeder')
        Transformer = pool.get('prepaid.transformer')
        Point = pool.get('prepaid.service_point')
        (substation,) = Substation.create([{'code': 'SS', 'name': 'S'}])
        (feeder,) = Feeder.create(
            [{'code': 'FD', 'name': 'F', 'substation': substation.id}]
        )
        (transformer,) = Transformer.create(
            [
                {
                    'code': 'TX',
                    'name': 'T',
                    'feeder': feeder.id,
                    'rated_kva': Decimal(100),
                }
            ]
        )
        values = {'street': '1 Road', 'city': 'X', 'transformer': transformer.id}
        for latitude in (float('nan'), float('inf'), 91.0):
            with self.subTest(latitude=latitude):
                with self.assertRaisesRegex(
                    ValidationError, 'Latitude .* must be a number from -90 to 90'
                ):
                    Point.create([{**values, 'latitude': latitude}])
        (point,) = Point.create([{**values, 'latitude': -23.9, 'longitude': 29.46}])
        with self.assertRaisesRegex(ValidationError, 'Longitude'):
            Point.write([point], {'longitude': float('nan')})
