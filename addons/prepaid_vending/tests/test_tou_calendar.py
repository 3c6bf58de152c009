"""TOU calendars as records: pricing through a tariff version, the validation
rules with their messages, copies, and the calculator cache."""

import datetime as dt
import unittest
from decimal import Decimal as D

from trytond.exceptions import UserError
from trytond.modules.prepaid_vending.tariff import price_intervals
from trytond.modules.prepaid_vending.tou_calendar import WEEKDAYS
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module
from trytond.transaction import Transaction

from .tools import with_company

PEAK, STANDARD, OFF_PEAK = 1, 2, 3
T = dt.time


def build_calendar(code='TOU-D'):
    """3 rates; winter and summer weekdays and a weekend; winter from 1 June,
    summer from 1 September; Youth Day 2026 once and Heritage Day every year."""
    pool = Pool()
    Calendar = pool.get('prepaid.tou.calendar')

    def switches(*pairs):
        return [('create', [{'start': s, 'rate': r} for s, r in pairs])]

    (calendar,) = Calendar.create(
        [
            {
                'name': f'Domestic TOU {code}',
                'code': code,
                'rates': [
                    (
                        'create',
                        [
                            {'index': PEAK, 'name': 'Peak', 'price': D('3.50')},
                            {'index': STANDARD, 'name': 'Standard', 'price': D(2)},
                            {'index': OFF_PEAK, 'name': 'Off-peak', 'price': D('1.10')},
                        ],
                    )
                ],
                'day_profiles': [
                    (
                        'create',
                        [
                            {
                                'name': 'Winter weekday',
                                'switches': switches(
                                    (T(0), OFF_PEAK),
                                    (T(6), PEAK),
                                    (T(9), STANDARD),
                                    (T(17), PEAK),
                                    (T(20), STANDARD),
                                    (T(22), OFF_PEAK),
                                ),
                            },
                            {
                                'name': 'Summer weekday',
                                'switches': switches(
                                    (T(0), OFF_PEAK),
                                    (T(7), STANDARD),
                                    (T(21), OFF_PEAK),
                                ),
                            },
                            {'name': 'Weekend', 'switches': switches((T(0), OFF_PEAK))},
                        ],
                    )
                ],
            }
        ]
    )
    # Week profiles can only name day profiles that are saved: a second save,
    # as in the form.
    days = {d.name: d.id for d in calendar.day_profiles}

    def week(name, weekday):
        return {'name': name} | {
            d: days[weekday if i < 5 else 'Weekend'] for i, d in enumerate(WEEKDAYS)
        }

    Calendar.write(
        [calendar],
        {
            'week_profiles': [
                (
                    'create',
                    [
                        week('Winter', 'Winter weekday'),
                        week('Summer', 'Summer weekday'),
                    ],
                )
            ]
        },
    )
    weeks = {w.name: w.id for w in Calendar(calendar.id).week_profiles}
    Calendar.write(
        [calendar],
        {
            'seasons': [
                (
                    'create',
                    [
                        {
                            'name': 'Winter',
                            'start_month': 6,
                            'start_day': 1,
                            'week_profile': weeks['Winter'],
                        },
                        {
                            'name': 'Summer',
                            'start_month': 9,
                            'start_day': 1,
                            'week_profile': weeks['Summer'],
                        },
                    ],
                )
            ],
            'special_days': [
                (
                    'create',
                    [
                        {
                            'name': 'Youth Day 2026',
                            'date': dt.date(2026, 6, 16),
                            'day_profile': days['Weekend'],
                        },
                        {
                            'name': 'Heritage Day',
                            'month': 9,
                            'day': 24,
                            'day_profile': days['Weekend'],
                        },
                    ],
                )
            ],
        },
    )
    return Calendar(calendar.id)


