"""One pooled httpx.AsyncClient per cloud account: signing, rate limit, typed errors, bounded retries.

Retries use exponential backoff with full jitter and honour a server's retry-after, bounded in
attempts and in total time. A call that may have changed the cloud (a create whose answer was
lost) is never retried blind: it surfaces as Transient so the caller can look it up first.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from notebook_operator.providers import priority
from notebook_operator.providers.errors import InvalidRequest, ProviderError, RateLimited, Throttled, Transient
from notebook_operator.providers.priority import CallClass
from notebook_operator.providers.ratelimit import LocalThrottle, TokenBucket
from notebook_operator.waiters import waiting_on

logger = logging.getLogger(__name__)
REQUEST_DEADLINE_S = 60.0  # one request, from sending to the last byte of its answer


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0
    budget: float = 30.0  # seconds for all attempts of one call

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class ErrorMapper(Protocol):
    def __call__(self, response: httpx.Response, operation: str) -> ProviderError | None: ...


class CallObserver(Protocol):
    def __call__(self, provider: str, operation: str, outcome: str, seconds: float) -> None: ...


def _no_observer(provider: str, operation: str, outcome: str, seconds: float) -> None:
    return None


def check_endpoint(endpoint: str, plain_http: bool = False) -> str:
    """Plain http is allowed only to loopback (the emulator), or where the admin allowed this http origin by name
    (`plain_http`: the operator's --allowed-endpoint matches it, e.g. an emulator on the node's network);
    anything else must be https."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"endpoint {endpoint!r} must be an http(s) URL")
    if parts.scheme == "http":
        host = parts.hostname
        loopback = host == "localhost"
        with contextlib.suppress(ValueError):  # a host name, not an address
            loopback = loopback or ipaddress.ip_address(host).is_loopback
        if not loopback and not plain_http:
            raise InvalidRequest(f"endpoint {endpoint!r}: plain http is only allowed to loopback; use https")
    return endpoint.rstrip("/")


class CloudHTTP:
    def __init__(
        self,
        provider: str,
        endpoint: str,
        auth: httpx.Auth,
        map_error: ErrorMapper,
        *,
        rate_limit: float = 10.0,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        observer: CallObserver | None = None,
        rng: random.Random | None = None,
        plain_http: bool = False,
    ) -> None:
        self.provider = provider
        self.endpoint = check_endpoint(endpoint, plain_http)
        self._map_error = map_error
        self._bucket = TokenBucket(rate_limit)
        self._retry = retry or RetryPolicy()
        self._observe = observer or _no_observer
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._client = httpx.AsyncClient(
            base_url=self.endpoint,
            auth=auth,
            timeout=timeout or httpx.Timeout(30.0, connect=5.0),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            headers={"Accept": "application/json", "User-Agent": "notebook-operator/0.1"},
            verify=True,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
        urgent: bool = False,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> httpx.Response:
        """Send one API call; returns the successful response or raises a ProviderError. `urgent` (a listing): it
        takes the next token of the account's rate limit before the calls already waiting; other calls wait in their
        class (providers/priority.py). The retry budget bounds the whole call, its waits for a token included."""
        started = time.monotonic()
        deadline = started + self._retry.budget
        query = {k: _wire(v) for k, v in (params or {}).items() if v is not None}
        kind, namespace = priority.current()
        if urgent:
            kind = CallClass.LIST
        attempt = 0
        while True:
            try:
                with waiting_on(f"a turn at the rate limit for {operation}"):
                    await self._bucket.acquire(kind, namespace, within=max(0.0, deadline - time.monotonic()))
            except LocalThrottle as e:
                raise RateLimited(str(e), provider=self.provider, operation=operation) from None
            call_started = time.monotonic()
            error: ProviderError
            try:
                with waiting_on(f"the cloud's answer to {operation}"):
                    async with asyncio.timeout(REQUEST_DEADLINE_S):  # httpx's timeouts bound each read, not the whole
                        response = await self._client.request(method, path, params=query, json=json, headers=headers)
            except (httpx.TransportError, TimeoutError) as e:
                sent = not isinstance(e, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                error = Transient(f"{type(e).__name__}: {e}", provider=self.provider, operation=operation)
                if sent and not idempotent:
                    self._observe(self.provider, operation, "unknown", time.monotonic() - call_started)
                    raise Transient(
                        f"the outcome is unknown ({type(e).__name__}); look the result up before retrying",
                        provider=self.provider,
                        operation=operation,
                    ) from e
            else:
                mapped: ProviderError | None
                if response.is_redirect:  # never followed: a redirect could point anywhere
                    mapped = InvalidRequest(
                        f"the endpoint answered a redirect (HTTP {response.status_code}), which is not followed",
                        provider=self.provider,
                        operation=operation,
                        status=response.status_code,
                    )
                else:
                    mapped = self._map_error(response, operation)
                if mapped is None:
                    self._observe(self.provider, operation, "ok", time.monotonic() - call_started)
                    return response
                error = mapped
            self._observe(self.provider, operation, error.reason, time.monotonic() - call_started)
            attempt += 1
            if not error.retryable or attempt >= self._retry.max_attempts:
                raise error
            delay = self._retry.backoff(attempt, self._rng)
            if isinstance(error, Throttled) and error.retry_after is not None:
                delay = error.retry_after + delay / 4
            if time.monotonic() + delay > deadline:
                raise error
            logger.debug("%s %s: %s; retry %d in %.2fs", self.provider, operation, error.reason, attempt, delay)
            await sleep(delay)


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
