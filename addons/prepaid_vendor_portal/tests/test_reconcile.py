"""Monthly reconciliation: a vendor file holding every class (and the tricky
cases: duplicates, the same token twice, amounts written differently, a byte
order mark, semicolons), the same file as XLSX, the hardening of the reader,
and totals that add up (hypothesis)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from dataclasses import replace
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trytond.modules.prepaid_vendor_portal.reconcile import (
    Class,
    FileError,
    Kind,
    UtilityTx,
    VendorRow,
    parse_amount,
    parse_msg_id,
    parse_time,
    read_vendor_file,
    reconcile,
)

from .bounded import run_bounded

SAST = ZoneInfo("Africa/Johannesburg")  # the utility's and the vendor's: UTC+2
MARCH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
AS_OF = dt.date(2026, 4, 10)
T1 = "12345678901234567890"
T2, T4, T10 = "2" * 20, "4" * 20, "7" * 20


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SAST)


UTILITY = [
    UtilityTx("V1", local(2026, 3, 5, 10), D("100.00"), "20260305100000:1", "R0001",
              (T1,)),
    UtilityTx("V2", local(2026, 3, 6, 9), D("50.00"), None, "R0002", (T2,)),
    UtilityTx("V3", local(2026, 3, 7, 9), D("1234.50"), "20260307090000:3", "R0003"),
    UtilityTx("V4", local(2026, 3, 8, 9), D("200.00"), None, "R0004", (T4,)),
    UtilityTx("V5", local(2026, 3, 9, 9), D("80.00"), "20260309090000:5", "R0005"),
    UtilityTx("V6", local(2026, 3, 11, 9), D("60.00"), None, "R0006",
              reversed_at=local(2026, 3, 11, 15)),
    UtilityTx("V7", local(2026, 3, 12, 9), D("70.00"), None, "R0007",
              reversed_at=local(2026, 3, 12, 10)),
    # Dated 1 April by the utility, 31 March 23:59:58 by the vendor's till.
    UtilityTx("V8", local(2026, 4, 1, 0, 0, 1), D("90.00"), "20260331235958:8",
              "R0008"),
    # Dated 28 February by the utility, 1 March by the vendor.
    UtilityTx("V9", local(2026, 2, 28, 23, 59, 59), D("25.00"), None, "R0009"),
    UtilityTx("V10", local(2026, 3, 13, 9), D("40.00"), None, "R0010", (T10,)),
    # In the margin (April): nothing of it is in the vendor's March file.
    UtilityTx("V11", local(2026, 4, 1, 10), D("15.00"), None, "R0011"),
]  # fmt: skip

# The vendor's March file: UTF-8 with a byte order mark, semicolons, comma
# decimal marks, amounts written four ways; line numbers in the comments.
VENDOR_CSV = (
    "\ufeffDate Time;Amount;MsgID;Receipt No;Token;Meter;Type\r\n"  # 1
    "2026-03-05 10:00:02;100,00;20260305100000:000001;;;01234567897;sale\r\n"  # 2 V1
    "06/03/2026 09:00:01;50;;r0002;;;\r\n"  # 3 V2 by receipt, '50', lower case
    "2026-03-07T09:00:00+02:00;1.234,50;20260307090000-3;;;;Sale\r\n"  # 4 V3
    "08/03/2026 09:00;220,00;;;" + T4 + ";;\r\n"  # 5 V4: 220 against 200
    "10/03/2026 12:00:00;30,00;20260310120000:99;;;;\r\n"  # 6 vendor only
    "11/03/2026 09:00:05;60,00;;R0006;;;\r\n"  # 7 V6 reversed by the utility only
    "12/03/2026 09:00:05;70,00;;R0007;;;\r\n"  # 8 V7 sale
    "12/03/2026 10:00:00;-70,00;;R0007;;;reversal\r\n"  # 9 V7 reversal
    "31/03/2026 23:59:58;90,00;20260331235958:8;;;;\r\n"  # 10 V8 cut-off
    "01/03/2026 00:00:03;25,00;;R0009;;;\r\n"  # 11 V9 cut-off
    "2026-03-05 10:00:02;100,00;20260305100000:1;;;;\r\n"  # 12 duplicate of 2
    # 13: the same token as line 2 under the last-response advice's msgID
    "05/03/2026 10:05:00;100,00;20260305100500:2;;1234 5678 9012 3456 7890;;\r\n"
    "13/03/2026 09:00:00;40,00;;;" + T10 + ";;\r\n"  # 14 V10 sale
    "14/03/2026 08:00:00;40,00;;R0010;;;refund\r\n"  # 15 V10 reversed by vendor only
    "01/04/2026 12:00:00;12,00;20260401120000:1;;;;\r\n"  # 16 April: outside
    "\r\n"  # 17 blank: skipped
    "15/03/2026 10:00:00;abc;;R0099;;;\r\n"  # 18 bad amount
    "15/03/2026 10:00:00;10,00;;;1234;;\r\n"  # 19 bad token
    "15/03/2026;10,00;;R0098;;;\r\n"  # 20 no time
    "15/03/2026 10:00:00;10,00;;R0097;;;maybe\r\n"  # 21 bad type
)  # fmt: skip


def read(data: bytes):
    return read_vendor_file(data, SAST)


def run(vendor_file):
    return reconcile(vendor_file.rows, UTILITY, *MARCH, utility_tz=SAST,
                     vendor_tz=SAST, as_of=AS_OF)  # fmt: skip


def by_reference(result):
    return {item.utility.reference: item for item in result.items if item.utility}


def test_every_class_from_a_semicolon_csv_with_bom():
    vendor_file = read(VENDOR_CSV.encode("utf-8"))
    assert vendor_file.file_format == "csv"
    assert vendor_file.decimal_mark == ","
    assert [(e.line, e.message.split(":")[0]) for e in vendor_file.errors] == [
        (18, "amount"), (19, "token"), (20, "date_time"), (21, "type")]  # fmt: skip
    assert "'abc' is not an amount" in str(vendor_file.errors[0])
    assert str(vendor_file.errors[2]) == (
        "line 20: date_time: '15/03/2026' has no time of day")  # fmt: skip
    result = run(vendor_file)
    items = by_reference(result)
    # V7: sold and reversed on both sides within the month: matched at 0.
    got = {cls: (t.count, t.vendor_amount, t.utility_amount)
           for cls, t in result.by_class.items()}  # fmt: skip
    assert got == {
        Class.MATCHED: (4, D("1384.50"), D("1384.50")),
        Class.AMOUNT_MISMATCH: (1, D("220.00"), D("200.00")),
        Class.UTILITY_ONLY: (1, D(0), D("80.00")),
        Class.VENDOR_ONLY: (1, D("30.00"), D(0)),
        Class.REVERSED: (2, D("60.00"), D("40.00")),
        Class.CUT_OFF: (2, D("115.00"), D("115.00")),
        Class.DUPLICATE: (2, D("200.00"), D(0)),
    }
    assert items["V1"].cls == Class.MATCHED and items["V1"].matched_by == "msg_id"
    assert items["V2"].matched_by == "receipt"
    assert items["V3"].vendor_amount == D("1234.50")
    assert (items["V7"].cls, items["V7"].vendor_lines) == (Class.MATCHED, (8, 9))
    assert (items["V4"].cls, items["V4"].difference) == (Class.AMOUNT_MISMATCH, 20)
    assert items["V5"].cls == Class.UTILITY_ONLY
    assert items["V6"].notes == ("reversed by the utility, not by the vendor",)
    assert items["V10"].notes == ("reversed by the vendor, not by the utility",)
    assert items["V8"].cls == items["V9"].cls == Class.CUT_OFF
    assert "vendor dated it 2026-03-31, the utility 2026-04-01" in items["V8"].notes
    assert "V11" not in items
    loose = {item.vendor_lines: item for item in result.items if not item.utility}
    assert loose[(6,)].cls == Class.VENDOR_ONLY
    assert loose[(12,)].notes == ("duplicate of line 2",)
    assert (loose[(13,)].cls, loose[(13,)].notes) == (
        Class.DUPLICATE, ("duplicate of line 2",))  # fmt: skip
    # Totals add up: per class and overall, and with what was left outside.
    total = result.total
    assert total.count == 13 == len(result.items)
    assert total.vendor_amount == sum(t.vendor_amount for t in result.by_class.values())
    assert total.difference == total.vendor_amount - total.utility_amount
    assert total.vendor_amount + result.vendor_outside.vendor_amount == sum(
        row.amount for row in vendor_file.rows)  # fmt: skip
    assert (result.vendor_outside.count, result.utility_outside.count) == (1, 1)
    assert result.utility_outside.utility_amount == D("15.00")
    # Open items and their age on 10 April.
    ages = {i.utility.reference if i.utility else i.vendor_lines: i.age_days
            for i in result.open_items}  # fmt: skip
    assert ages == {"V4": 33, "V5": 32, (6,): 31, "V6": 30, "V10": 28, "V8": 10,
                    "V9": 41, (12,): 36, (13,): 36}  # fmt: skip
    assert {k: v.count for k, v in result.ageing.items()} == {
        "0-7 days": 0, "8-30 days": 3, "31-60 days": 6, "61-90 days": 0,
        "over 90 days": 0}  # fmt: skip


def test_the_same_file_as_xlsx_with_native_cells():
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["date_time", "amount", "msg_id", "receipt", "token", "type"])
    sheet.append([dt.datetime(2026, 3, 5, 10, 0, 2), 100, "20260305100000:1"])
    sheet.append([dt.datetime(2026, 3, 6, 9), 50.0, None, "R0002"])
    sheet.append([dt.datetime(2026, 3, 8, 9), 220.0, None, None, T4])
    sheet.append([dt.datetime(2026, 3, 9, 9), 12.345, None, "R0005"])
    sheet.append([dt.datetime(2026, 3, 9, 9), 80, None, None, int(T1)])
    buffer = io.BytesIO()
    book.save(buffer)
    vendor_file = read(buffer.getvalue())
    assert vendor_file.file_format == "xlsx"
    assert [(e.line, e.message) for e in vendor_file.errors] == [
        (5, "amount: 12.345 has more than 2 decimals"),
        (6, "token: stored as a number, digits are lost: format the column as text"),
    ]
    items = by_reference(run(vendor_file))
    assert items["V1"].cls == items["V2"].cls == Class.MATCHED
    assert items["V4"].cls == Class.AMOUNT_MISMATCH
    assert items["V5"].cls == Class.UTILITY_ONLY


def test_vendor_reporting_in_utc_is_cut_off_at_midnight():
    # The vendor's system writes UTC: 22:30 UTC on 31 March is 00:30 on
    # 1 April in Johannesburg.  The vendor counts it in March (its own date).
    tx = UtilityTx("V", local(2026, 4, 1, 0, 30), D("10.00"), "20260401003000:1")
    row = VendorRow(2, dt.datetime(2026, 3, 31, 22, 30, tzinfo=dt.UTC), D("10.00"),
                    Kind.SALE, msg_id="20260401003000:1")  # fmt: skip
    result = reconcile([row], [tx], *MARCH, utility_tz=SAST,
                       vendor_tz=ZoneInfo("UTC"), as_of=AS_OF)  # fmt: skip
    assert [item.cls for item in result.items] == [Class.CUT_OFF]
    same_zone = reconcile([row], [tx], *MARCH, utility_tz=SAST, vendor_tz=SAST,
                          as_of=AS_OF)  # fmt: skip
    assert same_zone.items == () and same_zone.utility_outside.count == 1


def test_conflicting_keys_are_noted():
    row = VendorRow(2, local(2026, 3, 5, 10), D("100.00"), Kind.SALE,
                    msg_id="20260305100000:1", token=T2)  # fmt: skip
    items = by_reference(reconcile([row], UTILITY[:2], *MARCH, utility_tz=SAST,
                                   vendor_tz=SAST, as_of=AS_OF))  # fmt: skip
    assert items["V1"].matched_by == "msg_id"
    assert items["V1"].notes == ("its token is that of transaction V2",)


def test_a_row_whose_first_key_is_taken_stays_open_with_the_conflict_noted():
    # Line 3 repeats line 2's msgID, but its token is V2's: which one is
    # wrong is for a person to find out, so V2 is not matched by guess.
    rows = [
        VendorRow(2, local(2026, 3, 5, 10), D("100.00"), Kind.SALE,
                  msg_id="20260305100000:1"),
        VendorRow(3, local(2026, 3, 6, 9), D("50.00"), Kind.SALE,
                  msg_id="20260305100000:1", token=T2),
    ]  # fmt: skip
    result = reconcile(rows, UTILITY[:2], *MARCH, utility_tz=SAST, vendor_tz=SAST,
                       as_of=AS_OF)  # fmt: skip
    items = by_reference(result)
    assert (items["V1"].cls, items["V1"].vendor_lines) == (Class.MATCHED, (2,))
    assert (items["V2"].cls, items["V2"].vendor_lines) == (Class.UTILITY_ONLY, ())
    (loose,) = [item for item in result.items if not item.utility]
    assert (loose.cls, loose.vendor_lines, loose.is_open) == (
        Class.DUPLICATE, (3,), True)  # fmt: skip
    assert loose.notes == (
        "duplicate of line 2", "its token is that of transaction V2")  # fmt: skip


def test_msg_ids_compare_without_leading_zeros_on_both_sides():
    tx = UtilityTx("V", local(2026, 3, 5, 10), D("10.00"), "20260305100000:0001")
    row = VendorRow(2, local(2026, 3, 5, 10), D("10.00"), Kind.SALE,
                    msg_id=parse_msg_id("20260305100000-00001"))  # fmt: skip
    result = reconcile([row], [tx], *MARCH, utility_tz=SAST, vendor_tz=SAST,
                       as_of=AS_OF)  # fmt: skip
    assert [(i.cls, i.matched_by) for i in result.items] == [
        (Class.MATCHED, "msg_id")]  # fmt: skip


@pytest.mark.parametrize(
    "change, error",
    [
        ({"msg_id": "yesterday:1"}, "transaction V: 'yesterday:1' is not a msgID"),
        ({"at": dt.datetime(2026, 3, 5, 10)}, "transaction V: time without zone"),
        ({"reversed_at": dt.datetime(2026, 3, 5, 11)},
         "transaction V: reversal time without zone"),
    ],
)  # fmt: skip
def test_utility_transactions_are_checked(change, error):
    tx = UtilityTx("V", local(2026, 3, 5, 10), D("10.00"), "20260305100000:1")
    with pytest.raises(ValueError, match=re.escape(error)):
        reconcile([], [replace(tx, **change)], *MARCH, utility_tz=SAST,
                  vendor_tz=SAST, as_of=AS_OF)  # fmt: skip


# ----------------------------------------------------------------- values
@pytest.mark.parametrize(
    "text, mark, value",
    [
        ("1234.5", None, "1234.5"), ("1,234.50", None, "1234.50"),
        ("1.234,50", None, "1234.50"), ("1 234,50", None, "1234.50"),
        ("1\u00a0234,50", None, "1234.50"), ("1'234.50", None, "1234.50"),
        ("R 50.00", None, "50.00"), ("50.00 ZAR", None, "50.00"),
        ("(12.50)", None, "-12.50"), ("-12.50", None, "-12.50"),
        ("12.50-", None, "-12.50"), ("1,234", ".", "1234"), ("1,234", ",", "1.234"),
        ("1,234,567", None, "1234567"), ("0,500", None, "0.500"), ("50", None, "50"),
    ],
)  # fmt: skip
def test_amount_formats(text, mark, value):
    assert parse_amount(text, mark)[0] == D(value)


@pytest.mark.parametrize(
    "text, mark, error",
    [
        ("1,234", None, "ambiguous"), ("1e5", None, "not an amount"),
        ("NaN", None, "not an amount"), ("", None, "not an amount"),
        ("12,34,567.00", None, "not regular"), ("1.2.3", None, "not regular"),
        ("12.50", ",", "decimal mark"), ("99999999999999", None, "too large"),
    ],
)  # fmt: skip
def test_amounts_refused(text, mark, error):
    with pytest.raises(ValueError, match=error):
        parse_amount(text, mark)


def test_times_and_msg_ids():
    assert parse_time("20260331235958", SAST) == local(2026, 3, 31, 23, 59, 58)
    assert parse_time("2026/03/31 23:59", SAST) == local(2026, 3, 31, 23, 59)
    assert parse_time("31.03.2026 23:59:58.5", SAST) == local(
        2026, 3, 31, 23, 59, 58, 500000)  # fmt: skip
    assert parse_time("2026-03-31T21:59:58Z", SAST) == local(2026, 3, 31, 23, 59, 58)
    for bad in ("31/13/2026 10:00", "yesterday", "1899-01-01 10:00"):
        with pytest.raises(ValueError):
            parse_time(bad, SAST)
    assert parse_msg_id("20260331235958 000417") == "20260331235958:417"
    for bad in ("20260331235958000417", "abc:1", "2026:1"):
        with pytest.raises(ValueError, match="not a msgID"):
            parse_msg_id(bad)


# --------------------------------------------------------------- hardening
HEADER = "date_time,amount,receipt\n"


@pytest.mark.parametrize(
    "data, error",
    [
        (b"", "empty"),
        (b"x" * 2000, "larger than 1,000 bytes"),
        ((HEADER + "2026-03-05 10:00,1.00,R1\n" * 11).encode(), "more than 10 rows"),
        ("date_time,amount,receipt\n05/03/2026 10:00,1,\xe9t\xe9\n".encode("latin-1"),
         "not UTF-8"),
        (b"date_time,amount,receipt\n\x00\x00,1,R\n", "NUL"),
        (b"when,amount,receipt\n", "no date_time column"),
        (b"date_time,amount,meter\n", "msg_id, receipt or token"),
        (b"just some text", "no column separator"),
        (b"PK\x03\x04 truncated", "not a readable XLSX"),
        (b'date_time,amount,receipt\n"2026-03-05 10:00,1,R1\n', "unexpected end"),
    ],
)  # fmt: skip
def test_files_refused_whole(data, error):
    with pytest.raises(FileError, match=error):
        read_vendor_file(data, SAST, max_bytes=1000, max_rows=10)


def test_zip_bomb_refused_before_unpacking():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 5_000_000)
    assert len(buffer.getvalue()) < 20_000
    with pytest.raises(FileError, match="unpacks to more than"):
        read_vendor_file(buffer.getvalue(), SAST, max_unpacked=1_000_000)


def dimension_bomb() -> bytes:
    """A 5 KB workbook whose sheet declares the dimension A1:XFD60000 (16,384
    columns), with a row at 60,000 and a cell in column XFD: openpyxl's
    read-only mode, trusting the dimension, pads every row to 16,384 cells
    and fills the gap between rows: gigabytes."""
    book = openpyxl.Workbook()
    book.active.append(["date_time", "amount", "receipt"])
    book.active.append(["2026-03-05 10:00", "1.00", "R1"])
    book.active["XFD2"] = "far right"
    saved = io.BytesIO()
    book.save(saved)
    far_row = b"".join(
        b'<c r="%s60000" t="inlineStr"><is><t>%s</t></is></c>' % (column, text)
        for column, text in ((b"A", b"2026-03-06 10:00"), (b"B", b"2.00"),
                             (b"C", b"R2"))
    )  # fmt: skip
    bomb = io.BytesIO()
    with (
        zipfile.ZipFile(saved) as source,
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = re.sub(
                    rb'<dimension ref="[^"]*"/>',
                    b'<dimension ref="A1:XFD60000"/>',
                    content,
                )
                row = b'<row r="60000">' + far_row + b"</row>"
                content = content.replace(b"</sheetData>", row + b"</sheetData>")
            target.writestr(info, content)
    return bomb.getvalue()


READ_STDIN = """
import json, sys, zoneinfo
from trytond.modules.prepaid_vendor_portal import reconcile
try:
    f = reconcile.read_vendor_file(
        sys.stdin.buffer.read(), zoneinfo.ZoneInfo("UTC"), max_rows=int(sys.argv[1])
    )
