"""NotebookInstance: adopt or create, start/stop/update as the spec says, delete through the finalizer.

Spec changes come here; the ProviderConfig's poll loop mirrors status and fires shutdown timers.
Every cloud call is recorded in status.lastAction; creation is found again by its client token
(the object's uid), so a restart neither repeats nor loses an action.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from notebook_operator import metrics
from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.api.notebookinstance import EXEMPT_ANNOTATION
from notebook_operator.handlers.accounts import accounts, notebooks
from notebook_operator.kube import StaleObject
from notebook_operator.polling import Tracked, action_record
from notebook_operator.providers.base import Provider
from notebook_operator.providers.errors import (
    Conflict,
    InstanceTypeNotOffered,
    NotFound,
    PermissionDenied,
    ProviderError,
)
from notebook_operator.providers.types import CloudInstance, CreateSpec, UpdateSpec
from notebook_operator.reconcile.conditions import kstatus
from notebook_operator.reconcile.decide import WAIT_S, Action, decide, template_drift
from notebook_operator.reconcile.mirror import mirror

logger = logging.getLogger(__name__)
RESOURCE = (GROUP, VERSION, "notebookinstances")


@kopf.on.event(*RESOURCE)
async def track_notebook(
    event: kopf.RawEvent, namespace: str | None, name: str, uid: str, spec: kopf.Spec, status: kopf.Status,
    meta: kopf.Meta, memo: Any, **_: Any,
) -> None:  # fmt: skip
    """Keep the registry each poll loop joins the cloud listing with."""
    assert namespace is not None
    if event.get("type") == "DELETED":
        notebooks(memo).remove(uid)
        return
    ref = spec.get("providerConfigRef", {}).get("name", "")
    item = Tracked(
        namespace, name, uid, meta.get("generation"), _plain(spec), _plain(status), dict(meta.get("labels") or {}),
        _annotations(meta), str(meta.get("resourceVersion") or ""),
    )  # fmt: skip
    notebooks(memo).put((namespace, ref), item)


def _annotations(meta: kopf.Meta) -> dict[str, str]:
    """Only the one the culler reads: kopf's own (last-handled-configuration) would copy the spec again."""
    return {k: v for k, v in (meta.get("annotations") or {}).items() if k == EXEMPT_ANNOTATION}


def _plain(value: Any) -> dict[str, Any]:
    """A plain dict of a kopf body view. Shallow is enough: kopf never mutates a delivered body."""
    return dict(value)


async def _observe(provider: Provider, spec: dict[str, Any], status: dict[str, Any], uid: str) -> CloudInstance | None:
    instance_id = status.get("instanceId") or spec.get("instanceId")
    if instance_id:
        try:
            return await provider.get_instance(instance_id)
        except NotFound:
            return None
    template = spec.get("template")
    if template and spec.get("managementPolicy", "Manage") == "Manage":
        return await provider.find_by_client_token(uid, template["name"])
    return None


def _create_spec(spec: dict[str, Any], uid: str) -> CreateSpec:
    t = spec["template"]
    resources = t.get("resources") or {}
    return CreateSpec(
        name=t["name"], image=t["image"], instance_type=t.get("instanceType"), description=t.get("description"),
        cpu=resources.get("cpu"), memory_gib=resources.get("memoryGiB"), gpu=resources.get("gpu"),
        gpu_type=resources.get("gpuType"), workspace_id=t.get("workspaceId"), resource_id=t.get("resourceId"),
        labels=t.get("labels") or {}, env=t.get("env") or {}, datasets=tuple(t.get("datasets") or ()),
        volume=t.get("volume"), accessibility=t.get("accessibility"), client_token=uid,
    )  # fmt: skip


async def _execute(
    provider: Provider, action: Action, spec: dict[str, Any], uid: str, observed: CloudInstance | None
) -> str | None:
    """Run one action; returns the new instance id for a create."""
    if action.kind == "create":
        return await provider.create_instance(_create_spec(spec, uid))
    assert observed is not None
    if action.kind == "start":
        await provider.start_instance(observed.id)
    elif action.kind == "stop":
        await provider.stop_instance(observed.id)
    elif action.kind == "update":
        drift = template_drift(spec, observed)
        await provider.update_instance(observed.id, UpdateSpec(instance_type=drift.get("instanceType"),
                                                               image=drift.get("image")))  # fmt: skip
    return None


def needs_handler(spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, **_: Any) -> bool:
    """Spec work only: a managed instance to create, or a spec generation not handled yet. Mirroring,
    timers and power drift of everything else are the poll loop's, in one batch per account."""
    if spec.get("managementPolicy", "Manage") != "Manage":
        return False
    if spec.get("template") and not status.get("instanceId"):
        return True
    return bool(status.get("observedGeneration") != meta.get("generation"))


