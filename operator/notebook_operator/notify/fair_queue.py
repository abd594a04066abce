"""Notices queued per namespace and served in turn: one namespace's backlog or slow webhook never holds back
another's notice. Each namespace's queue is bounded; at most one of a namespace's notices is in flight at a time, so
a namespace whose hook drips holds at most one worker, and the others go on serving the other namespaces."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Full(Exception):
    """The namespace's queue is full."""


class FairQueue(Generic[T]):
    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._queues: dict[str, deque[T]] = {}
        self._turns: deque[str] = deque()  # keys with waiting items, in serving order
        self._busy: set[str] = set()  # keys with an item in flight
        self._changed = asyncio.Event()
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def put_nowait(self, key: str, item: T) -> None:
        queue = self._queues.setdefault(key, deque())
        if len(queue) >= self.per_key:
            raise Full(key)
        queue.append(item)
        if key not in self._turns:
            self._turns.append(key)
        self._unfinished += 1
        self._idle.clear()
        self._changed.set()

    async def get(self) -> tuple[str, T]:
        """The next item of the next namespace in turn with none in flight; call task_done(key) after it."""
        while True:
            for _ in range(len(self._turns)):
                key = self._turns.popleft()
                if key in self._busy:
                    self._turns.append(key)
                    continue
                queue = self._queues[key]
                item = queue.popleft()
                if queue:
                    self._turns.append(key)
                else:
                    del self._queues[key]
                self._busy.add(key)
                return key, item
            self._changed.clear()
            await self._changed.wait()

    def task_done(self, key: str) -> None:
        self._busy.discard(key)
        self._unfinished -= 1
        if self._unfinished == 0:
            self._idle.set()
        self._changed.set()

    async def join(self) -> None:
        await self._idle.wait()

    def waiting(self, key: str) -> int:
        return len(self._queues.get(key, ()))
