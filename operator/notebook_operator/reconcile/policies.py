"""IdleCullerPolicy as the culler sees it: which notebooks a policy selects, when culling may happen,
which metrics count on which instance, and what a Native policy pushes into the cloud."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from notebook_operator.api.formats import parse_duration
from notebook_operator.api.notebookinstance import EXEMPT_ANNOTATION
from notebook_operator.providers.types import Capability, IdleRule

DEFAULT_WINDOW_MINUTES = 5
# What each cloud calls its own mechanism, for status.idle.enforcement.
MECHANISMS = {
    ("pai-dsw", Capability.IDLE_RULE_THRESHOLDS): "PAI-DSW IdleInstanceCuller",
    ("pai-dsw", Capability.SHUTDOWN_TIMER): "PAI-DSW shutdown timer",
    ("modelarts", Capability.SHUTDOWN_TIMER): "ModelArts lease",
    ("modelarts", Capability.IDLE_RULE): "ModelArts IDLE lease",
}
# A ModelArts notebook has one lease, TIMING (the shutdown timer) or IDLE (the idle rule); an IDLE lease
# lasts 1 h to 72 h (duration 3,600,000-259,200,000 ms) and the cloud judges idleness by its own
# thresholds (Huawei's ModelArts FAQ on auto stop: CPU <= 5 %, GPU <= 1 %, NPU <= 1 %, little traffic).
ONE_LEASE = {"modelarts"}
IDLE_LEASE_MINUTES = {"modelarts": (60, 72 * 60)}
CLOUD_IDLE_THRESHOLDS = {"modelarts": "CPU <= 5%, GPU <= 1%, NPU <= 1%"}
NOT_EXEMPT = frozenset({"false", "no", "0", ""})


@dataclass(frozen=True)
class Policy:
    name: str
    selector: Mapping[str, Any]
    cpu_percent: int | None = None
    gpu_percent: int | None = None
    idle_minutes: int | None = None
    window_minutes: int = DEFAULT_WINDOW_MINUTES
    action: str = "Stop"
    active_windows: tuple[Mapping[str, Any], ...] = ()
    max_running_hours: float | None = None
    dry_run: bool = False
    enforcement: str = "Operator"

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any]) -> Policy:
        return cls(
            name=name,
            selector=spec.get("selector") or {},
            cpu_percent=spec.get("cpuPercent"),
            gpu_percent=spec.get("gpuPercent"),
            idle_minutes=spec.get("idleMinutes"),
            window_minutes=int(spec.get("windowMinutes") or DEFAULT_WINDOW_MINUTES),
            action=str(spec.get("action") or "Stop"),
            active_windows=tuple(spec.get("activeWindows") or ()),
            max_running_hours=spec.get("maxRunningHours"),
            dry_run=bool(spec.get("dryRun")),
            enforcement=str(spec.get("enforcement") or "Operator"),
        )

    @property
    def culls_idle(self) -> bool:
        return self.idle_minutes is not None and (self.cpu_percent is not None or self.gpu_percent is not None)

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)

    def thresholds(self, gpu: bool) -> dict[str, int]:
        """The metrics that decide idleness on this instance, with their thresholds.

        The GPU only counts on GPU instances; there it always counts - against gpuPercent, or
        cpuPercent when only that is set - so a busy GPU behind an idle CPU is never idle.
        """
        found: dict[str, int] = {}
        if self.cpu_percent is not None:
            found["cpu"] = self.cpu_percent
        if gpu:
            threshold = self.gpu_percent if self.gpu_percent is not None else self.cpu_percent
            if threshold is not None:
                found["gpu"] = threshold
        return found


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: an empty selector selects everything."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or ():
        key, operator, values = requirement["key"], requirement["operator"], requirement.get("values") or ()
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def is_exempt(annotations: Mapping[str, str]) -> bool:
    """Any value but an explicit false exempts: when in doubt, do not cull."""
    return EXEMPT_ANNOTATION in annotations and annotations[EXEMPT_ANNOTATION].strip().lower() not in NOT_EXEMPT


def matching(policies: Iterable[Policy], labels: Mapping[str, str]) -> list[Policy]:
    return sorted((p for p in policies if selects(p.selector, labels)), key=lambda p: p.name)


def in_active_window(windows: Iterable[Mapping[str, Any]], now: datetime) -> bool:
    """Inside some window: the latest time its schedule fired (in its zone) is less than `duration` ago.
    The latest fire is enough - an earlier window covering `now` implies the latest one does."""
    windows = list(windows)
    if not windows:
        return True
    for window in windows:
        zone = ZoneInfo(window.get("timeZone") or "UTC")
        # get_prev is strictly before its start: start a second later so a window opening now counts.
        start = (now + timedelta(seconds=1)).astimezone(zone)
        # In UTC: aware arithmetic in a zone adds wall-clock time, and a window lasts real time.
        fired = croniter(window["schedule"], start).get_prev(datetime).astimezone(UTC)
        if fired <= now < fired + parse_duration(window["duration"]):
            return True
    return False


@dataclass(frozen=True)
class NativePlan:
    """What the cloud should enforce itself for one instance, and which policies the operator still runs."""

    idle_rule: IdleRule | None
    shutdown_at: datetime | None
    mechanisms: tuple[str, ...]
    operator_policies: tuple[Policy, ...]
    notes: tuple[str, ...] = ()  # how the cloud's rule differs from the policies (rounding, thresholds)

    @property
    def enforcement(self) -> str:
        if not self.mechanisms:
            return "Operator"
        native = "Native: " + ", ".join(self.mechanisms)
        native = native + " + Operator" if self.operator_policies else native
        return native + (f" ({'; '.join(self.notes)})" if self.notes else "")


# How far ahead a cloud timer can be set (a ModelArts lease lasts 1 h to 72 h); None: any time.
TIMER_LIMITS: dict[str, tuple[timedelta, timedelta]] = {"modelarts": (timedelta(hours=1), timedelta(hours=72))}
TIMER_TOLERANCE = timedelta(seconds=60)


def timer_settable(provider: str, due: datetime, now: datetime, current: datetime | None) -> bool:
    """The cloud can hold this timer: within its limits now, or already set to it (a lease set hours ago
    stays right even when less than its minimum is left)."""
    if current is not None and abs(current - due) <= TIMER_TOLERANCE:
        return True
    limits = TIMER_LIMITS.get(provider)
    return limits is None or limits[0] <= due - now <= limits[1]


def native_plan(
    policies: Iterable[Policy],
    provider: str,
    capabilities: frozenset[Capability],
    gpu: bool,
    started_at: datetime | None,
    now: datetime,
    current_timer: datetime | None = None,
) -> NativePlan:
    """Native, non-dry-run policies become one cloud rule (the clouds hold one per instance), combined
    to the strictest: the highest thresholds and the shortest idle time; the earliest running cap.
    What the cloud cannot enforce stays with the operator."""
    policies = list(policies)
    # With thresholds (PAI-DSW IdleInstanceCuller) the policy's percentages go to the cloud; without (ModelArts
    # IDLE lease) only the idle time does, and the cloud's own idea of idle applies.
    idle_kind = next((k for k in (Capability.IDLE_RULE_THRESHOLDS, Capability.IDLE_RULE) if k in capabilities), None)
    native_idle = [p for p in policies if p.enforcement == "Native" and not p.dry_run and p.culls_idle
                   and idle_kind is not None and p.action == "Stop"]  # fmt: skip
    # One lease per notebook: an idle rule takes it, and running caps stay with the operator.
    lease_taken = bool(native_idle) and provider in ONE_LEASE
    rules: list[IdleRule] = []
    caps: list[datetime] = []
    by_operator: list[Policy] = []
    notes: list[str] = []
    for policy in policies:
        native = policy.enforcement == "Native" and not policy.dry_run
        # The clouds' cullers only stop: saving an image on the way stays with the operator.
        idle_native = policy in native_idle
        cap = (
            started_at + timedelta(hours=policy.max_running_hours) if policy.max_running_hours and started_at else None
        )
        cap_native = (native and Capability.SHUTDOWN_TIMER in capabilities and cap is not None and not lease_taken
                      and timer_settable(provider, cap, now, current_timer))  # fmt: skip
        if native and cap is not None and lease_taken:
            notes.append(f"maxRunningHours of {policy.name} by the operator (one lease per notebook)")
        if idle_native:
            rules.append(_idle_rule(policy, provider, gpu, idle_kind, notes))
        if cap is not None and cap_native:
            caps.append(cap)
        rest = replace(policy, idle_minutes=None if idle_native else policy.idle_minutes,
                       max_running_hours=None if cap_native else policy.max_running_hours)  # fmt: skip
        if rest.culls_idle or rest.max_running_hours is not None:
            by_operator.append(rest)
    rule = None
    if rules:
        rule = IdleRule(
            cpu_percent=max((r.cpu_percent for r in rules if r.cpu_percent is not None), default=None),
            gpu_percent=max((r.gpu_percent for r in rules if r.gpu_percent is not None), default=None),
            max_idle_minutes=min(r.max_idle_minutes for r in rules),
        )
    mechanisms = tuple(
        MECHANISMS.get((provider, kind), f"{provider} {kind}")
        for kind, wanted in ((idle_kind, rule), (Capability.SHUTDOWN_TIMER, caps))
        if wanted and kind is not None
    )
    return NativePlan(rule, min(caps) if caps else None, mechanisms, tuple(by_operator), tuple(dict.fromkeys(notes)))


def _idle_rule(policy: Policy, provider: str, gpu: bool, kind: Capability | None, notes: list[str]) -> IdleRule:
    """The cloud rule for one Native idle policy; what the cloud cannot take as given goes into `notes`."""
    assert policy.idle_minutes is not None
    if kind == Capability.IDLE_RULE_THRESHOLDS:
        thresholds = policy.thresholds(gpu)
        return IdleRule(cpu_percent=thresholds.get("cpu"), gpu_percent=thresholds.get("gpu"),
                        max_idle_minutes=policy.idle_minutes)  # fmt: skip
    low, high = IDLE_LEASE_MINUTES.get(provider, (1, policy.idle_minutes))
    minutes = min(max(policy.idle_minutes, low), high)
    if policy.idle_minutes < low:
        notes.append(f"idleMinutes {policy.idle_minutes} of {policy.name} rounded up to the {low} min lease minimum")
    elif policy.idle_minutes > high:
        notes.append(f"idleMinutes {policy.idle_minutes} of {policy.name} clamped to the {high} min lease maximum")
    cloud = CLOUD_IDLE_THRESHOLDS.get(provider, "its own thresholds")
    notes.append(f"idle as the cloud judges it ({cloud}), not cpuPercent/gpuPercent")
    return IdleRule(max_idle_minutes=minutes)
