"""The idle clock and the cull decision of one running notebook (pure).

Evidence rules, all fail-safe:
- a sample is idle only when every metric that counts on the instance (see Policy.thresholds) has data
  and its peak over the window is below the threshold; missing data is no evidence, never idleness;
- the clock keeps running only while idle samples cover time without gaps: each fetch asks for the
  window since the previous sample, so a failed fetch is bridged by the next good one, and a gap
  longer than MAX_WINDOW starts the clock again;
- a stop needs a fresh idle sample in this very cycle, so an outage of the metrics API never stops.
The clock lives in status.idle, so a restarted operator resumes it instead of starting over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from notebook_operator.providers.types import CloudInstance, Utilization
from notebook_operator.reconcile.pending import Upcoming, earliest_warned, may_stop, policy_by
from notebook_operator.reconcile.policies import Policy, SnapshotFirst, in_active_window
from notebook_operator.times import parse_rfc3339, rfc3339

MAX_WINDOW = timedelta(hours=1)
SLACK = timedelta(seconds=90)  # metric points are a minute apart; the window start rounds to one
CLOCK_KEYS = ("since", "policy", "clocks", "reported")


@dataclass(frozen=True)
class Stop:
    policy: str
    reason: str
    save_image: bool
    would_stop_at: datetime | None  # when it would have stopped anyway: the end of the hours saved
    snapshot: SnapshotFirst | None = None  # save the environment first (snapshotBeforeStop)


@dataclass(frozen=True)
class CullDecision:
    idle: dict[str, Any]  # the new status.idle
    stop: Stop | None = None
    report: str | None = None  # dry run: what would have been done, once per idle episode
    idle_started: str | None = None  # the policy whose clock just started
    upcoming: Upcoming | None = None  # the earliest cull with a warning lead, when it would happen


def sample_window(policies: Sequence[Policy], idle: Mapping[str, Any], now: datetime) -> timedelta:
    """The window to fetch: the policies' own, stretched back to the previous sample while a clock runs."""
    window = max((p.window for p in policies if p.culls_idle), default=timedelta(minutes=5))
    last = parse_rfc3339(idle.get("sampledAt"))
    if idle.get("clocks") and last is not None:
        window = max(window, min(now - last, MAX_WINDOW))
    return window


def sample_verdict(policy: Policy, sample: Utilization | None, gpu: bool) -> bool | None:
    """True idle, False busy, None no evidence (no sample, no data, or no metric that counts here)."""
    thresholds = policy.thresholds(gpu)
    if not thresholds or sample is None or sample.samples == 0:
        return None
    peaks = {"cpu": sample.cpu_max, "gpu": sample.gpu_max}
    values = [(peaks[metric], limit) for metric, limit in thresholds.items()]
    if any(value is None for value, _ in values):
        return None
    return all(value is not None and value < limit for value, limit in values)


def describe_levels(sample: Utilization | None) -> str:
    """The peaks of a sample as text for reasons and Events, e.g. ', cpu 2%, gpu 0%'."""
    if sample is None:
        return ""
    return "".join(f", {m} {v:.0f}%" for m, v in (("cpu", sample.cpu_max), ("gpu", sample.gpu_max)) if v is not None)


