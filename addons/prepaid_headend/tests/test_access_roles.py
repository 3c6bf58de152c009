"""Relay operations, firmware upgrades and head-end jobs, per role.

They take no access from their meter: the groups that may write meters (the
Vending Operator, the Vending Manager) must not thereby switch a customer's
supply, flash a meter or rewrite a job.
"""

import unittest

from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_vending.tests.staff import as_new_user
from trytond.modules.prepaid_vending.tests.tools import create_meter, with_company
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module

# Groups that may read these records and change none of them.
REFUSED = (
    'group_operator',
    'group_cashier',
    'group_accountant',
    'group_key_custodian',
    'group_manager',
)
OPERATORS = ('group_engineer', 'group_admin')


class HeadendAccessRolesTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_headend')

    def check(self, Model, values, change, may_create=True):
        """Only the engineer and the administrator write (and, if may_create,
        create) records of Model; the other staff groups get an AccessError."""
        (record,) = Model.create([values])
        for group in REFUSED:
            with self.subTest(group=group), as_new_user(group):
                with self.assertRaises(AccessError):
                    Model.write([Model(record.id)], change)
                with self.assertRaises(AccessError):
                    Model.create([values])
        for group in OPERATORS:
            with self.subTest(group=group), as_new_user(group):
                Model.write([Model(record.id)], change)
                if may_create:
                    Model.create([values])
                else:
                    with self.assertRaises(AccessError):
                        Model.create([values])
        return record

    @with_company
    def test_relay_operation(self):
        Relay = Pool().get('prepaid.headend.relay')
        meter = create_meter('04100000301')
        values = {'meter': meter.id, 'action': 'disconnect', 'reason': 'Tamper'}
        self.check(Relay, values, {'reason': 'Arrears'})

    @with_company
    def test_firmware_upgrade(self):
        Firmware = Pool().get('prepaid.headend.firmware')
        meter = create_meter('04100000302')
        values = {
            'meter': meter.id,
            'identifier': 'FW-2.0',
            'image': b'image',
            'activation': 'now',
        }
        self.check(Firmware, values, {'identifier': 'FW-2.1'})

    @with_company
    def test_job(self):
        Job = Pool().get('prepaid.headend.job')
        meter = create_meter('04100000303')
        values = {'meter': meter.id, 'kind': 'read'}
        (job,) = Job.create([values])
        # No group writes or creates one: Retry moves them
        # (test_headend_workflow_only).
        for group in REFUSED + OPERATORS:
            with self.subTest(group=group), as_new_user(group):
                with self.assertRaises(AccessError):
                    Job.write([Job(job.id)], {'last_error': 'x'})
                with self.assertRaises(AccessError):
                    Job.create([values])
        self.assertIsNone(Job(job.id).last_error)
