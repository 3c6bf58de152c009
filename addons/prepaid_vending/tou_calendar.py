"""Time-of-use calendars as records a tariff officer edits in forms.

A calendar holds up to 8 rates (the meter's T1-T8 registers), day profiles that
switch between rates at given times, week profiles naming a day profile for each
weekday, seasons selecting a week profile from a day of the year, and special
days (holidays) that override the week with their own day profile.  It mirrors
the DLMS activity calendar (class 20) and special days table (class 11), and
``TouCalendar.to_dict`` gives the ``tou`` part of the calculator's JSON form
(``tariff/serialize.py``): the pricing itself stays in the pure calculator.

Validation is done on the whole calendar because its rules cross its lines (a
switch names a rate, a week names day profiles).  A calendar may be saved
unfinished (its week profiles can only point at day profiles once those are
saved), but one used by a tariff version must be complete.
"""

import datetime as dt
from collections import Counter

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction

from .tariff import TariffError, tariff_from_dict
from .tariff.tou import MAX_RATES

WEEKDAYS = [
    'monday',
    'tuesday',
    'wednesday',
    'thursday',
    'friday',
    'saturday',
    'sunday',
]
# Set while a calendar is created, written or deleted as a whole: its lines
# then skip their own check and the calendar checks itself once at the end
# (a line checked half-way through the save would see a half-saved calendar).
_SAVING = '_prepaid_tou_calendar_saving'


def _day_of_year(month, day) -> bool:
    try:
        dt.date(2000, month or 0, day or 0)  # a leap year: 29 February is valid
    except (TypeError, ValueError):
        return False
    return True


def _frozen_check(calendars):
    "A calendar that priced a vend through a version is history, as the version"
    Version = Pool().get('prepaid.tariff.version')
    versions = Version.search([('tou_calendar', 'in', [c.id for c in calendars])])
    if versions:
        Version.check_unused(versions)


def _clear_calculators():
    Pool().get('prepaid.tariff.version')._calculator_cache.clear()


