"""PAI-DSW 2022-01-01: how an emulated instance looks on the wire, and ListInstances filtering."""

from __future__ import annotations

import json
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from notebook_devtools.cloudsim.clock import iso, parse_time
from notebook_devtools.cloudsim.lifecycle import Lifecycle
from notebook_devtools.cloudsim.query import Getter, Predicate, between, contains, equals, one_of
from notebook_devtools.cloudsim.store import SimInstance


# ListEcsSpecs: the families a DSW user picks - general purpose ecs.g6/g7 (4 GiB per vCPU), compute ecs.c6/c7
# (2 GiB per vCPU), GPU ecs.gn6i (T4), ecs.gn7i (A10), ecs.gn6v (V100). Shapes follow Alibaba's instance type
# names; Price (per hour, pay-as-you-go) and Currency are illustrative figures for the emulator, not a price list.
def _cpu(family: str, size: str, cpus: int, per_cpu_gib: float, price: float) -> dict[str, Any]:
    return {
        "InstanceType": f"ecs.{family}.{size}",
        "AcceleratorType": "CPU",
        "CPU": cpus,
        "Memory": cpus * per_cpu_gib,
        "GPU": 0,
        "GPUType": "",
        "Price": price,
        "Currency": "CNY",
    }


def _gpu(
    name: str, cpus: int, memory: float, gpus: int, gpu_type: str, gpu_memory: float, price: float
) -> dict[str, Any]:
    return {
        "InstanceType": f"ecs.{name}",
        "AcceleratorType": "GPU",
        "CPU": cpus,
        "Memory": memory,
        "GPU": gpus,
        "GPUType": gpu_type,
        "GPUMemorySize": gpu_memory,
        "Price": price,
        "Currency": "CNY",
    }


ECS_SPECS: list[dict[str, Any]] = [
    _cpu("c6", "large", 2, 2, 0.39),
    _cpu("c6", "xlarge", 4, 2, 0.78),
    _cpu("c6", "2xlarge", 8, 2, 1.56),
    _cpu("c7", "large", 2, 2, 0.41),
    _cpu("c7", "xlarge", 4, 2, 0.82),
    _cpu("c7", "2xlarge", 8, 2, 1.64),
    _cpu("g6", "large", 2, 4, 0.50),
    _cpu("g6", "xlarge", 4, 4, 1.00),
    _cpu("g6", "2xlarge", 8, 4, 2.00),
    _cpu("g6", "4xlarge", 16, 4, 4.00),
    _cpu("g7", "large", 2, 4, 0.53),
    _cpu("g7", "xlarge", 4, 4, 1.06),
    _cpu("g7", "2xlarge", 8, 4, 2.12),
    _cpu("g7", "4xlarge", 16, 4, 4.24),
    _gpu("gn6i-c4g1.xlarge", 4, 15.0, 1, "NVIDIA T4", 16.0, 11.75),
    _gpu("gn6i-c8g1.2xlarge", 8, 31.0, 1, "NVIDIA T4", 16.0, 13.10),
    _gpu("gn7i-c8g1.2xlarge", 8, 30.0, 1, "NVIDIA A10", 24.0, 15.20),
    _gpu("gn7i-c16g1.4xlarge", 16, 60.0, 1, "NVIDIA A10", 24.0, 17.90),
    _gpu("gn7i-c32g1.32xlarge", 128, 752.0, 4, "NVIDIA A10", 24.0, 97.60),
    _gpu("gn6v-c8g1.2xlarge", 8, 32.0, 1, "NVIDIA V100", 16.0, 26.50),
    _gpu("gn6v-c8g1.8xlarge", 32, 128.0, 4, "NVIDIA V100", 16.0, 106.00),
]
SPECS_BY_TYPE = {spec["InstanceType"]: spec for spec in ECS_SPECS}


