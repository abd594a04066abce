"""PAI-DSW behind the Provider protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from notebook_operator.providers.base import UnsupportedByDefault
from notebook_operator.providers.errors import InstanceTypeNotOffered, NotFound, remote_text
from notebook_operator.providers.http import CloudHTTP
from notebook_operator.providers.pai.client import PaiClient, labels_filter
from notebook_operator.providers.pai.schemas import (
    PROVIDER,
    TOKEN_LABEL,
    Instance,
    to_cloud_instance,
    to_cloud_snapshot,
)
from notebook_operator.providers.types import (
    BatchStop,
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
from notebook_operator.times import parse_rfc3339, rfc3339

PAGE_SIZE = 100
PAGES_AT_ONCE = 4  # within the account's rate limit, which every call still passes through
SPECS_TTL = timedelta(minutes=10)  # the region's catalogue changes rarely; a create checks against it


class PaiDswProvider(UnsupportedByDefault):
    name = PROVIDER
    capabilities = frozenset(Capability)
    native = NativeEnforcement(
        idle_rule="PAI-DSW IdleInstanceCuller", idle_thresholds=True, timer="PAI-DSW shutdown timer"
    )

    def __init__(self, http: CloudHTTP, page_size: int = PAGE_SIZE) -> None:
        self.client = PaiClient(http)
        self.page_size = page_size
        self._specs: tuple[datetime, list[dict[str, Any]]] | None = None
        self._specs_lock = asyncio.Lock()  # many passes ask at once after a restart: one listing answers them

    async def _ecs_specs(self) -> list[dict[str, Any]]:
        """Every instance type ListEcsSpecs offers (CPU and GPU), cached for SPECS_TTL."""
        async with self._specs_lock:
            now = datetime.now(UTC)
            if self._specs is None or now - self._specs[0] > SPECS_TTL:
                found: list[dict[str, Any]] = []
                for accelerator in ("CPU", "GPU"):  # AcceleratorType is required
                    page = 1
                    while True:
                        answer = await self.client.list_ecs_specs(accelerator, page, self.page_size)
                        specs = answer.get("EcsSpecs") or []
                        found += [s for s in specs if s.get("InstanceType")]
                        if not specs or page * self.page_size >= int(answer.get("TotalCount") or 0):
                            break
                        page += 1
                self._specs = (now, found)
            return self._specs[1]

    async def offered_types(self) -> list[str]:
        return [str(s["InstanceType"]) for s in await self._ecs_specs()]

    async def price_list(self) -> dict[str, HourlyPrice]:
        """ListEcsSpecs' Price (per hour, pay-as-you-go) and Currency of each instance type."""
        return {
            str(s["InstanceType"]): HourlyPrice(float(s["Price"]), str(s["Currency"]))
            for s in await self._ecs_specs()
            if s.get("Price") is not None and s.get("Currency")
        }

    async def _check_type(self, instance_type: str | None, operation: str) -> None:
        if not instance_type:
            return
        offered = await self.offered_types()
        if offered and instance_type not in offered:
            raise InstanceTypeNotOffered(
                f"instanceType {instance_type} is not offered here; ListEcsSpecs offers: {', '.join(sorted(offered))}",
                provider=PROVIDER,
                operation=operation,
            )

    async def aclose(self) -> None:
        await self.client.http.aclose()

    async def list_instances(self, filter: ListFilter | None = None) -> AsyncIterator[CloudInstance]:
        filters: dict[str, Any] = {}
        if filter:
            if filter.ids:
                filters["InstanceId"] = ",".join(filter.ids)
            if filter.name:
                filters["InstanceName"] = filter.name
            if filter.status:
                filters["Status"] = filter.status
            if filter.labels:
                filters["Labels"] = labels_filter(filter.labels)
        # Page 1 tells the total; the other pages are fetched a few at a time, in order.
        first = await self.client.list_instances(1, self.page_size, filters)
        for raw in first.get("Instances") or []:
            yield to_cloud_instance(Instance.model_validate(raw))
        pages = -(-int(first.get("TotalCount") or 0) // self.page_size)
        for start in range(2, pages + 1, PAGES_AT_ONCE):
            numbers = range(start, min(pages, start + PAGES_AT_ONCE - 1) + 1)
            answers = await asyncio.gather(*(self.client.list_instances(n, self.page_size, filters) for n in numbers))
            for answer in answers:
                for raw in answer.get("Instances") or []:
                    yield to_cloud_instance(Instance.model_validate(raw))

    async def get_instance(self, instance_id: str) -> CloudInstance:
        raw = await self.client.get_instance(instance_id)
        return to_cloud_instance(Instance.model_validate(raw))

    async def find_by_client_token(self, token: str, name: str) -> CloudInstance | None:
        async for instance in self.list_instances(ListFilter(name=name, labels={TOKEN_LABEL: token})):
            if instance.labels.get(TOKEN_LABEL) == token and instance.phase != "Deleting":
                return instance
        return None

    async def create_instance(self, spec: CreateSpec) -> str:
        await self._check_type(spec.instance_type, "create_instance")
        labels = {**spec.labels, TOKEN_LABEL: spec.client_token}
        body: dict[str, Any] = {
            "InstanceName": spec.name,
            "Labels": [{"Key": k, "Value": v} for k, v in sorted(labels.items())],
        }
        if spec.image.startswith("image-"):
            body["ImageId"] = spec.image
        else:
            body["ImageUrl"] = spec.image
        if spec.instance_type:
            body["EcsSpec"] = spec.instance_type
        resources = {
            "CPU": spec.cpu,
            "Memory": spec.memory_gib,
            "GPU": spec.gpu,
            "GPUType": spec.gpu_type,
            # RequestedResource.SharedMemory, GB (alibabacloud_pai_dsw20220101 CreateInstanceRequestRequestedResource)
            "SharedMemory": spec.shared_memory_gib,
        }
        if any(v is not None for v in resources.values()):
            # Whole numbers as the API's examples write them ("8", not "8.0").
            body["RequestedResource"] = {
                k: f"{v:g}" if isinstance(v, float) else str(v) for k, v in resources.items() if v is not None
            }
        optional = {
            "WorkspaceId": spec.workspace_id,
            "ResourceId": spec.resource_id,
            "Accessibility": spec.accessibility,
            "EnvironmentVariables": spec.env or None,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if spec.datasets:
            body["Datasets"] = [
                {
                    k2: v
                    for k2, v in {
                        "DatasetId": d.get("id"),
                        "Uri": d.get("uri"),
                        "MountPath": d.get("mountPath"),
                        "MountAccess": "RO" if d.get("readOnly") else "RW",
                    }.items()
                    if v
                }
                for d in spec.datasets
            ]
        return await self.client.create_instance(body)

    async def update_instance(self, instance_id: str, changes: UpdateSpec) -> None:
        await self._check_type(changes.instance_type, "update_instance")
        body: dict[str, Any] = {}
        if changes.instance_type:
            body["EcsSpec"] = changes.instance_type
        if changes.image:
            body["ImageId" if changes.image.startswith("image-") else "ImageUrl"] = changes.image
        if changes.env is not None:
            body["EnvironmentVariables"] = changes.env
        if body:
            await self.client.update_instance(instance_id, body)

    async def start_instance(self, instance_id: str, run_for: timedelta | None = None) -> None:
        await self.client.start_instance(instance_id)

    async def stop_instance(self, instance_id: str, save_image: bool = False) -> None:
        await self.client.stop_instance(instance_id, save_image)

    async def stop_instances(self, instance_ids: list[str]) -> BatchStop:
        """One StopInstances call: which of `instance_ids` it stopped and which it refused (with the reason)."""
        answer = await self.client.stop_instances(instance_ids)
        stopped = frozenset(str(i) for i in answer.get("InstanceIds") or [])
        detail = answer.get("AccessDeniedDetail")
        denied = {str(k): remote_text(v) for k, v in detail.items()} if isinstance(detail, dict) else {}
        return BatchStop(stopped, {i: denied[i] for i in instance_ids if i in denied})

    async def delete_instance(self, instance_id: str) -> None:
        await self.client.delete_instance(instance_id)

    async def get_utilization(self, instance: CloudInstance, window: timedelta) -> Utilization:
        now = datetime.now(UTC)
        start, end = rfc3339(now - window), rfc3339(now)
        cpu = [float(p["Value"]) for p in await self.client.get_metrics(instance.id, "CpuCoreUsage", start, end)]
        gpu: list[float] = []
        if instance.is_gpu:
            gpu = [float(p["Value"]) for p in await self.client.get_metrics(instance.id, "GpuCoreUsage", start, end)]
        samples = min(len(cpu), len(gpu)) if instance.is_gpu else len(cpu)
        return Utilization(
            window=window,
            samples=samples,
            cpu_max=max(cpu) if cpu else None,
            gpu_max=max(gpu) if gpu else None,
            sampled_at=now,
        )

    async def get_idle_rule(self, instance_id: str) -> IdleRule | None:
        try:
            answer = await self.client.get_culler(instance_id)
        except NotFound:
            await self.client.get_instance(instance_id)  # a missing instance is NotFound; a missing culler is None
            return None
        if not answer.get("MaxIdleTimeInMinutes"):
            return None
        return IdleRule(
            cpu_percent=answer.get("CpuPercentThreshold"),
            gpu_percent=answer.get("GpuPercentThreshold"),
            max_idle_minutes=int(answer["MaxIdleTimeInMinutes"]),
        )

    async def put_idle_rule(self, instance_id: str, rule: IdleRule) -> None:
        """One culler per instance: an update is delete then create."""
        current = await self.get_idle_rule(instance_id)
        if current == rule:
            return
        if current is not None:
            await self.delete_idle_rule(instance_id)
        body: dict[str, Any] = {"MaxIdleTimeInMinutes": rule.max_idle_minutes}
        if rule.cpu_percent is not None:
            body["CpuPercentThreshold"] = rule.cpu_percent
        if rule.gpu_percent is not None:
            body["GpuPercentThreshold"] = rule.gpu_percent
        await self.client.create_culler(instance_id, body)

    async def delete_idle_rule(self, instance_id: str) -> None:
        try:
            await self.client.delete_culler(instance_id)
        except NotFound:
            await self.client.get_instance(instance_id)

    async def running_since(self, instance_id: str) -> datetime | None:
        records = await self.client.get_newest_session(instance_id)
        times = [parse_rfc3339(r.get("GmtCreateTime")) for r in records if r.get("Status") == "Running"]
        return max((t for t in times if t is not None), default=None)

    async def set_tags(self, instance_id: str, put: dict[str, str], remove: tuple[str, ...]) -> None:
        if put:
            await self.client.update_labels(instance_id, put)
        if remove:
            await self.client.delete_labels(instance_id, remove)

    async def create_snapshot(self, instance_id: str, request: SnapshotRequest) -> str:
        body: dict[str, Any] = {"SnapshotName": request.name, "Overwrite": False}
        if request.image_url:
            body["ImageUrl"] = request.image_url
        if request.exclude_paths:
            body["ExcludePaths"] = list(request.exclude_paths)
        if request.labels:
            body["Labels"] = [{"Key": k, "Value": v} for k, v in sorted(request.labels.items())]
        if request.description:
            body["SnapshotDescription"] = request.description
        return await self.client.create_snapshot(instance_id, body)

    async def find_snapshot(self, instance_id: str, request: SnapshotRequest) -> CloudSnapshot | None:
        page = 1
        while True:
            answer = await self.client.list_snapshots(instance_id, page, self.page_size)
            found = answer.get("Snapshots") or []
            for raw in found:
                if raw.get("SnapshotName") == request.name:
                    return to_cloud_snapshot(raw)
            if not found or page * self.page_size >= int(answer.get("TotalCount") or 0):
                return None
            page += 1

    async def get_snapshot(self, instance_id: str, snapshot_id: str) -> CloudSnapshot:
        return to_cloud_snapshot(await self.client.get_snapshot(instance_id, snapshot_id))

    async def delete_snapshot(self, instance_id: str, snapshot_id: str) -> None:
        try:
            await self.client.delete_snapshot(instance_id, snapshot_id)
        except NotFound:
            return

    async def instance_events(self, instance_id: str, since: datetime, limit: int) -> list[str]:
        return await self.client.get_events(instance_id, rfc3339(since), limit)

    async def get_shutdown_timer(self, instance_id: str) -> datetime | None:
        try:
            answer = await self.client.get_timer(instance_id)
        except NotFound:
            await self.client.get_instance(instance_id)
            return None
        return parse_rfc3339(answer.get("DueTime"))

    async def put_shutdown_timer(self, instance_id: str, due: datetime) -> None:
        current = await self.get_shutdown_timer(instance_id)
        if current is not None and abs((current - due).total_seconds()) < 1:
            return
        if current is not None:
            await self.delete_shutdown_timer(instance_id)
        await self.client.create_timer(instance_id, rfc3339(due))

    async def delete_shutdown_timer(self, instance_id: str) -> None:
        try:
            await self.client.delete_timer(instance_id)
        except NotFound:
            await self.client.get_instance(instance_id)
