"""ROMA Connect API calls."""

from __future__ import annotations

from urllib.parse import quote

from notebook_operator.providers.http import CloudHTTP
from notebook_operator.providers.roma.schemas import ListResponse


class RomaClient:
    def __init__(self, http: CloudHTTP, project_id: str) -> None:
        self.http = http
        self.path = f"/v2/{quote(project_id, safe='')}/instances"

    async def list_instances(self, offset: int, limit: int, status: str | None) -> ListResponse:
        params = {"offset": offset, "limit": limit, "status": status}
        response = await self.http.call("CheckRomaInstanceListV2", "GET", self.path, params=params, urgent=True)
        return ListResponse.model_validate(response.json())
