"""The one place times are parsed and written: RFC 3339 in status and on the wire, aware UTC inside."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """Second precision, 'Z': the form status fields hold (string comparison orders them)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: Any) -> datetime | None:
    """An aware datetime from RFC 3339 / ISO 8601 text (naive text is taken as UTC); None when empty or
    unreadable."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        # In UTC: a time at the edge of the calendar ("0001-01-01T00:00:00+14:00") has no UTC form; unreadable.
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def from_millis(value: int | str | None) -> datetime | None:
    if value in (None, "", 0):
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def age(value: Any, moment: datetime) -> float | None:
    """Seconds from the time `value` holds to `moment`; None when it holds none."""
    parsed = parse_rfc3339(value)
    return None if parsed is None else (moment - parsed).total_seconds()
