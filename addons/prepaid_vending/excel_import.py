"""Bulk import of customers, service points, meters and their network links
from Excel workbooks (.xlsx with openpyxl, legacy .xls with xlrd).

Column layout
=============

The first sheet of the workbook holds one header row, then one row per meter
installation: a customer, the service point (premises) it is supplied at, the
meter installed there and the network links (transformer, optional feeder and
master meter).  Header names are case-insensitive; spaces count as "_".  The
columns may come in any order; optional columns may be left out.

=====================  ====  ==================================================
column                 must  content
=====================  ====  ==================================================
customer_name          yes   name of the person or organisation
national_id                  6 to 20 digits (people)
registration_number          4 to 30 letters, digits, "/" or "-" (companies)
phone                        7 to 15 digits, optional leading "+"
email                        an e-mail address
category                     customer category code or name (residential,
                             commercial, ...); the configured default if empty
language                     language code of the customer (en, fr, pt ...)
street                 yes   street address of the service point
city                   yes   city of the service point
postal_code
latitude, longitude          decimal degrees (-90..90, -180..180)
feeder_code                  checked against the transformer's feeder
transformer_code       yes   code of an existing transformer
meter_serial           yes   serial number of the new meter (unique)
meter_kind                   sts_keypad (default), smart_prepaid or postpaid
payment_mode                 prepaid, remote_prepaid or postpaid (default from
                             the kind: postpaid for postpaid meters, else
                             prepaid)
manufacturer, model
phases                       1 (default) or 3
ct_ratio                     positive integer, 1 (default) if direct-connected
rated_current                amps
master_serial                an existing master meter; by default the master
                             meter of the transformer, if it has one
installed_on                 Excel date or YYYY-MM-DD, not in the future;
                             the import date if empty
install_reading              kWh register reading at installation
=====================  ====  ==================================================

Other modules add columns through ``prepaid.import.job`` (``import_columns``,
``import_meter_values``): prepaid_sts adds the STS parameters of keypad meters
(PAN or meter number, SGC, KRN, tariff index), so an imported meter can be sold
to at once.

Rows that share a national ID (or registration number) belong to one customer;
a customer already in the database with that ID gets the new service points
(its own data is not changed).  Every row is validated before anything is
written; rejected rows come back in a workbook with their row number and the
reasons.  A meter serial on several rows rejects each of them, the first with
the count and the others with the first's row number, so a reason stays short
however many rows repeat.  In mode "all" (the default) one rejected row means
nothing is written; in mode "valid" the valid rows are written.  Workbooks
above the configured row threshold are imported by a queued task
(`prepaid.import.job`).

Limits: an upload larger than the size limit, or with more rows than the row
limit, is refused before any work (``import_sheet``).  The rows are read twice
from the file (validate, then write by batches) and never all held in memory.
Numbers in identifier columns from 1e15 up are refused (a spreadsheet keeps 15
digits: format such columns as Text), and so are texts longer than their
field and numbers not written in plain decimal notation.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sql.aggregate import Count
from trytond import backend
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .access import require_wizard_groups
from .company import CompanyMixin
from .import_sheet import (
    Cell,
    ImportFileError,
    Limits,
    LossyNumber,
    Sheet,
    check_upload,
    server_limits,
    text,
)
from .inputs.numbers import NumberError, parse_decimal, shown
from .meter import METER_KINDS, PAYMENT_MODES
from .party import check_national_id, check_phone, check_registration_number
from .workflow_only import WorkflowOnlyMixin

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Column:
    name: str
    mandatory: bool
    help: str
    example: Cell = None
    #: An identifier: the template formats its cells as text.
    text: bool = False


COLUMNS: tuple[Column, ...] = (
    Column(
        'customer_name', True, "Name of the person or organisation", 'Thandiwe Nkosi'
    ),
    Column('national_id', False, "6 to 20 digits (people)", '8001015009087', True),
    Column(
        'registration_number',
        False,
        "4 to 30 letters, digits, / or - (companies)",
        None,
        True,
    ),
    Column(
        'phone', False, "7 to 15 digits, optional leading +", '+27 82 555 0101', True
    ),
    Column('email', False, "E-mail address", 'thandiwe@example.com'),
    Column(
        'category',
        False,
        "Customer category code or name; the configured default if empty",
        'RESIDENTIAL',
    ),
    Column('language', False, "Language code (en, fr, pt ...)", 'en'),
    Column('street', True, "Street address of the service point", '12 Acacia Road'),
    Column('city', True, "City of the service point", 'Polokwane'),
    Column('postal_code', False, "Postal code", '0700', True),
    Column('latitude', False, "Decimal degrees, -90 to 90", -23.9045),
    Column('longitude', False, "Decimal degrees, -180 to 180", 29.4689),
    Column('feeder_code', False, "Feeder of the transformer (checked)", None),
    Column('transformer_code', True, "Code of an existing transformer", 'TX-0001'),
    Column('meter_serial', True, "Serial number of the new meter", '04123456789', True),
    Column(
        'meter_kind',
        False,
        "sts_keypad (default), smart_prepaid or postpaid",
        'sts_keypad',
    ),
    Column(
        'payment_mode',
        False,
        "prepaid, remote_prepaid or postpaid (default from the kind)",
        None,
    ),
    Column('manufacturer', False, "Meter manufacturer", 'Hexing'),
    Column('model', False, "Meter model", 'HXE110-KP'),
    Column('phases', False, "1 (default) or 3", 1),
    Column('ct_ratio', False, "Positive integer, 1 (default) if direct", 1),
    Column('rated_current', False, "Rated current in A", 60),
    Column(
        'master_serial',
        False,
        "Existing master meter; default the transformer's master meter",
        None,
        True,
    ),
    Column(
        'installed_on',
        False,
        "Excel date or YYYY-MM-DD, not in the future; default the import date",
        dt.date(2024, 3, 1),
    ),
    Column('install_reading', False, "Register reading at installation (kWh)", 0),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
MANDATORY = tuple(c.name for c in COLUMNS if c.mandatory)
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
WRITE_BATCH = 1000
# Records per create() call on the ORM path.  Larger batches save queries but
# each record instantiation scans the whole batch (an assertion in
# ModelStorage), so the gain stops around a few hundred.
ORM_BATCH = 200
# What write_rows creates (multi-value and One2Many targets are checked as
# they come).
BULK_MODELS = (
    'party.party',
    'party.contact_mechanism',
    'prepaid.service_point',
    'prepaid.meter',
    'prepaid.meter.state_history',
    'prepaid.meter.installation',
)
# How many values an "in" clause of a look-up query carries.
QUERY_CHUNK = 1000
# Syntax only: the contact mechanism checks deliverability itself when the
# email-validator package is installed.
EMAIL = re.compile(r'^[^@\s]+@[^@\s]+\.[^@\s.]+$')
DIGITS = re.compile(r'[0-9]{1,9}')
MAX_INTEGER = 10**6
#: Where a column's text goes, to check its length against the field's size.
TEXT_FIELDS = {
    'customer_name': ('party.party', 'name'),
    'national_id': ('party.party', 'national_id'),
    'registration_number': ('party.party', 'registration_number'),
    'phone': ('party.contact_mechanism', 'value'),
    'email': ('party.contact_mechanism', 'value'),
    'street': ('prepaid.service_point', 'street'),
    'city': ('prepaid.service_point', 'city'),
    'postal_code': ('prepaid.service_point', 'postal_code'),
    'meter_serial': ('prepaid.meter', 'serial'),
    'manufacturer': ('prepaid.meter', 'manufacturer'),
    'model': ('prepaid.meter', 'model'),
}
#: Length of a text cell whose field has no size (a lookup code, a choice).
MAX_CELL_TEXT = 255


# ---------------------------------------------------------------------------
# Reading workbooks (import_sheet) and their header


def read_workbook(data: bytes) -> tuple[list[str], list[tuple[int, list[Cell]]]]:
    """The header names and the non-empty data rows (with their spreadsheet
    row number) of the first sheet of an .xlsx or .xls file, all in memory:
    for small workbooks and tests; the import itself streams a Sheet."""
    sheet = Sheet(data)
    return sheet.header, list(sheet)


def count_rows(data: bytes) -> int:
    "Data rows of the workbook (header and empty rows excluded)"
    return Sheet(data).count()


def import_columns() -> tuple[Column, ...]:
    """The columns of the activated modules (prepaid_sts adds the STS ones);
    the base columns outside a transaction (the template command)."""
    try:
        Job = Pool().get('prepaid.import.job')
    except (AttributeError, KeyError):  # no transaction, or no such pool
        return COLUMNS
    return Job.import_columns()


def check_header(
    header: list[str], columns: tuple[Column, ...] | None = None
) -> dict[str, int]:
    "Map each known column to its index; reject missing, unknown or doubles"
    columns = columns or import_columns()
    names = {c.name for c in columns}
    positions: dict[str, int] = {}
    duplicates, unknown = [], []
    for index, name in enumerate(header):
        if not name:
            continue
        if name not in names:
            unknown.append(name)
        elif name in positions:
            duplicates.append(name)
        else:
            positions[name] = index
    missing = [c.name for c in columns if c.mandatory and c.name not in positions]
    if missing:
        raise ImportFileError(
            gettext(
                'prepaid_vending.msg_import_missing_columns', columns=', '.join(missing)
            )
        )
    if unknown:
        raise ImportFileError(
            gettext(
                'prepaid_vending.msg_import_unknown_columns',
                columns=shown(', '.join(unknown), 200),
            )
        )
    if duplicates:
        raise ImportFileError(
            gettext(
                'prepaid_vending.msg_import_duplicate_columns',
                columns=', '.join(duplicates),
            )
        )
    return positions


# ---------------------------------------------------------------------------
# Validating rows


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


def _chunks(values: Iterable[Any], size: int = QUERY_CHUNK) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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


# ---------------------------------------------------------------------------
# Importing


@dataclass
class ImportResult:
    total: int = 0
    imported: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    written: bool = False
    parties: int = 0
    service_points: int = 0
    meters: int = 0
    header: list[str] = field(default_factory=list)
    meter_ids: list[int] = field(default_factory=list)
    rejects: bytes | None = None

    def rejects_workbook(self) -> bytes | None:
        "The rejected rows as typed, with their row number and reasons"
        return self.rejects


Progress = Callable[[int, int], None]  # (validated rows, processed rows)


def import_rows(
    header: list[str],
    rows: Iterable[tuple[int, list[Cell]]],
    mode: str = 'all',
    progress: Progress | None = None,
    today: dt.date | None = None,
    batch: int | None = None,
    orm: bool = False,
) -> ImportResult:
    """Validate every row, then write the valid ones (mode 'valid') or all of
    them only if none is rejected (mode 'all').  Runs in the current
    transaction; the caller commits.  batch: rows per written batch (and per
    progress report); orm: write through Model.create (the reference path).

    rows is read twice (a list, or a Sheet that reads its file again): first
    to validate every row and index what rows share, then to write the valid
    rows by batches and stream the rejected ones to the rejects workbook.  No
    row is held beyond its batch, so memory does not grow with the file."""
    if mode not in {'all', 'valid'}:
        raise ValueError(f"mode must be 'all' or 'valid', not {mode!r}")
    positions = check_header(header)
    today = today or dt.date.today()
    lookups = load_lookups()
    validator = RowValidator(positions, lookups, today)
    index = FileIndex()
    total = invalid = 0
    for chunk in _chunks(rows):
        load_row_lookups(lookups, positions, chunk)
        for number, row in chunk:
            clean, errors = validator.validate(number, row)
            index.add(number, validator.serial(row), clean)
            invalid += bool(errors)
        total += len(chunk)
        if progress and total % 5000 < len(chunk):
            progress(total, 0)
    if not total:
        raise ImportFileError(gettext('prepaid_vending.msg_import_no_rows'))
    result = ImportResult(total=total, header=header)
    if progress:
        progress(total, 0)
    writer = None
    if mode == 'valid' or not (invalid or index.conflicts):
        writer = RowWriter(result, batch, orm)
    rejects = RejectsWriter(header)
    pending: list[CleanRow] = []
    processed = 0
    for number, row in rows:
        clean, errors = validator.validate(number, row)
        errors += index.reasons(number, validator.serial(row), clean)
        processed += 1
        if errors:
            result.rejected.append(Rejected(number, errors))
            rejects.append(number, errors, row)
        elif writer:
            pending.append(clean)
            if len(pending) == writer.batch:
                writer.write(pending)
                pending = []
                if progress:
                    progress(total, processed)
    if writer:
        if pending:
            writer.write(pending)
            if progress:
                progress(total, processed)
        result.written = True
    result.rejects = rejects.close()
    return result


class RowWriter:
    """Create parties, service points, meters and installations by batches:
    set-based (bulk_create) unless orm is set or a model needs the ORM.
    The customers created by one batch are found again by the later ones."""

    def __init__(self, result: ImportResult, batch: int | None, orm: bool):
        self.result = result
        self.party_ids: dict[tuple[str, str], int] = {}
        self.bulk = not orm
        if self.bulk:
            try:
                for name in BULK_MODELS:
                    check_bulk_model(Pool().get(name))
            except BulkUnsupported as exception:
                logger.info("import through the ORM: %s", exception)
                self.bulk = False
        self.batch = batch or (WRITE_BATCH if self.bulk else ORM_BATCH)

    def write(self, rows: list[CleanRow]) -> None:
        for chunk in _chunks(rows, self.batch):
            if self.bulk:
                _write_chunk_bulk(chunk, self.result, self.party_ids)
            else:
                _write_chunk_orm(chunk, self.result, self.party_ids)


def _new_parties(
    chunk: list[CleanRow], party_ids: dict[tuple[str, str], int]
) -> tuple[list[dict[str, Any]], list[CleanRow]]:
    "The customers a chunk creates, once per ID, and the rows that own them"
    new_parties: list[dict[str, Any]] = []
    owners: list[CleanRow] = []
    pending: set[tuple[str, str]] = set()
    for row in chunk:
        if row.party_id or (
            row.party_key and (row.party_key in party_ids or row.party_key in pending)
        ):
            continue
        if row.party_key:
            pending.add(row.party_key)
        new_parties.append(dict(row.party))
        owners.append(row)
    _number_parties(new_parties)
    return new_parties, owners


def _link_parties(
    chunk: list[CleanRow],
    owners: list[CleanRow],
    new_ids: list[int],
    party_ids: dict[tuple[str, str], int],
) -> None:
    for row, party_id in zip(owners, new_ids):
        if row.party_key:
            party_ids[row.party_key] = party_id
        else:
            row.party_id = party_id
    for row in chunk:
        if row.party_id is None:
            row.party_id = party_ids[row.party_key]


def _write_chunk_orm(
    chunk: list[CleanRow],
    result: ImportResult,
    party_ids: dict[tuple[str, str], int],
) -> None:
    "The reference path: Model.create and change_state"
    pool = Pool()
    Party = pool.get('party.party')
    ServicePoint = pool.get('prepaid.service_point')
    Meter = pool.get('prepaid.meter')
    Installation = pool.get('prepaid.meter.installation')
    Configuration = pool.get('prepaid.configuration')
    new_parties, owners = _new_parties(chunk, party_ids)
    parties = Party.create(new_parties)
    _link_parties(chunk, owners, [p.id for p in parties], party_ids)
    point_codes = _sequence_values(Configuration(1).service_point_sequence, len(chunk))
    points = ServicePoint.create(
        [
            {**r.point, 'customer': r.party_id, 'code': code}
            for r, code in zip(chunk, point_codes)
        ]
    )
    meters = Meter.create([r.meter for r in chunk])
    Installation.create(
        [
            {
                'meter': m.id,
                'service_point': p.id,
                'installed_on': r.installed_on,
                'install_reading': r.install_reading,
            }
            for r, p, m in zip(chunk, points, meters)
        ]
    )
    # Through change_state so every meter gets its history line.
    Meter.change_state(
        meters, 'installed', gettext('prepaid_vending.msg_import_installed')
    )
    result.parties += len(parties)
    result.service_points += len(points)
    result.meters += len(meters)
    result.imported += len(chunk)
    result.meter_ids.extend(m.id for m in meters)


def _sequence_values(sequence: Any, count: int) -> list[Any]:
    """Numbers for a whole batch at once: one sequence update instead of one
    per record (the models would draw them one by one)."""
    if not sequence or not count:
        return [None] * count
    return list(sequence.get_many(count))


def _number_parties(values: list[dict[str, Any]]) -> None:
    "Give new customers their party code and customer number by batch"
    pool = Pool()
    Party = pool.get('party.party')
    Configuration = pool.get('prepaid.configuration')
    codes = _sequence_values(Party._code_sequence(), len(values))
    numbers = _sequence_values(Configuration(1).customer_sequence, len(values))
    for party, code, number in zip(values, codes, numbers):
        if code:
            party['code'] = code
        if number:
            party['customer_number'] = number


class RejectsWriter:
    """The rejected rows as typed, preceded by their row number and reasons,
    written as they come (openpyxl's write-only mode keeps them in a
    temporary file, not in memory)."""

    def __init__(self, header: list[str]):
        self.header = header
        self.workbook = None
        self.sheet = None

    def append(self, number: int, reasons: list[str], values: list[Cell]) -> None:
        if self.workbook is None:
            import openpyxl

            self.workbook = openpyxl.Workbook(write_only=True)
            self.sheet = self.workbook.create_sheet('rejected')
            self.sheet.append(['row', 'reason'] + self.header)
        self.sheet.append(
            [number, '; '.join(reasons)]
            # A cell starting with "=" would be a formula when opened.
            + [
                v if not isinstance(v, str) or not v.startswith('=') else "'" + v
                for v in values
            ]
        )

    def close(self) -> bytes | None:
        if self.workbook is None:
            return None
        out = io.BytesIO()
        self.workbook.save(out)
        return out.getvalue()


def template_workbook(columns: tuple[Column, ...] | None = None) -> bytes:
    "An empty workbook with the header row, an example row and the column help"
    import openpyxl

    columns = columns or import_columns()
    names = [c.name for c in columns]
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = 'customers'
    sheet.append(names)
    sheet.append([c.example for c in columns])
    sheet.cell(
        row=2, column=names.index('installed_on') + 1
    ).number_format = 'yyyy-mm-dd'
    for index, column in enumerate(columns, 1):
        if column.text:
            # Identifiers stay text: a number cell keeps 15 digits only.
            sheet.cell(row=2, column=index).number_format = '@'
    help_sheet = workbook.create_sheet('columns')
    help_sheet.append(['column', 'mandatory', 'content'])
    for column in columns:
        help_sheet.append([column.name, 'yes' if column.mandatory else '', column.help])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


# ---------------------------------------------------------------------------
# Set-based writing
#
# Why bypass ModelSQL.create: the profile of the ORM path shows that nearly
# all of its time goes to work this import has already done or does not
# need: the generic field validation of _after_create (required, selection,
# size, domain of every field, re-read record by record, with an O(n^2)
# assertion when browsing large batches), and the multi-value setters (the
# party language, company accounts) which read then write one record per
# party.  bulk_create() below keeps everything else the ORM does on create,
# in the ORM's own code where it can:
#
# - access rights, field access and preprocess_values (Model._before_create);
# - default values (Model.default_get, once per set of given fields);
# - computed columns (compute_fields), create_uid/create_date, and
#   write_uid/write_date when the ORM path would write the record again;
# - multi-value fields: one value record per record and value model, with
#   the same pattern (company) as set_multivalue; nested One2Many creates;
# - the model-specific checks (validate, validate_fields of every module,
#   e.g. national ID, phone numbers, STS or head-end parameters), the
#   check_modification and on_modification hooks, record rules on create,
#   triggers and the transaction's created-records list.
#
# What it leaves out is the generic per-field validation: every value comes
# from RowValidator (which checks formats, ranges, choices and references)
# or from the models' defaults, and uniqueness is enforced by the database
# constraints.  A model needing ORM work not listed above (history table,
# tree paths, translations, other relation setters) makes write_rows fall
# back to the ORM before anything is written.


class BulkUnsupported(Exception):
    "A model needs ORM work bulk_create does not replicate"


# Records per browse() in the post-insert hooks: ModelStorage.__init__ scans
# the whole id list, so slices stay small.
HOOK_SLICE = 200
_AUDIT = {'id', 'create_uid', 'create_date', 'write_uid', 'write_date'}


def _plain_defaults(Model: Any, given: Iterable[str]) -> dict[str, Any]:
    "The ORM's default values for the fields not given, as create computes them"
    names = [
        n
        for n, f in Model._fields.items()
        if n not in given
        and n not in _AUDIT
        and not (isinstance(f, fields.Function) and not f.setter)
    ]
    if not names:
        return {}
    return Model._clean_defaults(Model.default_get(names, with_rec_name=False))


def check_bulk_model(Model: Any) -> None:
    """Raise BulkUnsupported if the model's create does more than bulk_create,
    judging from the model and its default values (write_rows calls it
    before writing anything, so the fallback to the ORM is clean)."""
    if getattr(Model, '_history', False):
        raise BulkUnsupported(f'{Model.__name__} keeps a history table')
    if getattr(Model, '_mptt_fields', None) or getattr(Model, '_path_fields', None):
        raise BulkUnsupported(f'{Model.__name__} is a tree with stored paths')
    if Model.table_query is not ModelSQL.table_query:
        raise BulkUnsupported(f'{Model.__name__} is a table query')
    check_setters(Model, [_plain_defaults(Model, ())])


def check_setters(Model: Any, rows: list[dict[str, Any]]) -> None:
    "Raise BulkUnsupported for values only the ORM's field setters can write"
    for name in sorted({n for v in rows for n in v}):
        field_ = Model._fields[name]
        if not hasattr(field_, 'set') or isinstance(field_, fields.MultiValue):
            continue
        values = [v[name] for v in rows if v.get(name)]
        if isinstance(field_, fields.One2Many):
            # Nested creates are written by bulk_create on the target.
            if all(a[0] == 'create' for v in values for a in v):
                continue
        elif isinstance(field_, fields.Function | fields.Many2Many):
            # An empty value: the setter would write nothing.
            if not values:
                continue
        raise BulkUnsupported(
            f'{Model.__name__}.{name} needs its setter (ORM) for {values[:1]}'
        )


def _insert(Model: Any, columns: list[str], rows: list[list[Any]], write: bool):
    "Insert rows of SQL-formatted values; return their ids in order"
    from sql import Column
    from sql.functions import CurrentTimestamp

    transaction = Transaction()
    database = transaction.database
    cursor = transaction.connection.cursor()
    table = Model.__table__()
    audit = [table.create_uid, table.create_date]
    audit_values = [transaction.user, CurrentTimestamp()]
    if write:
        audit += [table.write_uid, table.write_date]
        audit_values += [transaction.user, CurrentTimestamp()]
    cols = audit + [Column(table, c) for c in columns]
    ids = database.nextid(transaction.connection, Model._table, count=len(rows))
    if len(rows) == 1 and ids is not None and not isinstance(ids, list):
        ids = [ids]
    if ids is not None:
        # PostgreSQL: ids drawn from the table's sequence, multi-row INSERTs.
        cols.append(table.id)
        size = max(1, backend.MAX_QUERY_PARAMS // (len(cols) + 1))
        for start in range(0, len(rows), size):
            cursor.execute(
                *table.insert(
                    cols,
                    [
                        audit_values + row + [id_]
                        for row, id_ in zip(
                            rows[start : start + size], ids[start : start + size]
                        )
                    ],
                )
            )
        return ids
    # SQLite: one prepared INSERT run by executemany.  The transaction holds
    # the database's write lock (BEGIN IMMEDIATE) from its first write and the
    # tables use AUTOINCREMENT, so the new ids follow each other and end at
    # last_insert_rowid().  Checked below all the same.
    query, _ = tuple(table.insert(cols, [audit_values + rows[0]]))
    params = [[transaction.user] * (2 if write else 1) + row for row in rows]
    cursor.executemany(query, params)
    cursor.execute('SELECT last_insert_rowid()')
    (last,) = cursor.fetchone()
    first = last - len(rows) + 1
    cursor.execute(
        *table.select(Count(table.id), where=(table.id >= first) & (table.id <= last))
    )
    if cursor.fetchone()[0] != len(rows):
        raise RuntimeError(f'{Model.__name__}: inserted ids are not consecutive')
    return list(range(first, last + 1))


def bulk_create(
    Model: Any, vlist: list[dict[str, Any]], written: bool = False
) -> list[int]:
    """Create records like Model.create, set-based (see the section comment).
    written: the ORM path writes the records again right after creating them
    (the meter state change), so write_uid/write_date are set too."""
    if not vlist:
        return []
    check_bulk_model(Model)
    vlist = Model._before_create(vlist)
    defaults: dict[tuple[str, ...], dict[str, Any]] = {}
    full: list[dict[str, Any]] = []
    for values in vlist:
        schema = tuple(sorted(values))
        if schema not in defaults:
            defaults[schema] = _plain_defaults(Model, values)
        full.append({**defaults[schema], **values})

    plain: list[str] = sorted(
        {n for v in full for n in v if not hasattr(Model._fields[n], 'set')}
    )
    for name in plain:
        field_ = Model._fields[name]
        if getattr(field_, 'translate', False) and any(v.get(name) for v in full):
            raise BulkUnsupported(f'{Model.__name__}.{name} is translated')
    computes = Model.compute_fields is not ModelSQL.compute_fields
    rows = []
    for values in full:
        if computes:
            # The modules' own computation, on an unsaved record.
            computed = Model(**{n: values.get(n) for n in plain}).compute_fields()
            if computed:
                # The ORM writes computed values after the insert, which
                # sets the write fields (all records here, not only these).
                written = True
                values.update(computed)
        rows.append(values)
    plain = sorted({n for v in rows for n in v if not hasattr(Model._fields[n], 'set')})
    check_setters(Model, rows)
    ids = _insert(
        Model,
        plain,
        [[Model._fields[n].sql_format(v.get(n)) for n in plain] for v in rows],
        written,
    )
    _set_relations(Model, ids, rows)
    _after_bulk_create(Model, ids, None)
    return ids


def _set_relations(Model: Any, ids: list[int], rows: list[dict[str, Any]]) -> None:
    "Multi-value and nested One2Many values, as the ORM's field setters do"
    pool = Pool()
    context = Transaction().context
    value_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    setters = sorted({n for v in rows for n in v if hasattr(Model._fields[n], 'set')})
    multivalues: dict[str, list[str]] = defaultdict(list)
    for name in setters:
        if isinstance(Model._fields[name], fields.MultiValue):
            multivalues[Model.multivalue_model(name).__name__].append(name)
    for value_model, names in multivalues.items():
        Value = pool.get(value_model)
        link = next(
            n
            for n, f in Value._fields.items()
            if f._type == 'many2one' and f.model_name == Model.__name__
        )
        pattern = {}
        if 'company' in Value._fields and 'company' not in names:
            # CompanyMultiValueMixin.set_multivalue: the context's company.
            pattern['company'] = context.get('company')
        for id_, values in zip(ids, rows):
            value_rows[value_model].append(
                {link: id_, **pattern, **{n: values.get(n) for n in names}}
            )
    for name in setters:
        field_ = Model._fields[name]
        if not isinstance(field_, fields.One2Many):
            continue
        for id_, values in zip(ids, rows):
            for _, vlist in values.get(name) or []:  # creates (check_setters)
                for child in vlist:
                    children[field_.model_name].append({**child, field_.field: id_})
    for value_model, vlist in value_rows.items():
        bulk_create(pool.get(value_model), vlist)
    for child_model, vlist in children.items():
        bulk_create(pool.get(child_model), vlist)


def _after_bulk_create(Model: Any, ids: list[int], field_names: Any) -> None:
    "The create hooks of the ORM except the generic per-field validation"
    pool = Pool()
    Trigger = pool.get('ir.trigger')
    transaction = Transaction()
    external = bool(transaction.user and transaction.check_access)
    with without_check_access():
        triggers = Trigger.get_triggers(Model.__name__, 'create')
        for start in range(0, len(ids), HOOK_SLICE):
            records = Model.browse(ids[start : start + HOOK_SLICE])
            Model.validate(records)
            Model.validate_fields(records, field_names)
            Model.check_modification('create', records, external=external)
            Model.on_modification('create', records)
            for trigger in triggers:
                trigger.queue_trigger_action(records)
        transaction.create_records[Model.__name__].extend(ids)
    # Record rules on create, as ModelSQL.create checks them (private name).
    Model._ModelSQL__check_domain_rule(ids, 'create')


def _write_chunk_bulk(
    chunk: list[CleanRow],
    result: ImportResult,
    party_ids: dict[tuple[str, str], int],
) -> None:
    pool = Pool()
    Party = pool.get('party.party')
    ServicePoint = pool.get('prepaid.service_point')
    Meter = pool.get('prepaid.meter')
    History = pool.get('prepaid.meter.state_history')
    Installation = pool.get('prepaid.meter.installation')
    Configuration = pool.get('prepaid.configuration')
    reason = gettext('prepaid_vending.msg_import_installed')
    new_parties, owners = _new_parties(chunk, party_ids)
    new_ids = bulk_create(Party, new_parties)
    _link_parties(chunk, owners, new_ids, party_ids)
    point_codes = _sequence_values(Configuration(1).service_point_sequence, len(chunk))
    point_ids = bulk_create(
        ServicePoint,
        [
            {**r.point, 'customer': r.party_id, 'code': code}
            for r, code in zip(chunk, point_codes)
        ],
    )
    # Created in stock then moved to installed by change_state on the ORM
    # path: the same end state, write fields and history line here.
    meter_ids = bulk_create(
        Meter, [{**r.meter, 'state': 'installed'} for r in chunk], written=True
    )
    bulk_create(
        History,
        [
            {
                'meter': m,
                'from_state': 'in_stock',
                'to_state': 'installed',
                'reason': reason,
            }
            for m in meter_ids
        ],
    )
    bulk_create(
        Installation,
        [
            {
                'meter': m,
                'service_point': p,
                'installed_on': r.installed_on,
                'install_reading': r.install_reading,
            }
            for r, p, m in zip(chunk, point_ids, meter_ids)
        ],
    )
    result.parties += len(new_ids)
    result.service_points += len(point_ids)
    result.meters += len(meter_ids)
    result.imported += len(chunk)
    result.meter_ids.extend(meter_ids)


# ---------------------------------------------------------------------------
# Tryton models


def import_limits() -> Limits:
    """The limits of an upload: the system parameters, within the server's
    ceiling (import_sheet.server_limits)."""
    Configuration = Pool().get('prepaid.configuration')
    config = Configuration(1)
    ceiling = server_limits()
    rows = config.import_max_rows or ceiling.max_rows
    megabytes = config.import_max_megabytes or ceiling.megabytes
    return Limits(
        max_bytes=min(megabytes * (1 << 20), ceiling.max_bytes),
        max_rows=min(rows, ceiling.max_rows),
    )


JOB_STATES = [
    ('draft', "Draft"),
    ('queued', "Queued"),
    ('running', "Running"),
    ('done', "Done"),
    ('rejected', "Rejected"),
    ('failed', "Failed"),
]
MODES_SELECTION = [
    ('all', "All or nothing"),
    ('valid', "Valid rows only"),
]


class ImportJob(CompanyMixin, WorkflowOnlyMixin, ModelSQL, ModelView):
    """Import of a workbook of customers, service points and meters

    A client changes nothing on an import job: the import wizard creates it,
    the import writes its progress and outcome, and a draft or failed one
    is started again only through its Queue button; a client deletes only a
    draft job (WorkflowOnlyMixin)."""

    _client_delete_states = frozenset({'draft'})

    __name__ = 'prepaid.import.job'
    _rec_name = 'filename'

    filename = fields.Char("File Name", readonly=True)
    file = fields.Binary("File", filename='filename', readonly=True)
    mode = fields.Selection(MODES_SELECTION, "Mode", required=True, readonly=True)
    state = fields.Selection(JOB_STATES, "State", required=True, readonly=True)
    user = fields.Many2One('res.user', "User", readonly=True)
    submitted_at = fields.Timestamp("Submitted At", readonly=True)
    started_at = fields.Timestamp("Started At", readonly=True)
    finished_at = fields.Timestamp("Finished At", readonly=True)
    total_rows = fields.Integer("Total Rows", readonly=True)
    validated_rows = fields.Integer("Validated Rows", readonly=True)
    processed_rows = fields.Integer(
        "Processed Rows", readonly=True, help="Rows written or rejected so far."
    )
    imported_rows = fields.Integer("Imported Rows", readonly=True)
    rejected_rows = fields.Integer("Rejected Rows", readonly=True)
    progress = fields.Function(fields.Float("Progress", digits=(1, 2)), 'get_progress')
    parties_created = fields.Integer("Customers Created", readonly=True)
    service_points_created = fields.Integer("Service Points Created", readonly=True)
    meters_created = fields.Integer("Meters Created", readonly=True)
    rejects = fields.Binary(
        "Rejected Rows File", filename='rejects_filename', readonly=True
    )
    rejects_filename = fields.Char("Rejected Rows File Name", readonly=True)
    message = fields.Text("Message", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('submitted_at', 'DESC'))
        cls._buttons.update(
            {
                'queue': {
                    'invisible': ~Eval('state').in_(['draft', 'failed']),
                    'depends': ['state'],
                },
            }
        )

    @staticmethod
    def default_state():
        return 'draft'

    @staticmethod
    def default_mode():
        return 'all'

    @staticmethod
    def default_user():
        return Transaction().user

    @staticmethod
    def default_submitted_at():
        return dt.datetime.now()

    @classmethod
    def default_total_rows(cls):
        return 0

    @classmethod
    def default_validated_rows(cls):
        return 0

    @classmethod
    def default_processed_rows(cls):
        return 0

    @classmethod
    def default_imported_rows(cls):
        return 0

    @classmethod
    def default_rejected_rows(cls):
        return 0

    # -- what other modules add to the import (prepaid_sts: STS columns) --

    @classmethod
    def import_columns(cls) -> tuple[Column, ...]:
        "The workbook's columns (the template's, in its order)"
        return COLUMNS

    @classmethod
    def import_text_fields(cls) -> dict[str, tuple[str, str]]:
        "column -> (model, field) whose size bounds the column's text"
        return dict(TEXT_FIELDS)

    @classmethod
    def import_meter_values(
        cls,
        values: dict[str, str],
        kind: str | None,
        extra: dict[str, Any],
        err: Callable[[str], None],
    ) -> dict[str, Any]:
        """More values for the row's new meter, from its cells as text
        (values) and the meter kind; problems go to err.  extra is the
        import's own store for look-ups (loaded once)."""
        return {}

    def get_progress(self, name):
        if not self.total_rows:
            return 0.0
        return round(min(1.0, (self.processed_rows or 0) / self.total_rows), 2)

    @classmethod
    def check_modification(cls, mode, jobs, values=None, external=False):
        super().check_modification(mode, jobs, values=values, external=external)
        if mode == 'delete':
            for job in jobs:
                if job.state in {'queued', 'running'}:
                    raise AccessError(
                        gettext(
                            'prepaid_vending.msg_import_job_delete_running',
                            job=job.rec_name,
                        )
                    )

    @classmethod
    @ModelView.button
    def queue(cls, jobs):
        "Import the jobs in a queued task (workers or after the commit)"
        for job in jobs:
            if job.state not in {'draft', 'failed'}:
                raise UserError(
                    gettext(
                        'prepaid_vending.msg_import_job_not_queueable',
                        job=job.rec_name,
                        state=job.state,
                    )
                )
        cls.write(list(jobs), {'state': 'queued', 'message': None})
        with Transaction().set_context(
            prepaid_import_queued=True, queue_name='prepaid_import', queue_batch=1
        ):
            cls.__queue__.process(list(jobs))

    @classmethod
    def process(cls, jobs):
        """Run the imports.  From the queue, a failure marks the job failed
        instead of losing it; run directly (wizard), the error is raised."""
        queued = bool(Transaction().context.get('prepaid_import_queued'))
        for job in jobs:
            if queued and job.state not in {'queued', 'running'}:
                continue  # processed or re-queued meanwhile
            try:
                job._run(queued)
            except Exception as exception:
                if not queued:
                    raise
                logger.exception("import job %s failed", job.id)
                Transaction().rollback()
                cls._write_progress(
                    [cls(job.id)],
                    {
                        'state': 'failed',
                        'finished_at': dt.datetime.now(),
                        'message': str(
                            getattr(exception, 'message', None) or exception
                        ),
                    },
                )

    def _run(self, queued: bool) -> None:
        # On PostgreSQL a queued job reports progress in short side
        # transactions so the back office sees it while the import runs.
        # SQLite allows one writer at a time: there progress shows at the end.
        side = queued and backend.name == 'postgresql'
        cls = self.__class__
        job_id = self.id
        if side:
            # A job queued and run in one transaction (the tests, or a
            # worker-less setup running tasks before the commit) is not
            # visible from a side transaction: report in place then.
            with Transaction().new_transaction():
                side = bool(cls.search([('id', '=', job_id)], count=True))

        def update(**values: Any) -> None:
            if side:
                with Transaction().new_transaction():
                    cls._write_progress([cls(job_id)], values)
            else:
                cls._write_progress([cls(job_id)], values)

        limits = import_limits()
        check_upload(self.file, limits)
        sheet = Sheet(self.file, limits.max_rows)
        update(
            state='running',
            started_at=dt.datetime.now(),
            total_rows=sheet.declared_rows() or self.total_rows or 0,
            validated_rows=0,
            processed_rows=0,
        )

        def progress(validated: int, processed: int) -> None:
            update(
                total_rows=max(validated, self.total_rows or 0),
                validated_rows=validated,
                processed_rows=processed,
            )

        # The job's utility owns what it imports (defaults) and its numbers
        # are matched within it (load_lookups), whoever runs the task.
        with Transaction().set_context(company=self.company.id):
            result = import_rows(sheet.header, sheet, mode=self.mode, progress=progress)
        rejects = result.rejects_workbook()
        if side:
            # Commit the data, so the final job write below starts a fresh
            # snapshot and does not conflict with the progress updates.
            Transaction().commit()
        values = {
            'finished_at': dt.datetime.now(),
            'total_rows': result.total,
            'validated_rows': result.total,
            'processed_rows': result.total,
            'imported_rows': result.imported,
            'rejected_rows': len(result.rejected),
            'parties_created': result.parties,
            'service_points_created': result.service_points,
            'meters_created': result.meters,
            'rejects': rejects,
            'rejects_filename': (
                f'rejected-{self.filename or "import.xlsx"}'.rsplit('.', 1)[0] + '.xlsx'
                if rejects
                else None
            ),
        }
        if result.written:
            values['state'] = 'done'
            values['message'] = gettext(
                'prepaid_vending.msg_import_done',
                imported=result.imported,
                rejected=len(result.rejected),
            )
        else:
            values['state'] = 'rejected'
            values['processed_rows'] = len(result.rejected)
            values['message'] = gettext(
                'prepaid_vending.msg_import_all_or_nothing',
                rejected=len(result.rejected),
            )
        cls._write_progress([cls(job_id)], values)

    @classmethod
    def _write_progress(cls, jobs, values: dict[str, Any]) -> None:
        "The import's own record of its progress (no client may write it)"
        with without_check_access():
            cls.write(jobs, values)