def evaluate(
    policies: Sequence[Policy],
    idle: Mapping[str, Any],
    observed: CloudInstance,
    sample: Utilization | None,
    now: datetime,
    planned_stop: datetime | None = None,
    snoozed: Mapping[str, datetime] | None = None,
    pending: Mapping[str, Any] | None = None,
) -> CullDecision:
    """Advance the idle clocks of a running instance by one sample and decide whether to stop it.

    `policies` are the ones the operator enforces for this instance (matching, not exempt, not
    handed to the cloud); several combine to the strictest: whichever is due first stops it.
    `snoozed` holds when each policy's idle culls are postponed to (running caps are not); a policy
    with warnMinutes stops only once `pending` (status.pendingStop) announced its stop and the time came.
    """
    snoozed = snoozed or {}
    started = observed.started_at
    new = {k: v for k, v in idle.items() if k not in CLOCK_KEYS}
    if started is None or not policies:
        return CullDecision(_clean(new))
    old_clocks = {c["policy"]: parse_rfc3339(c["since"]) for c in idle.get("clocks") or []}
    last_sample = parse_rfc3339(idle.get("sampledAt"))
    clocks: dict[str, datetime] = {}
    verdicts: dict[str, bool | None] = {}
    for policy in policies:
        if not policy.culls_idle:
            continue
        verdict = verdicts[policy.name] = sample_verdict(policy, sample, observed.is_gpu)
        old = old_clocks.get(policy.name)
        old = old if old is not None and old >= started - SLACK else None  # a clock of an earlier run
        if verdict and sample is not None:
            window_start = sample.sampled_at - sample.window
            contiguous = old is not None and last_sample is not None and window_start <= last_sample + SLACK
            clocks[policy.name] = old if contiguous and old is not None else max(window_start, started)
        elif verdict is None and old is not None:
            clocks[policy.name] = old  # no evidence either way: keep the clock, never act on it
    if sample is not None and sample.samples:
        new.update(sampledAt=rfc3339(sample.sampled_at), cpuPercent=sample.cpu_max, gpuPercent=sample.gpu_max)

    due: list[tuple[datetime, str, Policy]] = []
    upcoming: list[Upcoming] = []
    would_stop = [planned_stop] if planned_stop else []
    for policy in policies:
        since = clocks.get(policy.name)
        if since is not None and policy.idle_minutes is not None and in_active_window(policy.active_windows, now):
            idle_due = since + timedelta(minutes=policy.idle_minutes)
            at = max(idle_due, snoozed.get(policy.name, idle_due))
            held = f", snoozed until {rfc3339(at)}" if at > idle_due else ""
            upcoming.append(Upcoming(at, f"idle since {rfc3339(since)}{held}", policy_by(policy.name), policy.warn))
            if verdicts.get(policy.name) and sample is not None and idle_due <= sample.sampled_at and at <= now:
                minutes = int((sample.sampled_at - since).total_seconds() // 60)
                reason = f"idle {minutes} min{describe_levels(sample)}"
                due.append((idle_due, reason, policy))
        if policy.max_running_hours is not None:
            cap = started + timedelta(hours=policy.max_running_hours)
            would_stop.append(cap)
            reason = f"running over maxRunningHours {policy.max_running_hours:g}"
            upcoming.append(Upcoming(cap, reason, policy_by(policy.name), policy.warn))
            if cap <= now:
                due.append((cap, reason, policy))
    due.sort(key=lambda d: (d[0], d[2].name))
    announced = earliest_warned(upcoming)

    if clocks:
        deciding = min(clocks, key=lambda name: (clocks[name] + timedelta(minutes=_minutes(policies, name)), name))
        listed = [{"policy": name, "since": rfc3339(since)} for name, since in sorted(clocks.items())]
        new.update(since=rfc3339(clocks[deciding]), policy=deciding, clocks=listed)
    started_clock = next((name for name in sorted(clocks) if name not in old_clocks), None)
    acting = [d for d in due if not d[2].dry_run]
    allowed = [d for d in acting if may_stop(policy_by(d[2].name), d[2].warn_minutes, pending, now)]
    if allowed:
        _, reason, policy = allowed[0]
        later = [w for w in would_stop if w > now]
        would_stop_at = min(later) if later else None
        stop = Stop(policy.name, reason, policy.action == "StopAndSaveImage", would_stop_at, policy.snapshot)
        return CullDecision(_clean(new), stop, idle_started=started_clock, upcoming=announced)
    if acting:  # due, waiting for its warning
        return CullDecision(_clean(new), idle_started=started_clock, upcoming=announced)
    report = None
    if not due and sample is None and idle.get("reported"):
        new["reported"] = idle["reported"]  # no evidence either way: the episode already reported goes on
    if due:
        _, reason, policy = due[0]
        new["reported"] = policy.name
        if idle.get("reported") != policy.name:
            report = f"{reason} (dry run of IdleCullerPolicy {policy.name})"
    return CullDecision(_clean(new), report=report, idle_started=started_clock, upcoming=announced)


def _minutes(policies: Sequence[Policy], name: str) -> int:
    return next((p.idle_minutes or 0) for p in policies if p.name == name)


def at_rest(idle: Mapping[str, Any]) -> dict[str, Any]:
    """status.idle of an instance no policy evaluates (not running, exempt, or unmatched): no clocks."""
    return _clean({k: v for k, v in idle.items() if k not in CLOCK_KEYS})


def culled(idle: Mapping[str, Any], stop: Stop, now: datetime) -> dict[str, Any]:
    """status.idle after the stop succeeded: the open cull the hours saved are counted from."""
    return _clean(
        {
            **at_rest(idle),
            "culledBy": stop.policy,
            "culledAt": rfc3339(now),
            "wouldStopAt": rfc3339(stop.would_stop_at) if stop.would_stop_at else None,
        }
    )


def close_savings(idle: Mapping[str, Any], observed: CloudInstance) -> dict[str, Any]:
    """When a culled instance runs again, book the hours its stop saved and forget the open cull."""
    culled_at = parse_rfc3339(idle.get("culledAt"))
    if culled_at is None or observed.phase != "Running" or observed.started_at is None:
        return dict(idle)
    if observed.started_at <= culled_at:
        return dict(idle)
    saved = saved_hours(idle, observed.started_at)
    booked = dict(idle.get("hoursSaved") or {})
    policy = str(idle.get("culledBy"))
    booked[policy] = round(float(booked.get(policy, 0.0)) + saved, 3)
    rest = {k: v for k, v in idle.items() if k not in ("culledAt", "culledBy", "wouldStopAt")}
    return _clean({**rest, "hoursSaved": booked})


def saved_hours(idle: Mapping[str, Any], until: datetime) -> float:
    """Hours from the cull to when the instance would have been stopped anyway, or `until`."""
    culled_at = parse_rfc3339(idle.get("culledAt"))
    if culled_at is None:
        return 0.0
    end = min(filter(None, (until, parse_rfc3339(idle.get("wouldStopAt")))))
    return max(0.0, (end - culled_at).total_seconds() / 3600)


def policy_hours_saved(idle: Mapping[str, Any], policy: str, now: datetime) -> float:
    total = float((idle.get("hoursSaved") or {}).get(policy, 0.0))
    if idle.get("culledBy") == policy and idle.get("culledAt"):
        total += saved_hours(idle, now)
    return total


def _clean(idle: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in idle.items() if v is not None and v != {}}


# A sample is only written when the clock changes or the stored one is this old: a cluster of idle
# notebooks must not cost one status write per notebook per poll cycle.
SAMPLE_REFRESH = timedelta(minutes=5)


def idle_patch(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    """The merge patch of status.idle, or None when not worth a write: only the sample moved, and the
    stored sample is younger than SAMPLE_REFRESH."""
    old = dict(old or {})
    new = dict(new or {})
    if old == new:
        return None
    sample_keys = {"sampledAt", "cpuPercent", "gpuPercent"}
    if {k: v for k, v in old.items() if k not in sample_keys} == {k: v for k, v in new.items() if k not in sample_keys}:
        stored = parse_rfc3339(old.get("sampledAt"))
        if stored is not None and now - stored < SAMPLE_REFRESH:
            return None
    if not new:
        return {"idle": None}
    return {"idle": {**{k: None for k in old if k not in new}, **new}}
