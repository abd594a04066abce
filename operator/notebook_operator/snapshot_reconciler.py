"""One pass of one NotebookSnapshot: find its notebook's cloud instance, ask the cloud to save it (once: a request
is found again by its name before another is made), follow it to Ready or Failed, and delete it in the cloud when
the resource goes (deletionPolicy Delete).

PAI-DSW: CreateInstanceSnapshot / GetInstanceSnapshot / ListInstanceSnapshot / DeleteInstanceSnapshot. ModelArts:
create-image (the notebook must be Running), ShowImage until ACTIVE, ListImage by name, DeleteImage.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from notebook_operator.api.meta import CLOUD_REASON_MAX, GROUP, VERSION, object_ref
from notebook_operator.api.notebooksnapshot import NotebookSnapshotSpec
from notebook_operator.executor import EventSink
from notebook_operator.providers import priority
from notebook_operator.providers.base import Provider
from notebook_operator.providers.errors import NotFound, ProviderError
from notebook_operator.providers.priority import CallClass
from notebook_operator.providers.types import Capability, CloudSnapshot, SnapshotRequest
from notebook_operator.reconcile.conditions import kstatus
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.reconcile.policies import SnapshotFirst
from notebook_operator.times import rfc3339

logger = logging.getLogger(__name__)
KIND = "NotebookSnapshot"
SAVING_POLL_S = 3.0
WAITING_POLL_S = 10.0
TERMINAL = ("Ready", "Failed")


@dataclass(frozen=True)
class Snapshot:
    namespace: str
    name: str
    uid: str
    generation: int | None
    spec: NotebookSnapshotSpec
    status: Mapping[str, Any]

    @property
    def ref(self) -> dict[str, Any]:
        return object_ref(KIND, self.namespace, self.name, self.uid)

    def cloud_id(self, provider: str) -> str | None:
        """The cloud's id of what this saved, as recorded: ModelArts the image's, PAI-DSW the snapshot's."""
        value = self.status.get("imageId" if provider == "modelarts" else "snapshotId")
        return str(value) if value else None

    def request(self, provider: str) -> SnapshotRequest:
        """PAI-DSW: a name of our own (the object's, made unique by its uid); ModelArts: the declared image."""
        spec = self.spec
        name = spec.image_name if provider == "modelarts" and spec.image_name else f"{self.name[:54]}-{self.uid[:8]}"
        return SnapshotRequest(
            name=name,
            image_url=spec.image_url,
            image_tag=spec.image_tag,
            image_namespace=spec.image_namespace,
            exclude_paths=tuple(spec.exclude_paths or ()),
            labels={"cloudnotebooks.io:namespace": self.namespace, "cloudnotebooks.io:snapshot": self.name},
            description=f"NotebookSnapshot {self.namespace}/{self.name}",
        )


@dataclass
class SnapshotPass:
    patch: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None  # look again after this long (None: nothing more to do)


def cull_snapshot(notebook: Notebook, name: str, first: SnapshotFirst, now: datetime) -> dict[str, Any] | None:
    """The NotebookSnapshot a cull with snapshotBeforeStop saves first: PAI-DSW pushes to the policy's repository,
    ModelArts saves an image named after the notebook; the cloud snapshot goes with the resource (Delete)."""
    spec: dict[str, Any] = {"notebookRef": {"name": notebook.name}, "deletionPolicy": "Delete"}
    stamp = now.strftime("%Y%m%d-%H%M%S")
    if notebook.status.get("provider") == "modelarts":
        spec["imageName"] = re.sub(r"[^a-z0-9._-]+", "-", notebook.name.lower()).strip("-._")[:128] or "notebook"
        spec["imageTag"] = f"cull-{stamp}"
        if first.image_namespace:
            spec["imageNamespace"] = first.image_namespace
    elif first.image_repository:
        spec["imageUrl"] = f"{first.image_repository}:{notebook.name[:40]}-{stamp}"
    else:  # PAI-DSW pushes to a registry the policy did not name
        return None
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "labels": {"cloudnotebooks.io/cull-of": notebook.name[:63]}},
        "spec": spec,
    }


def template_image(status: Mapping[str, Any]) -> str | None:
    """What a NotebookInstance template uses of a Ready snapshot: ModelArts creates from the image's id, PAI-DSW
    from the image's URL."""
    if status.get("phase") != "Ready":
        return None
    value = status.get("imageId") if status.get("provider") == "modelarts" else status.get("imageUrl")
    return str(value) if value else None


def waiting(snapshot: Snapshot, reason: str, message: str, now: datetime, after: float) -> SnapshotPass:
    """Pending: nothing asked of the cloud yet, for a reason that may pass (the notebook is not running yet)."""
    return SnapshotPass(_phase(snapshot, "Pending", reason, message, now), after)


def failed(snapshot: Snapshot, reason: str, message: str, now: datetime) -> SnapshotPass:
    return SnapshotPass(_phase(snapshot, "Failed", reason, message, now))


def _phase(snapshot: Snapshot, phase: str, reason: str, message: str, now: datetime) -> dict[str, Any]:
    message = message[:CLOUD_REASON_MAX]
    conditions = kstatus(
        snapshot.status.get("conditions"),
        ready=phase == "Ready",
        reconciling=phase in ("Pending", "Saving"),
        stalled=phase == "Failed",
        reason=reason,
        message=message,
        now=now,
        generation=snapshot.generation,
    )
    patch: dict[str, Any] = {"phase": phase, "conditions": conditions, "observedGeneration": snapshot.generation}
    patch["reason"] = message if phase in ("Pending", "Failed") else None
    return patch


