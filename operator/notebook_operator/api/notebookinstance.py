"""NotebookInstance: one cloud notebook, adopted by id or created from a template."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from notebook_operator.api.formats import CRON_PATTERN, DURATION_PATTERN, time_zone_rule
from notebook_operator.api.meta import (
    CLOUD_REASON_MAX,
    LIST_MAX,
    NAME_MAX,
    TEXT_MAX,
    Condition,
    LocalObjectReference,
    Model,
    StatusModel,
    Text,
    cel,
    validations,
)
from notebook_operator.api.notify import max_snooze_hours_field, warn_minutes_field
from notebook_operator.api.tags import TagValue, tags_field

# One phase enum across clouds; the mapping from each cloud status lives with each provider.
Phase = Literal[
    "Pending",
    "Starting",
    "Running",
    "Stopping",
    "Stopped",
    "Updating",
    "Deleting",
    "Deleted",
    "Failed",
    "Unknown",
]
ManagementPolicy = Literal["Manage", "Observe"]
DesiredState = Literal["Running", "Stopped"]
DeletionPolicy = Literal["Delete", "Orphan"]

EXEMPT_ANNOTATION = "cloudnotebooks.io/cull-exempt"
SNOOZE_ANNOTATION = "cloudnotebooks.io/keep-running-until"
TAKE_OWNERSHIP_ANNOTATION = "cloudnotebooks.io/take-ownership"
FINALIZER = "cloudnotebooks.io/finalizer"


class ResourceRequest(Model):
    cpu: float | None = Field(default=None, gt=0, le=1024, description="vCPUs.")
    memory_gi_b: float | None = Field(default=None, alias="memoryGiB", gt=0, le=16384, description="Memory in GiB.")
    gpu: int | None = Field(default=None, ge=0, le=64, description="Number of GPUs.")
    gpu_type: str | None = Field(default=None, max_length=128, description="GPU model, e.g. A10.")
    shared_memory_gi_b: float | None = Field(default=None, alias="sharedMemoryGiB", gt=0, le=16384)


class DatasetMount(Model):
    id: str | None = Field(default=None, max_length=NAME_MAX, description="Cloud dataset id (PAI-DSW).")
    uri: str | None = Field(default=None, max_length=TEXT_MAX, description="Storage URI, e.g. oss://bucket/path.")
    mount_path: str = Field(max_length=TEXT_MAX, pattern=r"^/", description="Absolute path in the notebook.")
    read_only: bool = False

    model_config = ConfigDict(
        json_schema_extra=validations(cel("has(self.id) || has(self.uri)", "a dataset needs id or uri"))
    )


class StorageVolume(Model):
    """The notebook's own storage (ModelArts volume; PAI-DSW cloud disk)."""

    category: Literal["EVS", "EFS", "OBS", "OBSFS", "CloudDisk"] = "EVS"
    capacity_gi_b: int | None = Field(default=None, alias="capacityGiB", ge=1, le=65536)
    mount_path: str = Field(default="/home/ma-user/work", max_length=TEXT_MAX, pattern=r"^/")
    ownership: Literal["MANAGED", "DEDICATED"] | None = None
    uri: str | None = Field(default=None, max_length=TEXT_MAX)


class ImageSource(Model):
    snapshot_ref: LocalObjectReference = Field(
        description="A NotebookSnapshot in the same namespace: its saved image (once Ready) is the instance's image."
    )


class NotebookTemplate(Model):
    """What to create. Fields a cloud has no use for are ignored by that cloud's provider."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self.name == oldSelf.name", "template.name is immutable", ".name"),
            cel("has(self.image) != has(self.imageFrom)", "exactly one of template.image or template.imageFrom"),
        )
    )

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Instance name in the cloud.",
    )
    description: str | None = Field(default=None, max_length=512)
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_MAX,
        description="Image URL or image id (PAI ImageUrl/ImageId, ModelArts image_id).",
    )
    image_from: ImageSource | None = Field(
        default=None, description="Start from a saved NotebookSnapshot instead of an image (refused until Ready)."
    )
    instance_type: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Machine spec: PAI-DSW EcsSpec (ecs.gn6i-c4g1.xlarge) or ModelArts flavor (modelarts.vm.cpu.2u).",
    )
    resources: ResourceRequest | None = Field(
        default=None, description="Requested resources, for resource-group (quota) instances."
    )
    workspace_id: str | None = Field(default=None, max_length=128)
    resource_id: str | None = Field(default=None, max_length=128, description="PAI resource group / ModelArts pool.")
    labels: dict[str, Text] | None = Field(default=None, max_length=LIST_MAX, description="Cloud labels/tags.")
    env: dict[str, Text] | None = Field(default=None, max_length=LIST_MAX, description="Environment variables.")
    datasets: list[DatasetMount] | None = Field(default=None, max_length=16)
    volume: StorageVolume | None = None
    accessibility: Literal["PRIVATE", "PUBLIC"] | None = None


class ShutdownSpec(Model):
    """Any combination; the earliest due one fires."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.afterRunning) || has(self.at) || has(self.schedule)",
                "shutdown needs at least one of afterRunning, at or schedule",
            ),
            cel("!has(self.timeZone) || has(self.schedule)", "timeZone applies to schedule only", ".timeZone"),
        )
    )

    after_running: str | None = Field(
        default=None,
        max_length=64,
        pattern=DURATION_PATTERN,
        description="Stop this long after the instance last started, e.g. 8h or 90m.",
        json_schema_extra=validations(cel("duration(self) >= duration('1m')", "afterRunning must be at least 1m")),
    )
    at: datetime | None = Field(default=None, description="Stop once at this RFC 3339 time.")
    schedule: str | None = Field(
        default=None,
        max_length=128,
        pattern=CRON_PATTERN,
        description="Stop whenever this five-field cron expression fires, e.g. '0 20 * * 1-5'.",
    )
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="IANA time zone of schedule (default UTC).",
        json_schema_extra=validations(cel(time_zone_rule(), "timeZone must be an IANA time zone name")),
    )
    warn_minutes: int | None = warn_minutes_field("a timer stop")
    max_snooze_hours: float = max_snooze_hours_field("a timer stop")


