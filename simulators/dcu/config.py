"""Settings of a simulated concentrator and the faults it can be given."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from trytond.modules.prepaid_headend.concentrator.messages import (
    CollectionTask,
    Delivery,
    Period,
    ReportType,
)

from .g3 import G3Config

IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")  # dcu-1.xsd Identifier

# The collection plan a concentrator starts with (the head-end can replace
# it with a CollectionPlan order): daily frozen registers at midnight and the
# day's 15-minute load profile as files, monthly billing values at the month
# change, events every hour, the meter list and the concentrator's own
# parameters daily, its events hourly.
DEFAULT_PLAN = (
    CollectionTask(ReportType.LOAD_PROFILE, Period.DAY, True, Delivery.FILE),
    CollectionTask(ReportType.DAILY, Period.DAY, True, Delivery.FILE),
    CollectionTask(ReportType.MONTHLY, Period.MONTH, True, Delivery.FILE),
    CollectionTask(ReportType.METER_EVENTS, Period.HOUR, True, Delivery.SOAP),
    CollectionTask(ReportType.METER_LIST, Period.DAY, True, Delivery.SOAP),
    CollectionTask(ReportType.DC_PARAMETERS, Period.DAY, True, Delivery.SOAP),
    CollectionTask(ReportType.DC_EVENTS, Period.HOUR, True, Delivery.SOAP),
)


@dataclass(frozen=True)
class Faults:
    """Faults a concentrator suffers (all off by default)."""

    backhaul_loss: float = 0.0  # share of deliveries lost (before or after arrival)
    backhaul_latency_s: float = 0.0  # added to every call to the head-end
    duplicate_rate: float = 0.0  # deliveries sent twice
    reorder_rate: float = 0.0  # deliveries overtaken by the next one
    malformed_rate: float = 0.0  # report payloads garbled on the way
    corrupt_block_rate: float = 0.0  # firmware blocks garbled on the G3 link
    failing_activation: frozenset[str] = frozenset()  # meters whose new image fails
    reboot_in_campaign_at: int | None = None  # reboot while sending to meter #n
    image_fails_to_boot: bool = False  # the concentrator's next image fails

    def __post_init__(self) -> None:
        for name in (
            "backhaul_loss",
            "duplicate_rate",
            "reorder_rate",
            "malformed_rate",
            "corrupt_block_rate",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")


@dataclass(frozen=True)
class DcConfig:
    dc_id: str
    number: int  # meters are numbered number * 10000 + 0 .. meters - 1
    meters: int = 300
    # The meters' ids (serials), in order, e.g. meters a head-end knows;
    # default: number * 10000 + i as %08d. When given, ``meters`` is their count.
    meter_ids: tuple[str, ...] = ()
    model: str = "PPS-DCU-SIM"
    firmware: str = "DCU-1.0.0"
    network_id: int = 0  # the gateway protocol's network id of this PAN
    collector_fraction: float = 0.1  # meters on RS485 behind data collectors
    meters_per_collector: int = 8
    directory: str = "provisioned"  # or "empty": every meter is discovered
    lost_after_s: float = 86400.0  # silent that long: reported lost
    time_threshold_s: float = 30.0  # meters further off are set
    time_max_auto_s: float = 3600.0  # further than that only on a forced order
    plan: tuple[CollectionTask, ...] = DEFAULT_PLAN
    clock_offset_s: float = 0.0  # the concentrator's clock, ahead of true time
    meters_per_file: int = 512  # a report file part holds that many meters
    outbox_limit_bytes: int = 64 * 1024 * 1024
    collect_after_s: float = 300.0  # a plan task runs that long after its boundary
    network_tick_s: float = 300.0  # joins and losses are announced in batches
    boot_s: float = 120.0
    sync_meter_limit: int = 64  # meters one synchronous request may name
    g3: G3Config = field(default_factory=G3Config)
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        if self.meter_ids:
            bad = [i for i in self.meter_ids if not IDENTIFIER.fullmatch(i)]
            if bad:
                raise ValueError(f"not a meter id of the interface: {bad[0]!r}")
            if len(set(self.meter_ids)) != len(self.meter_ids):
                raise ValueError("meter_ids repeat a meter")
            object.__setattr__(self, "meters", len(self.meter_ids))
        if not 1 <= self.meters <= 1024:
            raise ValueError("a concentrator serves 1 to 1,024 meters")
        if not IDENTIFIER.fullmatch(self.dc_id):
            raise ValueError(f"not a concentrator id of the interface: {self.dc_id!r}")
        if not 1 <= self.number <= 99999:
            raise ValueError("concentrator number out of range")
        if self.directory not in ("provisioned", "empty"):
            raise ValueError("directory is 'provisioned' or 'empty'")
