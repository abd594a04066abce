"""PAI-DSW wire shapes, the status-to-phase table and the translation into CloudInstance."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from notebook_operator.api.notebookinstance import Phase
from notebook_operator.providers.errors import (
    AuthFailed,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ProviderError,
    Throttled,
    Transient,
    remote_text,
    status_text,
)
from notebook_operator.providers.types import (
    CloudInstance,
    CloudSnapshot,
    IdleRule,
    Resources,
    SnapshotPhase,
    URLs,
    cloud_reason,
)
from notebook_operator.times import parse_rfc3339

PROVIDER = "pai-dsw"
TOKEN_LABEL = "cloudnotebooks.io/token"

# Every status the API documents, and the phase it means.
PHASES: dict[str, Phase] = {
    "Creating": "Pending",
    "Queuing": "Pending",
    "ResourceAllocating": "Pending",
    "EnvPreparing": "Starting",
    "Starting": "Starting",
    "Recovering": "Starting",
    "Running": "Running",
    "Saving": "Stopping",
    "Stopping": "Stopping",
    "Stopped": "Stopped",
    "Saved": "Stopped",
    "SaveFailed": "Failed",
    "Updating": "Updating",
    "Deleting": "Deleting",
    "Failed": "Failed",
}


class Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class KeyValue(Wire):
    key: str = Field(alias="Key", default="")
    value: str = Field(alias="Value", default="")


class RequestedResource(Wire):
    cpu: str | None = Field(alias="CPU", default=None)
    memory: str | None = Field(alias="Memory", default=None)
    gpu: str | None = Field(alias="GPU", default=None)
    gpu_type: str | None = Field(alias="GPUType", default=None)


class Culler(Wire):
    cpu: int | None = Field(alias="CpuPercentThreshold", default=None)
    gpu: int | None = Field(alias="GpuPercentThreshold", default=None)
    max_idle: int | None = Field(alias="MaxIdleTimeInMinutes", default=None)


class Timer(Wire):
    due_time: str | None = Field(alias="DueTime", default=None)


class Instance(Wire):
    instance_id: str = Field(alias="InstanceId")
    instance_name: str = Field(alias="InstanceName", default="")
    status: str = Field(alias="Status", default="")
    ecs_spec: str | None = Field(alias="EcsSpec", default=None)
    accelerator_type: str | None = Field(alias="AcceleratorType", default=None)
    accumulated_ms: int | None = Field(alias="AccumulatedRunningTimeInMs", default=None)
    created: str | None = Field(alias="GmtCreateTime", default=None)
    modified: str | None = Field(alias="GmtModifiedTime", default=None)
    image_url: str | None = Field(alias="ImageUrl", default=None)
    image_id: str | None = Field(alias="ImageId", default=None)
    jupyterlab_url: str | None = Field(alias="JupyterlabUrl", default=None)
    web_ide_url: str | None = Field(alias="WebIDEUrl", default=None)
    terminal_url: str | None = Field(alias="TerminalUrl", default=None)
    instance_url: str | None = Field(alias="InstanceUrl", default=None)
    labels: list[KeyValue] = Field(alias="Labels", default_factory=list)
    requested: RequestedResource | None = Field(alias="RequestedResource", default=None)
    culler: Culler | None = Field(alias="IdleInstanceCuller", default=None)
    timer: Timer | None = Field(alias="InstanceShutdownTimer", default=None)
    reason_code: str | None = Field(alias="ReasonCode", default=None)
    reason_message: str | None = Field(alias="ReasonMessage", default=None)


def _number(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(str(text).rstrip("Gi"))
    except ValueError:
        return None


def to_cloud_instance(item: Instance) -> CloudInstance:
    requested = item.requested or RequestedResource()
    gpu = _number(requested.gpu)
    culler = item.culler
    running = item.status == "Running"
    return CloudInstance(
        provider=PROVIDER,
        id=item.instance_id,
        name=item.instance_name,
        phase=PHASES.get(item.status, "Unknown"),
        cloud_status=item.status,
        instance_type=item.ecs_spec or None,
        image=item.image_url or item.image_id or None,
        resources=Resources(
            cpu=_number(requested.cpu),
            memory_gib=_number(requested.memory),
            gpu=int(gpu) if gpu is not None else (1 if item.accelerator_type == "GPU" else 0),
            gpu_type=requested.gpu_type or None,
        ),
        created_at=parse_rfc3339(item.created),
        # Status changes touch GmtModifiedTime: for a Running instance it is when it became Running.
        started_at=parse_rfc3339(item.modified) if running else None,
        started_at_source="GmtModifiedTime" if running and item.modified else None,
        accumulated_running_seconds=item.accumulated_ms // 1000 if item.accumulated_ms is not None else None,
        urls=URLs(
            jupyter_lab=item.jupyterlab_url or None,
            web_ide=item.web_ide_url or None,
            terminal=item.terminal_url or None,
            instance=item.instance_url or None,
        ),
        labels={label.key: label.value for label in item.labels},
        idle_rule=(
            IdleRule(cpu_percent=culler.cpu, gpu_percent=culler.gpu, max_idle_minutes=culler.max_idle)
            if culler and culler.max_idle
            else None
        ),
        shutdown_at=parse_rfc3339(item.timer.due_time) if item.timer else None,
        reason=cloud_reason(item.reason_code, item.reason_message),
    )


AUTH_CODES = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
    "InvalidTimeStamp",
    "SignatureNonceUsed",
)
# A RAM policy that does not allow the action: HTTP 403, e.g. Forbidden.RAM (guess: Alibaba's common code;
# see docs/cloud-api-conformance.md). Anything 403 that is not a credentials code counts.
PERMISSION_CODES = ("Forbidden", "NoPermission")
CONFLICT_CODES = ("InstanceStatusNotSupport", "AlreadyExists", "IllegalStatus", "InvalidStatus")


def map_error(response: httpx.Response, operation: str) -> ProviderError | None:
    """The one place a PAI-DSW answer becomes an error; HTTP 200 with Success:false counts too."""
    body: dict[str, Any] = {}
    if "json" in response.headers.get("content-type", ""):
        try:
            parsed = response.json()
            body = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            body = {}
    status = response.status_code
    if status < 400 and body.get("Success", True) is not False:
        return None
    code = str(body.get("Code") or body.get("code") or status)
    message = remote_text(body.get("Message") or body.get("message") or status_text(response.status_code))
    kwargs: dict[str, Any] = {
        "provider": PROVIDER,
        "operation": operation,
        "code": code,
        "request_id": body.get("RequestId") or response.headers.get("x-acs-request-id"),
        "status": status,
    }
    retry_after = response.headers.get("x-acs-retry-after")
    if status == 429 or code.startswith("Throttling") or retry_after:
        seconds = int(retry_after) / 1000 if retry_after and retry_after.isdigit() else None
        return Throttled(message, retry_after=seconds, **kwargs)
    if code.startswith(AUTH_CODES) or status == 401:
        return AuthFailed(message, **kwargs)
    if code.startswith(PERMISSION_CODES) or status == 403:
        return PermissionDenied(message, **kwargs)
    if status == 404 or code.endswith("NotFound"):
        return NotFound(message, **kwargs)
    if any(c in code for c in CONFLICT_CODES) or status == 409:
        return Conflict(message, **kwargs)
    if status >= 500 or code in ("InternalError", "ServiceUnavailable"):
        return Transient(message, **kwargs)
    return InvalidRequest(message, **kwargs)


# GetInstanceSnapshot / ListInstanceSnapshot Status. The SDK names one value in its example ("Pushing"); the
# others are our reading (docs/cloud-api-conformance.md): the instance statuses' words for a saved image
# (Saved, SaveFailed) and the usual ones. A status not named here counts as still saving.
SNAPSHOT_READY = frozenset({"Saved", "Available", "Succeeded"})
SNAPSHOT_FAILED = frozenset({"SaveFailed", "Failed"})


def to_cloud_snapshot(raw: dict[str, Any]) -> CloudSnapshot:
    status = str(raw.get("Status") or "")
    phase: SnapshotPhase = "Ready" if status in SNAPSHOT_READY else "Failed" if status in SNAPSHOT_FAILED else "Saving"
    return CloudSnapshot(
        id=str(raw.get("SnapshotId") or ""),
        phase=phase,
        cloud_status=status,
        image_id=raw.get("ImageId") or None,
        image_url=raw.get("ImageUrl") or None,
        reason=cloud_reason(raw.get("ReasonCode"), raw.get("ReasonMessage")),
    )