class TouCalendar(ModelSQL, ModelView):
    "TOU Calendar"

    __name__ = 'prepaid.tou.calendar'

    name = fields.Char("Name", size=128, required=True)
    code = fields.Char("Code", size=32, required=True)
    rates = fields.One2Many(
        'prepaid.tou.calendar.rate',
        'calendar',
        "Rates",
        help="Up to 8 rates, numbered 1 to 8 as the meter's T1-T8 registers.",
    )
    day_profiles = fields.One2Many(
        'prepaid.tou.calendar.day',
        'calendar',
        "Day Profiles",
        help="Each day profile switches rates at given times and starts at 00:00.",
    )
    week_profiles = fields.One2Many(
        'prepaid.tou.calendar.week',
        'calendar',
        "Week Profiles",
        help="A day profile for every weekday; save the day profiles first.",
    )
    seasons = fields.One2Many(
        'prepaid.tou.calendar.season',
        'calendar',
        "Seasons",
        help="A season starts every year on its month and day and runs "
        "until the next season starts.",
    )
    special_days = fields.One2Many(
        'prepaid.tou.calendar.special_day',
        'calendar',
        "Special Days",
        help="Holidays priced with their own day profile instead of the week's.",
    )
    versions = fields.One2Many(
        'prepaid.tariff.version', 'tou_calendar', "Tariff Versions", readonly=True
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'code_unique',
                Unique(t, t.code),
                'prepaid_vending.msg_tou_calendar_code_unique',
            ),
        ]

    @classmethod
    def index_set_field(cls, name):
        # Rates before day profiles before weeks, seasons and special days, so
        # that one save may create lines that name earlier ones.
        order = ['rates', 'day_profiles', 'week_profiles', 'seasons', 'special_days']
        if name in order:
            return order.index(name) + 1
        return super().index_set_field(name)

    @classmethod
    def create(cls, vlist):
        with Transaction().set_context({_SAVING: True}):
            return super().create(vlist)

    @classmethod
    def write(cls, *args):
        with Transaction().set_context({_SAVING: True}):
            super().write(*args)

    @classmethod
    def delete(cls, calendars):
        with Transaction().set_context({_SAVING: True}):
            super().delete(calendars)

    @classmethod
    def copy(cls, calendars, default=None):
        """Copy with the lines; week profiles, seasons and special days are
        pointed at the copy's own day and week profiles."""
        pool = Pool()
        Week = pool.get('prepaid.tou.calendar.week')
        Season = pool.get('prepaid.tou.calendar.season')
        Special = pool.get('prepaid.tou.calendar.special_day')
        default = dict(default) if default else {}
        default.setdefault('code', lambda data: f"{data['code']}-COPY")
        default.setdefault('versions', None)
        for name in ('week_profiles', 'seasons', 'special_days'):
            default.setdefault(name, None)
        copies = super().copy(calendars, default=default)
        for old, new in zip(calendars, copies):
            days = {d.name: d.id for d in new.day_profiles}
            day_map = {d.id: days[d.name] for d in old.day_profiles}
            Week.copy(
                old.week_profiles,
                default={'calendar': new.id}
                | {
                    weekday: (lambda data, w=weekday, m=day_map: m.get(data[w]))
                    for weekday in WEEKDAYS
                },
            )
            weeks = {w.name: w.id for w in cls(new.id).week_profiles}
            week_map = {w.id: weeks[w.name] for w in old.week_profiles}
            Season.copy(
                old.seasons,
                default={
                    'calendar': new.id,
                    'week_profile': lambda d, m=week_map: m.get(d['week_profile']),
                },
            )
            Special.copy(
                old.special_days,
                default={
                    'calendar': new.id,
                    'day_profile': lambda d, m=day_map: m.get(d['day_profile']),
                },
            )
        return copies

    @classmethod
    def validate(cls, calendars):
        super().validate(calendars)
        cls.check_calendars(calendars)

    @classmethod
    def check_calendars(cls, calendars):
        for calendar in calendars:
            calendar.check_rules()
            if calendar.versions:
                calendar.check_complete()

    @classmethod
    def check_modification(cls, mode, calendars, values=None, external=False):
        super().check_modification(mode, calendars, values=values, external=external)
        # A new name or code changes no price.
        if mode == 'delete' or (
            mode == 'write' and set(values or {'all'}) - {'name', 'code'}
        ):
            _frozen_check(calendars)

    @classmethod
    def on_modification(cls, mode, calendars, field_names=None):
        super().on_modification(mode, calendars, field_names=field_names)
        _clear_calculators()

    def _error(self, message, **values):
        return ValidationError(
            gettext(f'prepaid_vending.{message}', calendar=self.rec_name, **values)
        )

    def check_rules(self):
        """Every rule that holds for an unfinished calendar too; the error names
        the calendar and the line at fault."""
        if len(self.rates) > MAX_RATES:
            raise self._error(
                'msg_tou_rate_count', count=len(self.rates), maximum=MAX_RATES
            )
        indices = set()
        for rate in self.rates:
            if not 1 <= (rate.index or 0) <= MAX_RATES:
                raise self._error(
                    'msg_tou_rate_index',
                    rate=rate.name,
                    index=rate.index,
                    maximum=MAX_RATES,
                )
            if rate.index in indices:
                raise self._error('msg_tou_rate_index_unique', index=rate.index)
            indices.add(rate.index)
            if rate.price < 0:
                raise self._error('msg_tou_rate_price', rate=rate.name)
        defined = ', '.join(str(i) for i in sorted(indices)) or '-'
        for profile in self.day_profiles:
            starts = [s.start for s in profile.switches]
            if dt.time(0, 0) not in starts:
                raise self._error('msg_tou_day_midnight', profile=profile.name)
            for start, count in Counter(starts).items():
                if count > 1:
                    raise self._error(
                        'msg_tou_day_switch_duplicate',
                        profile=profile.name,
                        time=start.strftime('%H:%M'),
                    )
            for switch in profile.switches:
                if switch.rate not in indices:
                    raise self._error(
                        'msg_tou_switch_rate',
                        profile=profile.name,
                        time=switch.start.strftime('%H:%M'),
                        rate=switch.rate,
                        rates=defined,
                    )
        Week = Pool().get('prepaid.tou.calendar.week')
        weekday_names = {
            name: field['string'] for name, field in Week.fields_get(WEEKDAYS).items()
        }
        for week in self.week_profiles:
            for weekday in WEEKDAYS:
                if getattr(week, weekday) is None:
                    raise self._error(
                        'msg_tou_week_day_missing',
                        week=week.name,
                        day=weekday_names[weekday],
                    )
        starts = {}
        for season in self.seasons:
            if not _day_of_year(season.start_month, season.start_day):
                raise self._error(
                    'msg_tou_season_start_invalid',
                    season=season.name,
                    month=season.start_month,
                    day=season.start_day,
                )
            key = (season.start_month, season.start_day)
            if key in starts:
                raise self._error(
                    'msg_tou_season_start_duplicate',
                    season=season.name,
                    other=starts[key],
                    month=key[0],
                    day=key[1],
                )
            starts[key] = season.name
            if season.week_profile is None:
                raise self._error('msg_tou_season_week_missing', season=season.name)
        specials = {}
        for special in self.special_days:
            label = special.rec_name
            yearly = special.month is not None and special.day is not None
            partial = (special.month is None) != (special.day is None)
            if partial or (special.date is not None) == yearly:
                raise self._error('msg_tou_special_day_when', special=label)
            if yearly:
                if not _day_of_year(special.month, special.day):
                    raise self._error(
                        'msg_tou_special_day_invalid',
                        special=label,
                        month=special.month,
                        day=special.day,
                    )
                key = (special.month, special.day)
                when = f'{special.month:02d}-{special.day:02d}'
            else:
                key = special.date
                when = special.date.isoformat()
            if key in specials:
                raise self._error(
                    'msg_tou_special_day_duplicate',
                    special=label,
                    other=specials[key],
                    when=when,
                )
            specials[key] = label
            if special.day_profile is None:
                raise self._error('msg_tou_special_day_profile', special=label)

    def check_complete(self):
        "The calculator's own validation: at least a rate and a season, ..."
        self.check_rules()
        try:
            tariff_from_dict(
                {
                    'kind': 'tou',
                    'vat_rate': '0',
                    'prices_include_vat': True,
                    'tou': self.to_dict(),
                }
            )
        except TariffError as exc:
            raise self._error('msg_tou_calendar_incomplete', error=str(exc)) from exc

    def to_dict(self) -> dict:
        "The ``tou`` part of the calculator's JSON form"

        def name(record):
            return record.name if record else None

        return {
            'rates': [
                {'index': r.index, 'name': r.name, 'price': str(r.price)}
                for r in self.rates
            ],
            'day_profiles': [
                {
                    'name': d.name,
                    'switches': [
                        {'start': s.start.isoformat(), 'rate': s.rate}
                        for s in sorted(d.switches, key=lambda s: s.start)
                    ],
                }
                for d in self.day_profiles
            ],
            'week_profiles': [
                {'name': w.name, 'days': [name(getattr(w, d)) for d in WEEKDAYS]}
                for w in self.week_profiles
            ],
            'seasons': [
                {
                    'name': s.name,
                    'start': f'{s.start_month:02d}-{s.start_day:02d}',
                    'week_profile': name(s.week_profile),
                }
                for s in self.seasons
            ],
            'special_days': [
                {'date': s.date.isoformat(), 'day_profile': name(s.day_profile)}
                if s.date
                else {
                    'month_day': f'{s.month:02d}-{s.day:02d}',
                    'day_profile': name(s.day_profile),
                }
                for s in self.special_days
            ],
        }


