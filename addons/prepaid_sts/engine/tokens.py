"""Token data blocks, encryption, the 66-bit transposition and decoding.

Layouts follow docs/sts.md sections 4.4-4.10.  A data block is the 64-bit
value fed to the cipher; the 2 class bits are not in it but are part of the CRC
input and are transposed into the 66-bit token after encryption.
"""

from __future__ import annotations

import os
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from .amounts import (
    decode_currency,
    decode_field,
    encode_currency,
    encode_field,
)
from .crc import token_crc
from .errors import AmountError, KeyLengthError, ParameterError, TokenFormatError
from .identifiers import validate_krn, validate_sgc, validate_tariff_index
from .keys import EA_KEY_BYTES, check_decoder_key, check_ea
from .misty1 import Misty1
from .sta import StaCipher, load_tables
from .tid import check_tid

_M48 = (1 << 48) - 1
_M64 = (1 << 64) - 1
_CLASS_MASK = ~(3 << 27) & _M64
TOKEN_LIMIT = 1 << 66

#: Class 2 subclasses that share the ``SubClass || RND || TID || Value`` layout.
CLASS2_STANDARD = frozenset((0, 1, 2, 5, 6, 7))
#: Class 2 key change token subclasses, in entry order.
KCT_SUBCLASSES = (3, 4, 8, 9)

_CIPHERS: dict[tuple[str, bytes, str | None], StaCipher | Misty1] = {}
_CIPHER_CACHE_MAX = 4096


def get_cipher(
    ea: str, decoder_key: bytes, tables: str | os.PathLike[str] | None = None
) -> StaCipher | Misty1:
    """Return a (cached) cipher for a decoder key; ``tables`` only matters for EA07."""
    tkey = None if tables is None else os.fspath(tables)
    ck = (ea, decoder_key, tkey)
    cipher = _CIPHERS.get(ck)
    if cipher is None:
        check_decoder_key(decoder_key, ea)
        if ea == "07":
            cipher = StaCipher(decoder_key, load_tables(tables))
        else:
            cipher = Misty1(decoder_key)
        if len(_CIPHERS) >= _CIPHER_CACHE_MAX:
            _CIPHERS.clear()  # simple bound; schedules are cheap to rebuild
        _CIPHERS[ck] = cipher
    return cipher


# --- block assembly ---------------------------------------------------------


def standard_block(
    token_class: int, subclass: int, rnd: int, tid: int, value16: int, crc_c: bool
) -> int:
    """``SubClass(4) || RND(4) || TID(24) || Value(16) || CRC(16)`` with its CRC."""
    data50 = (
        (token_class << 48) | (subclass << 44) | (rnd << 40) | (tid << 16) | value16
    )
    return ((data50 & _M48) << 16) | token_crc(data50, crc_c)


def _with_crc(token_class: int, top48: int) -> int:
    return (top48 << 16) | token_crc((token_class << 48) | top48, False)


def render(token_class: int, ciphertext: int) -> str:
    """Transpose the class bits into the 64-bit ciphertext; return 20 digits."""
    value = (
        (((ciphertext >> 27) & 3) << 64)
        | (ciphertext & _CLASS_MASK)
        | (token_class << 27)
    )
    return f"{value:020d}"


def parse_token(token: str) -> tuple[int, int]:
    """Split a 20-digit token into (class, 64-bit block as transmitted)."""
    if not isinstance(token, str):
        raise TokenFormatError(f"token must be a string of 20 digits, got {token!r}")
    digits = token.replace(" ", "").replace("-", "")
    if len(digits) != 20 or not (digits.isascii() and digits.isdigit()):
        raise TokenFormatError(f"token must be 20 decimal digits, got {token!r}")
    value = int(digits)
    if value >= TOKEN_LIMIT:
        raise TokenFormatError(
            f"token {digits} is not a valid STS token (exceeds 66 bits)"
        )
    token_class = (value >> 27) & 3
    block = (value & _CLASS_MASK) | (((value >> 64) & 3) << 27)
    return token_class, block


# --- amounts ----------------------------------------------------------------


def to_decimal(amount: Decimal | int | str) -> Decimal:
    if isinstance(amount, float):
        raise AmountError("amount must be a Decimal, int or decimal string, not float")
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        raise AmountError(f"amount {amount!r} is not a decimal number") from None
    if not value.is_finite():
        raise AmountError(f"amount {amount!r} is not a finite number")
    return value


