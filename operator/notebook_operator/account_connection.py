"""Connecting a cloud account: ProviderConfig spec + credentials Secret -> a Provider, rebuilt only when
either changed; and what an error on the way (or in a listing) says about the account."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from notebook_operator import metrics
from notebook_operator.api.providerconfig import AccountSpec
from notebook_operator.kube import Kube, SecretMissing
from notebook_operator.providers.credentials import (
    Credentials,
    CredentialsError,
    IdentityTokenMissing,
    from_secret_data,
)
from notebook_operator.providers.egress import AllowList, NotAllowed, endpoint_allow_list, require_allowed
from notebook_operator.providers.errors import (
    AuthFailed,
    IdentityRefused,
    InvalidRequest,
    PermissionDenied,
    ProviderError,
)
from notebook_operator.providers.factory import Account, connect
from notebook_operator.providers.identity import CredentialSource
from notebook_operator.providers.oidc import (
    ALIBABA_AUDIENCE,
    TokenSource,
    ambient_env,
    ambient_token,
    as_url,
    oidc_source,
)
from notebook_operator.registry import AccountState
from notebook_operator.tenant_token import IdentityServiceAccountMissing, TenantToken

DEFAULT_TENANT_SERVICE_ACCOUNT = "notebook-operator-identity"


@dataclass(frozen=True)
class Tenancy:
    """What the admin lets a namespace's ProviderConfig use (the operator's flags)."""

    tenant_service_account: str = DEFAULT_TENANT_SERVICE_ACCOUNT
    namespaced_ambient_credentials: bool = False  # brings back the confused deputy: see README
    allowed_endpoints: AllowList = field(default_factory=lambda: endpoint_allow_list(()))


class EndpointNotAllowed(NotAllowed):
    pass


def check_endpoints(spec: AccountSpec, allowed: AllowList) -> None:
    """A namespace's ProviderConfig may only name endpoints the admin allows; the defaults (built from the region)
    are the clouds' own and the environment's are the admin's."""
    named = [("spec.endpoint", spec.endpoint)]
    if spec.oidc is not None:
        named += [("spec.oidc.stsEndpoint", spec.oidc.sts_endpoint), ("spec.oidc.iamEndpoint", spec.oidc.iam_endpoint)]
    for what, url in named:
        if url:
            try:
                require_allowed(as_url(url), allowed, what)
            except NotAllowed as e:
                raise EndpointNotAllowed(str(e)) from None


def plain_http_allowed(endpoint: str | None, allowed: AllowList) -> bool:
    """Plain http beyond loopback goes only to an origin the admin allowed by name (an http:// --allowed-endpoint,
    e.g. the emulator on a node's network); the default allow list is https only."""
    try:
        return bool(endpoint) and allowed.allows(as_url(endpoint or ""))
    except NotAllowed:
        return False


def token_source(namespace: str | None, spec: AccountSpec, kube: Kube, tenancy: Tenancy) -> TokenSource:
    """A ClusterProviderConfig (namespace None) uses the operator's own token; a ProviderConfig its namespace's
    identity ServiceAccount's, unless the admin turned ambient credentials on for namespaces."""
    assert spec.oidc is not None
    if namespace is None or tenancy.namespaced_ambient_credentials:
        return ambient_token(ambient_env(spec.provider))
    audience = spec.oidc.audience or ALIBABA_AUDIENCE
    return TenantToken(kube, namespace, tenancy.tenant_service_account, audience)


async def read_credentials_secret(spec: AccountSpec, namespace: str | None, kube: Kube) -> tuple[dict[str, str], str]:
    """The credentials Secret's (data, resourceVersion); empty for a keyless account. Its namespace: the one a
    ClusterProviderConfig names, else the ProviderConfig's own."""
    secret = spec.secret_ref
    if secret is None:
        return {}, ""
    return await kube.read_secret(secret[0] or namespace or "", secret[1])


def secret_credentials(spec: AccountSpec, data: dict[str, str]) -> Credentials:
    """The key pair (or Huawei IAM token) of a Secret-backed account."""
    assert spec.secret_ref is not None  # exactly one of credentialsSecretRef and oidc (CRD rule)
    name = spec.secret_ref[1]
    credentials = from_secret_data(data, name)
    if credentials.iam_token and spec.provider == "pai-dsw":
        raise CredentialsError(f"Secret {name}: iamToken is for the Huawei providers")
    return credentials


async def connect_account(
    state: AccountState, namespace: str | None, spec: AccountSpec, kube: Kube, tenancy: Tenancy
) -> None:
    """(Re)build the provider when the spec or the Secret changed. Raises what makes the account unusable.
    `namespace` is the ProviderConfig's, None for a ClusterProviderConfig."""
    if namespace is not None:
        try:
            check_endpoints(spec, tenancy.allowed_endpoints)
        except EndpointNotAllowed:
            if state.provider is not None:  # connected to what was allowed before: not any more
                await state.provider.aclose()
                state.provider, state.fingerprint = None, ""
            raise
    data, version = await read_credentials_secret(spec, namespace, kube)
    # What the connection is built from: prices and the chat webhook are read per pass, not connected.
    connection = {k: v for k, v in spec.to_wire().items() if k not in ("pricing", "notify", "namespaceSelector")}
    fingerprint = hashlib.sha256(json.dumps([connection, version], sort_keys=True).encode()).hexdigest()
    if state.provider is not None and state.fingerprint == fingerprint:
        return
    credentials: Credentials | CredentialSource
    if spec.oidc is not None:
        credentials = oidc_source(spec.oidc, spec.provider, spec.region, token_source(namespace, spec, kube, tenancy))
    else:
        credentials = secret_credentials(spec, data)
    if state.provider is not None:
        await state.provider.aclose()
        state.provider = None
    account = Account(
        spec.provider,
        spec.region,
        credentials,
        spec.endpoint,
        spec.project_id,
        spec.rate_limit,
        plain_http_allowed(spec.endpoint, tenancy.allowed_endpoints),
    )
    state.provider = connect(account, observer=metrics.observe_api_call)
    state.fingerprint = fingerprint


@dataclass(frozen=True)
class AccountProblem:
    stalled: bool  # nothing works until someone fixes it (vs. transient: keep polling)
    reason: str  # the Ready condition's reason and the Event's


# Most specific first: PermissionDenied before the ProviderError it derives from.
PROBLEMS: tuple[tuple[type[Exception], AccountProblem], ...] = (
    (SecretMissing, AccountProblem(True, "SecretNotFound")),
    (EndpointNotAllowed, AccountProblem(True, "EndpointNotAllowed")),
    (IdentityServiceAccountMissing, AccountProblem(True, "IdentityServiceAccountMissing")),
    (IdentityTokenMissing, AccountProblem(True, "IdentityTokenMissing")),
    (CredentialsError, AccountProblem(True, "SecretKeyMissing")),
    (IdentityRefused, AccountProblem(True, "IdentityRefused")),  # the cloud's code is in the message
    (AuthFailed, AccountProblem(True, "CredentialsRefused")),
    (PermissionDenied, AccountProblem(True, "PermissionDenied")),  # e.g. the listing itself is not allowed
    (InvalidRequest, AccountProblem(True, "InvalidConfiguration")),
    (ProviderError, AccountProblem(False, "EndpointUnreachable")),  # the cloud or the network: keep polling
)
ACCOUNT_ERRORS = tuple(kind for kind, _ in PROBLEMS)


def account_problem(error: Exception) -> AccountProblem:
    return next(problem for kind, problem in PROBLEMS if isinstance(error, kind))