ProviderConfigKind = Literal["ProviderConfig", "ClusterProviderConfig"]


class ProviderConfigReference(Model):
    name: str = Field(min_length=1, max_length=NAME_MAX, description="The account's name.")
    kind: ProviderConfigKind = Field(
        default="ProviderConfig",
        description="ProviderConfig (in the same namespace) or ClusterProviderConfig (the admin's, if its "
        "namespaceSelector admits this namespace).",
    )


class NotebookInstanceSpec(Model):
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.instanceId) != has(self.template)",
                "exactly one of spec.instanceId or spec.template must be set",
            ),
            cel(
                "self.managementPolicy == 'Manage' || has(self.instanceId)",
                "managementPolicy Observe needs spec.instanceId: nothing is created in Observe mode",
                ".managementPolicy",
            ),
            cel(
                "self.managementPolicy == 'Manage' || !has(self.deletionPolicy) || self.deletionPolicy == 'Orphan'",
                "deletionPolicy Delete needs managementPolicy Manage",
                ".deletionPolicy",
            ),
            cel(
                "has(oldSelf.instanceId) == has(self.instanceId) && "
                "(!has(self.instanceId) || self.instanceId == oldSelf.instanceId)",
                "instanceId cannot be added, removed or changed",
                ".instanceId",
            ),
            cel(
                "self.providerConfigRef.name == oldSelf.providerConfigRef.name && "
                "self.providerConfigRef.kind == oldSelf.providerConfigRef.kind",
                "providerConfigRef is immutable",
                ".providerConfigRef",
            ),
        )
    )

    provider_config_ref: ProviderConfigReference = Field(description="The cloud account to use.")
    instance_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Adopt this existing cloud instance.",
    )
    template: NotebookTemplate | None = Field(default=None, description="Create an instance like this.")
    management_policy: ManagementPolicy = Field(
        default="Manage", description="Manage: create/start/stop/update/delete. Observe: mirror only."
    )
    desired_state: DesiredState | None = Field(
        default=None, description="Start or stop the instance to match. Unset: leave its power state alone."
    )
    deletion_policy: DeletionPolicy | None = Field(
        default=None,
        description="What deleting this resource does in the cloud. Unset: Delete if created here, Orphan if adopted.",
    )
    shutdown: ShutdownSpec | None = None
    tags: dict[str, TagValue] | None = tags_field(
        "Cloud tags kept on the instance (Manage only; added, changed and removed with this map), over the "
        "account's defaultTags. The operator also sets cloudnotebooks.io:cluster, :namespace and :name."
    )


class LastAction(StatusModel):
    action: str = Field(max_length=64, description="create, start, stop, update, delete, ...")
    reason: str = Field(default="", max_length=TEXT_MAX)
    state: Literal["Queued", "Pending", "Succeeded", "Failed"] = Field(
        default="Pending",
        description=(
            "Queued: due, waiting for a later poll pass (the pass's calls were spent); Pending: claimed and sent, "
            "no answer recorded yet."
        ),
    )
    started_at: datetime | None = None
    finished_at: datetime | None = None
    request_id: str | None = Field(default=None, max_length=256)
    client_token: str | None = Field(default=None, max_length=256, description="Idempotency token of the call.")
    generation: int | None = Field(default=None, description="metadata.generation the action was decided at.")
    message: str | None = Field(default=None, max_length=TEXT_MAX)


class IdleClock(StatusModel):
    policy: str = Field(max_length=NAME_MAX)
    since: datetime


