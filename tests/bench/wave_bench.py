"""`make bench`: a wave of due stops - N notebooks whose `shutdown.at` is the same moment - plus 100 unrelated
notebooks changed in the cloud (stopped out of band) during the wave.

Runs: PAI-DSW with batched stops (spec.batchSize 50); ModelArts (no batch call). The wave's notebooks are adopted
(Manage), so each needs its ownership tags written (PAI-DSW: one UpdateInstanceLabels per instance): at the default
rate limit most of those writes are still pending when the wave falls due, and wait as housekeeping for what the
stops leave (tag_writes_pending_at_last_stop). With --unbatched also PAI-DSW with batchSize 1 (one instance per
call: what unbatched stops cost, about ten minutes at N=5,000; a comparison only). The account's rateLimit is the
default 10 requests per second, poll interval the default 30 s: a pass may spend 300 calls, less the listing's.
Figures per run:
- stop_calls: StopInstance + StopInstances (+ ModelArts StopNotebook) calls;
- last_stop_sent_s: seconds from the due time to the last stop sent (emulator journal);
- all_stopped_mirrored_s: seconds from the due time until every wave notebook's status says Stopped;
- status_writes_per_stop: the operator's status writes during the wave, per wave notebook;
- unrelated_p50_s / p99_s: propagation of the out-of-band changes made during the wave.
Prints a table and writes bench-wave-results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import watch

from notebook_devtools import localcluster
from notebook_devtools.localcluster import free_port
from notebook_operator.api.meta import GROUP, VERSION
from tests.bench.harness import api_client, bounded, figures_table, local_setup, metric, phases, report, start_operator
from tests.emulator import HW_KEY, PAI_KEY, PROJECT, Emulator

UNRELATED = 100
STOP_ROUTES = ("pai-dsw:StopInstance", "pai-dsw:StopInstances", "modelarts:StopNotebook")


async def _account(api: aclient.ApiClient, namespace: str, emulator: Emulator, cloud: str, interval: int,
                   batch_size: int) -> None:  # fmt: skip
    core, custom = aclient.CoreV1Api(api), aclient.CustomObjectsApi(api)
    key = PAI_KEY if cloud == "pai-dsw" else HW_KEY
    await core.create_namespace({"metadata": {"name": namespace}})
    await core.create_namespaced_secret(namespace, {"metadata": {"name": "keys"}, "stringData": {
        "accessKeyId": key[0], "accessKeySecret": key[1]}})  # fmt: skip
    spec: dict[str, Any] = {"provider": cloud, "region": "cn-hangzhou" if cloud == "pai-dsw" else "cn-north-4",
                            "endpoint": emulator.url, "credentialsSecretRef": {"name": "keys"},
                            "pollIntervalSeconds": interval, "batchSize": batch_size}  # fmt: skip
    if cloud != "pai-dsw":
        spec["projectId"] = PROJECT
    await custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ProviderConfig", "metadata": {"name": "acct"},
        "spec": spec})  # fmt: skip


def sync_allowance(total: int) -> float:
    """Seconds to create the objects and let the operator mirror them all (measured: about 20 s per 1,000)."""
    return 30 + total * 0.03


async def scenario(label: str, cloud: str, n: int, batch_size: int, interval: int, cluster: localcluster.LocalCluster,
                   emulator: Emulator, log_dir: Path) -> dict[str, Any]:  # fmt: skip
    namespace = f"wave-{label}"
    api = await api_client(cluster.kubeconfig)
    custom = aclient.CustomObjectsApi(api)
    emulator.admin.post("/reset").raise_for_status()
    account = PAI_KEY[0] if cloud == "pai-dsw" else PROJECT
    total = n + UNRELATED
    ids: list[str] = []
    for start in range(0, total, 1000):
        ids += emulator.seed_many([{"cloud": cloud, "account": account, "name": f"nb-{k:05d}"}
                                   for k in range(start, min(total, start + 1000))])  # fmt: skip
    await _account(api, namespace, emulator, cloud, interval, batch_size)
    # The wave falls due on a whole minute (as a schedule would) well after the operator's first sync.
    due = (int(time.time() + sync_allowance(total)) // 60 + 1) * 60
    due_text = datetime.fromtimestamp(due, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = [f"nb-{k:05d}" for k in range(total)]

    def body(k: int) -> dict[str, Any]:
        spec: dict[str, Any] = {"providerConfigRef": {"name": "acct"}, "instanceId": ids[k]}
        if k < n:
            spec["shutdown"] = {"at": due_text}
        else:
            spec["managementPolicy"] = "Observe"
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookInstance", "metadata": {"name": names[k]},
                "spec": spec}  # fmt: skip

    await bounded([custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances", body(k))
                   for k in range(total)], 32)  # fmt: skip
    metrics_port = free_port()
    log = (log_dir / f"operator-wave-{label}.log").open("wb")
    operator = start_operator(namespace, cluster.kubeconfig, metrics_port, log)
    try:
        while sum(1 for p in (await phases(custom, namespace)).values() if p) < total:
            await asyncio.sleep(1)
        if time.time() > due - 5:
            raise RuntimeError("the first sync took until the due time: raise the lead")
        await asyncio.sleep(max(0.0, due - 2 - time.time()))
        emulator.admin.delete("/calls").raise_for_status()
        writes_before = metric(metrics_port, "notebook_operator_status_writes_total")
        wave = set(names[:n])
        unrelated = names[n:]
        stopped_at: dict[str, float] = {}
        changed_at: dict[str, float] = {}
        seen_at: dict[str, float] = {}

        async def watcher() -> None:
            while True:  # a watch the API server ends early is opened again (it starts with every object's state)
                w = watch.Watch()
                async with w.stream(custom.list_namespaced_custom_object, GROUP, VERSION, namespace,
                                    "notebookinstances", timeout_seconds=1200) as stream:  # fmt: skip
                    async for event in stream:
                        obj = event["object"]
                        name = obj["metadata"]["name"]
                        if (obj.get("status") or {}).get("phase") != "Stopped":
                            continue
                        if name in wave and name not in stopped_at:
                            stopped_at[name] = time.time()
                        elif name in changed_at and name not in seen_at:
                            seen_at[name] = time.time()
                        if len(stopped_at) == n and len(seen_at) == len(unrelated):
                            return

        watching = asyncio.create_task(watcher())
        stopped = "Stopped" if cloud == "pai-dsw" else "STOPPED"  # each cloud's own word (ModelArts: upper case)
        # The unrelated changes: spread over the first 60 s after the due time.
        rng = random.Random(n)
        await asyncio.sleep(max(0.0, due - time.time()))
        for k, name in enumerate(unrelated):
            await asyncio.sleep(60 / len(unrelated) * rng.random() * 2 if k else 0)
            emulator.admin.put(f"/instances/{ids[n + k]}/status", json={"status": stopped}).raise_for_status()
            changed_at[name] = time.time()
        await asyncio.wait_for(watching, timeout=1200)
        journal = emulator.admin.get("/journal").json()["entries"]
        stop_times = [e["at"] for e in journal if e["route"] in STOP_ROUTES and e["instance"]]
        calls = emulator.calls()
        writes = metric(metrics_port, "notebook_operator_status_writes_total") - writes_before
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        await api.close()
    delays = sorted(seen_at[name] - changed_at[name] for name in changed_at)
    p = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]  # noqa: E731
    return {
        "run": label,
        "n": n,
        "batch_size": batch_size if cloud == "pai-dsw" else "-",
        "stop_calls": sum(calls.get(route, 0) for route in STOP_ROUTES),
        "tag_writes_pending_at_last_stop": (
            n - sum(1 for e in journal if e["route"] == "pai-dsw:UpdateInstanceLabels" and e["at"] <= max(stop_times))
            if cloud == "pai-dsw" and stop_times
            else "-"
        ),
        "last_stop_sent_s": round(max(stop_times) - due, 1) if stop_times else None,
        "all_stopped_mirrored_s": round(max(stopped_at.values()) - due, 1),
        "status_writes_per_stop": round(writes / n, 2),
        "unrelated_p50_s": round(p(0.5), 2),
        "unrelated_p99_s": round(p(0.99), 2),
    }


async def main_async(pai_n: int, modelarts_n: int, interval: int, output: Path, only: list[str],
                     unbatched: bool) -> int:  # fmt: skip
    results = []
    runs = [("pai-batched", "pai-dsw", pai_n, 50), ("pai-unbatched", "pai-dsw", pai_n if unbatched else 0, 1),
            ("modelarts", "modelarts", modelarts_n, 50)]  # fmt: skip
    runs = [run for run in runs if run[2] and (not only or run[0] in only)]
    async with local_setup(transition_delay=0) as (cluster, emulator, tmp):
        for label, cloud, n, batch in runs:
            print(f"bench: wave {label}, N={n} ...", file=sys.stderr, flush=True)
            results.append(await scenario(label, cloud, n, batch, interval, cluster, emulator, tmp))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    report(results, output, figures_table(results, "run"))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pai-n", type=int, default=5000, help="PAI-DSW wave size (0: none)")
    parser.add_argument("--modelarts-n", type=int, default=1000, help="ModelArts wave size (0: none)")
    parser.add_argument("--interval", type=int, default=30, help="pollIntervalSeconds (the CRD's default)")
    parser.add_argument("--only", action="append", default=[], help="run only this one (repeatable): "
                        "pai-batched, pai-unbatched, modelarts")  # fmt: skip
    parser.add_argument("--unbatched", action="store_true", help="also the one-call-per-stop comparison run (about "
                        "ten minutes at N=5,000)")  # fmt: skip
    parser.add_argument("--output", default="bench-wave-results.json")
    args = parser.parse_args()
    return asyncio.run(
        main_async(args.pai_n, args.modelarts_n, args.interval, Path(args.output), args.only, args.unbatched)
    )


if __name__ == "__main__":
    sys.exit(main())
