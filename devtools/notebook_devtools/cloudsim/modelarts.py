"""ModelArts notebooks v1 routes (`/v1/{project_id}/notebooks`, SDK-HMAC-signed)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any

from aiohttp import web

from notebook_devtools.cloudsim.context import json_body, sim
from notebook_devtools.cloudsim.errors import CloudError
from notebook_devtools.cloudsim.lifecycle import IllegalState, Lifecycle
from notebook_devtools.cloudsim.query import Getter, Predicate, contains, equals, select
from notebook_devtools.cloudsim.store import SimInstance, new_id

routes = web.RouteTableDef()
PREFIX = "/v1/{project_id}/notebooks"
DEFAULT_LEASE_MS = 3_600_000
LEASE_RANGE_MS = (3_600_000, 259_200_000)

FLAVORS: list[dict[str, Any]] = [
    {"id": "modelarts.vm.cpu.free", "name": "CPU: 1 vCPUs 4GB", "category": "CPU", "vcpus": 1, "memory": 4096},
    {"id": "modelarts.vm.cpu.2u", "name": "CPU: 2 vCPUs 8GB", "category": "CPU", "vcpus": 2, "memory": 8192},
    {"id": "modelarts.vm.cpu.8u", "name": "CPU: 8 vCPUs 32GB", "category": "CPU", "vcpus": 8, "memory": 32768},
    {
        "id": "modelarts.vm.gpu.t4u8",
        "name": "GPU: 1*T4(16GB)|CPU: 8vCPUs 32GB",
        "category": "GPU",
        "vcpus": 8,
        "memory": 32768,
        "gpu": {"gpu": 1, "gpu_memory": "16GB", "type": "T4"},
    },
    {
        "id": "modelarts.vm.gpu.v100",
        "name": "GPU: 1*V100(32GB)|CPU: 8vCPUs 64GB",
        "category": "GPU",
        "vcpus": 8,
        "memory": 65536,
        "gpu": {"gpu": 1, "gpu_memory": "32GB", "type": "V100"},
    },
]
FLAVORS_BY_ID = {f["id"]: f for f in FLAVORS}


def project(request: web.Request) -> str:
    return request.match_info["project_id"]


def lookup(request: web.Request) -> SimInstance:
    instance_id = request.match_info["id"]
    instance = sim(request).store.find("modelarts", project(request), instance_id)
    if instance is None:
        raise CloudError(404, "ModelArts.6404", f"Notebook {instance_id} not found.")
    return instance


def notebook_json(instance: SimInstance, lifecycle: Lifecycle) -> dict[str, Any]:
    a = instance.attrs
    flavor = FLAVORS_BY_ID.get(a.get("flavor", ""), {})
    running = instance.status == "RUNNING"
    image_id = a.get("image_id", "")
    volume = a.get("volume") or {}
    out: dict[str, Any] = {
        "id": instance.id,
        "name": instance.name,
        "description": a.get("description", ""),
        "status": instance.status,
        "flavor": a.get("flavor", ""),
        "feature": a.get("feature", "NOTEBOOK"),
        "fail_reason": a.get("fail_reason", ""),
        "url": f"https://authoring.emulator.local/{instance.id}/lab" if running else "",
        "token": a.get("token", ""),
        "workspace_id": str(a.get("workspace_id", "0")),
        "user_id": a.get("user_id", "0123456789abcdef0123456789abcdef"),
        "billing_items": ["STORAGE", "COMPUTE"],
        "action_progress": a.get("action_progress", []),
        "endpoints": [],
        "image": {
            "id": image_id,
            "name": a.get("image_name", image_id),
            "swr_path": a.get("swr_path", ""),
            "type": "BUILD_IN",
        },
        "volume": {
            "capacity": int(volume.get("capacity", 50)),
            "category": volume.get("category", "EVS"),
            "mount_path": volume.get("mount_path", "/home/ma-user/work/"),
            "ownership": volume.get("ownership", "MANAGED"),
            "status": "USING",
        },
        "data_volumes": a.get("data_volumes", []),
        "user": {"id": a.get("user_id", "0123456789abcdef0123456789abcdef"), "name": "emulator"},
        "tags": [{"key": k, "value": v} for k, v in (a.get("tags") or {}).items()],
        "is_need_credentials": False,
    }
    if instance.lease is not None:
        out["lease"] = dict(instance.lease)
    if flavor:
        gpu = flavor.get("gpu", {})
        out["custom_spec"] = {
            "cpu": float(flavor["vcpus"]),
            "memory": float(flavor["memory"]),
            "gpu": float(gpu.get("gpu", 0)),
            "gpu_type": gpu.get("type", ""),
        }
    if a.get("pool_id"):
        out["pool"] = {"id": a["pool_id"], "name": a.get("pool_name", a["pool_id"])}
    return out


def _tag(key: str) -> Getter:
    return lambda instance: (instance.attrs.get("tags") or {}).get(key)


def _filters(q: dict[str, str]) -> list[Predicate]:
    """One predicate per ListNotebooks filter present in the query."""
    getters: dict[str, Getter] = {
        "flavor": lambda i: i.attrs.get("flavor"),
        "image_id": lambda i: i.attrs.get("image_id"),
        "pool_id": lambda i: i.attrs.get("pool_id"),
        "status": lambda i: i.status,
        "id": lambda i: i.id,
        "workspace_id": lambda i: i.attrs.get("workspace_id", "0"),
        "feature": lambda i: i.attrs.get("feature", "NOTEBOOK"),
    }
    checks = [equals(get, q[param]) for param, get in getters.items() if q.get(param)]
    if q.get("name"):
        checks.append(contains(lambda i: i.name, q["name"]))
    if q.get("description"):
        checks.append(contains(lambda i: i.attrs.get("description", ""), q["description"]))
    for tag in (t for t in q.get("tags", "").split(",") if t):
        key, _, value = tag.partition("|")
        checks.append(equals(_tag(key), value))
    return checks


SORT_KEYS: dict[str, Callable[[SimInstance], Any]] = {
    "create_at": attrgetter("created_at", "id"),
    "name": attrgetter("name", "id"),
    "status": attrgetter("status", "id"),
    "update_at": attrgetter("modified_at", "id"),
}


# `offset` is the record offset ("Start offset of the records on each page", seed
# modelarts-notebooks-ListNotebooks.txt); `limit` takes 10, 20 or 50 (Huawei's Terraform provider,
# huaweicloud/services/modelarts/data_source_huaweicloud_modelarts_notebooks.go, pages with limit 50 and
# offset += len(data)). `current` is the page the offset falls in.
LIMITS = (10, 20, 50)


def _paging(q: Mapping[str, str], default_limit: int) -> tuple[int, int]:
    limit, offset = int(q.get("limit", default_limit)), int(q.get("offset", 0))
    if limit not in LIMITS or offset < 0:
        raise CloudError(400, "ModelArts.0101", "limit must be 10, 20 or 50 and offset >= 0.")
    return limit, offset


@routes.get(PREFIX, name="modelarts:ListNotebooks")
async def list_notebooks(request: web.Request) -> web.Response:
    q = dict(request.query)
    limit, offset = _paging(q, default_limit=10)
    keys = [k for k in q.get("sort_key", "create_at").split(",") if k]
    if any(k not in SORT_KEYS for k in keys):
        raise CloudError(400, "ModelArts.0101", f"sort_key must be among {', '.join(SORT_KEYS)}.")
    found = select(sim(request).store.of("modelarts", project(request)), _filters(q))
    key = SORT_KEYS[keys[0]] if len(keys) == 1 else (lambda i: tuple(SORT_KEYS[k](i) for k in keys))
    found.sort(key=key, reverse=q.get("sort_dir", "DESC") == "DESC")
    page = found[offset : offset + limit]
    lc = sim(request).lifecycle
    return web.json_response(
        {
            "current": offset // limit,
            "data": [notebook_json(i, lc) for i in page],
            "pages": math.ceil(len(found) / limit),
            "size": limit,
            "total": len(found),
        }
    )


@routes.get(PREFIX + "/flavors", name="modelarts:ListFlavors")
async def list_flavors(request: web.Request) -> web.Response:
    q = request.query
    flavors = [f for f in FLAVORS if not q.get("category") or f["category"] == q["category"]]
    limit, offset = _paging(q, default_limit=50)
    page = flavors[offset : offset + limit]
    data = [
        {
            **f,
            "arch": "x86_64",
            "feature": "NOTEBOOK",
            "free": f["id"].endswith(".free"),
            "sold_out": False,
            "storages": ["EVS", "EFS"],
            "description": f["name"],
        }
        for f in page
    ]
    return web.json_response(
        {
            "current": offset // limit,
            "data": data,
            "flavors": data,
            "pages": math.ceil(len(flavors) / limit),
            "size": limit,
            "total": len(flavors),
        }
    )


def _lease(duration: Any, lease_type: Any) -> dict[str, Any]:
    ms = int(duration) if duration is not None else DEFAULT_LEASE_MS
    if not LEASE_RANGE_MS[0] <= ms <= LEASE_RANGE_MS[1]:
        raise CloudError(400, "ModelArts.6007", f"duration must be {LEASE_RANGE_MS[0]}..{LEASE_RANGE_MS[1]} ms.")
    kind = (lease_type or "TIMING").upper()
    if kind not in ("TIMING", "IDLE"):
        raise CloudError(400, "ModelArts.0101", "type must be TIMING or IDLE.")
    return {"duration": ms, "type": kind, "enable": True, "create_at": None, "update_at": None}


@routes.post(PREFIX, name="modelarts:CreateNotebook")
async def create_notebook(request: web.Request) -> web.Response:
    body = await json_body(request)
    for required in ("name", "image_id", "volume"):
        if not body.get(required):
            raise CloudError(400, "ModelArts.0101", f"{required} is required.")
    flavor = body.get("flavor")
    if flavor and flavor not in FLAVORS_BY_ID:
        raise CloudError(400, "ModelArts.6301", f"Flavor {flavor} is not supported.")
    s = sim(request)
    now = s.clock.now()
    lease_req = body.get("lease") or {}
    attrs = {k: v for k, v in body.items() if k not in ("name", "lease", "duration")}
    attrs["token"] = str(uuid.uuid4())
    instance = SimInstance("modelarts", project(request), new_id("modelarts"), body["name"], "INIT", now, now, attrs)
    instance.gpu = int(FLAVORS_BY_ID.get(flavor or "", {}).get("gpu", {}).get("gpu", 0))
    instance.lease = _lease(lease_req.get("duration", body.get("duration")), lease_req.get("type"))
    instance.lease.update(create_at=int(now * 1000), update_at=int(now * 1000))
    s.store.put(instance)
    s.lifecycle.begin(instance, "create")
    return web.json_response(notebook_json(instance, s.lifecycle), status=201)


@routes.get(PREFIX + "/{id}", name="modelarts:ShowNotebook")
async def show_notebook(request: web.Request) -> web.Response:
    return web.json_response(notebook_json(lookup(request), sim(request).lifecycle))


@routes.put(PREFIX + "/{id}", name="modelarts:UpdateNotebook")
async def update_notebook(request: web.Request) -> web.Response:
    instance = lookup(request)
    body = await json_body(request)
    s = sim(request)
    if ("flavor" in body or "image_id" in body) and instance.status != "STOPPED":
        raise IllegalState(instance, "update flavor/image")
    if body.get("flavor") and body["flavor"] not in FLAVORS_BY_ID:
        raise CloudError(400, "ModelArts.6301", f"Flavor {body['flavor']} is not supported.")
    for key, value in body.items():
        if key == "name":
            instance.name = value
        elif key == "storage_new_size":
            instance.attrs.setdefault("volume", {})["capacity"] = int(value)
        else:
            instance.attrs[key] = value
    if body.get("flavor"):
        instance.gpu = int(FLAVORS_BY_ID[body["flavor"]].get("gpu", {}).get("gpu", 0))
    instance.modified_at = s.clock.now()
    s.store.save(instance)
    return web.json_response(notebook_json(instance, s.lifecycle))


@routes.delete(PREFIX + "/{id}", name="modelarts:DeleteNotebook")
async def delete_notebook(request: web.Request) -> web.Response:
    instance = lookup(request)
    s = sim(request)
    s.lifecycle.begin(instance, "delete")
    return web.json_response(notebook_json(instance, s.lifecycle))


@routes.post(PREFIX + "/{id}/start", name="modelarts:StartNotebook")
async def start_notebook(request: web.Request) -> web.Response:
    instance = lookup(request)
    s = sim(request)
    s.lifecycle.check(instance, "start")
    instance.lease = _lease(request.query.get("duration"), request.query.get("type"))
    s.lifecycle.begin(instance, "start")
    return web.json_response(notebook_json(instance, s.lifecycle))


@routes.post(PREFIX + "/{id}/stop", name="modelarts:StopNotebook")
async def stop_notebook(request: web.Request) -> web.Response:
    instance = lookup(request)
    s = sim(request)
    s.lifecycle.begin(instance, "stop")
    return web.json_response(notebook_json(instance, s.lifecycle))


def _tms_tags(body: dict[str, Any], need_value: bool) -> list[dict[str, Any]]:
    tags = body.get("tags")
    if not isinstance(tags, list) or not tags or not all(isinstance(t, dict) and t.get("key") for t in tags):
        raise CloudError(400, "ModelArts.0101", "tags must be a non-empty list of {key, value}.")
    if need_value and not all(isinstance(t.get("value", ""), str) for t in tags):
        raise CloudError(400, "ModelArts.0101", "a tag's value must be a string.")
    return tags


@routes.post(PREFIX + "/{id}/tags/create", name="modelarts:CreateNotebookTags")
async def create_notebook_tags(request: web.Request) -> web.Response:
    """CreateTmsTagsRequest: tags [{key, value}]; a key the notebook has gets the new value (TMS)."""
    instance = lookup(request)
    tags = _tms_tags(await json_body(request), need_value=True)
    current = dict(instance.attrs.get("tags") or {})
    current.update({str(t["key"]): str(t.get("value", "")) for t in tags})
    if len(current) > 20:
        raise CloudError(400, "ModelArts.0101", "A notebook has at most 20 tags.")
    instance.attrs["tags"] = current
    sim(request).store.save(instance)
    return web.Response(status=204)


@routes.delete(PREFIX + "/{id}/tags/delete", name="modelarts:DeleteNotebookTags")
async def delete_notebook_tags(request: web.Request) -> web.Response:
    """DeleteTmsTagsRequest: tags [{key, value}] with a body on the DELETE; the keys named are removed."""
    instance = lookup(request)
    keys = {str(t["key"]) for t in _tms_tags(await json_body(request), need_value=False)}
    instance.attrs["tags"] = {k: v for k, v in (instance.attrs.get("tags") or {}).items() if k not in keys}
    sim(request).store.save(instance)
    return web.Response(status=204)


IMAGES = "/v1/{project_id}/images"


def image_json(entry: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """ImageResponse: CREATING until its time comes, then ACTIVE."""
    out = {k: v for k, v in entry.items() if not k.startswith("_")}
    if now_ms < int(entry.get("_ready_at_ms") or 0):
        out["status"] = "CREATING"
    return out


def _images(request: web.Request) -> list[tuple[SimInstance, dict[str, Any]]]:
    """The project's saved images (kept with the notebook that saved them)."""
    return [(i, e) for i in sim(request).store.of("modelarts", project(request)) for e in i.snapshots]


