"""The idle-culling decision from tables and properties: no cluster, no cloud."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notebook_operator.providers.modelarts.provider import ModelArtsProvider
from notebook_operator.providers.pai.provider import PaiDswProvider
from notebook_operator.providers.types import CloudInstance, IdleRule, Resources, Utilization
from notebook_operator.reconcile.culling import (
    MAX_WINDOW,
    SAMPLE_REFRESH,
    at_rest,
    close_savings,
    culled,
    evaluate,
    idle_patch,
    policy_hours_saved,
    sample_verdict,
    sample_window,
)
from notebook_operator.reconcile.policies import Policy, in_active_window, is_exempt, matching, native_plan, selects
from notebook_operator.reconcile.policy_status import Selected, summarize

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(hours=3)
IDLE = Policy("idle", {}, cpu_percent=10, gpu_percent=5, idle_minutes=30, window_minutes=5)
PAI = PaiDswProvider.native
MODELARTS = ModelArtsProvider.native


def instance(gpu: int = 0, started: datetime = STARTED, phase: str = "Running") -> CloudInstance:
    return CloudInstance(provider="pai-dsw", id="dsw-1", name="nb", phase=phase, cloud_status=phase,  # type: ignore[arg-type]
                         resources=Resources(gpu=gpu), started_at=started)  # fmt: skip


def sample(cpu: float | None = 1.0, gpu: float | None = 0.0, at: datetime = NOW, minutes: float = 5,
           samples: int = 5) -> Utilization:  # fmt: skip
    return Utilization(window=timedelta(minutes=minutes), samples=samples, cpu_max=cpu, gpu_max=gpu, sampled_at=at)


def clock(policy: str, since: datetime, sampled: datetime) -> dict[str, Any]:
    return {"since": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "policy": policy,
            "clocks": [{"policy": policy, "since": since.strftime("%Y-%m-%dT%H:%M:%SZ")}],
            "sampledAt": sampled.strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip


def run(policies: list[Policy], idle: dict[str, Any], samples: list[Utilization | None], gpu: int = 0,
        started: datetime = STARTED) -> list[Any]:  # fmt: skip
    """Feed samples one poll cycle after another, carrying status.idle like the poll loop does."""
    decisions = []
    for s in samples:
        now = s.sampled_at if s else NOW
        decision = evaluate(policies, idle, instance(gpu, started), s, now)
        idle = decision.idle
        decisions.append(decision)
    return decisions


def every(minutes: int, count: int, start: datetime = NOW, **levels: Any) -> list[Utilization | None]:
    return [sample(at=start + timedelta(minutes=minutes * i), minutes=max(minutes, 5), **levels) for i in range(count)]


# --- which metrics count ---------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "gpu", "levels", "expected"), [
    (IDLE, 0, (1, None), True),          # CPU instance: the GPU does not count
    (IDLE, 1, (1, 0), True),
    (IDLE, 1, (1, 80), False),           # busy GPU, idle CPU: busy
    (IDLE, 1, (50, 0), False),
    (IDLE, 1, (1, None), None),          # GPU instance without GPU data: no evidence
    (IDLE, 0, (None, None), None),
    (Policy("cpu-only", {}, cpu_percent=10, idle_minutes=5), 1, (1, 80), False),  # GPU checked even so
    (Policy("gpu-only", {}, gpu_percent=5, idle_minutes=5), 0, (1, None), None),  # nothing counts: never idle
    (Policy("cap-only", {}, max_running_hours=2), 0, (1, 0), None),
])  # fmt: skip
def test_sample_verdict(policy: Policy, gpu: int, levels: tuple[float | None, float | None],
                        expected: bool | None) -> None:  # fmt: skip
    assert sample_verdict(policy, sample(*levels), bool(gpu)) is expected


def test_empty_sample_is_no_evidence() -> None:
    assert sample_verdict(IDLE, sample(samples=0), False) is None
    assert sample_verdict(IDLE, None, False) is None


# --- the idle clock --------------------------------------------------------------------------------


def test_idle_for_idle_minutes_stops_once_the_clock_has_run() -> None:
    decisions = run([IDLE], {}, every(5, 8))
    since = NOW - timedelta(minutes=5)  # the first idle window
    assert decisions[0].idle["since"] == since.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert decisions[0].idle_started == "idle" and decisions[1].idle_started is None
    stops = [i for i, d in enumerate(decisions) if d.stop]
    assert stops[0] == 5  # at NOW + 25 min the clock (since NOW - 5 min) reached 30 min
    assert decisions[5].stop is not None and decisions[5].stop.reason.startswith("idle 30 min, cpu 1%")


def test_busy_sample_resets_the_clock() -> None:
    samples = [*every(5, 4), sample(cpu=50, at=NOW + timedelta(minutes=20)), *every(5, 3, NOW + timedelta(minutes=25))]
    decisions = run([IDLE], {}, samples)
    assert "since" not in decisions[4].idle
    assert decisions[5].idle["since"] == "2026-03-10T12:20:00Z"
    assert not any(d.stop for d in decisions)


def test_failed_fetches_keep_the_clock_but_never_stop() -> None:
    idle = clock("idle", NOW - timedelta(minutes=40), NOW - timedelta(minutes=1))
    decision = evaluate([IDLE], idle, instance(), None, NOW)
    assert decision.stop is None and decision.idle["since"] == idle["since"]
    # the next good sample covers the gap: the clock goes on and the stop comes
    bridged = sample(at=NOW + timedelta(minutes=3), minutes=4)
    decision = evaluate([IDLE], decision.idle, instance(), bridged, bridged.sampled_at)
    assert decision.stop is not None and decision.idle["since"] == idle["since"]


def test_a_gap_not_covered_by_the_next_sample_restarts_the_clock() -> None:
    idle = clock("idle", NOW - timedelta(minutes=40), NOW - timedelta(minutes=20))
    decision = evaluate([IDLE], idle, instance(), sample(minutes=5), NOW)
    assert decision.stop is None and decision.idle["since"] == "2026-03-10T11:55:00Z"


def test_sample_window_stretches_back_to_the_last_sample_while_a_clock_runs() -> None:
    assert sample_window([IDLE], {}, NOW) == timedelta(minutes=5)
    idle = clock("idle", NOW - timedelta(minutes=40), NOW - timedelta(minutes=12))
    assert sample_window([IDLE], idle, NOW) == timedelta(minutes=12)
    idle = clock("idle", NOW - timedelta(hours=4), NOW - timedelta(hours=3))
    assert sample_window([IDLE], idle, NOW) == MAX_WINDOW


def test_a_clock_from_an_earlier_run_is_not_carried_over() -> None:
    idle = clock("idle", NOW - timedelta(hours=2), NOW - timedelta(minutes=1))
    restarted = NOW - timedelta(minutes=10)
    decision = evaluate([IDLE], idle, instance(started=restarted), sample(), NOW)
    assert decision.stop is None and decision.idle["since"] == "2026-03-10T11:55:00Z"


def test_the_clock_does_not_start_before_the_run() -> None:
    decision = evaluate([IDLE], {}, instance(started=NOW - timedelta(minutes=2)), sample(minutes=5), NOW)
    assert decision.idle["since"] == "2026-03-10T11:58:00Z"


def test_restart_of_the_operator_resumes_from_status() -> None:
    """The only state is status.idle: a fresh evaluation from it continues the same clock."""
    first = run([IDLE], {}, every(5, 3))
    resumed = evaluate([IDLE], first[-1].idle, instance(), sample(at=NOW + timedelta(minutes=25), minutes=15),
                       NOW + timedelta(minutes=25))  # fmt: skip
    assert resumed.idle["since"] == first[0].idle["since"] and resumed.stop is not None


# --- policies combined -----------------------------------------------------------------------------


def test_strictest_of_several_policies_wins() -> None:
    lax = Policy("lax", {}, cpu_percent=10, idle_minutes=60)
    strict = Policy("strict", {}, cpu_percent=10, idle_minutes=15)
    decisions = run([lax, strict], {}, every(5, 5))
    assert decisions[0].idle["policy"] == "strict"
    stop = next(d.stop for d in decisions if d.stop)
    assert stop.policy == "strict"


def test_a_higher_threshold_makes_a_policy_stricter() -> None:
    low = Policy("low", {}, cpu_percent=5, idle_minutes=10)
    high = Policy("high", {}, cpu_percent=40, idle_minutes=10)
    decisions = run([low, high], {}, every(5, 4, cpu=20))
    assert [c["policy"] for c in decisions[0].idle["clocks"]] == ["high"]
    assert next(d.stop for d in decisions if d.stop).policy == "high"


def test_dry_run_reports_once_and_never_stops() -> None:
    dry = Policy("dry", {}, cpu_percent=10, idle_minutes=10, dry_run=True)
    decisions = run([dry], {}, every(5, 8))
    assert not any(d.stop for d in decisions)
    reports = [d.report for d in decisions if d.report]
    assert len(reports) == 1 and reports[0].startswith("idle 10 min, cpu 1%") and "dry run" in reports[0]


def test_dry_run_reports_once_across_cycles_without_samples() -> None:
    dry = Policy("dry", {}, cpu_percent=10, idle_minutes=10, dry_run=True)
    samples: list[Utilization | None] = []
    for s in every(5, 6):
        samples += [s, None, None]
    decisions = run([dry], {}, samples)
    assert len([d for d in decisions if d.report]) == 1


def test_dry_run_beside_a_real_policy_reports_first_and_the_real_one_stops() -> None:
    dry = Policy("dry", {}, cpu_percent=10, idle_minutes=10, dry_run=True)
    real = Policy("real", {}, cpu_percent=10, idle_minutes=20)
    decisions = run([dry, real], {}, every(5, 6))
    assert decisions[1].report and not decisions[1].stop
    assert next(d.stop for d in decisions if d.stop).policy == "real"


def test_max_running_hours_is_a_hard_cap() -> None:
    cap = Policy("cap", {}, max_running_hours=2, active_windows=({"schedule": "0 3 * * *", "duration": "1h"},))
    decision = evaluate([cap], {}, instance(), sample(cpu=99, gpu=99), NOW)  # busy, outside the window
    assert decision.stop is not None and "maxRunningHours 2" in decision.stop.reason
    assert evaluate([cap], {}, instance(started=NOW - timedelta(hours=1)), None, NOW).stop is None


def test_stop_and_save_image_and_would_stop_at() -> None:
    policy = Policy("save", {}, cpu_percent=10, idle_minutes=5, action="StopAndSaveImage", max_running_hours=4)
    decision = evaluate([policy], clock("save", NOW - timedelta(minutes=10), NOW - timedelta(minutes=1)), instance(),
                        sample(), NOW, planned_stop=NOW + timedelta(hours=2))  # fmt: skip
    assert decision.stop is not None and decision.stop.save_image
    assert decision.stop.would_stop_at == STARTED + timedelta(hours=4)  # earlier than the planned stop


# --- active windows and time zones -----------------------------------------------------------------

NIGHT_BERLIN = {"schedule": "0 22 * * *", "duration": "8h", "timeZone": "Europe/Berlin"}


@pytest.mark.parametrize(("moment", "inside"), [
    ("2026-03-28T20:59:00Z", False),  # 21:59 CET, before the window
    ("2026-03-28T21:00:00Z", True),   # 22:00 CET
    ("2026-03-29T04:59:00Z", True),   # 06:59 CEST: DST began at 02:00; 8 real hours run to 05:00 UTC
    ("2026-03-29T05:00:00Z", False),
    ("2026-10-24T20:00:00Z", True),   # 22:00 CEST, the night clocks fall back
    ("2026-10-25T03:59:00Z", True),   # 04:59 CET: 8 real hours from 20:00 UTC
    ("2026-10-25T04:00:00Z", False),
])  # fmt: skip
def test_active_window_across_dst(moment: str, inside: bool) -> None:
    assert in_active_window([NIGHT_BERLIN], datetime.fromisoformat(moment)) is inside


def test_no_windows_means_always_and_any_window_opens() -> None:
    assert in_active_window([], NOW)
    tokyo = {"schedule": "0 9 * * 1-5", "duration": "9h", "timeZone": "Asia/Tokyo"}
    assert in_active_window([NIGHT_BERLIN, tokyo], datetime(2026, 3, 10, 1, 0, tzinfo=UTC))  # 10:00 JST Tuesday
    assert not in_active_window([tokyo], datetime(2026, 3, 14, 1, 0, tzinfo=UTC))  # Saturday


def test_idle_outside_the_window_waits_for_it() -> None:
    windowed = Policy("win", {}, cpu_percent=10, idle_minutes=10, active_windows=(NIGHT_BERLIN,))
    idle = clock("win", NOW - timedelta(minutes=60), NOW - timedelta(minutes=1))
    assert evaluate([windowed], idle, instance(), sample(), NOW).stop is None  # 13:00 CET
    night = datetime(2026, 3, 10, 21, 30, tzinfo=UTC)
    late = clock("win", night - timedelta(minutes=60), night - timedelta(minutes=1))
    assert evaluate([windowed], late, instance(started=night - timedelta(hours=2)), sample(at=night), night).stop


# --- properties ------------------------------------------------------------------------------------

levels = st.one_of(st.none(), st.floats(min_value=0, max_value=100))
policies = st.builds(
    Policy, name=st.sampled_from(["a", "b", "c"]), selector=st.just({}),
    cpu_percent=st.one_of(st.none(), st.integers(1, 100)), gpu_percent=st.one_of(st.none(), st.integers(1, 100)),
    idle_minutes=st.integers(1, 120), dry_run=st.booleans(),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(policies, min_size=1, max_size=3, unique_by=lambda p: p.name), levels, levels, st.integers(0, 200),
       st.booleans())  # fmt: skip
def test_property_busy_gpu_or_missing_data_never_stops(ps: list[Policy], cpu: float | None, gpu: float | None,
                                                       idle_for: int, has_gpu: bool) -> None:  # fmt: skip
    idle = {"since": None, "clocks": [{"policy": p.name, "since": "2026-03-10T10:00:00Z"} for p in ps],
            "sampledAt": "2026-03-10T11:59:00Z"}  # fmt: skip
    decision = evaluate(ps, idle, instance(gpu=int(has_gpu)), sample(cpu, gpu), NOW)
    gpu_limits = [p.gpu_percent if p.gpu_percent is not None else p.cpu_percent for p in ps]
    if decision.stop is not None:
        acting = next(p for p in ps if p.name == decision.stop.policy)
        assert not acting.dry_run
        assert cpu is not None or acting.cpu_percent is None
        assert acting.cpu_percent is None or (cpu is not None and cpu < acting.cpu_percent)
        if has_gpu:
            limit = acting.gpu_percent if acting.gpu_percent is not None else acting.cpu_percent
            assert gpu is not None and limit is not None and gpu < limit
    if has_gpu and (gpu is None or all(limit is None or gpu >= limit for limit in gpu_limits)):
        assert decision.stop is None


@settings(max_examples=200, deadline=None)
@given(st.lists(policies, min_size=1, max_size=3, unique_by=lambda p: p.name), st.lists(levels, min_size=1,
       max_size=12))  # fmt: skip
def test_property_dry_run_never_stops(ps: list[Policy], cpus: list[float | None]) -> None:
    dry = [Policy(p.name, {}, p.cpu_percent or 50, p.gpu_percent, p.idle_minutes, dry_run=True) for p in ps]
    decisions = run(dry, {}, [sample(cpu=c, at=NOW + timedelta(minutes=5 * i)) for i, c in enumerate(cpus)])
    assert not any(d.stop for d in decisions)


# --- selection, exemption, native plans ------------------------------------------------------------


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ({}, {}, True),
    ({"matchLabels": {"team": "ml"}}, {"team": "ml", "x": "y"}, True),
    ({"matchLabels": {"team": "ml"}}, {"team": "web"}, False),
    ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, {"gpu": ""}, True),
    ({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, {"gpu": "a"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["dev", "test"]}]}, {"tier": "dev"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["dev"]}]}, {}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["prod"]}]}, {}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["prod"]}]}, {"tier": "prod"}, False),
])  # fmt: skip
def test_selects(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert selects(selector, labels) is expected


@pytest.mark.parametrize(("value", "exempt"), [("true", True), ("yes", True), ("True", True), ("false", False),
                                               ("0", False), ("", False), (None, False)])  # fmt: skip
def test_exemption(value: str | None, exempt: bool) -> None:
    annotations = {} if value is None else {"cloudnotebooks.io/cull-exempt": value}
    assert is_exempt(annotations) is exempt


def test_matching_sorts_and_filters() -> None:
    a, b = Policy("b", {"matchLabels": {"t": "x"}}), Policy("a", {})
    assert [p.name for p in matching([a, b], {"t": "x"})] == ["a", "b"]
    assert [p.name for p in matching([a, b], {})] == ["a"]


def test_native_plan_on_pai_combines_to_one_strictest_rule() -> None:
    one = Policy("one", {}, cpu_percent=10, idle_minutes=60, enforcement="Native", max_running_hours=8)
    two = Policy("two", {}, cpu_percent=20, gpu_percent=3, idle_minutes=90, enforcement="Native")
    plan = native_plan([one, two], PAI, True, STARTED, NOW)
    assert plan.idle_rule == IdleRule(cpu_percent=20, gpu_percent=10, max_idle_minutes=60)
    assert plan.shutdown_at == STARTED + timedelta(hours=8)
    assert plan.operator_policies == ()
    assert plan.enforcement == "Native: PAI-DSW IdleInstanceCuller, PAI-DSW shutdown timer"


def test_native_plan_on_modelarts_sets_an_idle_lease_and_leaves_the_cap_to_the_operator() -> None:
    """One lease per notebook: the IDLE lease wins, the running cap stays with the operator; the cloud judges
    idleness by its own thresholds, so the policy's percentages are said not to apply."""
    policy = Policy("p", {}, cpu_percent=10, idle_minutes=60, enforcement="Native", max_running_hours=8)
    plan = native_plan([policy], MODELARTS, True, STARTED, NOW)
    assert plan.idle_rule == IdleRule(max_idle_minutes=60) and plan.shutdown_at is None
    assert [(p.idle_minutes, p.max_running_hours) for p in plan.operator_policies] == [(None, 8)]
    assert plan.enforcement == ("Native: ModelArts IDLE lease + Operator (maxRunningHours of p by the operator (one "
                                "lease per notebook); idle as the cloud judges it (CPU <= 5%, GPU <= 1%, NPU <= 1%), "
                                "not cpuPercent/gpuPercent)")  # fmt: skip


