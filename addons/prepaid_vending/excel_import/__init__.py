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
limit, is refused before any work (``sheet``).  The rows are read twice
from the file (validate, then write by batches) and never all held in memory.
Numbers in identifier columns from 1e15 up are refused (a spreadsheet keeps 15
digits: format such columns as Text), and so are texts longer than their
field and numbers not written in plain decimal notation.

The package, one concern a file:

- ``sheet``: reading an upload within limits, the rejects workbook;
- ``columns``: the column layout, the header check, the template;
- ``validation``: row checks against the database look-ups, and what rows
  share (duplicates);
- ``importer``: validate every row, then write by batches (``import_rows``);
- ``batches``: what both writers share (new customers once per ID, numbers
  drawn per batch);
- ``bulk_writer``: the set-based writer; ``orm_writer``: the ORM reference;
- ``job``: the import job (queued task, progress, outcome);
- ``wizard``: the back-office wizard.
"""

from .columns import COLUMN_NAMES, COLUMNS, Column, check_header, template_workbook
from .importer import ImportResult, import_rows
from .job import import_limits
from .sheet import ImportFileError, check_upload, count_rows, read_workbook

__all__ = [
    'COLUMNS',
    'COLUMN_NAMES',
    'Column',
    'ImportFileError',
    'ImportResult',
    'check_header',
    'check_upload',
    'count_rows',
    'import_limits',
    'import_rows',
    'read_workbook',
    'template_workbook',
]
