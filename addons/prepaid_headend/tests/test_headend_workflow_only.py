"""Head-end jobs move only through their code and the Retry button (issue 11
§3): an engineer's or the administrator's raw client write could change a
job's meter, kind, parameters or state, so a queued run would talk to another
meter or deliver another payload."""

import json
import unittest

from trytond.model.exceptions import AccessError
from trytond.model.modelview import AccessButtonError
from trytond.modules.prepaid_sts.tests.tools import create_user
from trytond.modules.prepaid_vending.tests.staff import acting_as
from trytond.modules.prepaid_vending.tests.test_append_only import everyone
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.modules.prepaid_vending.tests.vend_fixtures import (
    new_meter,
    new_point,
    with_vending,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module

FIELDS = ['meter', 'kind', 'params', 'state', 'attempts', 'result']


def failed_job(meter):
    "A read job of meter that failed (as its run stores it)"
    Job = Pool().get('prepaid.headend.job')
    (job,) = Job.create_for([meter], 'read', {'registers': True})
    job._store_failure('timeout', 'no answer')
    return Job(job.id)


class JobWorkflowTestCase(unittest.TestCase):
    "Head-end jobs: no client write or delete; Retry by its groups"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_headend')

    @with_company
    def test_no_role_rewrites_or_deletes_a_job(self):
        Job = Pool().get('prepaid.headend.job')
        with with_vending() as env:
            job = failed_job(env.meter)
            other = new_meter('04000000055', new_point(env, 'SP-J'))
            forged = {
                'meter': other.id,
                'kind': 'relay',
                'params': json.dumps({'action': 'disconnect'}),
                'state': 'pending',
            }
            before = Job.read([job.id], FIELDS)
            for role, user in everyone(env).items():
                for name, value in forged.items():
                    with self.subTest(role=role, field=name), acting_as(user):
                        with self.assertRaises(AccessError):
                            Job.write([Job(job.id)], {name: value})
                with self.subTest(role=role), acting_as(user):
                    with self.assertRaises(AccessError):
                        Job.delete([Job(job.id)])
                    with self.assertRaises(AccessError):
                        Job.create([{'meter': other.id, 'kind': 'relay'}])
            self.assertEqual(Job.read([job.id], FIELDS), before)

    @with_company
    def test_refusal_does_not_depend_on_access_records(self):
        "An engineer given full access by mistake still rewrites nothing"
        pool = Pool()
        Access = pool.get('ir.model.access')
        Job = pool.get('prepaid.headend.job')
        with with_vending() as env:
            job = failed_job(env.meter)
            engineer = create_user('engineer', 'engineer', company=env.company)
            Access.create(
                [
                    {
                        'model': 'prepaid.headend.job',
                        'group': engineer.groups[0].id,
                        'perm_read': True,
                        'perm_write': True,
                        'perm_create': True,
                        'perm_delete': True,
                    }
                ]
            )
            with acting_as(engineer):
                with self.assertRaisesRegex(AccessError, 'state cannot be changed'):
                    Job.write([Job(job.id)], {'state': 'pending'})
                with self.assertRaisesRegex(AccessError, 'cannot be deleted'):
                    Job.delete([Job(job.id)])
                with self.assertRaisesRegex(AccessError, 'not from the client'):
                    Job.create([{'meter': env.meter.id, 'kind': 'read'}])
            self.assertEqual(Job(job.id).state, 'failed')

    @with_company
    def test_retry_by_its_groups(self):
        "Retry puts a failed job back to pending for an engineer, not an operator"
        Job = Pool().get('prepaid.headend.job')
        with with_vending() as env:
            job = failed_job(env.meter)
            operator = create_user('operator', 'operator', company=env.company)
            with acting_as(operator), self.assertRaises(AccessButtonError):
                Job.retry([Job(job.id)])
            self.assertEqual(Job(job.id).state, 'failed')
            engineer = create_user('engineer', 'engineer', company=env.company)
            with acting_as(engineer):
                Job.retry([Job(job.id)])
            job = Job(job.id)
            self.assertEqual(
                (job.state, job.kind, job.meter), ('pending', 'read', env.meter)
            )
