"""ModelArts notebook API calls, one method per operation."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from notebook_operator.providers.http import CloudHTTP
from notebook_operator.providers.modelarts.schemas import ListResponse


class ModelArtsClient:
    def __init__(self, http: CloudHTTP, project_id: str) -> None:
        self.http = http
        self.base = f"/v1/{quote(project_id, safe='')}/notebooks"
        self.images = f"/v1/{quote(project_id, safe='')}/images"

    def _one(self, notebook_id: str) -> str:
        return f"{self.base}/{quote(notebook_id, safe='')}"

    async def _json(self, operation: str, method: str, path: str, **kw: Any) -> Any:
        return (await self.http.call(operation, method, path, **kw)).json()

    async def list_notebooks(self, offset: int, limit: int, filters: dict[str, Any]) -> ListResponse:
        """`offset` counts records, not pages; `limit` is 10, 20 or 50 (see provider.PAGE_SIZE)."""
        params = {"limit": limit, "offset": offset, "sort_key": "create_at", "sort_dir": "ASC", **filters}
        answer = await self._json("ListNotebooks", "GET", self.base, params=params, urgent=True)
        return ListResponse.model_validate(answer)

    async def show_notebook(self, notebook_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("ShowNotebook", "GET", self._one(notebook_id))
        return result

    async def create_notebook(self, body: dict[str, Any]) -> str:
        answer = await self._json("CreateNotebook", "POST", self.base, json=body, idempotent=False)
        return str(answer["id"])

    async def update_notebook(self, notebook_id: str, body: dict[str, Any]) -> None:
        await self.http.call("UpdateNotebook", "PUT", self._one(notebook_id), json=body)

    async def delete_notebook(self, notebook_id: str) -> None:
        await self.http.call("DeleteNotebook", "DELETE", self._one(notebook_id))

    async def start_notebook(self, notebook_id: str, duration_ms: int, lease_type: str = "TIMING") -> None:
        params = {"duration": duration_ms, "type": lease_type}
        await self.http.call("StartNotebook", "POST", f"{self._one(notebook_id)}/start", params=params)

    async def stop_notebook(self, notebook_id: str) -> None:
        await self.http.call("StopNotebook", "POST", f"{self._one(notebook_id)}/stop")

    async def create_tags(self, notebook_id: str, tags: dict[str, str]) -> None:
        """CreateNotebookTags (TMS): adds the tags; a key the notebook has gets the new value."""
        body = {"tags": [{"key": k, "value": v} for k, v in sorted(tags.items())]}
        await self.http.call("CreateNotebookTags", "POST", f"{self._one(notebook_id)}/tags/create", json=body)

    async def delete_tags(self, notebook_id: str, keys: tuple[str, ...]) -> None:
        """DeleteNotebookTags: a DELETE with a body of the tags (DeleteTmsTagsRequest; a key alone deletes it)."""
        body = {"tags": [{"key": k} for k in keys]}
        await self.http.call("DeleteNotebookTags", "DELETE", f"{self._one(notebook_id)}/tags/delete", json=body)

    async def create_image(self, notebook_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """CreateImage (`create-image`): saves a RUNNING notebook as an image (ImageCreateReq -> ImageResponse)."""
        path = f"{self._one(notebook_id)}/create-image"
        result: dict[str, Any] = await self._json("CreateImage", "POST", path, json=body, idempotent=False)
        return result

    async def show_image(self, image_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("ShowImage", "GET", f"{self.images}/{quote(image_id, safe='')}")
        return result

    async def list_images(self, name: str, offset: int, limit: int) -> dict[str, Any]:
        params = {"name": name, "type": "DEDICATED", "offset": offset, "limit": limit}
        result: dict[str, Any] = await self._json("ListImage", "GET", self.images, params=params)
        return result

    async def delete_image(self, image_id: str) -> None:
        await self.http.call("DeleteImage", "DELETE", f"{self.images}/{quote(image_id, safe='')}")

    async def show_lease(self, notebook_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("ShowLease", "GET", f"{self._one(notebook_id)}/lease")
        return result

    async def renew_lease(self, notebook_id: str, duration_ms: int, lease_type: str) -> dict[str, Any]:
        body = {"duration": duration_ms, "type": lease_type}
        result: dict[str, Any] = await self._json("RenewLease", "PATCH", f"{self._one(notebook_id)}/lease", json=body)
        return result
