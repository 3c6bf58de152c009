"""Report payloads, versioned (docs/concentrators.md section 4).

A :class:`Report` is the typed form of one payload: its type, version, the
concentrator, the request it answers (``id_pet``, 0 for the collection plan)
and its rows, one row class per report type. :func:`render` writes the XML
text (fast: plain string building, every value escaped or typed), and
:func:`parse` reads it back through the hardened parser and the schema of
its major version (``schema/report-1.xsd``), streaming: a report file of
hundreds of thousands of rows costs its rows, not a document tree.

Units and scalers are fixed per major version, never carried per value:
energies in Wh and varh, power in W, voltage in 0.1 V, current in 0.01 A.
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, ClassVar
from xml.sax.saxutils import quoteattr

from . import xmlsafe
from .errors import TooLarge, UnsupportedVersion, ValidationError
from .messages import Hex, ReportType
from .soap import converter, format_time, parse_time

NS = "urn:prepaid-platform:dcu:report:1"
VERSION = "1.0"
MAJOR = 1
XSD = "report-1.xsd"
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
# Rows one report may hold: the full load-profile buffer (4 days of 96
# intervals) of a concentrator's 1,024 meters.
DEFAULT_MAX_ROWS = 1024 * 4 * 96
_VERSION = re.compile(r"(\d{1,3})\.(\d{1,3})")
_M = f"{{{NS}}}"
# Characters XML 1.0 cannot carry: replaced in free text (event details).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Row:
    """A report row (read-only by convention: rows are made by the million,
    and frozen dataclasses cost three times as much to create)."""

    TAG: ClassVar[str]
    # attribute name in XML -> field name, for fields whose names differ
    ATTRS: ClassVar[dict[str, str]] = {}


# -- rows grouped under <Meter id="..."> -------------------------------------
@dataclass(slots=True)
class InstantRow(Row):
    meter_id: str
    time: dt.datetime
    ai: int  # active energy import, Wh
    ae: int  # active energy export, Wh
    p: int  # active power, W
    v: int  # voltage L1, 0.1 V
    i: int  # current L1, 0.01 A
    relay: bool  # output connected
    credit: int | None = None  # remaining credit, Wh (prepayment meters)
    TAG = "Instant"
    ATTRS = {"t": "time"}


@dataclass(slots=True)
class DailyRow(Row):
    meter_id: str
    time: dt.datetime  # the meter's midnight
    ai: int
    ae: int
    ri: int  # reactive energy import, varh
    re: int  # reactive energy export, varh
    TAG = "Daily"
    ATTRS = {"t": "time"}


@dataclass(slots=True)
class MonthlyRow(Row):
    meter_id: str
    time: dt.datetime  # billing reset: the first of the month, 00:00
    ai: int
    max_demand: int  # of the month ended, W (attribute md)
    mdt: dt.datetime | None = None  # when it happened
    TAG = "Monthly"
    ATTRS = {"t": "time", "md": "max_demand"}


@dataclass(slots=True)
class IntervalRow(Row):
    meter_id: str
    time: dt.datetime  # end of the 15-minute interval
    ai: int  # energy import register at the end of the interval, Wh
    p: int  # average active power over the interval, W
    st: int = 0  # status bits (STATUS_*)
    TAG = "Interval"
    ATTRS = {"t": "time"}


# Interval status bits (the IDIS AMR profile status byte).
STATUS_CLOCK_INVALID = 0x02
STATUS_DATA_NOT_VALID = 0x04
STATUS_CLOCK_ADJUSTED = 0x20
STATUS_POWER_DOWN = 0x80


@dataclass(slots=True)
class EventRow(Row):
    meter_id: str
    time: dt.datetime
    log: str  # "standard" | "disconnector"
    code: int
    TAG = "Event"
    ATTRS = {"t": "time"}


@dataclass(slots=True)
class RelayRow(Row):
    meter_id: str
    time: dt.datetime
    connected: bool
    state: int | None = None  # 0 disconnected, 1 connected, 2 ready for reconnection
    TAG = "Relay"
    ATTRS = {"t": "time"}


# -- rows of their own -------------------------------------------------------
@dataclass(slots=True)
class MeterEntry(Row):
    """A meter of the concentrator's list, with its communication status."""

    meter_id: str
    pda: Hex  # physical device address (system title)
    status: str  # joined | lost | pending | removed | never_joined
    approved: bool
    short_address: int | None = None
    hops: int | None = None
    collector: str | None = None
    joined_at: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    firmware: str | None = None
    model: str | None = None
    TAG = "Entry"
    ATTRS = {
        "id": "meter_id",
        "addr": "short_address",
        "joined": "joined_at",
        "seen": "last_seen",
        "fw": "firmware",
    }


