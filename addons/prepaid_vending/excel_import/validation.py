"""Validating the rows of a workbook against what they refer to in the
database (loaded once per import, or by chunks of rows), and indexing what
rows share (duplicate serials, one customer on several rows)."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from trytond.i18n import gettext
from trytond.pool import Pool
from trytond.transaction import Transaction

from ..inputs.numbers import NumberError, parse_decimal, shown
from ..meter import METER_KINDS, PAYMENT_MODES
from ..party import check_national_id, check_phone, check_registration_number
from .columns import MANDATORY
from .sheet import Cell, LossyNumber, text

KINDS = tuple(k for k, _ in METER_KINDS)
MODES = tuple(m for m, _ in PAYMENT_MODES)
# Payment modes a kind of meter can work with: a keypad meter only takes
# tokens, a postpaid meter has no credit register.
KIND_MODES = {
    'sts_keypad': {'prepaid'},
    'smart_prepaid': {'prepaid', 'remote_prepaid', 'postpaid'},
    'postpaid': {'postpaid'},
}
# Rows per written batch (and per progress report) of the set-based path.
# Syntax only: the contact mechanism checks deliverability itself when the
# email-validator package is installed.
EMAIL = re.compile(r'^[^@\s]+@[^@\s]+\.[^@\s.]+$')
DIGITS = re.compile(r'[0-9]{1,9}')
MAX_INTEGER = 10**6
#: Length of a text cell whose field has no size (a lookup code, a choice).
MAX_CELL_TEXT = 255


@dataclass
class Lookups:
    "What the rows refer to in the database, loaded once per import"

    transformers: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    feeders: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    default_category: int | None = None
    languages: dict[str, int] = field(default_factory=dict)
    masters: dict[str, int] = field(default_factory=dict)
    transformer_masters: dict[int, int] = field(default_factory=dict)
    # Loaded by chunks of rows as they are read: only what exists is kept.
    existing_serials: set[str] = field(default_factory=set)
    # ('national_id'|'registration_number', value) -> (id, name, is customer)
    parties: dict[tuple[str, str], tuple[int, str, bool]] = field(default_factory=dict)
    # Longest text each column's field takes (TEXT_FIELDS and extensions).
    sizes: dict[str, int] = field(default_factory=dict)
    # Free for the import_meter_values extensions (their own look-ups).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CleanRow:
    number: int
    party_key: tuple[str, str] | None
    party_id: int | None
    party: dict[str, Any]
    point: dict[str, Any]
    meter: dict[str, Any]
    installed_on: dt.date
    install_reading: Decimal | None


@dataclass
class Rejected:
    "A rejected row's number and reasons (its cells go to the rejects file)"

    number: int
    reasons: list[str]

    @property
    def reason(self) -> str:
        return '; '.join(self.reasons)


class RowValidator:
    """Check one row against the lookups; collect every problem, not the
    first.  The same row gives the same answer each time it is checked."""

    def __init__(self, positions: dict[str, int], lookups: Lookups, today: dt.date):
        self.positions = positions
        self.lookups = lookups
        self.today = today
        self.Job = Pool().get('prepaid.import.job')

    @staticmethod
    def message(code: str, **params: Any) -> str:
        """The translated reason; every value it quotes is cut to 60
        characters, so a reason stays short whatever the cells hold."""
        params = {
            k: shown(v, 60) if isinstance(v, str) else v for k, v in params.items()
        }
        return gettext(f'prepaid_vending.msg_import_{code}', **params)

    def texts(
        self, row: list[Cell], err: Callable[[str], None]
    ) -> tuple[dict[str, str], set[str]]:
        """Every column as text, within its field's size, and the columns
        refused for that (left empty, so no other check quotes them)"""
        values: dict[str, str] = {}
        refused: set[str] = set()
        for name in self.positions:
            value = self.get(row, name)
            try:
                values[name] = text(value)
            except LossyNumber:
                err(self.message('lossy_number', column=name, value=repr(value)))
                values[name] = ''
                refused.add(name)
                continue
            size = self.lookups.sizes.get(name, MAX_CELL_TEXT)
            if len(values[name]) > size:
                err(
                    self.message(
                        'too_long', column=name, length=len(values[name]), size=size
                    )
                )
                values[name] = ''
                refused.add(name)
        return values, refused

    def serial(self, row: list[Cell]) -> str:
        "The row's meter serial as text ('' when unusable)"
        try:
            return text(self.get(row, 'meter_serial'))
        except LossyNumber:
            return ''

    def get(self, row: list[Cell], name: str) -> Cell:
        index = self.positions.get(name)
        if index is None or index >= len(row):
            return None
        return row[index]

    def validate(
        self, number: int, row: list[Cell]
    ) -> tuple[CleanRow | None, list[str]]:
        errors: list[str] = []
        err = errors.append
        msg = self.message
        values, refused = self.texts(row, err)
        for name in MANDATORY:
            if not values[name] and name not in refused:
                err(msg('required', column=name))

        national_id = values.get('national_id', '')
        if national_id and not check_national_id(national_id):
            err(msg('bad_national_id', value=national_id))
        registration = values.get('registration_number', '')
        if registration and not check_registration_number(registration):
            err(msg('bad_registration_number', value=registration))
        phone = values.get('phone', '')
        if phone and not check_phone(phone):
            err(msg('bad_phone', value=phone))
        email = values.get('email', '')
        if email and not EMAIL.match(email):
            err(msg('bad_email', value=email))

        category = self._category(values.get('category', ''), err)
        language = None
        if code := values.get('language', ''):
            language = self.lookups.languages.get(code.lower())
            if language is None:
                err(
                    msg(
                        'unknown_language',
                        value=code,
                        choices=', '.join(sorted(self.lookups.languages)),
                    )
                )

        latitude = self._number(row, 'latitude', err, -90, 90)
        longitude = self._number(row, 'longitude', err, -180, 180)
        rated_current = self._number(row, 'rated_current', err, 0, 10000)
        reading = self._number(row, 'install_reading', err, 0, 10**12)

        transformer = None
        if code := values['transformer_code']:
            transformer = self.lookups.transformers.get(code.upper())
            if transformer is None:
                err(msg('unknown_transformer', value=code))
        if code := values.get('feeder_code', ''):
            feeder = self.lookups.feeders.get(code.upper())
            if feeder is None:
                err(msg('unknown_feeder', value=code))
            elif transformer and transformer[1] != feeder:
                err(
                    msg(
                        'transformer_feeder',
                        transformer=values['transformer_code'],
                        feeder=code,
                        actual=transformer[2],
                    )
                )

        serial = values['meter_serial']
        if serial and serial in self.lookups.existing_serials:
            err(msg('serial_in_db', value=serial))
        kind = self._choice(values, 'meter_kind', KINDS, 'sts_keypad', err)
        default_mode = 'postpaid' if kind == 'postpaid' else 'prepaid'
        mode = self._choice(values, 'payment_mode', MODES, default_mode, err)
        if kind and mode and mode not in KIND_MODES[kind]:
            err(msg('kind_mode', kind=kind, mode=mode))
        phases = self._choice(values, 'phases', ('1', '3'), '1', err)
        ct_ratio = self._integer(values, 'ct_ratio', 1, err)

        master = None
        if code := values.get('master_serial', ''):
            master = self.lookups.masters.get(code)
            if master is None:
                err(msg('unknown_master', value=code))
        elif transformer:
            master = self.lookups.transformer_masters.get(transformer[0])

        installed_on = self._date(row, 'installed_on', err)
        # Columns of other modules (the STS parameters of prepaid_sts).
        extension = self.Job.import_meter_values(values, kind, self.lookups.extra, err)

        party_key: tuple[str, str] | None = None
        party_id = None
        if national_id:
            party_key = ('national_id', national_id)
        elif registration:
            party_key = ('registration_number', registration)
        if party_key and party_key in self.lookups.parties:
            party_id, other, is_customer = self.lookups.parties[party_key]
            if not is_customer:
                err(msg('party_not_customer', label=party_key[0], value=party_key[1]))
            elif other.casefold() != values['customer_name'].casefold():
                err(
                    msg(
                        'party_name_mismatch',
                        label=party_key[0],
                        value=party_key[1],
                        other=other,
                        name=values['customer_name'],
                    )
                )
        if errors:
            return None, errors

        contacts = []
        if phone:
            contacts.append({'type': 'phone', 'value': phone})
        if email:
            contacts.append({'type': 'email', 'value': email})
        party = {
            'name': values['customer_name'],
            'national_id': national_id or None,
            'registration_number': registration or None,
            'customer_category': category,
        }
        if contacts:
            party['contact_mechanisms'] = [('create', contacts)]
        if language:
            # Through the multi-value field: party creation writes the
            # default language record, a nested "langs" create would be a
            # second, ignored one.
            party['lang'] = language
        point = {
            'street': values['street'],
            'city': values['city'],
            'postal_code': values.get('postal_code') or None,
            'latitude': latitude,
            'longitude': longitude,
            'transformer': transformer[0],
        }
        meter = {
            'serial': serial,
            'kind': kind,
            'payment_mode': mode,
            'manufacturer': values.get('manufacturer') or None,
            'model': values.get('model') or None,
            'phases': phases,
            'ct_ratio': ct_ratio,
            'rated_current': (
                Decimal(str(rated_current)).quantize(Decimal('0.1'))
                if rated_current is not None
                else None
            ),
            'master': master,
            **extension,
        }
        return CleanRow(
            number=number,
            party_key=party_key,
            party_id=party_id,
            party=party,
            point=point,
            meter=meter,
            installed_on=installed_on or self.today,
            install_reading=(
                Decimal(str(reading)).quantize(Decimal('0.01'))
                if reading is not None
                else None
            ),
        ), []

    def _category(self, value: str, err: Callable[[str], None]) -> int | None:
        if not value:
            if self.lookups.default_category is None:
                err(self.message('no_category'))
            return self.lookups.default_category
        category = self.lookups.categories.get(value.casefold())
        if category is None:
            choices = sorted(
                {k for k in self.lookups.categories if k.isupper()}
                or self.lookups.categories
            )
            err(
                self.message(
                    'unknown_category', value=value, choices=', '.join(choices)
                )
            )
        return category

    def _number(
        self,
        row: list[Cell],
        name: str,
        err: Callable[[str], None],
        minimum: float,
        maximum: float,
    ) -> float | None:
        value = self.get(row, name)
        if value is None or value == '':
            return None
        try:
            if isinstance(value, float):
                if not math.isfinite(value):  # NaN would be stored as empty
                    raise NumberError('not_finite', repr(value))
                number = value
            else:
                # Text in plain notation only, as every amount.
                number = float(parse_decimal(value))
        except NumberError:
            err(self.message('bad_number', column=name, value=cell_shown(value)))
            return None
        if not (minimum <= number <= maximum):
            err(
                self.message(
                    'out_of_range',
                    column=name,
                    value=cell_shown(value),
                    min=minimum,
                    max=maximum,
                )
            )
            return None
        return number

    def _integer(
        self,
        values: dict[str, str],
        name: str,
        default: int,
        err: Callable[[str], None],
    ) -> int:
        value = values.get(name, '')
        if not value:
            return default
        # ASCII digits only: int() would also read "1_0" and "١٠".
        number = int(value) if DIGITS.fullmatch(value) else 0
        if not 0 < number <= MAX_INTEGER:
            err(self.message('bad_integer', column=name, value=value))
        return number

    def _choice(
        self,
        values: dict[str, str],
        name: str,
        choices: tuple[str, ...],
        default: str,
        err: Callable[[str], None],
    ) -> str | None:
        value = values.get(name, '').lower()
        if not value:
            return default
        if value not in choices:
            err(
                self.message(
                    'bad_choice',
                    column=name,
                    value=values[name],
                    choices=', '.join(choices),
                )
            )
            return None
        return value

    def _date(
        self, row: list[Cell], name: str, err: Callable[[str], None]
    ) -> dt.date | None:
        value = self.get(row, name)
        if value is None or value == '':
            return None
        if isinstance(value, dt.datetime):
            date = value.date()
        elif isinstance(value, dt.date):
            date = value
        else:
            try:
                date = dt.date.fromisoformat(text(value))
            except ValueError:
                err(self.message('bad_date', column=name, value=text(value)))
                return None
        if date > self.today:
            err(self.message('future_date', column=name, value=date.isoformat()))
            return None
        return date


def cell_shown(value: Cell) -> str:
    "A cell as a reason quotes it"
    try:
        return text(value)
    except LossyNumber:
        return repr(value)


class FileIndex:
    """What one row needs to know of the others, gathered while the rows are
    validated the first time: the first row of each meter serial and of each
    new customer's ID, and how many rows share a serial.  Kept small (no row
    is held), it gives each row its duplicate reasons on the second reading:
    a reason names the first occurrence, never every other duplicate, so
    reasons stay bounded however many rows repeat."""

    def __init__(self) -> None:
        self.serial_first: dict[str, int] = {}
        self.serial_count: dict[str, int] = {}  # serials on several rows
        self.party_first: dict[tuple[str, str], tuple[int, str]] = {}
        self.mismatches = 0

    def add(self, number: int, serial: str, row: CleanRow | None) -> None:
        if serial:
            first = self.serial_first.setdefault(serial, number)
            if first != number:
                self.serial_count[serial] = self.serial_count.get(serial, 1) + 1
        if row and row.party_key and row.party_id is None:
            first = self.party_first.setdefault(
                row.party_key, (number, row.party['name'])
            )
            if first[1].casefold() != row.party['name'].casefold():
                self.mismatches += 1

    @property
    def conflicts(self) -> bool:
        "Some row is rejected for what another row holds"
        return bool(self.serial_count or self.mismatches)

    def reasons(self, number: int, serial: str, row: CleanRow | None) -> list[str]:
        message = RowValidator.message
        reasons = []
        count = self.serial_count.get(serial)
        if count:
            first = self.serial_first[serial]
            if first == number:
                reasons.append(
                    message('serial_in_file_first', value=serial, count=count)
                )
            else:
                reasons.append(
                    message('serial_in_file', value=serial, first=first, count=count)
                )
        if row and row.party_key and row.party_id is None:
            first, name = self.party_first[row.party_key]
            if first != number and name.casefold() != row.party['name'].casefold():
                reasons.append(
                    message(
                        'party_name_mismatch',
                        label=row.party_key[0],
                        value=row.party_key[1],
                        other=f'{shown(name)} (row {first})',  # <= 60
                        name=row.party['name'],
                    )
                )
        return reasons


def load_lookups() -> Lookups:
    "What every row may refer to, with a few queries instead of one per row"
    pool = Pool()
    Transformer = pool.get('prepaid.transformer')
    Feeder = pool.get('prepaid.feeder')
    Category = pool.get('prepaid.customer.category')
    Configuration = pool.get('prepaid.configuration')
    Lang = pool.get('ir.lang')
    Meter = pool.get('prepaid.meter')
    Job = pool.get('prepaid.import.job')

    lookups = Lookups()
    # The job's utility only: codes and serials are each utility's own.
    own = ('company', '=', Transaction().context.get('company', -1))
    for feeder in Feeder.search([own]):
        lookups.feeders[feeder.code.upper()] = feeder.id
    for transformer in Transformer.search([own]):
        lookups.transformers[transformer.code.upper()] = (
            transformer.id,
            transformer.feeder.id,
            transformer.feeder.code,
        )
    for category in Category.search(['OR', ('company', '=', None), own]):
        # Codes are kept as typed (upper case) so the error can list them.
        lookups.categories[category.code] = category.id
        lookups.categories[category.code.casefold()] = category.id
        lookups.categories[category.name.casefold()] = category.id
    default = Configuration(1).default_customer_category
    lookups.default_category = default.id if default else None
    for lang in Lang.search([]):
        lookups.languages[lang.code.lower()] = lang.id
    for meter in Meter.search([own, ('role', '=', 'master')]):
        lookups.masters[meter.serial] = meter.id
        if meter.master_of_transformer:
            lookups.transformer_masters.setdefault(
                meter.master_of_transformer.id, meter.id
            )
    for column, (model, name) in Job.import_text_fields().items():
        size = pool.get(model)._fields[name].size
        if isinstance(size, int):
            lookups.sizes[column] = size
    return lookups


def load_row_lookups(
    lookups: Lookups, positions: dict[str, int], rows: list[tuple[int, list[Cell]]]
) -> None:
    "Add what a chunk of rows refers to: existing serials and customers"
    pool = Pool()
    Meter = pool.get('prepaid.meter')
    Party = pool.get('party.party')

    def column(name: str) -> list[str]:
        index = positions.get(name)
        if index is None:
            return []
        values = set()
        for _, row in rows:
            try:
                value = text(row[index]) if index < len(row) else ''
            except LossyNumber:
                continue
            if value:
                values.add(value)
        return sorted(values)

    with Transaction().set_context(active_test=False):
        serials = column('meter_serial')
        if serials:
            company = Transaction().context.get('company', -1)
            for meter in Meter.search(
                [('company', '=', company), ('serial', 'in', serials)]
            ):
                lookups.existing_serials.add(meter.serial)
        for name in ('national_id', 'registration_number'):
            values = column(name)
            if not values:
                continue
            for party in Party.search([(name, 'in', values)]):
                lookups.parties[(name, getattr(party, name))] = (
                    party.id,
                    party.name,
                    bool(party.customer_number),
                )
