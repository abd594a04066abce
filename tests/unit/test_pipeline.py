"""The NotebookInstance pipeline (observe -> decide -> execute -> one status patch) driven through scenario
tables with a fake cloud account and a fake API server, as ACK's testdata drives its resource managers.
The same scenarios run against the real API server and the emulator in tests/integration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notebook_operator.account_reconciler import AccountReconciler
from notebook_operator.announcer import Announcer
from notebook_operator.api.notify import NotifySpec
from notebook_operator.kube import StaleObject, StatusRejected
from notebook_operator.notebook_reconciler import NotebookReconciler
from notebook_operator.providers.errors import (
    Conflict,
    InstanceTypeNotOffered,
    NotFound,
    PermissionDenied,
    ProviderError,
    Transient,
)
from notebook_operator.providers.types import CloudInstance, CreateSpec, UpdateSpec
from notebook_operator.reconcile.decide import WAIT_S
from notebook_operator.reconcile.notebook import Notebook
from notebook_operator.registry import AccountState
from tests.specs import spec_of

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(hours=1)
UID = "uid-0123456789"


class FakeAccount:
    """A cloud account with instances held in memory; calls are recorded, and any may be made to fail."""

    name = "pai-dsw"
    capabilities: frozenset[Any] = frozenset()

    def __init__(self, *instances: CloudInstance, fail: dict[str, ProviderError] | None = None) -> None:
        self.instances = {i.id: i for i in instances}
        self.fail = fail or {}
        self.calls: list[str] = []

    def _call(self, what: str, instance_id: str, phase: str | None = None) -> None:
        self.calls.append(f"{what} {instance_id}")
        if what in self.fail:
            raise self.fail[what]
        if phase is not None:
            self.instances[instance_id] = self.instances[instance_id].model_copy(update={"phase": phase})

    async def list_instances(self, filter: Any = None) -> AsyncIterator[CloudInstance]:
        for instance in self.instances.values():
            yield instance

    async def get_instance(self, instance_id: str) -> CloudInstance:
        if instance_id not in self.instances:
            raise NotFound(f"{instance_id} not found")
        return self.instances[instance_id]

    async def find_by_client_token(self, token: str, name: str) -> CloudInstance | None:
        return None

    async def create_instance(self, spec: CreateSpec) -> str:
        self._call("create", spec.client_token)
        self.instances["i-new"] = cloud("i-new", "Running")
        return "i-new"

    async def start_instance(self, instance_id: str, run_for: timedelta | None = None) -> None:
        self._call("start", instance_id, "Running")

    async def stop_instance(self, instance_id: str, save_image: bool = False) -> None:
        self._call("stop", instance_id, "Stopped")

    async def price_list(self) -> dict[str, Any]:
        return {}

    async def update_instance(self, instance_id: str, changes: UpdateSpec) -> None:
        self._call("update", instance_id)
        self.instances[instance_id] = self.instances[instance_id].model_copy(update={"image": changes.image})


class FakeKube:
    """One API server object per name: merge-patches status, bumps resourceVersion, refuses conditional writes
    against an old version (409) and any status of a name in `invalid` (422)."""

    def __init__(self, invalid: tuple[str, ...] = ()) -> None:
        self.invalid = invalid
        self.versions: dict[str, int] = {}
        self.status: dict[str, dict[str, Any]] = {}
        self.patches: list[tuple[str, dict[str, Any]]] = []

    async def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any],
                           resource_version: str | None = None, urgent: bool = False) -> str:  # fmt: skip
        if name in self.invalid:
            raise StatusRejected(f"{kind} {namespace}/{name}: status refused")
        if resource_version is not None and resource_version != str(self.versions.get(name, 1)):
            raise StaleObject(f"{name} changed")
        self.patches.append((name, status))
        self.status.setdefault(name, {}).update(status)
        self.versions[name] = self.versions.get(name, 1) + 1
        return str(self.versions[name])


def cloud(instance_id: str = "i-1", phase: str = "Running", image: str = "img:1") -> CloudInstance:
    return CloudInstance(provider="pai-dsw", id=instance_id, name=instance_id, phase=phase,  # type: ignore[arg-type]
                         cloud_status=phase, image=image, instance_type="ecs.c6.large",
                         started_at=STARTED if phase == "Running" else None)  # fmt: skip


def notebook(manifest: dict[str, Any], status: dict[str, Any] | None = None, name: str = "nb", version: str = "1",
             generation: int = 1) -> Notebook:  # fmt: skip
    return Notebook("ns", name, UID, generation, spec_of(manifest), dict(status or {}), resource_version=version)


ADOPTED = {"instanceId": "i-1"}
OBSERVED = {"instanceId": "i-1", "managementPolicy": "Observe"}
TEMPLATE = {"template": {"name": "nb", "image": "img:1", "instanceType": "ecs.c6.large"}}
HANDLED = {"observedGeneration": 1, "instanceId": "i-1"}
DUE = {"shutdown": {"at": "2026-11-25T11:30:00Z"}}
PENDING_STOP = {"lastAction": {"action": "stop", "state": "Pending", "startedAt": "2026-11-25T11:59:40Z"}}


@dataclass(frozen=True)
class Scenario:
    name: str
    spec_pass: bool  # the spec handler (one GET) or the account's poll pass (the listing)
    manifest: dict[str, Any]
    status: dict[str, Any]
    cloud: tuple[CloudInstance, ...]
    calls: list[str]  # what reached the cloud
    last_action: str | None  # status.lastAction.state written (None: none written)
    events: list[str] = field(default_factory=list)
    fail: dict[str, ProviderError] = field(default_factory=dict)
    retry_after: float | None = None
    written: dict[str, Any] = field(default_factory=dict)  # fields the final status must hold


SCENARIOS = [
    Scenario("a due timer stops an observed instance once", False, {**OBSERVED, **DUE}, {}, (cloud(),),
             ["stop i-1"], "Succeeded", ["Stopped"],
             written={"stoppedBy": "notebook-operator: shutdown at 2026-11-25T11:30:00Z was due at "
                                   "2026-11-25T11:30:00Z"}),
    Scenario("an in-flight stop is not sent again", False, {**OBSERVED, **DUE}, PENDING_STOP, (cloud(),), [], None),
    Scenario("a stop the cloud answers 'already stopping' succeeded (poll pass)", False, {**OBSERVED, **DUE}, {},
             (cloud(),), ["stop i-1"], "Succeeded", ["Stopped"], fail={"stop": Conflict("IllegalState: Stopping")}),
    Scenario("a stop the cloud answers 'already stopping' succeeded (spec pass)", True,
             {**ADOPTED, "desiredState": "Stopped"}, {}, (cloud(),), ["stop i-1"], "Succeeded", ["Stopped"],
             fail={"stop": Conflict("IllegalState: Stopping")}, retry_after=WAIT_S),
    Scenario("a refused stop is a PermissionDenied event and a Failed action", False, {**OBSERVED, **DUE}, {},
             (cloud(),), ["stop i-1"], "Failed", ["PermissionDenied"],
             fail={"stop": PermissionDenied("paidsw:StopInstance denied")}),
    Scenario("a throttled stop on a spec pass is retried in 30 s", True, {**ADOPTED, "desiredState": "Stopped"}, {},
             (cloud(),), ["stop i-1"], "Failed", ["StopFailed"], fail={"stop": Transient("Throttling")},
             retry_after=30.0),
    Scenario("a poll pass leaves an unhandled generation to the spec pass", False,
             {**ADOPTED, "desiredState": "Stopped"}, {"instanceId": "i-1"}, (cloud(),), [], None),
    Scenario("a poll pass puts back power drift of a handled generation", False,
             {**ADOPTED, "desiredState": "Stopped"}, HANDLED, (cloud(),), ["stop i-1"], "Succeeded", ["Stopped"],
             written={"stoppedBy": "absent"}),  # a stop the spec asks for is not the operator's
    Scenario("a spec pass starts, clears stoppedBy and records the generation", True,
             {**ADOPTED, "desiredState": "Running"}, {"stoppedBy": "x"}, (cloud(phase="Stopped"),), ["start i-1"],
             "Succeeded", ["Started"], written={"stoppedBy": None, "observedGeneration": 1, "phase": "Running"}),
    Scenario("a spec pass creates with the uid as client token", True, {**TEMPLATE, "desiredState": "Running"}, {},
             (), [f"create {UID}"], "Succeeded", ["Created"], written={"instanceId": "i-new", "phase": "Running"}),
    Scenario("an instance type not offered stalls the notebook", True, TEMPLATE, {}, (), [f"create {UID}"], "Failed",
             ["InstanceTypeNotOffered"], fail={"create": InstanceTypeNotOffered("ecs.x not offered")},
             retry_after=30.0),
    Scenario("a changed image on a stopped instance is an update", True,
             {"template": {**TEMPLATE["template"], "image": "img:2"}}, {"instanceId": "i-1"},
             (cloud(phase="Stopped"),), ["update i-1"], "Succeeded", ["Updated"], written={"observedGeneration": 1}),
    Scenario("a vanished instance is reported once", False, OBSERVED, {"instanceId": "i-1", "phase": "Running"}, (),
             [], None, ["InstanceNotFound"], written={"phase": "Deleted"}),
    Scenario("observe mode never starts", True, {**OBSERVED, "desiredState": "Running"}, {}, (cloud(phase="Stopped"),),
             [], None),
]  # fmt: skip


@pytest.mark.parametrize("case", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario(case: Scenario) -> None:
    account, kube, events = FakeAccount(*case.cloud, fail=case.fail), FakeKube(), []
    reconciler = NotebookReconciler(account, kube, lambda ref, type_, reason, message: events.append(reason))  # type: ignore[arg-type]
    item = notebook(case.manifest, case.status)
    if case.spec_pass:
        observed = await reconciler.observe(item)
    else:
        observed = {i.id: i async for i in account.list_instances()}.get(item.instance_id or "")
    result = await reconciler.reconcile(item, observed, NOW, spec_pass=case.spec_pass)
    assert account.calls == case.calls
    status = kube.status.get("nb", {})  # what the pass wrote
    assert (status.get("lastAction") or {}).get("state") == case.last_action
    assert events == case.events
    assert result.retry_after == case.retry_after
    for key, value in case.written.items():
        assert status.get(key, "absent") == value, key
    if case.name.startswith("an instance type"):
        stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
        assert (stalled["status"], stalled["reason"]) == ("True", "InstanceTypeNotOffered")
    if case.calls and case.calls[0].startswith("create"):
        assert status["lastAction"]["clientToken"] == UID


async def test_one_status_patch_per_pass_besides_the_claim() -> None:
    account, kube = FakeAccount(cloud()), FakeKube()
    reconciler = NotebookReconciler(account, kube, lambda *a: None)  # type: ignore[arg-type]
    await reconciler.reconcile(notebook({**OBSERVED, **DUE}), cloud(), NOW)
    claim = kube.patches[0][1]
    assert list(claim) == ["lastAction"] and claim["lastAction"]["state"] == "Pending"  # before the call
    assert len(kube.patches) == 2


async def test_a_restart_between_claim_and_outcome_does_not_repeat_the_stop() -> None:
    """The first replica claimed (Pending) and died before recording the outcome; the next one, a few seconds
    later, sees the claim and does not send a second stop."""
    account, kube = FakeAccount(cloud()), FakeKube()
    first = NotebookReconciler(account, kube, lambda *a: None)  # type: ignore[arg-type]
    await first.executor.kube.patch_status("NotebookInstance", "ns", "nb", {"lastAction": {
        "action": "stop", "state": "Pending", "startedAt": "2026-11-25T11:59:55Z", "reason": "x"}})  # fmt: skip
    restarted = NotebookReconciler(account, kube, lambda *a: None)  # type: ignore[arg-type]
    await restarted.reconcile(notebook({**OBSERVED, **DUE}, kube.status["nb"], version="2"), cloud(), NOW)
    assert account.calls == []


async def test_a_stop_claimed_against_a_stale_version_is_not_sent() -> None:
    """Two replicas during a takeover: the one whose view is older loses the claim and calls nothing."""
    account, kube = FakeAccount(cloud()), FakeKube()
    kube.versions["nb"] = 2
    stale = AccountReconciler(account, kube, lambda *a: None)  # type: ignore[arg-type]
    result = await stale.cycle([notebook({**OBSERVED, **DUE}, version="1")], NOW)
    assert account.calls == [] and result.writes == 0
    fresh = AccountReconciler(account, kube, lambda *a: None)  # type: ignore[arg-type]
    await fresh.cycle([notebook({**OBSERVED, **DUE}, version="2")], NOW)
    assert account.calls == ["stop i-1"]


async def test_a_refused_status_of_one_object_does_not_stop_the_others() -> None:
    events: list[tuple[str, str]] = []
    kube = FakeKube(invalid=("bad",))
    account = FakeAccount(cloud("i-1"), cloud("i-2"))
    poller = AccountReconciler(account, kube, lambda ref, t, reason, msg: events.append(  # type: ignore[arg-type]
        (ref["metadata"]["name"], reason)))  # fmt: skip
    items = [notebook({"instanceId": "i-1", "managementPolicy": "Observe"}, name="bad"),
             notebook({"instanceId": "i-2", "managementPolicy": "Observe"}, name="good")]  # fmt: skip
    result = await poller.cycle(items, NOW)
    assert [name for name, _ in kube.patches] == ["good"]
    assert result.writes == 1
    assert ("bad", "StatusRejected") in events


async def test_a_write_the_watch_has_not_delivered_is_not_sent_again() -> None:
    """The registry still shows the version the last pass wrote over: the pass sees its own write."""
    account, kube = FakeAccount(cloud()), FakeKube()
    poller = AccountReconciler(account, kube, lambda *a: None)  # type: ignore[arg-type]
    item = notebook(OBSERVED)
    first = await poller.cycle([item], NOW)
    again = await poller.cycle([item], NOW + timedelta(seconds=10))  # same view: the watch is behind
    assert (first.writes, again.writes) == (1, 0)
    newer = notebook(OBSERVED, {"phase": "Stopped"}, version="5")  # someone else wrote since: believe the view
    assert (await poller.cycle([newer], NOW + timedelta(seconds=20))).writes == 1


class Captured:
    """Stands in for the webhook sender: what the reconciler hands over to be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def submit(self, spec: Any, notice: Any, ref: Any) -> None:
        self.sent.append((notice.event, notice.reason))


