"""httpx auth flows that sign each request: ACS3-HMAC-SHA256 (Alibaba), SDK-HMAC-SHA256 (Huawei) and Huawei's
IAM token. Async requests read the credential source on every request (refreshed temporary credentials);
sync ones (tools, tests) sign with fixed credentials."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncGenerator, Generator
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx

from notebook_operator.providers.credentials import Credentials
from notebook_operator.providers.identity import CredentialSource, FixedCredentials
from notebook_operator.signing import acs3, sdk_hmac
from notebook_operator.times import rfc3339


def _path_and_query(request: httpx.Request) -> tuple[str, list[tuple[str, str]]]:
    raw = request.url.raw_path.decode("ascii")
    path, _, query = raw.partition("?")
    return path, parse_qsl(query, keep_blank_values=True)


class _Signer(httpx.Auth):
    def __init__(self, credentials: Credentials | CredentialSource) -> None:
        self._fixed = credentials if isinstance(credentials, Credentials) else None
        self._source = FixedCredentials(credentials) if isinstance(credentials, Credentials) else credentials

    def __repr__(self) -> str:
        return f"{type(self).__name__}(***)"

    def sign(self, request: httpx.Request, credentials: Credentials) -> None:
        raise NotImplementedError

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._fixed is None:
            raise RuntimeError(f"{type(self).__name__} with a refreshing credential source signs async requests only")
        self.sign(request, self._fixed)
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        self.sign(request, await self._source.fresh())
        yield request


class AcsV3Auth(_Signer):
    """Signs host, content-type and every x-acs-* header; the caller sets x-acs-action."""

    def __init__(self, credentials: Credentials | CredentialSource, version: str = "2022-01-01") -> None:
        super().__init__(credentials)
        self._version = version

    def sign(self, request: httpx.Request, credentials: Credentials) -> None:
        body = request.content
        request.headers["x-acs-version"] = self._version
        request.headers["x-acs-date"] = rfc3339(datetime.now(UTC))
        request.headers["x-acs-signature-nonce"] = uuid.uuid4().hex
        request.headers["x-acs-content-sha256"] = hashlib.sha256(body).hexdigest()
        if credentials.security_token:
            request.headers["x-acs-security-token"] = credentials.security_token
            request.headers["x-acs-accesskey-id"] = credentials.access_key_id
        signed = {
            name.lower(): value
            for name, value in request.headers.items()
            if name.lower() in ("host", "content-type") or name.lower().startswith("x-acs-")
        }
        path, query = _path_and_query(request)
        request.headers["Authorization"] = acs3.authorization(
            credentials.access_key_id, credentials.secret, request.method, path, query, signed
        )


class HuaweiAkSkAuth(_Signer):
    """SDK-HMAC-SHA256 over host, content-type, x-project-id, x-sdk-date (and x-security-token); with an IAM token
    instead of a key pair (Secret key iamToken), X-Auth-Token and no signature."""

    def __init__(self, credentials: Credentials | CredentialSource, project_id: str) -> None:
        super().__init__(credentials)
        self._project_id = project_id

    def sign(self, request: httpx.Request, credentials: Credentials) -> None:
        request.headers.setdefault("Content-Type", "application/json")
        request.headers["X-Project-Id"] = self._project_id
        if credentials.iam_token:
            request.headers["X-Auth-Token"] = credentials.iam_token
            return
        request.headers[sdk_hmac.DATE_HEADER] = datetime.now(UTC).strftime(sdk_hmac.DATE_FORMAT)
        if credentials.security_token:
            request.headers["X-Security-Token"] = credentials.security_token
        wanted = {"host", "content-type", "x-project-id", "x-sdk-date", "x-security-token"}
        signed = {name: value for name, value in request.headers.items() if name.lower() in wanted}
        path, query = _path_and_query(request)
        request.headers["Authorization"] = sdk_hmac.authorization(
            credentials.access_key_id, credentials.secret, request.method, path, query, signed, request.content
        )
