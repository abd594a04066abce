"""Stops announced ahead and stops postponed on request (pure).

- Snooze: the annotation cloudnotebooks.io/keep-running-until postpones culls and timer stops until the
  time it holds, at most maxSnoozeHours after the operator first saw that value (status.snooze.seenAt keeps
  that moment across restarts, so the bound does not slide). Running caps (maxRunningHours) are never
  snoozed. An unreadable value is ignored: it never blocks a stop.
- Warning: with warnMinutes, a stop is announced that long before it is due (status.pendingStop) and is only
  sent once announced and its time has come; a stop first seen already due is announced now and sent
  warnMinutes later, so nobody is stopped without the notice they were promised. status.pendingStop is the
  record that the warning went out: a restarted operator finds it and does not warn again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from notebook_operator.api.notebookinstance import SNOOZE_ANNOTATION
from notebook_operator.times import parse_rfc3339, rfc3339

TIMER = "spec.shutdown"


def policy_by(name: str) -> str:
    """status.pendingStop.by of a cull."""
    return f"IdleCullerPolicy {name}"


@dataclass(frozen=True)
class Snooze:
    raw: str | None = None  # the annotation's value
    requested: datetime | None = None
    seen_at: datetime | None = None
    error: str | None = None

    def until(self, max_hours: float) -> datetime | None:
        """The end of the postponement for a stop whose owner allows at most `max_hours`."""
        if self.requested is None or self.seen_at is None:
            return None
        return min(self.requested, self.seen_at + timedelta(hours=max_hours))


def read_snooze(annotations: Mapping[str, str], previous: Mapping[str, Any] | None, now: datetime) -> Snooze:
    raw = annotations.get(SNOOZE_ANNOTATION)
    if raw is None:
        return Snooze()
    previous = previous or {}
    seen_at = parse_rfc3339(previous.get("seenAt")) if previous.get("requested") == raw else None
    seen_at = seen_at or now
    requested = _strict_rfc3339(raw)
    if requested is None:
        error = (
            f"annotation {SNOOZE_ANNOTATION}: {raw[:64]!r} is not an RFC 3339 time with a zone "
            f"(e.g. {rfc3339(now + timedelta(hours=2))}); ignored"
        )
        return Snooze(raw, None, seen_at, error)
    return Snooze(raw, requested, seen_at)


def _strict_rfc3339(value: str) -> datetime | None:
    """A time with a date, a clock and a zone; anything else is not a snooze (a bare date is not)."""
    text = value.strip().upper()
    if len(text) < 11 or "T" not in text or not (text.endswith("Z") or text[-6] in "+-"):
        return None
    return parse_rfc3339(text)


def snooze_status(snooze: Snooze, bounds: Mapping[str, float], now: datetime) -> dict[str, Any] | None:
    """status.snooze: what was asked, since when, until when it holds (the earliest bound that applies) and
    why it is less than asked. `bounds` maps who stops (spec.shutdown, IdleCullerPolicy x) to its
    maxSnoozeHours."""
    if snooze.raw is None:
        return None
    status: dict[str, Any] = {"requested": snooze.raw[:128], "seenAt": rfc3339(snooze.seen_at or now)}
    if snooze.error:
        return {**status, "message": snooze.error}
    assert snooze.requested is not None
    ends = {by: snooze.until(hours) for by, hours in bounds.items()}
    clamped = {by: hours for by, hours in bounds.items() if (ends[by] or snooze.requested) < snooze.requested}
    until = min((t for t in ends.values() if t is not None), default=snooze.requested)
    status["until"] = rfc3339(until)
    if until <= now:
        status["message"] = "expired"
    elif clamped:
        limits = ", ".join(f"{hours:g} h for {by}" for by, hours in sorted(clamped.items()))
        status["message"] = f"clamped: maxSnoozeHours {limits}; running caps (maxRunningHours) are never snoozed"
    return status


@dataclass(frozen=True)
class Upcoming:
    """A stop the operator will send, once due: when, why, who decides it, and its warning lead."""

    at: datetime
    reason: str
    by: str
    warn: timedelta | None = None


def earliest_warned(candidates: Iterable[Upcoming | None]) -> Upcoming | None:
    warned = [c for c in candidates if c is not None and c.warn is not None]
    return min(warned, key=lambda c: (c.at, c.by)) if warned else None


def may_stop(by: str, warn_minutes: int | None, pending: Mapping[str, Any] | None, now: datetime) -> bool:
    """A due stop may go out: no warning is wanted, or it was announced and its announced time has come."""
    if not warn_minutes:
        return True
    if not pending or pending.get("by") != by:
        return False
    at = parse_rfc3339(pending.get("at"))
    return at is not None and at <= now


@dataclass(frozen=True)
class Announcement:
    pending: dict[str, Any] | None  # the new status.pendingStop
    event: tuple[str, str] | None = None  # (reason, message): StopWarning or StopWarningWithdrawn


def announce(
    current: Mapping[str, Any] | None, upcoming: Upcoming | None, now: datetime, withdraw_reason: str
) -> Announcement:
    """The warning step of one pass: announce a stop entering its warning window (once), keep an announced
    one, or withdraw it when it is no longer coming."""
    current = dict(current) if current else None
    if upcoming is None or upcoming.warn is None or now < upcoming.at - upcoming.warn:
        if current is None:
            return Announcement(None)
        message = f"the stop announced for {current.get('at')} by {current.get('by')} is off: {withdraw_reason}"
        return Announcement(None, ("StopWarningWithdrawn", message))
    if current is not None and current.get("by") == upcoming.by:
        warned_at = parse_rfc3339(current.get("warnedAt")) or now
        at = rfc3339(max(upcoming.at, warned_at + upcoming.warn))
        kept = {**current, "at": at, "reason": upcoming.reason[:1024]}
        return Announcement(kept)
    stop_at = max(upcoming.at, now + upcoming.warn)
    pending = {"at": rfc3339(stop_at), "reason": upcoming.reason[:1024], "by": upcoming.by, "warnedAt": rfc3339(now)}
    message = f"stops at {rfc3339(stop_at)} ({upcoming.by}): {upcoming.reason}"
    return Announcement(pending, ("StopWarning", message))
