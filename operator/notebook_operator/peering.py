"""High availability around kopf peering: the start-up check that the peering object exists, and the
replica's role (active or standby) as a metric, a log line on every change and a health probe value.

kopf itself pauses and resumes the handlers; this module only reads the same peering object and applies
the same rule (reconcile/peering.py), so what the operator reports is what kopf does.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from notebook_operator import metrics
from notebook_operator.kube import Kube, PeeringCrdMissing
from notebook_operator.reconcile.peering import Verdict, combined, verdict

logger = logging.getLogger(__name__)
RECHECK_S = 2.0  # how stale the reported role may be (per watched namespace); kopf's own switch is event-driven


@dataclass(frozen=True)
class PeeringSetup:
    """What the runner decided: `name` None means standalone (no peering at all)."""

    name: str | None
    namespaces: list[str]
    identity: str
    priority: int
    lifetime: int
    mandatory: bool

    @classmethod
    def standalone(cls) -> PeeringSetup:
        return cls(name=None, namespaces=[], identity="", priority=0, lifetime=0, mandatory=False)


async def missing_peering(kube: Kube, setup: PeeringSetup, patience: float = 60.0) -> str | None:
    """Why peering as requested cannot work (CRD or object missing, not allowed to read it), else None.
    Transient API errors (429 while a new CRD's storage initializes, 5xx, no connection) are retried."""
    assert setup.name is not None
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        try:
            items = await kube.peering_objects(setup.name, setup.namespaces)
            break
        except PeeringCrdMissing as e:
            return str(e)
        except ApiException as e:
            if e.status in (401, 403):
                return f"cannot list the peering objects ({e.status} {e.reason}): the operator's RBAC needs list"
            if asyncio.get_running_loop().time() > deadline:
                return f"cannot list the peering objects: {e.status} {e.reason}"
        except (TimeoutError, OSError, aiohttp.ClientError) as e:
            if asyncio.get_running_loop().time() > deadline:
                return f"cannot reach the API server to check peering: {e}"
        await asyncio.sleep(1)
    found = {str(item["metadata"].get("namespace") or "") for item in items}
    wanted = set(setup.namespaces) or {""}
    absent = sorted(wanted - found)
    if not absent:
        return None
    if not setup.namespaces:
        manifest = f"apiVersion: kopf.dev/v1\nkind: ClusterKopfPeering\nmetadata:\n  name: {setup.name}"
        what = f"ClusterKopfPeering {setup.name!r}"
    else:
        manifest = f"apiVersion: kopf.dev/v1\nkind: KopfPeering\nmetadata:\n  name: {setup.name}\n  namespace: NS"
        what = f"KopfPeering {setup.name!r} in namespace(s) {', '.join(absent)}"
    return (
        f"peering {setup.name!r} was requested but the {what} does not exist, so every replica would wait "
        f"for it and reconcile nothing. Create it (the Helm chart does with replicaCount > 1 or "
        f"peering.enabled=true), e.g. kubectl apply -f - <<EOF\n{manifest}\nEOF\n"
        f"or run with --standalone."
    )


@dataclass
class Role:
    """This replica's role, kept current by `watch` while the operator runs."""

    setup: PeeringSetup
    current: Verdict = field(default_factory=lambda: Verdict(True, "active: standalone"))
    _task: asyncio.Task[None] | None = None
    _reported: bool = False

    @property
    def name(self) -> str:
        return "active" if self.current.active else "standby"

    def start(self, kube: Kube) -> None:
        if self.setup.name is None:
            self._set(Verdict(True, "active: standalone (no peering)"))
            return
        if self.setup.mandatory:
            # kopf starts a mandatory peering paused until it has read the peering object.
            self._set(Verdict(False, "standby: reading the peering object"))
        self._task = asyncio.create_task(self._watch(kube), name="peering role")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _set(self, new: Verdict) -> None:
        changed = new.active != self.current.active or not self._reported
        self.current = new
        metrics.ACTIVE.set(1 if new.active else 0)
        if changed:
            self._reported = True
            if self.setup.name is None:
                logger.info("no peering: this replica is %s", new.why)
            else:
                logger.info(
                    "peering %s: this replica (%s, priority %d) is now %s",
                    self.setup.name,
                    self.setup.identity,
                    self.setup.priority,
                    new.why,
                )

    async def _watch(self, kube: Kube) -> None:
        assert self.setup.name is not None
        self._reported = False  # the first reading is always logged
        while True:
            now = datetime.now(UTC)
            try:
                items = await kube.peering_objects(self.setup.name, self.setup.namespaces)
            except PeeringCrdMissing:
                # Optional peering without its CRDs: kopf runs alone, and so do we.
                new = Verdict(True, "active: no peering CRDs, running alone")
            except Exception as e:  # the API server is away: the role kopf acts on has not changed either
                logger.debug("peering role not refreshed: %s", e)
                await asyncio.sleep(RECHECK_S)
                continue
            else:
                new = combined(
                    [verdict(item.get("status"), self.setup.identity, self.setup.priority, now) for item in items]
                )
            self._set(new)
            # One list per namespace each time: spread them out when there are many (at most one lifetime).
            wait = min(RECHECK_S * max(1, len(self.setup.namespaces)), float(max(self.setup.lifetime, RECHECK_S)))
            if new.recheck_at is not None:
                wait = min(wait, max(0.1, (new.recheck_at - datetime.now(UTC)).total_seconds()))
            await asyncio.sleep(wait)
