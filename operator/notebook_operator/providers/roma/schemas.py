"""ROMA Connect wire shapes and statuses."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from notebook_operator.api.notebookinstance import Phase
from notebook_operator.providers.types import CloudInstance
from notebook_operator.times import parse_rfc3339

PROVIDER = "roma-connect"

PHASES: dict[str, Phase] = {
    "CREATING": "Pending",
    "RUNNING": "Running",
    "DELETING": "Deleting",
    "DELETED": "Deleted",
    "SOFT_DELETED": "Deleted",
    "ERROR": "Failed",
    "CREATE_FAILED": "Failed",
    "DELETE_FAILED": "Failed",
}


class RomaInstance(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str = ""
    status: str = ""
    flavor_id: str | None = None
    create_time: str | None = None
    error_msg: str | None = None


class ListResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    total: int = 0
    size: int = 0
    instances: list[RomaInstance] = Field(default_factory=list)


def to_cloud_instance(item: RomaInstance) -> CloudInstance:
    return CloudInstance(
        provider=PROVIDER,
        id=item.id,
        name=item.name,
        phase=PHASES.get(item.status, "Unknown"),
        cloud_status=item.status,
        instance_type=item.flavor_id,
        created_at=parse_rfc3339(item.create_time),
        reason=item.error_msg or None,
    )
