"""Vending key store (encrypted at rest) and the audit of every key use.

Vending keys are per company (utility): two utilities may both have an SGC
123456 with different keys.  A meter's key is looked up in the meter's
company only (:meth:`VendingKey.find`), and :meth:`VendingKey.decoder_key`
refuses a key of another company even when a caller hands it over, so no
token for one utility's meter is ever derived from another's key.

The vending key is entered once through the write-only ``key`` field; only its
Fernet ciphertext (``key_cipher``) is stored.  ``key_cipher`` has a field access
record denying read and write to every group, so RPC (which checks access)
never returns it; server code reads it with access checks off, and every such
use goes through :meth:`VendingKey.decoder_key`, which writes an audit line.
"""

from __future__ import annotations

import datetime as dt
import string

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import DeactivableMixin, ModelSQL, ModelView, fields
from trytond.model.exceptions import AccessError, ValidationError
from trytond.modules.prepaid_vending import fastpath
from trytond.modules.prepaid_vending.access import SearchGuard
from trytond.modules.prepaid_vending.append_only import AppendOnlyMixin
from trytond.modules.prepaid_vending.company import CompanyMixin
from trytond.modules.prepaid_vending.inputs.numbers import shown
from trytond.pool import Pool
from trytond.transaction import Transaction, without_check_access

from . import masterkey
from .common import (
    BASE_DATES,
    DKGAS,
    EAS,
    KEY_TYPES,
    TOKEN_ISSUING_GROUPS,
    sts_error_message,
)
from .company import (
    fill_company_from,
)
from .engine import StsError, derive_decoder_key

#: The key-use audit is written by the code that derives a decoder key (staff
#: have no create access to it): see TOKEN_ISSUING_GROUPS.
KEY_AUDIT_WRITE = fastpath.SystemWrite("the key-use audit", TOKEN_ISSUING_GROUPS)
fastpath.declare("prepaid_sts", "prepaid.sts.vending_key.audit")

#: Vending key length in bytes per decoder key generation algorithm.
VK_BYTES = {"02": 8, "04": 20}

#: The fields that identify a vending key (and enter the decoder key derivation).
IDENTITY_FIELDS = ("sgc", "krn", "key_type", "base_date", "dkga", "ea", "ken")

AUDIT_PURPOSES = [
    ("credit", "Credit token"),
    ("engineering", "Engineering token"),
    ("key_change_old", "Key change (old key)"),
    ("key_change_new", "Key change (new key)"),
    ("verify", "Token verification"),
]


