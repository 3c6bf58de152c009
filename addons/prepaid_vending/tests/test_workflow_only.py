"""Records with a workflow that a raw client write could forge (issue 11 §3):
an import job's counts and outcome were writable by operators and managers,
and the administrator deleted jobs of any state.  With access checks on, as a
client request, a write of their fields is refused and nothing changes; the
wizard and buttons that own them still write them."""

import datetime as dt
import unittest
from decimal import Decimal

from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module
from trytond.transaction import Transaction

from .staff import acting_as, as_new_user, create_user
from .test_append_only import everyone
from .test_import import counts, good_row, make_network, xlsx
from .tools import create_meter, with_company
from .vend_fixtures import with_vending

IMPORT_ROLES = (
    'group_operator',
    'group_cashier',
    'group_engineer',
    'group_key_custodian',
    'group_manager',
    'group_accountant',
    'group_admin',
)


def run_import_wizard(rows, filename='meters.xlsx'):
    "As the client runs the import wizard: the job it wrote"
    pool = Pool()
    Wizard = pool.get('prepaid.import.wizard', type='wizard')
    Job = pool.get('prepaid.import.job')
    session_id, _, _ = Wizard.create()
    # Wizard.execute is served with access checks off (its RPC says so): the
    # wizard checks its groups itself, and the import writes what it must.
    with Transaction().set_context(_check_access=False):
        result = Wizard.execute(
            session_id,
            {'start': {'file': xlsx(rows), 'filename': filename, 'mode': 'all'}},
            'import_',
        )
    Wizard.delete(session_id)
    return Job(result['view']['defaults']['job'])


class ImportJobWorkflowTestCase(unittest.TestCase):
    "Import jobs: written by the wizard and the import only"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_company
    def test_manager_wizard_writes_its_job(self):
        make_network()
        with as_new_user('group_manager') as manager:
            job = run_import_wizard([good_row('W1')])
        job = job.__class__(job.id)
        self.assertEqual((job.state, job.imported_rows, job.user), ('done', 1, manager))
        self.assertEqual(counts(), (1, 1, 1, 1))

    @with_company
    def test_no_role_rewrites_a_job(self):
        Job = Pool().get('prepaid.import.job')
        make_network()
        job = run_import_wizard([good_row('W1')])
        names = ['state', 'imported_rows', 'rejected_rows', 'message', 'file']
        before = Job.read([job.id], names)
        forged = {
            'state': 'draft',
            'imported_rows': 0,
            'rejected_rows': 5,
            'message': 'forged',
            'file': b'forged',
        }
        for group in IMPORT_ROLES:
            for name, value in forged.items():
                with self.subTest(group=group, field=name), as_new_user(group):
                    with self.assertRaises(AccessError):
                        Job.write([Job(job.id)], {name: value})
            with self.subTest(group=group), as_new_user(group):
                with self.assertRaises(AccessError):
                    Job.delete([Job(job.id)])
                with self.assertRaises(AccessError):
                    Job.create([{'filename': 'x.xlsx', 'state': 'done'}])
        self.assertEqual(Job.read([job.id], names), before)

    @with_company
    def test_admin_deletes_only_a_draft_job(self):
        Job = Pool().get('prepaid.import.job')
        make_network()
        done = run_import_wizard([good_row('W1')])
        (draft,) = Job.create([{'filename': 'draft.xlsx', 'mode': 'all'}])
        with as_new_user('group_admin'):
            with self.assertRaisesRegex(AccessError, 'cannot be deleted'):
                Job.delete([Job(done.id)])
            Job.delete([Job(draft.id)])
        self.assertEqual(Job.search([]), [Job(done.id)])

    @with_company
    def test_queue_button_still_works(self):
        "A failed job goes back to the queue by its button, not by a write"
        Job = Pool().get('prepaid.import.job')
        (job,) = Job.create(
            [{'filename': 'bad.xlsx', 'file': b'x', 'mode': 'all', 'state': 'failed'}]
        )
        with as_new_user('group_manager'):
            with self.assertRaises(AccessError):
                Job.write([Job(job.id)], {'state': 'queued'})
            Job.queue([Job(job.id)])
        self.assertEqual(Job(job.id).state, 'queued')
        self.assertEqual(len(Transaction().tasks), 1)


def remote_account():
    Account = Pool().get('prepaid.remote.account')
    meter = create_meter('04100000306', payment_mode='remote_prepaid')
    (account,) = Account.create([{'meter': meter.id}])
    return account


def reading(account, hour=0) -> dict:
    start = dt.datetime(2026, 3, 1, hour)
    return {
        'account': account.id,
        'start': start,
        'end': start + dt.timedelta(minutes=30),
        'kwh': Decimal('1.500'),
    }