def amount_to_value16(
    token_class: int, subclass: int, amount: Decimal | int | str
) -> tuple[int, int | None]:
    """Encode an amount for a token; return (value16, S&E nibble or None).

    Class 0 subclasses 0-3: kWh, m3 or minutes, in 0.1 steps, rounded up.
    Class 0 subclasses 4-7: currency units (1e-5 steps); positive amounts round
    up, negative ones round their magnitude down.  Class 2 subclasses 0 and 6:
    watts, rounded up.
    """
    value = to_decimal(amount)
    if token_class == 0 and 0 <= subclass <= 3:
        tenths = int((value * 10).to_integral_value(ROUND_CEILING))
        if value < 0:
            raise AmountError(f"amount must not be negative, got {value}")
        if tenths > 18201624:
            raise AmountError(
                f"amount {value} is too large for a token: the maximum is "
                f"1820162.4 (units of 0.1)"
            )
        return encode_field(tenths, "amount in tenths"), None
    if token_class == 0 and 4 <= subclass <= 7:
        scaled = value.scaleb(5)
        # Credit rounds up; a negative amount rounds its magnitude down.
        if value < 0:
            units = -int((-scaled).to_integral_value(ROUND_FLOOR))
        else:
            units = int(scaled.to_integral_value(ROUND_CEILING))
        try:
            field, s_and_e = encode_currency(units)
        except AmountError:
            raise AmountError(
                f"currency amount {value} is too large for a token"
            ) from None
        return field, s_and_e
    if token_class == 2 and subclass in (0, 6):
        if value < 0:
            raise AmountError(f"power limit must not be negative, got {value} W")
        watts = int(value.to_integral_value(ROUND_CEILING))
        if watts > 18201624:
            raise AmountError(
                f"power limit {value} W is too large for a token: the maximum is "
                f"18201624 W"
            )
        return encode_field(watts, "power limit in watts"), None
    raise AmountError(
        f"class {token_class} subclass {subclass} carries no amount; give value16"
    )


def value16_to_amount(
    token_class: int, subclass: int, value16: int, rnd: int
) -> Decimal | None:
    """Decode the amount carried by a token, or None when it carries none."""
    if token_class == 0 and subclass <= 3:
        return Decimal(decode_field(value16)).scaleb(-1)
    if token_class == 0:
        return Decimal(decode_currency(value16, rnd)).scaleb(-5)
    if token_class == 2 and subclass in (0, 6):
        return Decimal(decode_field(value16))
    return None


# --- building ---------------------------------------------------------------


def _check_range(name: str, value: object, low: int, high: int) -> int:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not low <= value <= high
    ):
        raise ParameterError(f"{name} must be an integer {low}-{high}, got {value!r}")
    return value


def build_token(
    cipher: StaCipher | Misty1,
    token_class: int,
    subclass: int,
    tid: int,
    value16: int | None = None,
    amount: Decimal | int | str | None = None,
    rnd: int = 0,
) -> str:
    """Build one encrypted class 0 or class 2 (non key-change) token."""
    if token_class == 0:
        _check_range("class 0 subclass", subclass, 0, 7)
    elif token_class == 2:
        if subclass in KCT_SUBCLASSES:
            raise ParameterError(
                f"class 2 subclass {subclass} is a key change token: use "
                f"key_change_tokens()"
            )
        if subclass not in CLASS2_STANDARD:
            raise ParameterError(
                f"class 2 subclass must be one of 0,1,2,5,6,7 (3,4,8,9 are key "
                f"change tokens), got {subclass!r}"
            )
    elif token_class == 1:
        raise ParameterError("class 1 tokens are not encrypted: use class1_token()")
    else:
        raise ParameterError(f"token class must be 0, 1 or 2, got {token_class!r}")
    check_tid(tid)
    currency = token_class == 0 and subclass >= 4
    if (amount is None) == (value16 is None):
        raise ParameterError("give exactly one of amount and value16")
    s_and_e = None
    if amount is not None:
        value16, s_and_e = amount_to_value16(token_class, subclass, amount)
    else:
        _check_range("value16", value16, 0, 0xFFFF)
    if currency:
        # The RND nibble carries sign and exponent bits (S&E) for currency
        # tokens: derived from the amount, or given raw with value16.
        if s_and_e is not None:
            if rnd:
                raise ParameterError(
                    "rnd is not used by currency tokens (that nibble carries the "
                    "sign and exponent of the amount)"
                )
            nibble = s_and_e
        else:
            nibble = _check_range(
                "S&E nibble (rnd) of a raw currency value", rnd, 0, 15
            )
    else:
        nibble = _check_range("rnd", rnd, 0, 15)
    block = standard_block(token_class, subclass, nibble, tid, value16, currency)
    return render(token_class, cipher.encrypt(block))