@kopf.on.resume(*RESOURCE, when=needs_handler)
@kopf.on.create(*RESOURCE, when=needs_handler)
@kopf.on.update(*RESOURCE, field="spec", when=needs_handler)
async def reconcile_notebook(
    namespace: str | None,
    name: str,
    uid: str,
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: Any,
    **_: Any,
) -> None:
    assert namespace is not None
    spec_d, status_d = _plain(spec), _plain(status)
    generation = meta.get("generation")
    logger.info("NotebookInstance %s/%s seen (generation %s)", namespace, name, generation)
    provider = accounts(memo).ready_provider(namespace, spec_d["providerConfigRef"]["name"])
    now = datetime.now(UTC)
    try:
        observed = await _observe(provider, spec_d, status_d, uid)
        action = decide(spec_d, status_d, observed, generation, now)
        new_id: str | None = None
        if action.kind in ("create", "start", "stop", "update"):
            pending = action_record(action.kind, action.reason, "Pending", now, generation,
                                    clientToken=uid if action.kind == "create" else None)  # fmt: skip
            # Recorded before the call: after a crash the next run sees it and does not repeat it. Conditional on
            # this version of the object: if another writer (a second replica) got there first, look again.
            try:
                await memo["kube"].patch_status("NotebookInstance", namespace, name, {"lastAction": pending},
                                                resource_version=meta.get("resourceVersion"))  # fmt: skip
            except StaleObject as e:
                raise kopf.TemporaryError(f"{action.kind} not claimed: {e}", delay=1) from e
            try:
                new_id = await _execute(provider, action, spec_d, uid, observed)
            except Conflict as e:  # the cloud moved on its own; look again shortly
                raise kopf.TemporaryError(f"{action.kind}: {e}", delay=WAIT_S) from e
            except ProviderError as e:
                metrics.ACTIONS.labels(action.kind, "failed").inc()
                patch.status["lastAction"] = {**pending, "state": "Failed", "message": str(e)[:1024],
                                              "requestId": e.request_id, "finishedAt": _now()}  # fmt: skip
                if isinstance(e, InstanceTypeNotOffered):
                    # Stalled until the spec changes; the retry costs no cloud call (the catalogue is cached) and
                    # is what picks up a corrected spec (kopf holds a retrying handler until its delay is over).
                    patch.status["conditions"] = kstatus(
                        status_d.get("conditions"), ready=False, reconciling=False, stalled=True, reason=e.reason,
                        message=str(e), now=now, generation=generation,
                    )  # fmt: skip
                    kopf.warn(body, reason=e.reason, message=str(e)[:1024])
                    raise kopf.TemporaryError(str(e), delay=30) from e
                failed = e.reason if isinstance(e, PermissionDenied) else f"{action.kind.capitalize()}Failed"
                kopf.warn(body, reason=failed, message=str(e)[:1024])
                raise kopf.TemporaryError(str(e), delay=30 if e.retryable else 120) from e
            metrics.ACTIONS.labels(action.kind, "succeeded").inc()
            patch.status["lastAction"] = {**pending, "state": "Succeeded", "finishedAt": _now()}
            if action.kind == "start":
                patch.status["stoppedBy"] = None
            kopf.info(body, reason=action.kind.capitalize(), message=action.reason)
            if new_id:
                patch.status["instanceId"] = new_id
                observed = await provider.get_instance(new_id)
            else:
                observed = await provider.get_instance(observed.id) if observed else None
        elif action.kind == "missing":
            kopf.warn(body, reason="InstanceNotFound", message=action.reason)
        merged = {**status_d, **dict(patch.status)}
        mirrored = mirror(spec_d, merged, observed, generation, now)
        mirrored.pop("observedGeneration", None)  # set below, once this generation's work is done
        patch.status.update(mirrored)
    except ProviderError as e:
        raise kopf.TemporaryError(str(e), delay=30) from e
    if action.requeue_after and action.kind != "none":
        # Like ACK: while the cloud is moving, look again soon (the poll loop mirrors meanwhile).
        merged_status = {**status_d, **dict(patch.status)}
        after = decide(spec_d, merged_status, observed, generation) if observed else action
        if after.kind not in ("none", "missing"):
            raise kopf.TemporaryError(f"{after.kind}: {after.reason}", delay=after.requeue_after or WAIT_S)
    patch.status["observedGeneration"] = generation


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _deletion_policy(spec: dict[str, Any]) -> str:
    if spec.get("managementPolicy", "Manage") != "Manage":
        return "Orphan"
    return str(spec.get("deletionPolicy") or ("Delete" if spec.get("template") else "Orphan"))


def deletes_in_cloud(spec: kopf.Spec, **_: Any) -> bool:
    """Only these get a finalizer: deleting the others changes nothing in the cloud."""
    return _deletion_policy(dict(spec)) == "Delete"


@kopf.on.delete(*RESOURCE, when=deletes_in_cloud)
async def delete_notebook(
    namespace: str | None, name: str, uid: str, body: kopf.Body, spec: kopf.Spec, status: kopf.Status, memo: kopf.Memo,
    **_: Any,
) -> None:  # fmt: skip
    assert namespace is not None
    spec_d, status_d = _plain(spec), _plain(status)
    if _deletion_policy(spec_d) == "Orphan":
        logger.info("NotebookInstance %s/%s deleted; cloud instance left in place (Orphan)", namespace, name)
        return
    provider = accounts(memo).ready_provider(namespace, spec_d["providerConfigRef"]["name"])
    try:
        observed = await _observe(provider, spec_d, status_d, uid)
        if observed is None or observed.phase == "Deleted":
            kopf.info(body, reason="Deleted", message="the cloud instance is gone")
            return
        if observed.phase != "Deleting":
            try:
                await provider.delete_instance(observed.id)
                metrics.ACTIONS.labels("delete", "succeeded").inc()
                kopf.info(body, reason="Delete", message=f"deleting cloud instance {observed.id}")
            except Conflict:
                pass  # e.g. still stopping: try again below
    except ProviderError as e:
        metrics.ACTIONS.labels("delete", "failed").inc()
        raise kopf.TemporaryError(f"delete: {e}", delay=30) from e
    raise kopf.TemporaryError("waiting for the cloud instance to be deleted", delay=WAIT_S)
