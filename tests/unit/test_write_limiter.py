"""The API write limiter: at most N in flight, urgent waiters served before the others, in order within each."""

from __future__ import annotations

import asyncio

from notebook_operator.write_limiter import WriteLimiter


async def test_urgent_writes_overtake_the_queue_and_at_most_n_run() -> None:
    limiter = WriteLimiter(2)
    started: list[str] = []
    running = 0
    most = 0
    gate = asyncio.Event()

    async def write(name: str, urgent: bool = False) -> None:
        nonlocal running, most
        async with limiter.slot(urgent):
            started.append(name)
            running += 1
            most = max(most, running)
            await gate.wait()
            running -= 1

    tasks = [asyncio.create_task(write(f"wave-{k}")) for k in range(5)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(write("mirror", urgent=True)))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*tasks)
    assert started == ["wave-0", "wave-1", "mirror", "wave-2", "wave-3", "wave-4"]
    assert most == 2


async def test_a_cancelled_waiter_gives_up_its_place_and_loses_no_slot() -> None:
    limiter = WriteLimiter(1)
    gate = asyncio.Event()

    async def hold() -> None:
        async with limiter.slot():
            await gate.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter.cancel()
    gate.set()
    await holder
    async with asyncio.timeout(1):  # the slot is free again: not leaked to the cancelled waiter
        async with limiter.slot():
            pass
