"""Where a provider's credentials come from on each request: fixed (a Secret, the environment), or exchanged
from the pod's OIDC token and exchanged again before they expire.

The signers read one source per request, so a refresh never rebuilds the HTTP client and never interrupts a
poll pass: the request that finds the credentials due waits for one exchange, the others use it too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from notebook_operator.providers.credentials import Credentials
from notebook_operator.providers.errors import ProviderError

logger = logging.getLogger(__name__)

# Refresh this long before expiry, or a fifth of the lifetime when that is shorter: the official libraries
# use 15 minutes (alibabacloud_credentials provider/oidc.py _get_stale_time; huaweicloudsdkcore
# _DEFAULT_EXPIRATION_THRESHOLD_SECONDS), which would leave nothing of a short lifetime.
REFRESH_LEAD_S = 15 * 60
BACKOFF_S = (5.0, 300.0)  # after a failed exchange: first wait, longest wait (doubling)


@dataclass(frozen=True)
class Issued:
    credentials: Credentials
    expires_at: float  # epoch seconds


class CredentialSource(Protocol):
    async def fresh(self) -> Credentials: ...


class FixedCredentials:
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    async def fresh(self) -> Credentials:
        return self.credentials


def refresh_at(issued_at: float, expires_at: float) -> float:
    lifetime = max(0.0, expires_at - issued_at)
    return expires_at - min(REFRESH_LEAD_S, lifetime / 5)


class ExchangedCredentials:
    """Exchanged on first use and again at `refresh_at`; one exchange at a time. A failed exchange is raised
    (IdentityRefused when the cloud refused the token) and not tried again before a backoff, so a refused
    identity costs one exchange per backoff, not one per request."""

    def __init__(self, exchange: Callable[[], Awaitable[Issued]], clock: Callable[[], float] = time.time) -> None:
        self._exchange = exchange
        self._clock = clock
        self._lock = asyncio.Lock()
        self._issued: Issued | None = None
        self._refresh_at = 0.0
        self._failure: ProviderError | None = None
        self._retry_at = 0.0
        self._backoff = 0.0
        self.exchanges = 0  # successful ones

    @property
    def expires_at(self) -> float | None:
        return self._issued.expires_at if self._issued else None

    async def fresh(self) -> Credentials:
        if self._issued is not None and self._clock() < self._refresh_at:
            return self._issued.credentials
        async with self._lock:
            now = self._clock()
            if self._issued is not None and now < self._refresh_at:
                return self._issued.credentials  # another request exchanged while this one waited
            if self._failure is not None and now < self._retry_at:
                raise self._failure
            try:
                issued = await self._exchange()
            except ProviderError as e:
                self._failure = e
                self._backoff = min(BACKOFF_S[1], max(BACKOFF_S[0], self._backoff * 2))
                self._retry_at = now + self._backoff
                raise
            self._issued, self._failure, self._backoff = issued, None, 0.0
            self._refresh_at = refresh_at(now, issued.expires_at)
            self.exchanges += 1
            logger.info(
                "temporary credentials issued, valid for %.0fs, refreshed in %.0fs",
                issued.expires_at - now,
                self._refresh_at - now,
            )
            return issued.credentials
