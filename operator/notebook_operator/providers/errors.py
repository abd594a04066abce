"""Typed cloud errors. Messages carry the cloud's code, message and request id - never credentials, never an
answer's raw body: the message is the cloud's documented message field (at most MESSAGE_MAX characters) or the
standard text of the HTTP status."""

from __future__ import annotations

import re
from http import HTTPStatus

MESSAGE_MAX = 256
CODE_MAX = 64
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def remote_text(text: object) -> str:
    """A cloud's documented message field as we keep it: one line, at most MESSAGE_MAX characters."""
    return " ".join(str(text).split())[:MESSAGE_MAX]


def status_text(status: int) -> str:
    """The standard phrase of an HTTP status, not the one the server sent (that is remote text too)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


class ProviderError(Exception):
    """Base of every error a provider raises. `reason` is a CamelCase word for conditions and Events."""

    reason = "CloudError"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        operation: str = "",
        code: str = "",
        request_id: str | None = None,
        status: int | None = None,
    ) -> None:
        self.message = message
        self.provider = provider
        self.operation = operation
        self.code = " ".join(str(code).split())[:CODE_MAX]
        self.request_id = request_id if request_id and _REQUEST_ID.match(str(request_id)) else None
        self.status = status
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.provider} {self.operation}".strip()
        detail = f"{self.code}: {self.message}" if self.code else self.message
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{where}: {detail}{rid}" if where else f"{detail}{rid}"


class NotFound(ProviderError):
    reason = "NotFound"


class AuthFailed(ProviderError):
    reason = "CredentialsRefused"


class IdentityRefused(ProviderError):
    """The cloud refused to exchange the pod's OIDC token for temporary credentials (wrong audience, expired,
    unknown provider or role)."""

    reason = "IdentityRefused"


class PermissionDenied(ProviderError):
    """The credentials are valid but not allowed this operation (HTTP 403): a missing RAM/IAM permission."""

    reason = "PermissionDenied"


class InvalidRequest(ProviderError):
    reason = "InvalidRequest"


class InstanceTypeNotOffered(InvalidRequest):
    """The template asks for an instance type the account's region does not offer (checked before creating)."""

    reason = "InstanceTypeNotOffered"


class Conflict(ProviderError):
    """The instance is in a state that does not allow the operation (e.g. start while Running)."""

    reason = "IllegalState"


class Transient(ProviderError):
    """A server error, timeout or dropped connection: worth retrying later."""

    reason = "CloudUnavailable"
    retryable = True


class Throttled(Transient):
    reason = "Throttled"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class RateLimited(Throttled):
    """No turn at the account's own rate limit within the call's budget: the operator's limit, not the cloud's;
    nothing was sent."""


class Unsupported(ProviderError):
    """The provider has no such capability (e.g. starting a ROMA Connect instance)."""

    reason = "Unsupported"
