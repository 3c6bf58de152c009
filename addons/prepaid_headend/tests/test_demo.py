"""The demo's smart meters deliver end to end: a sale's remote credit reaches a
simulated meter holding the decoder key ``scripts/demo`` gives it, and the
demo channels follow the simulator's port."""

from __future__ import annotations

import datetime as dt
import unittest
from decimal import Decimal

from trytond.modules.company.tests import create_company, set_company
from trytond.modules.prepaid_headend.tests.test_headend import free_port_block
from trytond.modules.prepaid_sts.tests import tools as sts_tools
from trytond.modules.prepaid_vending.tests.vend_fixtures import setup_accounting
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from prepaid_demo.headend import (
    DEMO_COUNT,
    DEMO_FIRST_PORT,
    demo_channel_meters,
    point_demo_channels,
    simulator_meters,
)
from prepaid_demo.sts import demo_decoder_key
from prepaid_demo.vending import create_demo_data, setup_demo_vending
from simulators.meter import MeterConfig, MeterSimulator
from simulators.meter.testing import FakeClock

SEED = 11


def build_demo() -> None:
    "The demo as scripts/setup_demo.py builds it, in the current company"
    setup_accounting(Pool().get('company.company')(Transaction().context['company']))
    create_demo_data(seed=SEED, customers=30)
    setup_demo_vending(seed=SEED)


class HeadendDemoTestCase(unittest.TestCase):
    "Head-end part of the demo"

    @classmethod
    def setUpClass(cls):
        cls._previous_master_key = sts_tools.set_master_key()
        activate_module('prepaid_headend')

    @classmethod
    def tearDownClass(cls):
        sts_tools.restore_master_key(cls._previous_master_key)

    @with_transaction()
    def test_channels_follow_the_simulator_port(self):
        "Moved once to a new first port, then left alone; keys match the ports"
        with set_company(create_company()):
            build_demo()
            meters = demo_channel_meters()
            self.assertTrue(meters)
            self.assertEqual(
                [m.hes_port for m in meters],
                list(range(DEMO_FIRST_PORT, DEMO_FIRST_PORT + len(meters))),
            )
            self.assertEqual(point_demo_channels(DEMO_FIRST_PORT), 0)
            self.assertEqual(point_demo_channels(24061), len(meters))
            self.assertEqual(point_demo_channels(24061), 0)
            self.assertEqual(
                [m.hes_port for m in demo_channel_meters()],
                list(range(24061, 24061 + len(meters))),
            )

            table = simulator_meters(24061, seed=SEED)
            self.assertEqual(len(table), DEMO_COUNT)
            self.assertEqual([t['port'] for t in table][:2], [24061, 24062])
            for meter, entry in zip(meters, table, strict=False):
                self.assertEqual(entry['serial'], meter.serial)
                self.assertEqual(
                    entry['decoder_key'], demo_decoder_key(meter, SEED).hex()
                )
            # Simulated meters without a demo meter hold no key.
            self.assertEqual({t['decoder_key'] for t in table[len(meters) :]}, {None})

    @with_transaction()
    def test_smart_meter_sale_delivered_to_the_simulated_meter(self):
        "Sale, dispatch, the meter accepts the token and holds the kWh sold"
        pool = Pool()
        SalesPoint = pool.get('prepaid.sales_point')
        Session = pool.get('prepaid.cashier.session')
        Vend = pool.get('prepaid.vend')
        Command = pool.get('prepaid.meter.command')
        Job = pool.get('prepaid.headend.job')
        with set_company(create_company()):
            build_demo()
            first = free_port_block(DEMO_COUNT)
            point_demo_channels(first)
            table = simulator_meters(first, seed=SEED)
            configs = [
                MeterConfig(
                    index=i,
                    port=entry['port'],
                    seed=i,
                    decoder_key=(
                        bytes.fromhex(entry['decoder_key'])
                        if entry['decoder_key']
                        else None
                    ),
                )
                for i, entry in enumerate(table)
                if entry['serial']
            ]
            meter = next(
                m for m in demo_channel_meters() if m.payment_mode == 'prepaid'
            )
            index = meter.hes_port - first
            (head_office,) = SalesPoint.search([('code', '=', 'HO')])
            Session.open_session(head_office)
            # A stopped clock: the simulated load draws no credit meanwhile.
            clock = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
            with MeterSimulator(configs, clock=clock) as simulator:
                state = simulator.meter(index)
                credit_before = state.credit_wh
                vend = Vend.vend(
                    meter, Decimal('150.00'), 'cash', head_office, 'demo-smart'
                )
                (command,) = Command.search([('vend', '=', vend.id)])
                Job.execute(Command.hes_dispatch([command]))
                command = Command(command.id)
                self.assertEqual(command.state, 'accepted', command.last_error)
                self.assertEqual(command.hes_token_status, 3)
                self.assertAlmostEqual(
                    state.credit_wh - credit_before,
                    float(vend.units_kwh) * 1000,
                    delta=1,
                )
