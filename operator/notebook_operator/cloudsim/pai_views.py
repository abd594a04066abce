"""PAI-DSW 2022-01-01: how an emulated instance looks on the wire, and ListInstances filtering."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from notebook_operator.cloudsim.clock import iso, parse_time
from notebook_operator.cloudsim.lifecycle import Lifecycle
from notebook_operator.cloudsim.store import SimInstance

# ListEcsSpecs: a small faithful catalogue (CPU and GPU are counts, Memory GiB).
ECS_SPECS: list[dict[str, Any]] = [
    {"InstanceType": "ecs.c6.large", "AcceleratorType": "CPU", "CPU": 2, "Memory": 4.0, "GPU": 0, "GPUType": ""},
    {"InstanceType": "ecs.g6.xlarge", "AcceleratorType": "CPU", "CPU": 4, "Memory": 16.0, "GPU": 0, "GPUType": ""},
    {"InstanceType": "ecs.g6.4xlarge", "AcceleratorType": "CPU", "CPU": 16, "Memory": 64.0, "GPU": 0, "GPUType": ""},
    {
        "InstanceType": "ecs.gn6i-c4g1.xlarge",
        "AcceleratorType": "GPU",
        "CPU": 4,
        "Memory": 15.0,
        "GPU": 1,
        "GPUType": "NVIDIA T4",
        "GPUMemorySize": 16.0,
    },
    {
        "InstanceType": "ecs.gn7i-c8g1.2xlarge",
        "AcceleratorType": "GPU",
        "CPU": 8,
        "Memory": 30.0,
        "GPU": 1,
        "GPUType": "NVIDIA A10",
        "GPUMemorySize": 24.0,
    },
    {
        "InstanceType": "ecs.gn7i-c32g1.32xlarge",
        "AcceleratorType": "GPU",
        "CPU": 128,
        "Memory": 752.0,
        "GPU": 4,
        "GPUType": "NVIDIA A10",
        "GPUMemorySize": 24.0,
    },
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
        "InstanceSnapshotList": instance.snapshots,
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
        out["LatestSnapshot"] = instance.snapshots[-1]
    if instance.culler:
        out["IdleInstanceCuller"] = culler_json(instance, lifecycle)
    if instance.timer:
        out["InstanceShutdownTimer"] = timer_json(instance, lifecycle)
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


def _labels_match(instance: SimInstance, wanted: str, field: str) -> bool:
    """`wanted` is the JSON the SDK sends: a map for Labels, a [{Key, Value}] list for Tag."""
    parsed = json.loads(wanted) if wanted else []
    if isinstance(parsed, dict):
        pairs = [(str(k), str(v)) for k, v in parsed.items()]
    elif isinstance(parsed, list):
        pairs = [(str(p.get("Key")), str(p.get("Value"))) for p in parsed if isinstance(p, dict)]
    else:
        raise ValueError(f"{field} must be a JSON object or list")
    have = {(str(item.get("Key")), str(item.get("Value"))) for item in instance.attrs.get(field, [])}
    return all(pair in have for pair in pairs)


def _in_range(value: float, low: str | None, high: str | None, unit: float = 1.0) -> bool:
    if low and value < float(low) / unit:
        return False
    return not (high and value > float(high) / unit)


def matches(instance: SimInstance, q: dict[str, str]) -> bool:
    """Every ListInstances filter that has meaning without a real cloud."""
    res = resources(instance)
    statuses = {s for s in q.get("Status", "").split(",") if s}
    ids = {s for s in q.get("InstanceId", "").split(",") if s}
    checks = [
        not statuses or instance.status in statuses,
        not ids or instance.id in ids,
        q.get("InstanceName", "") in instance.name,
        not q.get("WorkspaceId") or str(instance.attrs.get("WorkspaceId", "0")) == q["WorkspaceId"],
        not q.get("AcceleratorType") or ("GPU" if instance.gpu else "CPU") == q["AcceleratorType"],
        not q.get("PaymentType") or instance.attrs.get("PaymentType", "PayAsYouGo") == q["PaymentType"],
        not q.get("ResourceId") or instance.attrs.get("ResourceId") == q["ResourceId"],
        not q.get("Accessibility") or instance.attrs.get("Accessibility", "PRIVATE") == q["Accessibility"],
        not q.get("ImageName") or q["ImageName"] in instance.attrs.get("ImageUrl", ""),
        not q.get("CreateUserId") or instance.attrs.get("UserId") == q["CreateUserId"],
        not q.get("GpuType") or q["GpuType"] in str(SPECS_BY_TYPE.get(instance.attrs.get("EcsSpec", ""), {})),
        _labels_match(instance, q.get("Labels", ""), "Labels"),
        _labels_match(instance, q.get("Tag", ""), "Tag"),
        _in_range(res["cpu"], q.get("MinCpu"), q.get("MaxCpu"), unit=1000),
        _in_range(res["gpu"], q.get("MinGpu"), q.get("MaxGpu"), unit=1000),
        _in_range(res["memory"], q.get("MinMemory"), q.get("MaxMemory")),
        not q.get("CreateTimeAfter") or instance.created_at >= parse_time(q["CreateTimeAfter"]),
        not q.get("CreateTimeBefore") or instance.created_at <= parse_time(q["CreateTimeBefore"]),
    ]
    return all(checks)


SORT_KEYS: dict[str, Callable[[SimInstance], Any]] = {
    "GmtCreateTime": lambda i: i.created_at,
    "GmtModifiedTime": lambda i: i.modified_at,
    "Priority": lambda i: int(i.attrs.get("Priority", 1)),
}