def resources(instance: SimInstance) -> dict[str, float]:
    """CPU cores, memory GiB and GPU count, from the EcsSpec or RequestedResource."""
    spec = SPECS_BY_TYPE.get(instance.attrs.get("EcsSpec", ""))
    if spec:
        return {"cpu": float(spec["CPU"]), "memory": float(spec["Memory"]), "gpu": float(spec["GPU"])}
    requested = instance.attrs.get("RequestedResource") or {}
    return {
        "cpu": float(requested.get("CPU") or 0),
        "memory": float(str(requested.get("Memory") or "0").rstrip("Gi")),
        "gpu": float(requested.get("GPU") or 0),
    }


def instance_json(instance: SimInstance, lifecycle: Lifecycle) -> dict[str, Any]:
    a = instance.attrs
    base = f"https://dsw-gateway.emulator.local/{instance.id}"
    spec = SPECS_BY_TYPE.get(a.get("EcsSpec", ""), {})
    out: dict[str, Any] = {
        "InstanceId": instance.id,
        "InstanceName": instance.name,
        "Status": instance.status,
        "EcsSpec": a.get("EcsSpec", ""),
        "AcceleratorType": "GPU" if instance.gpu else "CPU",
        "Accessibility": a.get("Accessibility", "PRIVATE"),
        "AccumulatedRunningTimeInMs": lifecycle.running_ms(instance),
        "GmtCreateTime": iso(instance.created_at),
        "GmtModifiedTime": iso(instance.modified_at),
        "ImageId": a.get("ImageId", ""),
        "ImageName": a.get("ImageUrl", a.get("ImageId", "")).rsplit("/", 1)[-1],
        "ImageUrl": a.get("ImageUrl", ""),
        "InstanceUrl": f"https://dsw.emulator.local/notebook.htm?instance={instance.id}#/",
        "JupyterlabUrl": f"{base}/lab/",
        "WebIDEUrl": f"{base}/ide/",
        "TerminalUrl": f"{base}/tty/",
        "PaymentType": a.get("PaymentType", "PayAsYouGo"),
        "Priority": int(a.get("Priority", 1)),
        "ReasonCode": a.get("ReasonCode", ""),
        "ReasonMessage": a.get("ReasonMessage", ""),
        "ResourceId": a.get("ResourceId", ""),
        "WorkspaceId": str(a.get("WorkspaceId", "0")),
        "WorkspaceName": a.get("WorkspaceName", "default"),
        "WorkspaceSource": a.get("WorkspaceSource", ""),
        "UserId": a.get("UserId", "100000000000"),
        "UserName": a.get("UserName", "emulator"),
        "EnvironmentVariables": a.get("EnvironmentVariables", {}),
        "Labels": a.get("Labels", []),
        "Tags": [{"TagKey": t.get("Key"), "TagValue": t.get("Value")} for t in a.get("Tag", [])],
        "Datasets": a.get("Datasets", []),
        "CloudDisks": a.get("CloudDisks", []),
        "InstanceSnapshotList": [snapshot_json(s, lifecycle.clock.now()) for s in instance.snapshots],
    }
    requested = a.get("RequestedResource")
    if requested:
        out["RequestedResource"] = {k: str(v) for k, v in requested.items()}
    elif spec:
        out["RequestedResource"] = {
            "CPU": str(spec["CPU"]),
            "Memory": str(int(spec["Memory"])),
            "GPU": str(spec["GPU"]),
            "GPUType": spec["GPUType"],
        }
    if instance.snapshots:
        out["LatestSnapshot"] = snapshot_json(instance.snapshots[-1], lifecycle.clock.now())
    if instance.culler:
        out["IdleInstanceCuller"] = culler_json(instance, lifecycle)
    if instance.timer:
        out["InstanceShutdownTimer"] = timer_json(instance, lifecycle)
    return out


def snapshot_json(entry: dict[str, Any], now: float) -> dict[str, Any]:
    """A snapshot as GetInstanceSnapshot shapes it: Pushing until its time comes, then its final status."""
    out = {k: v for k, v in entry.items() if not k.startswith("_")}
    if now < float(entry.get("_ready_at") or 0):
        out["Status"] = "Pushing"
    return out


