"""Typed messages of the two SOAP services (docs/concentrators.md section 3).

The concentrator's service (the head-end calls it): :class:`SyncRequest`,
:class:`AsyncRequest`, :class:`ReportQuery`, :class:`Order` (with a body of
:data:`ORDER_BODIES`) and :class:`GatewayRequest`, each with its response.
The head-end's service (concentrators call it): :class:`ReportDelivery`,
:class:`RequestStatusUpdate` and :class:`MeterStatusUpdate`, with their
acknowledgements.

Each class lists its XML children in ``FIELDS``, in schema order; ``soap.py``
renders and parses them from that list, so the Python and XML names are
declared once, next to each other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

NS = "urn:prepaid-platform:dcu:1"
MAX_METERS = 1024  # meters one message may name (a concentrator's capacity)


class ReportType(StrEnum):
    INSTANT = "instant"
    DAILY = "daily"
    MONTHLY = "monthly"
    LOAD_PROFILE = "load_profile"
    METER_EVENTS = "meter_events"
    METER_LIST = "meter_list"
    RELAY_STATUS = "relay_status"
    DC_PARAMETERS = "dc_parameters"
    DC_EVENTS = "dc_events"


# Report types a concentrator answers synchronously (read now).
SYNC_REPORTS = frozenset(
    {
        ReportType.INSTANT,
        ReportType.RELAY_STATUS,
        ReportType.METER_LIST,
        ReportType.DC_PARAMETERS,
    }
)


class RequestStatus(StrEnum):
    OK = "ok"
    WORKING = "working"
    METER_TIMEOUT = "meter_timeout"
    EXPIRED = "expired"
    PARTIAL = "partial"
    MALFORMED = "malformed"
    UNKNOWN_METER = "unknown_meter"
    VERSION_UNSUPPORTED = "version_unsupported"
    FAILED = "failed"


class MeterStatus(StrEnum):
    JOINED = "joined"
    LOST = "lost"
    REMOVED = "removed"


class Source(StrEnum):
    STORE = "store"  # answer from the concentrator's buffers
    METER = "meter"  # read the meters now


class RelayAction(StrEnum):
    DISCONNECT = "disconnect"
    RECONNECT = "reconnect"
    ARM = "arm"  # ready for reconnection: the customer closes the relay


class Decision(StrEnum):
    APPROVED = "approved"
    PENDING = "pending"
    REFUSED = "refused"


class Delivery(StrEnum):
    SOAP = "soap"
    FILE = "file"


class Period(StrEnum):
    QUARTER_HOUR = "PT15M"
    HOUR = "PT1H"
    DAY = "P1D"
    MONTH = "P1M"


class FirmwareTarget(StrEnum):
    CONCENTRATOR = "concentrator"
    METERS = "meters"


class AckResult(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    MALFORMED = "malformed"


class Hex(bytes):
    """Marker type: bytes rendered as xs:hexBinary (base64 otherwise)."""


@dataclass(frozen=True)
class F:
    """One XML child: python attribute, element name, value type.

    ``wrapper``: the list is rendered inside this element (``<Meters>`` around
    ``<Meter>`` items); ``repeated``: the items are direct children."""

    name: str
    tag: str
    kind: Any
    wrapper: str | None = None
    repeated: bool = False

    @property
    def many(self) -> bool:
        return self.repeated or self.wrapper is not None


class Message:
    TAG: ClassVar[str]
    FIELDS: ClassVar[tuple[F, ...]]


_METERS = F("meters", "Meter", str, wrapper="Meters")


def _check_meters(meters: tuple[str, ...]) -> None:
    if len(meters) > MAX_METERS:
        raise ValueError(f"at most {MAX_METERS} meters per message")


# -- the concentrator's service ----------------------------------------------
@dataclass(frozen=True)
class SyncRequest(Message):
    """Read now from the meters (or the concentrator) and answer at once."""

    id_pet: int
    report_type: ReportType
    meters: tuple[str, ...] = ()
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    priority: int = 3
    TAG = "Request"
    FIELDS = (
        F("id_pet", "IdPet", int),
        F("report_type", "ReportType", ReportType),
        _METERS,
        F("start", "From", dt.datetime),
        F("end", "To", dt.datetime),
        F("priority", "Priority", int),
    )


@dataclass(frozen=True)
class SyncResponse(Message):
    id_pet: int
    status: RequestStatus
    payload: str | None = None
    message: str | None = None
    TAG = "RequestResponse"
    FIELDS = (
        F("id_pet", "IdPet", int),
        F("status", "Status", RequestStatus),
        F("payload", "Payload", str),
        F("message", "Message", str),
    )


@dataclass(frozen=True)
class AsyncRequest(Message):
    """Answered later by Report + UpdateRequestStatus calls to the head-end."""

    id_pet: int
    report_type: ReportType
    meters: tuple[str, ...] = ()
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    priority: int = 3
    source: Source = Source.STORE
    TAG = "AsyncRequest"
    FIELDS = SyncRequest.FIELDS + (F("source", "Source", Source),)


@dataclass(frozen=True)
class Accepted(Message):
    """Answer to AsyncRequest, ReportQuery and Order: ``working`` when taken
    in, otherwise why not (malformed, expired, unknown_meter)."""

    id_pet: int
    status: RequestStatus
    message: str | None = None
    TAG = "AsyncRequestResponse"
    FIELDS = (
        F("id_pet", "IdPet", int),
        F("status", "Status", RequestStatus),
        F("message", "Message", str),
    )


@dataclass(frozen=True)
class ReportQuery(Message):
    """Events from the concentrator's store, filtered by group and code."""

    id_pet: int
    start: dt.datetime
    end: dt.datetime
    meters: tuple[str, ...] = ()
    event_log: str | None = None  # "standard" | "disconnector"
    event_code: int | None = None
    priority: int = 3
    TAG = "ReportQuery"
    FIELDS = (
        F("id_pet", "IdPet", int),
        _METERS,
        F("start", "From", dt.datetime),
        F("end", "To", dt.datetime),
        F("event_log", "EventLog", str),
        F("event_code", "EventCode", int),
        F("priority", "Priority", int),
    )


