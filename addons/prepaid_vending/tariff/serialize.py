"""JSON-friendly dictionaries <-> tariff objects, vend requests and quotes.

Parsing is strict (unknown keys are errors, so a typo in a tariff is caught before
activation) and numbers are read as Decimal by ``inputs.numbers.parse_decimal``
(the one reading of amounts): strings in plain notation, integers or JSON numbers
parsed as Decimal, within its bounds. Binary floats are refused, so 0.1 can never
become 0.1000000000000000055.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from datetime import date, time
from decimal import Decimal
from typing import Any

from ..inputs.numbers import NumberError, parse_decimal, shown
from .blocks import BlockUse
from .errors import TariffError
from .model import (
    Block,
    ChannelFee,
    Charge,
    ChargePeriod,
    PowerFactorPenalty,
    Tariff,
    TariffKind,
)
from .money import ZERO, VatRounding
from .tou import (
    DayProfile,
    DaySwitch,
    Season,
    SpecialDay,
    TouRate,
    TouSchedule,
    WeekProfile,
)
from .vend import ChargeLine, Debt, MeterRegister, VendQuote, VendRequest

Json = dict[str, Any]


def _obj(
    value: Any,
    what: str,
    allowed: AbstractSet[str],
    required: AbstractSet[str] = frozenset(),
) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TariffError(f"{what} must be an object")
    unknown = set(value) - allowed
    if unknown:
        raise TariffError(
            f"{what}: unknown field(s) {shown(', '.join(sorted(unknown)), 200)}"
        )
    missing = set(required) - set(value)
    if missing:
        raise TariffError(f"{what}: missing field(s) {', '.join(sorted(missing))}")
    return value


def dec(value: Any, what: str) -> Decimal:
    """A bounded, finite Decimal from a string, an int or a Decimal."""
    try:
        return parse_decimal(value)
    except NumberError as exc:
        raise TariffError(f"{what}: {exc}") from None


def _opt_dec(value: Any, what: str) -> Decimal | None:
    return None if value is None else dec(value, what)


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise TariffError(f"{what} must be true or false, got {shown(repr(value))}")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TariffError(f"{what} must be an integer, got {shown(repr(value))}")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TariffError(f"{what} must be a string, got {shown(repr(value))}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise TariffError(f"{what} must be a list")
    return value


def _enum(cls: Any, value: Any, what: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(m.value for m in cls)
        raise TariffError(
            f"{what} must be one of {choices}, got {shown(repr(value))}"
        ) from None


def _month_day(value: Any, what: str) -> tuple[int, int]:
    text = _str(value, what)
    try:
        month, day = (int(part) for part in text.split("-"))
    except ValueError:
        raise TariffError(f"{what} must be MM-DD, got {text!r}") from None
    return month, day


def _blocks(items: list[Any]) -> tuple[Block, ...]:
    blocks = []
    previous_end = ZERO
    for number, item in enumerate(items, 1):
        what = f"block {number}"
        raw = _obj(item, what, {"from_kwh", "to_kwh", "price"}, {"to_kwh", "price"})
        start = raw.get("from_kwh")
        # Without from_kwh a block starts where the previous one ended.
        from_kwh = previous_end if start is None else dec(start, f"{what} from_kwh")
        to_kwh = _opt_dec(raw["to_kwh"], f"{what} to_kwh")
        blocks.append(Block(from_kwh, to_kwh, dec(raw["price"], f"{what} price")))
        previous_end = to_kwh if to_kwh is not None else previous_end
    return tuple(blocks)


def _tou(value: Any) -> TouSchedule:
    raw = _obj(
        value,
        "tou",
        {"rates", "day_profiles", "week_profiles", "seasons", "special_days"},
        {"rates", "day_profiles", "week_profiles", "seasons"},
    )
    rates = []
    for item in _list(raw["rates"], "tou rates"):
        r = _obj(item, "tou rate", {"index", "name", "price"}, {"index", "price"})
        index = _int(r["index"], "tou rate index")
        name = _str(r.get("name", f"T{index}"), "tou rate name")
        rates.append(TouRate(index, name, dec(r["price"], f"tou rate {index} price")))
    days = []
    for item in _list(raw["day_profiles"], "day_profiles"):
        d = _obj(item, "day profile", {"name", "switches"}, {"name", "switches"})
        switches = []
        for sw in _list(d["switches"], "switches"):
            s = _obj(sw, "switch", {"start", "rate"}, {"start", "rate"})
            try:
                start = time.fromisoformat(_str(s["start"], "switch start"))
            except ValueError:
                raise TariffError(
                    f"switch start must be HH:MM, got {s['start']!r}"
                ) from None
            switches.append(DaySwitch(start, _int(s["rate"], "switch rate")))
        days.append(DayProfile(_str(d["name"], "day profile name"), tuple(switches)))
    weeks = []
    for item in _list(raw["week_profiles"], "week_profiles"):
        w = _obj(item, "week profile", {"name", "days"}, {"name", "days"})
        names = tuple(_str(n, "week day profile") for n in _list(w["days"], "days"))
        if len(names) != 7:
            raise TariffError(
                f"week profile {w['name']!r} needs 7 day profiles (Mon-Sun)"
            )
        weeks.append(WeekProfile(_str(w["name"], "week profile name"), names))
    seasons = []
    for item in _list(raw["seasons"], "seasons"):
        s = _obj(
            item,
            "season",
            {"name", "start", "week_profile"},
            {"name", "start", "week_profile"},
        )
        month, day = _month_day(s["start"], "season start")
        seasons.append(
            Season(
                _str(s["name"], "season name"),
                month,
                day,
                _str(s["week_profile"], "season week_profile"),
            )
        )
    specials = []
    for item in _list(raw.get("special_days", []), "special_days"):
        s = _obj(
            item, "special day", {"date", "month_day", "day_profile"}, {"day_profile"}
        )
        profile = _str(s["day_profile"], "special day profile")
        if "date" in s:
            try:
                when = date.fromisoformat(_str(s["date"], "special day date"))
            except ValueError:
                raise TariffError(
                    f"special day date must be YYYY-MM-DD, got {s['date']!r}"
                ) from None
            specials.append(SpecialDay(profile, date=when))
        elif "month_day" in s:
            month, day = _month_day(s["month_day"], "special day month_day")
            specials.append(SpecialDay(profile, month=month, day=day))
        else:
            raise TariffError("a special day needs a date or a month_day")
    return TouSchedule(
        tuple(rates), tuple(days), tuple(weeks), tuple(seasons), tuple(specials)
    )


TARIFF_FIELDS = {
    "name", "kind", "vat_rate", "prices_include_vat", "vat_rounding",
    "currency_digits", "price", "blocks", "tou", "charges", "channel_fee",
    "channel_fees", "demand_charge_per_kw", "power_factor_penalty",
    "fbe_kwh_per_month",
}  # fmt: skip


def tariff_from_dict(data: Any) -> Tariff:
    """Build and validate a tariff from its JSON form (see ``tariff_to_dict``)."""
    raw = _obj(data, "tariff", TARIFF_FIELDS, {"vat_rate", "prices_include_vat"})
    if "kind" in raw:
        kind = _enum(TariffKind, raw["kind"], "kind")
    elif "tou" in raw:
        kind = TariffKind.TOU
    elif "price" in raw:
        kind = TariffKind.FLAT
    else:
        kind = TariffKind.STEP
    if "price" in raw:
        if "blocks" in raw:
            raise TariffError("give either price (flat) or blocks, not both")
        blocks = (Block(ZERO, None, dec(raw["price"], "price")),)
    else:
        blocks = _blocks(_list(raw.get("blocks", []), "blocks"))
    charges = []
    for item in _list(raw.get("charges", []), "charges"):
        c = _obj(
            item, "charge", {"name", "amount", "percent", "period"}, {"name", "period"}
        )
        name = _str(c["name"], "charge name")
        charges.append(
            Charge(
                name,
                _enum(ChargePeriod, c["period"], f"charge {name!r} period"),
                _opt_dec(c.get("amount"), f"charge {name!r} amount"),
                _opt_dec(c.get("percent"), f"charge {name!r} percent"),
            )
        )
    fees_raw = raw.get("channel_fees", {})
    if not isinstance(fees_raw, Mapping):
        raise TariffError("channel_fees must be an object {channel: amount}")
    fees = tuple(
        ChannelFee(ch, dec(v, f"channel fee {ch!r}")) for ch, v in fees_raw.items()
    )
    pf = None
    if raw.get("power_factor_penalty") is not None:
        p = _obj(
            raw["power_factor_penalty"],
            "power_factor_penalty",
            {"threshold", "percent", "step"},
            {"threshold", "percent"},
        )
        pf = PowerFactorPenalty(
            dec(p["threshold"], "power factor threshold"),
            dec(p["percent"], "power factor percent"),
            dec(p.get("step", "0.01"), "power factor step"),
        )
    return Tariff(
        kind=kind,
        vat_rate=dec(raw["vat_rate"], "vat_rate"),
        prices_include_vat=_bool(raw["prices_include_vat"], "prices_include_vat"),
        blocks=() if kind == TariffKind.TOU and "blocks" not in raw else blocks,
        tou=_tou(raw["tou"]) if "tou" in raw else None,
        charges=tuple(charges),
        channel_fee=dec(raw.get("channel_fee", "0"), "channel_fee"),
        channel_fees=fees,
        demand_charge_per_kw=_opt_dec(
            raw.get("demand_charge_per_kw"), "demand_charge_per_kw"
        ),
        power_factor_penalty=pf,
        fbe_kwh_per_month=dec(raw.get("fbe_kwh_per_month", "0"), "fbe_kwh_per_month"),
        currency_digits=_int(raw.get("currency_digits", 2), "currency_digits"),
        vat_rounding=_enum(
            VatRounding, raw.get("vat_rounding", "half_up"), "vat_rounding"
        ),
        name=_str(raw.get("name", ""), "name"),
    )


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def tariff_to_dict(tariff: Tariff) -> Json:
    """The normalised JSON form: explicit kind, continuous block bounds, strings."""
    out: Json = {
        "name": tariff.name,
        "kind": tariff.kind.value,
        "vat_rate": str(tariff.vat_rate),
        "prices_include_vat": tariff.prices_include_vat,
        "vat_rounding": tariff.vat_rounding.value,
        "currency_digits": tariff.currency_digits,
    }
    if tariff.blocks:
        out["blocks"] = [
            {"from_kwh": str(b.from_kwh), "to_kwh": _s(b.to_kwh), "price": str(b.price)}
            for b in tariff.blocks
        ]
    if tariff.tou is not None:
        tou = tariff.tou
        out["tou"] = {
            "rates": [
                {"index": r.index, "name": r.name, "price": str(r.price)}
                for r in tou.rates
            ],
            "day_profiles": [
                {
                    "name": d.name,
                    "switches": [
                        {"start": s.start.strftime("%H:%M"), "rate": s.rate}
                        for s in d.switches
                    ],
                }
                for d in tou.day_profiles
            ],
            "week_profiles": [
                {"name": w.name, "days": list(w.days)} for w in tou.week_profiles
            ],
            "seasons": [
                {
                    "name": s.name,
                    "start": f"{s.start_month:02d}-{s.start_day:02d}",
                    "week_profile": s.week_profile,
                }
                for s in tou.seasons
            ],
            "special_days": [
                {"date": d.date.isoformat(), "day_profile": d.day_profile}
                if d.date is not None
                else {
                    "month_day": f"{d.month:02d}-{d.day:02d}",
                    "day_profile": d.day_profile,
                }
                for d in tou.special_days
            ],
        }
    out["charges"] = [
        {"name": c.name, "period": c.period.value}
        | (
            {"amount": str(c.amount)}
            if c.amount is not None
            else {"percent": str(c.percent)}
        )
        for c in tariff.charges
    ]
    out["channel_fee"] = str(tariff.channel_fee)
    out["channel_fees"] = {f.channel: str(f.amount) for f in tariff.channel_fees}
    out["demand_charge_per_kw"] = _s(tariff.demand_charge_per_kw)
    pf = tariff.power_factor_penalty
    out["power_factor_penalty"] = (
        None
        if pf is None
        else {
            "threshold": str(pf.threshold),
            "percent": str(pf.percent),
            "step": str(pf.step),
        }
    )
    out["fbe_kwh_per_month"] = str(tariff.fbe_kwh_per_month)
    return out


REQUEST_FIELDS = {
    "tariff", "tender", "kwh", "month_to_date_kwh", "first_vend_of_month",
    "first_vend_of_year", "debt", "emergency_credit_owed", "channel",
    "channel_fee", "fbe_due", "meter_register",
}  # fmt: skip


def request_from_dict(data: Any) -> tuple[Tariff, VendRequest, Decimal | None]:
    """Parse a quote request: returns the tariff, the request and, for the inverse
    quote, the kWh asked for (``kwh`` given instead of ``tender``)."""
    raw = _obj(data, "request", REQUEST_FIELDS, {"tariff"})
    tariff = tariff_from_dict(raw["tariff"])
    if ("tender" in raw) == ("kwh" in raw):
        raise TariffError("give either tender or kwh")
    kwh = dec(raw["kwh"], "kwh") if "kwh" in raw else None
    debt = None
    if raw.get("debt") is not None:
        d = _obj(
            raw["debt"],
            "debt",
            {"balance", "recovery_percent", "min_per_vend", "max_per_vend"},
            {"balance", "recovery_percent"},
        )
        debt = Debt(
            dec(d["balance"], "debt balance"),
            dec(d["recovery_percent"], "debt recovery_percent"),
            _opt_dec(d.get("min_per_vend"), "debt min_per_vend"),
            _opt_dec(d.get("max_per_vend"), "debt max_per_vend"),
        )
    channel = raw.get("channel")
    request = VendRequest(
        tender=dec(raw.get("tender", "0"), "tender"),
        month_to_date_kwh=dec(raw.get("month_to_date_kwh", "0"), "month_to_date_kwh"),
        first_vend_of_month=_bool(
            raw.get("first_vend_of_month", False), "first_vend_of_month"
        ),
        first_vend_of_year=_bool(
            raw.get("first_vend_of_year", False), "first_vend_of_year"
        ),
        debt=debt,
        emergency_credit_owed=dec(
            raw.get("emergency_credit_owed", "0"), "emergency_credit_owed"
        ),
        channel=None if channel is None else _str(channel, "channel"),
        channel_fee=_opt_dec(raw.get("channel_fee"), "channel_fee"),
        fbe_due=_bool(raw.get("fbe_due", False), "fbe_due"),
        meter_register=_enum(
            MeterRegister, raw.get("meter_register", "kwh"), "meter_register"
        ),
    )
    return tariff, request, kwh


def _line(line: ChargeLine) -> Json:
    return {"name": line.name, "amount": str(line.amount), "vat": str(line.vat)}


def _use(use: BlockUse) -> Json:
    return {
        "block": use.block,
        "kwh": str(use.kwh),
        "price": str(use.price),
        "amount": str(use.amount),
    }


def quote_to_dict(quote: VendQuote) -> Json:
    return {
        "tender": str(quote.tender),
        "units_kwh": str(quote.units_kwh),
        "energy_amount": str(quote.energy_amount),
        "energy_vat": str(quote.energy_vat),
        "channel_fee": _line(quote.channel_fee),
        "charges": [_line(c) for c in quote.charges],
        "emergency_credit_recovered": str(quote.emergency_credit_recovered),
        "debt_recovered": str(quote.debt_recovered),
        "debt_remaining": str(quote.debt_remaining),
        "blocks": [_use(u) for u in quote.blocks],
        "month_to_date_kwh": str(quote.month_to_date_kwh),
        "credit_amount": str(quote.credit_amount),
        "fbe_kwh": str(quote.fbe_kwh),
        "total": str(quote.total),
    }
