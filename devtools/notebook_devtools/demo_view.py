"""What `make demo` shows a person: the live table (redrawn in place on a terminal, appended when not), a feed
of what happened and why under it, and the summary's money lines. Fits WIDTH columns."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

WIDTH = 120
FEED_LINES = 8
ZONE = "Asia/Shanghai"  # the demo team's wall clock, shown beside UTC
# Projection of the summary: each stop avoids one night of idle running (19:00 to 09:00), 22 working days a month.
NIGHT_HOURS = 14
WORKING_DAYS = 22
VERBS = {
    "Created": "created",
    "Started": "started",
    "Stopped": "stopped",
    "Culled": "culled",
    "StopWarning": "warned",
    "StopWarningWithdrawn": "warning withdrawn",
    "IdleDetected": "idle",
    "StopFailed": "stop failed",
    "NativeCullerSet": "cloud culler set",
}
STAMP = re.compile(r"\b(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})Z\b")


def clip_words(text: str, width: int) -> str:
    """At most `width` characters, cut between words (never mid-word), marked with an ellipsis."""
    if len(text) <= width:
        return text
    head = text[: width - 1]
    whole = text[width - 1] == " "  # the cut falls on a space: the last word is whole
    cut = head if whole else head.rsplit(" ", 1)[0] if " " in head else ""  # else drop the partial word
    return cut.rstrip(" ,;:(") + "…"


def local(text: str) -> str:
    """UTC stamps as HH:MM:SS, the first one with the team's wall clock beside it."""
    first = True

    def short(match: re.Match[str]) -> str:
        nonlocal first
        moment = datetime.fromisoformat(f"{match[1]}T{match[2]}+00:00")
        shown = match[2]
        if first:
            shown += f" ({ZONE} {moment.astimezone(ZoneInfo(ZONE)).strftime('%H:%M:%S')})"
            first = False
        return shown

    return STAMP.sub(short, text)


def _idle(idle: Mapping[str, Any] | None, now: datetime) -> str:
    if not idle:
        return ""
    if idle.get("since"):
        since = datetime.fromisoformat(str(idle["since"]).replace("Z", "+00:00"))
        return f"{int((now - since).total_seconds())}s"
    return "culled" if idle.get("culledBy") else ""


def _stopped_by(text: str) -> str:
    """The table's short form: who and why, without the due time the feed already gives."""
    text = text.removeprefix("notebook-operator: ").split(" was due at ")[0]
    return STAMP.sub(lambda m: m[2], text)


def _hhmmss(value: Any) -> str:
    return str(value)[11:19] if value else ""


def table(items: Sequence[Mapping[str, Any]], now: datetime) -> list[str]:
    header = ["NAME", "PROVIDER", "PHASE", "DESIRED", "NEXT STOP", "WARNED", "IDLE", "COST/H", "STOPPED BY"]
    rows: list[list[str]] = [header]
    for item in sorted(items, key=lambda i: i["metadata"]["name"]):
        s = item.get("status") or {}
        cost = s.get("cost") or {}
        rows.append(
            [
                item["metadata"]["name"],
                s.get("provider", ""),
                s.get("phase", ""),
                item["spec"].get("desiredState", ""),
                _hhmmss(s.get("nextShutdownAt")),
                _hhmmss((s.get("pendingStop") or {}).get("at")),
                _idle(s.get("idle"), now),
                f"{cost['perHour']:.2f} {cost.get('currency', '')}" if cost.get("perHour") is not None else "",
                _stopped_by(s.get("stoppedBy") or ""),
            ]
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(header) - 1)]
    room = WIDTH - sum(widths) - 2 * len(widths)
    lines = []
    for r in rows:
        cells = [v.ljust(w) for v, w in zip(r[:-1], widths, strict=True)]
        lines.append(("  ".join([*cells, clip_words(r[-1], max(room, 10))])).rstrip())
    return lines


def feed(events: Sequence[Any], limit: int = FEED_LINES) -> list[str]:
    """The newest Events of the demo's notebooks, oldest first: time, notebook, what happened and why."""
    shown = [e for e in events if e.reason in VERBS and e.involved_object.kind == "NotebookInstance"]
    shown.sort(key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp)
    lines = []
    for event in shown[-limit:]:
        moment = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
        when = moment.astimezone(UTC).strftime("%H:%M:%S") if moment else "--:--:--"
        line = f"{when} {event.involved_object.name} {VERBS[event.reason]}: {local(event.message or '')}"
        lines.append(clip_words(line, WIDTH))
    return lines


class Screen:
    """Redraws in place on a terminal; on anything else (CI, a pipe) appends each frame as plain lines."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()

    def show(self, lines: Sequence[str]) -> None:
        if self.tty:
            self.out.write("\x1b[H\x1b[J" + "\n".join(lines) + "\n")
        else:
            self.out.write("\n".join(lines) + "\n\n")
        self.out.flush()


def _hours(hours: float) -> str:
    return "under 0.01 instance-hours" if hours < 0.01 else f"{hours:.2f} instance-hours"


def money_lines(
    policy: Mapping[str, Any], items: Sequence[Mapping[str, Any]], stopped: Sequence[str], team: int
) -> list[str]:
    """The summary's lead: what the stops saved at the demo's prices, and the monthly projection."""
    savings = policy.get("estimatedSavings") or {}
    hours = float(policy.get("estimatedHoursSaved") or 0.0)
    saved = ", ".join(f"{amount:.2f} {currency}" for currency, amount in sorted(savings.items())) or "0"
    by_name = {i["metadata"]["name"]: (i.get("status") or {}).get("cost") or {} for i in items}
    rates: dict[str, float] = {}
    for name in stopped:
        cost = by_name.get(name) or {}
        if cost.get("perHour") is not None:
            rates[cost["currency"]] = rates.get(cost["currency"], 0.0) + float(cost["perHour"])
    per_hour = ", ".join(f"{v:.2f} {c}/h" for c, v in sorted(rates.items())) or "no prices"
    monthly = ", ".join(f"{v * NIGHT_HOURS * WORKING_DAYS:,.0f} {c}" for c, v in sorted(rates.items())) or "-"
    return [
        f"  saved so far by culling: {saved} ({_hours(hours)}; grows until the notebook would have stopped)",
        f"  stopped notebooks were costing: {per_hour}",
        f"  projected per month for a team of {team}: {monthly}",
        f"    (if each of these stops avoids one night of idle running, {NIGHT_HOURS} h from 19:00 to 09:00, "
        f"on {WORKING_DAYS} working days)",
    ]
