"""One poll cycle of one cloud account: list everything in pages, join with the NotebookInstances that
point at the account, patch only the statuses that changed, and stop what a declared shutdown says.

Cost per cycle: ceil(N / page size) list calls and one PATCH per changed CR; no per-CR GET.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from notebook_operator import metrics
from notebook_operator.culler import Culler, Policies, idle_patch, stop_reason
from notebook_operator.kube import Kube, StaleObject, StatusRejected
from notebook_operator.providers.base import Provider
from notebook_operator.providers.errors import Conflict, NotFound, PermissionDenied, ProviderError
from notebook_operator.providers.types import Capability, CloudInstance
from notebook_operator.reconcile.conditions import rfc3339
from notebook_operator.reconcile.culling import culled
from notebook_operator.reconcile.decide import decide, shutdown_due, stop_in_hand
from notebook_operator.reconcile.mirror import mirror

logger = logging.getLogger(__name__)

# (the object as kopf.event wants it, type, reason, message)
EventSink = Callable[[dict[str, Any], str, str, str], None]


@dataclass(frozen=True)
class Tracked:
    """One NotebookInstance as the index holds it."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    spec: dict[str, Any]
    status: dict[str, Any]
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    resource_version: str = ""  # the version this view is of: actions are claimed against it

    @property
    def instance_id(self) -> str | None:
        value = self.status.get("instanceId") or self.spec.get("instanceId")
        return str(value) if value else None

    @property
    def ref(self) -> dict[str, Any]:
        return {
            "apiVersion": "cloudnotebooks.io/v1alpha1",
            "kind": "NotebookInstance",
            "metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
        }


@dataclass
class CycleResult:
    listed: int = 0
    tracked: int = 0
    writes: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # reads refused for permission, by operation


def action_record(action: str, reason: str, state: str, now: datetime, generation: int | None,
                  **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"action": action, "reason": reason[:1024], "state": state, "startedAt": rfc3339(now),
            "generation": generation, **extra}  # fmt: skip