@dataclass(slots=True)
class DcEventRow(Row):
    time: dt.datetime
    group: int
    code: int
    meter_id: str | None = None
    detail: str | None = None
    TAG = "DcEvent"
    ATTRS = {"t": "time", "meter": "meter_id"}


@dataclass(slots=True)
class TaskRow(Row):
    type: str
    period: str
    send: bool
    delivery: str
    TAG = "Task"


@dataclass(slots=True)
class DcParameters(Row):
    dc_id: str
    model: str
    firmware: str
    time: dt.datetime  # the concentrator's clock when the report was made
    uptime: int  # seconds since the last boot
    meters: int  # meters in the directory
    joined: int  # of which joined the network now
    pan: Hex  # G3 PAN identifier (2 bytes)
    outbox: int  # deliveries waiting for the head-end
    clock_set: dt.datetime | None = None  # last time the head-end set the clock
    tasks: tuple[TaskRow, ...] = ()
    TAG = "Concentrator"
    ATTRS = {"id": "dc_id", "fw": "firmware", "t": "time", "clockSet": "clock_set"}


ROWS: dict[ReportType, type[Row]] = {
    ReportType.INSTANT: InstantRow,
    ReportType.DAILY: DailyRow,
    ReportType.MONTHLY: MonthlyRow,
    ReportType.LOAD_PROFILE: IntervalRow,
    ReportType.METER_EVENTS: EventRow,
    ReportType.RELAY_STATUS: RelayRow,
    ReportType.METER_LIST: MeterEntry,
    ReportType.DC_EVENTS: DcEventRow,
    ReportType.DC_PARAMETERS: DcParameters,
}
GROUPED = frozenset(
    {
        ReportType.INSTANT,
        ReportType.DAILY,
        ReportType.MONTHLY,
        ReportType.LOAD_PROFILE,
        ReportType.METER_EVENTS,
        ReportType.RELAY_STATUS,
    }
)


@dataclass(frozen=True)
class Report:
    report_type: ReportType
    dc_id: str
    id_pet: int
    generated: dt.datetime
    rows: tuple[Row, ...]
    version: str = VERSION

    @property
    def meters(self) -> set[str]:
        return {r.meter_id for r in self.rows if getattr(r, "meter_id", None)}


# -- field specs -------------------------------------------------------------
@dataclass(frozen=True)
class _Attr:
    xml: str
    name: str
    kind: Any
    optional: bool


_KINDS = (dt.datetime, bool, int, Hex, str)