async def test_a_warned_timer_stop_tells_people_once_each_step_and_a_failure_too() -> None:
    """Warning (recorded, then told), the stop after it, and a failed stop: each one notice, none twice."""
    notify = NotifySpec.model_validate({"webhookSecretRef": {"name": "hook", "key": "url"}, "format": "slack"})
    captured, events = Captured(), []
    account_state = AccountState(notify=notify)
    announcer = Announcer(lambda obj, t, reason, msg: events.append(reason), None, account_state, captured)  # type: ignore[arg-type]
    account, kube = FakeAccount(cloud()), FakeKube()
    reconciler = NotebookReconciler(account, kube, lambda *a: None, announcer=announcer)  # type: ignore[arg-type]
    warned = {**ADOPTED, "shutdown": {"at": "2026-11-25T12:05:00Z", "warnMinutes": 10}}
    await reconciler.reconcile(notebook(warned), cloud(), NOW)
    assert captured.sent == [("StopWarning", "shutdown at 2026-11-25T12:05:00Z")] and account.calls == []
    status = kube.status["nb"]
    assert status["pendingStop"]["at"] == "2026-11-25T12:10:00Z"  # first seen with 5 min left: the full 10 min
    again = notebook(warned, status, version=str(kube.versions["nb"]))
    await reconciler.reconcile(again, cloud(), NOW + timedelta(minutes=1))  # a later pass: nothing new to tell
    assert len(captured.sent) == 1 and events.count("StopWarning") == 1
    await reconciler.reconcile(notebook(warned, kube.status["nb"], version=str(kube.versions["nb"])), cloud(),
                               NOW + timedelta(minutes=10))  # fmt: skip
    assert account.calls == ["stop i-1"] and captured.sent[-1][0] == "Stopped"
    assert kube.status["nb"]["pendingStop"] is None
    failing = FakeAccount(cloud(), fail={"stop": Transient("ServiceUnavailable")})
    broken = NotebookReconciler(failing, FakeKube(), lambda *a: None, announcer=announcer)  # type: ignore[arg-type]
    await broken.reconcile(notebook({**ADOPTED, **DUE}), cloud(), NOW)
    assert captured.sent[-1][0] == "StopFailed" and "ServiceUnavailable" in captured.sent[-1][1]


