"""ProviderConfig: one cloud account in one region."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from notebook_operator.api.meta import (
    NAME_MAX,
    TEXT_MAX,
    Condition,
    LabelSelector,
    LocalObjectReference,
    Model,
    StatusModel,
    cel,
    validations,
)
from notebook_operator.api.notify import NotifySpec
from notebook_operator.api.tags import TagValue, tags_field

ProviderName = Literal["pai-dsw", "modelarts", "modelarts-devenv", "roma-connect"]

# Keys read from the credentials Secret. Huawei's AK/SK go in the same two keys.
SECRET_ACCESS_KEY_ID = "accessKeyId"
SECRET_ACCESS_KEY_SECRET = "accessKeySecret"
SECRET_SECURITY_TOKEN = "securityToken"  # optional: Alibaba STS token / Huawei temporary security token
SECRET_IAM_TOKEN = "iamToken"  # Huawei only, instead of the key pair: an IAM token sent as X-Auth-Token

# What the pod identity webhooks inject (ACK's ack-pod-identity-webhook; Huawei's SDK reads the same names).
ALIBABA_TOKEN_FILE_ENV = "ALIBABA_CLOUD_OIDC_TOKEN_FILE"
ALIBABA_STS_ENDPOINT_ENV = "ALIBABA_CLOUD_STS_ENDPOINT"
HUAWEI_TOKEN_FILE_ENV = "HUAWEICLOUD_SDK_ID_TOKEN_FILE"
HUAWEI_IAM_ENDPOINT_ENV = "HUAWEICLOUD_SDK_IAM_ENDPOINT"


class OidcIdentity(Model):
    """Keyless credentials: a Kubernetes ServiceAccount token exchanged for temporary ones - Alibaba RRSA (STS
    AssumeRoleWithOIDC) for pai-dsw, Huawei OIDC federation (IAM id-token -> security token) otherwise. A
    ProviderConfig's token is requested for the ServiceAccount notebook-operator-identity of its own namespace; a
    ClusterProviderConfig's is the operator's own (the file the chart's identity.oidc mounts)."""

    role_arn: str | None = Field(
        default=None, max_length=512, pattern=r"^acs:ram::", description="pai-dsw: the RAM role to assume."
    )
    oidc_provider_arn: str | None = Field(
        default=None, max_length=512, pattern=r"^acs:ram::", description="pai-dsw: the RAM OIDC provider."
    )
    role_session_name: str | None = Field(
        default=None, min_length=2, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$", description="pai-dsw (optional)."
    )
    sts_endpoint: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="pai-dsw: STS host or URL (default $ALIBABA_CLOUD_STS_ENDPOINT, else sts.REGION.aliyuncs.com).",
    )
    idp_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="Huawei providers: the IAM identity provider id."
    )
    iam_endpoint: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="Huawei providers: IAM endpoint URL (default $HUAWEICLOUD_SDK_IAM_ENDPOINT, else the SDK's).",
    )
    audience: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description=(
            "Audience of the token requested for the namespace's identity ServiceAccount: default sts.aliyuncs.com "
            "for pai-dsw; the identity provider's client id for the Huawei providers (required there)."
        ),
    )
    duration_seconds: int | None = Field(
        default=None,
        ge=900,
        le=86400,
        description="Lifetime of the temporary credentials (pai-dsw: default 3600, at most 43200; Huawei: 21600).",
    )


class Pricing(Model):
    """Prices the cloud does not publish through its API (ModelArts) or that the account pays differently."""

    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. CNY.")
    per_hour: dict[str, Annotated[float, Field(ge=0)]] = Field(
        max_length=256, description="Price per running hour by instance type (PAI EcsSpec) or flavor (ModelArts)."
    )


ACCOUNT_RULES = (
    cel(
        "self.provider == 'pai-dsw' || has(self.projectId)",
        "projectId is required for Huawei Cloud providers (modelarts, modelarts-devenv, roma-connect)",
        ".projectId",
    ),
    cel("self.provider == oldSelf.provider", "provider is immutable", ".provider"),
    cel(
        "has(self.credentialsSecretRef) != has(self.oidc)",
        "exactly one of spec.credentialsSecretRef or spec.oidc must be set",
    ),
    cel(
        "!has(self.oidc) || self.provider != 'pai-dsw' || (has(self.oidc.roleArn) && has(self.oidc.oidcProviderArn))",
        "oidc.roleArn and oidc.oidcProviderArn are required for pai-dsw",
        ".oidc",
    ),
    cel(
        "!has(self.oidc) || self.provider == 'pai-dsw' || has(self.oidc.idpId)",
        "oidc.idpId is required for the Huawei Cloud providers",
        ".oidc",
    ),
    cel(
        "!has(self.oidc) || self.provider != 'pai-dsw' || !has(self.oidc.durationSeconds) || "
        "self.oidc.durationSeconds <= 43200",
        "oidc.durationSeconds is at most 43200 for pai-dsw",
        ".oidc",
    ),
)


