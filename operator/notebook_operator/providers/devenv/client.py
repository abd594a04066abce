"""DevEnviron API calls."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from notebook_operator.providers.devenv.schemas import ListResponse
from notebook_operator.providers.http import CloudHTTP


class DevEnvironClient:
    def __init__(self, http: CloudHTTP, project_id: str) -> None:
        self.http = http
        self.base = f"/v1/{quote(project_id, safe='')}/demanager/instances"

    async def list_instances(self, offset: int, limit: int, status: str | None) -> ListResponse:
        params: dict[str, Any] = {
            "de_type": "Notebook",
            "sortby": "creation_timestamp",
            "order": "asc",
            "offset": offset,
            "limit": limit,
            "status": status,
        }
        response = await self.http.call("ListDevInstances", "GET", self.base, params=params, urgent=True)
        return ListResponse.model_validate(response.json())

    async def action(self, instance_id: str, action: str) -> None:
        path = f"{self.base}/{quote(instance_id, safe='')}/action"
        await self.http.call(f"{action.capitalize()}DevInstance", "POST", path, json={"action": action})
