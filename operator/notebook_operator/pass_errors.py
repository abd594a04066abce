"""Bulkheads: an unexpected error in one notebook's pass is that notebook's alone.

The pass ends; its cycle and the account's other notebooks go on. The notebook gets `Ready=False` reason
`ReconcileError` (the error's type only: an exception may carry a remote answer, which is never reflected), one
Warning Event and one logged traceback per distinct error, and its own backoff - doubling from 1 s up to ten poll
intervals - during which the cycles leave it out; a pass that succeeds ends the backoff. Counted in
`notebook_operator_reconcile_errors_total{kind,namespace}`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from kubernetes_asyncio.client.exceptions import ApiException

from notebook_operator import metrics
from notebook_operator.executor import EventSink
from notebook_operator.kube import Kube, StatusRejected
from notebook_operator.reconcile.conditions import kstatus
from notebook_operator.reconcile.notebook import KIND, Notebook
from notebook_operator.times import now as utcnow

logger = logging.getLogger(__name__)
RECONCILE_ERROR = "ReconcileError"
FIRST_BACKOFF_S = 1.0


@dataclass
class Failing:
    error: str  # the error's type: what makes it distinct
    backoff_s: float
    until: float  # monotonic: the cycles leave the notebook out until then


class PassErrors:
    def __init__(self, kube: Kube, emit: EventSink, kind: str = KIND) -> None:
        self.kube = kube
        self.emit = emit
        self.kind = kind
        self._failing: dict[str, Failing] = {}
        self._telling: set[asyncio.Task[None]] = set()

    def backing_off(self, uid: str, now: float | None = None) -> bool:
        failing = self._failing.get(uid)
        return failing is not None and (now if now is not None else time.monotonic()) < failing.until

    def prune(self, keep: set[str]) -> None:
        """Forget objects no longer tracked."""
        for uid in set(self._failing) - keep:
            del self._failing[uid]

    def succeeded(self, uid: str) -> None:
        self._failing.pop(uid, None)

    def failed(self, item: Notebook, error: BaseException, interval_s: float) -> None:
        kind = type(error).__name__
        before = self._failing.get(item.uid)
        cap = max(FIRST_BACKOFF_S, 10 * interval_s)
        backoff = FIRST_BACKOFF_S if before is None else min(cap, before.backoff_s * 2)
        self._failing[item.uid] = Failing(kind, backoff, time.monotonic() + backoff)
        metrics.RECONCILE_ERRORS.labels(self.kind, item.namespace).inc()
        if before is not None and before.error == kind:
            logger.info("%s %s/%s: %s again; next pass in %.0fs", self.kind, item.namespace, item.name, kind, backoff)
            return
        logger.error("%s %s/%s: the pass failed", self.kind, item.namespace, item.name, exc_info=error)
        task = asyncio.get_running_loop().create_task(self._tell(item, kind, backoff))
        self._telling.add(task)
        task.add_done_callback(self._telling.discard)

    async def _tell(self, item: Notebook, kind: str, backoff: float) -> None:
        message = f"{kind} in the operator's pass (the operator's log has the traceback); retried with backoff"
        self.emit(item.ref, "Warning", RECONCILE_ERROR, message)
        conditions = kstatus(
            item.status.get("conditions"),
            ready=False,
            reconciling=True,
            stalled=False,
            reason=RECONCILE_ERROR,
            message=message,
            now=utcnow(),
            generation=item.generation,
        )
        try:
            await self.kube.patch_status(self.kind, item.namespace, item.name, {"conditions": conditions})
        except (ApiException, StatusRejected, TimeoutError) as e:  # told by the Event and the log; the next try says it
            logger.info("%s %s/%s: ReconcileError not written: %s", self.kind, item.namespace, item.name, e)