class AccountSpec(Model):
    """What ProviderConfig and ClusterProviderConfig share: one cloud account in one region."""

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
        description=(
            "Override of the regional endpoint, e.g. the local emulator http://127.0.0.1:8080 (in a ProviderConfig "
            "only where the operator's --allowed-endpoint allows it)."
        ),
    )
    project_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Huawei Cloud project id (required for the Huawei providers).",
    )
    oidc: OidcIdentity | None = Field(default=None, description="Keyless: exchange a ServiceAccount token.")
    poll_interval_seconds: int = Field(
        default=30, ge=1, le=3600, description="Seconds between two listings of the whole account."
    )
    rate_limit: float = Field(
        default=10.0,
        gt=0,
        le=1000,
        description=(
            "Most cloud API requests per second for this account. A poll pass spends at most rateLimit x "
            "pollIntervalSeconds (less the listing's calls) on actions; due actions beyond that wait for the next "
            "pass (lastAction Queued)."
        ),
    )
    batch_size: int = Field(
        default=50,
        ge=1,
        le=500,
        description=(
            "pai-dsw: most instances per StopInstances call when a poll pass stops several (our choice: the cloud "
            "documents no maximum)."
        ),
    )
    pricing: Pricing | None = Field(
        default=None, description="Prices per hour by instance type or flavor; they override the cloud's own."
    )
    notify: NotifySpec | None = Field(
        default=None, description="Default chat webhook for this account's notebooks (a policy's notify wins)."
    )
    default_tags: dict[str, TagValue] | None = tags_field(
        "Cloud tags on every instance this account's NotebookInstances manage (e.g. a cost center); a "
        "NotebookInstance's own tags win."
    )

    @property
    def secret_ref(self) -> tuple[str | None, str] | None:
        """(namespace, or None for the object's own; name) of the credentials Secret."""
        return None


class ProviderConfigSpec(AccountSpec):
    model_config = ConfigDict(
        json_schema_extra=validations(
            *ACCOUNT_RULES,
            cel(
                "!has(self.oidc) || self.provider == 'pai-dsw' || has(self.oidc.audience)",
                "oidc.audience (the identity provider's client id) is required for the Huawei Cloud providers",
                ".oidc",
            ),
        )
    )

    credentials_secret_ref: LocalObjectReference | None = Field(
        default=None,
        description=(
            "Secret in the same namespace with keys accessKeyId and accessKeySecret (and optionally securityToken); "
            "for Huawei, iamToken instead is an IAM token. Or use oidc."
        ),
    )

    @property
    def secret_ref(self) -> tuple[str | None, str] | None:
        return (None, self.credentials_secret_ref.name) if self.credentials_secret_ref else None


class SecretReference(Model):
    name: str = Field(min_length=1, max_length=NAME_MAX, description="The Secret's name.")
    namespace: str = Field(min_length=1, max_length=63, description="The Secret's namespace.")


class ClusterProviderConfigSpec(AccountSpec):
    """An account the cluster's admin owns: its oidc uses the operator's own token, its endpoints are not limited,
    and namespaceSelector says which namespaces' NotebookInstances may use it."""

    model_config = ConfigDict(json_schema_extra=validations(*ACCOUNT_RULES))

    credentials_secret_ref: SecretReference | None = Field(
        default=None,
        description="Secret with keys accessKeyId and accessKeySecret (as in ProviderConfig), in any namespace.",
    )
    namespace_selector: LabelSelector | None = Field(
        default=None,
        description="Namespaces whose NotebookInstances may use this account: absent means none, {} means all.",
    )

    @property
    def secret_ref(self) -> tuple[str | None, str] | None:
        ref = self.credentials_secret_ref
        return (ref.namespace, ref.name) if ref else None


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


class ClusterProviderConfig(Model):
    model_config = ConfigDict(extra="ignore")

    spec: ClusterProviderConfigSpec
    status: ProviderConfigStatus | None = None
