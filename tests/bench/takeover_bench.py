"""`make bench` (high availability): how long the work stops when the active replica dies.

Two operator processes with identical arguments (`--peering notebook-operator`, the default lifetime)
watch one namespace with N notebooks of one PAI-DSW account. Each round SIGKILLs the active replica and
measures takeover_s: from the SIGKILL to the standby's first cloud call or status write (its own metrics),
then restarts the killed process with the same arguments, as a kubelet would, and waits for it to stand
by. kopf declares a peer dead `lifetime` seconds after its last keep-alive, which it sends every
lifetime - (5..10) s, so takeover_s lies between about lifetime - 10 s and lifetime, plus one recheck.
Prints a table and writes bench-takeover-results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import IO, Any

from kubernetes_asyncio import client as aclient

from notebook_devtools.localcluster import free_port
from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.reconcile.peering import DEFAULT_LIFETIME_S, DEFAULT_NAME
from tests.bench.harness import api_client, bounded, local_setup, metric, pai_account, phases, start_operator
from tests.emulator import PAI_KEY

ACTIVITY = ("notebook_operator_cloud_api_calls_total", "notebook_operator_status_writes_total")


class Replica:
    def __init__(self, namespace: str, kubeconfig: Path, log_dir: Path, index: int) -> None:
        self.namespace, self.kubeconfig, self.log_dir, self.index = namespace, kubeconfig, log_dir, index
        self.port, self.starts = free_port(), 0
        self.log: IO[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.starts += 1
        self.log = (self.log_dir / f"takeover-replica{self.index}-{self.starts}.log").open("wb")
        self.process = start_operator(self.namespace, self.kubeconfig, self.port, self.log,
                                      peering=["--peering", DEFAULT_NAME])  # fmt: skip

    def active(self) -> bool:
        try:
            return metric(self.port, "notebook_operator_active") == 1
        except OSError:
            return False

    def activity(self) -> float:
        try:
            return sum(metric(self.port, name) for name in ACTIVITY)
        except OSError:
            return -1.0


async def until(check: Any, timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def main_async(n: int, rounds: int, output: Path, log_dir: Path | None) -> int:
    async with local_setup(transition_delay=0) as (cluster, emulator, tmp):
        logs = log_dir or tmp
        namespace = "bench-ha"
        api = await api_client(cluster.kubeconfig)
        custom = aclient.CustomObjectsApi(api)
        ids = emulator.seed_many([{"cloud": "pai-dsw", "account": PAI_KEY[0], "name": f"nb-{k:04d}"} for k in range(n)])
        await pai_account(api, namespace, emulator, interval=2, rate_limit=1000)
        await custom.create_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", {
            "apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": DEFAULT_NAME}})  # fmt: skip
        await bounded([custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookInstance", "metadata": {"name": f"nb-{k:04d}"},
            "spec": {"providerConfigRef": {"name": "pai"}, "instanceId": iid, "managementPolicy": "Observe"}})
            for k, iid in enumerate(ids)], 32)  # fmt: skip
        replicas = [Replica(namespace, cluster.kubeconfig, logs, 0)]
        await asyncio.sleep(1)
        replicas.append(Replica(namespace, cluster.kubeconfig, logs, 1))
        takeovers: list[float] = []
        try:
            await until(lambda: sum(r.active() for r in replicas) == 1, 60, "one active replica")
            while sum(1 for p in (await phases(custom, namespace)).values() if p) < n:
                await asyncio.sleep(0.5)
            for _ in range(rounds):
                active = next(r for r in replicas if r.active())
                standby = next(r for r in replicas if r is not active)
                await asyncio.sleep(3)  # a few quiet cycles, so the kill lands at a random point of the keep-alive
                before = standby.activity()
                active.process.send_signal(signal.SIGKILL)
                killed = time.monotonic()
                active.process.wait()
                await until(lambda s=standby, b=before: s.activity() > b, DEFAULT_LIFETIME_S + 30, "takeover", 0.05)
                takeovers.append(round(time.monotonic() - killed, 2))
                print(f"bench: takeover {takeovers[-1]} s", file=sys.stderr, flush=True)
                active.start()
                await until(lambda a=active: a.process.poll() is None and not a.active() and a.activity() >= 0, 60,
                            "the restarted replica stands by")  # fmt: skip
        finally:
            for replica in replicas:
                replica.process.kill()
                replica.process.wait()
            await api.close()
    result: dict[str, Any] = {
        "peering_lifetime_s": DEFAULT_LIFETIME_S,
        "notebooks": n,
        "rounds": rounds,
        "takeover_s": takeovers,
        "takeover_median_s": statistics.median(takeovers),
        "takeover_max_s": max(takeovers),
    }
    output.write_text(json.dumps(result, indent=2) + "\n")
    print("| figure | value |\n|---|---|")
    for key, value in result.items():
        print(f"| {key} | {value} |")
    print(f"\nwritten to {output}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="notebooks")
    parser.add_argument("--rounds", type=int, default=5, help="kills of the active replica")
    parser.add_argument("--output", default="bench-takeover-results.json")
    parser.add_argument("--log-dir", type=Path)
    args = parser.parse_args()
    return asyncio.run(main_async(args.n, args.rounds, Path(args.output), args.log_dir))


if __name__ == "__main__":
    sys.exit(main())
