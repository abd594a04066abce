"""`make bench` (culling): N running notebooks under one IdleCullerPolicy while the cloud API misbehaves.

N PAI-DSW instances in one account, in eight equal groups: three idle ones the policy must stop
(CPU-only and GPU), and five it must never stop (busy, a busy GPU behind an idle CPU, busy CPU, idle
but exempt by annotation, idle but not selected). The cloud API answers 20% of requests with 5xx,
10% with throttling and adds latency. Measured while the operator runs:
- wrong_stops: instances of the five groups that ever left Running (emulator state, sampled each
  second) - target 0;
- right_stops: idle instances stopped, of how many;
- cull_p50_s / cull_all_s: operator start -> half / all of the idle instances stopped; the floor is
  idle_minutes after seeding plus the emulator's one-minute metric resolution;
- metric_reads_per_min: GetInstanceMetrics calls a minute (the culler reads each running selected
  instance at most once a minute, two reads for GPU instances), stop_calls, the operator's counts of
  culls and utilization samples by result (a failed or empty sample delays a stop by a minute);
- rss_mb: operator resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as aclient

from notebook_devtools import localcluster
from notebook_devtools.localcluster import free_port
from notebook_operator.api.meta import GROUP, VERSION
from tests.bench.harness import (
    api_client,
    bounded,
    figures_table,
    local_setup,
    metric_by,
    pai_account,
    report,
    rss_mb,
    start_operator,
)
from tests.emulator import PAI_KEY, Emulator

IDLE = {"cpu": 1, "gpu": 0}
# (group, gpu, utilization (None: the emulator's busy default), selected, exempt, to be stopped)
GROUPS: list[tuple[str, int, dict[str, float] | None, bool, bool, bool]] = [
    ("idle-cpu", 0, IDLE, True, False, True),
    ("idle-cpu2", 0, IDLE, True, False, True),
    ("idle-gpu", 1, IDLE, True, False, True),
    ("busy", 0, None, True, False, False),
    ("busy-gpu", 1, {"cpu": 1, "gpu": 80}, True, False, False),
    ("busy-cpu", 0, {"cpu": 30, "gpu": 0}, True, False, False),
    ("exempt", 0, IDLE, True, True, False),
    ("unselected", 0, IDLE, False, False, False),
]
FAULTS = {"errorRate": 0.2, "throttleRate": 0.1, "retryAfterSeconds": 0.5, "latencyMs": 40, "pathPattern": "^/api/",
          "seed": 11}  # fmt: skip


def notebook(name: str, instance_id: str, selected: bool, exempt: bool) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"team": "ml" if selected else "other"}}
    if exempt:
        metadata["annotations"] = {"cloudnotebooks.io/cull-exempt": "true"}
    spec = {"providerConfigRef": {"name": "pai"}, "instanceId": instance_id, "managementPolicy": "Observe"}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookInstance", "metadata": metadata, "spec": spec}


async def scenario(n: int, idle_minutes: int, interval: int, cluster: localcluster.LocalCluster, emulator: Emulator,
                   log_dir: Path, timeout_s: float) -> dict[str, Any]:  # fmt: skip
    namespace = f"cull-{n}"
    api = await api_client(cluster.kubeconfig)
    custom = aclient.CustomObjectsApi(api)
    emulator.admin.post("/reset").raise_for_status()
    plan = [(f"{GROUPS[k % len(GROUPS)][0]}-{k:05d}", GROUPS[k % len(GROUPS)]) for k in range(n)]
    seeds = []
    for name, (_group, gpu, utilization, *_rest) in plan:
        seed: dict[str, Any] = {"cloud": "pai-dsw", "account": PAI_KEY[0], "name": name, "gpu": gpu}
        if utilization:
            seed["utilization"] = utilization
        seeds.append(seed)
    ids = []
    for start in range(0, n, 1000):
        ids += emulator.seed_many(seeds[start : start + 1000])
    must_stop = {i for i, (_name, g) in zip(ids, plan, strict=True) if g[5]}
    must_run = set(ids) - must_stop

    await pai_account(api, namespace, emulator, interval, rate_limit=100)
    await custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "idlecullerpolicies", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "IdleCullerPolicy", "metadata": {"name": "ml"},
        "spec": {"selector": {"matchLabels": {"team": "ml"}}, "cpuPercent": 10, "gpuPercent": 10,
                 "idleMinutes": idle_minutes, "windowMinutes": 1}})  # fmt: skip
    await bounded([custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances",
                                                          notebook(name, iid, g[3], g[4]))
                   for (name, g), iid in zip(plan, ids, strict=True)], 32)  # fmt: skip

    emulator.admin.put("/faults", json=FAULTS).raise_for_status()
    emulator.admin.delete("/calls")
    metrics_port = free_port()
    log = (log_dir / f"cull-operator-{n}.log").open("wb")
    started = time.monotonic()
    operator = start_operator(namespace, cluster.kubeconfig, metrics_port, log)
    left_running: set[str] = set()
    stopped_at: dict[str, float] = {}

    def look() -> None:
        """One sample of the emulator's states: wrong stops, and when each right one happened."""
        listed = emulator.admin.get("/instances", params={"cloud": "pai-dsw"}).json()["instances"]
        now = time.monotonic()
        for item in listed:
            if item["status"] != "Running":
                if item["id"] in must_run:
                    left_running.add(item["id"])
                elif item["id"] in must_stop:
                    stopped_at.setdefault(item["id"], now)

    try:
        while len(stopped_at) < len(must_stop) and time.monotonic() - started < timeout_s:
            look()
            await asyncio.sleep(1)
        # A few more cycles: nothing else is stopped after the last right stop.
        settle = time.monotonic() + 3 * interval
        while time.monotonic() < settle:
            look()
            await asyncio.sleep(1)
        elapsed_min = (time.monotonic() - started) / 60
        calls = emulator.calls()
        culls = metric_by(metrics_port, "notebook_operator_culls_total", "result")
        samples = metric_by(metrics_port, "notebook_operator_utilization_samples_total", "result")
        rss = rss_mb(operator.pid)
    finally:
        emulator.admin.delete("/faults")
        operator.terminate()
        operator.wait(timeout=30)
        await api.close()
    return {
        "n": n,
        "poll_interval_s": interval,
        "idle_minutes": idle_minutes,
        "wrong_stops": len(left_running),
        "right_stops": f"{len(stopped_at)}/{len(must_stop)}",
        "cull_p50_s": round(sorted(stopped_at.values())[len(stopped_at) // 2] - started, 1) if stopped_at else None,
        "cull_all_s": round(max(stopped_at.values()) - started, 1) if len(stopped_at) == len(must_stop) else None,
        "metric_reads_per_min": round(calls.get("pai-dsw:GetInstanceMetrics", 0) / elapsed_min, 1),
        "stop_calls": calls.get("pai-dsw:StopInstance", 0) + calls.get("pai-dsw:StopInstances", 0),
        "culls_by_result": culls,
        "utilization_samples": samples,
        "rss_mb": rss,
    }


def table(results: list[dict[str, Any]]) -> str:
    return figures_table(results, "n", "N={}")


async def main_async(sizes: list[int], idle_minutes: int, interval: int, output: Path, timeout_s: float) -> int:
    results = []
    async with local_setup(transition_delay=0.2) as (cluster, emulator, tmp):
        for n in sizes:
            print(f"bench: culling N={n} ...", file=sys.stderr, flush=True)
            results.append(await scenario(n, idle_minutes, interval, cluster, emulator, tmp, timeout_s))
    report(results, output, table(results))
    return 1 if any(r["wrong_stops"] for r in results) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="instances (repeatable; default 1000)")
    parser.add_argument("--idle-minutes", type=int, default=2)
    parser.add_argument("--interval", type=int, default=10, help="pollIntervalSeconds")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for every right stop")
    parser.add_argument("--output", default="bench-cull-results.json")
    args = parser.parse_args()
    return asyncio.run(main_async(args.n or [1000], args.idle_minutes, args.interval, Path(args.output), args.timeout))


if __name__ == "__main__":
    sys.exit(main())
