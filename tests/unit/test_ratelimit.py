"""The account's token bucket: never faster than its rate; by class (the listing, then due stops, then actions, reads,
housekeeping), round-robin by namespace within a class, arrival order within a namespace; no wait without an end."""

from __future__ import annotations

import asyncio
import time

import pytest

from notebook_operator.providers.priority import CallClass
from notebook_operator.providers.ratelimit import LocalThrottle, TokenBucket


async def test_urgent_calls_take_the_next_token_before_those_already_waiting() -> None:
    bucket = TokenBucket(rate=50, burst=1)
    order: list[str] = []

    async def call(name: str, urgent: bool = False) -> None:
        await bucket.acquire(CallClass.LIST if urgent else CallClass.STOP)
        order.append(name)

    actions = [asyncio.create_task(call(f"stop-{k}")) for k in range(4)]
    await asyncio.sleep(0)
    listing = asyncio.create_task(call("list", urgent=True))
    await asyncio.gather(*actions, listing)
    assert order == ["stop-0", "list", "stop-1", "stop-2", "stop-3"]


async def test_never_faster_than_the_rate_and_a_cancelled_waiter_is_skipped() -> None:
    bucket = TokenBucket(rate=40, burst=1)
    started = time.monotonic()
    waiters = [asyncio.create_task(bucket.acquire()) for _ in range(9)]
    await asyncio.sleep(0)
    waiters[3].cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    # 8 served: the first from the burst, 7 more at 40 a second; the cancelled one took no token.
    assert time.monotonic() - started >= 7 / 40 - 0.01
    assert sum(1 for w in waiters if not w.cancelled()) == 8


async def test_stops_go_before_actions_and_reads_and_housekeeping_goes_last() -> None:
    bucket = TokenBucket(rate=100, burst=1)
    order: list[str] = []

    async def call(name: str, kind: CallClass) -> None:
        await bucket.acquire(kind)
        order.append(name)

    first = asyncio.create_task(call("first", CallClass.READ))  # takes the burst
    await asyncio.sleep(0)
    waiting = [("tags-1", CallClass.HOUSEKEEPING), ("tags-2", CallClass.HOUSEKEEPING), ("read", CallClass.READ),
               ("start", CallClass.ACT), ("stop", CallClass.STOP), ("list", CallClass.LIST)]  # fmt: skip
    tasks = [asyncio.create_task(call(name, kind)) for name, kind in waiting]
    await asyncio.gather(first, *tasks)
    assert order == ["first", "list", "stop", "start", "read", "tags-1", "tags-2"]


async def test_namespaces_take_turns_within_a_class() -> None:
    """A wave of one namespace does not hold back another namespace's stop that arrived after it."""
    bucket = TokenBucket(rate=200, burst=1)
    order: list[str] = []

    async def call(name: str, namespace: str) -> None:
        await bucket.acquire(CallClass.STOP, namespace)
        order.append(name)

    tasks = [asyncio.create_task(call(f"a{k}", "team-a")) for k in range(5)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(call("b0", "team-b")))
    await asyncio.gather(*tasks)
    assert order == ["a0", "a1", "b0", "a2", "a3", "a4"]


async def test_a_waiter_without_a_turn_by_its_deadline_is_told_and_takes_no_token() -> None:
    bucket = TokenBucket(rate=2, burst=1)
    await bucket.acquire()  # the burst
    with pytest.raises(LocalThrottle):
        await bucket.acquire(CallClass.HOUSEKEEPING, within=0.1)
    started = time.monotonic()
    await bucket.acquire(CallClass.STOP, within=5)  # the next token is still there for the next waiter
    assert time.monotonic() - started < 0.5