def class1_token(subclass: int, control: int, mfr_code: int) -> str:
    """Class 1 test/display token (not encrypted).

    Subclass 0: 36-bit control and 8-bit manufacturer code; subclass 1: 28-bit
    control and 16-bit manufacturer code.
    """
    if subclass == 0:
        _check_range("control (36 bits)", control, 0, (1 << 36) - 1)
        _check_range("manufacturer code (2 digits, 8 bits)", mfr_code, 0, 255)
        top48 = (0 << 44) | (control << 8) | mfr_code
    elif subclass == 1:
        _check_range("control (28 bits)", control, 0, (1 << 28) - 1)
        _check_range("manufacturer code (4 digits, 16 bits)", mfr_code, 0, 0xFFFF)
        top48 = (1 << 44) | (control << 16) | mfr_code
    else:
        raise ParameterError(f"class 1 subclass must be 0 or 1, got {subclass!r}")
    return render(1, _with_crc(1, top48))


def key_change_blocks(
    new_decoder_key: bytes,
    new_krn: int,
    new_key_type: int,
    new_tariff_index: str,
    new_sgc: str,
    ken: int = 255,
    rollover: bool = False,
    sections: int | None = None,
) -> list[int]:
    """Plaintext blocks of a key change set (1st, 2nd[, 3rd[, 4th]] sections).

    64-bit new key: 2 sections, or 3 (STA 3-KCT variant, RES = 1, the 3rd
    section carrying the 24-bit new SGC).  128-bit new key: 4 sections, the 3rd
    and 4th carrying the SGC low/high 12 bits and key bits 95..64 / 63..32.
    """
    validate_krn(new_krn)
    _check_range("new key type", new_key_type, 0, 3)
    validate_tariff_index(new_tariff_index)
    sgc = int(validate_sgc(new_sgc))
    _check_range("KEN", ken, 0, 255)
    if not isinstance(rollover, bool):
        raise ParameterError(f"rollover must be a boolean, got {rollover!r}")
    if not isinstance(new_decoder_key, bytes) or len(new_decoder_key) not in (8, 16):
        got = (
            f"{len(new_decoder_key)} bytes"
            if isinstance(new_decoder_key, bytes)
            else type(new_decoder_key).__name__
        )
        raise KeyLengthError(
            f"new decoder key must be 64 bits (8 bytes, EA07) or 128 bits "
            f"(16 bytes, EA11), got {got}"
        )
    nk = int.from_bytes(new_decoder_key, "big")
    wide = len(new_decoder_key) == 16
    if sections is None:
        sections = 4 if wide else 2
    if wide and sections != 4:
        raise ParameterError(
            f"a 128-bit new key needs 4 key change tokens, not {sections}"
        )
    if not wide and sections not in (2, 3):
        raise ParameterError(
            f"a 64-bit new key uses 2 or 3 key change tokens, not {sections}"
        )
    res = 1 if sections == 3 else 0
    nkho = (nk >> (96 if wide else 32)) & 0xFFFFFFFF
    nklo = nk & 0xFFFFFFFF
    first = (
        (3 << 44)
        | ((ken >> 4) << 40)
        | (new_krn << 36)
        | (int(rollover) << 35)
        | (res << 34)
        | (new_key_type << 32)
        | nkho
    )
    second = (4 << 44) | ((ken & 15) << 40) | (int(new_tariff_index) << 32) | nklo
    tops = [first, second]
    if sections == 3:
        tops.append((8 << 44) | (sgc << 20))
    elif sections == 4:
        tops.append((8 << 44) | ((sgc & 0xFFF) << 32) | ((nk >> 64) & 0xFFFFFFFF))
        tops.append((9 << 44) | ((sgc >> 12) << 32) | ((nk >> 32) & 0xFFFFFFFF))
    return [_with_crc(2, top) for top in tops]


