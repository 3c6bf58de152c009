"""Load-management settings: the daily-period arithmetic and the model rules.

Writing the settings into a (simulated) meter's limiter is tested end to end
in ``test_headend.py``."""

from __future__ import annotations

import datetime as dt
import unittest

import pytest
from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_headend.load_management import limit_at, periods_overlap
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module

T = dt.time
EVENING = (T(17, 0), T(21, 0), 2500)
NIGHT = (T(22, 0), T(6, 0), 8000)  # wraps midnight


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (T(12, 0), 5000),  # outside every period: the normal limit
        (T(17, 0), 2500),  # a period includes its start ...
        (T(20, 59), 2500),
        (T(21, 0), 5000),  # ... and excludes its end
        (T(23, 30), 8000),  # before midnight in the wrapping period
        (T(0, 0), 8000),
        (T(5, 59), 8000),  # after midnight in it
        (T(6, 0), 5000),
    ],
)
def test_limit_in_effect(moment: dt.time, expected: int) -> None:
    assert limit_at(5000, [EVENING, NIGHT], moment) == expected


def test_no_periods_means_the_normal_limit() -> None:
    assert limit_at(0, [], T(18, 0)) == 0


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ((T(17), T(21)), (T(21), T(23)), False),  # touching is not overlapping
        ((T(17), T(21)), (T(20), T(23)), True),
        ((T(22), T(6)), (T(5), T(7)), True),  # the wrapping part overlaps
        ((T(22), T(6)), (T(6), T(22)), False),  # the two halves of a day
        ((T(22), T(6)), (T(23), T(1)), True),  # both wrap
    ],
)
def test_periods_overlap(first, second, overlap: bool) -> None:
    assert periods_overlap(first, second) is overlap
    assert periods_overlap(second, first) is overlap


class LoadManagementTestCase(unittest.TestCase):
    "Load-management settings (model rules)"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_headend')

    @with_company
    def test_setting_values_and_period_rules(self):
        pool = Pool()
        Setting = pool.get('prepaid.load_management')
        Period = pool.get('prepaid.load_management.period')

        def setting(name: str, *periods):
            record = Setting(name=name, normal_limit=5000)
            record.save()
            for start, end, limit in periods:
                Period(
                    setting=record, start_time=start, end_time=end, limit=limit
                ).save()
            return Setting(record.id)

        # A failed save leaves its row in the transaction (the caller rolls
        # back), so each broken case gets a setting of its own.
        good = setting('Residential', EVENING, (T(21), T(23), 3000))
        self.assertEqual(
            good.limiter_values(T(21, 30)),
            {
                'active': 3000,
                'normal': 5000,
                'emergency': 0,
                'min_over_threshold_duration': 60,
                'min_under_threshold_duration': 60,
            },
        )
        with self.assertRaisesRegex(ValidationError, 'overlap'):
            setting('Overlap', EVENING, (T(20), T(2), 1))
        with self.assertRaisesRegex(ValidationError, 'same time'):
            setting('Empty', (T(8), T(8), 1))
        with self.assertRaisesRegex(ValidationError, '"Limit \\(W\\)" must be between'):
            setting('Negative period', (T(8), T(9), -1))
        with self.assertRaisesRegex(ValidationError, 'must be between 0 and'):
            Setting(name='Negative', normal_limit=-5).save()
