"""Firmware campaigns against simulated meters over real TCP.

Each campaign test has meters of its own in the simulator (their firmware and
their failures outlive the rolled-back test).  Queued tasks do not run inside
a test transaction: the tests run the pending jobs with ``Job.execute`` as a
queue worker would.
"""

from __future__ import annotations

import datetime as dt
import itertools
import unittest
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.model.modelview import AccessButtonError
from trytond.modules.prepaid_headend.dlms import operations as ops
from trytond.modules.prepaid_headend.firmware_campaign import (
    wave_over_threshold,
    waves,
)
from trytond.modules.prepaid_sts.tests import tools as sts_tools
from trytond.modules.prepaid_sts.tests.tools import create_user
from trytond.modules.prepaid_vending.tests.staff import acting_as
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.modules.prepaid_vending.tests.vend_fixtures import new_point, with_vending
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module

from simulators.meter import MeterConfig, MeterSimulator
from simulators.meter.testing import FakeClock

from . import test_headend as th

UTC = dt.UTC
# Simulator meters: the paused campaign's four (the second fails its first
# activation), the cancelled campaign's two, the timed activation's two.
P1, P2, P3, P4, C1, C2, T1, T2 = range(8)
_FLOORS = itertools.count(2_000, 50_000)
IMAGE = ops.build_image(bytes(range(256)) * 4)


class PureTestCase(unittest.TestCase):
    "Waves and threshold without trytond's database"

    def test_waves(self):
        self.assertEqual(waves(5, 2), [1, 1, 2, 2, 3])
        self.assertEqual(waves(0, 3), [])
        with self.assertRaises(ValueError):
            waves(3, 0)

    def test_threshold(self):
        self.assertTrue(wave_over_threshold(1, 2, Decimal(0)))
        self.assertFalse(wave_over_threshold(0, 2, Decimal(0)))
        self.assertFalse(wave_over_threshold(1, 2, Decimal(50)))  # not above
        self.assertTrue(wave_over_threshold(2, 3, Decimal(50)))
        self.assertFalse(wave_over_threshold(3, 3, Decimal(100)))
        self.assertFalse(wave_over_threshold(0, 0, Decimal(0)))