@pytest.mark.parametrize(("idle_minutes", "lease_minutes", "note"), [
    (1, 60, "idleMinutes 1 of p rounded up to the 60 min lease minimum"),
    (60, 60, None),
    (90, 90, None),
    (4320, 4320, None),
    (5000, 4320, "idleMinutes 5000 of p clamped to the 4320 min lease maximum"),
])  # fmt: skip
def test_modelarts_idle_lease_range(idle_minutes: int, lease_minutes: int, note: str | None) -> None:
    policy = Policy("p", {}, gpu_percent=5, idle_minutes=idle_minutes, enforcement="Native")
    plan = native_plan([policy], MODELARTS, True, STARTED, NOW)
    assert plan.idle_rule == IdleRule(max_idle_minutes=lease_minutes)
    assert plan.operator_policies == ()
    assert (note in plan.enforcement) if note else ("rounded" not in plan.enforcement and "clamped" not in
                                                   plan.enforcement)  # fmt: skip


def test_modelarts_cap_alone_is_the_timing_lease() -> None:
    plan = native_plan([Policy("cap", {}, max_running_hours=8, enforcement="Native")], MODELARTS, False,
                       STARTED, NOW)  # fmt: skip
    assert plan.idle_rule is None and plan.shutdown_at == STARTED + timedelta(hours=8)
    assert plan.enforcement == "Native: ModelArts lease"


