"""When a running instance last became Running, exactly, where the cloud can say (PAI-DSW's GetLifecycle).

The listing gives an estimate (PAI-DSW: GmtModifiedTime, which any later modification moves - the operator's own tag
writes too; ModelArts: the lease's create_at). An afterRunning timer and a policy's maxRunningHours cap need the exact
time, so for a notebook with either the lifecycle is read once per start: the time is kept in status.startedAt
(startedAtSource GetLifecycle) and read again only when the estimate moves (a restart, or any other modification),
never per poll. Notebooks without either keep the estimate, so adopting thousands of running instances costs no call
each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from notebook_operator.providers.base import Provider
from notebook_operator.providers.errors import ProviderError, Unsupported
from notebook_operator.providers.types import CloudInstance
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.times import parse_rfc3339

logger = logging.getLogger(__name__)

LIFECYCLE = "GetLifecycle"
FIRST_SEEN = "first poll seen Running"
# The estimate is stamped at the same transition as the lifecycle's Running record, give or take this.
SLACK = timedelta(seconds=60)
# A modification's time as the cloud stamps it (whole seconds) against our clock around the call.
WRITE_SLACK = timedelta(seconds=2)


def first_seen(observed: CloudInstance, status: Mapping[str, Any]) -> CloudInstance:
    """A running instance whose cloud gives no start time (a ModelArts notebook without a lease): the first poll
    that saw it Running, kept in status.startedAt. It errs late, never early: a timer fires later, not sooner."""
    seen = status.get("startedAtSource") == FIRST_SEEN and status.get("phase") == "Running"
    started = (parse_rfc3339(status.get("startedAt")) if seen else None) or datetime.now(UTC)
    return observed.model_copy(update={"started_at": started, "started_at_source": FIRST_SEEN})


class StartTimes:
    """One per account (AccountState): poll passes and spec passes share what was read."""

    def __init__(self) -> None:
        # By uid: (the estimate a lifecycle read covered, the exact start it gave). A pass of the same start reuses
        # it even before its status write is seen; two passes at once share one read.
        self._covered: dict[str, tuple[datetime, datetime]] = {}
        self._reading: dict[str, asyncio.Future[datetime | None]] = {}
        # By uid: the operator's own last write to the instance (its tags): when it began and ended, and the estimate
        # before it. PAI-DSW's estimate (GmtModifiedTime) moves into that window; a restart (stop, then start) takes
        # far longer than the window, so an estimate there is our own doing, not a new run.
        self._written: dict[str, tuple[datetime, datetime, datetime]] = {}
        # By uid: (the estimate our write moved it to, the estimate before): until the estimate moves again.
        self._ours: dict[str, tuple[datetime, datetime]] = {}

    def prune(self, keep: set[str]) -> None:
        """Forget notebooks no longer tracked."""
        for remembered in (self._covered, self._written, self._ours):
            for uid in set(remembered) - keep:
                del remembered[uid]

    def modified_by_us(self, uid: str, before: datetime | None, began: datetime, ended: datetime) -> None:
        """The operator modified the instance (a tag write) between `began` and `ended`, when the listing's estimate
        was `before`: the estimate moving into that window does not start a new run for timers (a shutdown.at or a
        schedule that fell due would otherwise no longer apply to it) and costs no second lifecycle read."""
        if before is None:
            return
        ours = self._ours.get(uid)
        self._written[uid] = (began, ended, ours[1] if ours is not None and ours[0] == before else before)

    def _as_before_our_write(self, uid: str, observed: CloudInstance) -> CloudInstance:
        estimate = observed.started_at
        assert estimate is not None
        ours = self._ours.get(uid)
        written = self._written.get(uid)
        if (ours is None or ours[0] != estimate) and written is not None and estimate != written[2]:
            del self._written[uid]
            began, ended, before = written
            if began - WRITE_SLACK <= estimate <= ended + WRITE_SLACK:
                ours = self._ours[uid] = (estimate, before)
        if ours is not None and ours[0] == estimate:
            return observed.model_copy(update={"started_at": ours[1]})
        self._ours.pop(uid, None)
        return observed

    async def exact(
        self,
        provider: Provider,
        notebook: Notebook,
        status: Mapping[str, Any],
        observed: CloudInstance | None,
        matters: bool,
    ) -> CloudInstance | None:
        """`observed` with its started_at from the lifecycle when it `matters` (a timer or a running cap counts from
        it) and the cloud says; else as it is."""
        if observed is not None and observed.phase == "Running" and observed.started_at is None:
            return first_seen(observed, status)
        if observed is None or observed.phase != "Running" or observed.started_at is None:
            for remembered in (self._covered, self._written, self._ours):
                remembered.pop(notebook.uid, None)
            return observed
        observed = self._as_before_our_write(notebook.uid, observed)
        if not matters:
            return observed
        estimate = observed.started_at
        assert estimate is not None
        covered = self._covered.get(notebook.uid)
        if covered is not None and covered[0] == estimate:
            return observed.model_copy(update={"started_at": covered[1], "started_at_source": LIFECYCLE})
        known = None
        if status.get("phase") == "Running" and status.get("startedAtSource") == LIFECYCLE:
            known = parse_rfc3339(status.get("startedAt"))
        # After a restart of the operator: the status's start, while the estimate is no later than it (a stop and
        # start while the operator was away moves the estimate, and is read again).
        if covered is None and known is not None and estimate <= known + SLACK:
            self._covered[notebook.uid] = (estimate, known)
            return observed.model_copy(update={"started_at": known, "started_at_source": LIFECYCLE})
        exact = await self._read(provider, notebook, observed.id)
        if exact is None:
            return observed
        self._covered[notebook.uid] = (estimate, exact)
        return observed.model_copy(update={"started_at": exact, "started_at_source": LIFECYCLE})

    async def _read(self, provider: Provider, notebook: Notebook, instance_id: str) -> datetime | None:
        pending = self._reading.get(notebook.uid)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[datetime | None] = asyncio.get_running_loop().create_future()
        self._reading[notebook.uid] = future
        try:
            exact = await provider.running_since(instance_id)
        except Unsupported:
            exact = None
        except ProviderError as e:  # the estimate errs late (a timer fires later, never earlier): fine for a pass
            logger.info("%s/%s: lifecycle not read: %s", notebook.namespace, notebook.name, e)
            exact = None
        except BaseException:  # cancelled: whoever waits on this read falls back to the estimate
            future.set_result(None)
            raise
        finally:
            del self._reading[notebook.uid]
        future.set_result(exact)
        return exact
