"""ROMA Connect instance list (`GET /v2/{project_id}/instances`): observe only."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from notebook_devtools.cloudsim.clock import iso
from notebook_devtools.cloudsim.context import sim
from notebook_devtools.cloudsim.errors import CloudError
from notebook_devtools.cloudsim.store import SimInstance

routes = web.RouteTableDef()
STATUSES = {"CREATING", "RUNNING", "DELETING", "DELETED", "ERROR", "CREATE_FAILED", "DELETE_FAILED", "SOFT_DELETED"}


def instance_json(instance: SimInstance) -> dict[str, Any]:
    a = instance.attrs
    return {
        "id": instance.id,
        "name": instance.name,
        "description": a.get("description", ""),
        "flavor_id": a.get("flavor_id", "00400-30101-0--0"),
        "flavor_type": a.get("flavor_type", "basic"),
        "cpu_arch": a.get("cpu_arch", "x86_64"),
        "vpc_id": a.get("vpc_id", "vpc-emulator"),
        "subnet_id": a.get("subnet_id", "subnet-emulator"),
        "security_group_id": a.get("security_group_id", "sg-emulator"),
        "publicip_enable": bool(a.get("publicip_enable", False)),
        "publicip_id": a.get("publicip_id", ""),
        "publicip_address": a.get("publicip_address", ""),
        "status": instance.status,
        "error_code": a.get("error_code", ""),
        "error_msg": a.get("error_msg", ""),
        "charge_type": a.get("charge_type", "postPaid"),
        "project_id": instance.account,
        "create_time": iso(instance.created_at),
        "update_time": iso(instance.modified_at),
        "maintain_begin": a.get("maintain_begin", "22:00:00"),
        "maintain_end": a.get("maintain_end", "02:00:00"),
        "available_zone_ids": a.get("available_zone_ids", ["cn-north-4a"]),
        "enterprise_project_id": a.get("enterprise_project_id", "0"),
    }


@routes.get("/v2/{project_id}/instances", name="roma:CheckRomaInstanceListV2")
async def list_instances(request: web.Request) -> web.Response:
    q = request.query
    status = q.get("status")
    if status and status not in STATUSES:
        raise CloudError(400, "ROMA.00110002", f"status must be one of {', '.join(sorted(STATUSES))}.")
    offset, limit = int(q.get("offset", 0)), int(q.get("limit", 10))
    if offset < 0 or not 1 <= limit <= 500:
        raise CloudError(400, "ROMA.00110002", "offset must be >= 0 and limit 1..500.")
    found = sorted(
        (
            i
            for i in sim(request).store.of("roma", request.match_info["project_id"])
            if not status or i.status == status
        ),
        key=lambda i: (i.created_at, i.id),
    )
    page = found[offset : offset + limit]
    return web.json_response({"total": len(found), "size": len(page), "instances": [instance_json(i) for i in page]})
