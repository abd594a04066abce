"""The one place the operator changes a cloud instance: claim the action in status (Pending, written only
if nobody wrote the object since this view of it), make the call, and hand back the outcome to record.

Every path goes through here - a spec change, a shutdown timer, power drift, an idle cull - so a claim, a
retry after a crash and an answer like "already stopping" mean the same thing everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from notebook_operator import metrics
from notebook_operator.action_budget import QUEUED, ActionBudget
from notebook_operator.api.notebookinstance import NotebookInstanceSpec
from notebook_operator.kube import Kube, StaleObject
from notebook_operator.providers import priority
from notebook_operator.providers.base import Provider
from notebook_operator.providers.errors import (
    Conflict,
    InstanceTypeNotOffered,
    NotFound,
    PermissionDenied,
    ProviderError,
)
from notebook_operator.providers.priority import CallClass
from notebook_operator.providers.types import Capability, CloudInstance, CreateSpec, UpdateSpec
from notebook_operator.reconcile.decide import template_drift
from notebook_operator.reconcile.notebook import KIND, Notebook, action_record
from notebook_operator.reconcile.plan import Order
from notebook_operator.stop_batcher import StopBatcher
from notebook_operator.times import now as utcnow
from notebook_operator.times import rfc3339

logger = logging.getLogger(__name__)

# (the object as kopf.event wants it, type, reason, message)
EventSink = Callable[[dict[str, Any], str, str, str], None]


@dataclass
class Outcome:
    claimed: bool  # False: another writer got there first; nothing was called, decide again from a newer view
    patch: dict[str, Any] = field(default_factory=dict)  # status.lastAction and what the call changed
    error: ProviderError | None = None
    instance_id: str | None = None  # of a created instance
    queued: bool = False  # the pass's budget of calls was spent: nothing was claimed or called, it waits its turn


class ActionExecutor:
    def __init__(self, provider: Provider, kube: Kube, emit: EventSink) -> None:
        self.provider = provider
        self.kube = kube
        self.emit = emit
        self.stops: StopBatcher | None = None  # a poll pass's batched stops (clouds with a batch call)
        self.budget: ActionBudget | None = None  # a poll pass's calls for actions
        self.create_tags: Callable[[Notebook], dict[str, str]] = lambda _: {}  # tags a create sets at once

    def cost(self, kind: str, instance_id: str | None, save_image: bool = False) -> float:
        """The calls an action takes: a batched stop shares one with the others of its batch."""
        stops = self.stops
        if stops is not None and kind == "stop" and not save_image and instance_id not in stops.single:
            return 1.0 / stops.batch_size
        return 1.0

    async def run(
        self,
        notebook: Notebook,
        order: Order,
        observed: CloudInstance | None,
        now: datetime,
        version: str | None = None,
    ) -> Outcome:
        """`version`: the resourceVersion the decision was made on (default: the notebook's as the watch gave it;
        the reconciler passes its own last write's when the watch has not delivered that yet)."""
        if self.budget is not None and not self.budget.admit(
            notebook.uid, self.cost(order.kind, observed.id if observed else None, order.save_image)
        ):
            return self._queued(notebook, order, now)
        extra = {"clientToken": notebook.uid} if order.kind == "create" else {}
        pending = action_record(order.kind, order.reason, "Pending", now, notebook.generation, **extra)
        # Recorded before the call: after a crash the next pass sees it and does not repeat it (decide's
        # PENDING_GRACE). Conditional on the version seen: a second replica acting on an older view loses here.
        try:
            await self.kube.patch_status(
                KIND,
                notebook.namespace,
                notebook.name,
                {"lastAction": pending},
                resource_version=version or notebook.resource_version or None,
            )
        except (StaleObject, TimeoutError) as e:  # a claim not known to be written: nothing is sent, decided again
            logger.info("%s of %s/%s not sent: %s", order.kind, notebook.namespace, notebook.name, e or "timed out")
            return Outcome(claimed=False)
        outcome = Outcome(claimed=True)
        tags = self._tags_at_create(notebook) if order.kind == "create" else {}
        try:
            outcome.instance_id = await self._call(notebook, order, observed, tags)
        except (Conflict, NotFound) as e:
            if order.kind not in ("start", "stop"):
                return self._failed(notebook, order, pending, e, outcome)
            # Already moving that way, or gone: there is nothing to repeat.
            pending["message"] = str(e)[:1024]
        except ProviderError as e:
            return self._failed(notebook, order, pending, e, outcome)
        metrics.ACTIONS.labels(notebook.namespace, order.kind, "succeeded").inc()
        outcome.patch["lastAction"] = {**pending, "state": "Succeeded", "finishedAt": rfc3339(utcnow())}
        if order.kind == "stop" and order.stopped_by:
            outcome.patch["stoppedBy"] = f"notebook-operator: {order.reason}"
        elif order.kind == "start":
            outcome.patch["stoppedBy"] = None
        if outcome.instance_id:
            outcome.patch["instanceId"] = outcome.instance_id
            if tags:  # the operator's keys from the start: it removes them when undeclared
                outcome.patch["ownedTags"] = tags
        self.emit(notebook.ref, "Normal", order.success_event, order.reason)
        logger.info(
            "%s %s/%s (%s): %s",
            order.kind,
            notebook.namespace,
            notebook.name,
            outcome.instance_id or (observed.id if observed else "-"),
            order.reason,
        )
        return outcome

    async def _call(
        self, notebook: Notebook, order: Order, observed: CloudInstance | None, tags: dict[str, str]
    ) -> str | None:
        """The cloud call; the new instance's id for a create (which carries `tags`). A stop goes before the
        account's other waiting calls, a start, create or update before its reads and housekeeping."""
        with priority.calls(CallClass.STOP if order.kind == "stop" else CallClass.ACT):
            return await self._send(notebook, order, observed, tags)

    async def _send(
        self, notebook: Notebook, order: Order, observed: CloudInstance | None, tags: dict[str, str]
    ) -> str | None:
        if order.kind == "create":
            spec = create_spec(notebook.spec, notebook.uid)
            if tags:
                spec = spec.model_copy(update={"labels": {**spec.labels, **tags}})
            return await self.provider.create_instance(spec)
        assert observed is not None
        if order.kind == "start":
            await self.provider.start_instance(observed.id)
        elif order.kind == "stop" and self.stops is not None and not order.save_image:
            await self.stops.stop(observed.id)  # after this notebook's own claim, with the cycle's other stops
        elif order.kind == "stop":
            await self.provider.stop_instance(observed.id, save_image=order.save_image)
        else:
            drift = template_drift(notebook.spec, observed)
            changes = UpdateSpec(instance_type=drift.get("instanceType"), image=drift.get("image"))
            await self.provider.update_instance(observed.id, changes)
        return None

    def _tags_at_create(self, notebook: Notebook) -> dict[str, str]:
        """The tags a create sends (PAI-DSW CreateInstance Labels); ModelArts' create takes none."""
        if Capability.TAGS_AT_CREATE not in self.provider.capabilities:
            return {}
        return self.create_tags(notebook)

    def _queued(self, notebook: Notebook, order: Order, now: datetime) -> Outcome:
        """Recorded, not claimed: the record says since when it waits (kept by the reconciler while it waits), and
        the next pass decides again from what it sees then."""
        assert self.budget is not None
        queued = action_record(order.kind, order.reason, QUEUED, now, notebook.generation)
        queued["message"] = (
            f"queued: this poll pass's {self.budget.calls:g} cloud calls for actions are spent; "
            "it goes out in a later pass, oldest first"
        )
        return Outcome(claimed=True, patch={"lastAction": queued}, queued=True)

    def _failed(
        self, notebook: Notebook, order: Order, pending: dict[str, Any], error: ProviderError, outcome: Outcome
    ) -> Outcome:
        metrics.ACTIONS.labels(notebook.namespace, order.kind, "failed").inc()
        if not isinstance(error, Conflict):  # the cloud is busy with it: retried shortly, not news
            named = isinstance(error, (PermissionDenied, InstanceTypeNotOffered))
            reason = error.reason if named else f"{order.kind.capitalize()}Failed"
            self.emit(notebook.ref, "Warning", reason, str(error))
        outcome.error = error
        outcome.patch["lastAction"] = {
            **pending,
            "state": "Failed",
            "message": str(error)[:1024],
            "requestId": error.request_id,
            "finishedAt": rfc3339(utcnow()),
        }
        return outcome


def create_spec(spec: NotebookInstanceSpec, client_token: str) -> CreateSpec:
    template = spec.template
    assert template is not None
    resources = template.resources
    return CreateSpec(
        name=template.name,
        image=template.image or "",  # imageFrom is resolved to an image before a create (notebook_reconciler)
        instance_type=template.instance_type,
        description=template.description,
        cpu=resources.cpu if resources else None,
        memory_gib=resources.memory_gi_b if resources else None,
        gpu=resources.gpu if resources else None,
        gpu_type=resources.gpu_type if resources else None,
        shared_memory_gib=resources.shared_memory_gi_b if resources else None,
        workspace_id=template.workspace_id,
        resource_id=template.resource_id,
        labels=dict(template.labels or {}),
        env=dict(template.env or {}),
        datasets=tuple(d.to_wire() for d in template.datasets or ()),
        volume=template.volume.to_wire() if template.volume else None,
        accessibility=template.accessibility,
        client_token=client_token,
    )
