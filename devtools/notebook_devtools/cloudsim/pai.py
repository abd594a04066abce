"""PAI-DSW 2022-01-01 routes (ROA style, ACS3-signed: auth happens in the server's middleware)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from notebook_devtools.cloudsim import errors
from notebook_devtools.cloudsim.clock import iso, parse_time
from notebook_devtools.cloudsim.context import json_body, sim
from notebook_devtools.cloudsim.errors import CloudError
from notebook_devtools.cloudsim.lifecycle import IllegalState
from notebook_devtools.cloudsim.pai_views import (
    ECS_SPECS,
    SORT_KEYS,
    SPECS_BY_TYPE,
    culler_json,
    filters,
    instance_json,
    snapshot_json,
    timer_json,
)
from notebook_devtools.cloudsim.query import select
from notebook_devtools.cloudsim.store import SimInstance, new_id

routes = web.RouteTableDef()
PREFIX = "/api/v2"
METRIC_TYPES = {
    "GpuCoreUsage": "gpu",
    "GpuMemoryUsage": "gpu",
    "CpuCoreUsage": "cpu",
    "MemoryUsage": "memory",
    "NetworkInputRate": "cpu",
    "NetworkOutputRate": "cpu",
    "DiskReadRate": "cpu",
    "DiskWriteRate": "cpu",
}


def ok(**fields: Any) -> web.Response:
    rid = errors.request_id()
    body = {"RequestId": rid, "Success": True, "Code": "200", "Message": "", "HttpStatusCode": 200, **fields}
    return web.json_response(body, headers={"x-acs-request-id": rid})


def request_id_only() -> web.Response:
    """The answer of an action whose SDK response body holds a RequestId alone (Update/DeleteInstanceLabels)."""
    rid = errors.request_id()
    return web.json_response({"RequestId": rid}, headers={"x-acs-request-id": rid})


def account(request: web.Request) -> str:
    return str(request["access_key_id"])


def lookup(request: web.Request) -> SimInstance:
    instance_id = request.match_info["InstanceId"]
    instance = sim(request).store.find("pai-dsw", account(request), instance_id)
    if instance is None:
        raise CloudError(404, "InstanceNotFound", f"The instance {instance_id} does not exist.")
    return instance


@routes.get(f"{PREFIX}/instances", name="pai-dsw:ListInstances")
async def list_instances(request: web.Request) -> web.Response:
    q = dict(request.query)
    page_number = int(q.get("PageNumber", 1))
    page_size = int(q.get("PageSize", 10))
    if page_number < 1 or not 1 <= page_size <= 100:
        raise CloudError(400, "ValidationError", "PageNumber must be >= 1 and PageSize between 1 and 100.")
    sort_key = SORT_KEYS.get(q.get("SortBy", "GmtCreateTime"))
    if sort_key is None:
        raise CloudError(400, "ValidationError", "SortBy must be Priority, GmtCreateTime or GmtModifiedTime.")
    found = select(sim(request).store.of("pai-dsw", account(request)), filters(q))
    found.sort(key=sort_key, reverse=q.get("Order", "DESC").upper() == "DESC")
    page = found[(page_number - 1) * page_size : page_number * page_size]
    lc = sim(request).lifecycle
    return ok(Instances=[instance_json(i, lc) for i in page], TotalCount=len(found))


@routes.get(PREFIX + "/instances/{InstanceId}", name="pai-dsw:GetInstance")
async def get_instance(request: web.Request) -> web.Response:
    return ok(**instance_json(lookup(request), sim(request).lifecycle))


@routes.post(f"{PREFIX}/instances", name="pai-dsw:CreateInstance")
async def create_instance(request: web.Request) -> web.Response:
    body = await json_body(request)
    name = body.get("InstanceName")
    if not name:
        raise CloudError(400, "ValidationError", "InstanceName is required.")
    if not (body.get("ImageUrl") or body.get("ImageId")):
        raise CloudError(400, "ValidationError", "ImageUrl or ImageId is required.")
    if not (body.get("EcsSpec") or body.get("RequestedResource")):
        raise CloudError(400, "ValidationError", "EcsSpec or RequestedResource is required.")
    if body.get("EcsSpec") and body["EcsSpec"] not in SPECS_BY_TYPE:
        raise CloudError(400, "ValidationError", f"EcsSpec {body['EcsSpec']} is not available.")
    s = sim(request)
    now = s.clock.now()
    attrs = {k: v for k, v in body.items() if k != "InstanceName"}
    instance = SimInstance("pai-dsw", account(request), new_id("pai-dsw"), name, "Creating", now, now, attrs)
    instance.gpu = int(SPECS_BY_TYPE.get(body.get("EcsSpec", ""), {}).get("GPU", 0)) or int(
        (body.get("RequestedResource") or {}).get("GPU") or 0
    )
    s.store.put(instance)
    s.lifecycle.begin(instance, "create")
    return ok(InstanceId=instance.id)


SPEC_FIELDS = {"EcsSpec", "ImageUrl", "ImageId", "RequestedResource", "Driver", "CloudDisks"}


@routes.put(PREFIX + "/instances/{InstanceId}", name="pai-dsw:UpdateInstance")
async def update_instance(request: web.Request) -> web.Response:
    instance = lookup(request)
    body = await json_body(request)
    s = sim(request)
    start_after = bool(body.pop("StartInstance", False))
    if body.get("EcsSpec") and body["EcsSpec"] not in SPECS_BY_TYPE:
        raise CloudError(400, "ValidationError", f"EcsSpec {body['EcsSpec']} is not available.")
    changes_spec = bool(SPEC_FIELDS & body.keys())
    if changes_spec:
        s.lifecycle.check(instance, "update")
    for key, value in body.items():
        if key.startswith("Disassociate"):
            continue
        if key == "InstanceName":
            instance.name = value
        else:
            instance.attrs[key] = value
    if "EcsSpec" in body:
        instance.gpu = int(SPECS_BY_TYPE[body["EcsSpec"]]["GPU"])
    if changes_spec:
        s.lifecycle.begin(instance, "update")
    else:
        instance.modified_at = s.clock.now()
        s.store.save(instance)
    if start_after and instance.status == "Stopped":
        s.lifecycle.begin(instance, "start")
    return ok(InstanceId=instance.id)


@routes.delete(PREFIX + "/instances/{InstanceId}", name="pai-dsw:DeleteInstance")
async def delete_instance(request: web.Request) -> web.Response:
    instance = lookup(request)
    sim(request).lifecycle.begin(instance, "delete")
    return ok(InstanceId=instance.id)


@routes.put(PREFIX + "/instances/{InstanceId}/start", name="pai-dsw:StartInstance")
async def start_instance(request: web.Request) -> web.Response:
    instance = lookup(request)
    sim(request).lifecycle.begin(instance, "start")
    return ok(InstanceId=instance.id)


def _stop(request: web.Request, instance: SimInstance, save_image: bool) -> None:
    s = sim(request)
    s.lifecycle.check(instance, "stop")
    if save_image:
        image = f"dsw-registry.emulator.local/snapshots/{instance.id}:{len(instance.snapshots) + 1}"
        now = s.clock.now()
        instance.snapshots.append(
            {
                "SnapshotId": f"snp-{new_id('pai-dsw')[4:]}",
                "SnapshotName": f"save-on-stop-{len(instance.snapshots) + 1}",
                "InstanceId": instance.id,
                "ImageId": f"image-{instance.id}-{len(instance.snapshots) + 1}",
                "ImageUrl": image,
                "ImageName": image.rsplit("/", 1)[-1],
                "GmtCreateTime": iso(now),
                "GmtModifiedTime": iso(now),
                "Status": "Saved",
                "ReasonCode": "",
                "ReasonMessage": "",
            }
        )
    s.lifecycle.begin(instance, "stop-save" if save_image else "stop")


@routes.put(PREFIX + "/instances/{InstanceId}/stop", name="pai-dsw:StopInstance")
async def stop_instance(request: web.Request) -> web.Response:
    instance = lookup(request)
    if instance.id in sim(request).denied_instances:
        refusal = "User not authorized to operate on the specified resource, or this API doesn't support RAM."
        raise CloudError(403, "Forbidden.RAM", refusal)
    _stop(request, instance, request.query.get("SaveImage", "false").lower() == "true")
    return ok(InstanceId=instance.id)


@routes.put(f"{PREFIX}/batch/instances/stop", name="pai-dsw:StopInstances")
async def stop_instances(request: web.Request) -> web.Response:
    """As the official SDK shapes it (StopInstancesRequest: InstanceIds; no SaveImage. StopInstancesResponseBody:
    InstanceIds, AccessDeniedDetail, Code, Success, HttpStatusCode, Message, RequestId). InstanceIds are the
    instances the call affected; AccessDeniedDetail (a string map in the SDK) names each refused instance with its
    reason - a guess at its keys, docs/cloud-api-conformance.md. Instances not found or not running are neither."""
    body = await json_body(request)
    ids = body.get("InstanceIds", [])
    if isinstance(ids, str):
        ids = [i for i in ids.split(",") if i]
    if not isinstance(ids, list) or not ids:
        raise CloudError(400, "ValidationError", "InstanceIds is mandatory for this action.")
    s = sim(request)
    affected, denied = [], {}
    for instance_id in ids:
        if instance_id in s.denied_instances:
            denied[instance_id] = "You are not authorized to stop this instance."
            continue
        instance = s.store.find("pai-dsw", account(request), instance_id)
        if instance is None:
            continue
        try:
            _stop(request, instance, False)
        except (CloudError, IllegalState):
            continue
        affected.append(instance_id)
    for instance_id in ids:  # the journal has a line per member too: who was stopped, and how many times
        outcome = "stopped" if instance_id in affected else "denied" if instance_id in denied else "unchanged"
        s.record("pai-dsw:StopInstances", request, 200, outcome, instance=instance_id)
    return ok(InstanceIds=affected, **({"AccessDeniedDetail": denied} if denied else {}))


@routes.put(PREFIX + "/instances/{InstanceId}/labels", name="pai-dsw:UpdateInstanceLabels")
async def update_instance_labels(request: web.Request) -> web.Response:
    """UpdateInstanceLabelsRequest: Labels [{Key, Value}] - added, or their values changed; the others stay."""
    instance = lookup(request)
    body = await json_body(request)
    labels = body.get("Labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, dict) and x.get("Key") for x in labels):
        raise CloudError(400, "ValidationError", "Labels must be a non-empty list of {Key, Value}.")
    current = {str(x.get("Key")): x.get("Value", "") for x in instance.attrs.get("Labels", [])}
    current.update({str(x["Key"]): str(x.get("Value") or "") for x in labels})
    instance.attrs["Labels"] = [{"Key": k, "Value": v} for k, v in current.items()]
    s = sim(request)
    instance.modified_at = s.clock.now()
    s.store.save(instance)
    return request_id_only()


@routes.delete(PREFIX + "/instances/{InstanceId}/labels", name="pai-dsw:DeleteInstanceLabels")
async def delete_instance_labels(request: web.Request) -> web.Response:
    """DeleteInstanceLabelsRequest: LabelKeys, one comma-separated string of the keys to remove."""
    instance = lookup(request)
    keys = {k for k in request.query.get("LabelKeys", "").split(",") if k}
    if not keys:
        raise CloudError(400, "ValidationError", "LabelKeys is mandatory for this action.")
    instance.attrs["Labels"] = [x for x in instance.attrs.get("Labels", []) if x.get("Key") not in keys]
    s = sim(request)
    instance.modified_at = s.clock.now()
    s.store.save(instance)
    return request_id_only()


def _snapshot(request: web.Request, instance: SimInstance) -> dict[str, Any]:
    snapshot_id = request.match_info["SnapshotId"]
    for entry in instance.snapshots:
        if entry.get("SnapshotId") == snapshot_id:
            return entry
    raise CloudError(404, "SnapshotNotFound", f"The snapshot {snapshot_id} does not exist.")


@routes.post(PREFIX + "/instances/{InstanceId}/snapshots", name="pai-dsw:CreateInstanceSnapshot")
async def create_instance_snapshot(request: web.Request) -> web.Response:
    """CreateInstanceSnapshotRequest (ImageUrl, SnapshotName, SnapshotDescription, ExcludePaths, Labels, Overwrite);
    the answer's SnapshotId. A running instance only; Pushing, then Saved, on the emulator's clock."""
    instance = lookup(request)
    body = await json_body(request)
    if not body.get("ImageUrl"):
        raise CloudError(400, "ValidationError", "ImageUrl is mandatory for this action.")
    if instance.status != "Running":
        raise CloudError(400, "InstanceStatusNotSupported", f"The instance is {instance.status}, not Running.")
    s = sim(request)
    now = s.clock.now()
    name = str(body.get("SnapshotName") or f"snapshot-{len(instance.snapshots) + 1}")
    taken = [e for e in instance.snapshots if e.get("SnapshotName") == name]
    if taken and not body.get("Overwrite"):
        raise CloudError(400, "SnapshotNameExists", f"A snapshot named {name} exists.")
    instance.snapshots = [e for e in instance.snapshots if e not in taken]
    entry = {
        "SnapshotId": f"snp-{new_id('pai-dsw')[4:]}",
        "SnapshotName": name,
        "InstanceId": instance.id,
        "ImageId": f"image-{new_id('pai-dsw')[4:]}",
        "ImageUrl": body["ImageUrl"],
        "ExcludePaths": list(body.get("ExcludePaths") or []),
        "Labels": list(body.get("Labels") or []),
        "GmtCreateTime": iso(now),
        "GmtModifiedTime": iso(now),
        "Status": "Saved",
        "ReasonCode": "",
        "ReasonMessage": "",
        "_ready_at": now + 2 * max(s.lifecycle.delay, 0.0),
    }
    instance.snapshots.append(entry)
    s.store.save(instance)
    return ok(InstanceId=instance.id, SnapshotId=entry["SnapshotId"])


@routes.get(PREFIX + "/instances/{InstanceId}/snapshots/{SnapshotId}", name="pai-dsw:GetInstanceSnapshot")
async def get_instance_snapshot(request: web.Request) -> web.Response:
    instance = lookup(request)
    return ok(**snapshot_json(_snapshot(request, instance), sim(request).clock.now()))


@routes.get(PREFIX + "/instances/{InstanceId}/snapshots", name="pai-dsw:ListInstanceSnapshot")
async def list_instance_snapshot(request: web.Request) -> web.Response:
    instance = lookup(request)
    q = request.query
    page_number, page_size = int(q.get("PageNumber", 1)), int(q.get("PageSize", 10))
    found = sorted(instance.snapshots, key=lambda e: str(e.get("GmtCreateTime")))
    if q.get("Order", "DESC").upper() == "DESC":
        found.reverse()
    now = sim(request).clock.now()
    page = found[(page_number - 1) * page_size : page_number * page_size]
    return ok(Snapshots=[snapshot_json(e, now) for e in page], TotalCount=len(found))


@routes.delete(PREFIX + "/instances/{InstanceId}/snapshots/{SnapshotId}", name="pai-dsw:DeleteInstanceSnapshot")
async def delete_instance_snapshot(request: web.Request) -> web.Response:
    instance = lookup(request)
    entry = _snapshot(request, instance)
    instance.snapshots = [e for e in instance.snapshots if e is not entry]
    sim(request).store.save(instance)
    return ok(InstanceId=instance.id, SnapshotId=entry["SnapshotId"])


@routes.get(PREFIX + "/instance/{InstanceId}/metrics", name="pai-dsw:GetInstanceMetrics")
async def get_instance_metrics(request: web.Request) -> web.Response:
    instance = lookup(request)
    q = request.query
    metric = q.get("MetricType", "")
    if metric not in METRIC_TYPES:
        raise CloudError(400, "ValidationError", f"MetricType must be one of {', '.join(METRIC_TYPES)}.")
    now = sim(request).clock.now()
    end = parse_time(q["EndTime"]) if q.get("EndTime") else now
    start = parse_time(q["StartTime"]) if q.get("StartTime") else end - 3600
    step = max(1.0, float(q.get("TimeStep", "1"))) * 60
    if end - start > 31 * 86400 or end < start:
        raise CloudError(400, "ValidationError", "StartTime must precede EndTime, within 31 days.")
    points = []
    t = start - (start % step)  # align to the step like a monitoring backend
    while t <= min(end, now):
        if t >= start and instance.was_running(t):
            value = instance.level(t)[METRIC_TYPES[metric]]
            points.append({"Time": int(t * 1000), "Value": round(value, 2)})
        t += step
    return ok(InstanceId=instance.id, PodMetrics=[{"PodId": f"{instance.id}-0", "Metrics": points}])


@routes.get(PREFIX + "/instances/{InstanceId}/events", name="pai-dsw:GetInstanceEvents")
async def get_instance_events(request: web.Request) -> web.Response:
    instance = lookup(request)
    limit = int(request.query.get("MaxEventsNum", 2000))
    start = parse_time(request.query["StartTime"]) if request.query.get("StartTime") else None
    # Each event begins with its time (ISO 8601 UTC): those from StartTime on, the newest `limit`.
    events = [e for e in instance.events if start is None or parse_time(e.split(" ", 1)[0]) >= start]
    return ok(InstanceId=instance.id, Events=events[-limit:])


@routes.get(PREFIX + "/instances/{InstanceId}/lifecycle", name="pai-dsw:GetLifecycle")
async def get_lifecycle(request: web.Request) -> web.Response:
    instance = lookup(request)
    # Sessions ("from startup to failure or shutdown", SDK GetLifecycleRequest), each a list of its records;
    # Limit counts sessions. Order applies to both.
    sessions: dict[int, list[dict[str, Any]]] = {}
    for record in instance.lifecycle:
        wire = {k: v for k, v in record.items() if k != "session"}
        sessions.setdefault(int(record.get("session", 0)), []).append(wire)
    grouped = [sessions[k] for k in sorted(sessions)]
    if request.query.get("Order", "DESC").upper() == "DESC":
        grouped = [list(reversed(records)) for records in reversed(grouped)]
    grouped = grouped[: int(request.query.get("Limit", 100))]
    return ok(Lifecycle=grouped, TotalCount=len(sessions))


@routes.post(PREFIX + "/instances/{InstanceId}/idleinstanceculler", name="pai-dsw:CreateIdleInstanceCuller")
async def create_culler(request: web.Request) -> web.Response:
    instance = lookup(request)
    body = await json_body(request)
    if instance.culler:
        raise CloudError(400, "IdleInstanceCullerAlreadyExists", "The instance already has an idle instance culler.")
    culler: dict[str, Any] = {}
    for key in ("CpuPercentThreshold", "GpuPercentThreshold"):
        if key in body:
            value = int(body[key])
            if not 1 <= value <= 100:
                raise CloudError(400, "ValidationError", f"{key} must be between 1 and 100.")
            culler[key] = value
    culler["MaxIdleTimeInMinutes"] = int(body.get("MaxIdleTimeInMinutes", 60))
    if culler["MaxIdleTimeInMinutes"] < 1:
        raise CloudError(400, "ValidationError", "MaxIdleTimeInMinutes must be positive.")
    instance.culler = culler
    sim(request).store.save(instance)
    rid = errors.request_id()
    return web.json_response(
        {"RequestId": rid, "Success": True, "Code": "200", "Message": "", "InstanceId": instance.id}
    )


@routes.get(PREFIX + "/instances/{InstanceId}/idleinstanceculler", name="pai-dsw:GetIdleInstanceCuller")
async def get_culler(request: web.Request) -> web.Response:
    instance = lookup(request)
    if not instance.culler:
        raise CloudError(404, "IdleInstanceCullerNotFound", "The instance has no idle instance culler.")
    rid = errors.request_id()
    body = {
        "RequestId": rid,
        "Success": True,
        "Code": "200",
        "Message": "",
        **culler_json(instance, sim(request).lifecycle),
    }
    return web.json_response(body)


@routes.delete(PREFIX + "/instances/{InstanceId}/idleinstanceculler", name="pai-dsw:DeleteIdleInstanceCuller")
async def delete_culler(request: web.Request) -> web.Response:
    instance = lookup(request)
    if not instance.culler:
        raise CloudError(404, "IdleInstanceCullerNotFound", "The instance has no idle instance culler.")
    instance.culler = None
    instance.idle_since = None
    sim(request).store.save(instance)
    return web.json_response(
        {"RequestId": errors.request_id(), "Success": True, "Code": "200", "Message": "", "InstanceId": instance.id}
    )


@routes.post(PREFIX + "/instances/{InstanceId}/shutdowntimer", name="pai-dsw:CreateInstanceShutdownTimer")
async def create_timer(request: web.Request) -> web.Response:
    instance = lookup(request)
    body = await json_body(request)
    s = sim(request)
    now = s.clock.now()
    if body.get("DueTime"):
        due = parse_time(str(body["DueTime"]))
    elif body.get("RemainingTimeInMs") is not None:
        due = now + int(body["RemainingTimeInMs"]) / 1000
    else:
        raise CloudError(400, "ValidationError", "DueTime or RemainingTimeInMs is required.")
    if due <= now:
        raise CloudError(400, "ValidationError", "The shutdown time must be in the future.")
    instance.timer = {"due": due, "created": now}
    s.store.save(instance)
    return ok(InstanceId=instance.id)


@routes.get(PREFIX + "/instances/{InstanceId}/shutdowntimer", name="pai-dsw:GetInstanceShutdownTimer")
async def get_timer(request: web.Request) -> web.Response:
    instance = lookup(request)
    if not instance.timer:
        raise CloudError(404, "InstanceShutdownTimerNotFound", "The instance has no shutdown timer.")
    return ok(**timer_json(instance, sim(request).lifecycle))


@routes.delete(PREFIX + "/instances/{InstanceId}/shutdowntimer", name="pai-dsw:DeleteInstanceShutdownTimer")
async def delete_timer(request: web.Request) -> web.Response:
    instance = lookup(request)
    if not instance.timer:
        raise CloudError(404, "InstanceShutdownTimerNotFound", "The instance has no shutdown timer.")
    instance.timer = None
    sim(request).store.save(instance)
    return ok(InstanceId=instance.id)


@routes.get(f"{PREFIX}/ecsspecs", name="pai-dsw:ListEcsSpecs")
async def list_ecs_specs(request: web.Request) -> web.Response:
    q = request.query
    accelerator = q.get("AcceleratorType")
    if accelerator not in ("CPU", "GPU"):
        raise CloudError(400, "ValidationError", "AcceleratorType must be CPU or GPU.")
    specs = [dict(spec) for spec in ECS_SPECS if spec["AcceleratorType"] == accelerator]
    for spec in specs:
        spec.setdefault("GPUMemorySize", 0.0)
        spec.update(
            IsAvailable=True,
            InstanceBandwidthRx=1024000,
            SystemDiskCapacity=100,
            SpotStockStatus="WithStock",
            Labels=[],
        )
    page_number, page_size = int(q.get("PageNumber", 1)), int(q.get("PageSize", 10))
    page = specs[(page_number - 1) * page_size : page_number * page_size]
    return ok(EcsSpecs=page, TotalCount=len(specs))
