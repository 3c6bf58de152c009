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

Rows that share a national ID (or registration number) belong to one customer;
a customer already in the database with that ID gets the new service points
(its own data is not changed).  Every row is validated before anything is
written; rejected rows come back in a workbook with their row number and the
reasons.  In mode "all" (the default) one rejected row means nothing is
written; in mode "valid" the valid rows are written.  Workbooks above the
configured row threshold are imported by a queued task (`prepaid.import.job`).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
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

from .meter import METER_KINDS, PAYMENT_MODES
from .party import check_national_id, check_phone, check_registration_number

logger = logging.getLogger(__name__)

Cell = Any  # str | int | float | bool | datetime | date | None


@dataclass(frozen=True)
class Column:
    name: str
    mandatory: bool
    help: str
    example: Cell = None


COLUMNS: tuple[Column, ...] = (
    Column(
        'customer_name', True, "Name of the person or organisation", 'Thandiwe Nkosi'
    ),
    Column('national_id', False, "6 to 20 digits (people)", '8001015009087'),
    Column(
        'registration_number',
        False,
        "4 to 30 letters, digits, / or - (companies)",
        None,
    ),
    Column('phone', False, "7 to 15 digits, optional leading +", '+27 82 555 0101'),
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
    Column('postal_code', False, "Postal code", '0700'),
    Column('latitude', False, "Decimal degrees, -90 to 90", -23.9045),
    Column('longitude', False, "Decimal degrees, -180 to 180", 29.4689),
    Column('feeder_code', False, "Feeder of the transformer (checked)", None),
    Column('transformer_code', True, "Code of an existing transformer", 'TX-0001'),
    Column('meter_serial', True, "Serial number of the new meter", '04123456789'),
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
XLSX_MAGIC = b'PK\x03\x04'
XLS_MAGIC = b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1'


class ImportFileError(UserError):
    "The workbook itself cannot be imported (format, header)"


# ---------------------------------------------------------------------------
# Reading workbooks


def _cell_xlsx(value: Cell) -> Cell:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def read_workbook(data: bytes) -> tuple[list[str], list[tuple[int, list[Cell]]]]:
    """Return the header names and the non-empty data rows (with their
    spreadsheet row number) of the first sheet of an .xlsx or .xls file."""
    if data[:4] == XLSX_MAGIC:
        rows = _read_xlsx(data)
    elif data[:8] == XLS_MAGIC:
        rows = _read_xls(data)
    else:
        raise ImportFileError(gettext('prepaid_vending.msg_import_file_format'))
    header: list[str] | None = None
    body: list[tuple[int, list[Cell]]] = []
    try:
        for number, row in rows:
            if all(v is None for v in row):
                continue
            if header is None:
                header = [_header_name(v) for v in row]
                # Trailing empty header cells are formatting, not columns.
                while header and not header[-1]:
                    header.pop()
                continue
            body.append((number, list(row[: len(header)])))
    except ImportFileError:
        raise
    except Exception as exception:
        raise ImportFileError(
            gettext('prepaid_vending.msg_import_file_unreadable', error=str(exception))
        ) from exception
    if not header:
        raise ImportFileError(gettext('prepaid_vending.msg_import_empty'))
    return header, body


def _header_name(value: Cell) -> str:
    if value is None:
        return ''
    return '_'.join(str(value).strip().lower().split())


def _read_xlsx(data: bytes) -> Iterator[tuple[int, list[Cell]]]:
    import openpyxl

    try:
        # read_only streams the sheet instead of building every cell object.
        workbook = openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=True
        )
    except Exception as exception:
        raise ImportFileError(
            gettext('prepaid_vending.msg_import_file_unreadable', error=str(exception))
        ) from exception
    try:
        sheet = workbook.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), 1):
            yield number, [_cell_xlsx(v) for v in row]
    finally:
        workbook.close()


def _read_xls(data: bytes) -> Iterator[tuple[int, list[Cell]]]:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data)
    except Exception as exception:
        raise ImportFileError(
            gettext('prepaid_vending.msg_import_file_unreadable', error=str(exception))
        ) from exception
    sheet = book.sheet_by_index(0)
    for index in range(sheet.nrows):
        values = []
        for cell in sheet.row(index):
            if cell.ctype in {xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK}:
                values.append(None)
            elif cell.ctype == xlrd.XL_CELL_DATE:
                values.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
            elif cell.ctype == xlrd.XL_CELL_NUMBER:
                number = cell.value
                values.append(int(number) if number == int(number) else number)
            elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                values.append(bool(cell.value))
            elif cell.ctype == xlrd.XL_CELL_ERROR:
                values.append(xlrd.error_text_from_code.get(cell.value, '#ERR'))
            else:
                values.append(_cell_xlsx(cell.value))
        yield index + 1, values