async def test_a_warning_is_told_once_when_the_watch_delivers_an_older_write_late() -> None:
    """Seen under load: the registry lags this reconciler's own writes and then shows one of the older ones.
    Deciding from that view must not warn a second time; nor may two passes deciding from one view both warn."""
    notify = NotifySpec.model_validate({"webhookSecretRef": {"name": "hook", "key": "url"}, "format": "slack"})
    captured = Captured()
    announcer = Announcer(lambda *a: None, None, AccountState(notify=notify), captured)  # type: ignore[arg-type]
    kube = FakeKube()
    reconciler = NotebookReconciler(FakeAccount(cloud()), kube, lambda *a: None, announcer=announcer)  # type: ignore[arg-type]
    warned = {**ADOPTED, "shutdown": {"at": "2026-11-25T12:30:00Z", "warnMinutes": 10}}
    await reconciler.reconcile(notebook(warned), cloud(), NOW)  # mirrors; too early to warn
    mirrored = dict(kube.status["nb"])
    assert "pendingStop" not in mirrored and kube.versions["nb"] == 2
    await reconciler.reconcile(notebook(warned), cloud(), NOW + timedelta(minutes=21))  # the watch is behind
    await reconciler.reconcile(notebook(warned), cloud(), NOW + timedelta(minutes=21, seconds=1))
    assert [event for event, _ in captured.sent] == ["StopWarning"]  # the first view plus this reconciler's writes
    late = notebook(warned, mirrored, version="2")  # the watch delivers the first write only now
    await reconciler.reconcile(late, cloud(), NOW + timedelta(minutes=21, seconds=2))
    assert [event for event, _ in captured.sent] == ["StopWarning"]
    assert kube.status["nb"]["pendingStop"]["by"] == "spec.shutdown"
    # Two replicas (or a spec pass and a poll pass) deciding from one view: one writes and tells, one loses.
    kube, captured.sent = FakeKube(), []
    passes = [NotebookReconciler(FakeAccount(cloud()), kube, lambda *a: None, announcer=announcer)  # type: ignore[arg-type]
              for _ in range(2)]  # fmt: skip
    results = [await p.reconcile(notebook(warned), cloud(), NOW + timedelta(minutes=21)) for p in passes]
    assert [event for event, _ in captured.sent] == ["StopWarning"]
    assert [r.retry_after is not None for r in results] == [False, True]  # the loser looks again soon


