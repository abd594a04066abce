"""IdleCullerPolicy as the culler sees it: which notebooks a policy selects, when culling may happen,
which metrics count on which instance, and what a Native policy pushes into the cloud."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterError

from notebook_operator.api.formats import parse_duration
from notebook_operator.api.idlecullerpolicy import IdleCullerPolicySpec
from notebook_operator.api.notebookinstance import EXEMPT_ANNOTATION
from notebook_operator.api.notify import NotifySpec
from notebook_operator.providers.types import CloudInstance, IdleRule, NativeEnforcement

DEFAULT_WINDOW_MINUTES: int = IdleCullerPolicySpec.model_fields["window_minutes"].default
DEFAULT_MAX_SNOOZE_HOURS: float = IdleCullerPolicySpec.model_fields["max_snooze_hours"].default
NOT_EXEMPT = frozenset({"false", "no", "0", ""})


@dataclass(frozen=True)
class SnapshotFirst:
    """snapshotBeforeStop: a cull saves the notebook's environment first, waiting at most this long."""

    timeout_minutes: int
    image_repository: str | None = None  # PAI-DSW
    image_namespace: str | None = None  # ModelArts


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
    warn_minutes: int | None = None
    max_snooze_hours: float = DEFAULT_MAX_SNOOZE_HOURS
    notify: NotifySpec | None = None
    snapshot: SnapshotFirst | None = None  # snapshotBeforeStop

    @classmethod
    def from_spec(cls, name: str, spec: IdleCullerPolicySpec) -> Policy:
        """From the parsed spec (its defaults are the model's); selector and windows in their wire form, as
        label selection and cron read them."""
        return cls(
            name=name,
            selector=spec.selector.to_wire(),
            cpu_percent=spec.cpu_percent,
            gpu_percent=spec.gpu_percent,
            idle_minutes=spec.idle_minutes,
            window_minutes=spec.window_minutes,
            action=spec.action,
            active_windows=tuple(window.to_wire() for window in spec.active_windows or ()),
            max_running_hours=spec.max_running_hours,
            dry_run=spec.dry_run,
            enforcement=spec.enforcement,
            warn_minutes=spec.warn_minutes,
            max_snooze_hours=spec.max_snooze_hours,
            notify=spec.notify,
            snapshot=SnapshotFirst(
                spec.snapshot_timeout_minutes, spec.snapshot_image_repository, spec.snapshot_image_namespace
            )
            if spec.snapshot_before_stop
            else None,
        )

    @property
    def culls_idle(self) -> bool:
        return self.idle_minutes is not None and (self.cpu_percent is not None or self.gpu_percent is not None)

    @property
    def warn(self) -> timedelta | None:
        return timedelta(minutes=self.warn_minutes) if self.warn_minutes and not self.dry_run else None

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


def selecting(policies: Iterable[Policy], labels: Mapping[str, str], annotations: Mapping[str, str]) -> list[Policy]:
    """The policies that select a notebook, by name; none when it is exempt."""
    return [] if is_exempt(annotations) else matching(policies, labels)


CAP_GRACE = timedelta(minutes=5)  # a stop takes a poll interval and the cloud's own time to show


def over_running_cap(policies: Iterable[Policy], instance: CloudInstance, now: datetime) -> bool:
    """Running longer than a selecting policy's maxRunningHours allows (plus CAP_GRACE): a stop went missing."""
    if instance.phase != "Running" or instance.started_at is None:
        return False
    caps = [p.max_running_hours for p in policies if p.max_running_hours is not None and not p.dry_run]
    return any(instance.started_at + timedelta(hours=cap) + CAP_GRACE < now for cap in caps)


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
        try:
            fired = croniter(window["schedule"], start).get_prev(datetime).astimezone(UTC)
        except (CroniterError, ValueError, KeyError, OverflowError):  # admitted, but never opens: not a window
            continue
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


TIMER_TOLERANCE = timedelta(seconds=60)


