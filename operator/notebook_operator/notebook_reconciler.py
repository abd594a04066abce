"""One reconcile pass of one NotebookInstance: observe -> decide (pure) -> execute -> one status patch.

Two callers, one pipeline. The account's poll pass observes a whole account with one listing and runs
this for each notebook in it (Crossplane's Observe, batched); the spec handler observes one notebook with
one GET and runs it as a spec pass, which may also create and update. Cloud calls go through the one
ActionExecutor; idle culling (poll passes only) feeds its stop into the same executor.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from notebook_operator import metrics
from notebook_operator.action_budget import QUEUED
from notebook_operator.announcer import Announcer
from notebook_operator.api.notebookinstance import TAKE_OWNERSHIP_ANNOTATION
from notebook_operator.cloud_events import CloudEvents
from notebook_operator.executor import ActionExecutor, EventSink, Outcome
from notebook_operator.idle_assessor import IdleAssessor
from notebook_operator.kube import Kube, StaleObject, StatusRejected
from notebook_operator.providers import priority
from notebook_operator.providers.base import Provider
from notebook_operator.providers.errors import Conflict, InstanceTypeNotOffered, NotFound, ProviderError
from notebook_operator.providers.priority import CallClass
from notebook_operator.providers.types import Capability, CloudInstance, HourlyPrice
from notebook_operator.reconcile.conditions import kstatus
from notebook_operator.reconcile.cost import cost_status, price_of
from notebook_operator.reconcile.culling import Stop, culled, idle_patch
from notebook_operator.reconcile.decide import WAIT_S, settled, stop_in_hand
from notebook_operator.reconcile.mirror import OWNED_ELSEWHERE, mirror
from notebook_operator.reconcile.notebook import KIND, Notebook
from notebook_operator.reconcile.ownership import (
    TagChanges,
    desired_tags,
    owned_elsewhere,
    ownership_tags,
    tag_changes,
)
from notebook_operator.reconcile.pending import TIMER, Snooze, Upcoming, policy_by, read_snooze
from notebook_operator.reconcile.plan import Order, Plan, cull_order, plan
from notebook_operator.registry import AccountState, Snapshots
from notebook_operator.snapshot_reconciler import cull_snapshot, template_image
from notebook_operator.start_times import StartTimes
from notebook_operator.times import parse_rfc3339, rfc3339

logger = logging.getLogger(__name__)
SNAPSHOT_NOT_READY = "SnapshotNotReady"
SNAPSHOT_KIND = "NotebookSnapshot"
SNAPSHOT_WAIT_S = 10.0


@dataclass(frozen=True)
class Unseen:
    """This reconciler's status writes to one object that the watch has not delivered yet."""

    over: frozenset[str]  # the resourceVersions they were made over: while the registry shows one, it is behind
    patch: dict[str, Any]  # what they wrote, merged
    version: str  # the resourceVersion the last of them produced


@dataclass
class PassResult:
    written: bool = False  # a status patch was sent
    retry_after: float | None = None  # a spec pass should look again after this long
    retry_reason: str = ""
    error: ProviderError | None = None  # the cloud call that failed
    tags_due: bool = False  # the instance's tags differ from the declared ones: housekeep() writes them


