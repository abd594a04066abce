"""What the three Huawei Cloud APIs share: the error body, throttling header and request id."""

from __future__ import annotations

from typing import Any

import httpx

from notebook_operator.providers.errors import (
    AuthFailed,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ProviderError,
    Throttled,
    Transient,
    remote_text,
    status_text,
)
from notebook_operator.providers.http import ErrorMapper

# Codes that mean "not in a state for that" where the API answers 400 rather than 409.
CONFLICT_CODES = frozenset({"ModelArts.0105", "ModelArts.6404"})


def _error_fields(body: dict[str, Any]) -> tuple[str, str]:
    """The keys huaweicloudsdkcore tries, in its order, plus DevEnviron's error_message."""
    for code_key, msg_key in (
        ("error_code", "error_msg"),
        ("error_code", "error_message"),
        ("errorCode", "errorMsg"),
        ("code", "message"),
    ):
        if code_key in body:
            return str(body[code_key]), str(body.get(msg_key, ""))
    return "", ""


def error_mapper(provider: str) -> ErrorMapper:
    def map_error(response: httpx.Response, operation: str) -> ProviderError | None:
        status = response.status_code
        if status < 400:
            return None
        body: dict[str, Any] = {}
        try:
            parsed = response.json()
            body = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            body = {}
        code, message = _error_fields(body)
        kwargs: dict[str, Any] = {
            "provider": provider,
            "operation": operation,
            "code": code or str(status),
            "request_id": response.headers.get("X-Request-Id") or body.get("request_id"),
            "status": status,
        }
        message = remote_text(message or status_text(response.status_code))
        if status == 429 or code == "APIGW.0308":
            retry_after = response.headers.get("Retry-After")
            seconds = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
            return Throttled(message, retry_after=seconds, **kwargs)
        if status == 401:
            return AuthFailed(message, **kwargs)
        if status == 403:  # e.g. APIGW.0302: the IAM user is not authorized to access the API
            return PermissionDenied(message, **kwargs)
        if status == 404:
            return NotFound(message, **kwargs)
        if status == 409 or code in CONFLICT_CODES:
            return Conflict(message, **kwargs)
        if status >= 500:
            return Transient(message, **kwargs)
        return InvalidRequest(message, **kwargs)

    return map_error
