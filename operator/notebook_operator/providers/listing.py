"""Offset-paged listings for the APIs with no single-instance GET (DevEnviron, ROMA Connect)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from notebook_operator.providers.base import UnsupportedByDefault
from notebook_operator.providers.errors import NotFound
from notebook_operator.providers.http import CloudHTTP
from notebook_operator.providers.types import CloudInstance, ListFilter

# offset -> (this page's items, total count)
Fetch = Callable[[int], Awaitable[tuple[list[Any], int]]]


async def offset_pages(
    fetch: Fetch, translate: Callable[[Any], CloudInstance], filter: ListFilter | None
) -> AsyncIterator[CloudInstance]:
    """Every page from offset 0; ids and names filtered here since these APIs cannot."""
    wanted = set(filter.ids) if filter and filter.ids else None
    offset = 0
    while True:
        items, total = await fetch(offset)
        for item in items:
            instance = translate(item)
            if (wanted is None or instance.id in wanted) and (
                not filter or not filter.name or filter.name in instance.name
            ):
                yield instance
        offset += len(items)
        if not items or offset >= total:
            return


async def get_by_listing(listing: AsyncIterator[CloudInstance], instance_id: str, provider: str) -> CloudInstance:
    async for instance in listing:
        return instance
    raise NotFound(f"instance {instance_id} not found", provider=provider, operation="get_instance")


class OffsetListedProvider(UnsupportedByDefault):
    """A provider whose API lists by offset and has no single-instance GET (DevEnviron, ROMA Connect)."""

    http: CloudHTTP
    page_size: int

    async def _page(self, offset: int, status: str | None) -> tuple[list[Any], int]:
        raise NotImplementedError

    def _translate(self, item: Any) -> CloudInstance:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.http.aclose()

    async def list_instances(self, filter: ListFilter | None = None) -> AsyncIterator[CloudInstance]:
        status = filter.status if filter else None

        async def fetch(offset: int) -> tuple[list[Any], int]:
            return await self._page(offset, status)

        async for instance in offset_pages(fetch, self._translate, filter):
            yield instance

    async def get_instance(self, instance_id: str) -> CloudInstance:
        return await get_by_listing(self.list_instances(ListFilter(ids=(instance_id,))), instance_id, self.name)