def timer_settable(cloud: NativeEnforcement, due: datetime, now: datetime, current: datetime | None) -> bool:
    """The cloud can hold this timer: within its limits now, or already set to it (a lease set hours ago
    stays right even when less than its minimum is left)."""
    if current is not None and abs(current - due) <= TIMER_TOLERANCE:
        return True
    limits = cloud.timer_range
    return limits is None or limits[0] <= due - now <= limits[1]


def native_plan(
    policies: Iterable[Policy],
    cloud: NativeEnforcement,
    gpu: bool,
    started_at: datetime | None,
    now: datetime,
    current_timer: datetime | None = None,
    snoozed: bool = False,
) -> NativePlan:
    """Native, non-dry-run policies become one cloud rule (the clouds hold one per instance), combined
    to the strictest: the highest thresholds and the shortest idle time; the earliest running cap.
    What the cloud cannot enforce stays with the operator. While the notebook is snoozed the idle rule is
    lifted from the cloud (its culler knows no snooze) and the operator holds the idle culls until it ends."""
    policies = list(policies)
    # With thresholds (PAI-DSW IdleInstanceCuller) the policy's percentages go to the cloud; without (ModelArts
    # IDLE lease) only the idle time does, and the cloud's own idea of idle applies.
    native_idle = [
        p
        for p in policies
        if p.enforcement == "Native"
        and not snoozed
        and not p.dry_run
        and p.culls_idle
        and cloud.idle_rule is not None
        and p.action == "Stop"
    ]
    # One lease per notebook: an idle rule takes it, and running caps stay with the operator.
    lease_taken = bool(native_idle) and cloud.one_lease
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
        cap_native = (
            native
            and cloud.timer is not None
            and cap is not None
            and not lease_taken
            and timer_settable(cloud, cap, now, current_timer)
        )
        if native and cap is not None and lease_taken:
            notes.append(f"maxRunningHours of {policy.name} by the operator (one lease per notebook)")
        if idle_native:
            rules.append(_idle_rule(policy, cloud, gpu, notes))
        if cap is not None and cap_native:
            caps.append(cap)
        rest = replace(
            policy,
            idle_minutes=None if idle_native else policy.idle_minutes,
            max_running_hours=None if cap_native else policy.max_running_hours,
        )
        if rest.culls_idle or rest.max_running_hours is not None:
            by_operator.append(rest)
    rule = None
    if rules:
        rule = IdleRule(
            cpu_percent=max((r.cpu_percent for r in rules if r.cpu_percent is not None), default=None),
            gpu_percent=max((r.gpu_percent for r in rules if r.gpu_percent is not None), default=None),
            max_idle_minutes=min(r.max_idle_minutes for r in rules),
        )
    mechanisms = tuple(name for name, wanted in ((cloud.idle_rule, rule), (cloud.timer, caps)) if wanted and name)
    return NativePlan(rule, min(caps) if caps else None, mechanisms, tuple(by_operator), tuple(dict.fromkeys(notes)))


def _idle_rule(policy: Policy, cloud: NativeEnforcement, gpu: bool, notes: list[str]) -> IdleRule:
    """The cloud rule for one Native idle policy; what the cloud cannot take as given goes into `notes`."""
    assert policy.idle_minutes is not None
    if cloud.idle_thresholds:
        thresholds = policy.thresholds(gpu)
        return IdleRule(
            cpu_percent=thresholds.get("cpu"), gpu_percent=thresholds.get("gpu"), max_idle_minutes=policy.idle_minutes
        )
    low, high = cloud.idle_minutes or (1, policy.idle_minutes)
    minutes = min(max(policy.idle_minutes, low), high)
    if policy.idle_minutes < low:
        notes.append(f"idleMinutes {policy.idle_minutes} of {policy.name} rounded up to the {low} min lease minimum")
    elif policy.idle_minutes > high:
        notes.append(f"idleMinutes {policy.idle_minutes} of {policy.name} clamped to the {high} min lease maximum")
    notes.append(f"idle as the cloud judges it ({cloud.cloud_idle_thresholds}), not cpuPercent/gpuPercent")
    return IdleRule(max_idle_minutes=minutes)
