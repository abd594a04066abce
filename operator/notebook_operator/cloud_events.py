"""The cloud's own events of a notebook that failed or is stuck, as Kubernetes Events.

Read only for a notebook whose cloud reason is new and says it failed, or that has been in a transition longer
than STUCK_AFTER (then at most once per STUCK_AFTER): never per notebook per poll, so a healthy account's calls
per cycle stay what they were. Deduplicated per notebook; at most MAX_EVENTS Events per read.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from notebook_operator.api.meta import CLOUD_REASON_MAX
from notebook_operator.executor import EventSink
from notebook_operator.providers.base import Provider
from notebook_operator.providers.errors import ProviderError
from notebook_operator.providers.types import TRANSITIONAL_PHASES, CloudInstance, one_line
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.times import parse_rfc3339

logger = logging.getLogger(__name__)

MAX_EVENTS = 10
STUCK_AFTER = timedelta(minutes=10)
LOOK_BACK = timedelta(hours=1)  # how far back the first read of a notebook looks
SEEN_PER_NOTEBOOK = 50
NOTEBOOKS_REMEMBERED = 10_000  # the troubled ones, most recently read last


def reconciling_since(status: Mapping[str, Any]) -> datetime | None:
    """When the notebook's Reconciling condition last became True (None: it is not reconciling)."""
    for c in status.get("conditions") or []:
        if c.get("type") == "Reconciling" and c.get("status") == "True":
            return parse_rfc3339(c.get("lastTransitionTime"))
    return None


def worth_reading(
    observed: CloudInstance, status: Mapping[str, Any], new_reason: bool, last_read: datetime | None, now: datetime
) -> bool:
    """A new failure, or a transition that has taken longer than expected (and not read for as long)."""
    if observed.phase == "Failed":
        return new_reason
    if observed.phase not in TRANSITIONAL_PHASES:
        return False
    since = reconciling_since(status)
    stuck = since is not None and now - since >= STUCK_AFTER
    return stuck and (last_read is None or now - last_read >= STUCK_AFTER)


@dataclass
class _Read:
    at: datetime
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)


class CloudEvents:
    """One per account (AccountState): poll passes and spec passes share what was read and posted."""

    def __init__(self) -> None:
        self._reads: OrderedDict[str, _Read] = OrderedDict()  # by the notebook's uid

    async def after_pass(
        self,
        provider: Provider,
        emit: EventSink,
        notebook: Notebook,
        status: Mapping[str, Any],
        observed: CloudInstance,
        new_reason: bool,
        now: datetime,
    ) -> int:
        """Read and post the cloud's events when worth it; returns how many Events were posted."""
        read = self._reads.get(notebook.uid)
        if not worth_reading(observed, status, new_reason, read.at if read else None, now):
            return 0
        since = read.at - timedelta(minutes=1) if read else now - LOOK_BACK
        try:
            found = await provider.instance_events(observed.id, since, MAX_EVENTS)
        except ProviderError as e:  # Unsupported included: the condition and cloudReason still say why
            logger.info("%s/%s: cloud events not read: %s", notebook.namespace, notebook.name, e)
            found = []
        read = read or _Read(now)
        read.at = now
        self._reads[notebook.uid] = read
        self._reads.move_to_end(notebook.uid)
        while len(self._reads) > NOTEBOOKS_REMEMBERED:
            self._reads.popitem(last=False)
        new = [text for text in found if text not in read.seen][-MAX_EVENTS:]
        for text in new:
            read.seen[text] = None
            emit(notebook.ref, "Warning", "CloudEvent", one_line(text)[:CLOUD_REASON_MAX])
        while len(read.seen) > SEEN_PER_NOTEBOOK:
            read.seen.popitem(last=False)
        return len(new)
