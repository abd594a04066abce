"""A token bucket per cloud account: at most `rate` requests a second, bursts up to `burst`.

Waiters are served in arrival order, except that urgent ones (the listing) go before the others: a pass's
actions may use the whole rate limit of an interval, and the next listing must not wait behind them.
"""

from __future__ import annotations

import asyncio
import time

from notebook_operator.waiters import UrgentFirst


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else rate)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._waiting = UrgentFirst()
        self._timer: asyncio.TimerHandle | None = None

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self, urgent: bool = False) -> None:
        waiter = self._waiting.join(urgent)
        if self._timer is None:
            self._dispatch()
        await waiter  # a cancelled waiter is skipped by _dispatch

    def _dispatch(self) -> None:
        self._timer = None
        self._refill()
        while self._tokens >= 1 and self._waiting:
            self._waiting.wake_next()
            self._tokens -= 1
        if self._waiting:
            delay = (1 - self._tokens) / self.rate
            self._timer = asyncio.get_running_loop().call_later(delay, self._dispatch)