def _kind(hint: Any) -> tuple[Any, bool]:
    """(value type, optional) of a row field's resolved annotation."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) != 1:
            raise TypeError(f"row fields have one type, not {hint}")
        return _kind(kinds[0])[0], True
    if hint in _KINDS:
        return hint, False
    if hint is bytes:
        raise TypeError("bytes in a row: declare Hex")
    raise TypeError(f"no XML form for {hint}")


def _specs(cls: type[Row]) -> tuple[_Attr, ...]:
    back = {v: k for k, v in cls.ATTRS.items()}
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name == "meter_id" and cls.TAG != "Entry" and cls is not DcEventRow:
            continue  # carried by the enclosing <Meter>
        if f.name == "tasks":
            continue
        kind, optional = _kind(hints[f.name])
        out.append(_Attr(back.get(f.name, f.name), f.name, kind, optional))
    return tuple(out)


_SPECS = {cls: _specs(cls) for cls in (*ROWS.values(), TaskRow)}


# -- render ---------------------------------------------------------------
@lru_cache(maxsize=8192)
def _time(value: dt.datetime) -> str:
    return f'"{format_time(value)}"'


def _int(value: int) -> str:
    return f'"{int(value)}"'


def _bool(value: bool) -> str:
    return '"true"' if value else '"false"'


def _hex(value: bytes) -> str:
    return f'"{bytes(value).hex().upper()}"'


def _str(value: str) -> str:
    return quoteattr(_NOT_XML.sub("?", value))


_CONVERT = {dt.datetime: _time, int: _int, bool: _bool, Hex: _hex, str: _str}
_RENDER = {
    cls: tuple((spec.xml, spec.name, _CONVERT[spec.kind]) for spec in specs)
    for cls, specs in _SPECS.items()
}


def _row_xml(row: Row) -> str:
    parts = [f"<{row.TAG}"]
    for xml, name, convert in _RENDER[type(row)]:
        value = getattr(row, name)
        if value is not None:
            parts.append(f" {xml}={convert(value)}")
    if isinstance(row, DcParameters) and row.tasks:
        parts.append(">")
        parts.extend(_row_xml(t) for t in row.tasks)
        parts.append(f"</{row.TAG}>")
    else:
        parts.append("/>")
    return "".join(parts)


def render(report: Report) -> str:
    """The payload text of ``report`` (rows of one meter kept together)."""
    cls = ROWS[report.report_type]
    head = (
        f'<Report xmlns="{NS}" type="{report.report_type.value}" '
        f'version="{report.version}" dc={quoteattr(report.dc_id)} '
        f'idPet="{int(report.id_pet)}" generated="{format_time(report.generated)}">'
    )
    out = [head]
    if report.report_type in GROUPED:
        current = None
        for row in report.rows:
            if not isinstance(row, cls):
                raise TypeError(f"{type(row).__name__} in {report.report_type}")
            if row.meter_id != current:  # type: ignore[attr-defined]
                if current is not None:
                    out.append("</Meter>")
                current = row.meter_id  # type: ignore[attr-defined]
                out.append(f"<Meter id={quoteattr(current)}>")
            out.append(_row_xml(row))
        if current is not None:
            out.append("</Meter>")
    else:
        for row in report.rows:
            if not isinstance(row, cls):
                raise TypeError(f"{type(row).__name__} in {report.report_type}")
            out.append(_row_xml(row))
    out.append("</Report>")
    return "".join(out)


# -- parse -------------------------------------------------------------------
def check_version(version: str) -> None:
    match = _VERSION.fullmatch(version or "")
    if not match:
        raise ValidationError(f"version {version!r} is not MAJOR.MINOR", "version")
    if int(match.group(1)) != MAJOR:
        raise UnsupportedVersion(
            f"report version {version} is not supported (this head-end reads "
            f"{MAJOR}.x)",
            "version",
        )


# Times repeat across the meters of a report: each is parsed once.
_PARSE_KIND = {dt.datetime: lru_cache(maxsize=8192)(parse_time)}
_PARSE = {
    cls: tuple(
        (spec.xml, spec.name, _PARSE_KIND.get(spec.kind) or converter(spec.kind))
        for spec in specs
    )
    for cls, specs in _SPECS.items()
}
_TAGS = {cls: _M + cls.TAG for cls in _SPECS}
_METER = _M + "Meter"


def _row(cls: type[Row], el: Any, meter_id: str | None) -> Row:
    values: dict[str, Any] = {}
    attrib = el.attrib
    for xml, name, convert in _PARSE[cls]:
        text = attrib.get(xml)
        if text is None:
            continue
        try:
            values[name] = convert(text)
        except ValueError as exc:
            raise ValidationError(str(exc), f"{cls.TAG}/@{xml}") from None
    if meter_id is not None:
        values["meter_id"] = meter_id
    if cls is DcParameters:
        values["tasks"] = tuple(_row(TaskRow, t, None) for t in el)
    return cls(**values)


def parse(
    text: str | bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
    expected_type: ReportType | None = None,
) -> Report:
    """The typed report in payload ``text``; :class:`ValidationError` (or
    :class:`UnsupportedVersion`, :class:`TooLarge`) names what is wrong."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    stream = xmlsafe.Stream(
        data, xsd=XSD, max_bytes=max_bytes, max_depth=4, what="report"
    )
    root = stream.root
    if root.tag != _M + "Report":
        stream.check_well_formed()
        raise ValidationError(
            f"not a report of namespace {NS}", xmlsafe.local(root) or "Report"
        )
    check_version(root.get("version", ""))
    try:
        announced = ReportType(root.get("type"))
    except ValueError:
        announced = None  # the schema names what is wrong
    if expected_type is not None and announced not in (None, expected_type):
        raise ValidationError(
            f"a {announced} payload where {expected_type} was announced", "type"
        )
    cls = ROWS.get(announced) if announced else None
    grouped = announced in GROUPED
    row_tag = _TAGS[cls] if cls else None
    rows: list[Row] = []
    for depth, el in stream:
        if depth == 0 or cls is None:
            continue
        if grouped and depth == 2:
            if el.tag != row_tag:
                tag = xmlsafe.local(el)
                raise ValidationError(f"{tag} rows in a {announced} report", tag)
            rows.append(_row(cls, el, el.getparent().get("id")))
        elif depth == 1:
            if el.tag != (_METER if grouped else row_tag):
                tag = xmlsafe.local(el)
                raise ValidationError(f"{tag} in a {announced} report", tag)
            if not grouped:
                rows.append(_row(cls, el, None))
            xmlsafe.Stream.release(el)
        else:
            continue
        if len(rows) > max_rows:
            raise TooLarge(f"report of more than {max_rows} rows")
    return Report(
        report_type=ReportType(root.get("type")),
        dc_id=root.get("dc"),
        id_pet=int(root.get("idPet")),
        generated=parse_time(root.get("generated")),
        rows=tuple(rows),
        version=root.get("version"),
    )
