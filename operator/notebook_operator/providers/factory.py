"""Connecting is separate from acting: credentials + where -> a ready Provider for one account."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from notebook_operator.providers import endpoints
from notebook_operator.providers.base import Provider
from notebook_operator.providers.credentials import Credentials
from notebook_operator.providers.devenv.provider import DevEnvironProvider
from notebook_operator.providers.errors import InvalidRequest
from notebook_operator.providers.http import CallObserver, CloudHTTP, RetryPolicy
from notebook_operator.providers.huawei import error_mapper
from notebook_operator.providers.identity import CredentialSource
from notebook_operator.providers.modelarts.provider import ModelArtsProvider
from notebook_operator.providers.pai.provider import PaiDswProvider
from notebook_operator.providers.pai.schemas import map_error as pai_errors
from notebook_operator.providers.roma.provider import RomaConnectProvider
from notebook_operator.providers.signers import AcsV3Auth, HuaweiAkSkAuth

PROVIDERS = ("pai-dsw", "modelarts", "modelarts-devenv", "roma-connect")


@dataclass(frozen=True)
class Account:
    provider: str
    region: str
    credentials: Credentials | CredentialSource  # fixed, or refreshed on every request
    endpoint: str | None = None
    project_id: str | None = None
    rate_limit: float = 10.0
    plain_http: bool = False  # the admin's --allowed-endpoint names this http endpoint (check_endpoint)


def connect(
    account: Account,
    *,
    observer: CallObserver | None = None,
    retry: RetryPolicy | None = None,
    timeout: httpx.Timeout | None = None,
) -> Provider:
    if account.provider not in PROVIDERS:
        raise InvalidRequest(f"unknown provider {account.provider!r}: one of {', '.join(PROVIDERS)}")
    endpoint = endpoints.resolve(account.provider, account.region, account.endpoint)
    options = {"rate_limit": account.rate_limit, "retry": retry, "timeout": timeout, "observer": observer,
               "plain_http": account.plain_http}  # fmt: skip
    if account.provider == "pai-dsw":
        http = CloudHTTP(account.provider, endpoint, AcsV3Auth(account.credentials), pai_errors, **options)  # type: ignore[arg-type]
        return PaiDswProvider(http)
    if not account.project_id:
        raise InvalidRequest(f"{account.provider} needs a project id")
    auth = HuaweiAkSkAuth(account.credentials, account.project_id)
    http = CloudHTTP(account.provider, endpoint, auth, error_mapper(account.provider), **options)  # type: ignore[arg-type]
    if account.provider == "modelarts":
        return ModelArtsProvider(http, account.project_id)
    if account.provider == "modelarts-devenv":
        return DevEnvironProvider(http, account.project_id)
    return RomaConnectProvider(http, account.project_id)
