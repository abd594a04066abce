"""At most N API writes in flight, the urgent ones first: during a wave of due stops the claims and outcomes of
thousands of notebooks wait their turn, while another notebook's mirrored change goes out at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from notebook_operator.waiters import Waiters


class WriteLimiter:
    def __init__(self, concurrency: int) -> None:
        self._free = concurrency
        self._waiting = Waiters(2)  # urgent ones (class 0) first

    def __len__(self) -> int:
        """How many wait for a slot (an estimate: cancelled waiters count until they are passed over)."""
        return len(self._waiting)

    @contextlib.asynccontextmanager
    async def slot(self, urgent: bool = False, within: float | None = None) -> AsyncIterator[None]:
        """A slot for one write; TimeoutError after waiting `within` seconds for it (None: no deadline)."""
        async with asyncio.timeout(within):
            await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        waiter = self._waiting.join(0 if urgent else 1)
        try:
            await waiter  # the slot is handed over by _release
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed over just as it was cancelled: pass it on
            raise

    def _release(self) -> None:
        if not self._waiting.wake_next():
            self._free += 1
