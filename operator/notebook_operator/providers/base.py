"""The Provider protocol: the only view of a cloud the reconcile code has."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from notebook_operator.providers.errors import Unsupported
from notebook_operator.providers.types import (
    Capability,
    CloudInstance,
    CloudSnapshot,
    CreateSpec,
    HourlyPrice,
    IdleRule,
    ListFilter,
    NativeEnforcement,
    SnapshotRequest,
    UpdateSpec,
    Utilization,
)


@runtime_checkable
class Provider(Protocol):
    name: str
    capabilities: frozenset[Capability]
    native: NativeEnforcement  # the cloud's own culler and timer

    def list_instances(self, filter: ListFilter | None = None) -> AsyncIterator[CloudInstance]: ...
    async def get_instance(self, instance_id: str) -> CloudInstance: ...
    async def find_by_client_token(self, token: str, name: str) -> CloudInstance | None: ...
    async def create_instance(self, spec: CreateSpec) -> str: ...
    async def update_instance(self, instance_id: str, changes: UpdateSpec) -> None: ...
    async def start_instance(self, instance_id: str, run_for: timedelta | None = None) -> None: ...
    async def stop_instance(self, instance_id: str, save_image: bool = False) -> None: ...
    async def delete_instance(self, instance_id: str) -> None: ...
    async def get_utilization(self, instance: CloudInstance, window: timedelta) -> Utilization: ...
    async def get_idle_rule(self, instance_id: str) -> IdleRule | None: ...
    async def put_idle_rule(self, instance_id: str, rule: IdleRule) -> None: ...
    async def delete_idle_rule(self, instance_id: str) -> None: ...
    async def get_shutdown_timer(self, instance_id: str) -> datetime | None: ...
    async def put_shutdown_timer(self, instance_id: str, due: datetime) -> None: ...
    async def delete_shutdown_timer(self, instance_id: str) -> None: ...
    async def price_list(self) -> dict[str, HourlyPrice]: ...
    async def instance_events(self, instance_id: str, since: datetime, limit: int) -> list[str]: ...
    async def running_since(self, instance_id: str) -> datetime | None: ...
    async def set_tags(self, instance_id: str, put: dict[str, str], remove: tuple[str, ...]) -> None: ...
    async def create_snapshot(self, instance_id: str, request: SnapshotRequest) -> str: ...
    async def find_snapshot(self, instance_id: str, request: SnapshotRequest) -> CloudSnapshot | None: ...
    async def get_snapshot(self, instance_id: str, snapshot_id: str) -> CloudSnapshot: ...
    async def delete_snapshot(self, instance_id: str, snapshot_id: str) -> None: ...
    async def aclose(self) -> None: ...


class UnsupportedByDefault:
    """Mixin: every optional operation raises Unsupported; providers override what their cloud has."""

    name: str
    native = NativeEnforcement()

    def _unsupported(self, what: str) -> Unsupported:
        return Unsupported(f"{self.name} does not support {what}", provider=self.name, operation=what)

    async def create_instance(self, spec: CreateSpec) -> str:
        raise self._unsupported("create")

    async def find_by_client_token(self, token: str, name: str) -> CloudInstance | None:
        raise self._unsupported("create")

    async def update_instance(self, instance_id: str, changes: UpdateSpec) -> None:
        raise self._unsupported("update")

    async def start_instance(self, instance_id: str, run_for: timedelta | None = None) -> None:
        raise self._unsupported("start")

    async def stop_instance(self, instance_id: str, save_image: bool = False) -> None:
        raise self._unsupported("stop")

    async def delete_instance(self, instance_id: str) -> None:
        raise self._unsupported("delete")

    async def get_utilization(self, instance: CloudInstance, window: timedelta) -> Utilization:
        raise self._unsupported("utilization metrics")

    async def get_idle_rule(self, instance_id: str) -> IdleRule | None:
        raise self._unsupported("a cloud-side idle rule")

    async def put_idle_rule(self, instance_id: str, rule: IdleRule) -> None:
        raise self._unsupported("a cloud-side idle rule")

    async def delete_idle_rule(self, instance_id: str) -> None:
        raise self._unsupported("a cloud-side idle rule")

    async def get_shutdown_timer(self, instance_id: str) -> datetime | None:
        raise self._unsupported("a cloud-side shutdown timer")

    async def put_shutdown_timer(self, instance_id: str, due: datetime) -> None:
        raise self._unsupported("a cloud-side shutdown timer")

    async def price_list(self) -> dict[str, HourlyPrice]:
        """Prices per hour by instance type; empty where the cloud publishes none through its API (the
        ProviderConfig's pricing fills in)."""
        return {}

    async def delete_shutdown_timer(self, instance_id: str) -> None:
        raise self._unsupported("a cloud-side shutdown timer")

    async def instance_events(self, instance_id: str, since: datetime, limit: int) -> list[str]:
        """The cloud's own events of an instance since then, oldest first, at most `limit`."""
        raise self._unsupported("instance events")

    async def running_since(self, instance_id: str) -> datetime | None:
        """When the instance last became Running, as the cloud records it (None: it never did)."""
        raise self._unsupported("an instance lifecycle")

    async def set_tags(self, instance_id: str, put: dict[str, str], remove: tuple[str, ...]) -> None:
        """Add or change the tags `put`, remove the keys `remove`; other tags stay."""
        raise self._unsupported("tags")

    async def create_snapshot(self, instance_id: str, request: SnapshotRequest) -> str:
        """Start saving the instance's environment: the cloud's id of the snapshot (or image)."""
        raise self._unsupported("snapshots")

    async def find_snapshot(self, instance_id: str, request: SnapshotRequest) -> CloudSnapshot | None:
        """The snapshot an earlier request of this name made, if any (a restart finds it again)."""
        raise self._unsupported("snapshots")

    async def get_snapshot(self, instance_id: str, snapshot_id: str) -> CloudSnapshot:
        raise self._unsupported("snapshots")

    async def delete_snapshot(self, instance_id: str, snapshot_id: str) -> None:
        """Gone already is done (NotFound is not an error here)."""
        raise self._unsupported("snapshots")
