"""ModelArts notebooks behind the Provider protocol. Cloud-side enforcement is the lease:
a TIMING lease is the shutdown timer, an IDLE lease the idle rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from notebook_operator.providers.base import UnsupportedByDefault
from notebook_operator.providers.errors import InvalidRequest, NotFound
from notebook_operator.providers.http import CloudHTTP
from notebook_operator.providers.modelarts.client import ModelArtsClient
from notebook_operator.providers.modelarts.schemas import (
    PROVIDER,
    TOKEN_MARK,
    Lease,
    Notebook,
    lease_end,
    to_cloud_instance,
    to_cloud_snapshot,
)
from notebook_operator.providers.types import (
    Capability,
    CloudInstance,
    CloudSnapshot,
    CreateSpec,
    IdleRule,
    ListFilter,
    NativeEnforcement,
    SnapshotRequest,
    UpdateSpec,
)
from notebook_operator.times import from_millis

PAGE_SIZE = 50  # ListNotebooks takes limit 10, 20 or 50 (Huawei's Terraform provider uses 50)
MAX_PASSES = 3
IMAGE_PAGE = 50
LEASE_MIN_MS, LEASE_MAX_MS = 3_600_000, 259_200_000


def lease_ms(duration: timedelta) -> int:
    ms = int(duration.total_seconds() * 1000)
    if not LEASE_MIN_MS <= ms <= LEASE_MAX_MS:
        raise InvalidRequest(
            f"a ModelArts lease lasts 1 h to 72 h, not {duration}", provider=PROVIDER, operation="lease"
        )
    return ms


class ModelArtsProvider(UnsupportedByDefault):
    name = PROVIDER
    capabilities: frozenset[Capability] = frozenset({Capability.TAGS, Capability.SNAPSHOTS})
    # One lease per notebook, TIMING (the timer) or IDLE (the idle rule), lasting 1 h to 72 h (LEASE_MIN_MS,
    # LEASE_MAX_MS); an IDLE lease judges idleness by the cloud's own thresholds (Huawei's ModelArts FAQ on auto
    # stop: CPU <= 5 %, GPU <= 1 %, NPU <= 1 %, little traffic).
    native = NativeEnforcement(
        idle_rule="ModelArts IDLE lease",
        cloud_idle_thresholds="CPU <= 5%, GPU <= 1%, NPU <= 1%",
        idle_minutes=(LEASE_MIN_MS // 60_000, LEASE_MAX_MS // 60_000),
        timer="ModelArts lease",
        timer_range=(timedelta(milliseconds=LEASE_MIN_MS), timedelta(milliseconds=LEASE_MAX_MS)),
        one_lease=True,
    )

    def __init__(self, http: CloudHTTP, project_id: str, page_size: int = PAGE_SIZE) -> None:
        self.client = ModelArtsClient(http, project_id)
        self.page_size = page_size

    async def aclose(self) -> None:
        await self.client.http.aclose()

    async def list_instances(self, filter: ListFilter | None = None) -> AsyncIterator[CloudInstance]:
        filters: dict[str, Any] = {}
        if filter:
            if len(filter.ids) == 1:
                filters["id"] = filter.ids[0]
            if filter.name:
                filters["name"] = filter.name
            if filter.status:
                filters["status"] = filter.status
            if filter.labels:
                filters["tags"] = ",".join(f"{k}|{v}" for k, v in sorted(filter.labels.items()))
        wanted = set(filter.ids) if filter and filter.ids else None
        async for item in self._notebooks(filters):
            if wanted is None or item.id in wanted:
                yield to_cloud_instance(item)

    async def _notebooks(self, filters: dict[str, Any]) -> AsyncIterator[Notebook]:
        """Every notebook once, paged by record offset (as Huawei's own Terraform provider does) until `total`
        is reached or a short page comes back. Notebooks deleted between two pages shift the records under
        the offsets, so each page starts one record early and must begin with the previous page's last
        notebook; when it does not (or `total` moved), the listing starts over, at most MAX_PASSES times,
        skipping what it already gave."""
        seen: set[str] = set()
        for _ in range(MAX_PASSES):
            offset, totals, last, shifted = 0, set(), None, False
            while True:
                answer = await self.client.list_notebooks(offset, self.page_size, filters)
                totals.add(answer.total)
                if last is not None and (not answer.data or answer.data[0].id != last):
                    shifted = True
                for item in answer.data:
                    if item.id not in seen:
                        seen.add(item.id)
                        yield item
                if len(answer.data) < self.page_size or offset + len(answer.data) >= answer.total:
                    break
                last = answer.data[-1].id
                offset += len(answer.data) - 1  # one record of overlap
            if len(totals) == 1 and not shifted:
                return

    async def get_instance(self, instance_id: str) -> CloudInstance:
        raw = await self.client.show_notebook(instance_id)
        return to_cloud_instance(Notebook.model_validate(raw))

    async def find_by_client_token(self, token: str, name: str) -> CloudInstance | None:
        marker = f"{TOKEN_MARK}{token}"
        async for item in self._notebooks({"name": name, "description": marker}):
            if marker in (item.description or "") and item.status not in ("DELETING", "DELETED"):
                return to_cloud_instance(item)
        return None

    async def create_instance(self, spec: CreateSpec) -> str:
        volume = dict(spec.volume or {})
        body: dict[str, Any] = {
            "name": spec.name,
            "image_id": spec.image,
            "description": " ".join(filter(None, [spec.description, f"[{TOKEN_MARK}{spec.client_token}]"])),
            "volume": {
                "category": volume.get("category", "EVS"),
                "ownership": volume.get("ownership", "MANAGED"),
                "capacity": int(volume.get("capacityGiB", 50)),
                "mount_path": volume.get("mountPath", "/home/ma-user/work"),
                **({"uri": volume["uri"]} if volume.get("uri") else {}),
            },
        }
        if spec.instance_type:
            body["flavor"] = spec.instance_type
        if spec.workspace_id:
            body["workspace_id"] = spec.workspace_id
        if spec.resource_id:
            body["pool_id"] = spec.resource_id
        return await self.client.create_notebook(body)

    async def update_instance(self, instance_id: str, changes: UpdateSpec) -> None:
        body: dict[str, Any] = {}
        if changes.instance_type:
            body["flavor"] = changes.instance_type
        if changes.image:
            body["image_id"] = changes.image
        if changes.description is not None:
            body["description"] = changes.description
        if body:
            await self.client.update_notebook(instance_id, body)

    async def start_instance(self, instance_id: str, run_for: timedelta | None = None) -> None:
        """`run_for` becomes the lease; without it the longest the cloud allows, so the operator decides."""
        await self.client.start_notebook(instance_id, lease_ms(run_for) if run_for else LEASE_MAX_MS)

    async def stop_instance(self, instance_id: str, save_image: bool = False) -> None:
        if save_image:
            raise self._unsupported("stop with image save")
        await self.client.stop_notebook(instance_id)

    async def delete_instance(self, instance_id: str) -> None:
        await self.client.delete_notebook(instance_id)

    async def set_tags(self, instance_id: str, put: dict[str, str], remove: tuple[str, ...]) -> None:
        """Its create request has no tags: a created notebook gets them here, from the next pass."""
        if put:
            await self.client.create_tags(instance_id, put)
        if remove:
            await self.client.delete_tags(instance_id, remove)

    async def create_snapshot(self, instance_id: str, request: SnapshotRequest) -> str:
        """create-image needs the notebook RUNNING (Conflict otherwise, from the cloud's own answer)."""
        body: dict[str, Any] = {"name": request.name, "tag": request.image_tag or "latest"}
        if request.image_namespace:
            body["namespace"] = request.image_namespace
        if request.description:
            body["description"] = request.description
        answer = await self.client.create_image(instance_id, body)
        return str(answer["id"])

    async def find_snapshot(self, instance_id: str, request: SnapshotRequest) -> CloudSnapshot | None:
        """The image of this name and tag (ListImage by name: names are the project's, tags tell versions)."""
        offset = 0
        while True:
            answer = await self.client.list_images(request.name, offset, IMAGE_PAGE)
            found = answer.get("data") or []
            for raw in found:
                same_place = not request.image_namespace or raw.get("namespace") == request.image_namespace
                if raw.get("name") == request.name and raw.get("tag") == (request.image_tag or "latest") and same_place:
                    return to_cloud_snapshot(raw)
            offset += len(found)
            if not found or offset >= int(answer.get("total") or 0):
                return None

    async def get_snapshot(self, instance_id: str, snapshot_id: str) -> CloudSnapshot:
        return to_cloud_snapshot(await self.client.show_image(snapshot_id))

    async def delete_snapshot(self, instance_id: str, snapshot_id: str) -> None:
        try:
            await self.client.delete_image(snapshot_id)
        except NotFound:
            return

    async def _lease(self, instance_id: str) -> Lease:
        return Lease.model_validate(await self.client.show_lease(instance_id))

    async def get_idle_rule(self, instance_id: str) -> IdleRule | None:
        lease = await self._lease(instance_id)
        if lease.enable and lease.type == "IDLE" and lease.duration:
            return IdleRule(max_idle_minutes=lease.duration // 60000)
        return None

    async def put_idle_rule(self, instance_id: str, rule: IdleRule) -> None:
        """An IDLE lease stops the notebook after that long idle; the cloud decides what idle means."""
        if rule.cpu_percent is not None or rule.gpu_percent is not None:
            raise InvalidRequest(
                "a ModelArts IDLE lease has no CPU/GPU thresholds", provider=PROVIDER, operation="put_idle_rule"
            )
        if await self.get_idle_rule(instance_id) == rule:
            return
        await self.client.renew_lease(instance_id, lease_ms(timedelta(minutes=rule.max_idle_minutes)), "IDLE")

    async def delete_idle_rule(self, instance_id: str) -> None:
        """No lease-free state exists: the longest TIMING lease is the closest to none."""
        if await self.get_idle_rule(instance_id) is not None:
            await self.client.renew_lease(instance_id, LEASE_MAX_MS, "TIMING")

    async def get_shutdown_timer(self, instance_id: str) -> datetime | None:
        return from_millis(lease_end(await self._lease(instance_id)))

    async def put_shutdown_timer(self, instance_id: str, due: datetime) -> None:
        current = await self.get_shutdown_timer(instance_id)
        if current is not None and abs((current - due).total_seconds()) < 60:
            return
        await self.client.renew_lease(instance_id, lease_ms(due - datetime.now(UTC)), "TIMING")

    async def delete_shutdown_timer(self, instance_id: str) -> None:
        await self.client.renew_lease(instance_id, LEASE_MAX_MS, "TIMING")
