"""DevEnviron behind the Provider protocol: observe, start and stop (the old API creates nothing here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from notebook_operator.providers.base import Unsupporting
from notebook_operator.providers.devenv.client import DevEnvironClient
from notebook_operator.providers.devenv.schemas import PROVIDER, to_cloud_instance
from notebook_operator.providers.http import CloudHTTP
from notebook_operator.providers.listing import get_by_listing, offset_pages
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
        status = filter.status if filter else None

        async def fetch(offset: int) -> tuple[list[Any], int]:
            answer = await self.client.list_instances(offset, self.page_size, status)
            return answer.instances, answer.total_count

        async for instance in offset_pages(fetch, lambda item: to_cloud_instance(item, item.model_dump()), filter):
            yield instance

    async def get_instance(self, instance_id: str) -> CloudInstance:
        # The old API has no single-instance GET: find it in the listing.
        return await get_by_listing(self.list_instances(ListFilter(ids=(instance_id,))), instance_id, PROVIDER)

    async def start_instance(self, instance_id: str, run_for: timedelta | None = None) -> None:
        await self.client.action(instance_id, "start")

    async def stop_instance(self, instance_id: str, save_image: bool = False) -> None:
        if save_image:
            raise self._unsupported("stop with image save")
        await self.client.action(instance_id, "stop")
