"""Every wait of a poll pass has an end: a partial batch of stops goes out within its age bound whatever another pass
of the cycle is doing, and a pass that outlives two poll intervals is abandoned, counted and named, its notebook
released to the next cycle. Driven with the pipeline's fake account and API server (tests/unit/test_pipeline.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import pytest

from notebook_operator import metrics
from notebook_operator.account_reconciler import AccountReconciler
from notebook_operator.action_budget import in_turn
from notebook_operator.providers.types import BatchStop
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.waiters import waiting_on
from tests.specs import spec_of
from tests.unit.test_pipeline import NOW, FakeAccount, FakeKube, cloud

DUE = {"shutdown": {"at": "2026-11-25T11:30:00Z"}}


class BatchAccount(FakeAccount):
    """A fake account with PAI-DSW's batch stop call; records when each batch went out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[tuple[float, list[str]]] = []
        self.batched = asyncio.Event()

    async def stop_instances(self, instance_ids: list[str]) -> BatchStop:
        self.batches.append((time.monotonic(), list(instance_ids)))
        self.batched.set()
        for instance_id in instance_ids:
            self._call("stop", instance_id, "Stopped")
        return BatchStop(stopped=frozenset(instance_ids), denied={})


class HangingKube(FakeKube):
    """A status write of the object `hung` never answers (an API server that holds one request forever)."""

    def __init__(self, hung: str) -> None:
        super().__init__()
        self.hung = hung
        self.forever = asyncio.Event()

    async def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any],
                           resource_version: str | None = None, urgent: bool = False) -> str:  # fmt: skip
        if name == self.hung:
            with waiting_on("the API server's answer to a status write"):  # as kube.Kube says it
                await self.forever.wait()
        return await super().patch_status(kind, namespace, name, status, resource_version, urgent)


def due(k: int) -> Notebook:
    manifest = {"instanceId": f"i-{k}", "managementPolicy": "Observe", **DUE}
    return Notebook("ns", f"n{k}", f"uid-{k}", 1, spec_of(manifest), {}, resource_version="1")


def abandoned() -> float:
    return metrics.PASSES_ABANDONED.labels("pai-dsw")._value.get()  # type: ignore[no-any-return]


async def test_a_partial_batch_leaves_within_its_age_bound_while_another_pass_of_the_cycle_hangs() -> None:
    account = BatchAccount(*(cloud(f"i-{k}") for k in range(4)))
    kube = HangingKube(hung="n3")  # n3's claim never comes back: its pass never reaches the batch or leaves
    poller = AccountReconciler(account, kube, lambda *a: None, batch_size=50)  # type: ignore[arg-type]
    began = time.monotonic()
    cycle = asyncio.create_task(poller.cycle([due(0), due(1), due(2), due(3)], NOW, interval_s=30))
    try:
        await asyncio.wait_for(account.batched.wait(), 5)
    except TimeoutError:
        pytest.fail("the partial batch waited for the hung pass")
    sent_at, ids = account.batches[0]
    assert sorted(ids) == ["i-0", "i-1", "i-2"]
    assert sent_at - began <= 1.0 + 0.3  # the age bound, and the claims before it
    cycle.cancel()
    kube.forever.set()


async def test_a_pass_older_than_two_intervals_is_abandoned_counted_and_its_notebook_taken_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    account = BatchAccount(cloud("i-0"), cloud("i-1"))
    kube = HangingKube(hung="n1")
    poller = AccountReconciler(account, kube, lambda *a: None, batch_size=50)  # type: ignore[arg-type]
    before = abandoned()
    with caplog.at_level(logging.WARNING, logger="notebook_operator.account_reconciler"):
        first = await poller.cycle([due(0), due(1)], NOW, interval_s=1.5)
        assert first.writes == 1  # n0 stopped (its partial batch after 1 s) and written; n1 waits on its claim
        assert "uid-1" in poller._busy
        # After two intervals (3 s from its start) the pass is cancelled.
        await asyncio.sleep(1.5 + 0.3)
    assert abandoned() == before + 1
    assert "uid-1" not in poller._busy
    (warning,) = [r.getMessage() for r in caplog.records if "abandoned" in r.getMessage()]
    assert "ns/n1" in warning and "the API server's answer to a status write" in warning
    # Released: the next cycle decides for it again (its write answers now) and its stop goes out once.
    kube.hung = ""
    await poller.cycle([due(0), due(1)], NOW + timedelta(seconds=10), interval_s=1.5)
    assert account.calls.count("stop i-1") == 1 and account.calls.count("stop i-0") == 1