async def test_a_wave_beyond_a_pass_s_calls_is_queued_and_drains_longest_waiting_first() -> None:
    """Each pass may spend one call on actions (3 calls per interval, less the listing's 2): the rest is queued in
    lastAction, the queue's record keeps when it began (no rewrite while it waits), and what waited longest goes
    first even when a newer due notebook is listed before it."""
    account, kube = FakeAccount(cloud("i-4"), cloud("i-1"), cloud("i-2"), cloud("i-3")), FakeKube()
    poller = AccountReconciler(account, kube, lambda *a: None)  # type: ignore[arg-type]

    def due(k: int, at: str = "2026-11-25T11:30:00Z") -> Notebook:
        manifest = {"instanceId": f"i-{k}", "managementPolicy": "Observe", "shutdown": {"at": at}}
        return Notebook("ns", f"n{k}", f"uid-{k}", 1, spec_of(manifest), {}, resource_version="1")

    wave = [due(1), due(2), due(3)]
    first = await poller.cycle(wave, NOW, calls_per_interval=3)
    assert account.calls == ["stop i-1"] and first.queued == 2
    assert kube.status["n2"]["lastAction"]["state"] == "Queued"
    queued_at = kube.status["n3"]["lastAction"]["startedAt"]
    later = due(4, "2026-11-25T12:00:05Z")  # falls due after the others were queued; listed first
    for k in range(1, 4):
        await poller.cycle([later, *wave], NOW + timedelta(seconds=10 * k), calls_per_interval=3)
    assert account.calls == ["stop i-1", "stop i-2", "stop i-3", "stop i-4"]
    queued_records = [p["lastAction"] for name, p in kube.patches if name == "n3" and "lastAction" in p]
    assert [r["state"] for r in queued_records] == ["Queued", "Pending", "Succeeded"]
    assert queued_records[0]["startedAt"] == queued_at


