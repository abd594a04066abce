"""Exchanging the pod's OIDC token (a projected ServiceAccount token) for temporary cloud credentials.

- Alibaba RRSA: STS AssumeRoleWithOIDC, the parameters alibabacloud_credentials (provider/oidc.py,
  OIDCRoleArnCredentialsProvider) sends - anonymous, Action/Format/Version/DurationSeconds/RoleArn/
  OIDCProviderArn/OIDCToken/RoleSessionName/Timestamp - answered with Credentials {AccessKeyId, AccessKeySecret,
  SecurityToken, Expiration "%Y-%m-%dT%H:%M:%SZ"}. Sent as aliyun/credentials-go (providers/oidc.go) sends them:
  a POST with Action/Version/Format/Timestamp in the query and the rest, the token among them, in the form body -
  a token never goes in a URL, where access logs and proxies keep it (the Python library puts all in the query).
- Huawei OIDC federation, as huaweicloudsdkcore (auth/internal.py IamHelper) does it: POST
  /v3.0/OS-AUTH/id-token/tokens (header X-Idp-Id, body {"auth": {"id_token": {"id": JWT}}}) answers an unscoped
  token in X-Subject-Token; POST /v3.0/OS-CREDENTIAL/securitytokens (body {"auth": {"identity": {"methods":
  ["token"], "token": {"id": TOKEN, "duration_seconds": N}}}}) answers {"credential": {access, secret,
  securitytoken, expires_at}}.

Where the OIDC token comes from is the caller's choice (a TokenSource): a ProviderConfig's is requested for its own
namespace's identity ServiceAccount; the operator's own (ambient, a ClusterProviderConfig's) is read from the file
the operator's environment names - never from a path an object names. The file is read on every exchange: the
kubelet rotates it. Nothing here logs or raises a token.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from notebook_operator.api.providerconfig import (
    ALIBABA_STS_ENDPOINT_ENV,
    ALIBABA_TOKEN_FILE_ENV,
    HUAWEI_IAM_ENDPOINT_ENV,
    HUAWEI_TOKEN_FILE_ENV,
    OidcIdentity,
)
from notebook_operator.providers.credentials import Credentials, IdentityTokenMissing
from notebook_operator.providers.errors import IdentityRefused, ProviderError, Transient, remote_text, status_text
from notebook_operator.providers.identity import ExchangedCredentials, Issued
from notebook_operator.times import parse_rfc3339, rfc3339

ALIBABA_DURATION_S = 3600  # alibabacloud_credentials OIDCRoleArnCredentialsProvider.DEFAULT_DURATION_SECONDS
HUAWEI_DURATION_S = 6 * 60 * 60  # huaweicloudsdkcore FederalAccessor._DEFAULT_DURATION_SECONDS
HUAWEI_IAM_ENDPOINT = "https://iam.myhuaweicloud.com"  # huaweicloudsdkcore IamHelper.DEFAULT_ENDPOINT
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


TokenSource = Callable[[], Awaitable[str]]
ALIBABA_AUDIENCE = "sts.aliyuncs.com"  # what ACK's RRSA tokens carry


def ambient_token(env_name: str, environ: Mapping[str, str] | None = None) -> TokenSource:
    """The operator's own projected token, at the path its environment names (the chart's identity.oidc)."""

    async def read() -> str:
        path = (os.environ if environ is None else environ).get(env_name)
        if not path:
            raise IdentityTokenMissing(f"oidc: the operator has no token file (${env_name} is not set)")
        try:
            token = Path(path).read_text().strip()  # noqa: ASYNC240 (a small local file, once per exchange)
        except OSError as e:
            raise IdentityTokenMissing(f"oidc: cannot read the operator's token file: {e.strerror}") from None
        if not token:
            raise IdentityTokenMissing("oidc: the operator's token file is empty")
        return token

    return read


def ambient_env(provider: str) -> str:
    return ALIBABA_TOKEN_FILE_ENV if provider == "pai-dsw" else HUAWEI_TOKEN_FILE_ENV


def as_url(endpoint: str) -> str:
    """An endpoint given as a host name (as the SDKs allow) is https."""
    return endpoint.rstrip("/") if "://" in endpoint else f"https://{endpoint}"


def alibaba_sts_endpoint(identity: OidcIdentity, region: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return as_url(identity.sts_endpoint or env.get(ALIBABA_STS_ENDPOINT_ENV) or f"sts.{region}.aliyuncs.com")


def huawei_iam_endpoint(identity: OidcIdentity, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return as_url(identity.iam_endpoint or env.get(HUAWEI_IAM_ENDPOINT_ENV) or HUAWEI_IAM_ENDPOINT)


ALIBABA_QUERY = frozenset({"Action", "Version", "Format", "Timestamp"})  # the rest goes in the form body


def alibaba_request(identity: OidcIdentity, token: str, now: float) -> dict[str, str]:
    """The parameters of AssumeRoleWithOIDC, as alibabacloud_credentials sends them."""
    assert identity.role_arn and identity.oidc_provider_arn
    return {
        "Action": "AssumeRoleWithOIDC",
        "Format": "JSON",
        "Version": "2015-04-01",
        "DurationSeconds": str(identity.duration_seconds or ALIBABA_DURATION_S),
        "RoleArn": identity.role_arn,
        "OIDCProviderArn": identity.oidc_provider_arn,
        "OIDCToken": token,
        "RoleSessionName": identity.role_session_name or f"notebook-operator-{int(now)}",
        "Timestamp": rfc3339(datetime.fromtimestamp(now, UTC)),
    }


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _refused(provider: str, operation: str, response: httpx.Response, code: str, message: str) -> ProviderError:
    kwargs: dict[str, Any] = {"provider": provider, "operation": operation, "code": code or str(response.status_code)}
    kwargs["status"] = response.status_code
    if response.status_code >= 500 or response.status_code == 429:
        return Transient(message or status_text(response.status_code), **kwargs)
    return IdentityRefused(message or status_text(response.status_code), **kwargs)


async def assume_role_with_oidc(
    client: httpx.AsyncClient, identity: OidcIdentity, region: str, read_token: TokenSource
) -> Issued:
    token = await read_token()
    now = time.time()
    request = alibaba_request(identity, token, now)
    query = {k: v for k, v in request.items() if k in ALIBABA_QUERY}
    form = {k: v for k, v in request.items() if k not in ALIBABA_QUERY}
    try:
        response = await client.post(alibaba_sts_endpoint(identity, region) + "/", params=query, data=form)
    except httpx.HTTPError as e:
        raise Transient(
            f"STS unreachable: {type(e).__name__}", provider="pai-dsw", operation="AssumeRoleWithOIDC"
        ) from None
    body = _body(response)
    found = body.get("Credentials") if response.status_code == 200 else None
    if not isinstance(found, dict) or not {"AccessKeyId", "AccessKeySecret", "SecurityToken"} <= set(found):
        error = _refused(
            "pai-dsw", "AssumeRoleWithOIDC", response, str(body.get("Code", "")), remote_text(body.get("Message", ""))
        )
        error.request_id = body.get("RequestId")
        raise error
    expires = parse_rfc3339(found.get("Expiration"))
    credentials = Credentials(found["AccessKeyId"], found["AccessKeySecret"], found["SecurityToken"])
    return Issued(
        credentials, expires.timestamp() if expires else now + float(identity.duration_seconds or ALIBABA_DURATION_S)
    )


JSON_TYPE = {"Content-Type": "application/json;charset=UTF-8"}
ID_TOKEN_PATH = "/v3.0/OS-AUTH/id-token/tokens"
SECURITY_TOKEN_PATH = "/v3.0/OS-CREDENTIAL/securitytokens"


def huawei_id_token_request(idp_id: str, token: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(path, headers, body) of IamHelper.get_create_unscoped_token_by_id_token_request."""
    return ID_TOKEN_PATH, {"X-Idp-Id": idp_id, **JSON_TYPE}, {"auth": {"id_token": {"id": token}}}


