"""Connecting a cloud account: ProviderConfig spec + credentials Secret -> a Provider, rebuilt only when
either changed; and what an error on the way (or in a listing) says about the account."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from notebook_operator import metrics
from notebook_operator.api.providerconfig import ProviderConfigSpec
from notebook_operator.kube import Kube, SecretMissing
from notebook_operator.providers.credentials import CredentialsError, from_secret_data
from notebook_operator.providers.errors import AuthFailed, InvalidRequest, PermissionDenied, ProviderError
from notebook_operator.providers.factory import Account, connect
from notebook_operator.registry import AccountState


async def connect_account(state: AccountState, namespace: str, spec: ProviderConfigSpec, kube: Kube) -> None:
    """(Re)build the provider when the spec or the Secret changed. Raises what makes the account unusable."""
    secret_name = spec.credentials_secret_ref.name
    data, version = await kube.read_secret(namespace, secret_name)
    fingerprint = hashlib.sha256(json.dumps([spec.to_wire(), version], sort_keys=True).encode()).hexdigest()
    if state.provider is not None and state.fingerprint == fingerprint:
        return
    credentials = from_secret_data(data, secret_name)
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
    (CredentialsError, AccountProblem(True, "SecretKeyMissing")),
    (AuthFailed, AccountProblem(True, "CredentialsRefused")),
    (PermissionDenied, AccountProblem(True, "PermissionDenied")),  # e.g. the listing itself is not allowed
    (InvalidRequest, AccountProblem(True, "InvalidConfiguration")),
    (ProviderError, AccountProblem(False, "EndpointUnreachable")),  # the cloud or the network: keep polling
)
ACCOUNT_ERRORS = tuple(kind for kind, _ in PROBLEMS)


def account_problem(error: Exception) -> AccountProblem:
    return next(problem for kind, problem in PROBLEMS if isinstance(error, kind))
