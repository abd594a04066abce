"""ROMA Connect behind the Provider protocol: list and get only."""

from __future__ import annotations

from collections.abc import AsyncIterator

from notebook_operator.providers.base import Unsupporting
from notebook_operator.providers.errors import NotFound
from notebook_operator.providers.http import CloudHTTP
from notebook_operator.providers.roma.client import RomaClient
from notebook_operator.providers.roma.schemas import PROVIDER, to_cloud_instance
from notebook_operator.providers.types import Capability, CloudInstance, ListFilter

PAGE_SIZE = 100


class RomaConnectProvider(Unsupporting):
    name = PROVIDER
    capabilities = frozenset({Capability.LIST, Capability.GET})

    def __init__(self, http: CloudHTTP, project_id: str, page_size: int = PAGE_SIZE) -> None:
        self.client = RomaClient(http, project_id)
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
            if not answer.instances or offset >= answer.total:
                return

    async def get_instance(self, instance_id: str) -> CloudInstance:
        async for instance in self.list_instances(ListFilter(ids=(instance_id,))):
            return instance
        raise NotFound(f"instance {instance_id} not found", provider=PROVIDER, operation="get_instance")
