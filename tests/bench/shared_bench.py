"""`make bench`: one ClusterProviderConfig shared by many namespaces is one account - one listing per cycle.

N instances in one emulator account, N NotebookInstances (Observe, by instanceId) spread over S namespaces, the
operator watching every namespace. Two runs on the same data:
- shared: one ClusterProviderConfig whose namespaceSelector admits the S namespaces;
- per-namespace: a ProviderConfig of the same account in each namespace (what teams did before).
Figures per run: ListInstances calls per cycle (emulator counter over idle cycles), initial sync (operator start
-> every CR has its phase), operator RSS. Prints a table and writes bench-shared-results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as aclient

from notebook_devtools import localcluster
from notebook_devtools.localcluster import free_port
from notebook_operator.api.meta import GROUP, VERSION
from tests.bench.harness import api_client, bounded, figures_table, local_setup, report, rss_mb
from tests.emulator import PAI_KEY, Emulator

PAGE = 100
LABEL = "bench.cloudnotebooks.io/shared"


def _operator(kubeconfig: Path, metrics_port: int, log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "notebook_operator", "run", "--standalone", "--all-namespaces", "--liveness", "",
         "--metrics-port", str(metrics_port), "--allowed-endpoint", localcluster.EMULATOR_ENDPOINTS],
        env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin"}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def _phases_everywhere(custom: aclient.CustomObjectsApi, run: str) -> int:
    found = await custom.list_cluster_custom_object(GROUP, VERSION, "notebookinstances", label_selector=f"run={run}")
    return sum(1 for item in found["items"] if (item.get("status") or {}).get("phase"))


async def scenario(mode: str, n: int, spaces: int, interval: int, cluster: localcluster.LocalCluster,
                   emulator: Emulator, log_dir: Path) -> dict[str, Any]:  # fmt: skip
    api = await api_client(cluster.kubeconfig)
    core, custom = aclient.CoreV1Api(api), aclient.CustomObjectsApi(api)
    emulator.admin.post("/reset").raise_for_status()
    run = f"{mode[:6]}-{n}"
    seed = {"cloud": "pai-dsw", "account": PAI_KEY[0], "attrs": {"EcsSpec": "ecs.c6.large"}}
    ids: list[str] = []
    for start in range(0, n, 1000):
        ids += emulator.seed_many([{**seed, "name": f"nb-{k:05d}"} for k in range(start, min(n, start + 1000))])
    namespaces = [f"{run}-{k:02d}" for k in range(spaces)]
    secret = {"accessKeyId": PAI_KEY[0], "accessKeySecret": PAI_KEY[1]}
    account = {"provider": "pai-dsw", "region": "cn-hangzhou", "endpoint": emulator.url, "rateLimit": 1000,
               "pollIntervalSeconds": interval}  # fmt: skip
    for namespace in namespaces:
        await core.create_namespace({"metadata": {"name": namespace, "labels": {LABEL: run}}})
    if mode == "shared":
        await core.create_namespaced_secret(namespaces[0], {"metadata": {"name": "pai"}, "stringData": secret})
        await custom.create_cluster_custom_object(GROUP, VERSION, "clusterproviderconfigs", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterProviderConfig", "metadata": {"name": run},
            "spec": {**account, "credentialsSecretRef": {"namespace": namespaces[0], "name": "pai"},
                     "namespaceSelector": {"matchLabels": {LABEL: run}}}})  # fmt: skip
        ref = {"kind": "ClusterProviderConfig", "name": run}
    else:
        for namespace in namespaces:
            await core.create_namespaced_secret(namespace, {"metadata": {"name": "pai"}, "stringData": secret})
            await custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs", {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "ProviderConfig", "metadata": {"name": "pai"},
                "spec": {**account, "credentialsSecretRef": {"name": "pai"}}})  # fmt: skip
        ref = {"name": "pai"}
    await bounded([custom.create_namespaced_custom_object(GROUP, VERSION, namespaces[k % spaces], "notebookinstances", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookInstance",
        "metadata": {"name": f"nb-{k:05d}", "labels": {"run": run}},
        "spec": {"providerConfigRef": ref, "instanceId": iid, "managementPolicy": "Observe"}})
        for k, iid in enumerate(ids)], 32)  # fmt: skip

    emulator.admin.delete("/calls")
    log = (log_dir / f"operator-shared-{mode}.log").open("wb")
    started = time.monotonic()
    operator = _operator(cluster.kubeconfig, free_port(), log)
    try:
        while await _phases_everywhere(custom, run) < n:
            if time.monotonic() - started > 900:
                raise RuntimeError(f"initial sync of {n} ({mode}) did not finish")
            await asyncio.sleep(1)
        initial_sync = time.monotonic() - started
        await asyncio.sleep(interval)
        before = emulator.calls().get("pai-dsw:ListInstances", 0)
        cycles = 3
        await asyncio.sleep(cycles * interval)
        per_cycle = (emulator.calls().get("pai-dsw:ListInstances", 0) - before) / cycles
        rss = rss_mb(operator.pid)
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        for namespace in namespaces:
            await core.delete_namespace(namespace)
        if mode == "shared":
            await custom.delete_cluster_custom_object(GROUP, VERSION, "clusterproviderconfigs", run)
    await api.close()
    return {
        "mode": mode,
        "n": n,
        "namespaces": spaces,
        "poll_interval_s": interval,
        "accounts_listed": 1 if mode == "shared" else spaces,
        "list_calls_per_cycle": round(per_cycle, 1),
        "list_calls_one_account": -(-n // PAGE),
        "initial_sync_s": round(initial_sync, 1),
        "rss_mb": rss,
    }


async def main_async(n: int, spaces: int, interval: int, output: Path) -> int:
    results = []
    async with local_setup(transition_delay=0) as (cluster, emulator, tmp):
        for mode in ("shared", "per-namespace"):
            print(f"bench: {mode}, N={n} over {spaces} namespaces ...", file=sys.stderr, flush=True)
            results.append(await scenario(mode, n, spaces, interval, cluster, emulator, tmp))
    report(results, output, figures_table(results, "mode"))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--interval", type=int, default=10, help="pollIntervalSeconds")
    parser.add_argument("--output", default="bench-shared-results.json")
    args = parser.parse_args()
    return asyncio.run(main_async(args.n, args.namespaces, args.interval, Path(args.output)))


if __name__ == "__main__":
    sys.exit(main())