def tou_version(calendar, code='TOU'):
    pool = Pool()
    Tariff = pool.get('prepaid.tariff')
    Version = pool.get('prepaid.tariff.version')
    tariff = Tariff(name=f'Time of use {code}', code=code)
    tariff.save()
    version = Version(
        tariff=tariff,
        start_date=dt.date(2026, 1, 1),
        kind='tou',
        prices_include_vat=True,
        tou_calendar=calendar,
    )
    version.save()
    return version


def by_name(records, name):
    (record,) = [r for r in records if r.name == name]
    return record


class TouCalendarTestCase(unittest.TestCase):
    "TOU calendars"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    @with_company
    def test_version_prices_intervals_from_the_calendar(self):
        version = tou_version(build_calendar())
        tou = version.to_calculator().tou
        # (end of the 30-minute interval, kWh, rate, amount by hand)
        cases = [
            # Wednesday in winter, 07:30-08:00: peak
            (dt.datetime(2026, 6, 3, 8, 0), D('1.2'), PEAK, D('4.200')),
            # Saturday: weekend, off-peak all day
            (dt.datetime(2026, 6, 6, 8, 0), D('2.0'), OFF_PEAK, D('2.200')),
            # Tuesday 16 June 2026, a dated holiday: weekend profile
            (dt.datetime(2026, 6, 16, 8, 0), D('1.5'), OFF_PEAK, D('1.650')),
            # the Tuesday after: an ordinary winter weekday again
            (dt.datetime(2026, 6, 23, 8, 0), D('1.5'), PEAK, D('5.250')),
            # Heritage Day every year: Thursday 2026, Friday 2027
            (dt.datetime(2026, 9, 24, 8, 0), D('0.8'), OFF_PEAK, D('0.880')),
            (dt.datetime(2027, 9, 24, 8, 0), D('1.0'), OFF_PEAK, D('1.10')),
            # across the change to summer on 1 September, 18:00-18:30
            (dt.datetime(2026, 8, 31, 18, 30), D('1.0'), PEAK, D('3.50')),
            (dt.datetime(2026, 9, 1, 18, 30), D('1.0'), STANDARD, D('2.0')),
            # stamped 00:00 on 1 September: 23:30-00:00 on the last winter day
            (dt.datetime(2026, 9, 1, 0, 0), D('2.0'), OFF_PEAK, D('2.20')),
            # March is before winter starts: last year's summer still runs
            (dt.datetime(2026, 3, 4, 8, 0), D('1.0'), STANDARD, D('2.0')),
        ]
        priced = price_intervals(tou, [(end, kwh) for end, kwh, _, _ in cases])
        self.assertEqual(
            [(p.rate, p.amount) for p in priced],
            [(rate, amount) for _, _, rate, amount in cases],
        )
        self.assertEqual(sum(p.amount for p in priced), D('24.98'))

    @with_company
    def test_to_dict_is_the_calculator_form(self):
        calendar = build_calendar()
        data = calendar.to_dict()
        rate = data['rates'][0]
        self.assertEqual((rate['index'], rate['name']), (1, 'Peak'))
        self.assertEqual(D(rate['price']), D('3.50'))
        self.assertEqual(
            data['week_profiles'][0]['days'],
            ['Winter weekday'] * 5 + ['Weekend'] * 2,
        )
        self.assertEqual(
            sorted(s['start'] for s in data['seasons']), ['06-01', '09-01']
        )
        self.assertIn(
            {'month_day': '09-24', 'day_profile': 'Weekend'}, data['special_days']
        )
        self.assertIn(
            {'date': '2026-06-16', 'day_profile': 'Weekend'}, data['special_days']
        )

    def assert_refused(self, message, operation):
        "operation fails with message; its partial writes are rolled back"
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        cursor.execute('SAVEPOINT refused')
        try:
            with self.assertRaisesRegex(UserError, message):
                operation()
        finally:
            cursor.execute('ROLLBACK TO SAVEPOINT refused')
            transaction.cache.clear()
            transaction.counter += 1

    @with_company
    def test_rate_rules(self):
        pool = Pool()
        Calendar = pool.get('prepaid.tou.calendar')
        Rate = pool.get('prepaid.tou.calendar.rate')
        calendar = build_calendar()
        self.assert_refused(
            'has 9 rates: a calendar has at most 8',
            lambda: Calendar.write(
                [calendar],
                {
                    'rates': [
                        (
                            'create',
                            [
                                {'index': i, 'name': f'T{i}', 'price': D(1)}
                                for i in range(4, 10)
                            ],
                        )
                    ]
                },
            ),
        )
        for values, message in [
            ({'index': 9}, 'number 9: number the rates 1 to 8'),
            ({'index': 0}, 'number 0: number the rates 1 to 8'),
            ({'index': 2}, 'two rates numbered 2'),
            ({'index': 4, 'price': D('-0.01')}, 'negative price'),
        ]:
            with self.subTest(values=values):
                self.assert_refused(
                    message,
                    lambda v=values: Rate.create(
                        [
                            {
                                'calendar': calendar.id,
                                'name': 'Extra',
                                'price': D(1),
                                **v,
                            }
                        ]
                    ),
                )

    @with_company
    def test_eight_rates_are_accepted(self):
        pool = Pool()
        Rate = pool.get('prepaid.tou.calendar.rate')
        calendar = build_calendar()
        Rate.create(
            [
                {'calendar': calendar.id, 'index': i, 'name': f'T{i}', 'price': D(1)}
                for i in range(4, 9)
            ]
        )
        self.assertEqual(len(calendar.to_dict()['rates']), 8)

    @with_company
    def test_day_profile_rules(self):
        pool = Pool()
        Day = pool.get('prepaid.tou.calendar.day')
        Switch = pool.get('prepaid.tou.calendar.day.switch')
        Rate = pool.get('prepaid.tou.calendar.rate')
        calendar = build_calendar()
        weekend = by_name(calendar.day_profiles, 'Weekend')
        self.assert_refused(
            'switches at 12:00 to rate 5, which the calendar does not define '
            r'\(its rates: 1, 2, 3\)',
            lambda: Switch.create(
                [{'day_profile': weekend.id, 'start': T(12), 'rate': 5}]
            ),
        )
        # Deleting a rate that a day profile still uses is the same mistake.
        peak = [r for r in calendar.rates if r.index == PEAK]
        self.assert_refused(
            'switches at 06:00 to rate 1, which the calendar does not define',
            lambda: Rate.delete(peak),
        )
        self.assert_refused(
            '"Night" .* has no switch at 00:00',
            lambda: Day.create(
                [
                    {
                        'calendar': calendar.id,
                        'name': 'Night',
                        'switches': [('create', [{'start': T(22), 'rate': 3}])],
                    }
                ]
            ),
        )
        self.assert_refused(
            '"Weekend" .* has no switch at 00:00',
            lambda: Switch.write(list(weekend.switches), {'start': T(1)}),
        )
        self.assert_refused(
            '"Weekend" .* switches twice at 00:00',
            lambda: Switch.create(
                [{'day_profile': weekend.id, 'start': T(0), 'rate': 1}]
            ),
        )

    @with_company
    def test_week_profile_rules(self):
        pool = Pool()
        Week = pool.get('prepaid.tou.calendar.week')
        Day = pool.get('prepaid.tou.calendar.day')
        calendar = build_calendar()
        winter = by_name(calendar.week_profiles, 'Winter')
        self.assert_refused(
            '"Winter" .* has no day profile for Sunday',
            lambda: Week.write([winter], {'sunday': None}),
        )
        days = {d.name: d.id for d in calendar.day_profiles}
        self.assert_refused(
            '"Short" .* has no day profile for Wednesday',
            lambda: Week.create(
                [
                    {
                        'calendar': calendar.id,
                        'name': 'Short',
                        'monday': days['Weekend'],
                        'tuesday': days['Weekend'],
                    }
                ]
            ),
        )
        # A day profile still named by a week cannot disappear from it.
        self.assert_refused(
            'has no day profile',
            lambda: Day.delete([Day(days['Summer weekday'])]),
        )
        # Week profiles name day profiles of their own calendar only.
        other = build_calendar('TOU-OTHER')
        self.assert_refused(
            'Monday',
            lambda: Week.write(
                [winter],
                {'monday': by_name(other.day_profiles, 'Weekend').id},
            ),
        )

    @with_company
    def test_season_rules(self):
        pool = Pool()
        Season = pool.get('prepaid.tou.calendar.season')
        calendar = build_calendar()
        summer = by_name(calendar.week_profiles, 'Summer')

        def season(name, month, day, week=summer.id):
            return lambda: Season.create(
                [
                    {
                        'calendar': calendar.id,
                        'name': name,
                        'start_month': month,
                        'start_day': day,
                        'week_profile': week,
                    }
                ]
            )

        self.assert_refused(
            r'Seasons "Winter" and "Autumn" .* both start on 1/6',
            season('Autumn', 6, 1),
        )
        self.assert_refused(
            '"Autumn" .* month 2 day 30, which is not a day of the year',
            season('Autumn', 2, 30),
        )
        self.assert_refused(
            '"Autumn" .* month 13 day 1, which is not a day of the year',
            season('Autumn', 13, 1),
        )
        self.assert_refused(
            '"Autumn" .* has no week profile', season('Autumn', 3, 1, None)
        )
        season('Leap', 2, 29)()
        # (last: a broken SQL constraint ends the transaction on SQLite)
        with self.assertRaisesRegex(UserError, 'must have different names'):
            season('Winter', 3, 1)()

    @with_company
    def test_special_day_rules(self):
        pool = Pool()
        Special = pool.get('prepaid.tou.calendar.special_day')
        calendar = build_calendar()
        weekend = by_name(calendar.day_profiles, 'Weekend').id

        def special(**values):
            return lambda: Special.create(
                [
                    {'calendar': calendar.id, 'name': 'Holiday', 'day_profile': weekend}
                    | values
                ]  # fmt: skip
            )

        when = 'needs either a date .* or a month and a day'
        self.assert_refused(when, special())
        self.assert_refused(when, special(date=dt.date(2026, 1, 1), month=1, day=1))
        self.assert_refused(when, special(month=1))
        self.assert_refused('month 4 day 31', special(month=4, day=31))
        self.assert_refused(
            'Special days "Heritage Day" and "Holiday" .* both on 09-24',
            special(month=9, day=24),
        )
        self.assert_refused('both on 2026-06-16', special(date=dt.date(2026, 6, 16)))
        self.assert_refused(
            'has no day profile', special(month=1, day=1, day_profile=None)
        )

    @with_company
    def test_version_needs_a_complete_calendar(self):
        pool = Pool()
        Calendar = pool.get('prepaid.tou.calendar')
        Season = pool.get('prepaid.tou.calendar.season')
        self.assert_refused('TOU Calendar', lambda: tou_version(None, 'TOU-1'))
        (draft,) = Calendar.create(
            [
                {
                    'name': 'Unfinished',
                    'code': 'DRAFT',
                    'rates': [
                        ('create', [{'index': 1, 'name': 'Flat', 'price': D(2)}])
                    ],
                }
            ]
        )
        # An unfinished calendar may be saved, but not priced with.
        self.assert_refused(
            '"Unfinished" cannot price a tariff version: .*at least one season',
            lambda: tou_version(draft, 'TOU-2'),
        )
        calendar = build_calendar()
        tou_version(calendar, 'TOU-3')
        # and a calendar in use must stay complete
        self.assert_refused(
            'cannot price a tariff version: .*at least one season',
            lambda: Season.delete(list(calendar.seasons)),
        )

    @with_company
    def test_calendar_change_clears_cached_calculators(self):
        pool = Pool()
        Version = pool.get('prepaid.tariff.version')
        Rate = pool.get('prepaid.tou.calendar.rate')
        Calendar = pool.get('prepaid.tou.calendar')
        calendar = build_calendar()
        version = tou_version(calendar)
        peak_interval = [(dt.datetime(2026, 6, 3, 8, 0), D(2))]

        def peak_amount():
            tou = Version(version.id).to_calculator().tou
            return price_intervals(tou, peak_interval)[0].amount

        self.assertEqual(peak_amount(), D('7.00'))
        # cached: the version's write date does not move when a rate changes,
        # so only the cache clearing makes the new price visible
        self.assertIs(
            Version(version.id).to_calculator(), Version(version.id).to_calculator()
        )
        (peak,) = [r for r in calendar.rates if r.index == PEAK]
        Rate.write([peak], {'price': D('4.25')})
        self.assertEqual(peak_amount(), D('8.50'))
        # through the calendar's form: a new holiday on that Wednesday
        weekend = by_name(calendar.day_profiles, 'Weekend').id
        Calendar.write(
            [calendar],
            {
                'special_days': [
                    (
                        'create',
                        [
                            {
                                'name': 'Strike day',
                                'date': dt.date(2026, 6, 3),
                                'day_profile': weekend,
                            }
                        ],
                    )
                ]
            },
        )
        self.assertEqual(peak_amount(), D('2.20'))

    @with_company
    def test_copy_points_at_its_own_profiles(self):
        Calendar = Pool().get('prepaid.tou.calendar')
        calendar = build_calendar()
        tou_version(calendar)
        (copy,) = Calendar.copy([calendar])
        self.assertEqual(copy.code, 'TOU-D-COPY')
        self.assertEqual(copy.to_dict(), calendar.to_dict())
        self.assertEqual(copy.versions, ())
        own = set(copy.day_profiles)
        for week in copy.week_profiles:
            self.assertLessEqual({getattr(week, d) for d in WEEKDAYS}, own)
        self.assertLessEqual({s.day_profile for s in copy.special_days}, own)
        self.assertLessEqual(
            {s.week_profile for s in copy.seasons}, set(copy.week_profiles)
        )

    @with_company
    def test_calendar_of_a_used_version_is_frozen(self):
        "As the version's own lines: history is kept, a copy is the way on"
        from .vend_fixtures import open_session, with_vending

        pool = Pool()
        Version = pool.get('prepaid.tariff.version')
        Vend = pool.get('prepaid.vend')
        Calendar = pool.get('prepaid.tou.calendar')
        Rate = pool.get('prepaid.tou.calendar.rate')
        Special = pool.get('prepaid.tou.calendar.special_day')
        with with_vending() as env:
            open_session(env)
            (version,) = env.tariff.versions
            Vend.vend(env.meter, D('300.00'), 'cash', env.sales_point, 'tou-1')
            calendar = build_calendar()
            # (a kWh meter cannot buy on TOU: the calendar is attached to the
            # version that priced the vend behind the freeze's back)
            with Transaction().set_context(_prepaid_tariff_force=True):
                Version.write([version], {'tou_calendar': calendar.id})
            weekend = by_name(calendar.day_profiles, 'Weekend')
            for operation in [
                lambda: Rate.write(list(calendar.rates[:1]), {'price': D(9)}),
                lambda: Special.create(
                    [
                        {
                            'calendar': calendar.id,
                            'name': 'New holiday',
                            'month': 1,
                            'day': 2,
                            'day_profile': weekend.id,
                        }
                    ]
                ),
                lambda: Calendar.write(
                    [calendar], {'seasons': [('delete', [calendar.seasons[0].id])]}
                ),
                lambda: Calendar.delete([calendar]),
            ]:
                self.assert_refused('create a new version', operation)
            Calendar.write([calendar], {'name': 'Domestic TOU 2026'})
            (copy,) = Calendar.copy([calendar])
            Rate.write(list(copy.rates[:1]), {'price': D(9)})