class Poller:
    def __init__(self, provider: Provider, kube: Kube, emit: EventSink, account: str = "",
                 policies: Policies | None = None, metric_calls_per_cycle: int = 1000) -> None:  # fmt: skip
        self.provider = provider
        self.culler = Culler(provider, policies, metric_calls_per_cycle) if policies is not None else None
        self.account = account
        self._phases: set[str] = set()
        self.kube = kube
        self.emit = emit
        # What the last cycle wrote per object: the watch may not have delivered it to the index yet.
        # Kept for one cycle only, so it never masks a newer write by a handler.
        self._written: dict[str, dict[str, Any]] = {}
        self._previous: dict[str, dict[str, Any]] = {}

    async def list_all(self) -> dict[str, CloudInstance]:
        return {instance.id: instance async for instance in self.provider.list_instances()}

    async def cycle(self, tracked: Sequence[Tracked], now: datetime | None = None) -> CycleResult:
        now = now or datetime.now(UTC)
        self._previous, self._written = self._written, {}
        started = time.monotonic()
        observed = await self.list_all()
        listed = time.monotonic()
        result = CycleResult(listed=len(observed), tracked=len(tracked))
        self._count_phases(observed)
        if self.culler is not None:
            self.culler.begin_cycle(sum(1 for i in observed.values() if i.phase == "Running"))
        work = [self._one(item, observed, now, result) for item in tracked if item.instance_id]
        await asyncio.gather(*work)
        if self.culler is not None:
            result.refused = dict(self.culler.refused)
        if result.writes:
            logger.info(
                "%s: listed %d instances in %.2fs; %d of %d NotebookInstances updated in %.2fs",
                self.provider.name, result.listed, listed - started, result.writes, result.tracked,
                time.monotonic() - listed,
            )  # fmt: skip
        return result

    def _count_phases(self, observed: dict[str, CloudInstance]) -> None:
        counts: Counter[str] = Counter(instance.phase for instance in observed.values())
        for phase in self._phases | set(counts):  # phases gone from the account drop to 0
            metrics.INSTANCES.labels(self.provider.name, self.account, phase).set(counts.get(phase, 0))
        self._phases |= set(counts)

    async def _one(self, item: Tracked, observed: dict[str, CloudInstance], now: datetime,
                   result: CycleResult) -> None:  # fmt: skip
        instance = observed.get(item.instance_id or "")
        status = {**item.status, **self._previous.get(item.uid, {})}
        patch = mirror(item.spec, status, instance, item.generation, now)
        if item.spec.get("managementPolicy", "Manage") == "Manage":
            # The spec handler owns observedGeneration of managed objects: it says their spec was acted on.
            patch.pop("observedGeneration", None)
        status.update(patch)
        due = shutdown_due(item.spec, status, instance, now)
        if instance is not None and due:
            patch.update(await self._stop(item, instance, due, now))
        elif instance is not None and status.get("observedGeneration") == item.generation:
            # Power drift with no handler at work (e.g. started from the console): put it back.
            action = decide(item.spec, status, instance, item.generation, now)
            if action.kind in ("start", "stop"):
                patch.update(await self._act(item, instance, action.kind, action.reason, now))
        if instance is not None and self.culler is not None and "lastAction" not in patch:
            patch.update(await self._cull(item, instance, {**status, **patch}, now))
        if instance is None and "phase" in patch:
            self.emit(item.ref, "Warning", "InstanceNotFound", f"cloud instance {item.instance_id} disappeared")
        try:
            written = bool(patch) and await self.kube.patch_status("NotebookInstance", item.namespace, item.name, patch)
        except StatusRejected as e:  # one object's bad status must not stop the account's loop
            logger.error("%s", e)
            self.emit(item.ref, "Warning", "StatusRejected", str(e))
            return
        if written:
            result.writes += 1
            metrics.STATUS_WRITES.labels(self.provider.name).inc()
            self._written[item.uid] = {**self._written.get(item.uid, {}), **patch}

    async def _cull(self, item: Tracked, instance: CloudInstance, status: dict[str, Any],
                    now: datetime) -> dict[str, Any]:  # fmt: skip
        assert self.culler is not None
        found = await self.culler.assess(item.namespace, item.name, item.labels, item.annotations, item.spec, status,
                                         instance, now)  # fmt: skip
        if found is None:
            return {}
        for type_, reason, message in found.events:
            self.emit(item.ref, type_, reason, message)
        extra: dict[str, Any] = {}
        idle = found.idle
        stop = found.stop
        if stop is not None and not stop_in_hand(status, instance, now):
            save_image = stop.save_image and Capability.STOP_SAVE_IMAGE in self.provider.capabilities
            reason = stop_reason(stop) + (" (image not saved: not supported here)" if stop.save_image and
                                          not save_image else "")  # fmt: skip
            extra = await self._stop(item, instance, reason, now, save_image=save_image, event="Culled")
            succeeded = extra.get("lastAction", {}).get("state") == "Succeeded"
            if extra:  # {}: not claimed this cycle, decided again in the next
                metrics.CULLS.labels(item.namespace, stop.policy, "stopped" if succeeded else "failed").inc()
            if succeeded:
                idle = culled(idle or {}, stop, now)
        idle_update = idle_patch(status.get("idle"), idle, now)
        return {**extra, **(idle_update or {})}

    async def _stop(self, item: Tracked, instance: CloudInstance, reason: str, now: datetime,
                    save_image: bool = False, event: str = "Stopped") -> dict[str, Any]:  # fmt: skip
        extra = await self._act(item, instance, "stop", reason, now, save_image=save_image, event=event)
        if extra.get("lastAction", {}).get("state") == "Succeeded":
            extra["stoppedBy"] = f"notebook-operator: {reason}"
        return extra

    async def _act(self, item: Tracked, instance: CloudInstance, kind: str, reason: str, now: datetime,
                   save_image: bool = False, event: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Claim the action (Pending, written only if nobody wrote the object since this view of it), call the
        cloud, record the outcome. {} when the claim lost: another writer (e.g. a second replica during a
        takeover) acted on a newer version, and the next cycle decides again from that."""
        pending = action_record(kind, reason, "Pending", now, item.generation)
        try:
            await self.kube.patch_status("NotebookInstance", item.namespace, item.name, {"lastAction": pending},
                                         resource_version=item.resource_version or None)  # fmt: skip
        except StaleObject as e:
            logger.info("%s of %s/%s not sent this cycle: %s", kind, item.namespace, item.name, e)
            return {}
        call: Callable[[], Awaitable[None]] = (
            (lambda: self.provider.stop_instance(instance.id, save_image=save_image)) if kind == "stop"
            else (lambda: self.provider.start_instance(instance.id))
        )  # fmt: skip
        try:
            await call()
        except (Conflict, NotFound) as e:  # already moving that way, or gone: nothing to repeat
            outcome = {**pending, "state": "Succeeded", "message": str(e)[:1024], "finishedAt": rfc3339(now)}
        except ProviderError as e:
            metrics.ACTIONS.labels(kind, "failed").inc()
            reason = e.reason if isinstance(e, PermissionDenied) else f"{kind.capitalize()}Failed"
            self.emit(item.ref, "Warning", reason, str(e))
            return {"lastAction": {**pending, "state": "Failed", "message": str(e)[:1024],
                                   "requestId": e.request_id, "finishedAt": rfc3339(datetime.now(UTC))}}  # fmt: skip
        else:
            outcome = {**pending, "state": "Succeeded", "finishedAt": rfc3339(datetime.now(UTC))}
        metrics.ACTIONS.labels(kind, "succeeded").inc()
        self.emit(item.ref, "Normal", event or kind.capitalize() + ("ped" if kind == "stop" else "ed"), reason)
        logger.info("%s %s/%s (%s): %s", kind, item.namespace, item.name, instance.id, reason)
        return {"lastAction": outcome}
