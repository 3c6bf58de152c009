"""The guard of the fast path over every model it writes, with every module
of the project active: a module that gives one of them a history table, a
translated field, a field written by a setter, tree fields, or a hook
override that prepaid_vending.fastpath does not know, fails here (and the
fast path would refuse the model at its first use)."""

import unittest

from trytond.modules.prepaid_vending import fastpath
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

#: What the fast path writes today; a model added or dropped is a change to
#: review (its callers, its comparison test against the ORM).
CREATED = {
    'prepaid.vend',
    'prepaid.vend.line',
    'prepaid.vend.token',
    'prepaid.meter.month_position',
    'prepaid.meter.command',
    'prepaid.sts.token',
    'prepaid.sts.vending_key.audit',
    'prepaid.headend.register',
    'prepaid.headend.interval',
    'prepaid.headend.billing',
    'prepaid.headend.event',
}
UPDATED = {
    'prepaid.meter.month_position': {'kwh', 'vends', 'fbe_issued'},
    'prepaid.meter': {'sts_last_tid'},
}


class FastPathGuardTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_headend')

    def test_declared(self):
        "The fast path's models are the reviewed ones"
        self.assertEqual(set(fastpath.declared()), CREATED)
        self.assertEqual(
            {m: set(f) for m, f in fastpath.declared_updates().items()}, UPDATED
        )

    @with_transaction()
    def test_created_models_pass_the_guard(self):
        pool = Pool()
        for name in sorted(CREATED):
            with self.subTest(model=name):
                fastpath.guard(pool.get(name))

    @with_transaction()
    def test_updated_fields_pass_the_guard(self):
        pool = Pool()
        for name, field_names in sorted(UPDATED.items()):
            with self.subTest(model=name):
                fastpath.guard_update(pool.get(name), field_names)