def _image(request: web.Request) -> tuple[SimInstance, dict[str, Any]]:
    image_id = request.match_info["image_id"]
    for instance, entry in _images(request):
        if entry.get("id") == image_id:
            return instance, entry
    raise CloudError(404, "ModelArts.6404", f"Image {image_id} not found.")


@routes.post(PREFIX + "/{id}/create-image", name="modelarts:CreateImage")
async def create_image(request: web.Request) -> web.Response:
    """ImageCreateReq (name, tag, namespace, description, workspace_id) -> ImageResponse; the notebook must be
    RUNNING. The image is CREATING for two transition delays, then ACTIVE."""
    instance = lookup(request)
    body = await json_body(request)
    if not body.get("name") or not body.get("tag"):
        raise CloudError(400, "ModelArts.0101", "name and tag are required.")
    if instance.status != "RUNNING":
        raise IllegalState(instance, "create-image")
    if any(e.get("name") == body["name"] and e.get("tag") == body["tag"] for _, e in _images(request)):
        raise CloudError(400, "ModelArts.6309", f"Image {body['name']}:{body['tag']} already exists.")
    s = sim(request)
    now_ms = s.clock.now_ms()
    namespace = str(body.get("namespace") or "default-org")
    entry: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": body["name"],
        "tag": body["tag"],
        "namespace": namespace,
        "description": body.get("description", ""),
        "swr_path": f"swr.cn-north-4.myhuaweicloud.com/{namespace}/{body['name']}:{body['tag']}",
        "origin": "IMAGE_SAVE",
        "type": "DEDICATED",
        "status": "ACTIVE",
        "status_message": "",
        "create_at": now_ms,
        "update_at": now_ms,
        "workspace_id": body.get("workspace_id", "0"),
        "_ready_at_ms": now_ms + int(2000 * max(s.lifecycle.delay, 0.0)),
    }
    instance.snapshots.append(entry)
    s.store.save(instance)
    return web.json_response(image_json(entry, now_ms))