class IdleStatus(StatusModel):
    since: datetime | None = Field(default=None, description="Idle continuously since then.")
    policy: str | None = Field(default=None, max_length=NAME_MAX, description="The deciding IdleCullerPolicy.")
    cpu_percent: float | None = None
    gpu_percent: float | None = None
    sampled_at: datetime | None = None
    enforcement: str | None = Field(
        default=None,
        max_length=1024,
        description="Mechanism in force: Operator, or the cloud's own (Native), and how the cloud's rule differs "
        "from the policies (e.g. a ModelArts IDLE lease's minimum and its own idle thresholds).",
    )
    clocks: list[IdleClock] | None = Field(default=None, max_length=16, description="Idle clock per policy.")
    reported: str | None = Field(default=None, max_length=NAME_MAX, description="Dry-run report sent for policy.")
    native_rule: bool | None = Field(default=None, description="The cloud idle culler was set by the operator.")
    native_shutdown_at: datetime | None = Field(default=None, description="The cloud timer set by the operator.")
    native_error: str | None = Field(default=None, max_length=256, description="Why the cloud rule could not be set.")
    culled_by: str | None = Field(default=None, max_length=NAME_MAX, description="Policy of the open cull.")
    culled_at: datetime | None = None
    would_stop_at: datetime | None = Field(default=None, description="When it would have stopped anyway.")
    hours_saved: dict[str, float] | None = Field(
        default=None, max_length=LIST_MAX, description="Instance-hours saved by closed culls, per policy."
    )
    warning: str | None = Field(default=None, max_length=TEXT_MAX, description="Why no warning can precede a stop.")
    snapshot: str | None = Field(
        default=None, max_length=NAME_MAX, description="The NotebookSnapshot a cull waits for (snapshotBeforeStop)."
    )
    snapshot_requested_at: datetime | None = None


class PendingStop(StatusModel):
    """A stop announced ahead (warnMinutes): it happens at `at` unless the notebook turns busy or is snoozed."""

    at: datetime = Field(description="When the stop happens.")
    reason: str = Field(default="", max_length=TEXT_MAX)
    by: str = Field(default="", max_length=TEXT_MAX, description="spec.shutdown or IdleCullerPolicy <name>.")
    warned_at: datetime | None = Field(default=None, description="When the warning went out.")


class SnoozeStatus(StatusModel):
    """The keep-running-until annotation as the operator applies it."""

    requested: str | None = Field(default=None, max_length=128, description="The annotation's value.")
    seen_at: datetime | None = Field(default=None, description="When the operator first saw that value.")
    until: datetime | None = Field(default=None, description="Stops are postponed until then (after clamping).")
    message: str | None = Field(default=None, max_length=TEXT_MAX, description="Clamped or invalid: why.")


class Cost(StatusModel):
    per_hour: float | None = Field(default=None, description="Price per running hour.")
    currency: str | None = Field(default=None, max_length=16)
    accumulated: float | None = Field(default=None, description="Spent while running since created or adopted.")
    source: str | None = Field(default=None, max_length=TEXT_MAX, description="Where the price comes from.")
    counted_at: datetime | None = Field(default=None, description="Running time is counted up to here.")


class InstanceURLs(StatusModel):
    jupyter_lab: str | None = Field(default=None, max_length=TEXT_MAX)
    web_ide: str | None = Field(default=None, alias="webIDE", max_length=TEXT_MAX)
    terminal: str | None = Field(default=None, max_length=TEXT_MAX)
    instance: str | None = Field(default=None, max_length=TEXT_MAX)


class NotebookInstanceStatus(StatusModel):
    observed_generation: int | None = None
    provider: str | None = Field(default=None, max_length=64)
    instance_id: str | None = Field(default=None, max_length=128)
    phase: Phase | None = None
    cloud_status: str | None = Field(default=None, max_length=128)
    urls: InstanceURLs | None = None
    resources: ResourceRequest | None = None
    instance_type: str | None = Field(default=None, max_length=128)
    created_at: datetime | None = None
    started_at: datetime | None = None
    started_at_source: str | None = Field(
        default=None,
        max_length=64,
        description="What startedAt was taken from: GetLifecycle (PAI-DSW, exact; read once per start for "
        "notebooks with an afterRunning timer or a maxRunningHours cap), GmtModifiedTime (PAI-DSW's estimate: any "
        "modification moves it later), lease.create_at (ModelArts: the lease a start makes), first poll seen Running "
        "(a cloud that says nothing, e.g. a ModelArts notebook without a lease). An estimate errs late: timers fire "
        "later, not earlier.",
    )
    accumulated_running_seconds: int | None = None
    next_shutdown_at: datetime | None = None
    next_shutdown_reason: str | None = Field(default=None, max_length=TEXT_MAX)
    stopped_by: str | None = Field(default=None, max_length=TEXT_MAX, description="Who stopped it last, and why.")
    cloud_reason: str | None = Field(
        default=None,
        max_length=CLOUD_REASON_MAX,
        description="The last reason the cloud gave for the instance's state (a failure's code and text).",
    )
    owned_tags: dict[str, TagValue] | None = Field(
        default=None,
        max_length=32,
        description="The cloud tags the operator set on the instance, and their values: it removes those no longer "
        "declared, and leaves every other tag alone.",
    )
    idle: IdleStatus | None = None
    pending_stop: PendingStop | None = None
    snooze: SnoozeStatus | None = None
    cost: Cost | None = None
    last_action: LastAction | None = None
    conditions: list[Condition] | None = Field(default=None, max_length=16)


class NotebookInstance(Model):
    model_config = ConfigDict(extra="ignore")

    spec: NotebookInstanceSpec
    status: NotebookInstanceStatus | None = None