class VendingKey(CompanyMixin, SearchGuard, DeactivableMixin, ModelSQL, ModelView):
    "STS Vending Key"

    __name__ = "prepaid.sts.vending_key"

    name = fields.Char("Name", size=128, required=True)
    sgc = fields.Char("Supply Group Code", required=True, size=6)
    krn = fields.Integer("Key Revision Number", required=True)
    key_type = fields.Selection(KEY_TYPES, "Key Type", required=True)
    base_date = fields.Selection(BASE_DATES, "Base Date", required=True)
    dkga = fields.Selection(DKGAS, "Key Generation Algorithm", required=True)
    ea = fields.Selection(EAS, "Encryption Algorithm", required=True)
    ken = fields.Integer(
        "Key Expiry Number",
        required=True,
        help="Tokens whose TID >> 16 exceeds this number are refused by the meter "
        "(255: the key does not expire).",
    )
    key_cipher = fields.Char("Encrypted Key", readonly=True)
    key = fields.Function(
        fields.Char(
            "Vending Key (hex)",
            help="Entered once, then never shown again: the key is stored "
            "encrypted with the master key.",
        ),
        "get_key",
        setter="set_key",
    )
    key_entered = fields.Function(fields.Boolean("Key Entered"), "get_key_entered")
    audits = fields.One2Many(
        "prepaid.sts.vending_key.audit", "key", "Uses", readonly=True
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ("sgc", "ASC"))
        cls._order.insert(1, ("krn", "DESC"))

    @staticmethod
    def default_key_type():
        return "2"

    @staticmethod
    def default_base_date():
        return "14"

    @staticmethod
    def default_dkga():
        return "04"

    @staticmethod
    def default_ea():
        return "07"

    @staticmethod
    def default_ken():
        return 255

    @staticmethod
    def default_krn():
        return 1

    def get_rec_name(self, name):
        return (
            f"{self.name} (SGC {self.sgc} KRN {self.krn} KT {self.key_type} "
            f"BD {self.base_date})"
        )

    @classmethod
    def get_key(cls, keys, name):
        # Write-only: the getter never returns key material.
        return {k.id: None for k in keys}

    @classmethod
    def get_key_entered(cls, keys, name):
        with without_check_access():
            rows = cls.read([k.id for k in keys], ["key_cipher"])
        return {r["id"]: bool(r["key_cipher"]) for r in rows}

    @classmethod
    def set_key(cls, keys, name, value):
        if not value:
            return
        entered = [k for k in keys if k.key_entered]
        if entered:
            raise AccessError(
                gettext("prepaid_sts.msg_vending_key_write_once", key=entered[0].name)
            )
        for key in keys:
            raw = cls._parse_key(value, key)
            try:
                cipher = masterkey.encrypt(raw)
            except masterkey.MasterKeyError as error:
                raise UserError(
                    gettext("prepaid_sts.msg_master_key", error=str(error))
                ) from None
            with without_check_access():
                cls.write([key], {"key_cipher": cipher})

    @staticmethod
    def _parse_key(value: str, key: VendingKey) -> bytes:
        text = value.strip().replace(" ", "").lower()
        # The setter runs before the selection is validated: check it here.
        want = VK_BYTES.get(key.dkga)
        if want is None:
            raise ValidationError(
                gettext(
                    "prepaid_sts.msg_vending_key_dkga",
                    key=key.name,
                    dkga=shown(repr(key.dkga)),
                    choices=", ".join(VK_BYTES),
                )
            )
        if len(text) != 2 * want or any(c not in string.hexdigits for c in text):
            # The message gives the expected length only, never the value typed.
            raise ValidationError(
                gettext(
                    "prepaid_sts.msg_vending_key_format",
                    key=key.name,
                    dkga=key.dkga,
                    digits=2 * want,
                )
            )
        return bytes.fromhex(text)

    @classmethod
    def validate_fields(cls, keys, field_names):
        super().validate_fields(keys, field_names)
        for key in keys:
            key.check_parameters()
        cls.check_unique(keys)

    @classmethod
    def check_modification(cls, mode, keys, values=None, external=False):
        super().check_modification(mode, keys, values=values, external=external)
        if mode != "write" or not set(values) & set(IDENTITY_FIELDS):
            return
        # Once the key material is stored, the parameters that say which key
        # it is are frozen: changing them would derive wrong decoder keys
        # (a new key revision is a new vending key record).  Its company
        # never changes (CompanyMixin).
        for key in keys:
            if key.key_entered and any(
                values[f] != getattr(key, f) for f in set(values) & set(IDENTITY_FIELDS)
            ):
                raise AccessError(
                    gettext("prepaid_sts.msg_vending_key_frozen", key=key.name)
                )

    def check_parameters(self):
        from .engine.identifiers import validate_krn, validate_sgc

        try:
            validate_sgc(self.sgc)
            validate_krn(self.krn)
        except StsError as error:
            raise ValidationError(sts_error_message(error)) from None
        if not 0 <= (self.ken or 0) <= 255:
            raise ValidationError(gettext("prepaid_sts.msg_ken_range"))
        if self.dkga == "02" and self.ea != "07":
            raise ValidationError(gettext("prepaid_sts.msg_dkga02_ea07"))

    @classmethod
    def check_unique(cls, keys):
        "One active key per parameters in a company (another may have the same)"
        for key in keys:
            if not key.active or key.company is None:
                continue  # no company: refused as a required field
            with without_check_access():
                others = cls.search(
                    [
                        ("id", "!=", key.id),
                        ("company", "=", key.company.id),
                        ("sgc", "=", key.sgc),
                        ("krn", "=", key.krn),
                        ("key_type", "=", key.key_type),
                        ("base_date", "=", key.base_date),
                        ("ea", "=", key.ea),
                    ]
                )
            if others:
                raise ValidationError(
                    gettext("prepaid_sts.msg_vending_key_duplicate", key=key.name)
                )

    @classmethod
    def find(
        cls,
        company,
        sgc: str,
        krn: int,
        key_type: str,
        base_date: str,
        ea: str,
    ) -> VendingKey:
        """The active vending key of company for these parameters, or a
        UserError saying so (the company is the meter's: see the docstring).

        Every token issue asks: one query, no ORM search."""
        table = cls.__table__()
        key_id = (
            None
            if company is None
            else fastpath.scalar(
                table.select(
                    table.id,
                    where=(table.company == company.id)
                    & (table.sgc == sgc)
                    & (table.krn == krn)
                    & (table.key_type == key_type)
                    & (table.base_date == base_date)
                    & (table.ea == ea)
                    & (table.active == True),  # noqa: E712
                    order_by=[table.id.asc],
                    limit=1,
                )
            )
        )
        if key_id is None:
            raise UserError(
                gettext(
                    "prepaid_sts.msg_no_vending_key",
                    company=company.rec_name if company is not None else "-",
                    sgc=sgc,
                    krn=krn,
                    key_type=key_type,
                    base_date=base_date,
                    ea=ea,
                )
            )
        return cls(key_id)

    def decoder_key(
        self,
        pan: str,
        tariff_index: str,
        purpose: str,
        meter,
        origin=None,
    ) -> bytes:
        """Derive meter's decoder key from this vending key, auditing the use.

        Refused for a meter of another company than the key's, whoever
        chose the key."""
        pool = Pool()
        Audit = pool.get("prepaid.sts.vending_key.audit")
        if meter.company != self.company:
            raise UserError(
                gettext(
                    "prepaid_sts.msg_vending_key_company",
                    key=self.name,
                    key_company=self.company.rec_name,
                    meter=meter.serial,
                    meter_company=meter.company.rec_name if meter.company else "-",
                )
            )
        with without_check_access():
            cipher = self.__class__.read([self.id], ["key_cipher"])[0]["key_cipher"]
        if not cipher:
            raise UserError(gettext("prepaid_sts.msg_vending_key_empty", key=self.name))
        try:
            vending_key = masterkey.decrypt(cipher)
        except masterkey.MasterKeyError as error:
            raise UserError(
                gettext("prepaid_sts.msg_master_key", error=str(error))
            ) from None
        try:
            decoder_key = derive_decoder_key(
                vending_key,
                self.dkga,
                pan,
                int(self.key_type),
                self.sgc,
                tariff_index,
                self.krn,
                self.base_date,
                self.ea,
            )
        except StsError as error:
            raise UserError(sts_error_message(error)) from None
        # Set-based (fastpath): every vend writes one.
        fastpath.create(
            Audit,
            [
                {
                    "key": self.id,
                    "company": self.company.id,
                    "purpose": purpose,
                    "meter": meter.id,
                    "origin": str(origin) if origin else None,
                }
            ],
            system=KEY_AUDIT_WRITE,
        )
        return decoder_key


