"""The emulator's admin API under /_emulator/: seed and inspect state, script utilization, inject faults."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from notebook_devtools.cloudsim.clock import iso
from notebook_devtools.cloudsim.context import Sim, json_body, sim
from notebook_devtools.cloudsim.errors import CloudError
from notebook_devtools.cloudsim.faults import Faults
from notebook_devtools.cloudsim.lifecycle import RUNNING
from notebook_devtools.cloudsim.store import CLOUDS, SimInstance, new_id

routes = web.RouteTableDef()
P = "/_emulator"


def summary(s: Sim, instance: SimInstance) -> dict[str, Any]:
    now = s.clock.now()
    return {
        "id": instance.id,
        "cloud": instance.cloud,
        "account": instance.account,
        "name": instance.name,
        "status": instance.status,
        "gpu": instance.gpu,
        "createdAt": iso(instance.created_at),
        "runningMs": s.lifecycle.running_ms(instance),
        "utilization": instance.level(now),
        "culler": instance.culler,
        "shutdownTimer": {"dueTime": iso(instance.timer["due"])} if instance.timer else None,
        "lease": instance.lease,
        "events": instance.events[-20:],
        "attrs": instance.attrs,
    }


def _found(request: web.Request) -> SimInstance:
    instance = sim(request).store.instances.get(request.match_info["id"])
    if instance is None:
        raise CloudError(404, "NotFound", f"no instance {request.match_info['id']}")
    return instance


@routes.get(f"{P}/health")
async def health(request: web.Request) -> web.Response:
    s = sim(request)
    return web.json_response(
        {"ok": True, "now": iso(s.clock.now()), "timeScale": s.clock.scale, "transitionDelay": s.lifecycle.delay}
    )


@routes.get(f"{P}/instances")
async def list_all(request: web.Request) -> web.Response:
    s = sim(request)
    cloud = request.query.get("cloud")
    items = [summary(s, i) for i in s.store.instances.values() if not cloud or i.cloud == cloud]
    return web.json_response({"instances": items, "total": len(items)})


def _seed(s: Sim, spec: dict[str, Any]) -> SimInstance:
    cloud = spec.get("cloud")
    if cloud not in CLOUDS:
        raise ValueError(f"cloud must be one of {', '.join(CLOUDS)}")
    if not spec.get("account") or not spec.get("name"):
        raise ValueError("account and name are required")
    now = s.clock.now()
    status = spec.get("status", RUNNING[cloud])
    instance = SimInstance(
        cloud,
        spec["account"],
        spec.get("id") or new_id(cloud),
        spec["name"],
        "",
        now,
        now,
        dict(spec.get("attrs") or {}),
        gpu=int(spec.get("gpu", 0)),
    )
    if cloud == "modelarts":
        lease = spec.get("lease") or {"duration": 259_200_000, "type": "TIMING", "enable": True}
        instance.lease = {**lease, "create_at": int(now * 1000), "update_at": int(now * 1000)}
    if spec.get("utilization"):
        instance.utilization.append([now - 1e-3, dict(spec["utilization"])])
    s.store.put(instance)
    s.lifecycle.set_status(instance, status, "seeded")
    ago = float(spec.get("runningForSeconds") or 0)
    if ago and instance.running_since is not None:  # running for that long already, modified (seeded) just now
        instance.running_since = instance.intervals[-1][0] = now - ago
        instance.lifecycle[-1]["GmtCreateTime"] = iso(now - ago)
        s.store.save(instance)
    return instance


@routes.post(f"{P}/instances")
async def seed(request: web.Request) -> web.Response:
    """One instance ({cloud, account, name, ...}) or many ({"instances": [...]})."""
    s = sim(request)
    body = await json_body(request)
    specs = body.get("instances", [body])
    created = [_seed(s, spec) for spec in specs]
    if "instances" in body:
        return web.json_response({"ids": [i.id for i in created]}, status=201)
    return web.json_response(summary(s, created[0]), status=201)


@routes.get(P + "/instances/{id}")
async def get_one(request: web.Request) -> web.Response:
    return web.json_response(summary(sim(request), _found(request)))


@routes.delete(P + "/instances/{id}")
async def remove(request: web.Request) -> web.Response:
    instance = _found(request)
    sim(request).store.remove(instance.id)
    return web.json_response({"deleted": instance.id})


@routes.put(P + "/instances/{id}/utilization")
async def utilization(request: web.Request) -> web.Response:
    s = sim(request)
    instance = _found(request)
    body = await json_body(request)
    levels = {}
    for key in ("cpu", "gpu", "memory"):
        if key in body:
            value = float(body[key])
            if not 0 <= value <= 100:
                raise ValueError(f"{key} must be a percentage 0..100")
            levels[key] = value
    if not levels:
        raise ValueError("give at least one of cpu, gpu, memory")
    instance.utilization.append([s.clock.now(), levels])
    s.store.save(instance)
    return web.json_response(summary(s, instance))


@routes.put(P + "/instances/{id}/status")
async def force_status(request: web.Request) -> web.Response:
    """An out-of-band change, as if someone used the console."""
    s = sim(request)
    instance = _found(request)
    body = await json_body(request)
    instance.steps = []
    s.lifecycle.set_status(instance, str(body["status"]), body.get("reason", "changed out of band"))
    return web.json_response(summary(s, instance))


@routes.post(P + "/instances/{id}/fail")
async def fail(request: web.Request) -> web.Response:
    """The instance's next start (or the one under way) fails with this reason and these events, in the cloud's
    own failed state: {"reasonCode", "reasonMessage", "events": [...]}."""
    s = sim(request)
    instance = _found(request)
    body = await json_body(request)
    s.lifecycle.fail_next(
        instance, str(body.get("reasonCode", "")), str(body.get("reasonMessage", "")), list(body.get("events") or [])
    )
    return web.json_response(summary(s, instance))


@routes.get(f"{P}/faults")
async def get_faults(request: web.Request) -> web.Response:
    faults = sim(request).faults
    return web.json_response(faults.to_json() if faults else {})


@routes.put(f"{P}/faults")
async def put_faults(request: web.Request) -> web.Response:
    s = sim(request)
    s.faults = Faults.from_json(await json_body(request))
    return web.json_response(s.faults.to_json())


@routes.delete(f"{P}/faults")
async def clear_faults(request: web.Request) -> web.Response:
    sim(request).faults = None
    return web.json_response({})


@routes.get(f"{P}/calls")
async def calls(request: web.Request) -> web.Response:
    counts = sim(request).calls
    return web.json_response({"calls": dict(counts), "total": sum(counts.values())})


@routes.get(f"{P}/journal")
async def journal(request: web.Request) -> web.Response:
    """Requests per instance, in order: ?route=pai-dsw:StopInstance&instance=ID narrow it down."""
    route, instance = request.query.get("route"), request.query.get("instance")
    entries = [
        e
        for e in sim(request).journal
        if (route is None or e["route"] == route) and (instance is None or e["instance"] == instance)
    ]
    return web.json_response({"entries": entries})


@routes.put(f"{P}/permissions")
async def deny(request: web.Request) -> web.Response:
    """{"accessKeyId": AK, "deny": ["pai-dsw:GetInstanceMetrics", ...]}: those calls answer 403 for that key."""
    body = await json_body(request)
    key, routes_ = str(body["accessKeyId"]), body.get("deny") or []
    if not isinstance(routes_, list):
        raise ValueError("deny must be a list of operations such as pai-dsw:StopInstance")
    sim(request).denied[key] = {str(r) for r in routes_}
    return web.json_response({k: sorted(v) for k, v in sim(request).denied.items()})


@routes.delete(f"{P}/permissions")
async def allow_all(request: web.Request) -> web.Response:
    sim(request).denied.clear()
    sim(request).denied_instances.clear()
    return web.json_response({})


@routes.put(f"{P}/denied-instances")
async def deny_instances(request: web.Request) -> web.Response:
    """{"ids": [...]}: a resource-level policy refuses stopping these PAI-DSW instances - StopInstances names them in
    AccessDeniedDetail and stops the others; StopInstance answers 403 for them."""
    body = await json_body(request)
    ids = body.get("ids") or []
    if not isinstance(ids, list):
        raise ValueError("ids must be a list of instance ids")
    sim(request).denied_instances = {str(i) for i in ids}
    return web.json_response({"ids": sorted(sim(request).denied_instances)})


@routes.delete(f"{P}/calls")
async def reset_calls(request: web.Request) -> web.Response:
    sim(request).calls.clear()
    sim(request).journal.clear()
    return web.json_response({})


@routes.put(f"{P}/config")
async def config(request: web.Request) -> web.Response:
    s = sim(request)
    body = await json_body(request)
    if "transitionDelay" in body:
        delay = float(body["transitionDelay"])
        if delay < 0:
            raise ValueError("transitionDelay must not be negative")
        s.lifecycle.delay = delay
    return web.json_response({"transitionDelay": s.lifecycle.delay, "timeScale": s.clock.scale})


@routes.post(f"{P}/reset")
async def reset(request: web.Request) -> web.Response:
    s = sim(request)
    s.store.clear()
    s.calls.clear()
    s.journal.clear()
    s.denied.clear()
    s.denied_instances.clear()
    s.faults = None
    return web.json_response({})
