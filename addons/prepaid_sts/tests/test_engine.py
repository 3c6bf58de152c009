"""Behaviour of the STS engine: round trips, tamper detection, failure paths."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trytond.modules.prepaid_sts import engine
from trytond.modules.prepaid_sts.engine import (
    AlgorithmError,
    AmountError,
    KeyLengthError,
    PanError,
    ParameterError,
    StsError,
    TablesError,
    TidRangeError,
    TokenFormatError,
    amounts,
    class1_token,
    credit_token,
    decode_token,
    derive_decoder_key,
    key_change_tokens,
    make_pan,
    tid_from_datetime,
    validate_pan,
)
from trytond.modules.prepaid_sts.engine.misty1 import Misty1
from trytond.modules.prepaid_sts.engine.sta import StaCipher, load_tables

PAN = "600727000000000009"
VK04 = bytes.fromhex("abababababababab949494949494949401234567")
VK02 = bytes.fromhex("abababababababab")
KEY07 = bytes.fromhex("87f3ecbb2e46b48f")
KEY11 = bytes.fromhex("929bd3a415c9420a05ec5ee9f3ce91c3")
KEYS = {"07": KEY07, "11": KEY11}
PROP = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

eas = st.sampled_from(["07", "11"])
tids = st.integers(0, 2**24 - 1)
rnds = st.integers(0, 15)
keys64 = st.binary(min_size=8, max_size=8)
keys128 = st.binary(min_size=16, max_size=16)


def _key_for(ea: str, data: st.DataObject) -> bytes:
    return data.draw(keys64 if ea == "07" else keys128)


def _not_accepted(token: str, key: bytes, ea: str, original) -> bool:
    """True when a tampered token is rejected: error, bad CRC or other content."""
    try:
        d = decode_token(token, key, ea)
    except StsError:
        return True
    same = (d.token_class, d.subclass, d.block) == (
        original.token_class,
        original.subclass,
        original.block,
    )
    return not (d.crc_ok and same)


# --- ciphers ---------------------------------------------------------------


@PROP
@given(key=keys64, block=st.integers(0, 2**64 - 1))
def test_sta_round_trip(key, block):
    cipher = StaCipher(key)
    assert cipher.decrypt(cipher.encrypt(block)) == block


@PROP
@given(key=keys128, block=st.integers(0, 2**64 - 1))
def test_misty1_round_trip(key, block):
    cipher = Misty1(key)
    assert cipher.decrypt(cipher.encrypt(block)) == block


# --- round trips per token class ------------------------------------------


@PROP
@given(
    ea=eas,
    subclass=st.integers(0, 3),
    tid=tids,
    rnd=rnds,
    tenths=st.integers(0, 18201624),
    data=st.data(),
)
def test_class0_units_round_trip(ea, subclass, tid, rnd, tenths, data):
    key = _key_for(ea, data)
    amount = Decimal(tenths).scaleb(-1)
    token = credit_token(key, ea, 0, subclass, amount=amount, tid=tid, rnd=rnd)
    assert len(token) == 20 and token.isdigit()
    d = decode_token(token, key, ea)
    assert (d.token_class, d.subclass, d.tid, d.crc_ok) == (0, subclass, tid, True)
    assert d.fields["rnd"] == rnd
    # Rounded up to the next encodable value, never below the amount.
    assert d.amount >= amount
    assert amounts.encode_field(int(d.amount * 10)) == d.value16
    wrong = bytes(b ^ 0x5A for b in key)
    assert _not_accepted(token, wrong, ea, d)


@PROP
@given(
    ea=eas,
    subclass=st.integers(4, 7),
    tid=tids,
    units=st.integers(-(10**12), 10**12),
    data=st.data(),
)
def test_class0_currency_round_trip(ea, subclass, tid, units, data):
    key = _key_for(ea, data)
    amount = Decimal(units).scaleb(-5)
    token = credit_token(key, ea, 0, subclass, amount=amount, tid=tid)
    d = decode_token(token, key, ea)
    assert (d.token_class, d.subclass, d.tid, d.crc_ok) == (0, subclass, tid, True)
    # Positive rounds up, negative rounds the magnitude down: never below.
    assert d.amount >= amount
    assert (d.amount < 0) == (units < 0) or d.amount == 0
    # Relative rounding error of a 14-bit mantissa is below 1e-3.
    assert abs(d.amount - amount) <= max(abs(amount) / 1000, Decimal("0.00001"))


@PROP
@given(ea=eas, subclass=st.sampled_from([0, 1, 2, 5, 6, 7]), tid=tids, rnd=rnds,
       value16=st.integers(0, 0xFFFF), data=st.data())  # fmt: skip
def test_class2_round_trip(ea, subclass, tid, rnd, value16, data):
    key = _key_for(ea, data)
    token = credit_token(key, ea, 2, subclass, value16=value16, tid=tid, rnd=rnd)
    d = decode_token(token, key, ea)
    assert (d.token_class, d.subclass, d.tid, d.value16, d.crc_ok) == (
        2,
        subclass,
        tid,
        value16,
        True,
    )
    if subclass in (0, 6):
        assert d.amount == amounts.decode_field(value16)  # watts
    else:
        assert d.amount is None


@PROP
@given(subclass=st.integers(0, 1), data=st.data())
def test_class1_round_trip(subclass, data):
    bits, mbits = (36, 8) if subclass == 0 else (28, 16)
    control = data.draw(st.integers(0, 2**bits - 1))
    mfr = data.draw(st.integers(0, 2**mbits - 1))
    token = class1_token(subclass, control, mfr)
    d = decode_token(token, None)
    assert (d.token_class, d.subclass, d.crc_ok) == (1, subclass, True)
    assert int(d.fields["control"], 16) == control
    assert d.fields["mfr_code"] == mfr


@PROP
@given(
    ea=eas,
    new_wide=st.booleans(),
    three=st.booleans(),
    krn=st.integers(1, 9),
    kt=st.integers(0, 3),
    ti=st.integers(0, 99),
    sgc=st.integers(0, 999999),
    ken=st.integers(0, 255),
    ro=st.booleans(),
    data=st.data(),
)
def test_key_change_round_trip(ea, new_wide, three, krn, kt, ti, sgc, ken, ro, data):
    old = _key_for(ea, data)
    new = data.draw(keys128 if new_wide else keys64)
    sections = 4 if new_wide else (3 if three else 2)
    tokens = key_change_tokens(
        old, ea, new, krn, kt, f"{ti:02d}", f"{sgc:06d}", ken, ro, sections
    )
    assert len(tokens) == sections
    dec = [decode_token(t, old, ea) for t in tokens]
    assert all(d.crc_ok and d.token_class == 2 for d in dec)
    assert [d.subclass for d in dec] == [3, 4, 8, 9][:sections]
    first, second = dec[0].fields, dec[1].fields
    assert (first["kenho"] << 4) | second["kenlo"] == ken
    assert (first["krn"], first["kt"], first["ro"]) == (krn, kt, int(ro))
    assert first["res"] == (1 if sections == 3 else 0)
    assert second["ti"] == ti
    nk = int.from_bytes(new, "big")
    if new_wide:
        rebuilt = (
            (int(first["nkho"], 16) << 96)
            | (int(dec[2].fields["key_bits"], 16) << 64)
            | (int(dec[3].fields["key_bits"], 16) << 32)
            | int(second["nklo"], 16)
        )
        sgc_back = (int(dec[3].fields["sgc_bits"], 16) << 12) | int(
            dec[2].fields["sgc_bits"], 16
        )
        assert sgc_back == sgc
    else:
        rebuilt = (int(first["nkho"], 16) << 32) | int(second["nklo"], 16)
        if three:
            assert (dec[2].block >> 36) & 0xFFFFFF == sgc
    assert rebuilt == nk


# --- tamper detection -------------------------------------------------------


def _single_digit_changes(token: str):
    for pos in range(20):
        for delta in range(1, 10):
            digit = (int(token[pos]) + delta) % 10
            yield token[:pos] + str(digit) + token[pos + 1 :]


@pytest.mark.parametrize("ea", ["07", "11"])
@pytest.mark.parametrize("subclass, amount", [(0, "12.5"), (4, "-3.25")])
def test_every_single_digit_change_detected(ea, subclass, amount):
    """All 180 one-digit typing errors of a token are rejected (exhaustive)."""
    key = KEYS[ea]
    token = credit_token(key, ea, 0, subclass, amount=Decimal(amount), tid=4242)
    original = decode_token(token, key, ea)
    for tampered in _single_digit_changes(token):
        assert _not_accepted(tampered, key, ea, original), tampered


def test_every_single_digit_change_detected_class1():
    token = class1_token(0, 0xFFFFFFFFF, 7)
    original = decode_token(token, None)
    for tampered in _single_digit_changes(token):
        assert _not_accepted(tampered, None, "07", original), tampered


def test_wrong_key_detected():
    token = credit_token(KEY07, "07", 0, 0, amount=Decimal("10"), tid=1000, rnd=1)
    other = derive_decoder_key(VK04, "04", PAN, 2, "201457", "02", 1, "14", "07")
    d = decode_token(token, other, "07")
    assert not d.crc_ok
    assert d.amount is None  # no amount is reported from an unverified block


# --- identifiers, amounts, TID ------------------------------------------------


def test_make_pan_and_luhn():
    assert make_pan("600727", "00000000000") == PAN
    assert make_pan("0000", "0100000000008") == "000001000000000082"
    assert validate_pan(PAN) == PAN


@pytest.mark.parametrize(
    "pan, message",
    [
        ("600727000000000008", "wrong check digit 8 (expected 9)"),
        ("60072700000000000", "18 decimal digits"),
        ("60072700000000000A", "18 decimal digits"),
        ("６00727000000000009", "18 decimal digits"),
    ],
)
def test_bad_pan(pan, message):
    with pytest.raises(PanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        derive_decoder_key(VK04, "04", pan, 2, "201457", "01", 1, "14", "07")


def test_make_pan_errors():
    with pytest.raises(PanError, match="IIN must be 6 digits"):
        make_pan("60072", "000000000000")
    with pytest.raises(PanError, match="11-digit DRN"):
        make_pan("600727", "123")


def test_key_type_3_zeroes_drn():
    from trytond.modules.prepaid_sts.engine.identifiers import pan_block

    assert pan_block("600727123456789014", 3) == "0072700000000000"


@pytest.mark.parametrize(
    "args, error, message",
    [
        (dict(sgc="20145"), ParameterError, "SGC must be 6 decimal digits"),
        (dict(tariff_index="1"), ParameterError, "tariff index must be 2"),
        (dict(krn=0), ParameterError, "KRN must be an integer 1-9"),
        (dict(krn=10), ParameterError, "KRN must be an integer 1-9"),
        (dict(key_type=4), ParameterError, "key type must be 0, 1, 2 or 3"),
        (dict(base_date="00"), ParameterError, "base date must be one of"),
        (dict(ea="09"), AlgorithmError, "unknown encryption algorithm EA '09'"),
        (dict(dkga="03"), AlgorithmError, "unknown decoder key generation .* '03'"),
        (dict(dkga="02"), KeyLengthError, "DKGA02 needs a 64-bit vending key"),
        (dict(vending_key=VK02), KeyLengthError, "DKGA04 needs a 160-bit"),
        (dict(dkga="02", vending_key=VK02, ea="11"), AlgorithmError, "EA11 needs"),
    ],
)
def test_derivation_errors(args, error, message):
    params = dict(
        vending_key=VK04,
        dkga="04",
        pan=PAN,
        key_type=2,
        sgc="201457",
        tariff_index="01",
        krn=1,
        base_date="14",
        ea="07",
    )
    params.update(args)
    with pytest.raises(error, match=message):
        derive_decoder_key(**params)


def test_dkga02_and_dkga04_lengths():
    assert (
        len(derive_decoder_key(VK02, "02", PAN, 2, "123456", "01", 1, "93", "07")) == 8
    )
    assert (
        len(derive_decoder_key(VK04, "04", PAN, 2, "201457", "01", 1, "14", "11")) == 16
    )


def test_amount_rounding_and_limits():
    # 16385 tenths is not encodable: round up to 16394 (docs/sts.md section 4.5).
    token = credit_token(KEY07, "07", 0, 0, amount=Decimal("1638.5"), tid=1)
    assert decode_token(token, KEY07).amount == Decimal("1639.4")
    # Sub-tenth amounts round up too: the customer never gets less.
    token = credit_token(KEY07, "07", 0, 0, amount=Decimal("0.01"), tid=1)
    assert decode_token(token, KEY07).amount == Decimal("0.1")
    # The largest encodable amount is accepted, one tenth more is refused.
    credit_token(KEY07, "07", 0, 0, amount=Decimal("1820162.4"), tid=1)
    with pytest.raises(AmountError, match="too large for a token"):
        credit_token(KEY07, "07", 0, 0, amount=Decimal("1820162.5"), tid=1)
    with pytest.raises(AmountError, match="must not be negative"):
        credit_token(KEY07, "07", 0, 1, amount=Decimal("-1"), tid=1)
    with pytest.raises(AmountError, match="not a decimal number"):
        credit_token(KEY07, "07", 0, 0, amount="ten", tid=1)
    with pytest.raises(AmountError, match="not float"):
        credit_token(KEY07, "07", 0, 0, amount=1.5, tid=1)
    with pytest.raises(AmountError, match="too large"):
        credit_token(KEY07, "07", 0, 4, amount=Decimal("1e40"), tid=1)
    with pytest.raises(AmountError, match="power limit .* too large"):
        credit_token(KEY07, "07", 2, 0, amount=Decimal("18201625"), tid=1)
    with pytest.raises(AmountError, match="carries no amount"):
        credit_token(KEY07, "07", 2, 1, amount=Decimal("1"), tid=1)


def test_negative_currency_rounds_magnitude_down():
    token = credit_token(KEY07, "07", 0, 4, amount=Decimal("-1638.5"), tid=5)
    d = decode_token(token, KEY07)
    assert d.fields["s_and_e"] & 8
    assert Decimal("-1638.5") <= d.amount < 0


def test_tid_from_datetime():
    base = datetime(2014, 1, 1, tzinfo=UTC)
    assert tid_from_datetime(base, "14") == 0
    assert tid_from_datetime(base + timedelta(minutes=5, seconds=59), "14") == 5
    # Naive datetimes are UTC; aware ones are converted.
    assert tid_from_datetime(datetime(2014, 1, 1, 1, 0), "14") == 60
    plus3 = timezone(timedelta(hours=3))
    assert tid_from_datetime(datetime(2014, 1, 1, 4, 0, tzinfo=plus3), "14") == 60


def test_tid_out_of_range_messages():
    with pytest.raises(TidRangeError, match="newer base date .* key change"):
        tid_from_datetime(datetime(2024, 11, 24, 20, 16, tzinfo=UTC), "93")
    with pytest.raises(TidRangeError, match="before base date"):
        tid_from_datetime(datetime(2013, 12, 31, 23, 59, tzinfo=UTC), "14")
    with pytest.raises(TidRangeError, match="24-bit range"):
        credit_token(KEY07, "07", 0, 0, amount=1, tid=2**24)
    with pytest.raises(ParameterError, match="give tid, or issued_at"):
        credit_token(KEY07, "07", 0, 0, amount=1)
    with pytest.raises(TidRangeError, match="newer base date"):
        credit_token(KEY07, "07", 0, 0, amount=1, base_date="93",
                     issued_at=datetime(2025, 1, 1, tzinfo=UTC))  # fmt: skip


def test_token_parameter_errors():
    with pytest.raises(KeyLengthError, match="EA07 needs a 64-bit decoder key"):
        credit_token(KEY11, "07", 0, 0, amount=1, tid=1)
    with pytest.raises(KeyLengthError, match="EA11 needs a 128-bit decoder key"):
        credit_token(KEY07, "11", 0, 0, amount=1, tid=1)
    with pytest.raises(AlgorithmError, match="unknown encryption algorithm"):
        credit_token(KEY07, "09", 0, 0, amount=1, tid=1)
    with pytest.raises(ParameterError, match="key change token"):
        credit_token(KEY07, "07", 2, 3, value16=1, tid=1)
    with pytest.raises(ParameterError, match="rnd must be an integer 0-15"):
        credit_token(KEY07, "07", 0, 0, amount=1, tid=1, rnd=16)
    with pytest.raises(ParameterError, match="rnd is not used by currency"):
        credit_token(KEY07, "07", 0, 4, amount=1, tid=1, rnd=3)
    with pytest.raises(ParameterError, match="exactly one of amount and value16"):
        credit_token(KEY07, "07", 0, 0, amount=1, value16=1, tid=1)
    with pytest.raises(ParameterError, match="class 0 subclass must be"):
        credit_token(KEY07, "07", 0, 8, value16=1, tid=1)
    with pytest.raises(ParameterError, match="class 1 subclass must be 0 or 1"):
        class1_token(2, 0, 0)
    with pytest.raises(ParameterError, match="manufacturer code"):
        class1_token(0, 0, 256)


def test_key_change_errors():
    with pytest.raises(ParameterError, match="128-bit new key needs 4"):
        key_change_tokens(KEY07, "07", KEY11, 2, 2, "01", "201457", sections=2)
    with pytest.raises(ParameterError, match="64-bit new key uses 2 or 3"):
        key_change_tokens(KEY07, "07", KEY07, 2, 2, "01", "201457", sections=4)
    with pytest.raises(KeyLengthError, match="new decoder key must be 64 bits"):
        key_change_tokens(KEY07, "07", b"\x00" * 5, 2, 2, "01", "201457")
    with pytest.raises(ParameterError, match="KEN must be an integer 0-255"):
        key_change_tokens(KEY07, "07", KEY07, 2, 2, "01", "201457", ken=256)
    with pytest.raises(ParameterError, match="SGC must be 6"):
        key_change_tokens(KEY07, "07", KEY07, 2, 2, "01", "2014")


def test_decode_errors():
    with pytest.raises(TokenFormatError, match="20 decimal digits"):
        decode_token("1234", KEY07)
    with pytest.raises(TokenFormatError, match="exceeds 66 bits"):
        decode_token("99999999999999999999", KEY07)
    with pytest.raises(ParameterError, match="decoder key is needed"):
        decode_token("70630503470028726114", None)
    # Spaces and dashes as printed on receipts are accepted.
    assert decode_token("7063 0503 4700 2872 6114", KEY07).crc_ok


def test_tables_configuration(tmp_path, monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"S1": list(range(16)), "S2": [0] * 16, "P": []}))
    with pytest.raises(TablesError, match="S2 must be a permutation"):
        load_tables(bad)
    with pytest.raises(TablesError, match="cannot read"):
        load_tables(tmp_path / "missing.json")
    # The environment variable selects the tables when no path is given.
    sample = engine.sta.SAMPLE_TABLES
    monkeypatch.setenv("PREPAID_STS_TABLES", str(sample))
    assert load_tables() is load_tables(sample)
    monkeypatch.delenv("PREPAID_STS_TABLES")
    assert load_tables() is load_tables(engine.sta.DEFAULT_TABLES)


def test_errors_are_value_errors():
    assert issubclass(StsError, ValueError)
    for exc in (AmountError, TidRangeError, AlgorithmError, PanError, KeyLengthError):
        assert issubclass(exc, StsError)
