"""May this vendor's terminal sell this now?  The vend-limit decision, pure
Python (no trytond import).

The Tryton layer fills plain dataclasses: the chain from the vendor owner
down to the operator (:class:`Node`, one per level), the vendor's float
(:class:`Float`), the request (:class:`VendRequest`) and, when known, the
meter (:class:`MeterStatus`).  :func:`check` returns ``None`` when the sale
may go ahead, else the first :class:`Refusal`, in this order:

1. lifecycle, top down: every level must be active, before its liability
   cut-off, with its credentials not revoked;
2. where from: the client's IP address in every level's allowed networks;
3. when: the time, in the utility's time zone, in every level's hours;
4. the meter: not blocked, its supply group allowed to the vendor;
5. the amount: within every level's minimum and maximum;
6. today: every level's daily amount and count, after this sale;
7. money: every level's credit limit (sales not yet banked), then the
   float, which never goes below its floor (minus the credit line).

Each refusal names the XMLVend fault the standard defines for it
(``Refusal.fault``) and a message for the operator; ``refusal.exception()``
is what the XMLVend backend raises.  The mapping:

- the vending client itself is blocked (a level from owner to terminal is
  not active, past its cut-off, the terminal's credentials revoked, the
  address not allowed): ``ClientIDAuthorisationEx``;
- the operator, or this request, is not allowed (operator not active or
  revoked, outside hours, amount out of range, daily limits):
  ``RequestAuthorisationEx``;
- not enough credit (a level's credit limit or the float):
  ``VendorCreditEx``;
- the meter is blocked: ``BlockedMeterEx``; its supply group is not the
  vendor's: ``SGCAuthorisationEx``.

The decision reads nothing and writes nothing: the caller holds what makes
it true until the sale is booked (the float's reservation, the day's
counters).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from .money import ZERO, format_amount, require_decimal
from .xmlvend import faults

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Level(StrEnum):
    "The vendor hierarchy, top down"

    OWNER = "vendor owner"
    VENDOR = "vendor"
    OUTLET = "outlet"
    TERMINAL = "terminal"
    OPERATOR = "operator"


ORDER = tuple(Level)


class Lifecycle(StrEnum):
    DRAFT = "draft"  # being set up: may not sell yet
    ACTIVE = "active"
    SUSPENDED = "suspended"  # may sell again once reactivated
    TERMINATED = "terminated"  # for good


class Kind(StrEnum):
    "What is asked for; only money sales draw on credit and amount limits"

    VEND = "vend"
    PAY_ACCOUNT = "pay_account"
    FBE = "fbe"  # free: no amount, no credit
    TRIAL = "trial"  # a quote: checked like a vend, books nothing


MONEY_KINDS = frozenset({Kind.VEND, Kind.PAY_ACCOUNT, Kind.TRIAL})


@dataclass(frozen=True)
class Hours:
    """Selling hours: from ``start`` to ``end`` local time on ``weekdays``
    (0 = Monday).  A window whose end is not after its start crosses
    midnight (22:00-02:00) and belongs to the weekday it starts on."""

    start: dt.time
    end: dt.time
    weekdays: frozenset[int] = frozenset(range(7))

    def allows(self, local: dt.datetime) -> bool:
        now = local.time().replace(tzinfo=None)
        day = local.weekday()
        if self.start < self.end:
            return day in self.weekdays and self.start <= now < self.end
        return (day in self.weekdays and now >= self.start) or (
            (day - 1) % 7 in self.weekdays and now < self.end
        )

    def validate(self, where: str) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, dt.time):
                raise TypeError(f"{where}: hours {name} must be a time of day")
            if value.tzinfo is not None:
                raise ValueError(
                    f"{where}: hours {name} is a local time: without a time zone"
                )
        if not self.weekdays or not all(
            type(day) is int and 0 <= day <= 6 for day in self.weekdays
        ):
            raise ValueError(f"{where}: hours weekdays must be 0 (Monday) to 6")

    def __str__(self) -> str:
        days = "" if len(self.weekdays) == 7 else " on " + ",".join(
            ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[d]
            for d in sorted(self.weekdays)
        )  # fmt: skip
        return f"{self.start:%H:%M}-{self.end:%H:%M}{days}"


@dataclass(frozen=True)
class Limits:
    """A level's limits; None (or empty) means no limit at this level.

    ``credit_limit`` caps the sales not yet banked or settled at this level
    (``Node.outstanding``), like a cashier's vend limit; the vendor's float
    has its own floor (:class:`Float`)."""

    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    daily_amount: Decimal | None = None
    daily_count: int | None = None
    credit_limit: Decimal | None = None
    networks: tuple[Network, ...] = ()
    hours: tuple[Hours, ...] = ()
    supply_groups: frozenset[str] = frozenset()  # SGCs it may sell for

    def validate(self, where: str) -> None:
        for value, name in (
            (self.min_amount, "minimum amount"),
            (self.max_amount, "maximum amount"),
            (self.daily_amount, "daily amount"),
            (self.credit_limit, "credit limit"),
        ):
            if value is not None:
                require_decimal(value, f"{where}: {name}")
        if (
            self.min_amount is not None
            and self.max_amount is not None
            and self.min_amount > self.max_amount
        ):
            raise ValueError(f"{where}: minimum amount above the maximum")
        if self.daily_count is not None and not _is_count(self.daily_count):
            raise ValueError(f"{where}: daily count must be a whole number >= 0")
        for network in self.networks:
            if not isinstance(network, Network):
                raise TypeError(f"{where}: networks must be ipaddress networks")
        for window in self.hours:
            if not isinstance(window, Hours):
                raise TypeError(f"{where}: hours must be Hours windows")
            window.validate(where)


@dataclass(frozen=True)
class Node:
    """One level of the chain, with today's figures (the utility's day)."""

    level: Level
    code: str
    state: Lifecycle = Lifecycle.ACTIVE
    limits: Limits = field(default_factory=Limits)
    cut_off: dt.datetime | None = None  # liability cut-off: no sale at or after
    revoked: bool = False  # credentials (password, API token, certificate)
    sold_today: Decimal = ZERO
    count_today: int = 0
    outstanding: Decimal = ZERO  # sold and not yet banked or settled

    @property
    def label(self) -> str:
        return f"{self.level.value} {self.code}"


@dataclass(frozen=True)
class Float:
    """The vendor's float: ``balance`` is its ledger balance (the vendor's
    money the utility holds), ``reserved`` what sales in flight have taken,
    ``credit_line`` how far it may go below zero."""

    balance: Decimal
    credit_line: Decimal = ZERO
    reserved: Decimal = ZERO

    @property
    def floor(self) -> Decimal:
        return -self.credit_line

    @property
    def available(self) -> Decimal:
        return self.balance - self.reserved - self.floor


@dataclass(frozen=True)
class MeterStatus:
    number: str
    supply_group: str | None = None
    blocked: bool = False
    blocked_reason: str = ""


@dataclass(frozen=True)
class VendRequest:
    kind: Kind
    amount: Decimal
    at: dt.datetime  # aware
    address: Address | str


@dataclass(frozen=True)
class Refusal:
    """Why a sale is refused: the XMLVend fault class, a stable ``reason``
    code (for logs and tests), the level that refused and the message."""

    fault: type[faults.XMLVendError]
    reason: str
    level: Level | None
    message: str

    def exception(self) -> faults.XMLVendError:
        return self.fault(self.message, operator_msg=self.message)


def check(
    chain: tuple[Node, ...],
    float_: Float,
    request: VendRequest,
    timezone: ZoneInfo,
    meter: MeterStatus | None = None,
) -> Refusal | None:
    "None when request may go ahead, else the first refusal (module's order)"
    _validate(chain, float_, request)
    return (
        _lifecycle(chain, request)
        or _address(chain, request)
        or _hours(chain, request, timezone)
        or _meter(chain, meter)
        or (_money(chain, float_, request) if request.kind in MONEY_KINDS else None)
    )


def vend_range(chain: tuple[Node, ...]) -> tuple[Decimal | None, Decimal | None]:
    """The smallest and largest amount the chain allows (the highest minimum
    and the lowest maximum), for a login or confirm-customer answer."""
    mins = [n.limits.min_amount for n in chain if n.limits.min_amount is not None]
    maxs = [n.limits.max_amount for n in chain if n.limits.max_amount is not None]
    return (max(mins) if mins else None, min(maxs) if maxs else None)


# -------------------------------------------------------------------- checks
def _validate(chain: tuple[Node, ...], float_: Float, request: VendRequest) -> None:
    levels = [node.level for node in chain]
    if not levels or levels != sorted(levels, key=ORDER.index) or len(
        set(levels)
    ) != len(levels):  # fmt: skip
        raise ValueError(
            "the chain must list distinct levels top down (owner ... operator)"
        )
    if Level.VENDOR not in levels or Level.TERMINAL not in levels:
        raise ValueError("the chain must hold at least the vendor and the terminal")
    for node in chain:
        node.limits.validate(node.label)
        require_decimal(node.sold_today, f"{node.label}: sold today")
        require_decimal(node.outstanding, f"{node.label}: outstanding")
        if not _is_count(node.count_today):
            raise ValueError(f"{node.label}: count today must be a whole number >= 0")
        if node.cut_off is not None and node.cut_off.tzinfo is None:
            raise ValueError(f"{node.label}: the cut-off needs a time zone")
    require_decimal(float_.balance, "float balance", allow_negative=True)
    require_decimal(float_.credit_line, "credit line")
    require_decimal(float_.reserved, "reserved float")
    require_decimal(request.amount, "amount")
    if request.at.tzinfo is None:
        raise ValueError("the request's time needs a time zone")


def _lifecycle(chain: tuple[Node, ...], request: VendRequest) -> Refusal | None:
    for node in chain:
        fault = (
            faults.RequestAuthorisationEx
            if node.level == Level.OPERATOR
            else faults.ClientIDAuthorisationEx
        )
        if node.state != Lifecycle.ACTIVE:
            word = {
                Lifecycle.DRAFT: "is not active yet",
                Lifecycle.SUSPENDED: "is suspended",
                Lifecycle.TERMINATED: "is terminated",
            }[node.state]
            reason = f"{node.level.name.lower()}_{node.state.value}"
            message = f"The {node.label} {word}: no sale."
            return Refusal(fault, reason, node.level, message)
        if node.cut_off is not None and request.at >= node.cut_off:
            return Refusal(
                fault, "cut_off", node.level,
                f"The {node.label} may not sell after its liability cut-off "
                f"{node.cut_off.isoformat()}.",
            )  # fmt: skip
        if node.revoked:
            return Refusal(fault, "revoked", node.level,
                           f"The {node.label}'s credentials are revoked.")  # fmt: skip
    return None


def _address(chain: tuple[Node, ...], request: VendRequest) -> Refusal | None:
    try:
        address = ipaddress.ip_address(request.address)
    except ValueError:
        return Refusal(faults.ClientIDAuthorisationEx, "address", None,
                       "The client's address cannot be read.")  # fmt: skip
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    for node in chain:
        networks = node.limits.networks
        if networks and not any(address in network for network in networks):
            return Refusal(
                faults.ClientIDAuthorisationEx, "address", node.level,
                f"The {node.label} may not sell from address {address}.",
            )  # fmt: skip
    return None


def _hours(
    chain: tuple[Node, ...], request: VendRequest, timezone: ZoneInfo
) -> Refusal | None:
    local = request.at.astimezone(timezone)
    for node in chain:
        hours = node.limits.hours
        if hours and not any(window.allows(local) for window in hours):
            allowed = ", ".join(str(window) for window in hours)
            return Refusal(
                faults.RequestAuthorisationEx, "hours", node.level,
                f"The {node.label} may sell only {allowed} ({timezone.key} time); "
                f"it is {local:%a %H:%M}.",
            )  # fmt: skip
    return None


def _meter(chain: tuple[Node, ...], meter: MeterStatus | None) -> Refusal | None:
    if meter is None:
        return None
    if meter.blocked:
        reason = f": {meter.blocked_reason}" if meter.blocked_reason else ""
        return Refusal(faults.BlockedMeterEx, "meter_blocked", None,
                       f"Meter {meter.number} is blocked{reason}.")  # fmt: skip
    for node in chain:
        groups = node.limits.supply_groups
        if groups and meter.supply_group not in groups:
            return Refusal(
                faults.SGCAuthorisationEx, "supply_group", node.level,
                f"The {node.label} may not sell for supply group "
                f"{meter.supply_group or '(none)'} of meter {meter.number}.",
            )  # fmt: skip
    return None


def _money(
    chain: tuple[Node, ...], float_: Float, request: VendRequest
) -> Refusal | None:
    amount = request.amount
    if amount <= 0:
        return Refusal(faults.RequestAuthorisationEx, "amount", None,
                       "The amount must be more than zero.")  # fmt: skip
    for node in chain:
        limits = node.limits
        if limits.min_amount is not None and amount < limits.min_amount:
            return Refusal(
                faults.RequestAuthorisationEx, "min_amount", node.level,
                f"{_f(amount)} is below the {node.label}'s minimum of "
                f"{_f(limits.min_amount)}.",
            )  # fmt: skip
        if limits.max_amount is not None and amount > limits.max_amount:
            return Refusal(
                faults.RequestAuthorisationEx, "max_amount", node.level,
                f"{_f(amount)} is above the {node.label}'s maximum of "
                f"{_f(limits.max_amount)}.",
            )  # fmt: skip
    for node in chain:
        limits = node.limits
        if limits.daily_count is not None and node.count_today + 1 > limits.daily_count:
            return Refusal(
                faults.RequestAuthorisationEx, "daily_count", node.level,
                f"The {node.label} has made its {limits.daily_count} sales "
                "allowed today.",
            )  # fmt: skip
        if (
            limits.daily_amount is not None
            and node.sold_today + amount > limits.daily_amount
        ):
            left = max(limits.daily_amount - node.sold_today, ZERO)
            return Refusal(
                faults.RequestAuthorisationEx, "daily_amount", node.level,
                f"{_f(amount)} would pass the {node.label}'s daily limit of "
                f"{_f(limits.daily_amount)} ({_f(left)} left today).",
            )  # fmt: skip
    for node in chain:
        limit = node.limits.credit_limit
        if limit is not None and node.outstanding + amount > limit:
            left = max(limit - node.outstanding, ZERO)
            return Refusal(
                faults.VendorCreditEx, "credit_limit", node.level,
                f"{_f(amount)} would pass the {node.label}'s credit limit of "
                f"{_f(limit)} ({_f(left)} left): bank the takings first.",
            )  # fmt: skip
    if amount > float_.available:
        return Refusal(
            faults.VendorCreditEx, "float", Level.VENDOR,
            f"Insufficient vendor credit: {_f(amount)} asked, "
            f"{_f(max(float_.available, ZERO))} available.",
        )  # fmt: skip
    return None


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0


def _f(value: Decimal) -> str:
    return format_amount(value)