def huawei_security_token_request(subject: str, duration: int) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(path, headers, body) of IamHelper.get_create_temporary_access_key_by_token_request; the token also goes in
    X-Auth-Token, as IAM's API reference asks."""
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": subject, "duration_seconds": duration}}}}
    return SECURITY_TOKEN_PATH, {"X-Auth-Token": subject, **JSON_TYPE}, body


async def huawei_federate(
    client: httpx.AsyncClient, identity: OidcIdentity, provider: str, read_token: TokenSource
) -> Issued:
    token = await read_token()
    iam = huawei_iam_endpoint(identity)
    assert identity.idp_id
    duration = identity.duration_seconds or HUAWEI_DURATION_S
    try:
        path, headers, body = huawei_id_token_request(identity.idp_id, token)
        unscoped = await client.post(iam + path, headers=headers, json=body)
        subject = unscoped.headers.get("X-Subject-Token")
        if unscoped.status_code >= 300 or not subject:
            raise _huawei_refused(provider, "CreateTokenWithIdToken", unscoped)
        path, headers, body = huawei_security_token_request(subject, duration)
        issued = await client.post(iam + path, headers=headers, json=body)
    except httpx.HTTPError as e:
        raise Transient(
            f"IAM unreachable: {type(e).__name__}", provider=provider, operation="OIDC federation"
        ) from None
    credential = _body(issued).get("credential") if issued.status_code < 300 else None
    if not isinstance(credential, dict) or not {"access", "secret", "securitytoken"} <= set(credential):
        raise _huawei_refused(provider, "CreateTemporaryAccessKeyByToken", issued)
    expires = parse_rfc3339(credential.get("expires_at"))
    credentials = Credentials(credential["access"], credential["secret"], credential["securitytoken"])
    return Issued(credentials, expires.timestamp() if expires else time.time() + duration)


def _huawei_refused(provider: str, operation: str, response: httpx.Response) -> ProviderError:
    body = _body(response)
    nested = body.get("error")
    error: dict[str, Any] = nested if isinstance(nested, dict) else body
    code = str(error.get("code") or error.get("error_code") or "")
    message = remote_text(error.get("message") or error.get("error_msg") or "")
    return _refused(provider, operation, response, code, message)


def oidc_source(identity: OidcIdentity, provider: str, region: str, read_token: TokenSource) -> ExchangedCredentials:
    """Temporary credentials for one account, exchanged on first use and refreshed before they expire. Each
    exchange opens its own short-lived client (it happens once per lifetime), which follows no redirect."""

    async def exchange() -> Issued:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            if provider == "pai-dsw":
                return await assume_role_with_oidc(client, identity, region, read_token)
            return await huawei_federate(client, identity, provider, read_token)

    return ExchangedCredentials(exchange)
