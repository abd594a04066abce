"""The account's token bucket: never faster than its rate, in arrival order, a listing's call before the others."""

from __future__ import annotations

import asyncio
import time

from notebook_operator.providers.ratelimit import TokenBucket


async def test_urgent_calls_take_the_next_token_before_those_already_waiting() -> None:
    bucket = TokenBucket(rate=50, burst=1)
    order: list[str] = []

    async def call(name: str, urgent: bool = False) -> None:
        await bucket.acquire(urgent)
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