class ImportStart(ModelView):
    __name__ = 'prepaid.import.wizard.start'

    file = fields.Binary(
        "Workbook",
        filename='filename',
        required=True,
        help="An .xlsx or .xls workbook laid out as the template.",
    )
    filename = fields.Char("File Name")
    mode = fields.Selection(
        MODES_SELECTION,
        "Mode",
        required=True,
        help="All or nothing: one rejected row means nothing is imported.\n"
        "Valid rows only: the valid rows are imported, the others returned.",
    )
    template = fields.Binary("Template", filename='template_name', readonly=True)
    template_name = fields.Char("Template Name", readonly=True)
    limits = fields.Char("Limits", readonly=True)


class ImportResultView(ModelView):
    __name__ = 'prepaid.import.wizard.result'

    job = fields.Many2One('prepaid.import.job', "Job", readonly=True)
    state = fields.Selection(JOB_STATES, "State", readonly=True)
    total_rows = fields.Integer("Total Rows", readonly=True)
    imported_rows = fields.Integer("Imported Rows", readonly=True)
    rejected_rows = fields.Integer("Rejected Rows", readonly=True)
    rejects = fields.Binary(
        "Rejected Rows File", filename='rejects_filename', readonly=True
    )
    rejects_filename = fields.Char("Rejected Rows File Name", readonly=True)
    message = fields.Text("Message", readonly=True)


