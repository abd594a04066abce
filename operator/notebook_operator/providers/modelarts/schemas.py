"""ModelArts notebook wire shapes, the status-to-phase table and the translation into CloudInstance."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from notebook_operator.api.notebookinstance import Phase
from notebook_operator.providers.types import (
    CloudInstance,
    CloudSnapshot,
    IdleRule,
    Resources,
    SnapshotPhase,
    URLs,
    cloud_reason,
)
from notebook_operator.times import from_millis

PROVIDER = "modelarts"
TOKEN_MARK = "cloudnotebooks.io/token="

PHASES: dict[str, Phase] = {
    "INIT": "Pending",
    "CREATING": "Pending",
    "STARTING": "Starting",
    "RUNNING": "Running",
    "SNAPSHOTTING": "Updating",
    "STOPPING": "Stopping",
    "STOPPED": "Stopped",
    "DELETING": "Deleting",
    "DELETED": "Deleted",
    "CREATE_FAILED": "Failed",
    "START_FAILED": "Failed",
    "DELETE_FAILED": "Failed",
    "ERROR": "Failed",
    "FROZEN": "Failed",
}


class Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class Lease(Wire):
    create_at: int | None = None
    duration: int | None = None
    enable: bool = False
    type: str | None = None
    update_at: int | None = None


class CustomSpec(Wire):
    cpu: float | None = None
    memory: float | None = None  # MiB
    gpu: float | None = None
    gpu_type: str | None = None


class Image(Wire):
    id: str | None = None
    swr_path: str | None = None


class Tag(Wire):
    key: str = ""
    value: str = ""


class JobProgress(Wire):
    """One step of what the notebook is doing (SDK JobProgress: WAITING, PROCESSING, FAILED, COMPLETED)."""

    step: int | None = None
    status: str = ""
    description: str = ""


class Notebook(Wire):
    id: str
    name: str = ""
    status: str = ""
    description: str | None = None
    flavor: str | None = None
    url: str | None = None
    fail_reason: str | None = None
    action_progress: list[JobProgress] = Field(default_factory=list)
    image: Image | None = None
    lease: Lease | None = None
    custom_spec: CustomSpec | None = None
    tags: list[Tag] = Field(default_factory=list)


class ListResponse(Wire):
    current: int = 0
    data: list[Notebook] = Field(default_factory=list)
    pages: int = 0
    size: int = 0
    total: int = 0


def lease_end(lease: Lease | None) -> int | None:
    """Epoch ms when a TIMING lease stops the notebook."""
    if lease and lease.enable and lease.type != "IDLE" and lease.create_at and lease.duration:
        return lease.create_at + lease.duration
    return None


def to_cloud_instance(item: Notebook) -> CloudInstance:
    spec = item.custom_spec or CustomSpec()
    lease = item.lease
    running = item.status == "RUNNING"
    idle = lease is not None and lease.enable and lease.type == "IDLE" and lease.duration
    return CloudInstance(
        provider=PROVIDER,
        id=item.id,
        name=item.name,
        phase=PHASES.get(item.status, "Unknown"),
        cloud_status=item.status,
        instance_type=item.flavor,
        image=(item.image.id if item.image else None) or None,
        resources=Resources(
            cpu=spec.cpu,
            memory_gib=round(spec.memory / 1024, 2) if spec.memory else None,
            gpu=int(spec.gpu) if spec.gpu is not None else None,
            gpu_type=spec.gpu_type or None,
        ),
        # A start resets the lease: its create_at is when the notebook last started.
        started_at=from_millis(lease.create_at) if running and lease else None,
        started_at_source="lease.create_at" if running and lease and lease.create_at else None,
        urls=URLs(jupyter_lab=item.url or None),
        labels={t.key: t.value for t in item.tags},
        idle_rule=IdleRule(max_idle_minutes=int(lease.duration or 0) // 60000) if idle and lease else None,
        shutdown_at=from_millis(lease_end(lease)),
        reason=cloud_reason(item.fail_reason) or _failed_step(item.action_progress),
    )


def _failed_step(progress: list[JobProgress]) -> str | None:
    failed = [p for p in progress if p.status == "FAILED"]
    if not failed:
        return None
    step = failed[0]
    return cloud_reason(f"step {step.step} failed" if step.step is not None else "a step failed", step.description)


# ImageResponse.status (huaweicloudsdkmodelarts CreateImageResponse / ShowImageResponse): INIT, CREATING (the
# notebook is saving), CREATE_FAILED, ERROR, DELETED, ACTIVE (saved; usable to create notebooks).
IMAGE_PHASES: dict[str, SnapshotPhase] = {
    "INIT": "Saving",
    "CREATING": "Saving",
    "ACTIVE": "Ready",
    "CREATE_FAILED": "Failed",
    "ERROR": "Failed",
    "DELETED": "Failed",
}


def to_cloud_snapshot(raw: dict[str, Any]) -> CloudSnapshot:
    status = str(raw.get("status") or "")
    phase = IMAGE_PHASES.get(status, "Saving")
    failed = cloud_reason(raw.get("status_message")) if phase == "Failed" else None
    return CloudSnapshot(
        id=str(raw.get("id") or ""),
        phase=phase,
        cloud_status=status,
        image_id=raw.get("id") or None,
        image_url=raw.get("swr_path") or None,
        reason=failed or (f"the image is {status}" if phase == "Failed" else None),
    )
