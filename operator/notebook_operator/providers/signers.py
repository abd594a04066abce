"""httpx auth flows that sign each request: ACS3-HMAC-SHA256 (Alibaba) and SDK-HMAC-SHA256 (Huawei)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Generator
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx

from notebook_operator.providers.credentials import Credentials
from notebook_operator.signing import acs3, sdk_hmac
from notebook_operator.times import rfc3339


def _path_and_query(request: httpx.Request) -> tuple[str, list[tuple[str, str]]]:
    raw = request.url.raw_path.decode("ascii")
    path, _, query = raw.partition("?")
    return path, parse_qsl(query, keep_blank_values=True)


class AcsV3Auth(httpx.Auth):
    """Signs host, content-type and every x-acs-* header; the caller sets x-acs-action."""

    def __init__(self, credentials: Credentials, version: str = "2022-01-01") -> None:
        self._credentials = credentials
        self._version = version

    def __repr__(self) -> str:
        return f"AcsV3Auth({self._credentials.access_key_id!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        body = request.content
        request.headers["x-acs-version"] = self._version
        request.headers["x-acs-date"] = rfc3339(datetime.now(UTC))
        request.headers["x-acs-signature-nonce"] = uuid.uuid4().hex
        request.headers["x-acs-content-sha256"] = hashlib.sha256(body).hexdigest()
        if self._credentials.security_token:
            request.headers["x-acs-security-token"] = self._credentials.security_token
            request.headers["x-acs-accesskey-id"] = self._credentials.access_key_id
        signed = {
            name.lower(): value
            for name, value in request.headers.items()
            if name.lower() in ("host", "content-type") or name.lower().startswith("x-acs-")
        }
        path, query = _path_and_query(request)
        request.headers["Authorization"] = acs3.authorization(
            self._credentials.access_key_id, self._credentials.secret, request.method, path, query, signed
        )
        yield request


class HuaweiAkSkAuth(httpx.Auth):
    """SDK-HMAC-SHA256 over host, content-type, x-project-id, x-sdk-date (and x-security-token)."""

    def __init__(self, credentials: Credentials, project_id: str) -> None:
        self._credentials = credentials
        self._project_id = project_id

    def __repr__(self) -> str:
        return f"HuaweiAkSkAuth({self._credentials.access_key_id!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.setdefault("Content-Type", "application/json")
        request.headers["X-Project-Id"] = self._project_id
        request.headers[sdk_hmac.DATE_HEADER] = datetime.now(UTC).strftime(sdk_hmac.DATE_FORMAT)
        if self._credentials.security_token:
            request.headers["X-Security-Token"] = self._credentials.security_token
        wanted = {"host", "content-type", "x-project-id", "x-sdk-date", "x-security-token"}
        signed = {name: value for name, value in request.headers.items() if name.lower() in wanted}
        path, query = _path_and_query(request)
        request.headers["Authorization"] = sdk_hmac.authorization(
            self._credentials.access_key_id,
            self._credentials.secret,
            request.method,
            path,
            query,
            signed,
            request.content,
        )
        yield request


class HuaweiTokenAuth(httpx.Auth):
    """IAM token mode: X-Auth-Token instead of a signature."""

    def __init__(self, token: str, project_id: str) -> None:
        self._token = token
        self._project_id = project_id

    def __repr__(self) -> str:
        return "HuaweiTokenAuth(***)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.setdefault("Content-Type", "application/json")
        request.headers["X-Project-Id"] = self._project_id
        request.headers["X-Auth-Token"] = self._token
        yield request