@dataclass(frozen=True)
class ReportQueryAccepted(Accepted):
    TAG = "ReportQueryResponse"


@dataclass(frozen=True)
class Window(Message):
    """Execution window: not before ``start``; abandoned (expired) at ``end``."""

    end: dt.datetime
    start: dt.datetime | None = None
    TAG = "Window"
    FIELDS = (F("start", "Start", dt.datetime), F("end", "End", dt.datetime))


@dataclass(frozen=True)
class RelayOrder(Message):
    action: RelayAction
    meters: tuple[str, ...]
    TAG = "Relay"
    FIELDS = (F("action", "Action", RelayAction), _METERS)


@dataclass(frozen=True)
class TimeSyncOrder(Message):
    """Set the concentrator's clock to ``time``, then the meters that drift
    more than the threshold (all listed meters when ``force``)."""

    time: dt.datetime
    threshold_s: int | None = None
    force: bool = False
    meters: tuple[str, ...] = ()
    TAG = "TimeSync"
    FIELDS = (
        F("time", "Time", dt.datetime),
        F("threshold_s", "ThresholdSeconds", int),
        F("force", "Force", bool),
        _METERS,
    )


@dataclass(frozen=True)
class DirectoryEntry(Message):
    meter_id: str
    pda: bytes  # physical device address: the meter's system title
    model: str | None = None
    TAG = "Entry"
    FIELDS = (
        F("meter_id", "MeterId", str),
        F("pda", "Pda", Hex),
        F("model", "Model", str),
    )


@dataclass(frozen=True)
class MeterAddOrder(Message):
    entries: tuple[DirectoryEntry, ...]
    TAG = "MeterAdd"
    FIELDS = (F("entries", "Entry", DirectoryEntry, repeated=True),)