class ConsumptionWorkflowTestCase(unittest.TestCase):
    "Remote consumption: entered by hand, then immutable"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_company
    def test_engineer_enters_a_reading_then_nobody_rewrites_it(self):
        pool = Pool()
        Consumption = pool.get('prepaid.remote.consumption')
        Bill = pool.get('prepaid.remote.bill')
        account = remote_account()
        (bill,) = Bill.create(
            [
                {
                    'account': account.id,
                    'month': dt.date(2026, 3, 1),
                    'date': dt.datetime(2026, 3, 31),
                    'amount': Decimal('0'),
                    'vat': Decimal('0'),
                }
            ]
        )
        with as_new_user('group_engineer'):
            (row,) = Consumption.create([reading(account)])
            # A row created as billed would never be charged.
            with self.assertRaises(AccessError):
                Consumption.create([dict(reading(account, 1), bill=bill.id)])
        forged = {'kwh': Decimal('0'), 'bill': bill.id, 'account': account.id}
        for group in IMPORT_ROLES:
            for name, value in forged.items():
                with self.subTest(group=group, field=name), as_new_user(group):
                    with self.assertRaises(AccessError):
                        Consumption.write([Consumption(row.id)], {name: value})
            with self.subTest(group=group), as_new_user(group):
                with self.assertRaises(AccessError):
                    Consumption.delete([Consumption(row.id)])
        row = Consumption(row.id)
        self.assertEqual((row.kwh, row.bill), (Decimal('1.500'), None))
        self.assertEqual(Consumption.search_count([]), 1)

    @with_company
    def test_refusal_does_not_depend_on_access_records(self):
        pool = Pool()
        Access = pool.get('ir.model.access')
        ModelData = pool.get('ir.model.data')
        Consumption = pool.get('prepaid.remote.consumption')
        account = remote_account()
        (row,) = Consumption.create([reading(account)])
        Access.create(
            [
                {
                    'model': 'prepaid.remote.consumption',
                    'group': ModelData.get_id('prepaid_vending', 'group_engineer'),
                    'perm_read': True,
                    'perm_write': True,
                    'perm_create': True,
                    'perm_delete': True,
                }
            ]
        )
        with as_new_user('group_engineer'):
            with self.assertRaisesRegex(AccessError, 'kwh cannot be changed'):
                Consumption.write([Consumption(row.id)], {'kwh': Decimal('0')})
            with self.assertRaisesRegex(AccessError, 'cannot be deleted'):
                Consumption.delete([Consumption(row.id)])
        self.assertEqual(Consumption(row.id).kwh, Decimal('1.500'))


class InstallationWorkflowTestCase(unittest.TestCase):
    "Installations: opened and closed by the wizards, never by a write"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def install(self, point, meter):
        "As the client runs Install Meter from a service point form"
        Wizard = Pool().get('prepaid.service_point.install_meter', type='wizard')
        context = {'active_model': 'prepaid.service_point', 'active_id': point.id}
        with Transaction().set_context(context, active_ids=[point.id]):
            session_id, _, _ = Wizard.create()
            Wizard.execute(session_id, {}, 'start')
            data = {'meter': meter.id, 'date': dt.date.today(), 'reading': None}
            Wizard.execute(session_id, {'start': data}, 'install')

    @with_company
    def test_no_role_rewrites_deletes_or_forges_an_installation(self):
        Installation = Pool().get('prepaid.meter.installation')
        with with_vending() as env:
            (installation,) = Installation.search([('meter', '=', env.meter.id)])
            spare = create_meter('04000000088', kind='smart_prepaid')
            forged = {
                'meter': spare.id,
                'installed_on': dt.date(2000, 1, 1),
                'removed_on': dt.date.today(),
                'removal_reason': 'forged',
            }
            names = list(forged)
            before = Installation.read([installation.id], names)
            for role, user in everyone(env).items():
                for name, value in forged.items():
                    with self.subTest(role=role, field=name), acting_as(user):
                        with self.assertRaises(AccessError):
                            Installation.write(
                                [Installation(installation.id)], {name: value}
                            )
                with self.subTest(role=role), acting_as(user):
                    with self.assertRaises(AccessError):
                        Installation.delete([Installation(installation.id)])
                    with self.assertRaises(AccessError):
                        Installation.create(
                            [
                                {
                                    'meter': spare.id,
                                    'service_point': env.point.id,
                                    'installed_on': dt.date(1999, 1, 1),
                                    'removed_on': dt.date(1999, 2, 1),
                                }
                            ]
                        )
            self.assertEqual(Installation.read([installation.id], names), before)
            self.assertEqual(Installation.search_count([]), 1)

    @with_company
    def test_install_wizard_still_writes_them(self):
        "An operator's Install Meter closes the old installation, opens one"
        Installation = Pool().get('prepaid.meter.installation')
        with with_vending() as env:
            spare = create_meter('04000000088', kind='smart_prepaid')
            operator = create_user('operator', 'operator', company=env.company)
            with acting_as(operator):
                self.install(env.point, spare)
            old, new = Installation.search(
                [('service_point', '=', env.point.id)], order=[('id', 'ASC')]
            )
            self.assertEqual((old.meter, old.removed_on), (env.meter, dt.date.today()))
            self.assertEqual((new.meter, new.removed_on), (spare, None))

    @with_company
    def test_refusal_does_not_depend_on_access_records(self):
        pool = Pool()
        Access = pool.get('ir.model.access')
        ModelData = pool.get('ir.model.data')
        Installation = pool.get('prepaid.meter.installation')
        with with_vending() as env:
            (installation,) = Installation.search([('meter', '=', env.meter.id)])
            Access.create(
                [
                    {
                        'model': 'prepaid.meter.installation',
                        'group': ModelData.get_id('prepaid_vending', 'group_operator'),
                        'perm_read': True,
                        'perm_write': True,
                        'perm_create': True,
                        'perm_delete': True,
                    }
                ]
            )
            with as_new_user('group_operator'):
                with self.assertRaisesRegex(AccessError, 'removed_on cannot be'):
                    Installation.write(
                        [Installation(installation.id)],
                        {'removed_on': dt.date.today()},
                    )
                with self.assertRaisesRegex(AccessError, 'cannot be deleted'):
                    Installation.delete([Installation(installation.id)])
            self.assertIsNone(Installation(installation.id).removed_on)
