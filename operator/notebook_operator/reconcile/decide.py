"""The lifecycle decision: what to do to the cloud instance next, if anything.

Modelled on the ACK SageMaker notebook hooks: while the cloud is in a transitional state the
answer is to wait and look again; an update the cloud only allows on a stopped instance is
stop -> update -> start; an adopted instance that disappeared is reported, never recreated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from notebook_operator.providers.types import TRANSITIONAL_PHASES, CloudInstance
from notebook_operator.reconcile.mirror import desired_power
from notebook_operator.reconcile.shutdown import next_shutdown

ActionKind = Literal["create", "start", "stop", "update", "wait", "missing", "none"]
WAIT_S = 5.0
# A call recorded as Pending may still be in flight at the cloud (the operator died waiting for the
# answer): give it this long to show before calling again, so a restart does not repeat it.
PENDING_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    reason: str = ""
    requeue_after: float | None = None


def template_drift(spec: dict[str, Any], observed: CloudInstance) -> dict[str, str]:
    """Template fields the cloud can change after creation that differ from what it reports."""
    template = spec.get("template") or {}
    drift = {}
    if template.get("instanceType") and observed.instance_type and template["instanceType"] != observed.instance_type:
        drift["instanceType"] = template["instanceType"]
    if template.get("image") and observed.image and template["image"] != observed.image:
        drift["image"] = template["image"]
    return drift


def decide(spec: dict[str, Any], status: dict[str, Any], observed: CloudInstance | None,
           generation: int | None, now: datetime | None = None) -> Action:  # fmt: skip
    action = _decide(spec, status, observed, generation)
    if now is not None and action.kind in ("create", "start", "stop", "update"):
        last = status.get("lastAction") or {}
        started = last.get("startedAt")
        if last.get("state") == "Pending" and last.get("action") == action.kind and started:
            since = datetime.fromisoformat(str(started).replace("Z", "+00:00"))
            if now - since < PENDING_GRACE:
                return Action("wait", f"a {action.kind} sent at {started} may still be in flight", WAIT_S)
    return action


def _decide(spec: dict[str, Any], status: dict[str, Any], observed: CloudInstance | None,
            generation: int | None) -> Action:  # fmt: skip
    manage = spec.get("managementPolicy", "Manage") == "Manage"
    if observed is None:
        if manage and spec.get("template"):
            return Action("create", "no cloud instance yet", requeue_after=WAIT_S)
        return Action("missing", "the cloud instance does not exist")
    if not manage:
        return Action("none", "managementPolicy Observe")
    if observed.phase in TRANSITIONAL_PHASES:
        return Action("wait", f"cloud status {observed.cloud_status}", requeue_after=WAIT_S)
    if observed.phase in ("Failed", "Deleted", "Unknown"):
        return Action("none", f"cloud status {observed.cloud_status}")
    drift = template_drift(spec, observed)
    if drift:
        if observed.phase == "Running":
            return Action("stop", f"template changed ({', '.join(drift)}): the cloud updates stopped instances only",
                          requeue_after=WAIT_S)  # fmt: skip
        if observed.phase == "Stopped":
            return Action("update", f"template changed ({', '.join(drift)})", requeue_after=WAIT_S)
    wanted = desired_power(spec, status, generation)
    if wanted == "Running" and observed.phase == "Stopped":
        return Action("start", "desiredState Running", requeue_after=WAIT_S)
    if wanted == "Stopped" and observed.phase == "Running":
        return Action("stop", "desiredState Stopped", requeue_after=WAIT_S)
    return Action("none", "in the desired state")


def shutdown_due(spec: dict[str, Any], status: dict[str, Any], observed: CloudInstance | None,
                 now: datetime) -> str | None:  # fmt: skip
    """The reason to stop a running instance now because a declared shutdown is due, else None.

    Observe instances are stopped too (DESIGN: stop enforcement is allowed on them); a stop for
    this run that succeeded, or may still be in flight, is not repeated.
    """
    if observed is None or observed.phase != "Running" or observed.started_at is None:
        return None
    due = next_shutdown(spec.get("shutdown"), observed.started_at, now)
    if due is None or due.at > now:
        return None
    if stop_in_hand(status, observed, now):
        return None
    return f"shutdown {due.reason} was due at {due.at.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def stop_in_hand(status: dict[str, Any], observed: CloudInstance, now: datetime) -> bool:
    """A stop of this run succeeded or may still be in flight: do not send another (a Failed one is retried)."""
    if observed.started_at is None:
        return False
    last = status.get("lastAction") or {}
    this_run = last.get("startedAt", "") >= observed.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if last.get("action") != "stop" or not this_run:
        return False
    if last.get("state") == "Succeeded":
        return True
    started = datetime.fromisoformat(str(last.get("startedAt")).replace("Z", "+00:00"))
    return bool(last.get("state") == "Pending" and now - started < PENDING_GRACE)
