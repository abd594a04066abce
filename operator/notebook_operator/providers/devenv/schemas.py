"""DevEnviron wire shapes and statuses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from notebook_operator.api.notebookinstance import Phase
from notebook_operator.providers.types import CloudInstance, URLs
from notebook_operator.times import from_millis

PROVIDER = "modelarts-devenv"

PHASES: dict[str, Phase] = {
    "CREATING": "Pending",
    "STARTING": "Starting",
    "RESTARTING": "Starting",
    "RUNNING": "Running",
    "STOPPING": "Stopping",
    "STOPPED": "Stopped",
    "RESIZING": "Updating",
    "DELETED": "Deleted",
    "CREATE_FAILED": "Failed",
    "START_FAILED": "Failed",
    "RESIZE_FAILED": "Failed",
    "UNAVAILABLE": "Failed",
}


class Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class DevInstance(Wire):
    id: str
    name: str = ""
    status: str = ""
    flavor: str | None = None
    creation_timestamp: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)


class ListResponse(Wire):
    total_count: int = 0
    instances: list[DevInstance] = Field(default_factory=list)


def to_cloud_instance(item: DevInstance) -> CloudInstance:
    annotations = item.spec.get("annotations") or {}
    auto_stop = item.spec.get("auto_stop") or {}
    return CloudInstance(
        provider=PROVIDER,
        id=item.id,
        name=item.name,
        phase=PHASES.get(item.status, "Unknown"),
        cloud_status=item.status,
        instance_type=item.flavor,
        created_at=from_millis(item.creation_timestamp),
        urls=URLs(jupyter_lab=annotations.get("url") or None),
        shutdown_at=from_millis(auto_stop.get("stop_timestamp")) if auto_stop.get("enable") else None,
    )
