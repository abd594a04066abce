"""IdleCullerPolicy: one idleness rule for every NotebookInstance its selector matches."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from notebook_operator.api.formats import CRON_PATTERN, DURATION_PATTERN, time_zone_rule
from notebook_operator.api.meta import TEXT_MAX, Condition, LabelSelector, Model, StatusModel, cel, validations
from notebook_operator.api.notebooksnapshot import REPOSITORY_PATTERN, SwrOrganization
from notebook_operator.api.notify import NotifySpec, max_snooze_hours_field, warn_minutes_field

CullAction = Literal["Stop", "StopAndSaveImage"]
Enforcement = Literal["Operator", "Native"]


class ActiveWindow(Model):
    """A window opening whenever `schedule` fires and lasting `duration`: culling only happens inside."""

    schedule: str = Field(max_length=128, pattern=CRON_PATTERN, description="Cron expression: when a window opens.")
    duration: str = Field(
        max_length=64,
        pattern=DURATION_PATTERN,
        description="How long each window stays open, e.g. 10h.",
        json_schema_extra=validations(cel("duration(self) >= duration('1m')", "duration must be at least 1m")),
    )
    time_zone: str = Field(
        default="UTC",
        max_length=64,
        description="IANA time zone of schedule.",
        json_schema_extra=validations(cel(time_zone_rule(), "timeZone must be an IANA time zone name")),
    )


class IdleCullerPolicySpec(Model):
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.cpuPercent) || has(self.gpuPercent) || has(self.maxRunningHours)",
                "set at least one of cpuPercent, gpuPercent or maxRunningHours",
            ),
            cel(
                "!(has(self.cpuPercent) || has(self.gpuPercent)) || has(self.idleMinutes)",
                "idleMinutes is required with cpuPercent or gpuPercent",
                ".idleMinutes",
            ),
            cel(
                "!has(self.idleMinutes) || !has(self.windowMinutes) || self.windowMinutes <= self.idleMinutes",
                "windowMinutes must not exceed idleMinutes",
                ".windowMinutes",
            ),
        )
    )

    selector: LabelSelector = Field(description="NotebookInstances in this namespace the policy applies to.")
    cpu_percent: int | None = Field(default=None, ge=1, le=100, description="Idle while CPU use is below this.")
    gpu_percent: int | None = Field(
        default=None, ge=1, le=100, description="Idle while GPU use is below this (GPU instances only)."
    )
    idle_minutes: int | None = Field(default=None, ge=1, le=43200, description="Continuous idleness before acting.")
    window_minutes: int = Field(default=5, ge=1, le=1440, description="Evaluation window of each metrics sample.")
    action: CullAction = "Stop"
    active_windows: list[ActiveWindow] | None = Field(
        default=None, max_length=16, description="Only cull inside these windows (default: always)."
    )
    max_running_hours: float | None = Field(
        default=None, gt=0, le=8760, description="Hard cap on continuous running time, whatever the activity."
    )
    dry_run: bool = Field(default=False, description="Decide and report, never stop.")
    enforcement: Enforcement = Field(
        default="Operator",
        description="Operator: the operator reads metrics and stops. Native: the cloud's own culler/lease.",
    )
    warn_minutes: int | None = warn_minutes_field("a cull")
    max_snooze_hours: float = max_snooze_hours_field("a cull")
    notify: NotifySpec | None = Field(default=None, description="Send warnings and stops to a chat webhook.")
    snapshot_before_stop: bool = Field(
        default=False,
        description="Save the notebook's environment (a NotebookSnapshot) before a cull stops it. The stop waits "
        "for it, at most snapshotTimeoutMinutes; a failed snapshot does not block the stop, and the stop says so.",
    )
    snapshot_timeout_minutes: int = Field(
        default=30, ge=1, le=1440, description="How long a cull waits for its snapshot."
    )
    snapshot_image_repository: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_MAX,
        pattern=rf"^{REPOSITORY_PATTERN}$",
        description="PAI-DSW: the registry repository snapshots are pushed to (tagged <notebook>-<time>).",
    )
    snapshot_image_namespace: SwrOrganization | None = Field(
        default=None, description="ModelArts: the SWR organization of the saved images (named after the notebook)."
    )


class IdleCullerPolicyStatus(StatusModel):
    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(default=None, max_length=16)
    matched: int | None = Field(default=None, description="Selected and not exempt.")
    exempt: int | None = Field(default=None, description="Selected but exempt by annotation.")
    running: int | None = None
    idle: int | None = None
    stopped: int | None = Field(default=None, description="Instances stopped by this policy.")
    last_evaluation_time: datetime | None = None
    estimated_hours_saved: float | None = None
    estimated_savings: dict[str, float] | None = Field(
        default=None, max_length=16, description="Money the stops saved, by currency (hours saved x price per hour)."
    )


class IdleCullerPolicy(Model):
    model_config = ConfigDict(extra="ignore")

    spec: IdleCullerPolicySpec
    status: IdleCullerPolicyStatus | None = None