def test_native_plan_modelarts_lease_limits() -> None:
    def plan(hours: float, started: datetime = STARTED, current: datetime | None = None) -> Any:
        policy = Policy("cap", {}, max_running_hours=hours, enforcement="Native")
        return native_plan([policy], MODELARTS, False, started, NOW, current)

    assert plan(8).shutdown_at == STARTED + timedelta(hours=8)  # 5 h left: a lease can hold it
    assert plan(3.5).shutdown_at is None  # 30 min left: under the 1 h minimum
    assert plan(3.5).operator_policies[0].max_running_hours == 3.5  # ...so the operator enforces it
    assert plan(3.5, current=STARTED + timedelta(hours=3.5)).shutdown_at  # unless the lease already says so
    assert plan(100, started=NOW).shutdown_at is None  # over the 72 h maximum
    assert native_plan([Policy("cap", {}, max_running_hours=100, enforcement="Native")], PAI, False,
                       NOW, NOW).shutdown_at == NOW + timedelta(hours=100)  # fmt: skip


def test_native_plan_keeps_stop_and_save_image_with_the_operator() -> None:
    saving = Policy("save", {}, cpu_percent=10, idle_minutes=60, enforcement="Native", action="StopAndSaveImage")
    plan = native_plan([saving], PAI, False, STARTED, NOW)
    assert plan.idle_rule is None and plan.operator_policies == (saving,)


