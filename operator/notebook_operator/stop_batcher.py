"""Batched stops within one poll pass of an account whose cloud has a batch call (PAI-DSW StopInstances).

The notebooks' passes of a cycle run concurrently; each claims its notebook (its own conditional lastAction write)
and then hands its stop here instead of calling StopInstance. A StopInstances call goes out when `batch_size`
stops wait, when no pass of the cycle is still running (each one has finished or waits for its stop), or at the
latest `max_age` (1 s) after its first member joined, whatever else is running: a wave of N due stops costs about
ceil(N / batch_size) calls, and no stop waits on another pass's progress. Each notebook gets its own outcome from
the answer: in
InstanceIds, stopped; named in AccessDeniedDetail, PermissionDenied for it alone; neither, already stopping or
stopped (Conflict, which a stop counts as done). A batch that fails whole fails each member the same way
(PermissionDenied when the call was refused, else Transient), and those instances are stopped one by one
(StopInstance) the next time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, runtime_checkable

from notebook_operator.providers import priority
from notebook_operator.providers.errors import Conflict, PermissionDenied, ProviderError, Transient
from notebook_operator.providers.priority import CallClass
from notebook_operator.providers.types import BatchStop
from notebook_operator.waiters import waiting_on

logger = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 50  # our choice: the cloud documents no maximum
MAX_AGE_S = 1.0  # a partial batch goes out at most this long after its first member joined


@runtime_checkable
class BatchStopper(Protocol):
    name: str

    async def stop_instances(self, instance_ids: list[str]) -> BatchStop: ...
    async def stop_instance(self, instance_id: str, save_image: bool = False) -> None: ...


class StopBatcher:
    def __init__(
        self, provider: BatchStopper, batch_size: int = DEFAULT_BATCH_SIZE, max_age: float = MAX_AGE_S
    ) -> None:
        self.provider = provider
        self.batch_size = max(1, batch_size)
        self.max_age = max_age
        self.single: set[str] = set()  # members of a failed batch: stopped alone next time
        self._queue: list[tuple[str, asyncio.Future[None]]] = []
        self._running = 0
        self._sending: set[asyncio.Task[None]] = set()
        self._aged: asyncio.TimerHandle | None = None  # sends the partial batch when its first member is max_age old

    def begin(self, passes: int) -> None:
        """A cycle starts `passes` notebook passes; each ends with `leave()` (a cycle's passes may outlast it)."""
        self._running += passes

    def leave(self) -> None:
        self._running -= 1
        self._flush()

    async def stop(self, instance_id: str) -> None:
        """Stop one instance with the others of this cycle; raises its own outcome as a ProviderError."""
        if instance_id in self.single:
            self.single.discard(instance_id)
            with priority.calls(CallClass.STOP):
                await self.provider.stop_instance(instance_id)
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        done.add_done_callback(_retrieve)
        self._queue.append((instance_id, done))
        if self._aged is None:
            self._aged = loop.call_later(self.max_age, self._send_aged)
        self._running -= 1  # waiting here, not deciding anything more
        try:
            self._flush()
            with waiting_on(f"its batched stop (StopInstances of up to {self.batch_size})"):
                await asyncio.shield(done)  # a cancelled pass leaves the batch its call; the answer is just not read
        finally:
            self._running += 1

    def _send_aged(self) -> None:
        self._aged = None
        self._flush(everything=True)

    def _flush(self, everything: bool = False) -> None:
        while len(self._queue) >= self.batch_size or (self._queue and (self._running <= 0 or everything)):
            batch, self._queue = self._queue[: self.batch_size], self._queue[self.batch_size :]
            task = asyncio.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        if not self._queue and self._aged is not None:
            self._aged.cancel()
            self._aged = None
        elif self._queue and self._aged is None:  # the rest of a full batch: its own age bound
            self._aged = asyncio.get_running_loop().call_later(self.max_age, self._send_aged)

    async def _send(self, batch: list[tuple[str, asyncio.Future[None]]]) -> None:
        ids = [instance_id for instance_id, _ in batch]
        try:
            with priority.calls(CallClass.STOP, ""):
                answer = await self.provider.stop_instances(ids)
        except ProviderError as e:
            self._failed(batch, e)
            return
        except BaseException as e:  # cancelled, or a bug: no member waits for an answer forever
            self._failed(batch, Transient(f"the batched stop ended unanswered ({type(e).__name__})",
                                          provider=self.provider.name, operation="StopInstances"))  # fmt: skip
            raise
        self._answered(batch, answer)

    def _failed(self, batch: list[tuple[str, asyncio.Future[None]]], e: ProviderError) -> None:
        ids = [instance_id for instance_id, _ in batch]
        self.single.update(ids)
        name = self.provider.name
        logger.warning("%s StopInstances of %d failed (%s); each is stopped alone next time", name, len(ids), e.reason)
        kind = PermissionDenied if isinstance(e, PermissionDenied) else Transient
        failure = kind(
            f"the batched stop failed ({e.code or e.reason}); it is retried alone",
            provider=self.provider.name,
            operation="StopInstances",
            code=e.code,
            request_id=e.request_id,
        )
        for _, done in batch:
            if not done.done():
                done.set_exception(failure)

    def _answered(self, batch: list[tuple[str, asyncio.Future[None]]], answer: BatchStop) -> None:
        for instance_id, done in batch:
            if done.done():
                continue
            if instance_id in answer.stopped:
                done.set_result(None)
            elif instance_id in answer.denied:
                done.set_exception(
                    PermissionDenied(
                        answer.denied[instance_id],
                        provider=self.provider.name,
                        operation="StopInstances",
                        code="AccessDenied",
                    )
                )
            else:
                done.set_exception(
                    Conflict(
                        "not stopped by the batch: already stopping or stopped",
                        provider=self.provider.name,
                        operation="StopInstances",
                    )
                )


def _retrieve(future: asyncio.Future[None]) -> None:
    """A member whose pass was cancelled: its outcome is read by nobody (the next pass looks at the instance)."""
    if not future.cancelled():
        future.exception()
