"""Waiters for a scarce thing (an API write slot, a rate-limit token), and what a pass is waiting on.

`Waiters` serves its waiters by class (0 first), and within a class round-robin over keys (a namespace), each key's
waiters in arrival order: one namespace's wave cannot starve another's due stop, and what waited longest in a
namespace goes first. Whoever has the thing to give calls `wake_next`; a waiter cancelled meanwhile is skipped.

`waiting_on` names what the current pass awaits (a write slot, a rate-limit turn, a batch, a cloud call): when a pass
is abandoned at its deadline, its warning says what it waited on.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass


class Waiters:
    def __init__(self, classes: int = 2) -> None:
        self._classes: list[dict[str, deque[asyncio.Future[None]]]] = [{} for _ in range(classes)]
        self._turns: list[deque[str]] = [deque() for _ in range(classes)]  # keys with waiters, in serving order

    def __bool__(self) -> bool:
        """Somebody is still waiting (cancelled waiters are dropped on the way)."""
        for by_key, turns in zip(self._classes, self._turns, strict=True):
            for key in list(turns):
                queue = by_key[key]
                while queue and queue[0].done():
                    queue.popleft()
                if queue:
                    return True
                turns.remove(key)
                del by_key[key]
        return False

    def __len__(self) -> int:
        return sum(len(queue) for by_key in self._classes for queue in by_key.values())

    def join(self, priority: int = 0, key: str = "") -> asyncio.Future[None]:
        """A place in the queue of class `priority` (clamped to the classes there are); its future is resolved when
        it is this waiter's turn."""
        priority = min(max(priority, 0), len(self._classes) - 1)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        by_key, turns = self._classes[priority], self._turns[priority]
        if key not in by_key:
            by_key[key] = deque()
            turns.append(key)
        by_key[key].append(waiter)
        return waiter

    def wake_next(self) -> bool:
        """Give the turn to the next live waiter; False when nobody waits."""
        for by_key, turns in zip(self._classes, self._turns, strict=True):
            while turns:
                key = turns.popleft()
                queue = by_key[key]
                while queue and queue[0].done():
                    queue.popleft()
                if not queue:
                    del by_key[key]
                    continue
                waiter = queue.popleft()
                if queue:
                    turns.append(key)  # its next waiter after the other keys' first
                else:
                    del by_key[key]
                waiter.set_result(None)
                return True
        return False


@dataclass
class Progress:
    """What one pass is doing now: updated around each await that can take long."""

    waiting_on: str = "deciding"


_PROGRESS: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("pass_progress", default=None)


def track(progress: Progress) -> None:
    """Make `progress` the current task's (a pass task sets it first)."""
    _PROGRESS.set(progress)


@contextlib.contextmanager
def waiting_on(what: str) -> Iterator[None]:
    """Say, for the current pass if any, that it awaits `what` until the block ends."""
    progress = _PROGRESS.get()
    if progress is None:
        yield
        return
    before, progress.waiting_on = progress.waiting_on, what
    try:
        yield
    finally:
        progress.waiting_on = before