class VendingKeyAudit(CompanyMixin, AppendOnlyMixin, ModelSQL, ModelView):
    "STS Vending Key Use"

    __name__ = "prepaid.sts.vending_key.audit"
    # Read by key or date, never by company: an index on it would only slow
    # every vend's insert.
    _company_index = False

    key = fields.Many2One(
        "prepaid.sts.vending_key",
        "Vending Key",
        required=True,
        readonly=True,
        ondelete="RESTRICT",
    )
    user = fields.Many2One("res.user", "User", readonly=True)
    date = fields.Timestamp("Date", readonly=True)
    purpose = fields.Selection(AUDIT_PURPOSES, "Purpose", required=True, readonly=True)
    meter = fields.Many2One("prepaid.meter", "Meter", readonly=True)
    origin = fields.Reference("Origin", selection="get_origins", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ("date", "DESC"))
        cls._order.insert(1, ("id", "DESC"))

    @classmethod
    def _migrate_company(cls, module):
        # Before the one-company default of CompanyMixin: the key's company,
        # also where the installation already had several.
        fill_company_from(cls, "key", "prepaid.sts.vending_key")
        super()._migrate_company(module)

    @staticmethod
    def default_user():
        return Transaction().user

    @staticmethod
    def default_date():
        return dt.datetime.now()

    @classmethod
    def get_origins(cls):
        return get_origin_selection()


def get_origin_selection() -> list[tuple[str | None, str]]:
    """Models that can be at the origin of a token or a key use."""
    pool = Pool()
    Model = pool.get("ir.model")
    names = [
        "prepaid.sts.token",
        "prepaid.sts.key_change",
        "prepaid.sts.rollover",
        "prepaid.meter",
        "prepaid.vend",
    ]
    known = Model.get_names()
    return [(None, "")] + [(n, known[n]) for n in names if n in known]
