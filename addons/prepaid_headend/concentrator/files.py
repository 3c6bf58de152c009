"""Report files ("Loading Files"): large scheduled reports as gzip files.

A concentrator uploads
``{dc}_{idpet}_{type}_{part}_{YYYYMMDDhhmmss}_{seq}.xml.gz`` (the name is
checked, every part validated) with its SHA-256. The time is the
concentrator's clock, which can be set back; ``seq`` (its delivery sequence
number, optional for older concentrators) keeps names apart. A name is not
the file's identity, its SHA-256 is: the head-end ingests a file once (the
same content twice is one set of readings, whatever its name), stores a new
content under a name seen before, and keeps the bytes for audit.
Decompression is bounded: a small file that inflates to gigabytes (a "zip
bomb") is refused before it costs memory.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import re
import zlib
from dataclasses import dataclass

from .errors import TooLarge, ValidationError
from .messages import ReportType

SUFFIX = ".xml.gz"
MAX_COMPRESSED = 32 * 1024 * 1024
# A part holds at most 512 meters: four days of load profile (the deepest
# buffer) for 512 meters is about 13 MiB of XML; the parser streams it, so
# what a worker holds is the inflated bytes and the rows (docs section 6).
MAX_INFLATED = 32 * 1024 * 1024
_NAME = re.compile(
    r"(?P<dc>[A-Za-z0-9][A-Za-z0-9_.-]{0,31})_(?P<id_pet>\d{1,20})_"
    rf"(?P<type>{'|'.join(t.value for t in ReportType)})_"
    r"(?P<part>\d{1,4})_(?P<stamp>\d{14})(?:_(?P<seq>\d{1,20}))?\.xml\.gz"
)


@dataclass(frozen=True)
class FileName:
    dc_id: str
    id_pet: int
    report_type: ReportType
    part: int
    generated: dt.datetime  # the concentrator's clock
    seq: int | None = None  # the concentrator's delivery sequence number

    def __str__(self) -> str:
        stamp = self.generated.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")
        seq = "" if self.seq is None else f"_{self.seq}"
        return (
            f"{self.dc_id}_{self.id_pet}_{self.report_type.value}_{self.part}_"
            f"{stamp}{seq}{SUFFIX}"
        )


def parse_name(name: str) -> FileName:
    match = _NAME.fullmatch(name or "")
    if not match:
        raise ValidationError(
            f"file name {name!r} is not DC_IDPET_TYPE_PART_YYYYMMDDhhmmss[_SEQ].xml.gz",
            "name",
        )
    try:
        report_type = ReportType(match.group("type"))
        stamp = dt.datetime.strptime(match.group("stamp"), "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise ValidationError(f"file name {name!r}: {exc}", "name") from None
    return FileName(
        dc_id=match.group("dc"),
        id_pet=int(match.group("id_pet")),
        report_type=report_type,
        part=int(match.group("part")),
        generated=stamp.replace(tzinfo=dt.UTC),
        seq=int(match.group("seq")) if match.group("seq") else None,
    )


def pack(payload: str | bytes) -> bytes:
    """gzip of the payload, with a fixed header time so the same report
    always gives the same bytes (and the same digest)."""
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    return gzip.compress(data, compresslevel=6, mtime=0)


def unpack(data: bytes, max_inflated: int = MAX_INFLATED) -> bytes:
    """The payload of a gzip file, refusing more than ``max_inflated`` bytes."""
    if len(data) > MAX_COMPRESSED:
        raise TooLarge(f"file of {len(data)} bytes exceeds {MAX_COMPRESSED}")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper only
    out = bytearray()
    try:
        chunk = inflater.decompress(data, max_inflated + 1 - len(out))
        out += chunk
        if len(out) > max_inflated:
            raise TooLarge(f"file inflates beyond {max_inflated} bytes")
        if not inflater.eof:
            raise ValidationError("truncated gzip file", "body")
        if inflater.unused_data:
            raise ValidationError("data after the end of the gzip stream", "body")
    except zlib.error as exc:
        raise ValidationError(f"not a gzip file: {exc}", "body") from None
    return bytes(out)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_digest(data: bytes) -> str:
    """RFC 9530 ``Content-Digest`` header value."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


def check_digest(header: str | None, data: bytes) -> None:
    """Refuse a body whose RFC 9530 digest (when sent) does not match."""
    if not header:
        return
    for item in header.split(","):
        algorithm, _, value = item.strip().partition("=")
        if algorithm.strip().lower() == "sha-256":
            if value.strip() != content_digest(data).partition("=")[2]:
                raise ValidationError("Content-Digest does not match the body", "body")
            return
    raise ValidationError("Content-Digest has no sha-256 value", "Content-Digest")
