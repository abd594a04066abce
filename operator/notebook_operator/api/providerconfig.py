"""ProviderConfig: one cloud account in one region."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from notebook_operator.api.meta import (
    TEXT_MAX,
    Condition,
    LocalObjectReference,
    Model,
    StatusModel,
    cel,
    validations,
)

ProviderName = Literal["pai-dsw", "modelarts", "modelarts-devenv", "roma-connect"]

# Keys read from the credentials Secret. Huawei's AK/SK go in the same two keys.
SECRET_ACCESS_KEY_ID = "accessKeyId"
SECRET_ACCESS_KEY_SECRET = "accessKeySecret"
SECRET_SECURITY_TOKEN = "securityToken"  # optional: Alibaba STS token / Huawei temporary security token


class ProviderConfigSpec(Model):
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.provider == 'pai-dsw' || has(self.projectId)",
                "projectId is required for Huawei Cloud providers (modelarts, modelarts-devenv, roma-connect)",
                ".projectId",
            ),
            cel("self.provider == oldSelf.provider", "provider is immutable", ".provider"),
        )
    )

    provider: ProviderName = Field(description="Which cloud API this account is reached through.")
    region: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z]{2}(-[a-z0-9]+)+$",
        description="Cloud region id, e.g. cn-hangzhou or cn-north-4.",
    )
    endpoint: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="Override of the regional endpoint, e.g. the local emulator http://127.0.0.1:8080.",
    )
    project_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Huawei Cloud project id (required for the Huawei providers).",
    )
    credentials_secret_ref: LocalObjectReference = Field(
        description=(
            "Secret in the same namespace with keys accessKeyId and accessKeySecret (and optionally securityToken)."
        )
    )
    poll_interval_seconds: int = Field(
        default=30, ge=1, le=3600, description="Seconds between two listings of the whole account."
    )
    rate_limit: float = Field(
        default=10.0, gt=0, le=1000, description="Most cloud API requests per second for this account."
    )


class ProviderConfigStatus(StatusModel):
    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(default=None, max_length=16)
    last_successful_list_time: datetime | None = None
    instance_count: int | None = None
    api_error_counts: dict[str, int] | None = Field(
        default=None, max_length=64, description="Cloud API errors since the operator started, by error kind."
    )


class ProviderConfig(Model):
    """The whole object, as the operator reads it."""

    model_config = ConfigDict(extra="ignore")

    spec: ProviderConfigSpec
    status: ProviderConfigStatus | None = None
