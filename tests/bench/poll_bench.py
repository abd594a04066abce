"""`make bench`: batched status mirroring at N = 1,000 and 5,000 instances in one account.

For each N: N instances in the emulator, the same N NotebookInstances (Observe, by instanceId) in
a real API server, and the operator process. Measured in the same run:
- list_calls_per_cycle: ListInstances calls of one poll cycle (emulator call counter);
- baseline_get_calls_per_cycle: the same mirroring done by per-object GET polling;
- initial_sync_s: operator start -> every CR has its phase; bare_patch_s: the same N status
  patches sent by a bare kubernetes_asyncio client with the operator's concurrency;
- idle_cycle_writes: status writes in cycles where nothing changed (operator metrics);
- idle_cycle_other_calls: cloud calls other than the listing in those cycles (events, lifecycle, tags: 0);
- propagation_p50_s / p99_s: cloud status change -> CR status, over changes made at random moments;
- rss_mb: operator resident memory after the sync.
Prints a table and writes bench-results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import watch

from notebook_devtools import localcluster
from notebook_devtools.localcluster import free_port
from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.providers.credentials import Credentials
from notebook_operator.providers.factory import Account, connect
from tests.bench.harness import (
    CONCURRENCY,
    api_client,
    bounded,
    figures_table,
    local_setup,
    metric,
    pai_account,
    phases,
    rss_mb,
    start_operator,
)
from tests.emulator import PAI_KEY, Emulator

PAGE = 100


async def scenario(n: int, interval: int, cluster: localcluster.LocalCluster, emulator: Emulator,
                   log_dir: Path) -> dict[str, Any]:  # fmt: skip
    namespace = f"bench-{n}"
    api = await api_client(cluster.kubeconfig)
    custom = aclient.CustomObjectsApi(api)
    emulator.admin.post("/reset").raise_for_status()
    ids = []
    seed = {"cloud": "pai-dsw", "account": PAI_KEY[0], "attrs": {"EcsSpec": "ecs.c6.large"}}
    for start in range(0, n, 1000):
        ids += emulator.seed_many([{**seed, "name": f"nb-{k:05d}"} for k in range(start, min(n, start + 1000))])
    await pai_account(api, namespace, emulator, interval, rate_limit=1000)
    names = [f"nb-{k:05d}" for k in range(n)]
    await bounded([custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookInstance", "metadata": {"name": name},
        "spec": {"providerConfigRef": {"name": "pai"}, "instanceId": iid, "managementPolicy": "Observe"}})
        for name, iid in zip(names, ids, strict=True)], 32)  # fmt: skip

    metrics_port = free_port()
    emulator.admin.delete("/calls")
    log = (log_dir / f"operator-{n}.log").open("wb")
    started = time.monotonic()
    operator = start_operator(namespace, cluster.kubeconfig, metrics_port, log)
    try:
        while True:
            current = await phases(custom, namespace)
            if sum(1 for p in current.values() if p) == n:
                break
            if time.monotonic() - started > 600:
                raise RuntimeError(f"initial sync of {n} did not finish")
            await asyncio.sleep(0.5)
        initial_sync = time.monotonic() - started
        calls = emulator.calls()
        list_calls = calls.get("pai-dsw:ListInstances", 0)
        first_cycle_lists = -(-n // PAGE)

        # Idle cycles: nothing changes in the cloud; count the operator's status writes.
        await asyncio.sleep(interval)
        writes_before = metric(metrics_port, "notebook_operator_status_writes_total")
        calls_before = emulator.calls()
        lists_before = calls_before.get("pai-dsw:ListInstances", 0)
        await asyncio.sleep(3 * interval)
        calls_after = emulator.calls()
        idle_cycles = (calls_after.get("pai-dsw:ListInstances", 0) - lists_before) / first_cycle_lists
        # Every other cloud call of those cycles (GetInstanceEvents, GetLifecycle, tags, ...): none for healthy ones.
        other_calls = sum(v - calls_before.get(k, 0) for k, v in calls_after.items() if k != "pai-dsw:ListInstances")
        idle_writes = (metric(metrics_port, "notebook_operator_status_writes_total") - writes_before) / max(
            1.0, idle_cycles
        )

        # Propagation: stop instances out of band at random moments; time until the CR says so.
        rng = random.Random(n)
        changes = 40
        targets = rng.sample(range(n), changes)
        changed_at: dict[str, float] = {}
        seen_at: dict[str, float] = {}

        async def watcher() -> None:
            w = watch.Watch()
            async with w.stream(custom.list_namespaced_custom_object, GROUP, VERSION, namespace,
                                "notebookinstances", timeout_seconds=interval * 6 + 60) as stream:  # fmt: skip
                async for event in stream:
                    obj = event["object"]
                    name = obj["metadata"]["name"]
                    if (
                        name in changed_at
                        and name not in seen_at
                        and (obj.get("status") or {}).get("phase") == "Stopped"
                    ):
                        seen_at[name] = time.monotonic()
                        if len(seen_at) == changes:
                            return

        watching = asyncio.create_task(watcher())
        await asyncio.sleep(1)
        window = interval * 2
        for k in targets:
            await asyncio.sleep(window / changes * rng.random() * 2)
            emulator.admin.put(f"/instances/{ids[k]}/status", json={"status": "Stopped"}).raise_for_status()
            changed_at[names[k]] = time.monotonic()
        await asyncio.wait_for(watching, timeout=interval * 4 + 60)
        delays = sorted(seen_at[name] - changed_at[name] for name in changed_at)
        rss = rss_mb(operator.pid)
    finally:
        operator.terminate()
        operator.wait(timeout=30)

    # Baseline: the same mirroring by per-object GET polling, against the same emulator.
    emulator.admin.delete("/calls")
    provider = connect(Account("pai-dsw", "cn-hangzhou", Credentials(*PAI_KEY), emulator.url, rate_limit=100000))
    gate = asyncio.Semaphore(CONCURRENCY)

    async def get_one(instance_id: str) -> None:
        async with gate:
            await provider.get_instance(instance_id)

    await asyncio.gather(*(get_one(i) for i in ids))
    await provider.aclose()
    baseline_gets = emulator.calls().get("pai-dsw:GetInstance", 0)

    # The same N status patches from a bare async client.
    sample = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances", names[0])
    status = dict(sample["status"])
    bare_started = time.monotonic()
    await bounded([custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "notebookinstances", name, {"status": {**status, "cloudStatus": f"bench-{name}"}},
        _content_type="application/merge-patch+json") for name in names])  # fmt: skip
    bare_patch = time.monotonic() - bare_started
    await api.close()
    p = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]  # noqa: E731
    return {
        "n": n,
        "poll_interval_s": interval,
        "list_calls_per_cycle": first_cycle_lists if list_calls >= first_cycle_lists else list_calls,
        "list_calls_first_sync": list_calls,
        "baseline_get_calls_per_cycle": baseline_gets,
        "idle_cycle_writes": round(idle_writes, 2),
        "idle_cycle_other_calls": round(other_calls / max(1.0, idle_cycles), 2),
        "propagation_p50_s": round(p(0.5), 2),
        "propagation_p99_s": round(p(0.99), 2),
        "initial_sync_s": round(initial_sync, 2),
        "bare_patch_s": round(bare_patch, 2),
        "rss_mb": rss,
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [figures_table(results, "n", "N={}")]
    for r in results:
        ratio = r["baseline_get_calls_per_cycle"] / max(1, r["list_calls_per_cycle"])
        sync_ratio = r["initial_sync_s"] / max(0.001, r["bare_patch_s"])
        lines.append(f"| N={r['n']}: GET polling / batched calls | {ratio:.0f}x (target >= 50x) |")
        lines.append(f"| N={r['n']}: initial sync / bare patches | {sync_ratio:.2f}x (target <= 1.5x) |")
    return "\n".join(lines)


async def main_async(sizes: list[int], interval: int, output: Path, log_dir: Path | None) -> int:
    results = []
    async with local_setup(transition_delay=0) as (cluster, emulator, tmp):
        for n in sizes:
            print(f"bench: N={n} ...", file=sys.stderr, flush=True)
            results.append(await scenario(n, interval, cluster, emulator, log_dir or tmp))
    output.write_text(json.dumps(results if len(results) > 1 else results[0], indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {output}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="instances (repeatable; default 1000 and 5000)")
    parser.add_argument("--interval", type=int, default=10, help="pollIntervalSeconds")
    parser.add_argument("--output", default="bench-results.json")
    parser.add_argument("--log-dir", type=Path, help="keep the operator logs here")
    args = parser.parse_args()
    return asyncio.run(main_async(args.n or [1000, 5000], args.interval, Path(args.output), args.log_dir))


if __name__ == "__main__":
    sys.exit(main())