# --- decoding ---------------------------------------------------------------


class DecodedToken:
    """Result of :func:`decode`.

    ``tid``, ``value16`` and ``amount`` are None when the token kind has none
    (class 1, key change tokens).  ``fields`` holds kind-specific fields (KCT
    pieces, class 1 control and manufacturer code, raw RND / S&E nibble).
    """

    __slots__ = (
        "token_class",
        "subclass",
        "tid",
        "value16",
        "amount",
        "crc_ok",
        "block",
        "fields",
    )

    def __init__(
        self,
        token_class: int,
        subclass: int,
        tid: int | None,
        value16: int | None,
        amount: Decimal | None,
        crc_ok: bool,
        block: int,
        fields: dict[str, object],
    ):
        self.token_class = token_class
        self.subclass = subclass
        self.tid = tid
        self.value16 = value16
        self.amount = amount
        self.crc_ok = crc_ok
        self.block = block
        self.fields = fields

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly view (value16 as 4 hex digits, amount as a string)."""
        return {
            "token_class": self.token_class,
            "subclass": self.subclass,
            "tid": self.tid,
            "value16": None if self.value16 is None else f"{self.value16:04x}",
            "amount": None if self.amount is None else str(self.amount),
            "crc_ok": self.crc_ok,
            **self.fields,
        }

    def __repr__(self) -> str:
        return f"DecodedToken({self.to_dict()!r})"


def decode(
    token: str,
    decoder_key: bytes | None = None,
    ea: str = "07",
    tables: str | os.PathLike[str] | None = None,
) -> DecodedToken:
    """Decode and verify a token; class 1 needs no key."""
    token_class, block = parse_token(token)
    if token_class == 3:
        raise TokenFormatError("class 3 tokens (reserved) are not supported")
    if token_class != 1:
        if decoder_key is None:
            raise ParameterError(
                f"a decoder key is needed to decode a class {token_class} token"
            )
        check_ea(ea)
        block = get_cipher(ea, check_decoder_key(decoder_key, ea), tables).decrypt(
            block
        )
    subclass = block >> 60
    top48 = block >> 16
    crc = block & 0xFFFF
    fields: dict[str, object] = {}
    tid = value16 = amount = None
    currency = token_class == 0 and subclass >= 4
    crc_ok = token_crc((token_class << 48) | top48, currency) == crc
    if token_class == 1:
        if subclass == 0:
            fields = {
                "control": f"{(top48 >> 8) & 0xFFFFFFFFF:09x}",
                "mfr_code": top48 & 0xFF,
            }
        elif subclass == 1:
            fields = {
                "control": f"{(top48 >> 16) & 0xFFFFFFF:07x}",
                "mfr_code": top48 & 0xFFFF,
            }
        else:
            fields = {"data": f"{top48 & ((1 << 44) - 1):011x}"}
    elif token_class == 2 and subclass in KCT_SUBCLASSES:
        if subclass == 3:
            fields = {
                "kenho": (top48 >> 40) & 15,
                "krn": (top48 >> 36) & 15,
                "ro": (top48 >> 35) & 1,
                "res": (top48 >> 34) & 1,
                "kt": (top48 >> 32) & 3,
                "nkho": f"{top48 & 0xFFFFFFFF:08x}",
            }
        elif subclass == 4:
            fields = {
                "kenlo": (top48 >> 40) & 15,
                "ti": (top48 >> 32) & 0xFF,
                "nklo": f"{top48 & 0xFFFFFFFF:08x}",
            }
        else:
            fields = {
                "sgc_bits": f"{(top48 >> 32) & 0xFFF:03x}",
                "key_bits": f"{top48 & 0xFFFFFFFF:08x}",
            }
    else:
        rnd = (top48 >> 40) & 15
        tid = (top48 >> 16) & 0xFFFFFF
        value16 = top48 & 0xFFFF
        fields = {"s_and_e" if currency else "rnd": rnd}
        if crc_ok:
            amount = value16_to_amount(token_class, subclass, value16, rnd)
    return DecodedToken(
        token_class, subclass, tid, value16, amount, crc_ok, block, fields
    )


def decoder_key_bytes(ea: str) -> int:
    """Length in bytes of a decoder key for an encryption algorithm."""
    return EA_KEY_BYTES[check_ea(ea)]
