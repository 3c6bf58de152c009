"""Two utilities (companies) in one database, on the head-end side.

Reading groups, schedules, jobs, relay operations, firmware upgrades and
load-management settings carry their utility; readings and events take it
from their meter.  Cron runs per company (``ir.cron.companies`` puts it in
the context) and then works for that company only; the queue tasks of jobs
run in their jobs' company.  Nothing here talks to a meter: the jobs are
created and queued, which is what cron and the buttons do.
"""

from __future__ import annotations

import datetime as dt
import unittest

from trytond.model.exceptions import AccessError, DomainValidationError
from trytond.modules.prepaid_headend import mqtt_bridge
from trytond.modules.prepaid_headend.mqtt import EventMessage, Inbound
from trytond.modules.prepaid_sts.tests.tools import create_user, utility
from trytond.modules.prepaid_vending.tests.staff import acting_as
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

NOW = dt.datetime(2026, 3, 2, 1, 0)


class HeadendCompanyTestCase(unittest.TestCase):
    "Head-end records of two utilities"

    @classmethod
    def setUpClass(cls):
        activate_module("prepaid_headend")

    def meter(self, company, serial="SM1", **values):
        "A smart meter of company with a (never contacted) TCP channel"
        Meter = Pool().get("prepaid.meter")
        (meter,) = Meter.create(
            [
                {
                    "company": company.id,
                    "serial": serial,
                    "kind": "smart_prepaid",
                    "hes_host": "127.0.0.1",
                    "hes_port": 4059,
                    "hes_framing": "wrapper",
                    "hes_auth": "hls-gmac",
                    "hes_client_address": 1,
                    **values,
                }
            ]
        )
        return meter

    def utility_with_schedule(self, name):
        "A utility with a reading group of one meter and a daily schedule"
        pool = Pool()
        Group = pool.get("prepaid.headend.meter_group")
        Schedule = pool.get("prepaid.headend.schedule")
        company = utility(name)
        (group,) = Group.create([{"company": company.id, "name": "Feeder 1"}])
        meter = self.meter(company, hes_group=group.id)
        (schedule,) = Schedule.create(
            [{"company": company.id, "name": "Daily", "group": group.id}]
        )
        return company, group, meter, schedule

    def queued_companies(self, jobs) -> dict[int, set[int]]:
        "Job id -> companies in the context of the queue tasks that run it"
        Queue = Pool().get("ir.queue")
        ids = {j.id for j in jobs}
        result: dict[int, set[int]] = {}
        for task in Queue.search([]):
            if task.data["method"] != "execute":
                continue
            for job_id in set(task.data["instances"]) & ids:
                result.setdefault(job_id, set()).add(task.data["context"]["company"])
        return result

    @with_transaction()
    def test_cron_runs_each_utilitys_schedules_in_its_context(self):
        "Cron for A reads A's meters only; the jobs carry A and run in A"
        Schedule = Pool().get("prepaid.headend.schedule")
        a, _, meter_a, schedule_a = self.utility_with_schedule("Utility A")
        b, _, meter_b, schedule_b = self.utility_with_schedule("Utility B")

        with Transaction().set_context(company=a.id):
            jobs = Schedule.run_due(NOW)
        self.assertEqual([(j.meter, j.company) for j in jobs], [(meter_a, a)])
        self.assertIsNone(Schedule(schedule_b.id).last_run)
        self.assertEqual(self.queued_companies(jobs), {jobs[0].id: {a.id}})

        # Without a company (a cron registered for none): every utility's,
        # each queued in its own company.
        schedule_a.next_run = None
        schedule_a.save()
        jobs = Schedule.run_due(NOW)
        by_meter = {j.meter: j for j in jobs}
        self.assertEqual(set(by_meter), {meter_a, meter_b})
        self.assertEqual(by_meter[meter_b].company, b)
        self.assertEqual(
            self.queued_companies(jobs),
            {by_meter[meter_a].id: {a.id}, by_meter[meter_b].id: {b.id}},
        )

    @with_transaction()
    def test_group_and_schedule_hold_their_utilitys_only(self):
        "A's reading group takes no meter of B; A's schedule no group of B"
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Schedule = pool.get("prepaid.headend.schedule")
        a, group_a, meter_a, _ = self.utility_with_schedule("Utility A")
        b, group_b, meter_b, _ = self.utility_with_schedule("Utility B")

        with self.assertRaises(DomainValidationError):
            Meter.write([meter_b], {"hes_group": group_a.id})
        with self.assertRaises(DomainValidationError):
            Schedule.create([{"company": a.id, "name": "X", "group": group_b.id}])

    @with_transaction()
    def test_command_dispatch_per_utility(self):
        "Cron for A turns A's pending relay commands into jobs, not B's"
        pool = Pool()
        Command = pool.get("prepaid.meter.command")
        Relay = pool.get("prepaid.headend.relay")
        a, b = utility("Utility A"), utility("Utility B")
        meter_a, meter_b = self.meter(a), self.meter(b)
        command_a = Command.queue(meter_a, "reconnect", {"balance": "20.00"})
        command_b = Command.queue(meter_b, "reconnect", {"balance": "20.00"})

        with Transaction().set_context(company=a.id):
            jobs = Command.hes_dispatch(now=NOW)
        self.assertEqual([(j.meter, j.company) for j in jobs], [(meter_a, a)])
        (relay,) = Relay.search([])
        self.assertEqual((relay.meter, relay.company), (meter_a, a))
        self.assertEqual(Command(command_a.id).state, "sent")
        self.assertEqual(Command(command_b.id).state, "pending")

    @with_transaction()
    def test_engineer_sees_and_acts_on_own_utility_only(self):
        "Jobs, relay operations, firmware, settings, readings: per utility"
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Job = pool.get("prepaid.headend.job")
        Relay = pool.get("prepaid.headend.relay")
        Firmware = pool.get("prepaid.headend.firmware")
        Setting = pool.get("prepaid.load_management")
        Group = pool.get("prepaid.headend.meter_group")
        Register = pool.get("prepaid.headend.register")
        Event = pool.get("prepaid.headend.event")
        a, group_a, meter_a, _ = self.utility_with_schedule("Utility A")
        b, group_b, meter_b, _ = self.utility_with_schedule("Utility B")
        for meter in (meter_a, meter_b):
            Job.create_for([meter], "read", {})
            Meter.hes_relay_operate([meter], "disconnect")
            Firmware.create(
                [
                    {
                        "company": meter.company.id,
                        "meter": meter.id,
                        "identifier": "FW-2",
                        "image": b"image",
                    }
                ]
            )
            Setting.create(
                [
                    {
                        "company": meter.company.id,
                        "name": "Peak",
                        "normal_limit": 5000,
                    }
                ]
            )
            Register.create(
                [
                    {
                        "meter": meter.id,
                        "obis": "1.0.1.8.0.255",
                        "timestamp": NOW,
                        "value": 1.0,
                    }
                ]
            )
            Event.create(
                [{"meter": meter.id, "log": "standard", "timestamp": NOW, "code": 1}]
            )
        self.assertEqual({r.company for r in Relay.search([])}, {a, b})
        engineer_a = create_user("engineer_a", "engineer", company=a)

        with acting_as(engineer_a):
            for Model in (Job, Relay, Firmware, Setting, Group):
                with self.subTest(model=Model.__name__):
                    self.assertEqual({r.company for r in Model.search([])}, {a})
            # Readings and events have no company of their own: the
            # meter's rule applies (through __access__).
            self.assertEqual({r.meter for r in Register.search([])}, {meter_a})
            self.assertEqual({e.meter for e in Event.search([])}, {meter_a})
            self.assertEqual(Relay.search([("meter", "=", meter_b.id)]), [])
        (relay_b,) = Relay.search([("meter", "=", meter_b.id)])
        (firmware_b,) = Firmware.search([("meter", "=", meter_b.id)])
        with acting_as(engineer_a):
            with self.assertRaises(AccessError):
                Relay.execute([Relay(relay_b.id)])
            with self.assertRaises(AccessError):
                Firmware.start([Firmware(firmware_b.id)])
            with self.assertRaises(AccessError):
                Meter.hes_relay_operate([Meter(meter_b.id)], "reconnect")

    @with_transaction()
    def test_pushed_event_goes_to_the_meter_of_the_storing_users_utility(self):
        "Same serial at two utilities: stored only where the serial is unique"
        pool = Pool()
        Event = pool.get("prepaid.headend.event")
        a, b = utility("Utility A"), utility("Utility B")
        meter_a, meter_b = self.meter(a), self.meter(b)
        message = EventMessage(
            "SM1", dt.datetime(2026, 3, 2, 8, 30, tzinfo=dt.UTC), "DC-7", "event", 1
        )
        item = Inbound("prepaid/main/meters/SM1/events", "main", message)

        # A storing user bound to no company (root): the serial is ambiguous.
        with Transaction().set_user(0):
            result = mqtt_bridge.store_messages([item])
        self.assertEqual((result.stored, result.unknown_meter), (0, 1))
        self.assertEqual(Event.search([]), [])

        # A storing user of utility B only: B's meter.
        ingest_b = create_user("ingest_b", company=b)
        with Transaction().set_user(ingest_b.id):
            result = mqtt_bridge.store_messages([item])
        self.assertEqual(result.stored, 1)
        self.assertEqual([e.meter for e in Event.search([])], [meter_b])
        # One of utility A: A's meter.
        ingest_a = create_user("ingest_a", company=a)
        with Transaction().set_user(ingest_a.id):
            mqtt_bridge.store_messages([item])
        self.assertEqual({e.meter for e in Event.search([])}, {meter_a, meter_b})