def culler_json(instance: SimInstance, lifecycle: Lifecycle) -> dict[str, Any]:
    culler = dict(instance.culler or {})
    idle_minutes = 0
    if instance.idle_since is not None:
        idle_minutes = int((lifecycle.clock.now() - instance.idle_since) // 60)
    return {"InstanceId": instance.id, **culler, "IdleTimeInMinutes": idle_minutes}


def timer_json(instance: SimInstance, lifecycle: Lifecycle) -> dict[str, Any]:
    timer = instance.timer or {}
    remaining = max(0, int((timer["due"] - lifecycle.clock.now()) * 1000))
    return {
        "InstanceId": instance.id,
        "DueTime": iso(timer["due"]),
        "GmtCreateTime": iso(timer["created"]),
        "GmtModifiedTime": iso(timer["created"]),
        "RemainingTimeInMs": remaining,
    }


def _labels(wanted: str, field: str) -> Predicate:
    """`wanted` is the JSON the SDK sends: a map for Labels, a [{Key, Value}] list for Tag."""
    parsed = json.loads(wanted)
    if isinstance(parsed, dict):
        pairs = {(str(k), str(v)) for k, v in parsed.items()}
    elif isinstance(parsed, list):
        pairs = {(str(p.get("Key")), str(p.get("Value"))) for p in parsed if isinstance(p, dict)}
    else:
        raise ValueError(f"{field} must be a JSON object or list")

    def check(instance: SimInstance) -> bool:
        have = {(str(item.get("Key")), str(item.get("Value"))) for item in instance.attrs.get(field, [])}
        return pairs <= have

    return check


def _resource(key: str) -> Callable[[SimInstance], float]:
    return lambda instance: resources(instance)[key]


def filters(q: dict[str, str]) -> list[Predicate]:
    """One predicate per ListInstances filter present in the query."""
    exact: dict[str, Getter] = {
        "AcceleratorType": lambda i: "GPU" if i.gpu else "CPU",
        "WorkspaceId": lambda i: i.attrs.get("WorkspaceId", "0"),
        "PaymentType": lambda i: i.attrs.get("PaymentType", "PayAsYouGo"),
        "ResourceId": lambda i: i.attrs.get("ResourceId", ""),
        "Accessibility": lambda i: i.attrs.get("Accessibility", "PRIVATE"),
        "CreateUserId": lambda i: i.attrs.get("UserId", ""),
    }
    checks = [equals(get, q[param]) for param, get in exact.items() if q.get(param)]
    for param, get in (("Status", lambda i: i.status), ("InstanceId", lambda i: i.id)):
        wanted = {v for v in q.get(param, "").split(",") if v}
        if wanted:
            checks.append(one_of(get, wanted))
    partial: dict[str, Getter] = {
        "InstanceName": lambda i: i.name,
        "ImageName": lambda i: i.attrs.get("ImageUrl", ""),
        "GpuType": lambda i: SPECS_BY_TYPE.get(i.attrs.get("EcsSpec", ""), {}).get("GPUType", ""),
    }
    checks += [contains(get, q[param]) for param, get in partial.items() if q.get(param)]
    for param in ("Labels", "Tag"):
        if q.get(param):
            checks.append(_labels(q[param], param))
    ranges = (
        ("cpu", "MinCpu", "MaxCpu", 1000.0),
        ("gpu", "MinGpu", "MaxGpu", 1000.0),
        ("memory", "MinMemory", "MaxMemory", 1.0),
    )  # CPU and GPU filters count thousandths
    for key, low, high, unit in ranges:
        if q.get(low) or q.get(high):
            bounds = [float(q[p]) / unit if q.get(p) else None for p in (low, high)]
            checks.append(between(_resource(key), bounds[0], bounds[1]))
    after = parse_time(q["CreateTimeAfter"]) if q.get("CreateTimeAfter") else None
    before = parse_time(q["CreateTimeBefore"]) if q.get("CreateTimeBefore") else None
    if after is not None or before is not None:
        checks.append(between(lambda i: i.created_at, after, before))
    return checks


SORT_KEYS: dict[str, Callable[[SimInstance], Any]] = {
    "GmtCreateTime": attrgetter("created_at", "id"),
    "GmtModifiedTime": attrgetter("modified_at", "id"),
    "Priority": lambda i: (int(i.attrs.get("Priority", 1)), i.id),
}
