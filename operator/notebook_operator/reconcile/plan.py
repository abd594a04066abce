"""What one reconcile pass of one NotebookInstance asks of the cloud: at most one order, from the
declared shutdown (first: a due stop is never held up by anything else) or the lifecycle decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notebook_operator.api.notebookinstance import NotebookInstanceSpec
from notebook_operator.providers.types import CloudInstance
from notebook_operator.reconcile.culling import Stop
from notebook_operator.reconcile.decide import CALLS, Action, CloudCall, decide, shutdown_due
from notebook_operator.reconcile.pending import TIMER, may_stop

SUCCEEDED = {"create": "Created", "start": "Started", "stop": "Stopped", "update": "Updated"}
NOT_SAVED = " (image not saved: not supported here)"


@dataclass(frozen=True)
class Order:
    """One cloud call for the executor."""

    kind: CloudCall
    reason: str
    event: str = ""  # the Event's reason when it succeeds (default: Created, Started, Stopped, Updated)
    save_image: bool = False
    # A stop by a timer or a policy, not by the spec: recorded in status.stoppedBy, and held until the spec
    # changes again (GitOps owns the spec; the operator does not flip desiredState).
    stopped_by: bool = False

    @property
    def success_event(self) -> str:
        return self.event or SUCCEEDED[self.kind]


@dataclass(frozen=True)
class Plan:
    order: Order | None
    action: Action  # the lifecycle decision (a spec pass looks again while the cloud is still moving)
    held: str | None = None  # a due timer stop waiting for its warning (pending.py)


def plan(
    spec: NotebookInstanceSpec,
    status: Mapping[str, Any],
    observed: CloudInstance | None,
    generation: int | None,
    now: datetime,
    spec_pass: bool,
    snoozed_until: datetime | None = None,
) -> Plan:
    """A spec pass (the spec handler) may create, update, start and stop; a poll pass only corrects the power
    state of an object whose current generation a spec pass has handled (e.g. started from the console)."""
    due = shutdown_due(spec, status, observed, now, snoozed_until)
    action = decide(spec, status, observed, generation, now)
    if due is not None:
        warn = spec.shutdown.warn_minutes if spec.shutdown else None
        if not may_stop(TIMER, warn, status.get("pendingStop"), now):
            return Plan(None, action, held=due)
        return Plan(Order("stop", due, stopped_by=True), action)
    handled = status.get("observedGeneration") == generation
    allowed: tuple[CloudCall, ...] = CALLS if spec_pass else ("start", "stop")
    if (spec_pass or (observed is not None and handled)) and action.kind in allowed:
        return Plan(Order(action.kind, action.reason), action)
    return Plan(None, action)


def cull_order(stop: Stop, can_save_image: bool) -> Order:
    """The stop an IdleCullerPolicy decided. The clouds' own cullers only stop: where the provider cannot save an
    image, the stop says so rather than pretend."""
    reason = f"IdleCullerPolicy {stop.policy}: {stop.reason}"
    save_image = stop.save_image and can_save_image
    if stop.save_image and not save_image:
        reason += NOT_SAVED
    return Order("stop", reason, event="Culled", save_image=save_image, stopped_by=True)
