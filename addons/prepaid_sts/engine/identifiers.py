"""Meter and key identifiers of IEC 62055-41: PAN, PANBlock, ControlBlock, codes.

Bit layouts follow docs/sts.md section 4.1.
"""

from __future__ import annotations

from .errors import PanError, ParameterError

#: Base-date codes and the date (00:00 UTC) each one stands for.
BASE_DATES: dict[str, tuple[int, int, int]] = {
    "93": (1993, 1, 1),
    "14": (2014, 1, 1),
    "35": (2035, 1, 1),
}

#: Key types: 0 DITK (initialisation), 1 DDTK (default), 2 DUTK (unique),
#: 3 DCTK (common).
KEY_TYPES = (0, 1, 2, 3)


def luhn_check_digit(digits: str) -> str:
    """Return the Luhn check digit for ``digits`` (decimal string)."""
    total = 0
    # Walk from the right: the digit next to the (future) check digit is doubled.
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def make_pan(iin: str, drn: str) -> str:
    """Build an 18-digit meter PAN from an IIN and a DRN/IAIN, adding the check digit.

    The IIN is 6 digits (e.g. ``600727``) with an 11-digit DRN, or ``0000`` with a
    13-digit IAIN.
    """
    if not (iin.isascii() and iin.isdigit() and drn.isascii() and drn.isdigit()):
        raise PanError(f"IIN {iin!r} and DRN {drn!r} must be decimal digits")
    if len(iin) == 6:
        if len(drn) != 11:
            raise PanError(f"a 6-digit IIN needs an 11-digit DRN, got {len(drn)}")
    elif iin == "0000":
        if len(drn) != 13:
            raise PanError(f"IIN 0000 needs a 13-digit IAIN, got {len(drn)}")
    else:
        raise PanError(f"IIN must be 6 digits or '0000', got {iin!r}")
    body = iin + drn
    return body + luhn_check_digit(body)


def validate_pan(pan: str) -> str:
    """Check an 18-digit meter PAN (format and Luhn digit); return it."""
    if not isinstance(pan, str) or len(pan) != 18 or not pan.isascii():
        raise PanError(f"meter PAN must be 18 decimal digits, got {pan!r}")
    if not pan.isdigit():
        raise PanError(f"meter PAN must be 18 decimal digits, got {pan!r}")
    expected = luhn_check_digit(pan[:17])
    if pan[17] != expected:
        raise PanError(
            f"meter PAN {pan} has a wrong check digit {pan[17]} (expected {expected})"
        )
    return pan


def pan_block(pan: str, key_type: int | None = None) -> str:
    """Return the 16-nibble PANBlock: PAN digits 2-17 (first and check digit dropped).

    For key type 3 (common key) the DRN/IAIN part is all zeros.
    """
    validate_pan(pan)
    block = pan[1:17]
    if key_type == 3:
        # Keep the IIN digits that are in the block, zero the account number.
        iin_len = 3 if pan.startswith("0000") else 5
        block = block[:iin_len] + "0" * (16 - iin_len)
    return block


def validate_key_type(key_type: int) -> int:
    if not isinstance(key_type, int) or key_type not in KEY_TYPES:
        raise ParameterError(f"key type must be 0, 1, 2 or 3, got {key_type!r}")
    return key_type


def validate_sgc(sgc: str) -> str:
    """A supply group code is 6 decimal digits."""
    if not isinstance(sgc, str) or len(sgc) != 6 or not sgc.isascii():
        raise ParameterError(f"SGC must be 6 decimal digits, got {sgc!r}")
    if not sgc.isdigit():
        raise ParameterError(f"SGC must be 6 decimal digits, got {sgc!r}")
    return sgc


def validate_tariff_index(ti: str) -> str:
    """A tariff index is 2 decimal digits."""
    if not isinstance(ti, str) or len(ti) != 2 or not (ti.isascii() and ti.isdigit()):
        raise ParameterError(f"tariff index must be 2 decimal digits, got {ti!r}")
    return ti


def validate_krn(krn: int) -> int:
    """A key revision number is 1-9."""
    if not isinstance(krn, int) or isinstance(krn, bool) or not 1 <= krn <= 9:
        raise ParameterError(f"KRN must be an integer 1-9, got {krn!r}")
    return krn


def validate_base_date(base_date: str) -> str:
    if base_date not in BASE_DATES:
        raise ParameterError(
            f"base date must be one of '93', '14', '35' (1993/2014/2035), "
            f"got {base_date!r}"
        )
    return base_date


def control_block(key_type: int, sgc: str, tariff_index: str, krn: int) -> str:
    """Return the 16-nibble ControlBlock ``KT || SGC || TI || KRN || FFFFFF``."""
    validate_key_type(key_type)
    validate_sgc(sgc)
    validate_tariff_index(tariff_index)
    validate_krn(krn)
    return f"{key_type}{sgc}{tariff_index}{krn}FFFFFF"
