"""Keyless credentials against the emulator over real HTTP: OIDC tokens signed by a key of a JWKS are exchanged
(Alibaba STS AssumeRoleWithOIDC, Huawei IAM federation) for temporary credentials that list instances, expire
(time-scaled) and are refreshed; a token with the wrong audience, expired, or signed by another key is refused."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from notebook_operator.api.providerconfig import OidcIdentity
from notebook_operator.providers.errors import AuthFailed, IdentityRefused, ProviderError
from notebook_operator.providers.factory import Account, connect
from notebook_operator.providers.oidc import TokenSource, ambient_token, oidc_source
from tests.emulator import PROJECT, Emulator, running_emulator

ACCOUNT_ID = "1234567890"  # the RAM role's account: what the emulator's temporary credentials act for
ROLE = f"acs:ram::{ACCOUNT_ID}:role/notebook-operator"
PROVIDER_ARN = f"acs:ram::{ACCOUNT_ID}:oidc-provider/ack-rrsa-c1"
ISSUER = "https://oidc.example/c1"
TIME_SCALE = 60  # a 900 s lifetime lasts 15 s


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """An OIDC issuer with an RSA key, as the API server's ServiceAccount token signer is."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        return {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid, "n": _b64(n),
                          "e": _b64(numbers.e.to_bytes(3, "big"))}]}  # fmt: skip

    def token(self, audience: str, expires_in: float = 3600, issuer: str = ISSUER,
              subject: str = "system:serviceaccount:ns:nb") -> str:  # fmt: skip
        header = _b64(json.dumps({"alg": "RS256", "kid": self.kid, "typ": "JWT"}).encode())
        now = time.time()
        claims = {"iss": issuer, "aud": [audience], "sub": subject, "iat": int(now),
                  "exp": int(now + expires_in)}  # fmt: skip
        payload = _b64(json.dumps(claims).encode())
        signature = self.key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64(signature)}"


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer("k1")


