"""The Sell Electricity wizard of prepaid_vending shows the cashier the key
changes that the next vend prints before the credit token.

Vending knows no key change: it asks the meter's hook
(``Meter.vend_pending_key_changes``), which this module answers."""

import unittest
from decimal import Decimal as D

from trytond.modules.prepaid_vending.tests.staff import acting_as, create_user
from trytond.modules.prepaid_vending.tests.vend_fixtures import (
    open_session,
    with_vending,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction

from .test_sts_vend import set_sts
from .tools import StsTestMixin, create_vending_key


class StsVendWizardTestCase(StsTestMixin, unittest.TestCase):
    "Pending key changes in the Sell Electricity wizard"

    def pick_meter(self, env, user) -> dict:
        "The sale step's values once user picked env's meter"
        Wizard = Pool().get('prepaid.vend.wizard', type='wizard')
        with acting_as(user):
            session_id, _, _ = Wizard.create()
            Wizard.execute(session_id, {}, 'start')
            result = Wizard.execute(
                session_id, {'start': {'search': env.meter.serial}}, 'select'
            )
        self.assertEqual(result['view']['state'], 'sale')
        return result['view']['defaults']

    @with_transaction()
    def test_pending_key_changes_shown_until_confirmed(self):
        pool = Pool()
        KeyChange = pool.get('prepaid.sts.key_change')
        Vend = pool.get('prepaid.vend')
        with with_vending(kind='sts_keypad') as env:
            create_vending_key()
            create_vending_key(krn=2)
            set_sts(env.meter)
            cashier = create_user('key_change_cashier', 'group_cashier')
            self.assertEqual(self.pick_meter(env, cashier)['key_changes'], '')

            key_change = KeyChange.issue(env.meter, {'krn': 2}, reason='KRN 2')
            self.assertEqual(len(key_change.tokens), 2)
            expected = f'{key_change.rec_name}: 2 tokens, printed with the next vend'
            self.assertEqual(self.pick_meter(env, cashier)['key_changes'], expected)

            # Printed with a vend but not yet confirmed: still shown.
            with acting_as(cashier):
                open_session(env)
                vend = Vend.vend(env.meter, D('100.00'), 'cash', env.sales_point, 'k')
            self.assertEqual(
                [t.kind for t in vend.tokens], ['key_change', 'key_change', 'credit']
            )
            self.assertEqual(self.pick_meter(env, cashier)['key_changes'], expected)

            KeyChange.confirm([key_change])
            self.assertEqual(self.pick_meter(env, cashier)['key_changes'], '')
