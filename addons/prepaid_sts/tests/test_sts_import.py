"""The STS columns of the Excel import (issue 10): a keypad meter imported
with its STS parameters is sold to at once, and its token opens on the meter
(checked by decoding it with the meter's own decoder key)."""

from __future__ import annotations

import datetime as dt
import io
import unittest
from decimal import Decimal

import openpyxl
from trytond.modules.prepaid_sts.engine import decode_token, derive_decoder_key
from trytond.modules.prepaid_vending.excel_import import (
    import_rows,
    read_workbook,
    template_workbook,
)
from trytond.modules.prepaid_vending.tests.vend_fixtures import (
    open_session,
    with_vending,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction

from .tools import (
    VK_DKGA04,
    StsTestMixin,
    create_vending_key,
)

HEADER = [
    "customer_name", "national_id", "category", "street", "city",
    "transformer_code", "meter_serial", "meter_kind", "sts_pan", "sts_sgc",
    "sts_krn", "sts_tariff_index", "sts_base_date", "sts_ea",
]  # fmt: skip
# The meter number printed on the meter: DRN 12345678903 (IEC 62055-41
# 6.5.3.1 example) under IIN 600727, whose PAN the import completes.
DRN = "12345678903"
PAN = "600727123456789030"


def row(serial, national_id, **values):
    cells = {
        "customer_name": f"Customer {serial}",
        "national_id": national_id,
        "category": "DOM",
        "street": "3 Mopane Street",
        "city": "Polokwane",
        "transformer_code": "T1",
        "meter_serial": serial,
        "meter_kind": "sts_keypad",
        "sts_pan": DRN,
        "sts_sgc": "201457",
        "sts_krn": 1,
        "sts_tariff_index": "01",
        "sts_base_date": 14,  # a number cell: read as "14"
        "sts_ea": 7,  # a number cell that lost the leading zero of "07"
    }
    cells.update(values)
    return cells


def workbook(rows):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for cells in rows:
        sheet.append([cells.get(name) for name in HEADER])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


class StsImportTestCase(StsTestMixin, unittest.TestCase):
    @with_transaction()
    def test_imported_keypad_meter_sold_at_once(self):
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Vend = pool.get("prepaid.vend")
        with with_vending(kind="sts_keypad") as env:
            open_session(env)
            create_vending_key()
            header, rows = read_workbook(
                workbook(
                    [
                        row("KP-1", "8001015009087"),
                        row("KP-2", "8101015009082", sts_pan=None),
                        row("KP-3", "8201015009088", sts_sgc="999999"),
                        row("KP-4", "8301015009083", sts_pan="600727000000000001"),
                        row("KP-5", "8401015009089", sts_pan=600727000000000009),
                        row("KP-6", "8501015009084", sts_ea="09"),
                        # Without STS columns: imported uncommissioned.
                        row(
                            "KP-7",
                            "8601015009080",
                            **dict.fromkeys(HEADER[8:]),
                        ),
                    ]
                )
            )
            result = import_rows(header, rows, mode="valid", today=dt.date(2025, 1, 1))
            reasons = {r.number: r.reason for r in result.rejected}
            self.assertEqual(sorted(reasons), [3, 4, 5, 6, 7])
            self.assertIn("give also sts_pan", reasons[3])
            self.assertIn(
                "No active vending key of Dunder Mifflin for SGC 999999, KRN 1, "
                "key type 2, base date 14, EA 07",
                reasons[4],
            )
            self.assertIn("wrong check digit", reasons[5])
            self.assertIn("format the column as Text", reasons[6])
            self.assertIn('Column "sts_ea": "09" is not one of 07, 11', reasons[7])

            (meter,) = Meter.search([("serial", "=", "KP-1")])
            self.assertEqual(
                (meter.sts_pan, meter.sts_sgc, meter.sts_krn, meter.sts_ea),
                (PAN, "201457", 1, "07"),
            )
            self.assertTrue(meter.sts_commissioned)
            (bare,) = Meter.search([("serial", "=", "KP-7")])
            self.assertFalse(bare.sts_commissioned)

            vend = Vend.vend(meter, Decimal("100.00"), "cash", env.sales_point, "i1")
            (token,) = vend.tokens
            decoder_key = derive_decoder_key(
                bytes.fromhex(VK_DKGA04), "04", PAN, 2, "201457", "01", 1, "14", "07"
            )
            decoded = decode_token(token.token, decoder_key, "07")
            self.assertTrue(decoded.crc_ok)
            self.assertEqual(decoded.amount, token.units)
            self.assertGreater(token.units, 0)

    @with_transaction()
    def test_template_has_the_sts_columns(self):
        header, rows = read_workbook(template_workbook())
        self.assertEqual(
            header[-7:],
            ["sts_pan", "sts_sgc", "sts_krn", "sts_tariff_index", "sts_key_type",
             "sts_base_date", "sts_ea"],
        )  # fmt: skip
        book = openpyxl.load_workbook(io.BytesIO(template_workbook()))
        pan_cell = book.active.cell(row=2, column=header.index("sts_pan") + 1)
        # Text cells: a PAN as a number would lose its last digits.
        self.assertEqual(pan_cell.number_format, "@")
        self.assertEqual(pan_cell.value, "600727000000000009")
