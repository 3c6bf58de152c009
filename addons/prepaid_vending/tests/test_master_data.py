"""Rules of the network and customer master data."""

import datetime as dt
import unittest

from trytond.exceptions import UserError
from trytond.model.exceptions import (
    RequiredValidationError,
    SQLConstraintError,
    ValidationError,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module
from trytond.transaction import Transaction

from .tools import (
    TODAY,
    create_customer,
    create_meter,
    create_network,
    create_service_point,
    with_company,
)


class MasterDataTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_company
    def test_meter_serial_unique(self):
        create_meter('04100000001')
        with self.assertRaises(SQLConstraintError):
            create_meter('04100000001')

    @with_company
    def test_network_codes_unique(self):
        create_network()
        with self.assertRaises(SQLConstraintError):
            create_network()

    @with_company
    def test_network_found_by_code_or_name(self):
        "A transformer, feeder or substation is found by its code as by its name"
        pool = Pool()
        transformer = create_network()
        create_network('-2')
        feeder, substation = transformer.feeder, transformer.feeder.substation
        for record, code, name in [
            (transformer, 'TX1', 'TX 1'),
            (feeder, 'F1', 'Feeder 1'),
            (substation, 'SS-N', 'North'),
        ]:
            Model = pool.get(record.__name__)
            with self.subTest(model=record.__name__):
                self.assertEqual(Model.search([('rec_name', '=', code)]), [record])
                self.assertEqual(
                    [r for r in Model.search([('rec_name', 'ilike', name)])],
                    Model.search([('name', '=', name)]),
                )
                self.assertNotIn(record, Model.search([('rec_name', '!=', code)]))
                self.assertEqual(
                    Model.search([('rec_name', 'ilike', 'no such code')]), []
                )

    @with_company
    def test_transformer_rated_power_positive(self):
        Transformer = Pool().get('prepaid.transformer')
        transformer = create_network()
        with self.assertRaises(ValidationError):
            Transformer.write([transformer], {'rated_kva': 0})

    @with_company
    def test_customer_number_from_sequence(self):
        first = create_customer('A')
        second = create_customer('B')
        self.assertTrue(first.customer_number.startswith('C'))
        self.assertNotEqual(first.customer_number, second.customer_number)

    @with_company
    def test_customer_search_by_meter_and_number(self):
        Party = Pool().get('party.party')
        transformer = create_network()
        customer = create_customer()
        point = create_service_point(transformer, customer)
        meter = create_meter('04100000002')
        point.install_meter(meter, TODAY)
        self.assertEqual(
            Party.search([('rec_name', 'ilike', '%04100000002%')]), [customer]
        )
        self.assertEqual(
            Party.search([('rec_name', '=', customer.customer_number)]), [customer]
        )
        self.assertEqual(Party.search([('meters', '=', meter.id)]), [customer])

    @with_company
    def test_national_id_validated(self):
        customer = create_customer()
        customer.national_id = '12AB'
        with self.assertRaises(ValidationError):
            customer.save()
        customer.national_id = '8001015009087'
        customer.save()

    @with_company
    def test_meter_state_transitions(self):
        Meter = Pool().get('prepaid.meter')
        meter = create_meter('04100000003')
        self.assertEqual(meter.state, 'in_stock')
        with self.assertRaises(ValidationError):
            Meter.change_state([meter], 'removed', 'not installed yet')
        with self.assertRaises(ValidationError):
            Meter.change_state([meter], 'faulty', '')
        Meter.change_state([meter], 'faulty', 'Display dead on arrival')
        Meter.change_state([meter], 'scrapped', 'Returned to the manufacturer')
        with self.assertRaises(ValidationError):
            Meter.change_state([meter], 'in_stock', 'scrapped is final')
        self.assertEqual(
            [(h.from_state, h.to_state) for h in reversed(meter.state_history)],
            [('in_stock', 'faulty'), ('faulty', 'scrapped')],
        )
        self.assertEqual(meter.state_history[0].user.id, Transaction().user)

    @with_company
    def test_install_and_replace_meter(self):
        transformer = create_network()
        customer = create_customer()
        point = create_service_point(transformer, customer)
        first = create_meter('04100000004')
        second = create_meter('04100000005')
        point.install_meter(first, TODAY, reading=0)
        self.assertEqual(point.meter, first)
        self.assertEqual(first.state, 'installed')
        self.assertEqual(first.customer, customer)

        later = TODAY + dt.timedelta(days=30)
        point.install_meter(second, later, reading=0, removal_reading=412)
        self.assertEqual(point.meter, second)
        self.assertEqual(first.state, 'removed')
        self.assertIsNone(first.service_point)
        (old,) = [i for i in point.installations if i.meter == first]
        self.assertEqual(old.removed_on, later)
        self.assertEqual(old.removal_reading, 412)

    @with_company
    def test_installed_meter_cannot_be_installed_twice(self):
        transformer = create_network()
        meter = create_meter('04100000006')
        create_service_point(transformer).install_meter(meter, TODAY)
        with self.assertRaises(ValidationError):
            create_service_point(transformer).install_meter(meter, TODAY)

    @with_company
    def test_installation_dates_cannot_overlap(self):
        Installation = Pool().get('prepaid.meter.installation')
        transformer = create_network()
        point = create_service_point(transformer)
        meter = create_meter('04100000007')
        Installation.create(
            [
                {
                    'meter': meter.id,
                    'service_point': point.id,
                    'installed_on': TODAY,
                    'removed_on': TODAY + dt.timedelta(days=10),
                }
            ]
        )
        # Back to back is fine: removed on the day the next one starts.
        Installation.create(
            [
                {
                    'meter': meter.id,
                    'service_point': point.id,
                    'installed_on': TODAY + dt.timedelta(days=10),
                }
            ]
        )
        with self.assertRaises(ValidationError):
            Installation.create(
                [
                    {
                        'meter': meter.id,
                        'service_point': create_service_point(transformer).id,
                        'installed_on': TODAY + dt.timedelta(days=5),
                    }
                ]
            )

    @with_company
    def test_replacement_before_current_installation_refused(self):
        transformer = create_network()
        point = create_service_point(transformer)
        point.install_meter(create_meter('04100000008'), TODAY)
        with self.assertRaises(ValidationError):
            point.install_meter(
                create_meter('04100000009'), TODAY - dt.timedelta(days=1)
            )

    @with_company
    def test_master_slave_cycle_refused(self):
        Meter = Pool().get('prepaid.meter')
        transformer = create_network()
        top = create_meter('M-1', role='master', master_of_transformer=transformer)
        middle = create_meter('M-2', role='master', master=top)
        child = create_meter('04100000010', master=middle)
        self.assertEqual(top.slaves, (middle,))
        self.assertEqual(middle.slaves, (child,))
        with self.assertRaises(UserError):
            Meter.write([top], {'master': middle.id})

    @with_company
    def test_customer_meter_cannot_master_a_transformer(self):
        transformer = create_network()
        with self.assertRaises(ValidationError):
            create_meter('04100000011', master_of_transformer=transformer)

    @with_company
    def test_service_point_requires_transformer(self):
        ServicePoint = Pool().get('prepaid.service_point')
        with self.assertRaises(RequiredValidationError):
            ServicePoint(street='Nowhere').save()

    @with_company
    def test_service_point_feeder_follows_transformer(self):
        ServicePoint = Pool().get('prepaid.service_point')
        transformer = create_network()
        point = create_service_point(transformer)
        self.assertEqual(point.feeder, transformer.feeder)
        self.assertEqual(
            ServicePoint.search([('feeder', '=', transformer.feeder.id)]), [point]
        )
        self.assertTrue(point.code.startswith('SP'))
