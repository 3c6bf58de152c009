"""Change meter and change tariff of STS keypad meters (the meter change of
prepaid_vending with the key change and credit transfer tokens of this
module).

The cases use the public test vending key of STS 531-1-07 (DKGA04, see
tests/tools.py) and decode the tokens with the project's own engine to check
what the new meter will receive.
"""

import datetime as dt
import unittest
from decimal import Decimal as D

from trytond.modules.prepaid_sts.engine import decode_token, derive_decoder_key
from trytond.modules.prepaid_vending.tests.test_meter_change import stock_meter
from trytond.modules.prepaid_vending.tests.vend_fixtures import with_vending
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction

from .tools import (
    PAN,
    VK_DKGA04,
    StsTestMixin,
    create_vending_key,
)

TODAY = dt.date.today()


class StsMeterChangeTestCase(StsTestMixin, unittest.TestCase):
    "Change meter and tariff of STS keypad meters"

    @staticmethod
    def decoder_key(krn, ti='01'):
        return derive_decoder_key(
            bytes.fromhex(VK_DKGA04), '04', PAN, 2, '201457', ti, krn, '14', '07'
        )

    @staticmethod
    def set_sts(meter, krn):
        meter.__class__.write(
            [meter],
            {
                'sts_pan': PAN,
                'sts_sgc': '201457',
                'sts_krn': krn,
                'sts_tariff_index': '01',
                'sts_key_type': '2',
                'sts_base_date': '14',
                'sts_ea': '07',
            },
        )

    @with_transaction()
    def test_credit_transfer_with_key_change(self):
        "New meter on factory KRN 1 moved to KRN 2, then the credit token"
        pool = Pool()
        MeterChange = pool.get('prepaid.meter.change')
        Token = pool.get('prepaid.sts.token')
        Vend = pool.get('prepaid.vend')
        with with_vending(kind='sts_keypad') as env:
            create_vending_key()
            create_vending_key(krn=2)
            self.set_sts(env.meter, 2)
            new = stock_meter('M2', kind='sts_keypad')
            self.set_sts(new, 1)

            change, tokens = MeterChange.change_meter(
                env.point, new, TODAY, 'Faulty', credit_kwh=D('25.4')
            )

            self.assertTrue(change.key_change)
            kinds = [d for d, _ in tokens]
            self.assertEqual(
                kinds, ['Key change 1/2', 'Key change 2/2', 'Credit transfer 25.4 kWh']
            )
            new = new.__class__(new.id)
            self.assertEqual(new.sts_krn, 2)
            decoded = decode_token(tokens[-1][1], self.decoder_key(2), '07')
            self.assertTrue(decoded.crc_ok)
            self.assertEqual((decoded.token_class, decoded.subclass), (0, 0))
            self.assertEqual(decoded.amount, D('25.4'))
            (logged,) = Token.search([('meter', '=', new.id), ('kind', '=', 'credit')])
            self.assertEqual(logged.reason, 'meter credit transfer')
            self.assertEqual(logged.digits, tokens[-1][1])
            # Never charged: no vend, no money.
            self.assertEqual(Vend.search_count([]), 0)

    @with_transaction()
    def test_credit_transfer_same_key(self):
        "A new meter already on the key in force gets the credit token only"
        MeterChange = Pool().get('prepaid.meter.change')
        with with_vending(kind='sts_keypad') as env:
            create_vending_key()
            self.set_sts(env.meter, 1)
            new = stock_meter('M2', kind='sts_keypad')
            self.set_sts(new, 1)
            change, tokens = MeterChange.change_meter(
                env.point, new, TODAY, 'Faulty', credit_kwh=D('3.0')
            )
            self.assertFalse(change.key_change)
            ((_, digits),) = tokens
            decoded = decode_token(digits, self.decoder_key(1), '07')
            self.assertEqual(decoded.amount, D('3.0'))

    @with_transaction()
    def test_tariff_change_starts_key_change(self):
        "A tariff with another STS tariff index moves the meter to it"
        pool = Pool()
        Tariff = pool.get('prepaid.tariff')
        KeyChange = pool.get('prepaid.sts.key_change')
        with with_vending(kind='sts_keypad') as env:
            create_vending_key()
            self.set_sts(env.meter, 1)
            other = Tariff(name='Business', code='B1', sts_tariff_index='02')
            other.save()
            _, tokens = env.meter.assign_tariff(other, TODAY, 'Shop')
            self.assertEqual(len(tokens), 2)
            meter = env.meter.__class__(env.meter.id)
            self.assertEqual(meter.sts_tariff_index, '02')
            (key_change,) = KeyChange.pending_for(meter)
            self.assertEqual(key_change.new_tariff_index, '02')
            # Same index: nothing to do on the meter.
            same = Tariff(name='Domestic 2', code='D2', sts_tariff_index='02')
            same.save()
            _, tokens = meter.assign_tariff(same, TODAY + dt.timedelta(days=1), 'x')
            self.assertEqual(tokens, [])
