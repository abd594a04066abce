"""When a running instance last became Running, exactly, where the cloud can say (PAI-DSW's GetLifecycle).

The listing gives an estimate (PAI-DSW: GmtModifiedTime, which any later modification moves; ModelArts: the lease's
create_at). An afterRunning timer needs the exact time, so for a notebook with one the lifecycle is read once per
start: the time is kept in status.startedAt (startedAtSource GetLifecycle) and read again only when the estimate
moves (a restart, or any other modification), never per poll. Notebooks without such a timer keep the estimate, so
adopting thousands of running instances costs no call each.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from notebook_operator.providers.base import Provider
from notebook_operator.providers.errors import ProviderError, Unsupported
from notebook_operator.providers.types import CloudInstance
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.times import parse_rfc3339

logger = logging.getLogger(__name__)

LIFECYCLE = "GetLifecycle"
# The estimate is stamped at the same transition as the lifecycle's Running record, give or take this.
SLACK = timedelta(seconds=60)


class StartTimes:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self._covered: dict[str, datetime] = {}  # by uid: the estimate the last lifecycle read (or reuse) covered

    async def exact(
        self, notebook: Notebook, status: Mapping[str, Any], observed: CloudInstance | None
    ) -> CloudInstance | None:
        """`observed` with its started_at from the lifecycle when it matters and the cloud says (else as it is)."""
        if observed is None or observed.phase != "Running" or observed.started_at is None:
            self._covered.pop(notebook.uid, None)
            return observed
        shutdown = notebook.spec.shutdown
        if shutdown is None or not shutdown.after_running:
            return observed
        estimate = observed.started_at
        known = None
        if status.get("phase") == "Running" and status.get("startedAtSource") == LIFECYCLE:
            known = parse_rfc3339(status.get("startedAt"))
        covered = self._covered.get(notebook.uid)
        # Reused while the estimate has not moved since it was covered (after a restart of the operator: while it
        # is no later than the known start, so a stop and start while the operator was away is read again).
        if known is not None and (estimate == covered or (covered is None and estimate <= known + SLACK)):
            self._covered[notebook.uid] = estimate
            return observed.model_copy(update={"started_at": known, "started_at_source": LIFECYCLE})
        try:
            exact = await self.provider.running_since(observed.id)
        except Unsupported:
            return observed
        except ProviderError as e:  # the estimate errs late (a timer fires later, never earlier): fine for a pass
            logger.info("%s/%s: lifecycle not read: %s", notebook.namespace, notebook.name, e)
            return observed
        if exact is None:
            return observed
        self._covered[notebook.uid] = estimate
        return observed.model_copy(update={"started_at": exact, "started_at_source": LIFECYCLE})
