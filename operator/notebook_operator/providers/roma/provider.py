"""ROMA Connect behind the Provider protocol: list and get only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from notebook_operator.providers.base import Unsupporting
from notebook_operator.providers.http import CloudHTTP
from notebook_operator.providers.listing import get_by_listing, offset_pages
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
        status = filter.status if filter else None

        async def fetch(offset: int) -> tuple[list[Any], int]:
            answer = await self.client.list_instances(offset, self.page_size, status)
            return answer.instances, answer.total

        async for instance in offset_pages(fetch, lambda item: to_cloud_instance(item, item.model_dump()), filter):
            yield instance

    async def get_instance(self, instance_id: str) -> CloudInstance:
        return await get_by_listing(self.list_instances(ListFilter(ids=(instance_id,))), instance_id, PROVIDER)
