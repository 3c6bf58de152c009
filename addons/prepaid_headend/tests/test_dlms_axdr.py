"""A-XDR helpers and the UTC date-time codec (no simulator needed)."""

import datetime as dt

import pytest
from trytond.modules.prepaid_headend.dlms import axdr

UTC = dt.UTC


def test_encode_datetime_utc_deviation_zero():
    # 2024-01-02 03:04:05 UTC, Tuesday (2); deviation 0, status 0.
    raw = axdr.encode_datetime(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert raw.hex() == "07e801020203040500" + "0000" + "00"
    assert axdr.decode_datetime(raw) == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_encode_datetime_converts_other_zones_to_utc():
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    raw = axdr.encode_datetime(dt.datetime(2024, 6, 1, 5, 30, tzinfo=ist))
    assert axdr.decode_datetime(raw) == dt.datetime(2024, 6, 1, 0, 0, tzinfo=UTC)


def test_naive_datetime_refused():
    with pytest.raises(ValueError, match="naive"):
        axdr.encode_datetime(dt.datetime(2024, 1, 1))


def test_decode_deviation_blue_book_convention():
    # Local 10:00 with deviation -60 (CET, UTC+1) is 09:00 UTC.
    dev = (-60).to_bytes(2, "big", signed=True)
    raw = bytes.fromhex("07e8010101" + "0a0000ff") + dev
    assert axdr.decode_datetime(raw + b"\x00") == dt.datetime(
        2024, 1, 1, 9, 0, tzinfo=UTC
    )
    unspecified = bytes.fromhex("07e8010101" + "0a0000ff" + "8000" + "00")
    assert axdr.decode_datetime(unspecified).hour == 10


def test_decode_datetime_errors():
    with pytest.raises(ValueError, match="12 bytes"):
        axdr.decode_datetime(b"\x00" * 5)
    assert axdr.decode_datetime(b"\xff" * 12) is None


def test_encoders():
    assert axdr.uint32(1000) == bytes.fromhex("06000003e8")
    assert axdr.int8(-1) == bytes.fromhex("0fff")
    assert axdr.octet_string(b"AB") == bytes.fromhex("09024142")
    assert axdr.structure([axdr.uint16(8), axdr.boolean(True)]) == bytes.fromhex(
        "0202120008" + "0301"
    )
    assert axdr.length(200) == bytes.fromhex("81c8")
    assert axdr.length(300) == bytes.fromhex("82012c")


def test_obis_round_trip_and_errors():
    assert axdr.obis_bytes("1-0:1.8.0.255") == bytes([1, 0, 1, 8, 0, 255])
    assert axdr.obis_str(bytes([0, 0, 1, 0, 0, 255])) == "0.0.1.0.0.255"
    with pytest.raises(ValueError):
        axdr.obis_bytes("1.0.1.8.0")
    with pytest.raises(ValueError):
        axdr.obis_bytes("1.0.x.8.0.255")


def test_parse_iso_defaults_to_utc():
    assert axdr.parse_iso("2024-01-01T00:00:00") == dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert axdr.parse_iso("2024-01-01T01:00:00+01:00").hour == 0
    assert axdr.parse_iso("2024-01-01T00:00:00Z").tzinfo == UTC