async def test_a_pass_still_acting_at_the_interval_s_end_goes_on_and_its_notebook_sits_out_the_next_cycle() -> None:
    """The cycle waits for its passes only until the interval ends: a slow stop finishes in the background, the next
    cycle starts on time and mirrors the other notebooks, and does not decide again for the one still acting."""
    account, kube = FakeAccount(cloud("i-1"), cloud("i-2")), FakeKube()
    release = asyncio.Event()
    stop = account.stop_instance

    async def slow_stop(instance_id: str, save_image: bool = False) -> None:
        await release.wait()
        await stop(instance_id, save_image)

    account.stop_instance = slow_stop  # type: ignore[method-assign]
    poller = AccountReconciler(account, kube, lambda *a: None)  # type: ignore[arg-type]
    due = Notebook("ns", "due", "uid-due", 1, spec_of({**OBSERVED, **DUE}), {}, resource_version="1")
    other = Notebook("ns", "other", "uid-other", 1, spec_of({"instanceId": "i-2", "managementPolicy": "Observe"}),
                     {}, resource_version="1")  # fmt: skip
    first = await poller.cycle([due, other], NOW, interval_s=0.2)
    assert first.writes == 1  # the other one; the due one is still stopping
    account.instances["i-2"] = cloud("i-2", "Stopped")  # changed in the cloud meanwhile
    await poller.cycle([due, other], NOW + timedelta(seconds=10), interval_s=0.2)
    assert kube.status["other"]["phase"] == "Stopped"
    assert kube.status["due"]["lastAction"]["state"] == "Pending"
    release.set()
    await asyncio.sleep(0.05)
    assert account.calls == ["stop i-1"] and kube.status["due"]["lastAction"]["state"] == "Succeeded"
