"""The lifecycle decision: what to do to the cloud instance next, if anything.

Modelled on the ACK SageMaker notebook hooks: while the cloud is in a transitional state the
answer is to wait and look again; an update the cloud only allows on a stopped instance is
stop -> update -> start; an adopted instance that disappeared is reported, never recreated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from notebook_operator.api.notebookinstance import NotebookInstanceSpec
from notebook_operator.providers.types import TRANSITIONAL_PHASES, CloudInstance
from notebook_operator.reconcile.mirror import desired_power
from notebook_operator.reconcile.shutdown import next_timer_stop
from notebook_operator.times import parse_rfc3339, rfc3339

ActionKind = Literal["create", "start", "stop", "update", "wait", "missing", "none"]
CloudCall = Literal["create", "start", "stop", "update"]
CALLS: tuple[CloudCall, ...] = ("create", "start", "stop", "update")
WAIT_S = 5.0
# A call recorded as Pending may still be in flight at the cloud (the operator died waiting for the
# answer): give it this long to show before calling again, so a restart does not repeat it.
PENDING_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    reason: str = ""
    requeue_after: float | None = None


def template_drift(spec: NotebookInstanceSpec, observed: CloudInstance) -> dict[str, str]:
    """Template fields the cloud can change after creation that differ from what it reports."""
    template = spec.template
    drift: dict[str, str] = {}
    if template is None:
        return drift
    if template.instance_type and observed.instance_type and template.instance_type != observed.instance_type:
        drift["instanceType"] = template.instance_type
    if template.image and observed.image and template.image != observed.image:
        drift["image"] = template.image
    return drift


def decide(
    spec: NotebookInstanceSpec,
    status: Mapping[str, Any],
    observed: CloudInstance | None,
    generation: int | None,
    now: datetime | None = None,
) -> Action:
    action = _decide(spec, status, observed, generation)
    if now is not None and action.kind in CALLS:
        last = status.get("lastAction") or {}
        since = parse_rfc3339(last.get("startedAt"))
        pending = last.get("state") == "Pending" and last.get("action") == action.kind
        if pending and since is not None and now - since < PENDING_GRACE:
            return Action("wait", f"a {action.kind} sent at {last['startedAt']} may still be in flight", WAIT_S)
    return action


def _decide(
    spec: NotebookInstanceSpec, status: Mapping[str, Any], observed: CloudInstance | None, generation: int | None
) -> Action:
    manage = spec.management_policy == "Manage"
    if observed is None:
        if manage and spec.template is not None:
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
        changed = ", ".join(drift)
        if observed.phase == "Running":
            reason = f"template changed ({changed}): the cloud updates stopped instances only"
            return Action("stop", reason, requeue_after=WAIT_S)
        if observed.phase == "Stopped":
            return Action("update", f"template changed ({changed})", requeue_after=WAIT_S)
    wanted = desired_power(spec, status, generation)
    if wanted == "Running" and observed.phase == "Stopped":
        return Action("start", "desiredState Running", requeue_after=WAIT_S)
    if wanted == "Stopped" and observed.phase == "Running":
        return Action("stop", "desiredState Stopped", requeue_after=WAIT_S)
    return Action("none", "in the desired state")


def shutdown_due(
    spec: NotebookInstanceSpec,
    status: Mapping[str, Any],
    observed: CloudInstance | None,
    now: datetime,
    snoozed_until: datetime | None = None,
) -> str | None:
    """The reason to stop a running instance now because a declared shutdown is due, else None.

    Observe instances are stopped too (DESIGN: stop enforcement is allowed on them); a stop for
    this run that succeeded, or may still be in flight, is not repeated.
    """
    if observed is None or observed.phase != "Running" or observed.started_at is None:
        return None
    due = next_timer_stop(spec.shutdown, observed.started_at, now, snoozed_until)
    if due is None or due.at > now:
        return None
    if stop_in_hand(status, observed, now):
        return None
    return f"shutdown {due.reason} was due at {rfc3339(due.at)}"


def stop_in_hand(status: Mapping[str, Any], observed: CloudInstance, now: datetime) -> bool:
    """A stop of this run succeeded or may still be in flight: do not send another (a Failed one is retried)."""
    if observed.started_at is None:
        return False
    last = status.get("lastAction") or {}
    this_run = str(last.get("startedAt", "")) >= rfc3339(observed.started_at)
    if last.get("action") != "stop" or not this_run:
        return False
    if last.get("state") == "Succeeded":
        return True
    started = parse_rfc3339(last.get("startedAt"))
    return bool(last.get("state") == "Pending" and started is not None and now - started < PENDING_GRACE)


def settled(
    spec: NotebookInstanceSpec, status: Mapping[str, Any], observed: CloudInstance | None, generation: int | None
) -> Action | None:
    """After a spec pass acted: None when the instance is where the spec wants it, else what is still to
    come (the spec handler looks again after its requeue_after, like ACK while the cloud is moving)."""
    if observed is None:
        return None
    after = decide(spec, status, observed, generation)
    return None if after.kind in ("none", "missing") else after
