"""The columns of the import workbook: their names, which are mandatory,
the header check and the template workbook (the layout is documented in the
package's docstring)."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from trytond.i18n import gettext
from trytond.pool import Pool

from ..inputs.numbers import shown
from .sheet import Cell, ImportFileError


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
