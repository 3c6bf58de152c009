"""Token identifier (TID): minutes since the base date, 24 bits.

See docs/sts.md section 4.7.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .errors import ParameterError, TidRangeError
from .identifiers import BASE_DATES, validate_base_date

TID_LIMIT = 1 << 24

_BASES = {code: datetime(y, m, d, tzinfo=UTC) for code, (y, m, d) in BASE_DATES.items()}


def base_datetime(base_date: str) -> datetime:
    """The UTC datetime (00:00) of a base-date code."""
    validate_base_date(base_date)
    return _BASES[base_date]


def _newer_hint(base_date: str) -> str:
    newer = [c for c in ("93", "14", "35") if _BASES[c] > _BASES[base_date]]
    if not newer:
        return ""
    return (
        f"; the meter must be moved to a newer base date "
        f"({'/'.join(newer)}) with a key change (rollover) before vending"
    )


def tid_from_datetime(dt: datetime, base_date: str) -> int:
    """Return the TID (whole minutes since the base date) of an issue time.

    ``dt`` should be timezone-aware; a naive datetime is taken as UTC.  Seconds
    are truncated.  Raises :class:`TidRangeError` before the base date or past
    the 24-bit range (e.g. after 2024-11-24 20:15 for base date 1993).
    """
    base = base_datetime(base_date)
    if not isinstance(dt, datetime):
        raise ParameterError(f"issue time must be a datetime, got {dt!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - base
    minutes = delta // timedelta(minutes=1)
    if minutes < 0:
        raise TidRangeError(
            f"issue time {dt.isoformat()} is before base date {base.date()}"
        )
    if minutes >= TID_LIMIT:
        last = base + timedelta(minutes=TID_LIMIT - 1)
        raise TidRangeError(
            f"issue time {dt.isoformat()} is past the TID range of base date "
            f"{base.year} (last valid minute {last:%Y-%m-%d %H:%M} UTC)"
            + _newer_hint(base_date)
        )
    return minutes


def datetime_from_tid(tid: int, base_date: str) -> datetime:
    """Inverse of :func:`tid_from_datetime` (UTC, minute resolution)."""
    check_tid(tid, base_date)
    return base_datetime(base_date) + timedelta(minutes=tid)


def check_tid(tid: int, base_date: str | None = None) -> int:
    """Validate a raw TID (0 <= tid < 2**24)."""
    if not isinstance(tid, int) or isinstance(tid, bool):
        raise ParameterError(f"TID must be an integer number of minutes, got {tid!r}")
    if not 0 <= tid < TID_LIMIT:
        hint = _newer_hint(base_date) if base_date in _BASES else ""
        raise TidRangeError(
            f"TID {tid} is outside the 24-bit range 0..{TID_LIMIT - 1}" + hint
        )
    return tid


def parse_issued_at(text: str) -> datetime:
    """Parse an ISO 8601 UTC timestamp such as ``2024-03-28T09:01:00Z``."""
    try:
        dt = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ParameterError(
            f"issued_at must be an ISO 8601 UTC time like 2024-03-28T09:01:00Z, "
            f"got {text!r}"
        ) from None
    return dt