@dataclass(frozen=True)
class MeterRemoveOrder(Message):
    meters: tuple[str, ...]
    TAG = "MeterRemove"
    FIELDS = (_METERS,)


@dataclass(frozen=True)
class CollectionTask(Message):
    report_type: ReportType
    period: Period
    send: bool = True
    delivery: Delivery = Delivery.FILE
    TAG = "Task"
    FIELDS = (
        F("report_type", "ReportType", ReportType),
        F("period", "Period", Period),
        F("send", "Send", bool),
        F("delivery", "Delivery", Delivery),
    )


@dataclass(frozen=True)
class CollectionPlanOrder(Message):
    tasks: tuple[CollectionTask, ...]
    TAG = "CollectionPlan"
    FIELDS = (F("tasks", "Task", CollectionTask, repeated=True),)


@dataclass(frozen=True)
class FirmwareOrder(Message):
    """Install ``image`` (its SHA-256 checked first) on the concentrator or
    distribute it to ``meters``; activate at ``activate_at`` (now if None)."""

    target: FirmwareTarget
    image_id: str
    image: bytes = field(repr=False)
    sha256: bytes
    meters: tuple[str, ...] = ()
    activate_at: dt.datetime | None = None
    TAG = "Firmware"
    FIELDS = (
        F("target", "Target", FirmwareTarget),
        F("image_id", "ImageId", str),
        F("image", "Image", bytes),
        F("sha256", "Sha256", Hex),
        _METERS,
        F("activate_at", "ActivateAt", dt.datetime),
    )


ORDER_BODIES: tuple[type[Message], ...] = (
    RelayOrder,
    TimeSyncOrder,
    MeterAddOrder,
    MeterRemoveOrder,
    CollectionPlanOrder,
    FirmwareOrder,
)
OrderBody = (
    RelayOrder
    | TimeSyncOrder
    | MeterAddOrder
    | MeterRemoveOrder
    | CollectionPlanOrder
    | FirmwareOrder
)


@dataclass(frozen=True)
class Order(Message):
    id_pet: int
    window: Window
    body: OrderBody
    priority: int = 3
    TAG = "Order"
    FIELDS = (
        F("id_pet", "IdPet", int),
        F("priority", "Priority", int),
        F("window", "Window", Window),
        F("body", "*", ORDER_BODIES),
    )


@dataclass(frozen=True)
class OrderAccepted(Accepted):
    TAG = "OrderResponse"


@dataclass(frozen=True)
class GatewayRequest(Message):
    """One WRAPPER frame whose APDU is a DLMS gateway request (0xE6)."""

    frame: bytes
    TAG = "Gateway"
    FIELDS = (F("frame", "Frame", bytes),)


@dataclass(frozen=True)
class GatewayResponse(Message):
    """The meter's answer as a WRAPPER frame with a gateway response (0xE7),
    or why there is none (meter_timeout, unknown_meter, malformed)."""

    status: RequestStatus
    frame: bytes | None = None
    message: str | None = None
    TAG = "GatewayResponse"
    FIELDS = (
        F("status", "Status", RequestStatus),
        F("frame", "Frame", bytes),
        F("message", "Message", str),
    )


