"""A token bucket per cloud account: at most `rate` requests a second, bursts up to `burst`.

Waiters are served by call class (providers/priority.py: the listing, then due stops, then actions, reads and
housekeeping last), round-robin by namespace within a class. A waiter that gets no token within its deadline is
told so (LocalThrottle): no call waits without end.
"""

from __future__ import annotations

import asyncio
import time

from notebook_operator.providers.priority import CallClass
from notebook_operator.waiters import Waiters


class LocalThrottle(TimeoutError):
    """No token of the account's rate limit within the waiter's deadline."""


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else rate)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._waiting = Waiters(len(CallClass))
        self._timer: asyncio.TimerHandle | None = None

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self, kind: CallClass = CallClass.READ, namespace: str = "", within: float | None = None) -> None:
        """Wait for a token; LocalThrottle after `within` seconds without one (None: no deadline)."""
        waiter = self._waiting.join(int(kind), namespace)
        if self._timer is None:
            self._dispatch()
        try:
            async with asyncio.timeout(within):
                await asyncio.shield(waiter)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return  # the token came just as the deadline passed: take it
            waiter.cancel()  # skipped by _dispatch
            raise LocalThrottle(f"no turn at the account's rate limit ({self.rate:g}/s) within {within:g}s") from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._tokens += 1  # handed over just as the caller was cancelled: give it back
            waiter.cancel()
            raise

    def _dispatch(self) -> None:
        self._timer = None
        self._refill()
        while self._tokens >= 1 and self._waiting:
            self._waiting.wake_next()
            self._tokens -= 1
        if self._waiting:
            delay = (1 - self._tokens) / self.rate
            self._timer = asyncio.get_running_loop().call_later(delay, self._dispatch)