class _CalendarLine(ModelSQL, ModelView):
    """A line of a calendar: changing it alone checks the whole calendar,
    clears the cached calculators and is refused once a vend used it."""

    @classmethod
    def _calendars(cls, lines):
        return list({line.calendar for line in lines})

    @classmethod
    def validate(cls, lines):
        super().validate(lines)
        if not Transaction().context.get(_SAVING):
            Pool().get('prepaid.tou.calendar').check_calendars(cls._calendars(lines))

    @classmethod
    def check_modification(cls, mode, lines, values=None, external=False):
        super().check_modification(mode, lines, values=values, external=external)
        _frozen_check(cls._calendars(lines))

    @classmethod
    def on_modification(cls, mode, lines, field_names=None):
        super().on_modification(mode, lines, field_names=field_names)
        _clear_calculators()

    @classmethod
    def delete(cls, lines):
        if Transaction().context.get(_SAVING):
            super().delete(lines)
            return
        Calendar = Pool().get('prepaid.tou.calendar')
        ids = [c.id for c in cls._calendars(lines)]
        # The lines that go with these (switches of a day profile, week days
        # pointing at it) are removed or emptied first: check once at the end
        # what is left of the calendars.
        with Transaction().set_context({_SAVING: True}):
            super().delete(lines)
        Calendar.check_calendars(Calendar.search([('id', 'in', ids)]))


class TouRate(_CalendarLine):
    "TOU Rate"

    __name__ = 'prepaid.tou.calendar.rate'

    calendar = fields.Many2One(
        'prepaid.tou.calendar', "Calendar", required=True, ondelete='CASCADE'
    )
    index = fields.Integer(
        "Rate", required=True, help="1 to 8: the meter register (T1-T8) of the rate."
    )
    name = fields.Char("Name", size=128, required=True)
    price = fields.Numeric("Price per kWh", digits=(16, 4), required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('calendar')
        cls._order.insert(0, ('index', 'ASC'))


class TouDayProfile(_CalendarLine):
    "TOU Day Profile"

    __name__ = 'prepaid.tou.calendar.day'

    calendar = fields.Many2One(
        'prepaid.tou.calendar', "Calendar", required=True, ondelete='CASCADE'
    )
    name = fields.Char("Name", size=128, required=True)
    switches = fields.One2Many(
        'prepaid.tou.calendar.day.switch',
        'day_profile',
        "Switches",
        help="From each time until the next one, the rate applies; "
        "the first switch is at 00:00.",
    )
    summary = fields.Function(fields.Char("Switches"), 'get_summary')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'name_unique',
                Unique(t, t.calendar, t.name),
                'prepaid_vending.msg_tou_day_name_unique',
            ),
        ]
        cls.__access__.add('calendar')

    def get_summary(self, name):
        return ', '.join(
            f'{s.start:%H:%M} T{s.rate}'
            for s in sorted(self.switches, key=lambda s: s.start)
        )