except reconcile.FileError as error:
    print(json.dumps(str(error)))
else:
    print(json.dumps([[r.line, r.receipt, str(r.amount)] for r in f.rows]))
"""


def read_bounded(data: bytes, max_rows: int) -> object:
    "What read_vendor_file gives in a child process with 1 GiB at most"
    run = run_bounded("-c", READ_STDIN, str(max_rows), stdin=data)
    assert run.returncode == 0, run.stderr[-2000:].decode(errors="replace")
    return json.loads(run.stdout)


def test_xlsx_declaring_a_huge_dimension_is_read_in_bounded_memory():
    data = dimension_bomb()
    assert len(data) < 6_000
    rows = [[2, "R1", "1.00"], [60000, "R2", "2.00"]]
    assert read_bounded(data, 100_000) == rows
    # The gap up to row 60,000 counts: a sheet cannot hide its size in it.
    assert read_bounded(data, 50_000) == "more than 50,000 rows: split the file"


def test_utf16_with_bom_and_long_cells():
    text = HEADER + "2026-03-05 10:00,1.00," + "R" * 300 + "\n"
    vendor_file = read(text.encode("utf-16"))
    assert [str(e) for e in vendor_file.errors] == [
        "line 2: receipt: more than 200 characters"]  # fmt: skip


# ------------------------------------------------------------- properties
@st.composite
def month_of_sales(draw):
    count = draw(st.integers(0, 25))
    txs, rows = [], []
    for n in range(count):
        at = local(2026, 3, 1) + dt.timedelta(
            minutes=draw(st.integers(-120, 31 * 24 * 60 + 120)))  # fmt: skip
        amount = draw(st.decimals(D("0.01"), D("999.99"), places=2))
        reversed_at = at + dt.timedelta(hours=1) if draw(st.booleans()) else None
        txs.append(UtilityTx(f"V{n}", at, amount, f"20260301000000:{n}",
                             f"R{n}", reversed_at=reversed_at))  # fmt: skip
        for _copy in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
            vendor_amount = amount + draw(st.sampled_from([0, 0, 0, D("0.01")]))
            skew = dt.timedelta(seconds=draw(st.integers(-5, 5)))
            key = draw(st.sampled_from(["msg_id", "receipt"]))
            keys = {"msg_id": f"20260301000000:{n}"} if key == "msg_id" else {
                "receipt": f"R{n}"}  # fmt: skip
            rows.append(VendorRow(len(rows) + 2, at + skew, vendor_amount, Kind.SALE,
                                  **keys))  # fmt: skip
            if reversed_at and draw(st.booleans()):
                rows.append(VendorRow(len(rows) + 2, reversed_at, -vendor_amount,
                                      Kind.REVERSAL, **keys))  # fmt: skip
    for n in range(draw(st.integers(0, 5))):  # sales the utility never saw
        rows.append(
            VendorRow(
                len(rows) + 2,
                local(2026, 3, 10),
                D("5.00"),
                Kind.SALE,
                msg_id=f"20260310000000:{900 + n}",
            )
        )
    return txs, rows


@settings(max_examples=60, deadline=None)
@given(month_of_sales())
def test_property_totals_add_up(data):
    txs, rows = data
    result = reconcile(rows, txs, *MARCH, utility_tz=SAST, vendor_tz=SAST,
                       as_of=AS_OF)  # fmt: skip
    vendor_in = sum((row.amount for row in rows), D(0))
    # A reversal counts when the utility dates it within the month.
    utility_in = sum(
        (tx.amount for tx in txs
         if not (tx.reversed_at and tx.reversed_at.date() <= MARCH[1])),
        D(0))  # fmt: skip
    assert result.total.vendor_amount + result.vendor_outside.vendor_amount == vendor_in
    assert (result.total.utility_amount + result.utility_outside.utility_amount
            == utility_in)  # fmt: skip
    assert result.total.count == len(result.items)
    assert sum(t.count for t in result.by_class.values()) == len(result.items)
    assert sum(t.difference for t in result.by_class.values()) == (
        result.total.difference)  # fmt: skip
    open_items = result.open_items
    assert sum(t.count for t in result.ageing.values()) == len(open_items)
    # Every vendor row is in exactly one item or outside.
    lines = [line for item in result.items for line in item.vendor_lines]
    assert len(lines) == len(set(lines))
    assert len(lines) + result.vendor_outside.count == len(rows)
    # Each utility transaction appears at most once.
    refs = [item.utility.reference for item in result.items if item.utility]
    assert len(refs) == len(set(refs))
