"""DevEnviron behind the Provider protocol: observe, start and stop (the old API creates nothing here)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from notebook_operator.providers.devenv.client import DevEnvironClient
from notebook_operator.providers.devenv.schemas import PROVIDER, DevInstance, to_cloud_instance
from notebook_operator.providers.http import CloudHTTP
from notebook_operator.providers.listing import OffsetListedProvider
from notebook_operator.providers.types import Capability, CloudInstance

PAGE_SIZE = 100


class DevEnvironProvider(OffsetListedProvider):
    name = PROVIDER
    capabilities: frozenset[Capability] = frozenset()  # list, get, start and stop only

    def __init__(self, http: CloudHTTP, project_id: str, page_size: int = PAGE_SIZE) -> None:
        self.client = DevEnvironClient(http, project_id)
        self.http = http
        self.page_size = page_size

    async def _page(self, offset: int, status: str | None) -> tuple[list[Any], int]:
        answer = await self.client.list_instances(offset, self.page_size, status)
        return answer.instances, answer.total_count

    def _translate(self, item: DevInstance) -> CloudInstance:
        return to_cloud_instance(item)

    async def start_instance(self, instance_id: str, run_for: timedelta | None = None) -> None:
        await self.client.action(instance_id, "start")

    async def stop_instance(self, instance_id: str, save_image: bool = False) -> None:
        if save_image:
            raise self._unsupported("stop with image save")
        await self.client.action(instance_id, "stop")
