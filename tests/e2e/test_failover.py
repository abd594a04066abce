"""High availability as the chart runs it, under chaos: two replicas started with the argv `helm template`
renders (identical but for local ports) as the chart's ServiceAccount, shutdown timers falling due while
the cloud fails (503s, throttling, dropped connections, latency) - six of them in the same second, stopped in
batches - while the API server is frozen for 20 s,
and while each replica in turn is SIGKILLed (the harness restarts it with the same argv, as a kubelet
would), plus idle, busy and exempt notebooks under an IdleCullerPolicy.

Afterwards every due stop reached the cloud exactly once, no busy or exempt notebook ever left Running,
nothing was started, every status agrees with the cloud and both replicas are alive.
Wall-time cap: 5 minutes (asserted at the end).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from notebook_devtools import localcluster
from tests.e2e.test_chart import ALLOW_EMULATOR, CHART, render, service_account_kubeconfig
from tests.emulator import Emulator, running_emulator
from tests.integration.test_culling import IDLE, Watchdog, adopt, policy, seed
from tests.integration.test_reconcile import setup_account, status_of
from tests.kube import wait_for
from tests.peering import Replica

RELEASE = "ha"
WALL_CAP_S = 300
FAULTS = {"errorRate": 0.15, "statusCode": 503, "throttleRate": 0.1, "retryAfterSeconds": 1, "dropRate": 0.05,
          "latencyMs": 30, "seed": 7}  # fmt: skip
# Seconds after both replicas run: what happens when. Each timer falls due in one of the hard moments.
FAULTS_ON, FREEZE, FREEZE_S, KILL_1, KILL_2, FAULTS_OFF = 3, 22, 20, 55, 90, 115
WAVE_AT, WAVE, BATCH = 45, 6, 4  # a wave: six timers due in the same second, under faults: batches of 4 and 2
TIMERS = {"t-faults": 12, "t-frozen": 30, "t-takeover-1": KILL_1 + 2, "t-takeover-2": KILL_2 + 2, "t-late": 108,
          **{f"t-wave-{k}": WAVE_AT for k in range(WAVE)}}  # fmt: skip


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Emulator]:
    with running_emulator(tmp_path, "--transition-delay", "0.3") as emulator:
        yield emulator


@pytest.fixture
def chart_argv(helm: str, kubeconfig: Path, namespace: str, peering_crds: list[str]) -> Iterator[list[str]]:
    """`helm install` (two replicas, this namespace) for the RBAC and peering object, and the rendered argv."""
    values = ["--set", f"watchNamespaces={{{namespace}}}", "--set", "replicaCount=2", *ALLOW_EMULATOR]
    result = subprocess.run([helm, "install", RELEASE, str(CHART), "--namespace", namespace, "--kubeconfig",
                             str(kubeconfig), *values], capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (deployment,) = [d for d in render(helm, *values) if d["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    yield container["args"][1:]  # after `run`, which OperatorProcess adds
    subprocess.run([helm, "uninstall", RELEASE, "--namespace", namespace, "--kubeconfig", str(kubeconfig)],
                   capture_output=True, check=False)  # fmt: skip


def _shutdown_at(offset: float, t0: float) -> str:
    return datetime.fromtimestamp(t0 + offset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stops(cloud: Emulator, instance_id: str) -> list[dict[str, Any]]:
    """Stops sent for one instance: StopInstance calls and its lines in batched StopInstances calls."""
    entries: list[dict[str, Any]] = cloud.admin.get("/journal", params={"instance": instance_id}).json()["entries"]
    return [e for e in entries if e["route"] in ("pai-dsw:StopInstance", "pai-dsw:StopInstances")]


def _first_call_after(cloud: Emulator, moment: float) -> float | None:
    entries = cloud.admin.get("/journal").json()["entries"]
    return min((e["at"] for e in entries if e["at"] > moment), default=None)


def _agrees(api: client.ApiClient, namespace: str, name: str, cloud: Emulator, instance_id: str) -> bool:
    return bool(status_of(api, namespace, name).get("phase") == cloud.instance(instance_id)["status"])


@pytest.mark.slow(123)
def test_two_replicas_fail_over_under_chaos_and_every_due_stop_happens_once(
    api: client.ApiClient, local_cluster: localcluster.LocalCluster, namespace: str, chart_argv: list[str],
    cloud: Emulator, tmp_path: Path,
) -> None:  # fmt: skip
    began = time.monotonic()
    assert any(a.startswith("--peering=") for a in chart_argv) and not any(
        a.startswith("--priority") for a in chart_argv
    )
    account = f"{RELEASE}-notebook-operator"
    kubeconfig = service_account_kubeconfig(api, local_cluster, namespace, account, tmp_path / "sa.kubeconfig")
    env = {"KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    # The cloud: timers on five running notebooks; idle, busy, busy-GPU and exempt ones under a policy.
    t0 = time.time() + 8  # the replicas are up by then
    ids = {name: seed(cloud, name) for name in TIMERS}
    ids |= {"idle-1": seed(cloud, "idle-1", utilization=IDLE), "idle-2": seed(cloud, "idle-2", utilization=IDLE),
            "busy": seed(cloud, "busy"), "gpu-busy": seed(cloud, "gpu-busy", gpu=1, utilization={"cpu": 1, "gpu": 80}),
            "exempt": seed(cloud, "exempt", utilization=IDLE)}  # fmt: skip
    must_run = [ids["busy"], ids["gpu-busy"], ids["exempt"]]
    watchdog = Watchdog(cloud, must_run)
    setup_account(api, namespace, cloud)
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        "cloudnotebooks.io", "v1alpha1", namespace, "providerconfigs", "pai",
        {"spec": {"pollIntervalSeconds": 2, "rateLimit": 20, "batchSize": BATCH}},
    )  # fmt: skip
    policy(api, namespace, "ml", "ml", cpuPercent=10, gpuPercent=10, idleMinutes=1, windowMinutes=1)
    for name, offset in TIMERS.items():
        adopt(api, namespace, name, ids[name], "timers")
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            "cloudnotebooks.io", "v1alpha1", namespace, "notebookinstances", name,
            {"spec": {"shutdown": {"at": _shutdown_at(offset, t0)}}},
        )  # fmt: skip
    for name in ("idle-1", "idle-2", "busy", "gpu-busy"):
        adopt(api, namespace, name, ids[name], "ml")
    adopt(api, namespace, "exempt", ids["exempt"], "ml", exempt=True)

    replicas = [Replica(0, chart_argv, env, tmp_path)]
    time.sleep(1)  # replica 0 is the older one: it becomes active, replica 1 stands by
    replicas.append(Replica(1, chart_argv, env, tmp_path))
    try:
        wait_for(lambda: sorted(r.active() for r in replicas) == [False, True], timeout=30, what="one active")

        def at(offset: float) -> None:
            time.sleep(max(0.0, t0 + offset - time.time()))

        at(FAULTS_ON)
        cloud.admin.put("/faults", json=FAULTS).raise_for_status()
        at(FREEZE)
        os.kill(local_cluster.apiserver_pid, signal.SIGSTOP)
        try:
            time.sleep(FREEZE_S)
        finally:
            os.kill(local_cluster.apiserver_pid, signal.SIGCONT)
        windows = []
        for kill_at in (KILL_1, KILL_2):
            at(kill_at)
            victim = wait_for(lambda: next((r for r in replicas if r.active()), None), timeout=30, what="an active")
            killed_at = victim.kill_and_restart()
            heir = next(r for r in replicas if r is not victim)
            wait_for(heir.active, timeout=40, what=f"replica {heir.index} takes over")
            first_call = wait_for(lambda k=killed_at: _first_call_after(cloud, k + 1.0), timeout=30,
                                  what="a cloud call by the new active replica")  # fmt: skip
            windows.append((killed_at, first_call))
        at(FAULTS_OFF)
        cloud.admin.delete("/faults").raise_for_status()

        # Every due stop happens; the idle ones are culled.
        for name in [*TIMERS, "idle-1", "idle-2"]:
            cloud.wait_status(ids[name], "Stopped", timeout=max(5.0, WALL_CAP_S - 60 - (time.monotonic() - began)))
        # Statuses agree with the cloud.
        for name, instance_id in ids.items():
            wait_for(lambda n=name, i=instance_id: _agrees(api, namespace, n, cloud, i), timeout=30,
                     what=f"{name} status agrees with the cloud")  # fmt: skip
    finally:
        seen = watchdog.stop()
        alive = [r.alive() for r in replicas]
        for replica in replicas:
            replica.process.kill()

    for name in [*TIMERS, "idle-1", "idle-2"]:
        reached = [e for e in _stops(cloud, ids[name]) if not e["outcome"].startswith("fault:")]
        assert len(reached) == 1, f"{name}: {len(reached)} StopInstance calls reached the cloud: {reached}"
        assert reached[0]["outcome"] in ("ok", "stopped")  # StopInstance, or its line in a StopInstances
    assert seen == {"Running"}, f"a busy or exempt notebook left Running: {seen}"
    assert not cloud.admin.get("/journal", params={"route": "pai-dsw:StartInstance"}).json()["entries"]
    # At least one stop fell due while no replica was active (between the kill and the heir's first call).
    dues = [t0 + offset for offset in TIMERS.values()]
    assert any(start < due < end for start, end in windows for due in dues), (windows, dues)
    assert all(alive), "a replica died on its own"
    assert all(end - start <= 15 + 3 for start, end in windows), f"takeover slower than the peering lifetime: {windows}"
    assert time.monotonic() - began < WALL_CAP_S
