"""Batched stops within one poll pass of an account whose cloud has a batch call (PAI-DSW StopInstances).

The notebooks' passes of a cycle run concurrently; each claims its notebook (its own conditional lastAction write)
and then hands its stop here instead of calling StopInstance. A StopInstances call goes out when `batch_size`
stops wait, or when no pass of the cycle is still running (each one has finished or waits for its stop), so a
wave of N due stops costs ceil(N / batch_size) calls. Each notebook gets its own outcome from the answer: in
InstanceIds, stopped; named in AccessDeniedDetail, PermissionDenied for it alone; neither, already stopping or
stopped (Conflict, which a stop counts as done). A batch that fails whole fails each member the same way
(PermissionDenied when the call was refused, else Transient), and those instances are stopped one by one
(StopInstance) the next time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, runtime_checkable

from notebook_operator.providers.errors import Conflict, PermissionDenied, ProviderError, Transient
from notebook_operator.providers.types import BatchStop

logger = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 50  # our choice: the cloud documents no maximum


@runtime_checkable
class BatchStopper(Protocol):
    name: str

    async def stop_instances(self, instance_ids: list[str]) -> BatchStop: ...
    async def stop_instance(self, instance_id: str, save_image: bool = False) -> None: ...


class StopBatcher:
    def __init__(self, provider: BatchStopper, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.provider = provider
        self.batch_size = max(1, batch_size)
        self.single: set[str] = set()  # members of a failed batch: stopped alone next time
        self._queue: list[tuple[str, asyncio.Future[None]]] = []
        self._running = 0
        self._sending: set[asyncio.Task[None]] = set()

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
            await self.provider.stop_instance(instance_id)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((instance_id, done))
        self._running -= 1  # waiting here, not deciding anything more
        try:
            self._flush()
            await done
        finally:
            self._running += 1

    def _flush(self) -> None:
        while len(self._queue) >= self.batch_size or (self._queue and self._running <= 0):
            batch, self._queue = self._queue[: self.batch_size], self._queue[self.batch_size :]
            task = asyncio.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[str, asyncio.Future[None]]]) -> None:
        ids = [instance_id for instance_id, _ in batch]
        try:
            answer = await self.provider.stop_instances(ids)
        except ProviderError as e:
            self.single.update(ids)
            logger.warning(
                "%s StopInstances of %d failed (%s); each is stopped alone next time",
                self.provider.name,
                len(ids),
                e.reason,
            )
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
            return
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