async def test_one_pass_s_unexpected_error_stays_its_own() -> None:
    """A bug in one notebook's pass ends that pass only: the cycle returns and the other notebook is mirrored; the
    broken one says ReconcileError (its type, no remote text) once, and backs off alone, doubling from 1 s."""
    account = FakeAccount(cloud("i-0"), cloud("i-1", "Stopped"))
    kube = FakeKube()
    events: list[tuple[str, str, str]] = []
    poller = AccountReconciler(account, kube, lambda ref, *event: events.append(event))  # type: ignore[arg-type]
    broken = Notebook("ns", "broken", "uid-b", 1, spec_of({"instanceId": "i-0", "managementPolicy": "Observe"}),
                      {}, resource_version="1")  # fmt: skip
    reconcile = poller.notebooks.reconcile
    tries: list[float] = []

    async def failing(notebook: Notebook, *args: Any, **kwargs: Any) -> Any:
        if notebook.name == "broken":
            tries.append(time.monotonic())
            raise IndexError("a bug, with text from somewhere: secret-looking-answer")
        return await reconcile(notebook, *args, **kwargs)

    poller.notebooks.reconcile = failing  # type: ignore[method-assign]
    other = Notebook("ns", "other", "uid-o", 1, spec_of({"instanceId": "i-1", "managementPolicy": "Observe"}), {},
                     resource_version="1")  # fmt: skip
    result = await poller.cycle([broken, other], NOW, interval_s=5)
    assert result.writes == 1 and kube.status["other"]["phase"] == "Stopped"
    await asyncio.sleep(0.05)  # the condition is written beside the cycle
    ready = next(c for c in kube.status["broken"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ReconcileError" and ready["message"].startswith("IndexError")
    assert "secret-looking-answer" not in ready["message"]
    assert [e[1] for e in events if e[0] == "Warning"] == ["ReconcileError"]
    await poller.cycle([broken, other], NOW, interval_s=5)  # within its 1 s backoff: left out
    assert len(tries) == 1
    await asyncio.sleep(1.05)
    await poller.cycle([broken, other], NOW, interval_s=5)  # tried again; the same error is not told twice
    await asyncio.sleep(0.05)
    assert len(tries) == 2 and [e[1] for e in events if e[0] == "Warning"] == ["ReconcileError"]
    assert poller.errors.backing_off("uid-b") and poller.errors._failing["uid-b"].backoff_s == 2.0


def test_housekeeping_is_served_longest_waiting_first_with_the_namespaces_taking_turns() -> None:
    def item(namespace: str, name: str) -> Notebook:
        return Notebook(namespace, name, f"{namespace}-{name}", 1, spec_of({"instanceId": "i"}), {})

    since = {"a-1": 1.0, "a-2": 2.0, "a-3": 3.0, "b-1": 5.0, "c-1": 0.5, "c-2": 9.0}
    items = [item(uid.split("-")[0], uid.split("-")[1]) for uid in since]
    order = [i.uid for i in in_turn(items, lambda i: since[i.uid], lambda i: i.namespace)]
    assert order == ["c-1", "a-1", "b-1", "c-2", "a-2", "a-3"]


async def test_the_operator_s_own_tag_write_does_not_start_a_new_run_for_a_timer_that_fell_due() -> None:
    """PAI-DSW's estimate of the start (GmtModifiedTime) moves with any modification, the operator's tag writes too.
    A tag write just before a shutdown.at must not make the run look as if it began after it (the stop would no
    longer apply): an estimate moved into the write's window keeps the estimate from before."""
    from notebook_operator.reconcile.shutdown import next_shutdown
    from notebook_operator.start_times import StartTimes

    times = StartTimes()
    item = due(0)
    before = cloud("i-0")
    assert await times.exact(FakeAccount(), item, {}, before, matters=False) == before  # type: ignore[arg-type]
    written_at = NOW + timedelta(minutes=5)
    times.modified_by_us(item.uid, before.started_at, written_at, written_at + timedelta(seconds=1))
    moved = before.model_copy(update={"started_at": written_at + timedelta(seconds=1)})
    seen = await times.exact(FakeAccount(), item, {}, moved, matters=False)  # type: ignore[arg-type]
    assert seen is not None and seen.started_at == before.started_at
    at = item.spec.shutdown
    assert next_shutdown(at, seen.started_at, written_at) is not None  # the stop still applies to this run
    # A real new run (the estimate moves again, outside the write's window) is one.
    restarted = before.model_copy(update={"started_at": written_at + timedelta(minutes=10)})
    again = await times.exact(FakeAccount(), item, {}, restarted, matters=False)  # type: ignore[arg-type]
    assert again is not None and again.started_at == restarted.started_at


async def test_an_instance_a_listing_missed_is_looked_up_once_before_it_is_called_gone() -> None:
    """A page can miss an instance that moved while the pages were read: its due stop still goes out, and an
    instance really gone is looked up once, not every cycle."""

    class Skipping(FakeAccount):
        async def list_instances(self, filter: Any = None) -> Any:
            for instance in self.instances.values():
                if instance.id != "i-1":  # moved to a page already read
                    yield instance

    account, kube = Skipping(cloud("i-0"), cloud("i-1")), FakeKube()
    poller = AccountReconciler(account, kube, lambda *a: None)  # type: ignore[arg-type]
    await poller.cycle([due(0), due(1)], NOW)
    assert sorted(account.calls) == ["stop i-0", "stop i-1"]
    assert kube.status["n1"]["phase"] == "Running"  # as the lookup saw it before the stop; never called gone
    del account.instances["i-1"]  # now gone for real
    gets: list[str] = []
    get = account.get_instance

    async def counted(instance_id: str) -> Any:
        gets.append(instance_id)
        return await get(instance_id)

    account.get_instance = counted  # type: ignore[method-assign]
    gone = Notebook("ns", "n1", "uid-1", 1, due(1).spec, dict(kube.status["n1"]), resource_version="9")
    for k in range(3):
        await poller.cycle([due(0), gone], NOW + timedelta(seconds=10 * (k + 1)))
        gone = Notebook("ns", "n1", "uid-1", 1, due(1).spec, dict(kube.status["n1"]), resource_version=str(10 + k))
    assert kube.status["n1"]["phase"] == "Deleted" and gets == ["i-1"]


@pytest.mark.parametrize("schedule", ["*/0 * * * *", "0 0 31 2 *"])
def test_a_schedule_the_cloud_cannot_use_is_named_never_raised(schedule: str) -> None:
    """A zero step (the CRD refuses it now, an older object may hold it) or a day that never comes (31 February):
    the mirror says InvalidSchedule, the other timers still hold, an activeWindow with it never opens."""
    from notebook_operator.reconcile.mirror import mirror
    from notebook_operator.reconcile.policies import in_active_window

    manifest = {"instanceId": "i-0", "shutdown": {"schedule": "0 18 * * *", "afterRunning": "2h"}}
    item = Notebook("ns", "n", "uid", 1, spec_of(manifest), {})
    spec = item.spec.model_copy(
        update={"shutdown": item.spec.shutdown.model_copy(update={"schedule": schedule})}  # type: ignore[union-attr]
    )
    status = mirror(spec, {}, cloud("i-0"), 1, NOW, None, None)
    assert "InvalidSchedule" in status["nextShutdownReason"] and "afterRunning 2h" in status["nextShutdownReason"]
    assert not in_active_window([{"schedule": schedule, "duration": "8h", "timeZone": "UTC"}], NOW)


async def test_tags_of_an_instance_a_listing_missed_are_written_after_the_lookup_and_never_delay_the_cycle() -> None:
    """The looked-up instance joins the cycle's observations (housekeeping writes its tags from it); with an interval,
    housekeeping runs beside the next cycle's wait, not in it, and the next cycle cancels what is left."""
    from notebook_operator.providers.types import Capability
    from notebook_operator.registry import AccountState

    class Tagging(FakeAccount):
        capabilities = frozenset({Capability.TAGS})
        tagged: list[str] = []

        async def list_instances(self, filter: Any = None) -> Any:
            for instance in self.instances.values():
                if instance.id != "i-1":
                    yield instance

        async def set_tags(self, instance_id: str, put: dict[str, str], remove: tuple[str, ...]) -> None:
            await asyncio.sleep(0.3)
            self.tagged.append(instance_id)

    account, kube = Tagging(cloud("i-0"), cloud("i-1")), FakeKube()
    poller = AccountReconciler(account, kube, lambda *a: None, state=AccountState(cluster_id="c"))  # type: ignore[arg-type]
    adopted = [Notebook("ns", f"n{k}", f"uid-{k}", 1, spec_of({"instanceId": f"i-{k}"}), {}, resource_version="1")
               for k in range(2)]  # fmt: skip
    began = time.monotonic()
    result = await poller.cycle(adopted, NOW, interval_s=5)
    assert time.monotonic() - began < 0.3  # the tag writes go on beside it
    assert result.housekeeping == 0 and account.tagged == []
    await asyncio.sleep(0.5)
    assert sorted(account.tagged) == ["i-0", "i-1"]
    assert kube.status["n1"]["ownedTags"]["cloudnotebooks.io:name"] == "n1"
