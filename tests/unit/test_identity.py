"""Keyless credentials: when they are refreshed, and that both exchanges send what the official libraries send
(alibabacloud_credentials provider/oidc.py; huaweicloudsdkcore auth/internal.py IamHelper)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from notebook_operator.api.providerconfig import OidcIdentity
from notebook_operator.providers.credentials import Credentials
from notebook_operator.providers.errors import IdentityRefused
from notebook_operator.providers.identity import ExchangedCredentials, Issued, refresh_at
from notebook_operator.providers.oidc import (
    alibaba_request,
    alibaba_sts_endpoint,
    huawei_id_token_request,
    huawei_security_token_request,
)


@pytest.mark.parametrize(("lifetime", "lead"), [
    (43200, 900),  # the libraries' 15 minutes
    (7200, 900),
    (3600, 720),  # a fifth, when that is shorter
    (900, 180),
    (60, 12),
])  # fmt: skip
def test_refreshed_fifteen_minutes_or_a_fifth_of_the_lifetime_before_expiry(lifetime: int, lead: int) -> None:
    assert refresh_at(1000.0, 1000.0 + lifetime) == pytest.approx(1000.0 + lifetime - lead)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_one_exchange_per_lifetime_shared_by_concurrent_requests() -> None:
    clock, calls = Clock(), []

    async def exchange() -> Issued:
        calls.append(clock.now)
        await asyncio.sleep(0.01)
        return Issued(Credentials(f"AK{len(calls)}", "sk", "token"), clock.now + 900)

    source = ExchangedCredentials(exchange, clock)
    first = await asyncio.gather(*(source.fresh() for _ in range(20)))
    assert {c.access_key_id for c in first} == {"AK1"} and len(calls) == 1
    clock.now += 719  # 900 s lifetime: refreshed 180 s before expiry
    assert (await source.fresh()).access_key_id == "AK1"
    clock.now += 2
    assert (await source.fresh()).access_key_id == "AK2" and source.exchanges == 2


async def test_a_refused_exchange_is_not_retried_before_its_backoff() -> None:
    clock, calls = Clock(), []

    async def exchange() -> Issued:
        calls.append(clock.now)
        raise IdentityRefused("audience", code="AuthenticationFail.OIDCToken.AudienceNotMatch")

    source = ExchangedCredentials(exchange, clock)
    for _ in range(10):
        with pytest.raises(IdentityRefused):
            await source.fresh()
    assert len(calls) == 1
    clock.now += 5
    with pytest.raises(IdentityRefused):
        await source.fresh()
    clock.now += 5  # the backoff doubled to 10 s
    with pytest.raises(IdentityRefused):
        await source.fresh()
    assert len(calls) == 2


def test_assume_role_with_oidc_sends_what_alibabacloud_credentials_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alibabacloud_credentials.provider import oidc as official
    from Tea.core import TeaCore

    token_file = tmp_path / "token"
    token_file.write_text("eyJ.payload.sig")  # as the kubelet writes it (ours also strips a trailing newline)
    sent: list[Any] = []

    class Answer:
        status_code = 200
        body = json.dumps({"Credentials": {"AccessKeyId": "STS.a", "AccessKeySecret": "s", "SecurityToken": "t",
                                           "Expiration": "2099-01-01T00:00:00Z"}}).encode()  # fmt: skip

    def do_action(request: Any, runtime: Any) -> Answer:
        sent.append(request)
        return Answer()

    monkeypatch.setattr(TeaCore, "do_action", staticmethod(do_action))
    provider = official.OIDCRoleArnCredentialsProvider(
        role_arn="acs:ram::1234:role/nb", oidc_provider_arn="acs:ram::1234:oidc-provider/ack", duration_seconds=1800,
        oidc_token_file_path=str(token_file), role_session_name="s1", sts_region_id="cn-hangzhou",
    )  # fmt: skip
    provider.get_credentials()
    theirs = dict(sent[0].query)
    identity = OidcIdentity(role_arn="acs:ram::1234:role/nb", oidc_provider_arn="acs:ram::1234:oidc-provider/ack",
                            duration_seconds=1800, role_session_name="s1")  # fmt: skip
    ours = alibaba_request(identity, "eyJ.payload.sig", 0)
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k != "Timestamp"} == {k: v for k, v in theirs.items() if k != "Timestamp"}
    assert sent[0].protocol == "https"  # the Python library GETs with all in the query; ours POSTs the token
    assert alibaba_sts_endpoint(identity, "cn-hangzhou", {}) == f"https://{sent[0].headers['host']}"


async def test_the_oidc_token_goes_in_the_form_body_never_in_the_url() -> None:
    """As aliyun/credentials-go (providers/oidc.go) sends it: POST, Action/Version/Format/Timestamp in the query, the
    rest - the token among them - in an application/x-www-form-urlencoded body. A URL ends up in access logs."""
    import httpx

    from notebook_operator.providers.oidc import assume_role_with_oidc

    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        issued = {
            "AccessKeyId": "a",
            "AccessKeySecret": "s",
            "SecurityToken": "t",
            "Expiration": "2099-01-01T00:00:00Z",
        }
        return httpx.Response(200, json={"Credentials": issued})

    identity = OidcIdentity(role_arn="acs:ram::1234:role/nb", oidc_provider_arn="acs:ram::1234:oidc-provider/ack")

    async def token() -> str:
        return "eyJ.secret-token.sig"

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        await assume_role_with_oidc(client, identity, "cn-hangzhou", token)
    (request,) = seen
    assert request.method == "POST" and "secret-token" not in str(request.url)
    assert set(request.url.params) == {"Action", "Version", "Format", "Timestamp"}
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form["OIDCToken"] == "eyJ.secret-token.sig" and {"RoleArn", "OIDCProviderArn", "RoleSessionName"} <= set(
        form
    )


def test_federation_sends_what_huaweicloudsdkcore_sends() -> None:
    from huaweicloudsdkcore.auth.internal import IamHelper
    from huaweicloudsdkcore.http.http_config import HttpConfig

    config = HttpConfig.get_default_config()
    theirs = IamHelper.get_create_unscoped_token_by_id_token_request(config, "https://iam.example", "idp-1", "JWT")
    path, headers, body = huawei_id_token_request("idp-1", "JWT")
    assert path == theirs.resource_path and json.loads(theirs.body) == body
    assert {k: v for k, v in theirs.header_params.items() if k != "User-Agent"} == headers
    theirs = IamHelper.get_create_temporary_access_key_by_token_request(config, "https://iam.example", "TOKEN", 21600)
    path, headers, body = huawei_security_token_request("TOKEN", 21600)
    assert path == theirs.resource_path and json.loads(theirs.body) == body
    assert headers.items() >= {k: v for k, v in theirs.header_params.items() if k != "User-Agent"}.items()


def test_whose_token_a_keyless_account_uses() -> None:
    """A namespace's ProviderConfig: its own identity ServiceAccount's token (audience by provider); a
    ClusterProviderConfig, or the admin's --namespaced-ambient-credentials: the operator's own file."""
    from notebook_operator.account_connection import Tenancy, token_source
    from notebook_operator.api.providerconfig import ProviderConfigSpec
    from notebook_operator.tenant_token import TenantToken

    rrsa = {"roleArn": "acs:ram::1:role/r", "oidcProviderArn": "acs:ram::1:oidc-provider/p"}
    pai = ProviderConfigSpec.model_validate({"provider": "pai-dsw", "region": "cn-hangzhou", "oidc": rrsa})
    huawei = ProviderConfigSpec.model_validate({"provider": "modelarts", "region": "cn-north-4", "projectId": "p",
                                                "oidc": {"idpId": "idp", "audience": "client-1"}})  # fmt: skip
    kube: Any = object()  # never called: choosing the source sends nothing
    tenant = token_source("team-a", pai, kube, Tenancy())
    assert isinstance(tenant, TenantToken)
    assert (tenant.namespace, tenant.service_account, tenant.audience) == (
        "team-a", "notebook-operator-identity", "sts.aliyuncs.com")  # fmt: skip
    named = token_source("team-b", huawei, kube, Tenancy(tenant_service_account="nb-id"))
    assert isinstance(named, TenantToken) and (named.service_account, named.audience) == ("nb-id", "client-1")
    assert not isinstance(token_source(None, pai, kube, Tenancy()), TenantToken)
    assert not isinstance(token_source("team-a", pai, kube, Tenancy(namespaced_ambient_credentials=True)), TenantToken)