@routes.get(IMAGES + "/{image_id}", name="modelarts:ShowImage")
async def show_image(request: web.Request) -> web.Response:
    _, entry = _image(request)
    return web.json_response(image_json(entry, sim(request).clock.now_ms()))


@routes.get(IMAGES, name="modelarts:ListImage")
async def list_image(request: web.Request) -> web.Response:
    q = request.query
    limit, offset = _paging(q, 10)
    found = [e for _, e in _images(request) if not q.get("name") or e.get("name") == q["name"]]
    now_ms = sim(request).clock.now_ms()
    page = found[offset : offset + limit]
    return web.json_response({"data": [image_json(e, now_ms) for e in page], "total": len(found),
                              "current": offset // max(limit, 1), "pages": math.ceil(len(found) / max(limit, 1)),
                              "size": len(page)})  # fmt: skip


@routes.delete(IMAGES + "/{image_id}", name="modelarts:DeleteImage")
async def delete_image(request: web.Request) -> web.Response:
    instance, entry = _image(request)
    instance.snapshots = [e for e in instance.snapshots if e is not entry]
    sim(request).store.save(instance)
    return web.Response(status=204)


@routes.get(PREFIX + "/{id}/lease", name="modelarts:ShowLease")
async def show_lease(request: web.Request) -> web.Response:
    instance = lookup(request)
    return web.json_response(instance.lease or {"enable": False})


@routes.patch(PREFIX + "/{id}/lease", name="modelarts:RenewLease")
async def renew_lease(request: web.Request) -> web.Response:
    """Renews for `duration` more from now; the stored duration still counts from create_at."""
    instance = lookup(request)
    body = await json_body(request)
    s = sim(request)
    if instance.status != "RUNNING":
        raise IllegalState(instance, "renew lease")
    wanted = _lease(
        request.query.get("duration", body.get("duration")),
        "TIMING" if "duration" in request.query else body.get("type"),
    )
    now_ms = s.clock.now_ms()
    lease = instance.lease or {"create_at": now_ms}
    create_at = int(lease.get("create_at") or now_ms)
    instance.lease = {**wanted, "create_at": create_at, "update_at": now_ms}
    if wanted["type"] == "TIMING":
        instance.lease["duration"] = now_ms - create_at + wanted["duration"]
    s.store.save(instance)
    return web.json_response(instance.lease)
