"""Scalar values on the wire: the named simple types and the built-in ones.

Each named simple type is written once here and used twice: by the reader and
writer (``check``) and by the schema generator (its XSD facets), so what the
server accepts and what its XSD declares cannot drift apart.  The standard's
own facets are not public; these are the project's, chosen from real traffic
(docs/xmlvend.md section 5).

Built-in scalar types: ``str``, ``int``, ``bool``, ``Decimal`` (``xs:decimal``,
never float) and ``datetime`` (``xs:dateTime``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from .namespaces import BASE, REVENUE


@dataclass(frozen=True)
class SimpleType:
    """A named restriction of a built-in XSD type (string or integer)."""

    name: str
    ns: str
    base: str = "string"  # XSD built-in: "string" or "integer"
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    enumeration: tuple[str, ...] = ()
    doc: str = ""
    keep_space: bool = False  # surrounding whitespace is significant

    def __post_init__(self) -> None:
        compiled = re.compile(self.pattern) if self.pattern is not None else None
        object.__setattr__(self, "_regex", compiled)

    def check(self, text: str) -> str:
        "The text if it conforms, else ValueError saying why"
        if self.min_length is not None and len(text) < self.min_length:
            raise ValueError(f"shorter than {self.min_length} characters")
        if self.max_length is not None and len(text) > self.max_length:
            raise ValueError(f"longer than {self.max_length} characters")
        if self._regex is not None and not self._regex.fullmatch(text):
            raise ValueError(f"does not match {self.name} ({self.pattern})")
        if self.enumeration and text not in self.enumeration:
            raise ValueError(f"not one of {', '.join(self.enumeration)}")
        if self.base == "integer":
            value = parse_int(text)
            if self.min_value is not None and value < self.min_value:
                raise ValueError(f"below {self.min_value}")
            if self.max_value is not None and value > self.max_value:
                raise ValueError(f"above {self.max_value}")
        return text


def _text(name: str, max_length: int, min_length: int = 0, doc: str = "") -> SimpleType:
    return SimpleType(name, BASE, min_length=min_length, max_length=max_length, doc=doc)


# --------------------------------------------------------------- base schema
MSG = _text("Msg", 500, doc="Free text shown to operators or customers.")
OP_NAME = _text("OpName", 64, 1)
PASSWORD = SimpleType("Password", BASE, max_length=128, keep_space=True)
PERSON_NAME = _text("PersonName", 120)
ORGANISATION_NAME = _text("OrganisationName", 120)
ADDRESS = _text("Address", 255)
CONTACT_NO = _text("ContactNo", 40)
ACCOUNT_NO = _text("AccountNo", 40)
LOC_REF = _text("LocRef", 80)
TAX_REF = _text("TaxRef", 40)
ID_NO = _text("IDNo", 40)
REF_NO = _text("RefNo", 40)
BRANCH_CODE = _text("BranchCode", 20)
CHEQUE_NO = _text("ChequeNo", 20)
MICR = _text("MICR", 64)
BANK_CARD_EXPIRY = _text("BankCardExpiry", 7)
BANK_CARD_CV_NUM = _text("BankCardCVNum", 4)
TRACK2 = _text("NRSTrack2Data", 80)
CURRENCY_SYMBOL = _text("CurrencySymbol", 8, doc="As sent: R, $, UGX, AZM ...")
SI_UNIT = _text("ResourceSIUnit", 16, 1, doc="kWh for electricity.")
DEVICE_TEXT_ID = SimpleType(
    "GenericID",
    BASE,
    pattern=r"[^\s](.*[^\s])?",
    max_length=64,
    doc="A client's or terminal's own identifier: 1-64 characters, not blank.",
)
EAN = SimpleType("EAN", BASE, pattern=r"[0-9]{1,14}", doc="EAN-13 and shorter codes.")
MSNO = SimpleType(
    "MSNO",
    BASE,
    pattern=r"[0-9A-Za-z]{1,32}",
    doc="Meter serial number: STS meters have 11 or 13 digits; smart meters may "
    "use letters.",
)
SGC = SimpleType("STSSupplyGroupCode", BASE, pattern=r"[0-9]{6}")
KRN = SimpleType(
    "STSKeyRevNo", BASE, "integer", pattern=r"[0-9]", min_value=1, max_value=9
)
TI = SimpleType("STSTariffIndex", BASE, pattern=r"[0-9]{2}")
AT = SimpleType("STSAT", BASE, pattern=r"[0-9]{2}")
TT = SimpleType("STSTT", BASE, pattern=r"[0-9]{2}")
STS_CIPHER = SimpleType("STSCipherText", BASE, pattern=r"[0-9]{20}")
MSG_ID_DATE_TIME = SimpleType(
    "MsgIDDateTime",
    BASE,
    pattern=r"[0-9]{12,17}",
    doc="yyyyMMddHHmmss in the standard; 12 to 17 digits are accepted and echoed "
    "verbatim.",
)
MSG_ID_UNIQUE_NUMBER = SimpleType("MsgIDUniqueNumber", BASE, pattern=r"[0-9]{1,20}")
BATCH_STATUS = SimpleType("BatchStatusType", BASE, enumeration=("open", "closed"))
CHEQUE_TYPE = SimpleType(
    "ChequeType", BASE, enumeration=("Personal", "Company", "Government")
)

# ------------------------------------------------------------ revenue schema
RECEIPT_NO = SimpleType("ReceiptNo", REVENUE, min_length=1, max_length=40)
BANK_REG_NO = SimpleType("BankRegNo", REVENUE, max_length=40)
SEQ_NO_PATTERN = r"[0-9]{1,18}"
BANK_BATCH_SEQ_NO = SimpleType("BankBatchSeqNo", REVENUE, "integer", SEQ_NO_PATTERN)
SHIFT_SALES_SEQ_NO = SimpleType(
    "ShiftSalesBatchSeqNo", REVENUE, "integer", SEQ_NO_PATTERN
)
TX_SEQ_NO = SimpleType("TxSeqNo", REVENUE, "integer", SEQ_NO_PATTERN)

SIMPLE_TYPES: tuple[SimpleType, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, SimpleType)
)

# ------------------------------------------------------------ built-in types
# An amount has at most 15 integer and 12 fraction digits: "10", "87.72" and
# "900.00000000" are all seen on the wire; exponents, NaN, infinities and
# comma decimal separators are not amounts.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]{1,15}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})")
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def parse_decimal(text: str) -> Decimal:
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"not a plain decimal number: {text[:40]!r}")
    try:
        return Decimal(text)
    except InvalidOperation as error:  # pragma: no cover - the pattern excludes it
        raise ValueError(f"not a decimal: {text[:40]!r}") from error


def format_decimal(value: Decimal | int) -> str:
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value}")
    return format(value, "f")


def parse_int(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"not an integer: {text[:40]!r}")
    return int(text)


def parse_bool(text: str) -> bool:
    try:
        return _BOOLEANS[text]
    except KeyError:
        raise ValueError(f"not a boolean: {text[:40]!r}") from None


def format_bool(value: bool) -> str:
    return "true" if value else "false"


def parse_datetime(text: str) -> datetime:
    "xs:dateTime, with or without offset (Z accepted)"
    if len(text) > 40 or "T" not in text:
        raise ValueError(f"not an xs:dateTime: {text[:40]!r}")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an xs:dateTime: {text[:40]!r}") from None


def format_datetime(value: datetime) -> str:
    """Milliseconds and the offset, as real servers send (microseconds when
    there are any, so nothing is lost); naive values stay naive"""
    spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
    text = value.isoformat(timespec=spec)
    return text[:-6] + "Z" if value.tzinfo is UTC else text


def si_unit(text: str) -> str:
    """The canonical spelling of a unit: kWh, KWh and KWH are all seen for kWh.

    Other units (m3, kW, ...) are kept as sent."""
    return "kWh" if text.upper() == "KWH" else text
