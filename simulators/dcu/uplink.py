"""A concentrator's deliveries to the head-end, with the backhaul's faults.

Everything a concentrator sends (reports, report files, request and meter
status updates) goes through its outbox, in order; :class:`Uplink` makes one
delivery attempt and says how it went: ``delivered`` (the head-end has it,
perhaps from before), ``refused`` (it never will: the item itself is
malformed or too large: dropped with an event), ``held`` (the head-end does
not authorise this concentrator, or answered by someone else: kept, alarmed
and tried again, since an operator's registration fixes it) or
``transient`` (try again later).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from trytond.modules.prepaid_headend.concentrator import messages as m
from trytond.modules.prepaid_headend.concentrator.client import HeadEndClient
from trytond.modules.prepaid_headend.concentrator.errors import (
    ConcentratorError,
    Refused,
    Rejected,
    SoapFault,
    TransportError,
    ValidationError,
)

from .config import Faults

DELIVERED, REFUSED, HELD, TRANSIENT = "delivered", "refused", "held", "transient"


@dataclass
class OutboxItem:
    seq: int
    message: m.Message | None = None  # a SOAP call
    name: str | None = None  # or a report file: its name and gzip bytes
    data: bytes | None = None
    attempts: int = 0

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        payload = getattr(self.message, "payload", "")
        return 512 + len(payload)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"{type(self.message).__name__} #{self.seq}"


def _garble(text: str) -> str:
    """A payload damaged on the way: a number turned into letters."""
    return text.replace(' ai="', ' ai="x', 1) if ' ai="' in text else text[:-9]


class Uplink:
    def __init__(
        self,
        client: HeadEndClient | None,
        faults: Faults,
        rng: random.Random,
        latency_scale: float = 1.0,
    ) -> None:
        self.client = client
        self.faults = faults
        self.rng = rng
        self.latency_scale = latency_scale
        self.sent = 0  # calls made (duplicates included)
        self.bytes_sent = 0

    def deliver(self, item: OutboxItem) -> tuple[str, Any]:
        """One attempt: (outcome, the head-end's answer or the reason)."""
        f = self.faults
        if self.client is None:
            return TRANSIENT, "no head-end configured"
        if f.backhaul_latency_s:
            time.sleep(f.backhaul_latency_s * self.latency_scale)
        if f.backhaul_loss and self.rng.random() < f.backhaul_loss / 2:
            return TRANSIENT, "lost on the backhaul"
        garble = f.malformed_rate and self.rng.random() < f.malformed_rate
        try:
            outcome, answer = self._send(item, bool(garble))
            if f.duplicate_rate and self.rng.random() < f.duplicate_rate:
                self._send(item, bool(garble))
        except TransportError as exc:
            return TRANSIENT, str(exc)
        except Refused as exc:  # before SoapFault: a refusal fault is both
            return HELD, str(exc)
        except Rejected as exc:
            return REFUSED, str(exc)
        except SoapFault as exc:
            if exc.faultcode.endswith("Client"):
                return REFUSED, exc.faultstring
            return TRANSIENT, exc.faultstring
        except (ValidationError, ConcentratorError) as exc:
            return TRANSIENT, f"unreadable answer: {exc}"
        if f.backhaul_loss and self.rng.random() < f.backhaul_loss / 2:
            return TRANSIENT, "answer lost on the backhaul"  # it did arrive
        return outcome, answer

    def _send(self, item: OutboxItem, garble: bool) -> tuple[str, Any]:
        assert self.client is not None
        self.sent += 1
        if item.name is not None and item.data is not None:
            data = item.data
            if garble:
                data = data[: len(data) // 2]  # a truncated file
            self.bytes_sent += len(data)
            result = self.client.upload(item.name, data)
            if result.stored:
                return DELIVERED, result
            if result.held:
                return HELD, f"HTTP {result.status}: {result.text}"
            if result.refused:
                return REFUSED, f"HTTP {result.status}: {result.text}"
            return TRANSIENT, f"HTTP {result.status}"
        message = item.message
        if garble and isinstance(message, m.ReportDelivery):
            message = m.ReportDelivery(
                message.id_pet, message.dc_id, message.report_id, message.status,
                message.report_type, message.version, _garble(message.payload),
            )  # fmt: skip
        self.bytes_sent += item.size
        answer = self.client.call(message)  # type: ignore[arg-type]
        if getattr(answer, "result", None) is m.AckResult.MALFORMED:
            return REFUSED, answer.message
        return DELIVERED, answer