def test_native_plan_leaves_dry_run_and_operator_policies_alone() -> None:
    dry = Policy("dry", {}, cpu_percent=10, idle_minutes=60, enforcement="Native", dry_run=True)
    plan = native_plan([dry, IDLE], PAI, False, STARTED, NOW)
    assert plan.idle_rule is None and plan.enforcement == "Operator" and len(plan.operator_policies) == 2


# --- hours saved, policy status, status writes -----------------------------------------------------


def test_hours_saved_open_then_closed_on_restart() -> None:
    stop = evaluate([IDLE], clock("idle", NOW - timedelta(hours=1), NOW), instance(), sample(), NOW).stop
    assert stop is not None
    idle = culled({}, stop, NOW)
    assert policy_hours_saved(idle, "idle", NOW + timedelta(hours=2)) == pytest.approx(2)
    closed = close_savings(idle, instance(started=NOW + timedelta(hours=3)))
    assert "culledAt" not in closed and closed["hoursSaved"] == {"idle": 3.0}
    assert policy_hours_saved(closed, "idle", NOW + timedelta(hours=9)) == pytest.approx(3)


def test_hours_saved_end_where_a_declared_shutdown_would_have_stopped_it() -> None:
    idle = {"culledBy": "p", "culledAt": "2026-03-10T12:00:00Z", "wouldStopAt": "2026-03-10T13:30:00Z"}
    assert policy_hours_saved(idle, "p", NOW + timedelta(hours=5)) == pytest.approx(1.5)
    assert policy_hours_saved(idle, "other", NOW + timedelta(hours=5)) == 0


