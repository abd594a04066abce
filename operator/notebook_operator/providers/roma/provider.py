"""ROMA Connect behind the Provider protocol: list and get only."""

from __future__ import annotations

from typing import Any

from notebook_operator.providers.http import CloudHTTP
from notebook_operator.providers.listing import OffsetListedProvider
from notebook_operator.providers.roma.client import RomaClient
from notebook_operator.providers.roma.schemas import PROVIDER, RomaInstance, to_cloud_instance
from notebook_operator.providers.types import Capability, CloudInstance

PAGE_SIZE = 100


class RomaConnectProvider(OffsetListedProvider):
    name = PROVIDER
    capabilities: frozenset[Capability] = frozenset()  # observe only: list and get

    def __init__(self, http: CloudHTTP, project_id: str, page_size: int = PAGE_SIZE) -> None:
        self.client = RomaClient(http, project_id)
        self.http = http
        self.page_size = page_size

    async def _page(self, offset: int, status: str | None) -> tuple[list[Any], int]:
        answer = await self.client.list_instances(offset, self.page_size, status)
        return answer.instances, answer.total

    def _translate(self, item: RomaInstance) -> CloudInstance:
        return to_cloud_instance(item)
