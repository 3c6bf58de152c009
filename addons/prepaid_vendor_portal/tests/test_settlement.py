"""Vendor settlement: the daily CSV (columns, trailer totals and HMAC,
commission per the vendor's mode, masked tokens, formula-safe text, the
business day) and the vendor statement, its figures, its XLSX and the text
of its PDF."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
from dataclasses import replace
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import openpyxl
import pypdf
import pytest
from trytond.modules.prepaid_vendor_portal.commission import Mode
from trytond.modules.prepaid_vendor_portal.money import format_amount, quantum
from trytond.modules.prepaid_vendor_portal.settlement import (
    COLUMNS,
    NO_ACTIVITY,
    LineKind,
    SettlementFileError,
    SettlementTx,
    StatementLine,
    TxKind,
    build_statement,
    daily_file,
    file_name,
    read_daily_file,
    statement_pdf,
    statement_xlsx,
)

SAST = ZoneInfo("Africa/Johannesburg")
DAY = dt.date(2026, 3, 5)
KEY = bytes(range(32))  # the vendor's settlement key
OTHER_KEY = bytes(range(1, 33))


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SAST)


TXS = [
    SettlementTx(local(2026, 3, 5, 8, 15), TxKind.SALE, "T-0001", "R0001",
                 D("100.00"), vat=D("13.04"), kwh=D("45.30"), commission=D("2.50"),
                 msg_id="20260305081500:1", meter="01234567897",
                 token="1234 5678 9012 3456 7890", operator="alice"),
    SettlementTx(local(2026, 3, 5, 9, 0), TxKind.FBE, "T-0002", "R0002", D("0.00"),
                 kwh=D("50.00"), commission=D("1.50"), meter="01234567898"),
    # The reversal (today) of a remote credit sold yesterday: negative.
    SettlementTx(local(2026, 3, 5, 9, 30), TxKind.REVERSAL, "T-0001", "R0003",
                 D("-40.00"), vat=D("-5.22"), kwh=D("-18.10"), commission=D("-1.00"),
                 msg_id="20260304170000:9"),
    SettlementTx(local(2026, 3, 5, 23, 59, 59), TxKind.PAY_ACCOUNT,
                 "=HYPERLINK(\"http://x\")", "R0004", D("250.00"),
                 commission=D("5.00"), operator="@bob"),
]  # fmt: skip


# ----------------------------------------------------------------- daily
def daily(txs=TXS, mode=Mode.AT_SALE, **kw) -> bytes:
    kw = {"timezone": SAST, "currency": "ZAR", "commission_mode": mode, "key": KEY,
          **kw}  # fmt: skip
    return daily_file(kw.pop("vendor", "V"), DAY, txs, **kw)


def test_daily_file_columns_rows_and_trailer():
    data = daily(reversed(TXS), vendor="BANK-RETAIL")
    assert not data.startswith(b"\xef\xbb\xbf")
    lines = data.decode().split("\r\n")
    assert lines[0] == ",".join(COLUMNS)
    assert lines[-1] == ""  # ends with CRLF
    assert lines[1] == (
        "D,BANK-RETAIL,2026-03-05,1,2026-03-05T08:15:00+02:00,sale,T-0001,alice,"
        "20260305081500:1,R0001,01234567897,****************7890,100.00,13.04,"
        "45.30,2.50,97.50,ZAR"
    )
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert [row[3] for row in rows[1:5]] == ["1", "2", "3", "4"]  # time order
    reversal = dict(zip(COLUMNS, rows[3]))
    assert (reversal["type"], reversal["amount"], reversal["net"]) == (
        "reversal", "-40.00", "-39.00")  # fmt: skip
    last = dict(zip(COLUMNS, rows[4]))
    # Text a spreadsheet would run as a formula is made inert.
    assert last["terminal"] == "'=HYPERLINK(\"http://x\")"
    assert last["operator"] == "'@bob"
    # Trailer: 4 records; amount 100 + 0 - 40 + 250 = 310.00; VAT 13.04 -
    # 5.22 = 7.82; kWh 45.30 + 50 - 18.10 = 77.20; commission 2.50 + 1.50 -
    # 1.00 + 5.00 = 8.00; net 310 - 8 = 302.00.
    assert rows[5][:11] == ["T", "BANK-RETAIL", "2026-03-05", "4", "310.00", "7.82",
                            "77.20", "8.00", "302.00", "ZAR", "at_sale"]  # fmt: skip
    parsed, trailer = read_daily_file(data, KEY)
    assert len(parsed) == trailer.count == 4
    assert (trailer.net, trailer.commission_mode) == (D("302.00"), Mode.AT_SALE)
    assert file_name("BANK RETAIL/../x", DAY) == "settlement_BANK-RETAIL-x_20260305.csv"


def test_the_trailer_holds_an_hmac_anyone_with_the_key_can_check():
    # What a vendor checks with its own tools: HMAC-SHA256 (RFC 2104) of
    # every byte before the last cell, under its key.
    data = daily()
    signed, _, mac = data.removesuffix(b"\r\n").rpartition(b",")
    expected = hmac.new(KEY, signed + b",", hashlib.sha256).hexdigest()
    assert mac.decode() == expected == read_daily_file(data, KEY)[1].hmac_sha256


def test_daily_file_checks_catch_tampering_and_the_wrong_key():
    data = daily()
    lines = data.split(b"\r\n")
    altered = [
        data.replace(b"100.00", b"190.00", 1),
        b"\r\n".join(lines[:2] + lines[3:]),  # a record dropped
        data.rsplit(b"T,", 1)[0],  # the trailer cut
        # Altered and every digest recomputed, as SHA-256 alone would allow:
        # a monthly vendor's file passed as deducting its commission.
        _resigned(data.replace(b",at_sale,", b",monthly,"), hashlib.sha256),
    ]
    for bad in altered:
        with pytest.raises(SettlementFileError, match="authentication failed"):
            read_daily_file(bad, KEY)
    with pytest.raises(SettlementFileError, match="authentication failed"):
        read_daily_file(data, OTHER_KEY)
    # Signed with the right key but not adding up: still refused.
    forged = _resigned(data.replace(b",302.00,", b",303.00,"), KEY)
    with pytest.raises(SettlementFileError, match="net column does not add up"):
        read_daily_file(forged, KEY)


def _resigned(data: bytes, key_or_hash) -> bytes:
    "data with its last cell replaced by a digest of the rest"
    signed, comma, _ = data.removesuffix(b"\r\n").rpartition(b",")
    if isinstance(key_or_hash, bytes):
        digest = hmac.new(key_or_hash, signed + comma, hashlib.sha256).hexdigest()
    else:
        digest = key_or_hash(signed + comma).hexdigest()
    return signed + comma + digest.encode() + b"\r\n"


@pytest.mark.parametrize("key", [b"", b"short key", "0" * 64])
def test_a_settlement_key_must_be_32_bytes(key):
    with pytest.raises(ValueError, match="at least 32 bytes"):
        daily(key=key)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        read_daily_file(daily(), key)


def test_a_monthly_vendors_daily_file_carries_no_commission():
    # Its commission is settled with the month (caps, volume tiers): each
    # line's net is what it paid; a line with a commission is refused.
    free = [replace(tx, commission=D(0)) for tx in TXS]
    data = daily(free, Mode.MONTHLY)
    rows, trailer = read_daily_file(data, KEY)
    assert all(row["commission"] == "0.00" for row in rows)
    assert [row["net"] for row in rows] == [row["amount"] for row in rows]
    assert (trailer.commission, trailer.net, trailer.commission_mode) == (
        D(0), D("310.00"), Mode.MONTHLY)  # fmt: skip
    with pytest.raises(ValueError, match="settled with the month"):
        daily(TXS, Mode.MONTHLY)


def test_empty_day_still_has_header_and_trailer():
    rows, trailer = read_daily_file(daily([]), KEY)
    assert (rows, trailer.count, trailer.amount) == ([], 0, D(0))


def test_amounts_in_files_have_the_currency_digits_and_never_a_minus_zero():
    # The tariff calculator's rounding, shared with the vendor cores.
    assert format_amount(D("-0.004")) == "0.00"
    assert format_amount(D("1234.565")) == "1234.57"
    assert format_amount(D("7.5"), quantum(0)) == "8"
    with pytest.raises(ValueError, match="currency digits must be 0 to 6"):
        quantum(7)


def test_a_batch_close_time_moves_the_business_day():
    # API terminals' daily batch closes at 22:00: the business day of 5 March
    # runs from 22:00 on the 5th to 22:00 on the 6th.
    late = SettlementTx(local(2026, 3, 6, 21, 59), TxKind.SALE, "T", "R9", D(10))
    daily([late], day_start=dt.time(22))
    with pytest.raises(ValueError, match="not in the business day"):
        daily([late])


@pytest.mark.parametrize(
    "tx, error",
    [
        (SettlementTx(local(2026, 3, 5, 9), TxKind.SALE, "T", "R", D("-1.00")),
         "must be positive"),
        (SettlementTx(local(2026, 3, 5, 9), TxKind.REVERSAL, "T", "R", D("1.00")),
         "must be negative"),
        (SettlementTx(local(2026, 3, 5, 9), TxKind.SALE, "T", "R", D("1.005")),
         "more digits"),
        (SettlementTx(dt.datetime(2026, 3, 5, 9), TxKind.SALE, "T", "R", D(1)),
         "time zone"),
        (SettlementTx(local(2026, 3, 5, 9), TxKind.SALE, "T", "R", 1.0), "Decimal"),
    ],
)  # fmt: skip
def test_daily_file_refuses_bad_transactions(tx, error):
    with pytest.raises((TypeError, ValueError), match=error):
        daily([tx])


# ------------------------------------------------------------- statement
LINES = [
    StatementLine(local(2026, 3, 2, 9), LineKind.TOP_UP, "DEP-0042",
                  "Bank deposit, slip 0042", D("5000.00")),
    StatementLine(local(2026, 3, 3, 10), LineKind.SALE, "R0001",
                  "Credit vend 01234567897", D("-100.00")),
    StatementLine(local(2026, 3, 3, 11), LineKind.SALE, "R0002",
                  "Credit vend 01234567898", D("-250.00")),
    StatementLine(local(2026, 3, 4, 9), LineKind.REVERSAL, "R0002-REV",
                  "Reversal of R0002 (remote credit not delivered)", D("250.00")),
    StatementLine(local(2026, 3, 31, 23), LineKind.COMMISSION, "COM-2026-03",
                  "Commission, March 2026", D("12.50")),
    StatementLine(local(2026, 3, 15, 8), LineKind.FEE, "FEE-0001",
                  "=cmd|' /C calc'!A0", D("-5.00")),
]  # fmt: skip


def statement(lines=LINES, **kw):
    values = dict(vendor_code="BANK-RETAIL", vendor_name="Bank Retail Ltd",
                  currency="ZAR", timezone=SAST, first_day=dt.date(2026, 3, 1),
                  last_day=dt.date(2026, 3, 31), opening_balance=D("1000.00"),
                  lines=lines, credit_line=D("2000.00"),
                  generated_at=dt.datetime(2026, 4, 1, 6, tzinfo=dt.UTC))  # fmt: skip
    values.update(kw)
    return build_statement(**values)


def test_statement_figures():
    # 1000.00 + 5000.00 - 100.00 - 250.00 + 250.00 - 5.00 + 12.50 = 5907.50;
    # available with the 2000.00 credit line: 7907.50.
    s = statement()
    assert s.closing_balance == D("5907.50")
    assert s.available == D("7907.50")
    assert (s.total(LineKind.SALE), s.total(LineKind.REVERSAL)) == (D(-350), D(250))
    # Lines in time order, each with the balance after it.
    running = [(line.reference, balance) for line, balance in s.running()]
    assert running[0] == ("DEP-0042", D("6000.00"))
    assert running[4] == ("FEE-0001", D("5895.00"))
    assert running[-1] == ("COM-2026-03", D("5907.50"))


@pytest.mark.parametrize(
    "line, error",
    [
        (StatementLine(local(2026, 3, 3), LineKind.SALE, "R", "", D("100.00")),
         "must be negative"),
        (StatementLine(local(2026, 3, 3), LineKind.TOP_UP, "D", "", D("-1.00")),
         "must be positive"),
        (StatementLine(local(2026, 3, 3), LineKind.ADJUSTMENT, "A", "", D(0)),
         "non-zero"),
        (StatementLine(local(2026, 4, 1), LineKind.FEE, "F", "", D("-1.00")),
         "outside the period"),
        (StatementLine(local(2026, 3, 3), LineKind.FEE, "F", "", D("-1.001")),
         "more digits"),
    ],
)  # fmt: skip
def test_statement_refuses_bad_lines(line, error):
    with pytest.raises(ValueError, match=error):
        statement([line])


def test_statement_xlsx():
    book = openpyxl.load_workbook(io.BytesIO(statement_xlsx(statement())))
    sheet = book["Statement"]
    cells = {row[0]: row[4] for row in sheet.iter_rows(min_row=5, max_row=14,
                                                     values_only=True)}  # fmt: skip
    assert cells["Opening balance"] == 1000
    assert cells["Sales"] == -350
    assert cells["Closing balance"] == D("5907.50")
    assert cells["Available"] == D("7907.50")
    table = list(sheet.iter_rows(min_row=16, values_only=True))
    assert table[0] == ("Date", "Type", "Reference", "Description", "Amount",
                        "Balance")  # fmt: skip
    assert table[1] == (dt.datetime(2026, 3, 2, 9), "Top-up", "DEP-0042",
                        "Bank deposit, slip 0042", 5000, 6000)  # fmt: skip
    fee = next(row for row in table if row[2] == "FEE-0001")
    assert fee[3] == "=cmd|' /C calc'!A0"  # kept as text
    fee_cell = next(c for c in sheet["D"] if c.value == fee[3])
    assert fee_cell.data_type == "s"
    assert table[-1][2] == "COM-2026-03"


def pdf_text(pdf: bytes) -> tuple[int, str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(p.extract_text() for p in reader.pages)


def test_statement_pdf_text():
    pages, text = pdf_text(statement_pdf(statement()))
    flat = " ".join(text.split())
    assert pages == 1
    for expected in (
        "Vendor statement: Bank Retail Ltd (BANK-RETAIL)",
        "2026-03-01 to 2026-03-31 (Africa/Johannesburg time), amounts in ZAR",
        "Generated 2026-04-01T08:00:00+02:00",
        "Opening balance 1000.00",
        "Top-ups 5000.00",
        "Sales -350.00",
        "Reversals 250.00",
        "Commission 12.50",
        "Closing balance 5907.50",
        "Available 7907.50",
        "2026-03-04 09:00:00 Reversal R0002-REV Reversal of R0002 (remote credit "
        "not delivered) 250.00 5900.00",
        "=cmd|' /C calc'!A0",
        "Page 1 of 1",
    ):
        assert expected in flat, expected


def test_long_statement_pages_and_empty_period():
    many = [
        StatementLine(local(2026, 3, 1 + n // 8, 8 + n % 8), LineKind.SALE,
                      f"R{n:04d}", f"Credit vend {n}", D("-1.00"))
        for n in range(100)
    ]  # fmt: skip
    pages, text = pdf_text(statement_pdf(statement(many)))
    assert pages >= 2
    assert f"Page {pages} of {pages}" in text
    assert "R0000" in text and "R0099" in text
    assert "Closing balance 900.00" in " ".join(text.split())
    pages, text = pdf_text(statement_pdf(statement([])))
    assert NO_ACTIVITY in text and "Closing balance 1000.00" in " ".join(text.split())
    book = openpyxl.load_workbook(io.BytesIO(statement_xlsx(statement([]))))
    assert NO_ACTIVITY in [c.value for c in book.active["A"]]
