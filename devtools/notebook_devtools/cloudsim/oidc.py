"""Keyless credentials, as the clouds' token services do it: STS AssumeRoleWithOIDC (Alibaba RRSA) and IAM's
OIDC federation (Huawei: id-token -> unscoped token -> temporary AK/SK/security token).

The OIDC token is verified for real: an RS256 signature against a JWKS (e.g. the API server's
/openid/v1/jwks), the issuer when one is configured, the audience, and `exp` on the emulator's own (scaled)
clock - the API server issues nothing shorter than 10 minutes. Temporary credentials expire in wall-clock
time (lifetime / time scale), so the operator's real refresh timing is exercised.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from notebook_devtools.cloudsim.auth import Credential
from notebook_devtools.cloudsim.clock import iso
from notebook_devtools.cloudsim.context import sim
from notebook_devtools.cloudsim.jwt import OidcRefused

routes = web.RouteTableDef()
ALIBABA_AUDIENCE = "sts.aliyuncs.com"  # what ACK's RRSA tokens carry
ALIBABA_DURATION = (900, 43200)
HUAWEI_DURATION = (900, 86400)


def _issue(request: web.Request, duration: int, account: str | None) -> Credential:
    """Temporary credentials the gateway accepts until (wall clock) now + duration / time scale."""
    s = sim(request)
    expires = time.time() + duration / s.clock.scale
    credential = Credential(
        f"STS.{secrets.token_hex(8)}", secrets.token_urlsafe(24), secrets.token_urlsafe(48), expires, account
    )
    s.verifier.credentials[credential.access_key_id] = credential
    return credential


def _duration(text: Any, default: int, allowed: tuple[int, int]) -> int:
    value = int(text) if text not in (None, "") else default
    if not allowed[0] <= value <= allowed[1]:
        raise OidcRefused("InvalidParameter.DurationSeconds", f"DurationSeconds must be {allowed[0]}-{allowed[1]}")
    return value


def _sts_error(status: int, code: str, message: str) -> web.Response:
    rid = secrets.token_hex(8).upper()
    body = {"RequestId": rid, "HostId": "sts.aliyuncs.com", "Code": code, "Message": message}
    return web.json_response(body, status=status)


@routes.route("*", "/", name="sts:AssumeRoleWithOIDC")
async def assume_role_with_oidc(request: web.Request) -> web.Response:
    params = dict(request.query)
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        params.update({k: str(v) for k, v in (await request.post()).items()})
    if params.get("Action") != "AssumeRoleWithOIDC" or params.get("Version") != "2015-04-01":
        return _sts_error(
            404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
        )
    missing = [k for k in ("RoleArn", "OIDCProviderArn", "OIDCToken", "RoleSessionName") if not params.get(k)]
    if missing:
        return _sts_error(400, "MissingParameter", f"{missing[0]} is mandatory for this action.")
    s = sim(request)
    try:
        duration = _duration(params.get("DurationSeconds"), 3600, ALIBABA_DURATION)
        claims = s.oidc.verify(params["OIDCToken"], ALIBABA_AUDIENCE, s.clock.now())
    except OidcRefused as e:
        return _sts_error(400, f"AuthenticationFail.OIDCToken.{e.code}" if "." not in e.code else e.code, e.message)
    if not s.oidc.options.trusts(params["RoleArn"], str(claims.get("sub", ""))):
        # A guess at the shape (docs/cloud-api-conformance.md): STS's NoPermission of AssumeRole.
        return _sts_error(
            403, "NoPermission", "You are not authorized to do this action. You should be authorized by RAM."
        )
    account = params["RoleArn"].split(":")[3] if params["RoleArn"].count(":") >= 4 else None
    credential = _issue(request, duration, account or None)
    return web.json_response(
        {
            "RequestId": secrets.token_hex(8).upper(),
            "Credentials": {
                "AccessKeyId": credential.access_key_id,
                "AccessKeySecret": credential.secret,
                "SecurityToken": credential.security_token,
                "Expiration": iso(credential.expires_at),  # wall clock, as the caller's clock sees it
            },
            "AssumedRoleUser": {"Arn": f"{params['RoleArn']}/{params['RoleSessionName']}"},
        }
    )


def _iam_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "title": "Unauthorized"}}, status=status)


@routes.post("/v3.0/OS-AUTH/id-token/tokens", name="iam:CreateTokenWithIdToken")
async def token_from_id_token(request: web.Request) -> web.Response:
    s = sim(request)
    idp = request.headers.get("X-Idp-Id", "")
    if not idp or (s.oidc.options.idp_id and idp != s.oidc.options.idp_id):
        return _iam_error(404, "IAM.0002", f"identity provider {idp or '(none)'} not found")
    try:
        body = await request.json()
        jwt = body["auth"]["id_token"]["id"]
        claims = s.oidc.verify(str(jwt), s.oidc.options.client_id, s.clock.now())
    except (ValueError, KeyError, TypeError):
        return _iam_error(400, "IAM.0001", "the request body is not an id_token request")
    except OidcRefused as e:
        return _iam_error(401, "IAM.0004", f"id_token refused: {e.message} ({e.code})")
    if not s.oidc.options.trusts(idp, str(claims.get("sub", ""))):
        # A guess at the shape (docs/cloud-api-conformance.md): no identity conversion rule matches the token.
        return _iam_error(403, "IAM.0003", "the id_token matches no identity conversion rule of the provider")
    token = secrets.token_urlsafe(48)
    s.iam_subject_tokens[token] = time.time() + 24 * 3600 / s.clock.scale
    return web.json_response({"token": {"methods": ["token"]}}, status=201, headers={"X-Subject-Token": token})


@routes.post("/v3.0/OS-CREDENTIAL/securitytokens", name="iam:CreateTemporaryAccessKeyByToken")
async def temporary_access_key(request: web.Request) -> web.Response:
    s = sim(request)
    try:
        body = await request.json()
        token_body = body["auth"]["identity"]["token"]
        subject = str(token_body.get("id") or request.headers.get("X-Auth-Token", ""))
        duration = _duration(token_body.get("duration_seconds"), 900, HUAWEI_DURATION)
    except (ValueError, KeyError, TypeError, AttributeError):
        return _iam_error(400, "IAM.0001", "the request body is not a token identity request")
    except OidcRefused as e:
        return _iam_error(400, "IAM.0001", e.message)
    if s.iam_subject_tokens.get(subject, 0) <= time.time():
        return _iam_error(401, "IAM.0004", "the token is invalid or has expired")
    credential = _issue(request, duration, None)
    expires = datetime.fromtimestamp(credential.expires_at or 0, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    return web.json_response(
        {
            "credential": {
                "access": credential.access_key_id,
                "secret": credential.secret,
                "securitytoken": credential.security_token,
                "expires_at": expires,
            }
        },
        status=201,
    )
