"""The pure decisions, from tables: lifecycle, mirroring, shutdown timers, conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notebook_operator.providers.types import CloudInstance, Resources
from notebook_operator.reconcile.conditions import kstatus, set_condition
from notebook_operator.reconcile.decide import decide, shutdown_due, template_drift
from notebook_operator.reconcile.mirror import desired_power, mirror, verdict
from notebook_operator.reconcile.shutdown import next_shutdown
from tests.specs import shutdown_of, spec_of

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(hours=2)


def cloud(phase: str = "Running", status: str | None = None, **kw: Any) -> CloudInstance:
    defaults: dict[str, Any] = {"provider": "pai-dsw", "id": "dsw-1", "name": "nb", "phase": phase,
                                "cloud_status": status or phase, "instance_type": "ecs.c6.large",
                                "image": "img:1", "started_at": STARTED if phase == "Running" else None}  # fmt: skip
    return CloudInstance(**{**defaults, **kw})


TEMPLATE = {"name": "nb", "image": "img:1", "instanceType": "ecs.c6.large"}
MANAGED = {"providerConfigRef": {"name": "p"}, "template": TEMPLATE, "managementPolicy": "Manage"}
ADOPTED = {"providerConfigRef": {"name": "p"}, "instanceId": "dsw-1", "managementPolicy": "Manage"}
OBSERVED = {"providerConfigRef": {"name": "p"}, "instanceId": "dsw-1", "managementPolicy": "Observe"}


def with_(base: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**base, **extra}


STOPPED_BY_TIMER = {"stoppedBy": "notebook-operator: shutdown at", "lastAction": {"action": "stop", "generation": 4,
                    "state": "Succeeded", "startedAt": "2026-03-10T11:00:00Z"}}  # fmt: skip

# (case, spec, status, observed, generation, expected action kind)
DECISIONS: list[tuple[str, dict[str, Any], dict[str, Any], CloudInstance | None, int, str]] = [
    ("create when nothing exists", with_(MANAGED, desiredState="Running"), {}, None, 1, "create"),
    ("adopted and missing is reported", ADOPTED, {"instanceId": "dsw-1"}, None, 1, "missing"),
    ("observe never acts on a gap", OBSERVED, {}, None, 1, "missing"),
    ("observe never starts", with_(OBSERVED, desiredState="Running"), {}, cloud("Stopped"), 1, "none"),
    ("start when stopped", with_(MANAGED, desiredState="Running"), {}, cloud("Stopped"), 1, "start"),
    ("stop when running", with_(MANAGED, desiredState="Stopped"), {}, cloud("Running"), 1, "stop"),
    ("leave alone without desiredState", MANAGED, {}, cloud("Stopped"), 1, "none"),
    ("wait while starting", with_(MANAGED, desiredState="Stopped"), {}, cloud("Starting"), 1, "wait"),
    ("wait while stopping", with_(MANAGED, desiredState="Running"), {}, cloud("Stopping"), 1, "wait"),
    ("wait while creating", with_(MANAGED, desiredState="Running"), {}, cloud("Pending", "Creating"), 1, "wait"),
    ("wait while deleting", MANAGED, {}, cloud("Deleting"), 1, "wait"),
    ("failed is not retried", with_(MANAGED, desiredState="Running"), {}, cloud("Failed"), 1, "none"),
    ("drift on running: stop first", with_(MANAGED, template={**TEMPLATE, "instanceType": "ecs.g6.xlarge"}),
     {}, cloud("Running"), 2, "stop"),
    ("drift on stopped: update", with_(MANAGED, template={**TEMPLATE, "image": "img:2"}), {}, cloud("Stopped"), 2,
     "update"),
    ("stopped by timer stays stopped", with_(MANAGED, desiredState="Running"), STOPPED_BY_TIMER, cloud("Stopped"), 4,
     "none"),
    ("a spec change after the timer starts again", with_(MANAGED, desiredState="Running"), STOPPED_BY_TIMER,
     cloud("Stopped"), 5, "start"),
    ("in flight stop is not repeated", with_(MANAGED, desiredState="Stopped"),
     {"lastAction": {"action": "stop", "state": "Pending", "startedAt": "2026-03-10T11:59:40Z"}}, cloud("Running"), 1,
     "wait"),
    ("stale pending stop is retried", with_(MANAGED, desiredState="Stopped"),
     {"lastAction": {"action": "stop", "state": "Pending", "startedAt": "2026-03-10T11:50:00Z"}}, cloud("Running"), 1,
     "stop"),
    ("in flight create waits", with_(MANAGED, desiredState="Running"),
     {"lastAction": {"action": "create", "state": "Pending", "startedAt": "2026-03-10T11:59:50Z"}}, None, 1, "wait"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "status", "observed", "generation", "kind"), [c[1:] for c in DECISIONS],
                         ids=[c[0] for c in DECISIONS])  # fmt: skip
def test_decide(spec: dict[str, Any], status: dict[str, Any], observed: CloudInstance | None, generation: int,
                kind: str) -> None:  # fmt: skip
    assert decide(spec_of(spec), status, observed, generation, NOW).kind == kind


def test_template_drift_ignores_unset_fields() -> None:
    assert template_drift(spec_of({"template": {"name": "nb", "image": "img:1"}}), cloud(instance_type="x")) == {}
    assert template_drift(spec_of({"template": {**TEMPLATE, "image": "img:9"}}), cloud()) == {"image": "img:9"}


def test_desired_power_observe_is_none() -> None:
    assert desired_power(spec_of(with_(OBSERVED, desiredState="Stopped")), {}, 1) is None


# -- mirror -------------------------------------------------------------------------------------------


def test_mirror_first_sight_writes_everything_then_nothing() -> None:
    spec = with_(ADOPTED, desiredState="Running")
    observed = cloud(urls={"jupyter_lab": "https://lab"}, resources=Resources(cpu=2, gpu=0),
                     accumulated_running_seconds=10, created_at=NOW - timedelta(days=1))  # fmt: skip
    first = mirror(spec_of(spec), {}, observed, 1, NOW)
    assert first["phase"] == "Running" and first["urls"] == {"jupyterLab": "https://lab"}
    assert first["observedGeneration"] == 1
    assert {c["type"]: c["status"] for c in first["conditions"]} == {"Ready": "True", "Reconciling": "False",
                                                                       "Stalled": "False"}  # fmt: skip
    # Nothing changed in the cloud: no write, even a minute later while running time grows.
    later = cloud(urls={"jupyter_lab": "https://lab"}, resources=Resources(cpu=2, gpu=0),
                  accumulated_running_seconds=70, created_at=NOW - timedelta(days=1))  # fmt: skip
    assert mirror(spec_of(spec), first, later, 1, NOW + timedelta(minutes=1)) == {}


def test_mirror_records_final_running_time_on_stop() -> None:
    status = mirror(spec_of(ADOPTED), {}, cloud(accumulated_running_seconds=10), 1, NOW)
    stopped = mirror(spec_of(ADOPTED), status, cloud("Stopped", accumulated_running_seconds=500), 1, NOW)
    assert stopped["phase"] == "Stopped" and stopped["accumulatedRunningSeconds"] == 500


def test_mirror_keeps_the_clouds_last_reason_and_ready_says_it() -> None:
    failed = cloud("Failed", reason="InsufficientStock: " + "x" * 300)
    patch = mirror(spec_of(ADOPTED), {}, failed, 1, NOW)
    assert patch["cloudReason"] == ("InsufficientStock: " + "x" * 300)[:256]
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", "CloudFailed", patch["cloudReason"])
    # Started again and running: the reason is the last one the cloud gave, until it gives another.
    running = mirror(spec_of(ADOPTED), patch, cloud(), 1, NOW)
    assert "cloudReason" not in running and running["phase"] == "Running"
    assert mirror(spec_of(ADOPTED), {**patch, **running}, cloud("Failed", reason="Other"), 1, NOW)["cloudReason"] == (
        "Other"
    )


def test_mirror_missing_instance() -> None:
    patch = mirror(spec_of(ADOPTED), {"phase": "Running", "instanceId": "dsw-1"}, None, 1, NOW)
    assert patch["phase"] == "Deleted"
    stalled = next(c for c in patch["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "InstanceNotFound"
    assert mirror(spec_of(ADOPTED), {**{"phase": "Running"}, **patch}, None, 1, NOW) == {}


@pytest.mark.parametrize(
    ("spec", "status", "observed", "ready", "reconciling", "stalled", "reason"),
    [
        (with_(ADOPTED, desiredState="Running"), {}, cloud(), True, False, False, "Running"),
        (with_(ADOPTED, desiredState="Running"), {}, cloud("Stopped"), False, True, False, "Reconciling"),
        (ADOPTED, {}, cloud("Starting"), False, True, False, "Starting"),
        (ADOPTED, {}, cloud("Failed", reason="ImagePullBackOff"), False, False, True, "CloudFailed"),
        (with_(ADOPTED, desiredState="Running"), STOPPED_BY_TIMER, cloud("Stopped"), True, False, False,
         "StoppedByOperator"),
        (OBSERVED, {}, cloud("Stopped"), True, False, False, "Stopped"),
    ],
)  # fmt: skip
def test_verdict(spec: dict[str, Any], status: dict[str, Any], observed: CloudInstance, ready: bool,
                 reconciling: bool, stalled: bool, reason: str) -> None:  # fmt: skip
    v = verdict(spec_of(spec), status, observed, 4)
    assert (v.ready, v.reconciling, v.stalled, v.reason) == (ready, reconciling, stalled, reason)


# -- shutdown -----------------------------------------------------------------------------------------


def test_after_running() -> None:
    due = next_shutdown(shutdown_of({"afterRunning": "8h"}), STARTED, NOW)
    assert due and due.at == STARTED + timedelta(hours=8) and due.reason == "afterRunning 8h"


def test_earliest_wins() -> None:
    shutdown = {"afterRunning": "3h", "at": "2026-03-10T12:30:00Z", "schedule": "0 20 * * *"}
    due = next_shutdown(shutdown_of(shutdown), STARTED, NOW)
    assert due and due.at == datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


def test_at_before_the_run_does_not_apply() -> None:
    assert next_shutdown(shutdown_of({"at": "2026-03-10T09:00:00Z"}), STARTED, NOW) is None


def test_schedule_fired_during_run_is_due() -> None:
    due = next_shutdown(shutdown_of({"schedule": "30 11 * * *"}), STARTED, NOW)
    assert due and due.at == datetime(2026, 3, 10, 11, 30, tzinfo=UTC) and due.at <= NOW


def test_schedule_fired_before_run_is_not() -> None:
    started = datetime(2026, 3, 10, 11, 45, tzinfo=UTC)
    due = next_shutdown(shutdown_of({"schedule": "30 11 * * *"}), started, NOW)
    assert due and due.at == datetime(2026, 3, 11, 11, 30, tzinfo=UTC)


def test_schedule_in_time_zone() -> None:
    due = next_shutdown(shutdown_of({"schedule": "0 20 * * *", "timeZone": "Asia/Shanghai"}), NOW, NOW)
    assert due and due.at == datetime(2026, 3, 10, 12, 0, tzinfo=UTC) + timedelta(days=1)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # New York springs forward on 2026-03-08: 20:00 EDT is 00:00 UTC the next day.
        (datetime(2026, 3, 7, 12, 0, tzinfo=UTC), datetime(2026, 3, 8, 1, 0, tzinfo=UTC)),
        (datetime(2026, 3, 8, 12, 0, tzinfo=UTC), datetime(2026, 3, 9, 0, 0, tzinfo=UTC)),
        # ...and falls back on 2026-11-01.
        (datetime(2026, 11, 1, 12, 0, tzinfo=UTC), datetime(2026, 11, 2, 1, 0, tzinfo=UTC)),
    ],
)
def test_schedule_across_dst(now: datetime, expected: datetime) -> None:
    due = next_shutdown(shutdown_of({"schedule": "0 20 * * *", "timeZone": "America/New_York"}), now, now)
    assert due and due.at == expected


@given(hours=st.integers(1, 200), minutes=st.integers(0, 59), elapsed=st.integers(0, 400 * 60))
def test_after_running_due_exactly_when_elapsed(hours: int, minutes: int, elapsed: int) -> None:
    limit = timedelta(hours=hours, minutes=minutes)
    started = NOW - timedelta(minutes=elapsed)
    due = next_shutdown(shutdown_of({"afterRunning": f"{hours}h{minutes}m"}), started, NOW)
    assert due and (due.at <= NOW) == (timedelta(minutes=elapsed) >= limit)


def test_shutdown_due_once_per_run() -> None:
    spec = with_(MANAGED, shutdown={"afterRunning": "1h"})
    assert shutdown_due(spec_of(spec), {}, cloud(), NOW)
    done = {"lastAction": {"action": "stop", "state": "Succeeded", "startedAt": "2026-03-10T11:00:05Z"}}
    assert shutdown_due(spec_of(spec), done, cloud(), NOW) is None
    in_flight = {"lastAction": {"action": "stop", "state": "Pending", "startedAt": "2026-03-10T11:59:30Z"}}
    assert shutdown_due(spec_of(spec), in_flight, cloud(), NOW) is None
    failed = {"lastAction": {"action": "stop", "state": "Failed", "startedAt": "2026-03-10T11:59:30Z"}}
    assert shutdown_due(spec_of(spec), failed, cloud(), NOW)  # a failed stop (e.g. throttled) is tried again
    assert shutdown_due(spec_of(spec), {}, cloud("Stopped"), NOW) is None
    observed_only = spec_of(with_(OBSERVED, shutdown={"afterRunning": "1h"}))
    assert shutdown_due(observed_only, {}, cloud(), NOW)  # Observe: still stops


# -- conditions ---------------------------------------------------------------------------------------


def test_transition_time_moves_only_on_flip() -> None:
    first = set_condition(None, "Ready", True, "Running", "", NOW, 1)
    same = set_condition(first, "Ready", True, "Running", "msg", NOW + timedelta(hours=1), 1)
    assert same[0]["lastTransitionTime"] == first[0]["lastTransitionTime"] and same[0]["message"] == "msg"
    flipped = set_condition(same, "Ready", False, "Stopping", "", NOW + timedelta(hours=2), 1)
    assert flipped[0]["lastTransitionTime"] == "2026-03-10T14:00:00Z"


def test_kstatus_abnormal_true_conditions() -> None:
    conditions = kstatus(None, ready=False, reconciling=False, stalled=True, reason="CredentialsRefused",
                         message="m", now=NOW, generation=2)  # fmt: skip
    by_type = {c["type"]: c for c in conditions}
    assert by_type["Stalled"]["status"] == "True" and by_type["Stalled"]["reason"] == "CredentialsRefused"
    assert by_type["Reconciling"]["status"] == "False" and by_type["Ready"]["observedGeneration"] == 2