class ImportWizard(Wizard):
    "Import customers, service points and meters from a workbook"

    __name__ = 'prepaid.import.wizard'

    start = StateView(
        'prepaid.import.wizard.start',
        'prepaid_vending.import_wizard_start_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Import", 'import_', 'tryton-ok', default=True),
        ],
    )
    import_ = StateTransition()
    result = StateView(
        'prepaid.import.wizard.result',
        'prepaid_vending.import_wizard_result_view_form',
        [
            Button("Close", 'end', 'tryton-close', default=True),
        ],
    )

    def default_start(self, fields):
        limits = import_limits()
        return {
            'mode': 'all',
            'limits': gettext(
                'prepaid_vending.msg_import_limits',
                rows=limits.max_rows,
                megabytes=limits.megabytes,
            ),
            'template': template_workbook(),
            'template_name': 'prepaid-import-template.xlsx',
        }

    def transition_import_(self):
        # Second line: the context cannot widen the groups checked here.
        require_wizard_groups(self.__name__)
        pool = Pool()
        Job = pool.get('prepaid.import.job')
        Configuration = pool.get('prepaid.configuration')
        threshold = Configuration(1).import_queue_threshold or 0
        data = bytes(self.start.file or b'')
        # Refused before anything is stored or read row by row.
        limits = import_limits()
        check_upload(data, limits)
        sheet = Sheet(data, limits.max_rows)
        check_header(sheet.header)
        rows = sheet.declared_rows()
        if rows is None:
            rows = sheet.count()
        job = Job(
            filename=self.start.filename or 'import.xlsx',
            file=data,
            mode=self.start.mode,
            total_rows=rows,
        )
        # The job is the wizard's record: no client creates or writes one.
        with without_check_access():
            job.save()
        self.result.job = job
        if threshold and rows > threshold:
            Job.queue([job])
            Job._write_progress(
                [job],
                {'message': gettext('prepaid_vending.msg_import_queued', rows=rows)},
            )
        else:
            Job.process([job])
        return 'result'

    def default_result(self, fields):
        job = self.result.job
        job = job.__class__(job.id)
        return {
            'job': job.id,
            'state': job.state,
            'total_rows': job.total_rows,
            'imported_rows': job.imported_rows,
            'rejected_rows': job.rejected_rows,
            'rejects': job.rejects,
            'rejects_filename': job.rejects_filename,
            'message': job.message,
        }
