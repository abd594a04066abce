"""PAI-DSW API calls, one method per operation, over the account's CloudHTTP."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from notebook_operator.providers.http import CloudHTTP

API = "/api/v2"


def _path(instance_id: str) -> str:
    return f"{API}/instances/{quote(instance_id, safe='')}"


class PaiClient:
    def __init__(self, http: CloudHTTP) -> None:
        self.http = http

    async def _call(self, action: str, method: str, path: str, *, idempotent: bool = True, **kw: Any) -> Any:
        headers = {"x-acs-action": action}
        response = await self.http.call(action, method, path, headers=headers, idempotent=idempotent, **kw)
        return response.json()

    async def list_instances(self, page_number: int, page_size: int, filters: dict[str, Any]) -> dict[str, Any]:
        """The raw answer: callers keep each instance's dict as the CloudInstance's raw payload."""
        params = {"PageNumber": page_number, "PageSize": page_size, "SortBy": "GmtCreateTime", "Order": "ASC"}
        params.update(filters)
        answer: dict[str, Any] = await self._call(
            "ListInstances", "GET", f"{API}/instances", params=params, urgent=True
        )
        return answer

    async def get_instance(self, instance_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GetInstance", "GET", _path(instance_id))
        return result

    async def create_instance(self, body: dict[str, Any]) -> str:
        answer = await self._call("CreateInstance", "POST", f"{API}/instances", json=body, idempotent=False)
        return str(answer["InstanceId"])

    async def update_instance(self, instance_id: str, body: dict[str, Any]) -> None:
        await self._call("UpdateInstance", "PUT", _path(instance_id), json=body)

    async def delete_instance(self, instance_id: str) -> None:
        await self._call("DeleteInstance", "DELETE", _path(instance_id))

    async def start_instance(self, instance_id: str) -> None:
        await self._call("StartInstance", "PUT", f"{_path(instance_id)}/start")

    async def stop_instance(self, instance_id: str, save_image: bool) -> None:
        params = {"SaveImage": save_image} if save_image else None
        await self._call("StopInstance", "PUT", f"{_path(instance_id)}/stop", params=params)

    async def stop_instances(self, instance_ids: list[str]) -> dict[str, Any]:
        """StopInstances: the answer's InstanceIds (affected) and AccessDeniedDetail (refused), as the SDK's
        StopInstancesResponseBody has them."""
        answer: dict[str, Any] = await self._call(
            "StopInstances", "PUT", f"{API}/batch/instances/stop", json={"InstanceIds": instance_ids}
        )
        return answer

    async def get_newest_session(self, instance_id: str) -> list[dict[str, Any]]:
        """GetLifecycle's newest session ("from startup to failure or shutdown"): its records."""
        params = {"Order": "DESC", "Limit": 1}
        answer = await self._call("GetLifecycle", "GET", f"{_path(instance_id)}/lifecycle", params=params)
        sessions = answer.get("Lifecycle") or []
        return [dict(record) for record in sessions[0]] if sessions else []

    async def get_events(self, instance_id: str, start: str, limit: int) -> list[str]:
        params = {"StartTime": start, "MaxEventsNum": limit}
        answer = await self._call("GetInstanceEvents", "GET", f"{_path(instance_id)}/events", params=params)
        return [str(event) for event in answer.get("Events") or []]

    async def update_labels(self, instance_id: str, labels: dict[str, str]) -> None:
        """UpdateInstanceLabels: adds the labels, or changes the values of those it has."""
        body = {"Labels": [{"Key": k, "Value": v} for k, v in sorted(labels.items())]}
        await self._call("UpdateInstanceLabels", "PUT", f"{_path(instance_id)}/labels", json=body)

    async def delete_labels(self, instance_id: str, keys: tuple[str, ...]) -> None:
        """DeleteInstanceLabels: LabelKeys is one comma-separated string (the SDK's DeleteInstanceLabelsRequest)."""
        params = {"LabelKeys": ",".join(keys)}
        await self._call("DeleteInstanceLabels", "DELETE", f"{_path(instance_id)}/labels", params=params)

    async def create_snapshot(self, instance_id: str, body: dict[str, Any]) -> str:
        answer = await self._call(
            "CreateInstanceSnapshot", "POST", f"{_path(instance_id)}/snapshots", json=body, idempotent=False
        )
        return str(answer["SnapshotId"])

    async def get_snapshot(self, instance_id: str, snapshot_id: str) -> dict[str, Any]:
        path = f"{_path(instance_id)}/snapshots/{quote(snapshot_id, safe='')}"
        result: dict[str, Any] = await self._call("GetInstanceSnapshot", "GET", path)
        return result

    async def list_snapshots(self, instance_id: str, page_number: int, page_size: int) -> dict[str, Any]:
        params = {"PageNumber": page_number, "PageSize": page_size, "SortBy": "GmtCreateTime", "Order": "DESC"}
        answer: dict[str, Any] = await self._call(
            "ListInstanceSnapshot", "GET", f"{_path(instance_id)}/snapshots", params=params
        )
        return answer

    async def delete_snapshot(self, instance_id: str, snapshot_id: str) -> None:
        path = f"{_path(instance_id)}/snapshots/{quote(snapshot_id, safe='')}"
        await self._call("DeleteInstanceSnapshot", "DELETE", path)

    async def get_metrics(self, instance_id: str, metric: str, start: str, end: str) -> list[dict[str, Any]]:
        path = f"{API}/instance/{quote(instance_id, safe='')}/metrics"
        params = {"MetricType": metric, "StartTime": start, "EndTime": end, "TimeStep": "1"}
        answer = await self._call("GetInstanceMetrics", "GET", path, params=params)
        points: list[dict[str, Any]] = []
        for pod in answer.get("PodMetrics") or []:
            points += pod.get("Metrics") or []
        return points

    async def list_ecs_specs(self, accelerator: str, page_number: int, page_size: int) -> dict[str, Any]:
        params = {"AcceleratorType": accelerator, "PageNumber": page_number, "PageSize": page_size}
        answer: dict[str, Any] = await self._call("ListEcsSpecs", "GET", f"{API}/ecsspecs", params=params)
        return answer

    async def get_culler(self, instance_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "GetIdleInstanceCuller", "GET", f"{_path(instance_id)}/idleinstanceculler"
        )
        return result

    async def create_culler(self, instance_id: str, body: dict[str, Any]) -> None:
        await self._call("CreateIdleInstanceCuller", "POST", f"{_path(instance_id)}/idleinstanceculler", json=body)

    async def delete_culler(self, instance_id: str) -> None:
        await self._call("DeleteIdleInstanceCuller", "DELETE", f"{_path(instance_id)}/idleinstanceculler")

    async def get_timer(self, instance_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "GetInstanceShutdownTimer", "GET", f"{_path(instance_id)}/shutdowntimer"
        )
        return result

    async def create_timer(self, instance_id: str, due_time: str) -> None:
        path = f"{_path(instance_id)}/shutdowntimer"
        await self._call("CreateInstanceShutdownTimer", "POST", path, json={"DueTime": due_time})

    async def delete_timer(self, instance_id: str) -> None:
        await self._call("DeleteInstanceShutdownTimer", "DELETE", f"{_path(instance_id)}/shutdowntimer")


def labels_filter(labels: dict[str, str]) -> str:
    """ListInstances takes Labels as one compact JSON object string."""
    return json.dumps(labels, separators=(",", ":"), sort_keys=True)