# -- the head-end's service --------------------------------------------------
@dataclass(frozen=True)
class ReportDelivery(Message):
    """A report pushed by a concentrator. ``id_pet`` 0 = scheduled (collection
    plan); ``report_id`` is the concentrator's own sequence number. The
    head-end recognises a report delivered twice by its ``report_id`` *and*
    the digest of its payload (:attr:`sha256`): a concentrator that restarts
    counts from 1 again, and its new reports must not pass for old ones."""

    id_pet: int
    dc_id: str
    report_id: int
    status: RequestStatus
    report_type: ReportType
    version: str
    payload: str = field(repr=False)
    TAG = "Report"
    FIELDS = (
        F("id_pet", "IdPet", int),
        F("dc_id", "IdDC", str),
        F("report_id", "ReportId", int),
        F("status", "ReqStatus", RequestStatus),
        F("report_type", "ReportType", ReportType),
        F("version", "Version", str),
        F("payload", "Payload", str),
    )

    @property
    def sha256(self) -> str:
        """SHA-256 of the payload (UTF-8), hex."""
        return hashlib.sha256(self.payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Ack(Message):
    result: AckResult
    message: str | None = None
    TAG = "ReportResponse"
    FIELDS = (F("result", "Result", AckResult), F("message", "Message", str))


@dataclass(frozen=True)
class MeterOutcome(Message):
    meter_id: str
    status: RequestStatus
    message: str | None = None
    TAG = "Outcome"
    FIELDS = (
        F("meter_id", "MeterId", str),
        F("status", "Status", RequestStatus),
        F("message", "Message", str),
    )


@dataclass(frozen=True)
class RequestStatusUpdate(Message):
    id_pet: int
    dc_id: str
    status: RequestStatus
    message: str | None = None
    outcomes: tuple[MeterOutcome, ...] = ()
    TAG = "UpdateRequestStatus"
    FIELDS = (
        F("id_pet", "IdPet", int),
        F("dc_id", "IdDC", str),
        F("status", "Status", RequestStatus),
        F("message", "Message", str),
        F("outcomes", "Outcome", MeterOutcome, repeated=True),
    )


@dataclass(frozen=True)
class StatusAck(Ack):
    TAG = "UpdateRequestStatusResponse"


@dataclass(frozen=True)
class MeterStatusItem(Message):
    meter_id: str
    pda: bytes
    status: MeterStatus
    time: dt.datetime
    short_address: int | None = None
    hops: int | None = None
    collector: str | None = None
    TAG = "Meter"
    FIELDS = (
        F("meter_id", "MeterId", str),
        F("pda", "Pda", Hex),
        F("status", "Status", MeterStatus),
        F("time", "Time", dt.datetime),
        F("short_address", "ShortAddress", int),
        F("hops", "Hops", int),
        F("collector", "Collector", str),
    )


@dataclass(frozen=True)
class MeterStatusUpdate(Message):
    dc_id: str
    items: tuple[MeterStatusItem, ...]
    TAG = "UpdateMetersStatus"
    FIELDS = (
        F("dc_id", "IdDC", str),
        F("items", "Meter", MeterStatusItem, repeated=True),
    )


@dataclass(frozen=True)
class MeterDecision(Message):
    """The head-end's answer to a joined meter: its directory entry
    (approved), not yet (pending), or never (refused)."""

    meter_id: str
    decision: Decision
    model: str | None = None
    TAG = "Decision"
    FIELDS = (
        F("meter_id", "MeterId", str),
        F("decision", "Value", Decision),
        F("model", "Model", str),
    )


@dataclass(frozen=True)
class MetersAck(Message):
    result: AckResult
    message: str | None = None
    decisions: tuple[MeterDecision, ...] = ()
    TAG = "UpdateMetersStatusResponse"
    FIELDS = (
        F("result", "Result", AckResult),
        F("message", "Message", str),
        F("decisions", "Decision", MeterDecision, repeated=True),
    )


def check(message: Message) -> None:
    """Cross-field rules the schema cannot express (raises ValueError)."""
    meters = getattr(message, "meters", ())
    _check_meters(meters)
    start, end = getattr(message, "start", None), getattr(message, "end", None)
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        if end < start:
            raise ValueError("the period ends before it starts")
    if isinstance(message, Order):
        w = message.window
        if w.start is not None and w.end <= w.start:
            raise ValueError("the execution window ends before it starts")
        check(message.body)
    if isinstance(message, (RelayOrder, MeterRemoveOrder)) and not meters:
        raise ValueError(f"a {message.TAG} order names its meters")
    if isinstance(message, FirmwareOrder):
        if message.target is FirmwareTarget.METERS and not message.meters:
            raise ValueError("a meter firmware order names its meters")
    if isinstance(message, CollectionPlanOrder):
        kinds = [t.report_type for t in message.tasks]
        if len(set(kinds)) != len(kinds):
            raise ValueError("a collection plan has one task per report type")
