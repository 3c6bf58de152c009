"""Head-end readings, events and clock checks are append-only for everyone
(issue 11 §3).

Each staff group, and the administrator, acts as a client request (access
checks on): none may change, delete or forge a register, interval or billing
reading, a meter event or a clock check, even though they take their access
from the meter (which some groups may write).  The ingestion and the jobs
still write them, whoever runs them.
"""

import datetime as dt
import unittest

from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_headend import reading as rd
from trytond.modules.prepaid_sts.tests.tools import create_user
from trytond.modules.prepaid_vending.tests.staff import acting_as
from trytond.modules.prepaid_vending.tests.test_append_only import (
    create_values,
    everyone,
)
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.modules.prepaid_vending.tests.vend_fixtures import with_vending
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module

ENERGY = '1.0.1.8.0.255'
READ_AT = dt.datetime(2026, 1, 10, 12, 0)

#: Model -> (a field to rewrite, its forged value).
APPEND_ONLY = {
    'prepaid.headend.register': ('value', 1.0),
    'prepaid.headend.interval': ('value', 1.0),
    'prepaid.headend.billing': ('value', 1.0),
    'prepaid.headend.event': ('description', 'forged'),
    'prepaid.headend.clock_sync': ('drift', 0.0),
}


def store_readings(meter) -> None:
    "As a read job or the MQTT bridge stores what a meter sent"
    reading = {'obis': ENERGY, 'timestamp': READ_AT, 'value': 1234.5, 'unit': 'kWh'}
    for model in (
        'prepaid.headend.register',
        'prepaid.headend.interval',
        'prepaid.headend.billing',
    ):
        rd.insert_new(model, meter.id, [reading])
    rd.insert_new(
        'prepaid.headend.event',
        meter.id,
        [{'log': 'standard', 'timestamp': READ_AT, 'code': 1, 'description': 'x'}],
        key=('log', 'timestamp', 'code'),
    )


def record_clock_check(meter) -> None:
    "As a time synchronisation job records what it found"
    Job = Pool().get('prepaid.headend.job')
    (job,) = Job.create_for([meter], 'time_sync', {})
    job._record_sync({'drift': 42.0, 'corrected': True, 'after': 0.5})


class HeadendAppendOnlyTestCase(unittest.TestCase):
    "Readings, events and clock checks: append-only for every role"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_headend')

    @with_company
    def test_nobody_edits_deletes_or_forges_a_reading(self):
        "Per role and per model: write, delete and create refused"
        pool = Pool()
        with with_vending() as env:
            store_readings(env.meter)
            record_clock_check(env.meter)
            users = everyone(env)
            for model, (field, forged) in APPEND_ONLY.items():
                Model = pool.get(model)
                (record,) = Model.search([])
                before = Model.read([record.id], [field])[0][field]
                values = create_values(Model, record)
                for role, user in users.items():
                    with self.subTest(model=model, role=role), acting_as(user):
                        with self.assertRaises(AccessError):
                            Model.write([Model(record.id)], {field: forged})
                        with self.assertRaises(AccessError):
                            Model.delete([Model(record.id)])
                        with self.assertRaises(AccessError):
                            Model.create([dict(values)])
                self.assertEqual(Model.read([record.id], [field])[0][field], before)
                self.assertEqual(Model.search_count([]), 1)

    @with_company
    def test_ingestion_and_jobs_still_write(self):
        "The code paths write whoever runs them (here a client's operator)"
        pool = Pool()
        with with_vending() as env:
            operator = create_user('operator', 'group_operator', company=env.company)
            with acting_as(operator):
                store_readings(env.meter)
                record_clock_check(env.meter)
            for model in APPEND_ONLY:
                with self.subTest(model=model):
                    self.assertEqual(pool.get(model).search_count([]), 1)
            (check,) = pool.get('prepaid.headend.clock_sync').search([])
            self.assertEqual((check.drift, check.corrected), (42.0, True))

    @with_company
    def test_access_records_are_read_only_for_the_meter_readers(self):
        """Their own access records say what the model enforces: read for the
        groups that read meters, nothing else for anyone"""
        Access = Pool().get('ir.model.access')
        meter_readers = {
            a.group
            for a in Access.search([('model', '=', 'prepaid.meter')])
            if a.perm_read and a.group
        }
        for model in APPEND_ONLY:
            with self.subTest(model=model):
                records = Access.search([('model', '=', model)])
                self.assertEqual(
                    {a.group for a in records if a.perm_read and a.group},
                    meter_readers,
                )
                for access in records:
                    self.assertEqual(
                        (access.perm_write, access.perm_create, access.perm_delete),
                        (False, False, False),
                    )
