"""Head-end jobs against misbehaving meters: every job is cut off at its
deadline and says so (error kind, message, the deadline kept on the job),
instead of holding the queue worker or the engineer who pressed the button.
"""

from __future__ import annotations

import time
import unittest
import uuid

from trytond.modules.prepaid_headend.tests.hostile_meter import HostileMeter
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module

MARGIN = 3.0  # generous: shared CPU cores


class JobDeadlineTestCase(unittest.TestCase):
    "Job and exchange deadlines of the head-end jobs"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module("prepaid_headend")

    def configure(self, job_deadline: float, retries: int = 0) -> None:
        Configuration = Pool().get("prepaid.configuration")
        Configuration.write(
            [Configuration(1)],
            {"hes_job_deadline": job_deadline, "hes_retries": retries},
        )

    def read_job(self, meter: HostileMeter, **channel):
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Job = pool.get("prepaid.headend.job")
        (record,) = Meter.create(
            [
                {
                    "serial": f"HM{uuid.uuid4().hex[:10]}",
                    "kind": "smart_prepaid",
                    "hes_host": "127.0.0.1",
                    "hes_port": meter.port,
                    "hes_auth": "none",  # the public client: no secrets needed
                    "hes_client_address": 16,
                    **channel,
                }
            ]
        )
        return Job.create_for([record], "read", {"on_demand": True})

    def execute(self, jobs):
        Job = Pool().get("prepaid.headend.job")
        start = time.monotonic()
        Job.execute(jobs)
        return Job.browse([j.id for j in jobs]), time.monotonic() - start

    @with_company
    def test_trickling_meter_fails_the_job_at_the_exchange_deadline(self):
        self.configure(job_deadline=60.0)
        with HostileMeter("trickle") as meter:
            jobs = self.read_job(meter, hes_timeout=1.0, hes_deadline=1.5)
            (job,), elapsed = self.execute(jobs)
        self.assertEqual(job.state, "failed")
        self.assertEqual(job.error_kind, "deadline")
        self.assertIn("1.5 s deadline", job.last_error)
        self.assertEqual(job.deadline, 60.0)
        self.assertLess(elapsed, 1.5 + MARGIN)
        self.assertIn("deadline", job.meter.hes_last_error)

    @with_company
    def test_retries_of_a_silent_meter_stop_at_the_job_deadline(self):
        self.configure(job_deadline=2.0, retries=10)
        with HostileMeter("silent") as meter:
            jobs = self.read_job(meter, hes_timeout=0.5, hes_deadline=10.0)
            (job,), elapsed = self.execute(jobs)
        self.assertEqual(job.state, "failed")
        self.assertEqual(job.error_kind, "deadline")
        self.assertIn("job not finished within its 2 s deadline", job.last_error)
        self.assertGreater(job.attempts, 1)  # it did retry, within the deadline
        self.assertLess(elapsed, 2.0 + MARGIN)

    @with_company
    def test_flooding_meter_fails_the_job_as_oversize(self):
        self.configure(job_deadline=60.0)
        with HostileMeter("flood") as meter:
            jobs = self.read_job(meter, hes_deadline=60.0)
            (job,), _ = self.execute(jobs)
            self.assertLess(meter.sent, meter.flood_bytes)
        self.assertEqual(job.state, "failed")
        self.assertEqual(job.error_kind, "oversize")
        self.assertIn("flood", job.last_error)

    @with_company
    def test_firmware_jobs_have_their_own_deadline(self):
        Configuration = Pool().get("prepaid.configuration")
        Configuration.write([Configuration(1)], {"hes_firmware_deadline": 7200.0})
        config = Configuration(1)
        self.assertEqual(config.hes_deadline_for("firmware"), 7200.0)
        self.assertEqual(config.hes_deadline_for("firmware_activate"), 7200.0)
        self.assertEqual(config.hes_deadline_for("read"), config.hes_job_deadline)
