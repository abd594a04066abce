"""One poll cycle with a fake account and a fake API server: what one object's trouble does to the others."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from notebook_operator.kube import StaleObject, StatusRejected
from notebook_operator.polling import Poller, Tracked
from notebook_operator.providers.types import CloudInstance

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FakeAccount:
    name = "pai-dsw"
    capabilities = frozenset()

    def __init__(self, *instances: CloudInstance) -> None:
        self.instances = instances
        self.stops: list[str] = []

    async def list_instances(self, filter: Any = None) -> AsyncIterator[CloudInstance]:
        for instance in self.instances:
            yield instance

    async def stop_instance(self, instance_id: str, save_image: bool = False) -> None:
        self.stops.append(instance_id)


class FakeKube:
    """Refuses status patches of `invalid` (422) and conditional writes against an old resourceVersion (409)."""

    def __init__(self, invalid: str = "", current_version: str = "1") -> None:
        self.invalid, self.current_version = invalid, current_version
        self.patched: list[tuple[str, dict[str, Any]]] = []

    async def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any],
                           resource_version: str | None = None) -> bool:  # fmt: skip
        if name == self.invalid:
            raise StatusRejected(f"{kind} {namespace}/{name}: status refused")
        if resource_version is not None and resource_version != self.current_version:
            raise StaleObject(f"{name} changed")
        self.patched.append((name, status))
        return True


def instance(instance_id: str) -> CloudInstance:
    return CloudInstance(provider="pai-dsw", id=instance_id, name=instance_id, phase="Running",
                         cloud_status="Running", started_at=datetime(2026, 11, 25, 11, 0, tzinfo=UTC))  # fmt: skip


def tracked(name: str, instance_id: str, version: str = "1", **spec: Any) -> Tracked:
    return Tracked("ns", name, f"uid-{name}", 1, {"providerConfigRef": {"name": "pai"}, "instanceId": instance_id,
                                                   "managementPolicy": "Observe", **spec}, {},
                   resource_version=version)  # fmt: skip


async def test_a_refused_status_of_one_object_does_not_stop_the_others() -> None:
    events: list[tuple[str, str]] = []
    kube = FakeKube(invalid="bad")
    poller = Poller(FakeAccount(instance("i-1"), instance("i-2")), kube, lambda ref, t, reason, msg: events.append(
        (ref["metadata"]["name"], reason)))  # fmt: skip
    result = await poller.cycle([tracked("bad", "i-1"), tracked("good", "i-2")], NOW)
    assert [name for name, _ in kube.patched] == ["good"]
    assert result.writes == 1
    assert ("bad", "StatusRejected") in events


async def test_a_stop_claimed_against_a_stale_version_is_not_sent() -> None:
    """Two replicas during a takeover: the one whose view is older loses the claim and calls nothing."""
    due = {"shutdown": {"at": "2026-11-25T11:30:00Z"}}
    account = FakeAccount(instance("i-1"))
    stale = Poller(account, FakeKube(current_version="2"), lambda *a: None)
    await stale.cycle([tracked("nb", "i-1", version="1", **due)], NOW)
    assert account.stops == []
    fresh = Poller(account, FakeKube(current_version="2"), lambda *a: None)
    await fresh.cycle([tracked("nb", "i-1", version="2", **due)], NOW)
    assert account.stops == ["i-1"]