class SnapshotReconciler:
    def __init__(self, provider: Provider, emit: EventSink) -> None:
        self.provider = provider
        self.emit = emit

    async def reconcile(self, snapshot: Snapshot, notebook: Notebook, now: datetime) -> SnapshotPass:
        if snapshot.status.get("phase") in TERMINAL:
            return SnapshotPass()
        provider = self.provider
        if Capability.SNAPSHOTS not in provider.capabilities:
            return failed(snapshot, "Unsupported", f"{provider.name} keeps no snapshots of notebooks", now)
        wrong = _wrong_fields(snapshot.spec, provider.name)
        if wrong:
            return failed(snapshot, "InvalidSpec", wrong, now)
        instance_id = snapshot.status.get("instanceId") or notebook.instance_id
        if not instance_id:
            message = f"{notebook.name} has no cloud instance yet"
            return waiting(snapshot, "NotebookNotCreated", message, now, WAITING_POLL_S)
        request = snapshot.request(provider.name)
        known = snapshot.cloud_id(provider.name)
        try:
            if known:
                found: CloudSnapshot | None = await provider.get_snapshot(instance_id, known)
            else:
                found = await provider.find_snapshot(instance_id, request)
                if found is None:
                    if notebook.status.get("phase") != "Running":
                        phase = notebook.status.get("phase") or "not observed yet"
                        message = (
                            f"waits for {notebook.name} to be Running (it is {phase}): the cloud saves running ones"
                        )
                        return waiting(snapshot, "NotebookNotRunning", message, now, WAITING_POLL_S)
                    new_id = await provider.create_snapshot(instance_id, request)
                    self.emit(snapshot.ref, "Normal", "SnapshotRequested", f"{provider.name} snapshot {new_id}")
                    found = await provider.get_snapshot(instance_id, new_id)
        except NotFound as e:
            return failed(snapshot, "NotFound", f"the cloud snapshot or instance is gone: {e}", now)
        except ProviderError as e:
            if e.retryable:
                return SnapshotPass({"reason": str(e)[:CLOUD_REASON_MAX]}, WAITING_POLL_S)
            self.emit(snapshot.ref, "Warning", "SnapshotFailed", str(e))
            return failed(snapshot, e.reason, str(e), now)
        assert found is not None
        pass_ = self._observed(snapshot, found, instance_id, request.name, now)
        ref = notebook.spec.provider_config_ref
        pass_.patch["account"] = f"{ref.kind}/{ref.name}"
        return pass_

    def _observed(
        self, snapshot: Snapshot, found: CloudSnapshot, instance_id: str, cloud_name: str, now: datetime
    ) -> SnapshotPass:
        ids = (
            {"imageId": found.id}
            if self.provider.name == "modelarts"
            else {"snapshotId": found.id, "imageId": found.image_id}
        )
        common = {
            "provider": self.provider.name,
            "instanceId": instance_id,
            "cloudName": cloud_name,
            "cloudStatus": found.cloud_status,
            "imageUrl": found.image_url,
            **ids,
        }
        if not snapshot.status.get("requestedAt"):
            common["requestedAt"] = rfc3339(now)
        if found.phase == "Ready":
            self.emit(snapshot.ref, "Normal", "SnapshotReady", f"saved as {found.image_url or found.id}")
            patch = _phase(snapshot, "Ready", "Ready", f"saved as {found.image_url or found.id}", now)
            return SnapshotPass({**common, **patch, "readyAt": rfc3339(now)})
        if found.phase == "Failed":
            why = found.reason or f"cloud status {found.cloud_status}"
            self.emit(snapshot.ref, "Warning", "SnapshotFailed", why)
            return SnapshotPass({**common, **_phase(snapshot, "Failed", "CloudFailed", why, now)})
        patch = _phase(snapshot, "Saving", "Saving", f"cloud status {found.cloud_status}", now)
        return SnapshotPass({**common, **patch}, SAVING_POLL_S)

    async def delete(self, snapshot: Snapshot) -> None:
        """Delete the cloud snapshot (or image) this resource made, if it made one (housekeeping: its calls wait for
        the account's stops and actions)."""
        with priority.calls(CallClass.HOUSEKEEPING, snapshot.namespace):
            await self._delete(snapshot)

    async def _delete(self, snapshot: Snapshot) -> None:
        instance_id = snapshot.status.get("instanceId")
        known = snapshot.cloud_id(self.provider.name)
        if not instance_id:
            return
        if not known:  # asked for but not recorded (the operator died in between): found again by its name
            with_name = await self.provider.find_snapshot(str(instance_id), snapshot.request(self.provider.name))
            known = with_name.id if with_name else None
        if known:
            await self.provider.delete_snapshot(str(instance_id), known)
            self.emit(snapshot.ref, "Normal", "SnapshotDeleted", f"deleted {self.provider.name} snapshot {known}")


def _wrong_fields(spec: NotebookSnapshotSpec, provider: str) -> str | None:
    if provider == "modelarts" and not spec.image_name:
        return "ModelArts saves images by name: set spec.imageName and spec.imageTag (not imageUrl)"
    if provider == "pai-dsw" and not spec.image_url:
        return "PAI-DSW pushes the snapshot to a registry: set spec.imageUrl (not imageName)"
    return None
