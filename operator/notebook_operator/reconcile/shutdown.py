"""When the next declared shutdown is due: afterRunning, at, schedule (+ timeZone); the earliest wins."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterError

from notebook_operator.api.formats import parse_duration
from notebook_operator.api.notebookinstance import ShutdownSpec
from notebook_operator.times import rfc3339


@dataclass(frozen=True)
class Shutdown:
    at: datetime
    reason: str


INVALID_SCHEDULE = "InvalidSchedule"


@functools.lru_cache(maxsize=4096)
def schedule_problem(expr: str, zone: str) -> str | None:
    """Why a cron expression the schema admits cannot be used (a zero step, a day that never comes such as
    31 February), or None: named, never raised. Whether it ever fires does not depend on when it is asked: checked
    once per expression, not on every pass."""
    try:
        croniter(expr, datetime.now(ZoneInfo(zone))).get_next(datetime)
    except (CroniterError, ValueError, KeyError, OverflowError) as e:
        return f"{INVALID_SCHEDULE}: schedule {expr[:64]!r} cannot be used ({type(e).__name__}); ignored"
    return None


def shutdown_problem(shutdown: ShutdownSpec | None) -> str | None:
    """What of a notebook's shutdown cannot be used, named (InvalidSchedule), or None."""
    if shutdown is None or not shutdown.schedule:
        return None
    return schedule_problem(shutdown.schedule, shutdown.time_zone or "UTC")


def _last_cron_fire(expr: str, zone: str, after: datetime, now: datetime) -> datetime | None:
    """The latest fire time in (after, now], or None."""
    tz = ZoneInfo(zone)
    previous = croniter(expr, now.astimezone(tz)).get_prev(datetime)
    return previous.astimezone(UTC) if previous > after else None


def _next_cron_fire(expr: str, zone: str, now: datetime) -> datetime:
    next_fire: datetime = croniter(expr, now.astimezone(ZoneInfo(zone))).get_next(datetime)
    return next_fire.astimezone(UTC)


def next_shutdown(shutdown: ShutdownSpec | None, started_at: datetime | None, now: datetime) -> Shutdown | None:
    """The earliest shutdown that applies to the current run (started at `started_at`).

    A time at or before `now` means due now. Only moments after the run started count: a
    schedule that fired while the instance was stopped, or an `at` in the past of this run's
    start, does not stop a run that began later.
    """
    if shutdown is None or started_at is None:
        return None
    candidates: list[Shutdown] = []
    if shutdown.after_running:
        limit = parse_duration(shutdown.after_running)
        candidates.append(Shutdown(started_at + limit, f"afterRunning {shutdown.after_running}"))
    if shutdown.at is not None:
        at = shutdown.at if shutdown.at.tzinfo else shutdown.at.replace(tzinfo=UTC)
        if at > started_at:
            candidates.append(Shutdown(at, f"at {rfc3339(at)}"))
    if shutdown.schedule and shutdown_problem(shutdown) is None:
        zone = shutdown.time_zone or "UTC"
        fired = _last_cron_fire(shutdown.schedule, zone, started_at, now)
        when = fired or _next_cron_fire(shutdown.schedule, zone, now)
        candidates.append(Shutdown(when, f"schedule '{shutdown.schedule}' ({zone})"))
    return min(candidates, key=lambda s: s.at) if candidates else None


def next_timer_stop(
    shutdown: ShutdownSpec | None, started_at: datetime | None, now: datetime, snoozed_until: datetime | None = None
) -> Shutdown | None:
    """next_shutdown, postponed by a snooze: a stop due before the snooze ends waits for its end."""
    due = next_shutdown(shutdown, started_at, now)
    if due is None or snoozed_until is None or snoozed_until <= due.at:
        return due
    return Shutdown(snoozed_until, f"{due.reason}, snoozed until {rfc3339(snoozed_until)}")