class NotebookReconciler:
    def __init__(
        self,
        provider: Provider,
        kube: Kube,
        emit: EventSink,
        assessor: IdleAssessor | None = None,
        announcer: Announcer | None = None,
        account: AccountState | None = None,
        snapshots: Snapshots | None = None,
    ) -> None:
        self.provider = provider
        self.kube = kube
        self.emit = emit
        self.executor = ActionExecutor(provider, kube, emit)
        self.assessor = assessor
        self.announcer = announcer or Announcer(emit)
        self.account = account
        self.snapshots = snapshots  # a spec pass's: what a template's imageFrom.snapshotRef starts from
        # Shared with the account's other passes when there is an account (always, but in unit tests).
        self.start_times = account.start_times if account else StartTimes()
        self.cloud_events = account.cloud_events if account else CloudEvents()
        # Price per hour of each running notebook (namespace, currency, price), by uid: the cost gauges.
        self.running_cost: dict[str, tuple[str, str, float]] = {}
        # What this reconciler wrote that the watch had not delivered when it looked again, by the object's uid.
        # Applied only while the registry shows a version these writes were made over, so it never hides a
        # newer write by anyone.
        self._unseen: dict[str, Unseen] = {}
        self._tag_errors: dict[str, str] = {}  # the last tag write's error, by uid: an Event once per error
        # A PAI-DSW create carries the tags at once (CreateInstance Labels); ModelArts gets them in the next pass.
        self.executor.create_tags = lambda notebook: self._declared_tags(notebook) or {}

    async def observe(self, notebook: Notebook, instance_id: str | None = None) -> CloudInstance | None:
        """One GET: by instance id, else (a managed template not created yet, or created by a pass that died
        before recording it) by the creation's client token, the object's uid."""
        instance_id = instance_id or notebook.instance_id
        if instance_id:
            try:
                return await self.provider.get_instance(instance_id)
            except NotFound:
                return None
        if notebook.spec.template is not None and notebook.managed:
            return await self.provider.find_by_client_token(notebook.uid, notebook.spec.template.name)
        return None

    async def reconcile(
        self, notebook: Notebook, observed: CloudInstance | None, now: datetime, spec_pass: bool = False
    ) -> PassResult:
        started = time.monotonic()
        try:
            return await self._reconcile(notebook, observed, now, spec_pass)
        finally:
            kind = "spec" if spec_pass else "poll"
            metrics.RECONCILE_SECONDS.labels(self.provider.name, kind).observe(time.monotonic() - started)

    async def _reconcile(
        self, notebook: Notebook, observed: CloudInstance | None, now: datetime, spec_pass: bool
    ) -> PassResult:
        status, version = self._view(notebook)
        # Read before any tag write (housekeeping, after the account's actions): a due stop never waits for one.
        observed = await self.start_times.exact(self.provider, notebook, status, observed, self._timed(notebook))
        result = PassResult()
        patch: dict[str, Any] = {}
        snooze = read_snooze(notebook.annotations, status.get("snooze"), now)
        shutdown = notebook.spec.shutdown
        timer_until = snooze.until(shutdown.max_snooze_hours) if shutdown else None
        notebook, refused = self._refusal(notebook, observed)
        planned = plan(notebook.spec, status, observed, notebook.generation, now, spec_pass, timer_until)
        if refused is not None:  # nothing is sent (owned elsewhere, or its snapshot is not ready to start from)
            planned = Plan(None, planned.action)
        outcome: Outcome | None = None
        cull: Upcoming | bool | None = False  # not assessed
        stopped = acted = False
        if planned.order is not None:
            outcome = await self.executor.run(notebook, planned.order, observed, now, version)
            if not outcome.claimed:
                result.retry_after, result.retry_reason = 1.0, f"{planned.order.kind} not claimed"
                return result
            patch.update(_recorded(status, outcome))
            result.error = outcome.error
            acted = not outcome.queued
            if acted:
                stopped = self._stop_told(notebook, planned.order, outcome, observed, now, TIMER)
            if spec_pass and acted and outcome.error is None:
                observed = await self._observe_after(notebook, outcome, observed)
        elif observed is not None and self.assessor is not None and refused is None:
            assessed = await self._assess_idleness(notebook, {**status, **patch}, observed, now, snooze, version)
            found, cull, stopped, acted = assessed
            patch.update(found)
        if observed is not None and refused is None and not acted and not spec_pass:
            # Tags are housekeeping: a poll pass only notes they are due; its account writes them with the calls
            # its stops and actions leave (housekeep). Spec passes leave them to the poll passes.
            recorded, result.tags_due = self._tags_recorded(notebook, {**status, **patch}, observed)
            patch.update(recorded)
        if outcome is None or outcome.error is None or observed is not None:  # a failed create has nothing to show
            patch.update(self._mirrored(notebook, {**status, **patch}, observed, now, timer_until, refused))
        patch.update(await self._costed(notebook, {**status, **patch}, observed, now))
        told = self.announcer.step(notebook, {**status, **patch}, observed, now, snooze, cull, stopped)
        patch.update(told.patch)
        error = result.error
        if isinstance(error, InstanceTypeNotOffered):
            # Stalled until the spec changes (the retry costs no cloud call: the catalogue is cached).
            patch["conditions"] = kstatus(
                status.get("conditions"),
                ready=False,
                reconciling=False,
                stalled=True,
                reason=error.reason,
                message=str(error),
                now=now,
                generation=notebook.generation,
            )
        if observed is None and "phase" in patch and notebook.instance_id:
            self.emit(notebook.ref, "Warning", "InstanceNotFound", f"cloud instance {notebook.instance_id} disappeared")
        if spec_pass:
            # Refused: nothing to look again for until the annotation says to take it (a poll pass sees that).
            requeue_after = None if refused is not None else planned.action.requeue_after
            self._spec_pass_verdict(notebook, {**status, **patch}, observed, requeue_after, result)
            if refused is not None and refused[0] == SNAPSHOT_NOT_READY:  # created once the snapshot is Ready
                result.retry_after, result.retry_reason = SNAPSHOT_WAIT_S, refused[1]
            if result.retry_after is None and status.get("observedGeneration") != notebook.generation:
                patch["observedGeneration"] = notebook.generation  # this generation's work is done
        # What is told (a warning, its withdrawal, a snooze note) is written before anyone hears of it, and
        # written only over the version this pass decided from: a second pass or replica deciding from the
        # same view, or from a view older than this reconciler's own last write, loses here and decides again,
        # so nobody hears it twice. A pass that acted holds the object already (the action's conditional claim).
        newly_refused = refused is not None and not _says(status, refused[0])  # its Event, too, is told once
        condition = version if (told.patch or newly_refused) and not acted else None
        try:
            # A pass that did not act goes before the claims and outcomes of a wave (mirroring stays prompt).
            result.written = await self._write(notebook, patch, condition, urgent=not acted)
        except StaleObject as e:
            logger.info("%s/%s: not told, deciding again: %s", notebook.namespace, notebook.name, e)
            result.retry_after, result.retry_reason = 1.0, "status changed since this pass looked"
            return result
        if result.written or not told.patch:
            self.announcer.publish(notebook, told)
        merged = {**status, **patch}
        if refused is not None and newly_refused and result.written:
            self.emit(notebook.ref, "Warning", *refused)
        new_reason = bool(result.written and patch.get("cloudReason"))
        if new_reason:  # once per distinct reason: the status remembers it
            failed = merged.get("phase") == "Failed"
            self.emit(notebook.ref, "Warning", "CloudFailed" if failed else "CloudReason", patch["cloudReason"])
        if observed is not None:
            await self.cloud_events.after_pass(self.provider, self.emit, notebook, merged, observed, new_reason, now)
        return result

    def status_of(self, notebook: Notebook) -> dict[str, Any]:
        """The status as this reconciler last wrote or saw it."""
        unseen = self._unseen.get(notebook.uid)
        if unseen is not None and notebook.resource_version in unseen.over:
            return {**notebook.status, **unseen.patch}
        return dict(notebook.status)

    def _view(self, notebook: Notebook) -> tuple[dict[str, Any], str | None]:
        """(the status as this reconciler last wrote or saw it, the resourceVersion of that status)."""
        unseen = self._unseen.get(notebook.uid)
        if unseen is not None and notebook.resource_version in unseen.over:
            return {**notebook.status, **unseen.patch}, unseen.version
        if unseen is not None:
            del self._unseen[notebook.uid]  # the watch delivered it, or a newer write
        return dict(notebook.status), notebook.resource_version or None

    async def _observe_after(
        self, notebook: Notebook, outcome: Outcome, before: CloudInstance | None
    ) -> CloudInstance | None:
        """A spec pass looks again after acting, so its status shows the new state at once."""
        try:
            return await self.observe(notebook, outcome.instance_id or (before.id if before else None))
        except ProviderError as e:  # the action is recorded; the next pass mirrors
            logger.info("%s/%s: could not look again after acting: %s", notebook.namespace, notebook.name, e)
            return before

    def _mirrored(
        self,
        notebook: Notebook,
        status: dict[str, Any],
        observed: CloudInstance | None,
        now: datetime,
        timer_until: datetime | None,
        refused: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        mirrored = mirror(notebook.spec, status, observed, notebook.generation, now, timer_until, refused)
        if notebook.managed:
            # A spec pass sets observedGeneration of managed objects once their spec was acted on (below).
            mirrored.pop("observedGeneration", None)
        return mirrored

    def _ownership(self, notebook: Notebook) -> dict[str, str] | None:
        """The ownership tags this notebook's instance carries (None: no cluster id, so no ownership)."""
        if self.account is None or not self.account.cluster_id:
            return None
        return ownership_tags(self.account.cluster_id, notebook.namespace, notebook.name)

    def _refusal(self, notebook: Notebook, observed: CloudInstance | None) -> tuple[Notebook, tuple[str, str] | None]:
        """The notebook with its template's image resolved (imageFrom.snapshotRef), and why nothing may be sent
        for it, if so: (reason, message)."""
        elsewhere = self._owned_elsewhere(notebook, observed)
        if elsewhere is not None:
            return notebook, (OWNED_ELSEWHERE, elsewhere)
        template = notebook.spec.template
        if template is None or template.image_from is None or self.snapshots is None:
            return notebook, None
        name = template.image_from.snapshot_ref.name
        found = self.snapshots.get(notebook.namespace, name)
        image = template_image((found or {}).get("status") or {})
        if image is None:
            if observed is not None:  # created already: the snapshot's later fate changes nothing
                return notebook, None
            phase = ((found or {}).get("status") or {}).get("phase") or ("not found" if found is None else "Pending")
            return notebook, (SNAPSHOT_NOT_READY, f"NotebookSnapshot {name} is {phase}: created once it is Ready")
        spec = notebook.spec.model_copy(update={"template": template.model_copy(update={"image": image})})
        return replace(notebook, spec=spec), None

    def _owned_elsewhere(self, notebook: Notebook, observed: CloudInstance | None) -> str | None:
        """Why a Manage notebook may not touch its instance (its tags name another owner), unless told to take
        it; Observe never writes, so it never asks."""
        ours = self._ownership(notebook)
        if ours is None or observed is None or not notebook.managed:
            return None
        if notebook.annotations.get(TAKE_OWNERSHIP_ANNOTATION, "").lower() == "true":
            return None
        return owned_elsewhere(observed.labels, ours)

    def _timed(self, notebook: Notebook) -> bool:
        """Something counts from the instance's start: an afterRunning timer, or (poll passes) an operator-enforced
        maxRunningHours of a policy that selects it."""
        shutdown = notebook.spec.shutdown
        if shutdown is not None and shutdown.after_running:
            return True
        chosen = self.assessor.chosen(notebook) if self.assessor is not None else []
        return any(p.max_running_hours is not None and p.enforcement == "Operator" for p in chosen)

    def _declared_tags(self, notebook: Notebook) -> dict[str, str] | None:
        """Ownership, the account's defaults and spec.tags (None: no cluster id, so no tags)."""
        ours = self._ownership(notebook)
        if ours is None:
            return None
        assert self.account is not None  # _ownership needs its cluster id
        return desired_tags(ours, self.account.default_tags, notebook.spec.tags)

    def _desired_tags(self, notebook: Notebook, observed: CloudInstance | None) -> dict[str, str] | None:
        """The tags the instance should carry (None: the operator keeps none on it)."""
        tags_supported = Capability.TAGS in self.provider.capabilities
        if not notebook.managed or not tags_supported or observed is None or observed.phase in ("Deleting", "Deleted"):
            return None
        return self._declared_tags(notebook)

    def _tag_plan(
        self, notebook: Notebook, status: dict[str, Any], observed: CloudInstance
    ) -> tuple[dict[str, str], dict[str, str], TagChanges] | None:
        """(the operator's keys as status.ownedTags records them, the declared ones not recorded yet, the changes the
        instance needs); None when the operator keeps no tags on it. status.ownedTags is written only by merging keys
        in (and removing the ones it removed from the cloud), so a pass reading an older status never forgets a key
        another set."""
        desired = self._desired_tags(notebook, observed)
        if desired is None:
            return None
        owned = {k: v for k, v in (status.get("ownedTags") or {}).items() if v is not None}
        unrecorded = {k: v for k, v in desired.items() if owned.get(k) != v}
        return owned, unrecorded, tag_changes(desired, observed.labels, list(owned))

    def _tags_recorded(
        self, notebook: Notebook, status: dict[str, Any], observed: CloudInstance
    ) -> tuple[dict[str, Any], bool]:
        """(status.ownedTags to record when the tags are in order but not recorded yet, whether a tag write is
        due)."""
        plan = self._tag_plan(notebook, status, observed)
        if plan is None:
            return {}, False
        owned, unrecorded, changes = plan
        if changes:
            return {}, True
        return ({"ownedTags": {**owned, **unrecorded}} if unrecorded else {}), False

    async def housekeep(self, notebook: Notebook, observed: CloudInstance) -> bool:
        """Keep the instance's tags as declared (ownership, the account's defaults, spec.tags): one tag write, at
        housekeeping priority. True when the tags were written. Observe never writes tags."""
        plan = self._tag_plan(notebook, self.status_of(notebook), observed)
        if plan is None or not plan[2]:
            return False
        owned, unrecorded, changes = plan
        if unrecorded:  # recorded before the call: a pass that reads the status meanwhile knows they are ours
            await self._write(notebook, {"ownedTags": {**owned, **unrecorded}})
        began = datetime.now(UTC)
        try:
            with priority.calls(CallClass.HOUSEKEEPING, notebook.namespace):
                await self.provider.set_tags(observed.id, changes.put, changes.remove)
        except ProviderError as e:
            if self._tag_errors.get(notebook.uid) != str(e):  # told once per distinct error, retried each pass
                self._tag_errors[notebook.uid] = str(e)
                self.emit(notebook.ref, "Warning", "TagsFailed", f"cloud tags not updated: {e}")
            return False
        finally:  # sent, refused or cut short, it may have moved the estimate of the start: never a new run
            self.start_times.modified_by_us(notebook.uid, observed.started_at, began, datetime.now(UTC))
        self._tag_errors.pop(notebook.uid, None)
        changed = ", ".join([*(f"{k}={v}" for k, v in sorted(changes.put.items())), *(f"-{k}" for k in changes.remove)])
        self.emit(notebook.ref, "Normal", "Tagged", f"cloud tags updated: {changed}"[:1024])
        await self._write(notebook, {"ownedTags": {**owned, **unrecorded, **dict.fromkeys(changes.remove)}})
        return True

    def _spec_pass_verdict(
        self,
        notebook: Notebook,
        status: dict[str, Any],
        observed: CloudInstance | None,
        requeue_after: float | None,
        result: PassResult,
    ) -> None:
        """When a spec pass looks again: after a failed call (sooner when the cloud is only busy), or while the
        cloud is still moving towards the spec (like ACK's requeue while a notebook is stopping)."""
        if result.error is not None:
            error = result.error
            busy = isinstance(error, Conflict)
            # InstanceTypeNotOffered: the retry is what picks up a corrected spec (kopf holds a retrying handler).
            retryable = error.retryable or isinstance(error, InstanceTypeNotOffered)
            result.retry_after = WAIT_S if busy else 30.0 if retryable else 120.0
            result.retry_reason = str(error)
            return
        if requeue_after:
            after = settled(notebook.spec, status, observed, notebook.generation)
            if after is not None:
                result.retry_after = after.requeue_after or WAIT_S
                result.retry_reason = f"{after.kind}: {after.reason}"

    async def _assess_idleness(
        self,
        notebook: Notebook,
        status: dict[str, Any],
        observed: CloudInstance,
        now: datetime,
        snooze: Snooze,
        version: str | None,
    ) -> tuple[dict[str, Any], Upcoming | None, bool, bool]:
        """(status patch, the earliest cull with a warning lead, whether a cull stopped it, whether a cull was
        claimed and tried)."""
        assert self.assessor is not None
        found = await self.assessor.assess(notebook, status, observed, now, snooze)
        if found is None:
            return {}, None, False, False
        for type_, reason, message in found.events:
            self.emit(notebook.ref, type_, reason, message)
        patch: dict[str, Any] = {}
        idle = found.idle
        stop = found.stop
        stopped = claimed = False
        if stop is not None and stop_in_hand(status, observed, now):
            stop = None
        if stop is not None:
            idle, held, note = await self._snapshot_first(notebook, idle or {}, stop, observed, now)
            stop = None if held else replace(stop, reason=stop.reason + note)
        if stop is not None:
            order = cull_order(stop, Capability.STOP_SAVE_IMAGE in self.provider.capabilities)
            outcome = await self.executor.run(notebook, order, observed, now, version)
            claimed = outcome.claimed and not outcome.queued
            if outcome.claimed:  # not claimed: decided again in the next pass
                patch.update(_recorded(status, outcome))
            if claimed:
                succeeded = outcome.error is None
                metrics.CULLS.labels(notebook.namespace, stop.policy, "stopped" if succeeded else "failed").inc()
                stopped = self._stop_told(notebook, order, outcome, observed, now, policy_by(stop.policy))
                if succeeded:
                    idle = culled(idle or {}, stop, now)
        patch.update(idle_patch(status.get("idle"), idle, now) or {})
        return patch, found.upcoming, stopped, claimed

    async def _snapshot_first(
        self, notebook: Notebook, idle: dict[str, Any], stop: Stop, observed: CloudInstance, now: datetime
    ) -> tuple[dict[str, Any], bool, str]:
        """snapshotBeforeStop: (status.idle, whether the stop waits, what the stop's reason adds). The first due
        pass creates a NotebookSnapshot; later passes stop once it is Ready or Failed, or after the timeout."""
        first = stop.snapshot
        if first is None or Capability.SNAPSHOTS not in self.provider.capabilities or self.snapshots is None:
            return idle, False, ""
        name = idle.get("snapshot")
        if not name:
            # One per run, named after the run's start: a pass after a restart that lost the status write finds
            # it (409) instead of saving a second one.
            name = f"{notebook.name[:40]}-cull-{(observed.started_at or now).strftime('%Y%m%d-%H%M%S')}"
            body = cull_snapshot(notebook, name, first, now)
            if body is None:
                return idle, False, " (no snapshot first: the policy names no snapshotImageRepository to push to)"
            try:
                await self.kube.create(SNAPSHOT_KIND, notebook.namespace, body)
            except ApiException as e:
                logger.warning("%s/%s: no snapshot before the cull: %s", notebook.namespace, notebook.name, e.reason)
                return idle, False, f" (no snapshot first: it could not be created, {e.status} {e.reason})"
            self.emit(notebook.ref, "Normal", "SnapshotBeforeStop", f"saving NotebookSnapshot {name} before the stop")
            return {**idle, "snapshot": name, "snapshotRequestedAt": rfc3339(now)}, True, ""
        found = (self.snapshots.get(notebook.namespace, str(name)) or {}).get("status") or {}
        released = {k: v for k, v in idle.items() if k not in ("snapshot", "snapshotRequestedAt")}
        if found.get("phase") == "Ready":
            return released, False, f" (NotebookSnapshot {name} saved first)"
        if found.get("phase") == "Failed":
            return released, False, f" (NotebookSnapshot {name} failed: {found.get('reason')}; stopped anyway)"
        since = parse_rfc3339(idle.get("snapshotRequestedAt")) or now
        if now - since >= timedelta(minutes=first.timeout_minutes):
            late = f" (NotebookSnapshot {name} not Ready after {first.timeout_minutes} min; stopped anyway)"
            return released, False, late
        return idle, True, ""

    def _stop_told(
        self, notebook: Notebook, order: Order, outcome: Outcome, observed: CloudInstance | None, now: datetime, by: str
    ) -> bool:
        """Tell people of a stop by a timer or a policy, or of its failure; True when it stopped."""
        if order.kind != "stop" or not order.stopped_by:
            return order.kind == "stop" and outcome.error is None
        event = "StopFailed" if outcome.error is not None else order.success_event
        reason = f"{order.reason}: {outcome.error}" if outcome.error is not None else order.reason
        self.announcer.stop_notice(notebook, event, reason, now, observed, by)
        return outcome.error is None

    async def _costed(
        self, notebook: Notebook, status: dict[str, Any], observed: CloudInstance | None, now: datetime
    ) -> dict[str, Any]:
        pricing = self.account.pricing if self.account is not None else None
        instance_type = observed.instance_type if observed else None
        listed: dict[str, HourlyPrice] = {}
        if instance_type and (pricing is None or instance_type not in pricing.per_hour):
            try:
                listed = await self.provider.price_list()
            except ProviderError as e:  # no price this pass; the listing is retried after its cache expires
                logger.debug("price list of %s: %s", self.provider.name, e)
        price = price_of(instance_type, pricing, listed)
        if price is not None and observed is not None and observed.phase == "Running":
            self.running_cost[notebook.uid] = (notebook.namespace, price.currency, price.per_hour)
        else:
            self.running_cost.pop(notebook.uid, None)
        before = status.get("cost") or {}
        cost = cost_status(before, price, observed, now)
        return {} if cost is None else {"cost": {**{k: None for k in before if k not in cost}, **cost}}

    async def _write(
        self, notebook: Notebook, patch: dict[str, Any], condition: str | None = None, urgent: bool = False
    ) -> bool:
        """Merge-patch the status (conditional on resourceVersion `condition` when given: StaleObject)."""
        if not patch:
            return False
        try:
            written = await self.kube.patch_status(
                KIND, notebook.namespace, notebook.name, patch, resource_version=condition, urgent=urgent
            )
        except StatusRejected as e:  # one object's bad status must not stop the account's pass
            logger.error("%s", e)
            self.emit(notebook.ref, "Warning", "StatusRejected", str(e))
            return False
        if written:
            metrics.STATUS_WRITES.labels(self.provider.name).inc()
            seen = self._unseen.get(notebook.uid)
            if seen is not None and notebook.resource_version in seen.over:  # still behind: one more of ours
                self._unseen[notebook.uid] = Unseen(seen.over | {seen.version}, {**seen.patch, **patch}, written)
            else:
                self._unseen[notebook.uid] = Unseen(frozenset({notebook.resource_version}), patch, written)
        return written is not None

    def prune(self, keep: set[str]) -> None:
        """Forget writes to objects no longer in the registry."""
        for uid in set(self._unseen) - keep:
            del self._unseen[uid]
        for uid in set(self.running_cost) - keep:
            del self.running_cost[uid]
        for uid in set(self._tag_errors) - keep:
            del self._tag_errors[uid]
        self.start_times.prune(keep)

    async def finalize(self, notebook: Notebook) -> bool:
        """Delete the cloud instance of a resource being deleted: True once it is gone."""
        try:
            observed = await self.observe(notebook)
            if observed is None or observed.phase == "Deleted":
                self.emit(notebook.ref, "Normal", "Deleted", "the cloud instance is gone")
                return True
            if observed.phase != "Deleting":
                try:
                    await self.provider.delete_instance(observed.id)
                except Conflict:
                    return False  # e.g. still stopping: try again
                metrics.ACTIONS.labels(notebook.namespace, "delete", "succeeded").inc()
                self.emit(notebook.ref, "Normal", "Delete", f"deleting cloud instance {observed.id}")
        except ProviderError:
            metrics.ACTIONS.labels(notebook.namespace, "delete", "failed").inc()
            raise
        return False


def _says(status: dict[str, Any], reason: str) -> bool:
    """Whether the status' Ready condition already gives this reason."""
    return any(c.get("type") == "Ready" and c.get("reason") == reason for c in status.get("conditions") or [])


def _recorded(status: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """What an action's outcome writes; a notebook still queued keeps the record of when it was first queued (the
    order the queue drains in) and costs no write."""
    before = status.get("lastAction") or {}
    after = outcome.patch.get("lastAction") or {}
    if outcome.queued and before.get("state") == QUEUED and before.get("action") == after.get("action"):
        return {k: v for k, v in outcome.patch.items() if k != "lastAction"}
    return outcome.patch
