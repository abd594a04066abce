"""What NotebookInstance.status says about the cloud instance, and the kstatus verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notebook_operator.api.meta import CLOUD_REASON_MAX, TEXT_MAX
from notebook_operator.api.notebookinstance import NotebookInstanceSpec, ShutdownSpec
from notebook_operator.providers.types import TRANSITIONAL_PHASES, CloudInstance
from notebook_operator.reconcile.conditions import kstatus, same_conditions
from notebook_operator.reconcile.shutdown import next_timer_stop, shutdown_problem
from notebook_operator.times import rfc3339

OWNED_ELSEWHERE = "OwnedElsewhere"


def desired_power(spec: NotebookInstanceSpec, status: Mapping[str, Any], generation: int | None) -> str | None:
    """The power state to enforce now. A stop by a timer or culler holds until the spec changes again:
    GitOps owns spec, so `desiredState: Running` is not flipped, and the stop is not undone either."""
    if spec.management_policy != "Manage":
        return None
    wanted = spec.desired_state
    last = status.get("lastAction") or {}
    if (
        wanted == "Running"
        and status.get("stoppedBy")
        and last.get("action") == "stop"
        and last.get("generation") == generation
    ):
        return None
    return wanted


def observed_fields(
    observed: CloudInstance,
    previous: Mapping[str, Any],
    shutdown: ShutdownSpec | None,
    now: datetime,
    snoozed_until: datetime | None = None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "provider": observed.provider,
        "instanceId": observed.id,
        "phase": observed.phase,
        "cloudStatus": observed.cloud_status,
        "urls": {
            k: v
            for k, v in {
                "jupyterLab": observed.urls.jupyter_lab,
                "webIDE": observed.urls.web_ide,
                "terminal": observed.urls.terminal,
                "instance": observed.urls.instance,
            }.items()
            if v
        },
        "resources": {
            k: v
            for k, v in {
                "cpu": observed.resources.cpu,
                "memoryGiB": observed.resources.memory_gib,
                "gpu": observed.resources.gpu,
                "gpuType": observed.resources.gpu_type,
            }.items()
            if v is not None
        },
        "instanceType": observed.instance_type,
        "createdAt": rfc3339(observed.created_at) if observed.created_at else None,
        "startedAt": rfc3339(observed.started_at) if observed.started_at else None,
        "startedAtSource": observed.started_at_source if observed.started_at else None,
    }
    # The running total grows every second; it is written when the run ends, not on every poll.
    if observed.phase == "Running" and previous.get("phase") == "Running":
        fields["accumulatedRunningSeconds"] = previous.get("accumulatedRunningSeconds")
    else:
        fields["accumulatedRunningSeconds"] = observed.accumulated_running_seconds
    running = observed.phase == "Running"
    due = next_timer_stop(shutdown, observed.started_at, now, snoozed_until) if running else None
    fields["nextShutdownAt"] = rfc3339(due.at) if due else None
    fields["nextShutdownReason"] = due.reason if due else None
    unusable = shutdown_problem(shutdown)
    if unusable and not due:  # said where the next shutdown would be; the other timers still hold
        fields["nextShutdownReason"] = unusable
    elif unusable and due:
        fields["nextShutdownReason"] = f"{due.reason}; {unusable}"[:TEXT_MAX]
    # The last reason the cloud gave stays until it gives another (a failure's cause outlives the retry).
    if observed.reason:
        fields["cloudReason"] = observed.reason[:CLOUD_REASON_MAX]
    return fields


@dataclass(frozen=True)
class Verdict:
    ready: bool
    reconciling: bool
    stalled: bool
    reason: str
    message: str


def verdict(
    spec: NotebookInstanceSpec,
    status: Mapping[str, Any],
    observed: CloudInstance | None,
    generation: int | None,
    refused: tuple[str, str] | None = None,
) -> Verdict:
    if refused:  # (reason, message): owned elsewhere (reconcile/ownership.py), or its snapshot not ready
        return Verdict(False, False, True, *refused)
    if observed is None:
        instance_id = status.get("instanceId") or spec.instance_id
        return Verdict(False, False, True, "InstanceNotFound", f"the cloud instance {instance_id} no longer exists")
    phase = observed.phase
    if phase == "Failed":
        message = (observed.reason or f"cloud status {observed.cloud_status}")[:CLOUD_REASON_MAX]
        return Verdict(False, False, True, "CloudFailed", message)
    if phase in TRANSITIONAL_PHASES:
        return Verdict(False, True, False, phase, f"cloud status {observed.cloud_status}")
    wanted = desired_power(spec, status, generation)
    if wanted and wanted != phase:
        return Verdict(False, True, False, "Reconciling", f"{phase}, desired {wanted}")
    if phase == "Stopped" and status.get("stoppedBy"):
        return Verdict(True, False, False, "StoppedByOperator", str(status["stoppedBy"]))
    return Verdict(True, False, False, phase, f"cloud status {observed.cloud_status}")


def mirror(
    spec: NotebookInstanceSpec,
    status: Mapping[str, Any],
    observed: CloudInstance | None,
    generation: int | None,
    now: datetime,
    snoozed_until: datetime | None = None,
    refused: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The status patch that brings `status` in line with the cloud: {} when nothing changed."""
    patch: dict[str, Any] = {}
    if observed is not None:
        fields = observed_fields(observed, status, spec.shutdown, now, snoozed_until)
        patch = {k: v for k, v in fields.items() if status.get(k) != v}
    elif not (status.get("instanceId") or spec.instance_id):
        if status.get("phase") != "Pending":  # not created yet (e.g. waiting for its snapshot)
            patch["phase"] = "Pending"
    elif status.get("phase") != "Deleted":
        patch["phase"] = "Deleted"
        patch["cloudStatus"] = None
    merged = {**status, **patch}
    v = verdict(spec, merged, observed, generation, refused)
    conditions = kstatus(
        status.get("conditions"),
        ready=v.ready,
        reconciling=v.reconciling,
        stalled=v.stalled,
        reason=v.reason,
        message=v.message,
        now=now,
        generation=generation,
    )
    if not same_conditions(status.get("conditions"), conditions):
        patch["conditions"] = conditions
    if patch and status.get("observedGeneration") != generation:
        patch["observedGeneration"] = generation
    return patch