def count_rows(data: bytes) -> int:
    "Data rows of the workbook (header and empty rows excluded)"
    return len(read_workbook(data)[1])


def check_header(header: list[str]) -> dict[str, int]:
    "Map each known column to its index; reject missing, unknown or doubles"
    positions: dict[str, int] = {}
    duplicates, unknown = [], []
    for index, name in enumerate(header):
        if not name:
            continue
        if name not in COLUMN_NAMES:
            unknown.append(name)
        elif name in positions:
            duplicates.append(name)
        else:
            positions[name] = index
    missing = [n for n in MANDATORY if n not in positions]
    if missing:
        raise ImportFileError(
            gettext(
                'prepaid_vending.msg_import_missing_columns', columns=', '.join(missing)
            )
        )
    if unknown:
        raise ImportFileError(
            gettext(
                'prepaid_vending.msg_import_unknown_columns', columns=', '.join(unknown)
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


def text(value: Cell) -> str:
    "Cell as text: spreadsheets store IDs and phone numbers as numbers"
    if value is None:
        return ''
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    return str(value).strip()


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
    existing_serials: set[str] = field(default_factory=set)
    # ('national_id'|'registration_number', value) -> (id, name, is customer)
    parties: dict[tuple[str, str], tuple[int, str, bool]] = field(default_factory=dict)


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
    number: int
    values: list[Cell]
    reasons: list[str]

    @property
    def reason(self) -> str:
        return '; '.join(self.reasons)


class RowValidator:
    "Check one row against the lookups; collect every problem, not the first"

    def __init__(self, positions: dict[str, int], lookups: Lookups, today: dt.date):
        self.positions = positions
        self.lookups = lookups
        self.today = today

    @staticmethod
    def message(code: str, **params: Any) -> str:
        return gettext(f'prepaid_vending.msg_import_{code}', **params)

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
        values = {n: text(self.get(row, n)) for n in self.positions}
        for name in MANDATORY:
            if not values[name]:
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
        if isinstance(value, bool) or isinstance(value, dt.date):
            err(self.message('bad_number', column=name, value=text(value)))
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            err(self.message('bad_number', column=name, value=text(value)))
            return None
        if not (minimum <= number <= maximum):
            err(
                self.message(
                    'out_of_range',
                    column=name,
                    value=text(value),
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
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number <= 0:
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


def check_duplicates(
    rows: Iterable[tuple[int, CleanRow]], rejected: dict[int, list[str]]
) -> None:
    """Reject every row whose serial appears on another row, and rows whose
    national ID or registration number names another customer elsewhere."""
    serials: dict[str, list[int]] = defaultdict(list)
    names: dict[tuple[str, str], tuple[int, str]] = {}
    for number, row in rows:
        serials[row.meter['serial']].append(number)
        if row.party_key and row.party_id is None:
            first = names.setdefault(row.party_key, (number, row.party['name']))
            if first[1].casefold() != row.party['name'].casefold():
                rejected[number].append(
                    RowValidator.message(
                        'party_name_mismatch',
                        label=row.party_key[0],
                        value=row.party_key[1],
                        other=f'{first[1]} (row {first[0]})',
                        name=row.party['name'],
                    )
                )
    for serial, numbers in serials.items():
        if len(numbers) > 1:
            for number in numbers:
                rejected[number].append(
                    RowValidator.message(
                        'serial_in_file',
                        value=serial,
                        rows=', '.join(map(str, numbers)),
                    )
                )


def _chunks(values: list[Any], size: int = QUERY_CHUNK) -> Iterator[list[Any]]:
    for index in range(0, len(values), size):
        yield values[index : index + size]


def load_lookups(
    positions: dict[str, int], rows: list[tuple[int, list[Cell]]]
) -> Lookups:
    "Everything the rows refer to, with a few queries instead of one per row"
    pool = Pool()
    Transformer = pool.get('prepaid.transformer')
    Feeder = pool.get('prepaid.feeder')
    Category = pool.get('prepaid.customer.category')
    Configuration = pool.get('prepaid.configuration')
    Lang = pool.get('ir.lang')
    Meter = pool.get('prepaid.meter')
    Party = pool.get('party.party')

    lookups = Lookups()
    for feeder in Feeder.search([]):
        lookups.feeders[feeder.code.upper()] = feeder.id
    for transformer in Transformer.search([]):
        lookups.transformers[transformer.code.upper()] = (
            transformer.id,
            transformer.feeder.id,
            transformer.feeder.code,
        )
    for category in Category.search([]):
        # Codes are kept as typed (upper case) so the error can list them.
        lookups.categories[category.code] = category.id
        lookups.categories[category.code.casefold()] = category.id
        lookups.categories[category.name.casefold()] = category.id
    default = Configuration(1).default_customer_category
    lookups.default_category = default.id if default else None
    for lang in Lang.search([]):
        lookups.languages[lang.code.lower()] = lang.id
    for meter in Meter.search([('role', '=', 'master')]):
        lookups.masters[meter.serial] = meter.id
        if meter.master_of_transformer:
            lookups.transformer_masters.setdefault(
                meter.master_of_transformer.id, meter.id
            )

    def column(name: str) -> list[str]:
        index = positions.get(name)
        if index is None:
            return []
        return sorted(
            {text(r[index]) for _, r in rows if index < len(r) and text(r[index])}
        )

    for chunk in _chunks(column('meter_serial')):
        with Transaction().set_context(active_test=False):
            for meter in Meter.search([('serial', 'in', chunk)]):
                lookups.existing_serials.add(meter.serial)
    for name in ('national_id', 'registration_number'):
        for chunk in _chunks(column(name)):
            with Transaction().set_context(active_test=False):
                for party in Party.search([(name, 'in', chunk)]):
                    lookups.parties[(name, getattr(party, name))] = (
                        party.id,
                        party.name,
                        bool(party.customer_number),
                    )
    return lookups


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

    def rejects_workbook(self) -> bytes | None:
        if not self.rejected:
            return None
        return rejects_workbook(self.header, self.rejected)


Progress = Callable[[int, int], None]  # (validated rows, processed rows)


def import_rows(
    header: list[str],
    rows: list[tuple[int, list[Cell]]],
    mode: str = 'all',
    progress: Progress | None = None,
    today: dt.date | None = None,
    batch: int | None = None,
    orm: bool = False,
) -> ImportResult:
    """Validate every row, then write the valid ones (mode 'valid') or all of
    them only if none is rejected (mode 'all').  Runs in the current
    transaction; the caller commits.  batch: rows per written batch (and per
    progress report); orm: write through Model.create (the reference path)."""
    if mode not in {'all', 'valid'}:
        raise ValueError(f"mode must be 'all' or 'valid', not {mode!r}")
    positions = check_header(header)
    result = ImportResult(total=len(rows), header=header)
    if not rows:
        raise ImportFileError(gettext('prepaid_vending.msg_import_no_rows'))
    today = today or dt.date.today()
    validator = RowValidator(positions, load_lookups(positions, rows), today)
    clean: list[CleanRow] = []
    reasons: dict[int, list[str]] = defaultdict(list)
    raw_by_number: dict[int, list[Cell]] = {}
    for index, (number, row) in enumerate(rows, 1):
        raw_by_number[number] = row
        row_clean, errors = validator.validate(number, row)
        if errors:
            reasons[number].extend(errors)
        else:
            clean.append(row_clean)
        if progress and index % 5000 == 0:
            progress(index, 0)
    check_duplicates(((r.number, r) for r in clean), reasons)
    clean = [r for r in clean if r.number not in reasons]
    result.rejected = [
        Rejected(n, raw_by_number[n], reasons[n]) for n in sorted(reasons)
    ]
    if progress:
        progress(len(rows), len(result.rejected))
    if mode == 'all' and result.rejected:
        return result
    write_rows(clean, result, progress=progress, batch=batch, orm=orm)
    result.written = True
    return result


def write_rows(
    rows: list[CleanRow],
    result: ImportResult,
    progress: Progress | None = None,
    batch: int | None = None,
    orm: bool = False,
) -> None:
    """Create parties, service points, meters and installations by batches:
    set-based (bulk_create) unless orm is set or a model needs the ORM."""
    if not orm:
        try:
            for name in BULK_MODELS:
                check_bulk_model(Pool().get(name))
        except BulkUnsupported as exception:
            logger.info("import through the ORM: %s", exception)
        else:
            _write_rows_bulk(rows, result, progress, batch or WRITE_BATCH)
            return
    _write_rows_orm(rows, result, progress, batch or ORM_BATCH)


def _write_rows_orm(
    rows: list[CleanRow],
    result: ImportResult,
    progress: Progress | None,
    batch: int,
) -> None:
    "The reference path: Model.create and change_state by batches"
    pool = Pool()
    Party = pool.get('party.party')
    ServicePoint = pool.get('prepaid.service_point')
    Meter = pool.get('prepaid.meter')
    Installation = pool.get('prepaid.meter.installation')
    Configuration = pool.get('prepaid.configuration')
    party_ids: dict[tuple[str, str], int] = {}
    done = len(result.rejected)
    for chunk in _chunks(rows, batch):
        new_parties: list[dict[str, Any]] = []
        owners: list[CleanRow] = []
        pending: set[tuple[str, str]] = set()
        for row in chunk:
            if row.party_id or (
                row.party_key
                and (row.party_key in party_ids or row.party_key in pending)
            ):
                continue
            if row.party_key:
                pending.add(row.party_key)
            new_parties.append(row.party)
            owners.append(row)
        _number_parties(new_parties)
        parties = Party.create(new_parties)
        for row, party in zip(owners, parties):
            if row.party_key:
                party_ids[row.party_key] = party.id
            else:
                row.party_id = party.id
        for row in chunk:
            if row.party_id is None:
                row.party_id = party_ids[row.party_key]
        point_codes = _sequence_values(
            Configuration(1).service_point_sequence, len(chunk)
        )
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
        done += len(chunk)
        if progress:
            progress(result.total, done)


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


def rejects_workbook(header: list[str], rejected: list[Rejected]) -> bytes:
    "The rejected rows as typed, preceded by their row number and reasons"
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet('rejected')
    sheet.append(['row', 'reason'] + header)
    for item in rejected:
        sheet.append(
            [item.number, item.reason]
            + [
                v if not isinstance(v, str) or not v.startswith('=') else "'" + v
                for v in item.values
            ]
        )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def template_workbook() -> bytes:
    "An empty workbook with the header row, an example row and the column help"
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = 'customers'
    sheet.append(list(COLUMN_NAMES))
    sheet.append([c.example for c in COLUMNS])
    sheet.cell(
        row=2, column=COLUMN_NAMES.index('installed_on') + 1
    ).number_format = 'yyyy-mm-dd'
    help_sheet = workbook.create_sheet('columns')
    help_sheet.append(['column', 'mandatory', 'content'])
    for column in COLUMNS:
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


def _write_rows_bulk(
    rows: list[CleanRow],
    result: ImportResult,
    progress: Progress | None,
    batch: int,
) -> None:
    pool = Pool()
    Party = pool.get('party.party')
    ServicePoint = pool.get('prepaid.service_point')
    Meter = pool.get('prepaid.meter')
    History = pool.get('prepaid.meter.state_history')
    Installation = pool.get('prepaid.meter.installation')
    Configuration = pool.get('prepaid.configuration')
    reason = gettext('prepaid_vending.msg_import_installed')
    party_ids: dict[tuple[str, str], int] = {}
    done = len(result.rejected)
    for chunk in _chunks(rows, batch):
        new_parties: list[dict[str, Any]] = []
        owners: list[CleanRow] = []
        pending: set[tuple[str, str]] = set()
        for row in chunk:
            if row.party_id or (
                row.party_key
                and (row.party_key in party_ids or row.party_key in pending)
            ):
                continue
            if row.party_key:
                pending.add(row.party_key)
            new_parties.append(dict(row.party))
            owners.append(row)
        _number_parties(new_parties)
        new_ids = bulk_create(Party, new_parties)
        for row, party_id in zip(owners, new_ids):
            if row.party_key:
                party_ids[row.party_key] = party_id
            else:
                row.party_id = party_id
        for row in chunk:
            if row.party_id is None:
                row.party_id = party_ids[row.party_key]
        point_codes = _sequence_values(
            Configuration(1).service_point_sequence, len(chunk)
        )
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
        done += len(chunk)
        if progress:
            progress(result.total, done)


# ---------------------------------------------------------------------------
# Tryton models


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


class ImportJob(ModelSQL, ModelView):
    "Import of a workbook of customers, service points and meters"

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
                cls.write(
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
                    cls.write([cls(job_id)], values)
            else:
                cls.write([cls(job_id)], values)

        header, rows = read_workbook(self.file)
        update(
            state='running',
            started_at=dt.datetime.now(),
            total_rows=len(rows),
            validated_rows=0,
            processed_rows=0,
        )

        def progress(validated: int, processed: int) -> None:
            update(validated_rows=validated, processed_rows=processed)

        result = import_rows(header, rows, mode=self.mode, progress=progress)
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
        cls.write([cls(job_id)], values)


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
        return {
            'mode': 'all',
            'template': template_workbook(),
            'template_name': 'prepaid-import-template.xlsx',
        }

    def transition_import_(self):
        pool = Pool()
        Job = pool.get('prepaid.import.job')
        Configuration = pool.get('prepaid.configuration')
        threshold = Configuration(1).import_queue_threshold or 0
        data = bytes(self.start.file)
        header, rows = read_workbook(data)
        check_header(header)
        job = Job(
            filename=self.start.filename or 'import.xlsx',
            file=data,
            mode=self.start.mode,
            total_rows=len(rows),
        )
        job.save()
        self.result.job = job
        if threshold and len(rows) > threshold:
            Job.queue([job])
            job.message = gettext('prepaid_vending.msg_import_queued', rows=len(rows))
            job.save()
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