def test_summarize_counts() -> None:
    policy = Policy("p", {"matchLabels": {"team": "ml"}})
    running_idle = {"phase": "Running", "idle": {"clocks": [{"policy": "p", "since": "2026-03-10T11:00:00Z"}]}}
    culled_one = {"phase": "Stopped", "idle": {"culledBy": "p", "culledAt": "2026-03-10T10:00:00Z"},
                  "cost": {"perHour": 12.5, "currency": "CNY"}}  # fmt: skip
    items = [
        Selected({"team": "ml"}, {}, running_idle),
        Selected({"team": "ml"}, {}, {"phase": "Running"}),
        Selected({"team": "ml"}, {}, culled_one),
        Selected({"team": "ml"}, {"cloudnotebooks.io/cull-exempt": "true"}, {"phase": "Running"}),
        Selected({"team": "web"}, {}, {"phase": "Running"}),
    ]
    assert summarize(policy, items, NOW) == {"matched": 3, "exempt": 1, "running": 2, "idle": 1, "stopped": 1,
                                             "estimatedHoursSaved": 2.0, "estimatedSavings": {"CNY": 25.0}}  # fmt: skip


def test_at_rest_drops_clocks_keeps_savings() -> None:
    idle = {**clock("p", NOW, NOW), "hoursSaved": {"p": 1.0}, "reported": "p"}
    assert at_rest(idle) == {"sampledAt": idle["sampledAt"], "hoursSaved": {"p": 1.0}}


def test_idle_patch_writes_clock_changes_and_stale_samples_only() -> None:
    old = clock("p", NOW - timedelta(minutes=10), NOW)
    moved = {**old, "sampledAt": "2026-03-10T12:01:00Z", "cpuPercent": 3.0}
    assert idle_patch(old, moved, NOW + timedelta(minutes=1)) is None
    assert idle_patch(old, moved, NOW + SAMPLE_REFRESH) == {"idle": moved}
    restarted = {**moved, "since": "2026-03-10T12:01:00Z"}
    assert idle_patch(old, restarted, NOW)
    assert idle_patch(old, {}, NOW) == {"idle": None}
    gone = {k: v for k, v in old.items() if k != "policy"}
    assert idle_patch(old, gone, NOW) == {"idle": {**gone, "policy": None}}