@pytest.fixture(scope="module")
def keyless_cloud(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    tmp = tmp_path_factory.mktemp("keyless")
    (tmp / "jwks.json").write_text(json.dumps(issuer.jwks()))
    with running_emulator(tmp, "--transition-delay", "0", "--time-scale", str(TIME_SCALE), "--oidc-jwks",
                          str(tmp / "jwks.json"), "--oidc-issuer", ISSUER, "--oidc-client-id", "hw-client",
                          "--oidc-idp-id", "idp-1") as emulator:  # fmt: skip
        yield emulator


def _identity(tmp_path: Path, token: str, **fields: Any) -> OidcIdentity:
    (tmp_path / "token").write_text(token)
    return OidcIdentity(duration_seconds=900, **fields)


def _file(tmp_path: Path) -> TokenSource:
    """The token as the kubelet keeps it: a file, read at each exchange (as the operator reads its own)."""
    return ambient_token("TOKEN_FILE", {"TOKEN_FILE": str(tmp_path / "token")})


async def test_rrsa_credentials_list_instances_and_are_refreshed(keyless_cloud: Emulator, issuer: Issuer,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    keyless_cloud.seed(cloud="pai-dsw", account=ACCOUNT_ID, name="keyless-nb")
    identity = _identity(tmp_path, issuer.token("sts.aliyuncs.com"), role_arn=ROLE, oidc_provider_arn=PROVIDER_ARN,
                         sts_endpoint=keyless_cloud.url)  # fmt: skip
    source = oidc_source(identity, "pai-dsw", "cn-hangzhou", _file(tmp_path))
    provider = connect(Account("pai-dsw", "cn-hangzhou", source, keyless_cloud.url))
    try:
        names = [i.name async for i in provider.list_instances()]
        assert names == ["keyless-nb"] and source.exchanges == 1
        assert source.expires_at is not None and 10 < source.expires_at - time.time() <= 15.5  # 900 s / 60
        (tmp_path / "token").write_text(issuer.token("sts.aliyuncs.com"))  # the kubelet rotated it
        await asyncio.sleep(13)  # past the refresh point (a fifth of the lifetime before expiry)
        assert [i.name async for i in provider.list_instances()] == ["keyless-nb"]
        assert source.exchanges == 2
    finally:
        await provider.aclose()


async def test_expired_temporary_credentials_are_refused_by_the_gateway(keyless_cloud: Emulator, issuer: Issuer,
                                                                       tmp_path: Path) -> None:  # fmt: skip
    from notebook_operator.providers.identity import FixedCredentials

    identity = _identity(tmp_path, issuer.token("sts.aliyuncs.com"), role_arn=ROLE, oidc_provider_arn=PROVIDER_ARN,
                         sts_endpoint=keyless_cloud.url)  # fmt: skip
    issued = await oidc_source(identity, "pai-dsw", "cn-hangzhou", _file(tmp_path)).fresh()
    provider = connect(Account("pai-dsw", "cn-hangzhou", FixedCredentials(issued), keyless_cloud.url))
    try:
        _ = [i async for i in provider.list_instances()]  # accepted while valid
        await asyncio.sleep(15.5)
        with pytest.raises(ProviderError) as refused:
            _ = [i async for i in provider.list_instances()]
        assert "InvalidSecurityToken.Expired" in str(refused.value)
        assert issued.secret not in str(refused.value) and issued.security_token not in str(refused.value)  # type: ignore[operator]
    finally:
        await provider.aclose()


@pytest.mark.parametrize(("case", "code"), [
    ("wrong audience", "AudienceNotMatch"),
    ("expired", "TokenExpired"),
    ("another key", "InvalidToken"),
    ("another issuer", "IssuerNotMatch"),
])  # fmt: skip
async def test_refused_tokens_are_identity_refused(keyless_cloud: Emulator, issuer: Issuer, tmp_path: Path,
                                                   case: str, code: str) -> None:  # fmt: skip
    token = {
        "wrong audience": lambda: issuer.token("sts.example.com"),
        "expired": lambda: issuer.token("sts.aliyuncs.com", expires_in=-5),
        "another key": lambda: Issuer("k1").token("sts.aliyuncs.com"),
        "another issuer": lambda: issuer.token("sts.aliyuncs.com", issuer="https://evil.example"),
    }[case]()
    identity = _identity(tmp_path, token, role_arn=ROLE, oidc_provider_arn=PROVIDER_ARN,
                         sts_endpoint=keyless_cloud.url)  # fmt: skip
    with pytest.raises(IdentityRefused) as refused:
        await oidc_source(identity, "pai-dsw", "cn-hangzhou", _file(tmp_path)).fresh()
    assert code in str(refused.value) and token not in str(refused.value)


async def test_huawei_federation_signs_modelarts_calls(keyless_cloud: Emulator, issuer: Issuer,
                                                       tmp_path: Path) -> None:  # fmt: skip
    keyless_cloud.seed(cloud="modelarts", account=PROJECT, name="federated-nb")
    identity = _identity(tmp_path, issuer.token("hw-client"), idp_id="idp-1", iam_endpoint=keyless_cloud.url)
    source = oidc_source(identity, "modelarts", "cn-north-4", _file(tmp_path))
    provider = connect(Account("modelarts", "cn-north-4", source, keyless_cloud.url, PROJECT))
    try:
        assert [i.name async for i in provider.list_instances()] == ["federated-nb"]
        assert source.exchanges == 1
    finally:
        await provider.aclose()
    wrong_idp = _identity(tmp_path, issuer.token("hw-client"), idp_id="idp-2", iam_endpoint=keyless_cloud.url)
    with pytest.raises(IdentityRefused):
        await oidc_source(wrong_idp, "modelarts", "cn-north-4", _file(tmp_path)).fresh()
    wrong_audience = _identity(tmp_path, issuer.token("sts.aliyuncs.com"), idp_id="idp-1",
                               iam_endpoint=keyless_cloud.url)  # fmt: skip
    with pytest.raises(IdentityRefused) as refused:
        await oidc_source(wrong_audience, "modelarts", "cn-north-4", _file(tmp_path)).fresh()
    assert "AudienceNotMatch" in str(refused.value)


async def test_trust_policies_refuse_a_token_of_another_subject(issuer: Issuer, tmp_path: Path) -> None:
    """--oidc-trust: a role (or identity provider) trusts the subjects it names; another namespace's token is refused
    with the refusal the clouds answer (a guess at its shape: docs/cloud-api-conformance.md)."""
    (tmp_path / "jwks.json").write_text(json.dumps(issuer.jwks()))
    team_a = "system:serviceaccount:team-a:notebook-operator-identity"
    with running_emulator(tmp_path, "--oidc-jwks", str(tmp_path / "jwks.json"), "--oidc-client-id", "hw-client",
                          "--oidc-trust", f"{ROLE}={team_a}", "--oidc-trust", "idp-1=system:serviceaccount:team-a:*",
                          ) as emulator:  # fmt: skip
        sts = {"role_arn": ROLE, "oidc_provider_arn": PROVIDER_ARN, "sts_endpoint": emulator.url}
        identity = _identity(tmp_path, issuer.token("sts.aliyuncs.com", subject=team_a), **sts)
        assert (await oidc_source(identity, "pai-dsw", "cn-hangzhou", _file(tmp_path)).fresh()).access_key_id
        other = issuer.token("sts.aliyuncs.com", subject="system:serviceaccount:team-b:notebook-operator-identity")
        identity = _identity(tmp_path, other, **sts)
        with pytest.raises(IdentityRefused) as refused:
            await oidc_source(identity, "pai-dsw", "cn-hangzhou", _file(tmp_path)).fresh()
        assert refused.value.code == "NoPermission" and refused.value.status == 403
        identity = _identity(tmp_path, issuer.token("hw-client", subject=team_a), idp_id="idp-1",
                             iam_endpoint=emulator.url)  # fmt: skip
        assert (await oidc_source(identity, "modelarts", "cn-north-4", _file(tmp_path)).fresh()).access_key_id
        identity = _identity(tmp_path, issuer.token("hw-client", subject="system:serviceaccount:team-b:x"),
                             idp_id="idp-1", iam_endpoint=emulator.url)  # fmt: skip
        with pytest.raises(IdentityRefused) as refused:
            await oidc_source(identity, "modelarts", "cn-north-4", _file(tmp_path)).fresh()
        assert refused.value.code == "IAM.0003"


async def test_an_iam_token_secret_signs_with_x_auth_token(tmp_path: Path) -> None:
    from notebook_operator.providers.credentials import from_secret_data

    with running_emulator(tmp_path, "--iam-token", "tok-123") as emulator:
        emulator.seed(cloud="modelarts", account=PROJECT, name="token-nb")
        secret = {"iamToken": base64.b64encode(b"tok-123").decode()}
        provider = connect(Account("modelarts", "cn-north-4", from_secret_data(secret, "s"), emulator.url, PROJECT))
        try:
            assert [i.name async for i in provider.list_instances()] == ["token-nb"]
        finally:
            await provider.aclose()
        wrong = {"iamToken": base64.b64encode(b"tok-999").decode()}
        provider = connect(Account("modelarts", "cn-north-4", from_secret_data(wrong, "s"), emulator.url, PROJECT))
        try:
            with pytest.raises(AuthFailed):
                _ = [i async for i in provider.list_instances()]
        finally:
            await provider.aclose()


def test_the_emulator_answers_what_the_official_libraries_send(
    keyless_cloud: Emulator, issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator against the source, not our client: the request alibabacloud_credentials builds (its https
    transport swapped for the emulator's address) and the two requests huaweicloudsdkcore's IamHelper builds."""
    import httpx
    from alibabacloud_credentials.provider import oidc as official
    from huaweicloudsdkcore.auth.internal import IamHelper
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from Tea.core import TeaCore

    (tmp_path / "token").write_text(issuer.token("sts.aliyuncs.com"))

    class Answer:
        def __init__(self, response: httpx.Response) -> None:
            self.status_code, self.body = response.status_code, response.content

    def do_action(request: Any, runtime: Any) -> Answer:
        return Answer(
            httpx.request(
                request.method, f"{keyless_cloud.url}{request.pathname or '/'}", params=request.query, timeout=10
            )
        )

    monkeypatch.setattr(TeaCore, "do_action", staticmethod(do_action))
    credentials = official.OIDCRoleArnCredentialsProvider(
        role_arn=ROLE,
        oidc_provider_arn=PROVIDER_ARN,
        oidc_token_file_path=str(tmp_path / "token"),
        duration_seconds=900,
    ).get_credentials()
    assert credentials.get_access_key_id().startswith("STS.") and credentials.get_security_token()

    config = HttpConfig.get_default_config()
    sent = IamHelper.get_create_unscoped_token_by_id_token_request(
        config, keyless_cloud.url, "idp-1", issuer.token("hw-client")
    )
    unscoped = httpx.post(keyless_cloud.url + sent.resource_path, headers=sent.header_params, content=sent.body)
    assert unscoped.status_code == 201 and unscoped.headers["X-Subject-Token"]
    sent = IamHelper.get_create_temporary_access_key_by_token_request(
        config, keyless_cloud.url, unscoped.headers["X-Subject-Token"], 900
    )
    issued = httpx.post(keyless_cloud.url + sent.resource_path, headers=sent.header_params, content=sent.body)
    assert issued.status_code == 201 and {"access", "secret", "securitytoken", "expires_at"} <= set(
        issued.json()["credential"]
    )
