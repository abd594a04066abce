"""At most N API writes in flight, the urgent ones first: during a wave of due stops the claims and outcomes of
thousands of notebooks wait their turn, while another notebook's mirrored change goes out at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from notebook_operator.waiters import UrgentFirst


class WriteLimiter:
    def __init__(self, concurrency: int) -> None:
        self._free = concurrency
        self._waiting = UrgentFirst()

    def __len__(self) -> int:
        """How many wait for a slot (an estimate: cancelled waiters count until they are passed over)."""
        return len(self._waiting)

    @contextlib.asynccontextmanager
    async def slot(self, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def take(self, urgent: bool = False) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait for a slot (cancellable: the wait may be bounded by the caller); the returned context releases it."""
        await self._acquire(urgent)
        return self._held()

    @contextlib.asynccontextmanager
    async def _held(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        waiter = self._waiting.join(urgent)
        try:
            await waiter  # the slot is handed over by _release
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed over just as it was cancelled: pass it on
            raise

    def _release(self) -> None:
        if not self._waiting.wake_next():
            self._free += 1
