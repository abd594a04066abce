"""Connecting a cloud account: ProviderConfig spec + credentials Secret -> a Provider, rebuilt only when
either changed; and what an error on the way (or in a listing) says about the account."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from notebook_operator import metrics
from notebook_operator.api.providerconfig import ProviderConfigSpec
from notebook_operator.kube import Kube, SecretMissing
from notebook_operator.providers.credentials import (
    Credentials,
    CredentialsError,
    IdentityTokenMissing,
    from_secret_data,
)
from notebook_operator.providers.errors import (
    AuthFailed,
    IdentityRefused,
    InvalidRequest,
    PermissionDenied,
    ProviderError,
)
from notebook_operator.providers.factory import Account, connect
from notebook_operator.providers.identity import CredentialSource
from notebook_operator.providers.oidc import oidc_source
from notebook_operator.registry import AccountState


async def connect_account(state: AccountState, namespace: str, spec: ProviderConfigSpec, kube: Kube) -> None:
    """(Re)build the provider when the spec or the Secret changed. Raises what makes the account unusable."""
    version = ""
    if spec.credentials_secret_ref is not None:
        data, version = await kube.read_secret(namespace, spec.credentials_secret_ref.name)
    # What the connection is built from: prices and the chat webhook are read per pass, not connected.
    connection = {k: v for k, v in spec.to_wire().items() if k not in ("pricing", "notify")}
    fingerprint = hashlib.sha256(json.dumps([connection, version], sort_keys=True).encode()).hexdigest()
    if state.provider is not None and state.fingerprint == fingerprint:
        return
    credentials: Credentials | CredentialSource
    if spec.oidc is not None:
        credentials = oidc_source(spec.oidc, spec.provider, spec.region)
    else:
        assert spec.credentials_secret_ref is not None  # exactly one of the two (CRD rule)
        credentials = from_secret_data(data, spec.credentials_secret_ref.name)
        if credentials.iam_token and spec.provider == "pai-dsw":
            raise CredentialsError(f"Secret {spec.credentials_secret_ref.name}: iamToken is for the Huawei providers")
    if state.provider is not None:
        await state.provider.aclose()
        state.provider = None
    account = Account(spec.provider, spec.region, credentials, spec.endpoint, spec.project_id, spec.rate_limit)
    state.provider = connect(account, observer=metrics.observe_api_call)
    state.fingerprint = fingerprint


@dataclass(frozen=True)
class AccountProblem:
    stalled: bool  # nothing works until someone fixes it (vs. transient: keep polling)
    reason: str  # the Ready condition's reason and the Event's


# Most specific first: PermissionDenied before the ProviderError it derives from.
PROBLEMS: tuple[tuple[type[Exception], AccountProblem], ...] = (
    (SecretMissing, AccountProblem(True, "SecretNotFound")),
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