class TouSwitch(_CalendarLine):
    "TOU Day Profile Switch"

    __name__ = 'prepaid.tou.calendar.day.switch'

    day_profile = fields.Many2One(
        'prepaid.tou.calendar.day', "Day Profile", required=True, ondelete='CASCADE'
    )
    start = fields.Time("From", required=True, format='%H:%M')
    rate = fields.Integer("Rate", required=True, help="The rate number (1 to 8).")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('day_profile')
        cls._order.insert(0, ('start', 'ASC'))

    @classmethod
    def _calendars(cls, switches):
        # A switch belongs to its calendar through its day profile.
        return list({s.day_profile.calendar for s in switches})


class TouWeekProfile(_CalendarLine):
    "TOU Week Profile"

    __name__ = 'prepaid.tou.calendar.week'

    calendar = fields.Many2One(
        'prepaid.tou.calendar', "Calendar", required=True, ondelete='CASCADE'
    )
    name = fields.Char("Name", size=128, required=True)
    monday = fields.Many2One(
        'prepaid.tou.calendar.day',
        "Monday",
        ondelete='SET NULL',
        domain=[('calendar', '=', Eval('calendar', -1))],
    )
    tuesday = fields.Many2One(
        'prepaid.tou.calendar.day',
        "Tuesday",
        ondelete='SET NULL',
        domain=[('calendar', '=', Eval('calendar', -1))],
    )
    wednesday = fields.Many2One(
        'prepaid.tou.calendar.day',
        "Wednesday",
        ondelete='SET NULL',
        domain=[('calendar', '=', Eval('calendar', -1))],
    )
    thursday = fields.Many2One(
        'prepaid.tou.calendar.day',
        "Thursday",
        ondelete='SET NULL',
        domain=[('calendar', '=', Eval('calendar', -1))],
    )
    friday = fields.Many2One(
        'prepaid.tou.calendar.day',
        "Friday",
        ondelete='SET NULL',
        domain=[('calendar', '=', Eval('calendar', -1))],
    )
    saturday = fields.Many2One(
        'prepaid.tou.calendar.day',
        "Saturday",
        ondelete='SET NULL',
        domain=[('calendar', '=', Eval('calendar', -1))],
    )
    sunday = fields.Many2One(
        'prepaid.tou.calendar.day',
        "Sunday",
        ondelete='SET NULL',
        domain=[('calendar', '=', Eval('calendar', -1))],
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'name_unique',
                Unique(t, t.calendar, t.name),
                'prepaid_vending.msg_tou_week_name_unique',
            ),
        ]
        cls.__access__.add('calendar')


class TouSeason(_CalendarLine):
    "TOU Season"

    __name__ = 'prepaid.tou.calendar.season'

    calendar = fields.Many2One(
        'prepaid.tou.calendar', "Calendar", required=True, ondelete='CASCADE'
    )
    name = fields.Char("Name", size=128, required=True)
    start_month = fields.Integer("Start Month", required=True, help="1 to 12")
    start_day = fields.Integer("Start Day", required=True)
    week_profile = fields.Many2One(
        'prepaid.tou.calendar.week',
        "Week Profile",
        ondelete='SET NULL',
        domain=[('calendar', '=', Eval('calendar', -1))],
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (
                'name_unique',
                Unique(t, t.calendar, t.name),
                'prepaid_vending.msg_tou_season_name_unique',
            ),
        ]
        cls.__access__.add('calendar')
        cls._order.insert(0, ('start_month', 'ASC'))
        cls._order.insert(1, ('start_day', 'ASC'))


class TouSpecialDay(_CalendarLine):
    "TOU Special Day"

    __name__ = 'prepaid.tou.calendar.special_day'

    calendar = fields.Many2One(
        'prepaid.tou.calendar', "Calendar", required=True, ondelete='CASCADE'
    )
    name = fields.Char("Name", size=128, required=True)
    date = fields.Date("Date", help="A single day; leave empty for a yearly one.")
    month = fields.Integer("Month (every year)")
    day = fields.Integer("Day (every year)")
    day_profile = fields.Many2One(
        'prepaid.tou.calendar.day',
        "Day Profile",
        ondelete='SET NULL',
        domain=[('calendar', '=', Eval('calendar', -1))],
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('calendar')
        cls._order.insert(0, ('date', 'ASC'))
        cls._order.insert(1, ('month', 'ASC'))
        cls._order.insert(2, ('day', 'ASC'))