class FirmwareCampaignTestCase(unittest.TestCase):
    "Firmware campaigns over simulated meters"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module("prepaid_headend")
        cls._previous_key = sts_tools.set_master_key()
        base = th.free_port_block(8)
        cls.clock = FakeClock(dt.datetime.now(UTC).replace(microsecond=0))
        configs = [
            MeterConfig(
                index=i,
                port=base + i,
                seed=20 + i,
                activation_failures=1 if i == P2 else 0,
            )
            for i in range(8)
        ]
        cls.sim = MeterSimulator(configs, clock=cls.clock).start()

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        sts_tools.restore_master_key(cls._previous_key)
        super().tearDownClass()

    # --- fixtures -----------------------------------------------------------
    def configure(self) -> None:
        Configuration = Pool().get("prepaid.configuration")
        config = Configuration(1)
        config.hes_retries = 0
        config.hes_concurrency = 10
        config.save()

    def meter(self, index: int | None, serial: str, **values):
        "A meter record; index None: no channel (selection tests only)"
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Counter = pool.get("prepaid.headend.invocation_counter")
        values.setdefault("firmware_version", "FW-1.0.0")
        if index is None:
            meter = Meter(serial=serial, kind="smart_prepaid", **values)
            meter.save()
            return meter
        meter = Meter(
            serial=serial,
            kind="smart_prepaid",
            hes_host="127.0.0.1",
            hes_port=self.sim.port(index),
            hes_framing=self.sim.configs[index].framing,
            hes_auth="hls-gmac",
            hes_client_address=1,
            hes_timeout=5.0,
            **values,
        )
        meter.save()
        Meter.write(
            [meter],
            {
                "hes_block_cipher_key": th.EK.hex(),
                "hes_authentication_key": th.AK.hex(),
            },
        )
        Counter.set_floor(meter.hes_counter_key, next(_FLOORS))
        return meter

    def campaign(self, **values):
        Campaign = Pool().get("prepaid.headend.firmware.campaign")
        values.setdefault("name", "Roll-out")
        values.setdefault("identifier", "FW-2.0.0")
        values.setdefault("image", IMAGE)
        values.setdefault("wave_size", 2)
        values.setdefault("failure_threshold", Decimal(0))
        (campaign,) = Campaign.create([values])
        return campaign

    def run_pending(self, campaign) -> int:
        "Run the pending jobs of the campaign's upgrades as a worker would"
        Job = Pool().get("prepaid.headend.job")
        Campaign = Pool().get("prepaid.headend.firmware.campaign")
        campaign = Campaign(campaign.id)
        jobs = Job.search(
            [
                (
                    "firmware.id",
                    "in",
                    [ln.upgrade.id for ln in campaign.lines if ln.upgrade],
                ),
                ("state", "=", "pending"),
            ]
        )
        Job.execute(jobs)
        return len(jobs)

    def outcomes(self, campaign):
        Campaign = Pool().get("prepaid.headend.firmware.campaign")
        return {ln.meter.serial: ln.outcome for ln in Campaign(campaign.id).lines}

    # --- tests ----------------------------------------------------------------
    @with_company
    def test_failing_wave_pauses_rollback_reported_resume_finishes(self):
        "Wave 1 has a failed activation: paused, rollback shown; Resume: done"
        pool = Pool()
        Campaign = pool.get("prepaid.headend.firmware.campaign")
        Meter = pool.get("prepaid.meter")
        self.configure()
        meters = [self.meter(i, f"CAMP-{i}", model="PX-1") for i in (P1, P2, P3, P4)]
        self.meter(None, "OTHER-MODEL", model="PX-9")
        campaign = self.campaign(meter_model="PX-1")

        Campaign.start([campaign])
        campaign = Campaign(campaign.id)
        self.assertEqual(campaign.state, "running")
        self.assertEqual(campaign.current_wave, 1)
        self.assertEqual(
            [(ln.meter.serial, ln.wave, ln.outcome) for ln in campaign.lines],
            [
                ("CAMP-0", 1, "in_progress"),
                ("CAMP-1", 1, "in_progress"),
                ("CAMP-2", 2, "pending"),
                ("CAMP-3", 2, "pending"),
            ],
        )

        self.assertEqual(self.run_pending(campaign), 2)  # wave 1 only
        campaign = Campaign(campaign.id)
        self.assertEqual(campaign.state, "paused")
        self.assertEqual(campaign.current_wave, 1)
        ok, bad, *rest = campaign.lines
        self.assertEqual(ok.outcome, "activated", ok.message)
        self.assertEqual(ok.version_after, "FW-2.0.0")
        self.assertEqual(bad.outcome, "failed")
        self.assertEqual(bad.version_before, "FW-1.0.0")
        self.assertEqual(bad.version_after, "FW-1.0.0")  # rolled back
        self.assertEqual(bad.upgrade.state, "failed")
        self.assertEqual(self.sim.meter(P2).firmware_id, "FW-1.0.0")
        self.assertEqual(Meter(meters[1].id).firmware_version, "FW-1.0.0")
        self.assertIn("1 of 2", campaign.message)
        self.assertIn("CAMP-1: kept FW-1.0.0", campaign.message)
        self.assertEqual([ln.outcome for ln in rest], ["pending", "pending"])
        self.assertEqual([ln.upgrade for ln in rest], [None, None])

        # The cron changes nothing on a paused campaign.
        Campaign.advance()
        self.assertEqual(Campaign(campaign.id).state, "paused")
        self.assertEqual(self.outcomes(campaign)["CAMP-2"], "pending")

        Campaign.resume([campaign])
        campaign = Campaign(campaign.id)
        self.assertEqual(campaign.state, "running")
        self.assertEqual(campaign.current_wave, 2)
        self.assertEqual(self.run_pending(campaign), 2)
        campaign = Campaign(campaign.id)
        self.assertEqual(campaign.state, "done")
        self.assertEqual(
            self.outcomes(campaign),
            {
                "CAMP-0": "activated",
                "CAMP-1": "failed",
                "CAMP-2": "activated",
                "CAMP-3": "activated",
            },
        )
        self.assertEqual(self.sim.meter(P4).firmware_id, "FW-2.0.0")
        self.assertEqual(Meter(meters[3].id).firmware_version, "FW-2.0.0")

    @with_company
    def test_cancel_skips_pending_lines_running_ones_finish(self):
        pool = Pool()
        Campaign = pool.get("prepaid.headend.firmware.campaign")
        self.configure()
        self.meter(C1, "CANC-1", model="PX-2")
        self.meter(C2, "CANC-2", model="PX-2")
        self.meter(None, "CANC-3", model="PX-2", firmware_version="FW-3.0.0")
        campaign = self.campaign(meter_model="PX-2", identifier="FW-3.0.0", wave_size=1)
        Campaign.start([campaign])
        self.assertEqual(
            self.outcomes(campaign),
            {"CANC-1": "in_progress", "CANC-2": "pending", "CANC-3": "skipped"},
        )
        Campaign.pause([campaign])  # no new wave; the running one goes on
        self.assertEqual(Campaign(campaign.id).state, "paused")
        Campaign.cancel([campaign])
        self.assertEqual(
            self.outcomes(campaign),
            {"CANC-1": "in_progress", "CANC-2": "skipped", "CANC-3": "skipped"},
        )
        self.assertEqual(self.run_pending(campaign), 1)
        campaign = Campaign(campaign.id)
        self.assertEqual(campaign.state, "cancelled")
        self.assertEqual(self.outcomes(campaign)["CANC-1"], "activated")
        self.assertEqual(self.sim.meter(C1).firmware_id, "FW-3.0.0")
        self.assertNotEqual(self.sim.meter(C2).firmware_id, "FW-3.0.0")
        # Nothing more to start: neither the cron nor Resume.
        Campaign.advance()
        Campaign.resume([campaign])
        self.assertEqual(Campaign(campaign.id).state, "cancelled")
        self.assertEqual(self.outcomes(campaign)["CANC-2"], "skipped")

    @with_company
    def test_activation_at_a_time_wave_over_once_activated(self):
        "Timed activation: a verified wave waits (cron too) for its activation"
        pool = Pool()
        Campaign = pool.get("prepaid.headend.firmware.campaign")
        Job = pool.get("prepaid.headend.job")
        self.configure()
        self.meter(T1, "TIME-1", model="PX-6")
        self.meter(T2, "TIME-2", model="PX-6")
        campaign = self.campaign(
            meter_model="PX-6",
            identifier="FW-5.0.0",
            wave_size=1,
            activation="at",
            activate_at=dt.datetime.now() + dt.timedelta(hours=2),
        )
        Campaign.start([campaign])
        self.assertEqual(self.run_pending(campaign), 1)  # transfer and verify
        campaign = Campaign(campaign.id)
        (first, second) = campaign.lines
        self.assertEqual(first.upgrade.state, "verified")
        self.assertNotEqual(self.sim.meter(T1).firmware_id, "FW-5.0.0")
        Campaign.advance()  # the cron: the wave is not over
        self.assertEqual(
            self.outcomes(campaign), {"TIME-1": "in_progress", "TIME-2": "pending"}
        )
        self.assertEqual(Campaign(campaign.id).current_wave, 1)

        (activation,) = Job.search(
            [("firmware", "=", first.upgrade.id), ("kind", "=", "firmware_activate")]
        )
        Job.execute([activation])  # what the worker does at that time
        self.assertEqual(
            self.outcomes(campaign), {"TIME-1": "activated", "TIME-2": "in_progress"}
        )
        self.assertEqual(Campaign(campaign.id).current_wave, 2)
        self.assertEqual(self.run_pending(campaign), 1)  # wave 2's transfer
        self.assertEqual(self.run_pending(campaign), 1)  # its activation
        campaign = Campaign(campaign.id)
        self.assertEqual(campaign.state, "done")
        self.assertEqual(self.sim.meter(T2).firmware_id, "FW-5.0.0")

    @with_company
    def test_selection_by_model_version_and_feeder(self):
        pool = Pool()
        Campaign = pool.get("prepaid.headend.firmware.campaign")
        Feeder = pool.get("prepaid.feeder")
        Transformer = pool.get("prepaid.transformer")
        with with_vending() as env:
            other_feeder = Feeder(
                name="F2", code="F2", substation=env.transformer.feeder.substation
            )
            other_feeder.save()
            other = Transformer(name="T2", code="T2", feeder=other_feeder)
            other.save()
            on_f1 = self.meter(None, "SEL-F1", model="PX-3")
            on_f2 = self.meter(None, "SEL-F2", model="PX-3")
            old = self.meter(None, "SEL-OLD", model="PX-3", firmware_version="FW-0.9")
            self.meter(None, "SEL-MODEL", model="PX-4")
            new_point(env, "SP-SEL1").install_meter(on_f1, dt.date(2020, 1, 1))
            point = new_point(env, "SP-SEL2")
            point.transformer = other
            point.save()
            point.install_meter(on_f2, dt.date(2020, 1, 1))
            new_point(env, "SP-SEL3").install_meter(old, dt.date(2020, 1, 1))

            def selected(**criteria):
                return {m.serial for m in self.campaign(**criteria).select_meters()}

            self.assertEqual(
                selected(meter_model="PX-3"), {"SEL-F1", "SEL-F2", "SEL-OLD"}
            )
            self.assertEqual(
                selected(meter_model="PX-3", from_version="FW-1.0.0"),
                {"SEL-F1", "SEL-F2"},
            )
            self.assertEqual(
                selected(meter_model="PX-3", feeder=env.transformer.feeder.id),
                {"SEL-F1", "SEL-OLD"},
            )
            self.assertEqual(
                selected(from_version="FW-1.0.0", feeder=other_feeder.id),
                {"SEL-F2"},
            )
            nothing = self.campaign(meter_model="NO-SUCH")
            with self.assertRaisesRegex(UserError, "No meter"):
                Campaign.start([nothing])
            self.assertEqual(Campaign(nothing.id).state, "draft")
            self.assertEqual(Campaign(nothing.id).lines, ())

            # A meter is in one campaign at a time (no channel here: the jobs
            # stay pending, the lines in progress).
            first = self.campaign(
                name="First", meter_model="PX-3", from_version="FW-1.0.0"
            )
            Campaign.start([first])
            self.assertEqual(
                self.outcomes(first), {"SEL-F1": "in_progress", "SEL-F2": "in_progress"}
            )
            second = self.campaign(name="Second", meter_model="PX-3")
            Campaign.start([second])
            second = Campaign(second.id)
            self.assertEqual(
                self.outcomes(second),
                {"SEL-F1": "skipped", "SEL-F2": "skipped", "SEL-OLD": "in_progress"},
            )
            self.assertIn("In campaign First", second.lines[-1].message)
            third = self.campaign(
                name="Third", meter_model="PX-3", from_version="FW-1.0.0"
            )
            Campaign.start([third])  # nothing left to upgrade
            self.assertEqual(Campaign(third.id).state, "done")
            self.assertEqual(
                self.outcomes(third), {"SEL-F1": "skipped", "SEL-F2": "skipped"}
            )

    @with_company
    def test_cashier_refused_and_running_campaign_not_writable(self):
        pool = Pool()
        Campaign = pool.get("prepaid.headend.firmware.campaign")
        Line = pool.get("prepaid.headend.firmware.campaign.line")
        self.meter(None, "ACC-1", model="PX-5")
        cashier = create_user("camp_cashier", "cashier")
        operator = create_user("camp_operator", "operator")
        engineer = create_user("camp_engineer", "engineer")
        with acting_as(engineer):  # what the client gives for a new draft
            campaign = self.campaign(
                meter_model="PX-5", feeder=None, activation="now", image_name="fw.bin"
            )
            with self.assertRaises(AccessError):  # the state is the buttons'
                self.campaign(state="running")
        buttons = (Campaign.start, Campaign.pause, Campaign.resume, Campaign.cancel)
        with acting_as(cashier):
            with self.assertRaises(AccessError):
                Campaign.create([{"name": "x", "identifier": "FW-9", "image": IMAGE}])
            for button in buttons:  # a cashier does not even see campaigns
                with self.subTest(user="cashier", button=button.__name__):
                    with self.assertRaises(AccessError):
                        button([campaign])
        with acting_as(operator):
            self.assertEqual(Campaign.search([]), [campaign])  # sees them
            with self.assertRaises(AccessError):
                Campaign.create([{"name": "x", "identifier": "FW-9", "image": IMAGE}])
            for button in buttons:
                with self.subTest(user="operator", button=button.__name__):
                    with self.assertRaises(AccessButtonError):
                        button([campaign])
        self.assertEqual(Campaign(campaign.id).state, "draft")
        self.assertEqual(Campaign(campaign.id).lines, ())

        with acting_as(engineer):
            Campaign.write([campaign], {"wave_size": 5})  # a draft's field
            Campaign.start([campaign])  # no channel: its job will fail
        campaign = Campaign(campaign.id)
        self.assertEqual(campaign.state, "running")
        with acting_as(engineer):
            for values in ({"state": "done"}, {"wave_size": 1}, {"image": b"x"}):
                with self.subTest(values=values):
                    with self.assertRaises(AccessError):
                        Campaign.write([campaign], values)
            (line,) = campaign.lines
            with self.assertRaises(AccessError):
                Line.write([line], {"outcome": "activated"})
        campaign = Campaign(campaign.id)
        self.assertEqual((campaign.state, campaign.wave_size), ("running", 5))
        self.assertEqual(campaign.lines[0].outcome, "in_progress")

        # The meter has no channel: its job fails, the meter kept its version.
        self.assertEqual(self.run_pending(campaign), 1)
        campaign = Campaign(campaign.id)
        self.assertEqual(campaign.state, "paused")
        (line,) = campaign.lines
        self.assertEqual(line.outcome, "failed")
        self.assertEqual(line.version_after, "FW-1.0.0")
        self.assertIn("ACC-1: kept FW-1.0.0", campaign.message)
