"""One poll pass of one cloud account: list everything in pages, then run the NotebookReconciler for each
NotebookInstance that points at the account, with the listing as its observation.

Cost per pass: ceil(N / page size) list calls and one PATCH per changed CR; no per-CR GET.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from notebook_operator import metrics
from notebook_operator.action_budget import QUEUED, ActionBudget, Waiting, capacity, in_turn
from notebook_operator.announcer import Announcer
from notebook_operator.executor import EventSink
from notebook_operator.idle_assessor import IdleAssessor
from notebook_operator.kube import Kube
from notebook_operator.notebook_reconciler import NotebookReconciler, PassResult
from notebook_operator.pass_errors import PassErrors
from notebook_operator.providers import priority
from notebook_operator.providers.base import Provider
from notebook_operator.providers.errors import ProviderError
from notebook_operator.providers.types import CloudInstance
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.reconcile.policies import over_running_cap
from notebook_operator.registry import AccountState, Policies, Snapshots
from notebook_operator.stop_batcher import DEFAULT_BATCH_SIZE, BatchStopper, StopBatcher
from notebook_operator.times import now as utcnow
from notebook_operator.times import parse_rfc3339
from notebook_operator.waiters import Progress, track

logger = logging.getLogger(__name__)


@dataclass
class CycleResult:
    listed: int = 0
    tracked: int = 0
    writes: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # reads refused for permission, by operation
    queued: int = 0  # due actions left for the next pass
    housekeeping: int = 0  # tag writes waiting for calls the stops and actions leave
    next_due: datetime | None = None  # the soonest shutdown still to come, as the statuses say


class AccountReconciler:
    def __init__(
        self,
        provider: Provider,
        kube: Kube,
        emit: EventSink,
        account: str = "",
        policies: Policies | None = None,
        metric_calls_per_cycle: int = 1000,
        announcer: Announcer | None = None,
        state: AccountState | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        snapshots: Snapshots | None = None,
    ) -> None:
        self.provider = provider
        self.account = account
        self.assessor = IdleAssessor(provider, policies, metric_calls_per_cycle) if policies is not None else None
        self.notebooks = NotebookReconciler(provider, kube, emit, self.assessor, announcer, state, snapshots)
        # Clouds with a batch stop call (PAI-DSW StopInstances): the stops of one pass go out together.
        self.stops = StopBatcher(provider, batch_size) if isinstance(provider, BatchStopper) else None
        self.notebooks.executor.stops = self.stops
        self._phases: set[str] = set()
        self._running = 0  # running instances in the last listing
        self._listed = 0  # instances in the last listing
        self._busy: dict[str, asyncio.Task[PassResult]] = {}  # passes still running, by notebook uid
        self._tags_since: dict[str, float] = {}  # notebooks whose tag write waits, since when (monotonic)
        self.errors = PassErrors(kube, emit)  # one notebook's unexpected error is its own
        self._housekeeping: set[asyncio.Task[None]] = set()
        self._interval_s = 0.0

    async def cycle(
        self, tracked: Sequence[Notebook], now: datetime | None = None, calls_per_interval: float | None = None,
        interval_s: float = 0.0,
    ) -> CycleResult:  # fmt: skip
        """List the account and run each notebook's pass as soon as its instance is listed: the first pages'
        notebooks are mirrored while later pages are still coming. Notebooks whose instance is not in the listing
        run once it is complete, after one GET by id (their instance is gone, or moved between pages).

        `calls_per_interval` (rate limit x poll interval): what the pass may spend, listing included; the actions
        that do not fit wait for the next pass (None: no bound). `interval_s`: how long spec passes may observe
        from this listing, and how long the cycle waits for its passes: those still acting then (claims, a batch,
        their writes) finish in the background, and their notebooks sit out the next cycle, which starts on time
        and mirrors every other notebook (0: wait for all)."""
        now = now or utcnow()
        started = time.monotonic()
        for leftover in self._housekeeping:  # the last cycle's housekeeping never runs into this one's
            leftover.cancel()
        busy = set(self._busy)
        self._interval_s = interval_s
        items = [
            item
            for item in tracked
            if item.instance_id and item.uid not in busy and not self.errors.backing_off(item.uid, started)
        ]
        waiting: dict[str, list[Notebook]] = {}
        for item in items:
            waiting.setdefault(item.instance_id or "", []).append(item)
        if self.assessor is not None:
            self.assessor.begin_cycle(self._running)
        if self.stops is not None:
            self.stops.begin(len(items))
        budget = self._budget(items, calls_per_interval)
        self.notebooks.executor.budget = budget

        async def one(item: Notebook, instance: CloudInstance | None, progress: Progress) -> PassResult:
            track(progress)  # what it waits on, for the warning if it is abandoned
            priority.for_namespace(item.namespace)  # its calls take their turn with its namespace's
            try:
                if instance is None and self.notebooks.status_of(item).get("phase") != "Deleted":
                    # Not in the listing: a page can miss an instance that moved while the pages were read (a
                    # deletion before it shifts it to an earlier page). Looked up once by id before it is gone.
                    try:
                        instance = await self.notebooks.observe(item)
                    except ProviderError as e:
                        logger.info("%s/%s: not listed, and not looked up: %s", item.namespace, item.name, e)
                        return PassResult()
                    if instance is not None:
                        observed.setdefault(instance.id, instance)
                return await self.notebooks.reconcile(item, instance, now)
            finally:
                if budget is not None:
                    budget.release(item.uid)

        passes: dict[asyncio.Task[PassResult], Notebook] = {}
        observed: dict[str, CloudInstance] = {}
        stops = self.stops
        loop = asyncio.get_running_loop()

        def start(item: Notebook, instance: CloudInstance | None) -> asyncio.Task[PassResult]:
            progress = Progress()
            task = asyncio.create_task(one(item, instance, progress), name=f"{item.namespace}/{item.name}")
            passes[task] = item
            self._busy[item.uid] = task
            deadline = None
            if interval_s:  # a pass older than two intervals is abandoned: its notebook goes back to the cycles
                deadline = loop.call_later(2 * interval_s, self._abandon, item, task, progress, 2 * interval_s)
            task.add_done_callback(functools.partial(self._done, item, deadline))
            if stops is not None:  # its stop, if any, is in; a batch may go (a pass cancelled before it began too)
                task.add_done_callback(lambda _: stops.leave())
            return task

        try:
            async for instance in self.provider.list_instances():
                observed[instance.id] = instance
                for item in waiting.pop(instance.id, []):
                    start(item, instance)
        except BaseException:
            if self.stops is not None:  # the passes that will not run now: a waiting batch must not wait for them
                for _ in range(sum(len(rest) for rest in waiting.values())):
                    self.stops.leave()
            await asyncio.gather(*passes, return_exceptions=True)  # those started decided from what they saw
            raise
        listed = time.monotonic()
        self._keep_listing(observed, now, listed + interval_s)
        for rest in waiting.values():
            for item in rest:
                start(item, None)
        result = CycleResult(listed=len(observed), tracked=len(tracked))
        self._count_phases(observed)
        self._running = sum(1 for i in observed.values() if i.phase == "Running")
        finished = await self._wait(passes, started + interval_s if interval_s else None)
        result.writes = sum(1 for _, done in finished if done.written)
        late = any(not task.done() for task in passes)
        result.housekeeping = await self._housekeep(finished, observed, budget, late, background=bool(interval_s))
        self.notebooks.prune({item.uid for item in tracked})
        self.errors.prune({item.uid for item in tracked})
        self._listed = len(observed)
        result.next_due = self._count_notebooks(tracked, observed, now, budget.queued if budget is not None else set())
        if budget is not None and budget.queued:
            result.queued = len(budget.queued)
            logger.info(
                "%s: %d actions queued for the next pass (%g calls for actions per pass)",
                self.provider.name,
                result.queued,
                budget.calls,
            )
        if self.assessor is not None:
            result.refused = dict(self.assessor.refused)
        if result.writes:
            logger.info(
                "%s: listed %d instances in %.2fs; %d of %d NotebookInstances updated in %.2fs",
                self.provider.name,
                result.listed,
                listed - started,
                result.writes,
                result.tracked,
                time.monotonic() - listed,
            )
        return result

    def _done(self, item: Notebook, deadline: asyncio.TimerHandle | None, task: asyncio.Task[PassResult]) -> None:
        self._busy.pop(item.uid, None)
        if deadline is not None:
            deadline.cancel()
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            self.errors.succeeded(item.uid)
        else:
            self.errors.failed(item, error, self._interval_s)

    def _abandon(self, item: Notebook, task: asyncio.Task[PassResult], progress: Progress, limit: float) -> None:
        """Cancel a pass that outlived its deadline. Its claim, if it made one, stays Pending in status: the next
        pass resolves it as after a restart (it looks at the instance before acting again)."""
        if task.done():
            return
        metrics.PASSES_ABANDONED.labels(self.provider.name).inc()
        logger.warning(
            "%s: the pass of NotebookInstance %s/%s was abandoned after %.0fs waiting on %s; the next cycle takes it",
            self.provider.name,
            item.namespace,
            item.name,
            limit,
            progress.waiting_on,
        )
        task.cancel()

    async def _wait(
        self, passes: dict[asyncio.Task[PassResult], Notebook], until: float | None
    ) -> list[tuple[Notebook, PassResult]]:
        """The results of the passes done by `until` (monotonic; None: all of them); the others go on. A pass that
        failed is its notebook's alone: logged, and the others' results stand."""
        if not passes:
            return []
        timeout = None if until is None else max(0.0, until - time.monotonic())
        done, running = await asyncio.wait(passes, timeout=timeout)
        if running:
            logger.info(
                "%s: %d passes still acting go on past the interval; their notebooks sit out the next cycle "
                "(abandoned at two intervals)",
                self.provider.name,
                len(running),
            )
        # A failure was told by _done.
        return [(item, task.result()) for task, item in passes.items() if task in done and _succeeded(task)]

    async def _housekeep(
        self,
        finished: list[tuple[Notebook, PassResult]],
        observed: dict[str, CloudInstance],
        budget: ActionBudget | None,
        late: bool,
        background: bool,
    ) -> int:
        """Write the tags of the notebooks whose passes found them due, with what the pass's stops and actions
        left of its calls: longest-waiting first, the namespaces taking turns. Nothing while passes of the cycle
        are still acting (they may still need the calls). In the `background`: the next cycle starts on time (a
        timer due then never waits for housekeeping) and cancels what is left (tag writes are idempotent and
        recorded before they are sent). Returns how many still wait."""
        now = time.monotonic()
        due = [item for item, done in finished if done.tags_due and (item.instance_id or "") in observed]
        due_uids = {item.uid for item in due}
        for item, _ in finished:  # a notebook whose pass was late or backing off keeps its place
            if item.uid not in due_uids:
                self._tags_since.pop(item.uid, None)
        for item in due:
            self._tags_since.setdefault(item.uid, now)
        order = in_turn(due, lambda item: self._tags_since[item.uid], lambda item: item.namespace)
        if late:
            return len(order)
        spare = len(order) if budget is None else int(budget.spare() + 1e-9)
        chosen = order[:spare]
        if budget is not None:
            budget.spend(len(chosen))
        for item in chosen:
            task = asyncio.create_task(self._housekeep_one(item, observed[item.instance_id or ""]))
            self._housekeeping.add(task)
            task.add_done_callback(self._housekeeping.discard)
        if not background and self._housekeeping:
            await asyncio.wait(set(self._housekeeping))
        return len(order) - len(chosen)

    async def _housekeep_one(self, item: Notebook, instance: CloudInstance) -> None:
        priority.for_namespace(item.namespace)
        try:
            if await self.notebooks.housekeep(item, instance):
                self._tags_since.pop(item.uid, None)
        except Exception:  # one notebook's housekeeping failure stays its own
            logger.exception("%s: tags of %s/%s not written", self.provider.name, item.namespace, item.name)

    def _budget(self, items: Sequence[Notebook], calls_per_interval: float | None) -> ActionBudget | None:
        """This pass's calls for actions, with what waited longest in the queue served first."""
        if calls_per_interval is None:
            return None
        page = max(1, int(getattr(self.provider, "page_size", 100)))
        listing_calls = -(-max(1, self._listed) // page) + 1  # the last listing's pages, and one more
        queued = []
        for item in items:
            last = self.notebooks.status_of(item).get("lastAction") or {}
            if last.get("state") == QUEUED:
                cost = self.notebooks.executor.cost(str(last.get("action")), item.instance_id)
                queued.append(Waiting(item.uid, str(last.get("startedAt") or ""), cost, item.namespace))
        return ActionBudget(capacity(calls_per_interval, listing_calls), queued)

    def _keep_listing(self, observed: dict[str, CloudInstance], started: datetime, fresh_until: float) -> None:
        """The complete listing, for the spec passes of the next interval (see AccountState.listed)."""
        state = self.notebooks.account
        if state is not None:
            state.listing, state.listing_started, state.listing_fresh_until = observed, started, fresh_until

    def _count_notebooks(
        self, tracked: Sequence[Notebook], observed: dict[str, CloudInstance], now: datetime, queued: set[str]
    ) -> datetime | None:
        """This account's share of the per-namespace gauges: notebooks by phase, price per hour of the
        running ones, running ones past a policy's cap, and actions waiting for a later pass. Returns, from the
        same look at each status, the soonest shutdown after `now` one announces (nextShutdownAt, or a warned
        pendingStop)."""
        phases: Counter[tuple[str, str]] = Counter()  # (namespace, phase)
        over_cap: Counter[str] = Counter()
        pending: Counter[str] = Counter()
        waiting: Counter[str] = Counter()
        soonest: datetime | None = None
        for item in tracked:
            waiting[item.namespace] += 1 if item.uid in queued else 0
            instance = observed.get(item.instance_id or "")
            phases[(item.namespace, instance.phase if instance else "Unknown")] += 1
            status = self.notebooks.status_of(item)
            pending[item.namespace] += 1 if status.get("pendingStop") else 0
            for text in (status.get("nextShutdownAt"), (status.get("pendingStop") or {}).get("at")):
                at = parse_rfc3339(text) if text else None
                if at is not None and at > now and (soonest is None or at < soonest):
                    soonest = at
            if (
                instance is not None
                and self.assessor is not None
                and over_running_cap(self.assessor.chosen(item), instance, now)
            ):
                over_cap[item.namespace] += 1
        cost: dict[tuple[str, str], float] = {}
        for namespace, currency, per_hour in self.notebooks.running_cost.values():
            cost[(namespace, currency)] = cost.get((namespace, currency), 0.0) + per_hour
        metrics.ACCOUNT_GAUGES.put(
            self.account, self.provider.name, dict(phases), dict(over_cap), dict(cost), dict(pending), dict(waiting)
        )
        return soonest

    def _count_phases(self, observed: dict[str, CloudInstance]) -> None:
        counts: Counter[str] = Counter(instance.phase for instance in observed.values())
        for phase in self._phases | set(counts):  # phases gone from the account drop to 0
            metrics.INSTANCES.labels(self.provider.name, self.account, phase).set(counts.get(phase, 0))
        self._phases |= set(counts)


def _succeeded(task: asyncio.Task[PassResult]) -> bool:
    return not task.cancelled() and task.exception() is None
