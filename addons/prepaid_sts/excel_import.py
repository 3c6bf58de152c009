"""The STS columns of the Excel import (issue 10): a keypad meter imported
with its STS parameters is commissioned at once, so it can be sold to as soon
as the import is done.

=================  =====================================================
column             content
=================  =====================================================
sts_pan            the meter PAN (18 digits) or the meter number printed
                   on the meter (the 11-digit DRN, under IIN 600727)
sts_sgc            supply group code (6 digits)
sts_krn            key revision number (1-9)
sts_tariff_index   tariff index (2 digits)
sts_key_type       key type 0-3 (default 2)
sts_base_date      base date 93, 14 or 35 (default 14)
sts_ea             encryption algorithm 07 or 11 (default 07)
=================  =====================================================

The four first are given together or not at all (a meter without them is
imported uncommissioned, as before).  The SGC, KRN, key type, base date and
EA must name an active vending key of the key store: the row is refused
otherwise, since the meter could not be sold to.  The key itself is never
read: only whether it exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trytond.i18n import gettext
from trytond.modules.prepaid_vending.excel_import import Column
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access

from .common import BASE_DATES, EAS, KEY_TYPES
from .engine import StsError, make_pan, validate_pan
from .engine.identifiers import validate_krn, validate_sgc, validate_tariff_index

#: The IIN of STS meter numbers (an 11-digit DRN makes an 18-digit PAN).
STS_IIN = "600727"

STS_COLUMNS = (
    Column(
        "sts_pan",
        False,
        "STS meter PAN (18 digits) or meter number (11 digits)",
        "600727000000000009",
        True,
    ),
    Column("sts_sgc", False, "STS supply group code (6 digits)", "201457", True),
    Column("sts_krn", False, "STS key revision number (1-9)", 1),
    Column("sts_tariff_index", False, "STS tariff index (2 digits)", "01", True),
    Column("sts_key_type", False, "STS key type 0-3 (default 2)", None),
    Column("sts_base_date", False, "STS base date 93, 14 or 35 (default 14)", None),
    Column("sts_ea", False, "STS encryption algorithm 07 or 11 (default 07)", None),
)
#: Given together or not at all.
REQUIRED = ("sts_pan", "sts_sgc", "sts_krn", "sts_tariff_index")
CHOICES = {
    "sts_key_type": ([k for k, _ in KEY_TYPES], "2"),
    "sts_base_date": ([b for b, _ in BASE_DATES], "14"),
    "sts_ea": ([e for e, _ in EAS], "07"),
}


class ImportJob(metaclass=PoolMeta):
    __name__ = "prepaid.import.job"

    @classmethod
    def import_columns(cls):
        return super().import_columns() + STS_COLUMNS

    @classmethod
    def import_text_fields(cls):
        return {
            **super().import_text_fields(),
            "sts_pan": ("prepaid.meter", "sts_pan"),
            "sts_sgc": ("prepaid.meter", "sts_sgc"),
            "sts_tariff_index": ("prepaid.meter", "sts_tariff_index"),
        }

    @classmethod
    def import_meter_values(
        cls,
        values: dict[str, str],
        kind: str | None,
        extra: dict[str, Any],
        err: Callable[[str], None],
    ) -> dict[str, Any]:
        result = super().import_meter_values(values, kind, extra, err)
        given = [n for n in REQUIRED if values.get(n)]
        if not given and not any(values.get(n) for n in CHOICES):
            return result
        missing = [n for n in REQUIRED if not values.get(n)]
        if missing:
            err(message("sts_incomplete", columns=", ".join(missing)))
            return result
        if kind == "postpaid":
            err(message("sts_postpaid"))
            return result
        parameters = {}
        for name, (choices, default) in CHOICES.items():
            value = values.get(name) or default
            if value.isdigit():  # a number cell drops the leading zero of 07
                value = value.zfill(2) if name != "sts_key_type" else value
            if value not in choices:
                err(
                    message(
                        "sts_choice",
                        column=name,
                        value=value,
                        choices=", ".join(choices),
                    )
                )
                return result
            parameters[name] = value
        try:
            pan = values["sts_pan"]
            pan = make_pan(STS_IIN, pan) if len(pan) == 11 else validate_pan(pan)
            sgc = validate_sgc(values["sts_sgc"])
            krn_text = values["sts_krn"]
            krn = validate_krn(int(krn_text) if krn_text.isdigit() else krn_text)
            tariff_index = validate_tariff_index(values["sts_tariff_index"])
        except StsError as error:
            err(message("sts_parameter", error=str(error)))
            return result
        identity = (
            sgc,
            krn,
            parameters["sts_key_type"],
            parameters["sts_base_date"],
            parameters["sts_ea"],
        )
        if not _has_vending_key(identity, extra):
            err(
                message(
                    "sts_no_key",
                    company=_company_name(),
                    sgc=sgc,
                    krn=krn,
                    key_type=identity[2],
                    base_date=identity[3],
                    ea=identity[4],
                )
            )
            return result
        result.update(
            sts_pan=pan,
            sts_sgc=sgc,
            sts_krn=krn,
            sts_tariff_index=tariff_index,
            sts_key_type=identity[2],
            sts_base_date=identity[3],
            sts_ea=identity[4],
        )
        return result


def message(code: str, **params: Any) -> str:
    return gettext(f"prepaid_sts.msg_import_{code}", **params)


def _company_name() -> str:
    "The company the meters are imported into (the context's)"
    Company = Pool().get("company.company")
    company = Transaction().context.get("company")
    with without_check_access():
        return Company(company).rec_name if company is not None else "-"


def _has_vending_key(identity: tuple, extra: dict[str, Any]) -> bool:
    """Whether an active vending key of the company the meters are imported
    into (the context's, their default) has these parameters (loaded once)"""
    keys = extra.get("sts_vending_keys")
    if keys is None:
        VendingKey = Pool().get("prepaid.sts.vending_key")
        company = Transaction().context.get("company")
        # Only the identity fields are read: staff who import meters need no
        # access to the key store.
        with without_check_access():
            rows = VendingKey.search_read(
                [("company", "=", company), ("key_cipher", "!=", None)],
                fields_names=["sgc", "krn", "key_type", "base_date", "ea"],
            )
        keys = extra["sts_vending_keys"] = {
            (r["sgc"], r["krn"], r["key_type"], r["base_date"], r["ea"]) for r in rows
        }
    return identity in keys
