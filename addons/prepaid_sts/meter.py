"""STS parameters of a meter, TID allocation and the one place tokens are minted.

Every credit, FBE and engineering token the platform issues goes through
:meth:`Meter.sts_issue_tokens` (or :meth:`Meter.sts_issue_class1`), which checks
the cut-over, allocates TIDs under a row lock on the meter, calls the engine and
writes the token log in the caller's transaction; key change tokens, which carry
no TID, are minted by ``KeyChange.issue`` (key_change.py).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.model.exceptions import AccessError, ValidationError
from trytond.modules.prepaid_vending import fastpath
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from .common import (
    BASE_DATES,
    EAS,
    KEY_TYPES,
    TOKEN_ISSUING_GROUPS,
    sts_error_message,
)
from .engine import (
    StsError,
    TidRangeError,
    class1_token,
    credit_token,
    tid_from_datetime,
    validate_pan,
)
from .engine.tid import TID_LIMIT
from .engine.tokens import amount_to_value16, value16_to_amount

#: The 2**24-minute limit of base date 1993 (docs/sts.md sections 4.7 and 6).
DEFAULT_CUTOVER_1993 = dt.datetime(2024, 11, 24, 20, 16)

#: Context key set only by the key change code (RPC strips "_" keys): the one
#: path allowed to change a commissioned meter's key identity or to lower
#: (reset) its last TID.
KEY_CHANGE_CONTEXT = "_prepaid_sts_key_change"

STS_FIELDS = [
    "sts_pan",
    "sts_sgc",
    "sts_krn",
    "sts_tariff_index",
    "sts_key_type",
    "sts_base_date",
    "sts_ea",
]

#: The token log and the meter's last TID are written by the issuing code
#: (staff have no create access to the log): see TOKEN_ISSUING_GROUPS.
TOKEN_WRITE = fastpath.SystemWrite("the token log", TOKEN_ISSUING_GROUPS)
fastpath.declare("prepaid_sts", "prepaid.sts.token")
fastpath.declare_update("prepaid.meter", "sts_last_tid")
fastpath.know_hook(
    "prepaid_sts.meter.Meter.check_modification",
    "run (sts_last_tid: the TID only increases; STS parameters: key change)",
)
fastpath.know_hook(
    "prepaid_sts.meter.Meter.validate_fields", "run (STS parameters when written)"
)


@dataclass(frozen=True)
class TokenRequest:
    """One token to mint: class 0 or class 2, with an amount or a raw value."""

    kind: str
    token_class: int
    subclass: int
    amount: Decimal | None = None
    value16: int | None = None
    description: str = ""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    # Tryton stores naive UTC datetimes; the engine wants aware ones.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def next_tid(last_tid: int | None, minute_tid: int) -> int:
    """The TID to use: this minute's, or last + 1 when that is already used.

    Never goes backwards (a meter refuses a TID at or below one it has seen),
    and keeps increasing even when last + 1 runs ahead of the clock.
    """
    if last_tid is None or minute_tid > last_tid:
        return minute_tid
    return last_tid + 1


class Meter(metaclass=PoolMeta):
    __name__ = "prepaid.meter"

    _sts_states = {
        "readonly": Eval("sts_key_change_pending", False)
        | Eval("sts_commissioned", False)
    }

    sts_pan = fields.Char(
        "Meter PAN",
        size=18,
        strip=True,
        states=_sts_states,
        help="18 digits: IIN (600727) + 11-digit DRN + Luhn check digit.",
    )
    sts_sgc = fields.Char("Supply Group Code", size=6, states=_sts_states)
    sts_krn = fields.Integer("Key Revision Number", states=_sts_states)
    sts_tariff_index = fields.Char("Tariff Index", size=2, states=_sts_states)
    sts_key_type = fields.Selection(
        [(None, "")] + KEY_TYPES, "Key Type", states=_sts_states
    )
    sts_base_date = fields.Selection(
        [(None, "")] + BASE_DATES, "Base Date", states=_sts_states
    )
    sts_ea = fields.Selection(
        [(None, "")] + EAS, "Encryption Algorithm", states=_sts_states
    )
    sts_last_tid = fields.Integer(
        "Last TID",
        readonly=True,
        help="Minutes since the base date of the last token issued to this meter.",
    )
    sts_key_changes = fields.One2Many(
        "prepaid.sts.key_change", "meter", "Key Changes", readonly=True
    )
    sts_key_change_pending = fields.Function(
        fields.Boolean("Key Change Pending"), "get_sts_key_change_pending"
    )
    sts_commissioned = fields.Function(
        fields.Boolean(
            "STS Commissioned",
            help="All STS parameters are set: they change only by a key change.",
        ),
        "get_sts_commissioned",
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._buttons.update(
            {
                "sts_engineering_wizard": {
                    "invisible": Eval("kind") != "sts_keypad",
                },
                "sts_key_change_wizard": {
                    "invisible": Eval("kind") != "sts_keypad",
                },
            }
        )

    @staticmethod
    def default_sts_key_type():
        return "2"

    @staticmethod
    def default_sts_ea():
        return "07"

    @staticmethod
    def default_sts_base_date():
        return "14"

    @classmethod
    def get_sts_key_change_pending(cls, meters, name):
        KeyChange = Pool().get("prepaid.sts.key_change")
        with without_check_access():
            pending = KeyChange.search(
                [("meter", "in", [m.id for m in meters]), ("state", "=", "pending")]
            )
        ids = {k.meter.id for k in pending}
        return {m.id: m.id in ids for m in meters}

    def get_sts_commissioned(self, name):
        return all(getattr(self, f) not in (None, "") for f in STS_FIELDS)

    @classmethod
    def check_modification(cls, mode, meters, values=None, external=False):
        super().check_modification(mode, meters, values=values, external=external)
        if mode != "write":
            return
        changed = set(values) & set(STS_FIELDS)
        key_change = Transaction().context.get(KEY_CHANGE_CONTEXT)
        if "sts_last_tid" in values:
            if external:
                raise AccessError(gettext("prepaid_sts.msg_meter_last_tid_readonly"))
            if not key_change:
                cls._check_tid_increases(meters, values["sts_last_tid"])
        if changed and not key_change:
            # Commissioning sets the parameters once; afterwards the decoder
            # key (and so the meter's identity) changes only by a key change,
            # whose tokens move the meter too.
            stored = cls._stored_sts_parameters(meters)
            for meter in meters:
                current = stored[meter.id]
                if all(v not in (None, "") for v in current.values()) and any(
                    values[f] != current[f] for f in changed
                ):
                    raise AccessError(
                        gettext("prepaid_sts.msg_meter_sts_frozen", meter=meter.serial)
                    )

    @classmethod
    def _stored_sts_parameters(cls, meters) -> dict[int, dict]:
        # From the table: the records may carry values cached before a write.
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        columns = [getattr(table, f) for f in STS_FIELDS]
        cursor.execute(
            *table.select(
                table.id, *columns, where=table.id.in_([m.id for m in meters])
            )
        )
        return {row[0]: dict(zip(STS_FIELDS, row[1:], strict=True)) for row in cursor}

    @classmethod
    def _check_tid_increases(cls, meters, tid: int | None) -> None:
        "A lower last TID would let tokens reuse TIDs the meter already saw"
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(
            *table.select(
                table.id,
                table.sts_last_tid,
                where=table.id.in_([m.id for m in meters]),
            )
        )
        for _, last in cursor:
            if last is not None and (tid is None or tid < last):
                raise AccessError(
                    gettext(
                        "prepaid_sts.msg_meter_last_tid_decrease", tid=tid, last=last
                    )
                )

    @classmethod
    def validate_fields(cls, meters, field_names):
        super().validate_fields(meters, field_names)
        if not field_names or field_names & set(STS_FIELDS):
            for meter in meters:
                meter.check_sts_parameters()

    def check_sts_parameters(self):
        from .engine.identifiers import (
            validate_krn,
            validate_sgc,
            validate_tariff_index,
        )

        try:
            if self.sts_pan:
                validate_pan(self.sts_pan)
            if self.sts_sgc:
                validate_sgc(self.sts_sgc)
            if self.sts_krn is not None:
                validate_krn(self.sts_krn)
            if self.sts_tariff_index:
                validate_tariff_index(self.sts_tariff_index)
        except StsError as error:
            raise ValidationError(
                gettext(
                    "prepaid_sts.msg_meter_sts_parameter",
                    meter=self.serial,
                    error=str(error),
                )
            ) from None

    def sts_require_parameters(self):
        missing = [f for f in STS_FIELDS if getattr(self, f) in (None, "")]
        if missing:
            names = ", ".join(self.__class__._fields[f].string for f in missing)
            raise UserError(
                gettext(
                    "prepaid_sts.msg_meter_sts_incomplete",
                    meter=self.serial,
                    fields=names,
                )
            )

    # --- keys ------------------------------------------------------------

    def sts_vending_key(self, parameters: dict | None = None):
        VendingKey = Pool().get("prepaid.sts.vending_key")
        p = parameters or self.sts_parameters()
        # The meter's company, never the user's: see company.py.
        return VendingKey.find(
            self.company,
            p["sts_sgc"],
            p["sts_krn"],
            p["sts_key_type"],
            p["sts_base_date"],
            p["sts_ea"],
        )

    def sts_parameters(self) -> dict:
        return {f: getattr(self, f) for f in STS_FIELDS}

    def sts_decoder_key(
        self, purpose: str, origin=None, parameters: dict | None = None
    ) -> bytes:
        """The meter's decoder key (current parameters unless given), audited."""
        p = parameters or self.sts_parameters()
        key = self.sts_vending_key(p)
        return key.decoder_key(
            p["sts_pan"], p["sts_tariff_index"], purpose, meter=self, origin=origin
        )

    # --- TIDs -------------------------------------------------------------

    @classmethod
    def sts_cutover_1993(cls) -> dt.datetime:
        Configuration = Pool().get("prepaid.configuration")
        with without_check_access():
            config = Configuration(1)
            return config.sts_cutover_1993 or DEFAULT_CUTOVER_1993

    def sts_check_cutover(self, now: dt.datetime):
        """Refuse base-1993 tokens once the configured cut-over has passed."""
        if self.sts_base_date != "93":
            return
        cutover = as_utc(self.sts_cutover_1993())
        if as_utc(now) >= cutover:
            raise UserError(
                gettext(
                    "prepaid_sts.msg_cutover_1993",
                    meter=self.serial,
                    cutover=cutover.strftime("%Y-%m-%d %H:%M UTC"),
                )
            )

    def sts_allocate_tids(self, count: int, now: dt.datetime) -> list[int]:
        """Reserve ``count`` consecutive TIDs for this meter (row lock held).

        The lock (SELECT ... FOR UPDATE through ``Model.lock``) serialises
        concurrent issues for one meter until the transaction ends, so two
        vends never share a TID.
        """
        cls = self.__class__
        cls.lock([self])
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        # Read under the lock, bypassing any cached value of the record.
        cursor.execute(*table.select(table.sts_last_tid, where=table.id == self.id))
        (last,) = cursor.fetchone()
        try:
            minute = tid_from_datetime(as_utc(now), self.sts_base_date)
        except TidRangeError:
            minute = TID_LIMIT
        tids = []
        for _ in range(count):
            tid = next_tid(last, minute)
            if tid >= TID_LIMIT:
                raise UserError(
                    gettext(
                        "prepaid_sts.msg_tid_range",
                        meter=self.serial,
                        base_date=dict(BASE_DATES)[self.sts_base_date],
                    )
                )
            tids.append(tid)
            last = minute = tid
        # Set-based (fastpath): the ORM write would re-read the meter.
        fastpath.update([self], {"sts_last_tid": tids[-1]}, system=TOKEN_WRITE)
        return tids

    # --- issuing ---------------------------------------------------------

    def sts_issue_tokens(
        self,
        requests: list[TokenRequest],
        reason: str | None = None,
        origin=None,
        now: dt.datetime | None = None,
        rnd: int | None = None,
        key_change=None,
    ) -> list:
        """Mint class 0/2 tokens with fresh TIDs and log them (saved records)."""
        pool = Pool()
        Token = pool.get("prepaid.sts.token")
        if not requests:
            return []
        now = as_utc(now or utc_now())
        self.sts_require_parameters()
        self.sts_check_cutover(now)
        purpose = (
            "credit"
            if all(r.kind in {"credit", "fbe"} for r in requests)
            else "engineering"
        )
        decoder_key = self.sts_decoder_key(purpose, origin=origin)
        # Read before the TID update, which drops the record's cached values
        # (reading them after it would read the whole meter again).
        ea, company = self.sts_ea, self.company
        base_date, sgc, krn = self.sts_base_date, self.sts_sgc, self.sts_krn
        tariff_index = self.sts_tariff_index
        tids = self.sts_allocate_tids(len(requests), now)
        tokens = []
        for request, tid in zip(requests, tids, strict=True):
            nibble = secrets.randbelow(16) if rnd is None else rnd
            currency = request.token_class == 0 and request.subclass >= 4
            value = request.amount
            if value is not None:
                # The meter credits the encoded amount, rounded up to the next
                # value a token carries (1700.5 kWh -> 1701.4): log that one.
                try:
                    value16, s_and_e = amount_to_value16(
                        request.token_class, request.subclass, value
                    )
                except StsError as error:
                    raise UserError(sts_error_message(error)) from None
                value = value16_to_amount(
                    request.token_class,
                    request.subclass,
                    value16,
                    nibble if s_and_e is None else s_and_e,
                )
            try:
                digits = credit_token(
                    decoder_key,
                    ea,
                    request.token_class,
                    request.subclass,
                    amount=request.amount,
                    value16=request.value16,
                    tid=tid,
                    rnd=0 if currency else nibble,
                )
            except StsError as error:
                raise UserError(sts_error_message(error)) from None
            tokens.append(
                Token(
                    meter=self,
                    company=company,
                    kind=request.kind,
                    token_class=request.token_class,
                    subclass=request.subclass,
                    tid=tid,
                    base_date=base_date,
                    sgc=sgc,
                    krn=krn,
                    tariff_index=tariff_index,
                    value=value,
                    value16=request.value16,
                    digits=digits,
                    description=request.description,
                    reason=reason,
                    origin=origin,
                    key_change=key_change,
                )
            )
        # Set-based (fastpath): every value was computed just above.
        fastpath.save(tokens, system=TOKEN_WRITE)
        return tokens

    def sts_issue_class1(
        self, subclass: int, control: int, mfr_code: int, reason: str | None = None
    ):
        """Class 1 test/display token: not encrypted and without TID, but logged."""
        Token = Pool().get("prepaid.sts.token")
        try:
            digits = class1_token(subclass, control, mfr_code)
        except StsError as error:
            raise UserError(sts_error_message(error)) from None
        token = Token(
            meter=self,
            company=self.company,
            kind="test",
            token_class=1,
            subclass=subclass,
            value16=None,
            digits=digits,
            description=f"Test token control {control:x} manufacturer {mfr_code}",
            reason=reason,
            origin=self,
        )
        with without_check_access():
            token.save()
        return token

    @classmethod
    @ModelView.button_action("prepaid_sts.wizard_engineering_token")
    def sts_engineering_wizard(cls, meters):
        pass

    @classmethod
    @ModelView.button_action("prepaid_sts.wizard_key_change")
    def sts_key_change_wizard(cls, meters):
        pass
