"""Waiters for a scarce thing (an API write slot, a rate-limit token), served urgent first and in arrival order
within each class. Whoever has the thing to give calls `wake_next`; a waiter cancelled meanwhile is skipped."""

from __future__ import annotations

import asyncio
from collections import deque


class UrgentFirst:
    def __init__(self) -> None:
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    def __bool__(self) -> bool:
        """Somebody is still waiting (cancelled waiters at the front are dropped on the way)."""
        for queue in (self._urgent, self._normal):
            while queue and queue[0].done():
                queue.popleft()
            if queue:
                return True
        return False

    def join(self, urgent: bool) -> asyncio.Future[None]:
        """A place in the queue; its future is resolved when it is this waiter's turn."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append(waiter)
        return waiter

    def wake_next(self) -> bool:
        """Give the turn to the next live waiter; False when nobody waits."""
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return True
        return False
