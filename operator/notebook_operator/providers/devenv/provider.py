"""DevEnviron behind the Provider protocol: observe, start and stop (the old API creates nothing here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from notebook_operator.providers.base import Unsupporting
from notebook_operator.providers.devenv.client import DevEnvironClient
from notebook_operator.providers.devenv.schemas import PROVIDER, to_cloud_instance
from notebook_operator.providers.errors import NotFound
from notebook_operator.providers.http import CloudHTTP
from notebook_operator.providers.types import Capability, CloudInstance, ListFilter

PAGE_SIZE = 100


class DevEnvironProvider(Unsupporting):
    name = PROVIDER
    capabilities = frozenset({Capability.LIST, Capability.GET, Capability.START, Capability.STOP})

    def __init__(self, http: CloudHTTP, project_id: str, page_size: int = PAGE_SIZE) -> None:
        self.client = DevEnvironClient(http, project_id)
        self.page_size = page_size

    async def aclose(self) -> None:
        await self.client.http.aclose()

    async def list_instances(self, filter: ListFilter | None = None) -> AsyncIterator[CloudInstance]:
        wanted = set(filter.ids) if filter and filter.ids else None
        offset = 0
        while True:
            answer = await self.client.list_instances(offset, self.page_size, filter.status if filter else None)
            for item in answer.instances:
                if (wanted is None or item.id in wanted) and (
                    not filter or not filter.name or filter.name in item.name
                ):
                    yield to_cloud_instance(item, item.model_dump())
            offset += len(answer.instances)
            if not answer.instances or offset >= answer.total_count:
                return

    async def get_instance(self, instance_id: str) -> CloudInstance:
        # The old API has no single-instance GET: find it in the listing.
        async for instance in self.list_instances(ListFilter(ids=(instance_id,))):
            return instance
        raise NotFound(f"instance {instance_id} not found", provider=PROVIDER, operation="get_instance")

    async def start_instance(self, instance_id: str, run_for: timedelta | None = None) -> None:
        await self.client.action(instance_id, "start")

    async def stop_instance(self, instance_id: str, save_image: bool = False) -> None:
        if save_image:
            raise self._unsupported("stop with image save")
        await self.client.action(instance_id, "stop")
