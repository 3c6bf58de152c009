"""Least-privilege access of the staff groups: for each, one thing it may do
and one it may not."""

import unittest

from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module

from .staff import as_new_user
from .tools import (
    TODAY,
    create_customer,
    create_meter,
    create_network,
    create_service_point,
    with_company,
)


class AccessTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_company
    def test_vending_operator(self):
        pool = Pool()
        ServicePoint = pool.get('prepaid.service_point')
        Transformer = pool.get('prepaid.transformer')
        transformer = create_network()
        with as_new_user('group_operator'):
            ServicePoint.create([{'transformer': transformer.id, 'street': 'A'}])
            with self.assertRaises(AccessError):
                Transformer.create(
                    [{'name': 'TX', 'code': 'TX-OP', 'feeder': transformer.feeder.id}]
                )

    @with_company
    def test_cashier(self):
        Meter = Pool().get('prepaid.meter')
        meter = create_meter('04100000101')
        with as_new_user('group_cashier'):
            self.assertEqual(Meter.search([('serial', '=', meter.serial)]), [meter])
            with self.assertRaises(AccessError):
                Meter.write([Meter(meter.id)], {'manufacturer': 'Tampered'})

    @with_company
    def test_cashier_reads_customers_only(self):
        pool = Pool()
        Party = pool.get('party.party')
        Address = pool.get('party.address')
        customer = create_customer()
        with as_new_user('group_cashier'):
            self.assertEqual(Party.search([('id', '=', customer.id)]), [customer])
            with self.assertRaises(AccessError):
                Party.write([Party(customer.id)], {'name': 'Renamed'})
            with self.assertRaises(AccessError):
                Party.create([{'name': 'New Customer'}])
            with self.assertRaises(AccessError):
                Address.create([{'party': customer.id, 'street': 'Elsewhere'}])
        self.assertEqual(Party(customer.id).name, 'Thandi Mokoena')

    @with_company
    def test_back_office_writes_customers(self):
        "An operator (also when a cashier too) keeps Tryton's party access"
        pool = Pool()
        Party = pool.get('party.party')
        customer = create_customer()
        with as_new_user('group_cashier', 'group_operator'):
            Party.write([Party(customer.id)], {'name': 'Renamed'})
        self.assertEqual(Party(customer.id).name, 'Renamed')

    @with_company
    def test_metering_engineer(self):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Configuration = pool.get('prepaid.configuration')
        with as_new_user('group_engineer'):
            Meter.create([{'serial': '04100000102'}])
            with self.assertRaises(AccessError):
                Configuration.write([Configuration(1)], {'reprint_count': 50})

    @with_company
    def test_key_custodian(self):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        ServicePoint = pool.get('prepaid.service_point')
        transformer = create_network()
        create_meter('04100000103')
        with as_new_user('group_key_custodian'):
            self.assertEqual(len(Meter.search([])), 1)
            with self.assertRaises(AccessError):
                ServicePoint.create([{'transformer': transformer.id}])

    @with_company
    def test_vending_manager(self):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Configuration = pool.get('prepaid.configuration')
        meter = create_meter('04100000104')
        with as_new_user('group_manager'):
            Configuration.write([Configuration(1)], {'reprint_count': 3})
            with self.assertRaises(AccessError):
                Meter.delete([Meter(meter.id)])

    @with_company
    def test_accountant(self):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Category = pool.get('prepaid.customer.category')
        with as_new_user('group_accountant'):
            self.assertTrue(Category.search([('code', '=', 'RESIDENTIAL')]))
            with self.assertRaises(AccessError):
                Meter.create([{'serial': '04100000105'}])

    @with_company
    def test_administrator(self):
        pool = Pool()
        Transformer = pool.get('prepaid.transformer')
        History = pool.get('prepaid.meter.state_history')
        transformer = create_network()
        point = create_service_point(transformer)
        point.install_meter(create_meter('04100000106'), TODAY)
        spare = Transformer(name='Spare', code='TX-SPARE', feeder=transformer.feeder)
        spare.save()
        history = History.search([])
        with as_new_user('group_admin'):
            Transformer.delete([Transformer(spare.id)])
            # The state history is an audit trail: nobody rewrites it.
            with self.assertRaises(AccessError):
                History.write([History(h.id) for h in history], {'reason': 'rewritten'})

    @with_company
    def test_no_group_sees_nothing(self):
        Meter = Pool().get('prepaid.meter')
        create_meter('04100000107')
        with as_new_user():
            with self.assertRaises(AccessError):
                Meter.search([])
