"""ModelArts DevEnviron (old version) routes: list and the start/stop action."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from notebook_devtools.cloudsim.context import json_body, sim
from notebook_devtools.cloudsim.errors import CloudError
from notebook_devtools.cloudsim.lifecycle import Lifecycle
from notebook_devtools.cloudsim.store import SimInstance

routes = web.RouteTableDef()
PREFIX = "/v1/{project_id}/demanager/instances"


def instance_json(instance: SimInstance, lifecycle: Lifecycle) -> dict[str, Any]:
    a = instance.attrs
    now_ms = lifecycle.clock.now_ms()
    auto_stop = a.get("auto_stop") or {"enable": False, "duration": 3600, "prompt": True}
    if auto_stop.get("enable") and instance.running_since is not None:
        stop_ms = int(instance.running_since * 1000 + int(auto_stop["duration"]) * 1000)
        auto_stop = {**auto_stop, "stop_timestamp": stop_ms, "remain_time": max(0, (stop_ms - now_ms) // 1000)}
    return {
        "id": instance.id,
        "name": instance.name,
        "description": a.get("description", ""),
        "status": instance.status,
        "creation_timestamp": str(int(instance.created_at * 1000)),
        "latest_update_timestamp": str(int(instance.modified_at * 1000)),
        "flavor": a.get("flavor", "modelarts.vm.cpu.2u"),
        "profile": {
            "de_type": "Notebook",
            "flavor_type": "GPU" if instance.gpu else "CPU",
            "provision": {"type": "Docker"},
        },
        "spec": {
            "auto_stop": auto_stop,
            "annotations": {
                "target_domain": "https://devenv.emulator.local",
                "url": f"https://devenv.emulator.local/{instance.id}/lab",
            },
            "extend_params": {},
            "failed_reasons": {},
        },
        "workspace": {"id": str(a.get("workspace_id", "0"))},
        "user": {"id": a.get("user_id", "0123456789abcdef"), "name": "emulator"},
    }


@routes.get(PREFIX, name="devenv:ListInstances")
async def list_instances(request: web.Request) -> web.Response:
    q = request.query
    if q.get("de_type") != "Notebook":
        raise CloudError(400, "ModelArts.0101", "de_type is required and must be Notebook.")
    sort_by = q.get("sortby", "name")
    if sort_by not in ("name", "creation_timestamp"):
        raise CloudError(400, "ModelArts.0101", "sortby must be name or creation_timestamp.")
    found = [
        i
        for i in sim(request).store.of("devenv", request.match_info["project_id"])
        if (not q.get("status") or i.status == q["status"])
        and (not q.get("workspace_id") or str(i.attrs.get("workspace_id", "0")) == q["workspace_id"])
        and (not q.get("pool_id") or i.attrs.get("pool_id") == q["pool_id"])
    ]
    found.sort(
        key=lambda i: (i.name, i.id) if sort_by == "name" else (i.created_at, i.id),
        reverse=q.get("order", "asc") == "desc",
    )
    offset, limit = int(q.get("offset", 0)), int(q.get("limit", 0))
    if offset < 0 or limit < 0:
        raise CloudError(400, "ModelArts.0101", "offset and limit must not be negative.")
    page = found[offset : offset + limit] if limit else found[offset:]
    lc = sim(request).lifecycle
    return web.json_response({"total_count": len(found), "instances": [instance_json(i, lc) for i in page]})


@routes.post(PREFIX + "/{instance_id}/action", name="devenv:InstanceAction")
async def action(request: web.Request) -> web.Response:
    s = sim(request)
    instance = s.store.find("devenv", request.match_info["project_id"], request.match_info["instance_id"])
    if instance is None:
        raise CloudError(404, "ModelArts.0104", f"Instance {request.match_info['instance_id']} not found.")
    body = await json_body(request)
    operation = body.get("action")
    if operation not in ("start", "stop"):
        raise CloudError(400, "ModelArts.0101", "action must be start or stop.")
    previous = instance.status
    s.lifecycle.begin(instance, operation)
    return web.json_response({"current_status": instance.status, "previous_state": previous})
