"""The normalized view of a cloud notebook and the values the Provider protocol passes around."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from notebook_operator.api.notebookinstance import Phase

TRANSITIONAL_PHASES: frozenset[str] = frozenset({"Pending", "Starting", "Stopping", "Updating", "Deleting"})


class Capability(enum.StrEnum):
    """What the operator's decisions ask of a provider beyond the protocol's core (list, get, start, stop:
    an operation a provider lacks raises Unsupported)."""

    STOP_SAVE_IMAGE = "stop-save-image"
    UTILIZATION = "utilization"
    TAGS = "tags"  # set_tags: the instance's tags (PAI-DSW labels, ModelArts TMS tags) can be changed
    TAGS_AT_CREATE = "tags-at-create"  # the create request carries them (PAI-DSW Labels; ModelArts has none)
    SNAPSHOTS = "snapshots"  # an instance's environment saved as an image (PAI-DSW snapshots, ModelArts images)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Resources(Frozen):
    cpu: float | None = None
    memory_gib: float | None = None
    gpu: int | None = None
    gpu_type: str | None = None


class URLs(Frozen):
    jupyter_lab: str | None = None
    web_ide: str | None = None
    terminal: str | None = None
    instance: str | None = None


class IdleRule(Frozen):
    """A cloud-side idle culler (PAI-DSW IdleInstanceCuller; ModelArts IDLE lease)."""

    cpu_percent: int | None = None
    gpu_percent: int | None = None
    max_idle_minutes: int


class NativeEnforcement(Frozen):
    """The cloud's own idle culler and shutdown timer, and their limits, as the provider states them (None: the
    cloud has no such thing)."""

    idle_rule: str | None = None  # what the cloud calls its idle culler, for status.idle.enforcement
    idle_thresholds: bool = False  # the idle rule takes CPU/GPU thresholds; without, the cloud judges idleness
    cloud_idle_thresholds: str = "its own thresholds"  # how, when it takes none
    idle_minutes: tuple[int, int] | None = None  # the idle times the rule can hold (None: any)
    timer: str | None = None  # what the cloud calls its shutdown timer
    timer_range: tuple[timedelta, timedelta] | None = None  # how far ahead a timer can be set (None: any time)
    one_lease: bool = False  # idle rule and timer share one slot per instance


class CloudInstance(Frozen):
    """One notebook instance as every provider reports it."""

    provider: str
    id: str
    name: str
    phase: Phase
    cloud_status: str
    instance_type: str | None = None
    image: str | None = None
    resources: Resources = Resources()
    created_at: datetime | None = None
    started_at: datetime | None = None
    started_at_source: str | None = None  # what started_at was taken from (the cloud's field or API)
    accumulated_running_seconds: int | None = None
    urls: URLs = URLs()
    labels: dict[str, str] = Field(default_factory=dict)
    idle_rule: IdleRule | None = None
    shutdown_at: datetime | None = None
    reason: str | None = None  # why the cloud says it is in this state (a failure's code and text), if it says

    @property
    def is_gpu(self) -> bool:
        return bool(self.resources.gpu)


def one_line(text: str) -> str:
    """A remote text as it may appear in a status, a condition or an Event: one line, no control characters."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def cloud_reason(*parts: str | None) -> str | None:
    """The cloud's reason as one line: its non-empty parts joined ("CODE: text")."""
    text = ": ".join(one_line(p) for p in parts if p and one_line(p))
    return text or None


class ListFilter(Frozen):
    """Server-side filters; a provider applies those its API supports and ignores none silently."""

    ids: tuple[str, ...] = ()
    name: str | None = None
    status: str | None = None  # the cloud's own status value
    labels: dict[str, str] = Field(default_factory=dict)


class Utilization(Frozen):
    """Peak and mean use over a window; `samples` 0 means no data (never idle)."""

    window: timedelta
    samples: int
    cpu_max: float | None = None
    gpu_max: float | None = None
    sampled_at: datetime


class CreateSpec(Frozen):
    """What to create, cloud-neutral (from NotebookInstance.spec.template)."""

    name: str
    image: str
    instance_type: str | None = None
    description: str | None = None
    cpu: float | None = None
    memory_gib: float | None = None
    gpu: int | None = None
    gpu_type: str | None = None
    shared_memory_gib: float | None = None
    workspace_id: str | None = None
    resource_id: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    datasets: tuple[dict[str, Any], ...] = ()
    volume: dict[str, Any] | None = None
    accessibility: str | None = None
    client_token: str = Field(min_length=8, max_length=64)


class UpdateSpec(Frozen):
    """Template changes the clouds allow after creation; None means unchanged."""

    image: str | None = None
    instance_type: str | None = None
    description: str | None = None
    env: dict[str, str] | None = None


class SnapshotRequest(Frozen):
    """What to save of one instance: PAI-DSW CreateInstanceSnapshot, ModelArts create-image."""

    name: str  # the cloud's name of it: a request is found again by it, never made twice
    image_url: str | None = None  # PAI-DSW: where the image is pushed
    image_tag: str | None = None  # ModelArts: the image's tag (its name is `name`)
    image_namespace: str | None = None  # ModelArts: the SWR organization
    exclude_paths: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)
    description: str | None = None


SnapshotPhase = Literal["Saving", "Ready", "Failed"]


class CloudSnapshot(Frozen):
    id: str
    phase: SnapshotPhase
    cloud_status: str
    image_id: str | None = None
    image_url: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class HourlyPrice:
    """What one running hour of an instance type costs, as the cloud lists it."""

    amount: float
    currency: str


@dataclass(frozen=True)
class BatchStop:
    """What one batched stop call did: the instances it stopped, and those a policy refused (id -> reason)."""

    stopped: frozenset[str]
    denied: dict[str, str]
