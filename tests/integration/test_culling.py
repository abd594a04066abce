"""IdleCullerPolicy end to end: real API server, the emulator over HTTP with scripted utilization, and
the operator process. Thresholds are minutes long (the emulator's metrics have one point a minute)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.providers.credentials import Credentials
from notebook_operator.providers.factory import Account, connect
from notebook_operator.providers.signers import HuaweiAkSkAuth
from tests.emulator import HW_KEY, PAI_KEY, PROJECT, Emulator
from tests.integration.test_reconcile import notebook, setup_account, start_operator, status_of, wait_phase
from tests.kube import get, wait_for

IDLE = {"cpu": 1, "gpu": 0}


def policy(api: client.ApiClient, namespace: str, name: str, team: str, **spec: Any) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "idlecullerpolicies", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "IdleCullerPolicy", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"team": team}}, **spec},
    })  # fmt: skip


def adopt(api: client.ApiClient, namespace: str, name: str, instance_id: str, team: str, exempt: bool = False) -> None:
    notebook(api, namespace, name, {"instanceId": instance_id})
    metadata: dict[str, Any] = {"labels": {"team": team}}
    if exempt:
        metadata["annotations"] = {"cloudnotebooks.io/cull-exempt": "true"}
    client.CustomObjectsApi(api).patch_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances", name,
                                                                {"metadata": metadata})  # fmt: skip


def seed(cloud: Emulator, name: str, gpu: int = 0, utilization: dict[str, float] | None = None) -> str:
    spec: dict[str, Any] = {"cloud": "pai-dsw", "account": PAI_KEY[0], "name": name, "gpu": gpu}
    if utilization:
        spec["utilization"] = utilization
    instance_id: str = cloud.seed(**spec)["id"]
    return instance_id


def events(api: client.ApiClient, namespace: str, name: str, reason: str) -> list[str]:
    found = client.CoreV1Api(api).list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    return [e.message for e in found.items if e.reason == reason]


class Watchdog:
    """Samples the emulator's status of instances that must never stop, for the whole test."""

    def __init__(self, cloud: Emulator, ids: list[str]) -> None:
        self.cloud, self.ids, self.seen = cloud, ids, set[str]()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.5):
            for instance_id in self.ids:
                self.seen.add(self.cloud.instance(instance_id)["status"])

    def stop(self) -> set[str]:
        self._done.set()
        self._thread.join()
        return self.seen


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.slow(129)
def test_policies_stop_idle_instances_only(api: client.ApiClient, namespace: str, fresh_cloud: Emulator,
                                           operator_env: dict[str, str], tmp_path: Path) -> None:  # fmt: skip
    ids = {
        "idle": seed(fresh_cloud, "idle", utilization=IDLE),
        "busy": seed(fresh_cloud, "busy"),
        "gpu-busy": seed(fresh_cloud, "gpu-busy", gpu=1, utilization={"cpu": 1, "gpu": 80}),
        "exempt": seed(fresh_cloud, "exempt", utilization=IDLE),
        "dry": seed(fresh_cloud, "dry", utilization=IDLE),
        "native": seed(fresh_cloud, "native"),
    }
    seeded_at = time.time()
    watchdog = Watchdog(fresh_cloud, [ids["busy"], ids["gpu-busy"], ids["exempt"], ids["dry"]])
    setup_account(api, namespace, fresh_cloud)
    policy(api, namespace, "ml", "ml", cpuPercent=10, gpuPercent=10, idleMinutes=2, windowMinutes=1)
    policy(api, namespace, "dry", "dry", cpuPercent=10, idleMinutes=1, windowMinutes=1, dryRun=True)
    policy(api, namespace, "native", "native", cpuPercent=10, idleMinutes=1, windowMinutes=1, enforcement="Native")
    for name in ("idle", "busy", "gpu-busy"):
        adopt(api, namespace, name, ids[name], "ml")
    adopt(api, namespace, "exempt", ids["exempt"], "ml", exempt=True)
    adopt(api, namespace, "dry", ids["dry"], "dry")
    adopt(api, namespace, "native", ids["native"], "native")
    op = start_operator(namespace, operator_env, tmp_path / "operator.log")
    try:
        # Native: the operator puts the rule into the cloud, puts it back when removed out of band
        wait_for(lambda: fresh_cloud.instance(ids["native"])["culler"], timeout=30, what="native culler")
        assert fresh_cloud.instance(ids["native"])["culler"]["MaxIdleTimeInMinutes"] == 1
        assert fresh_cloud.calls().get("pai-dsw:CreateIdleInstanceCuller") == 1
        asyncio.run(_delete_culler(fresh_cloud, ids["native"]))  # the operator may restore it at once: count creates
        wait_for(lambda: fresh_cloud.calls().get("pai-dsw:CreateIdleInstanceCuller") == 2, timeout=30,
                 what="culler restored")  # fmt: skip
        assert fresh_cloud.instance(ids["native"])["culler"]["MaxIdleTimeInMinutes"] == 1
        fresh_cloud.admin.put(f"/instances/{ids['native']}/utilization", json=IDLE).raise_for_status()
        native_idle_at = time.time()

        status = wait_phase(api, namespace, "idle", "Stopped", timeout=240)
        stopped_at = at(status["lastAction"]["startedAt"]).timestamp()
        assert stopped_at - seeded_at >= 60  # 2 minutes idle, at the emulator's one-minute metric resolution
        assert status["stoppedBy"].startswith("notebook-operator: IdleCullerPolicy ml: idle")
        assert status["idle"]["culledBy"] == "ml" and "since" not in status["idle"]
        wait_for(lambda: events(api, namespace, "idle", "Culled"), timeout=10, what="Culled Event")

        status = wait_phase(api, namespace, "native", "Stopped", timeout=180)
        assert time.time() - native_idle_at >= 55
        assert status["idle"]["enforcement"] == "Native: PAI-DSW IdleInstanceCuller"
        assert any("IdleInstanceCuller" in e for e in fresh_cloud.instance(ids["native"])["events"])

        dry = wait_for(lambda: events(api, namespace, "dry", "WouldCull"), timeout=30, what="dry-run report")
        assert len(dry) == 1 and dry[0].startswith("would stop dry: idle") and "cpu 1%" in dry[0]
        ml = wait_for(lambda: (s := get(api, "IdleCullerPolicy", namespace, "ml").get("status", {})).get("stopped")
                      == 1 and s, timeout=30, what="policy status")  # fmt: skip
        assert (ml["matched"], ml["exempt"], ml["running"], ml["idle"]) == (3, 1, 2, 0)
        assert ml["estimatedHoursSaved"] >= 0 and ml["lastEvaluationTime"]
        ready = next(c for c in ml["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True" and ready["reason"] == "Evaluated"
        assert status_of(api, namespace, "gpu-busy").get("idle", {}).get("since") is None
        assert status_of(api, namespace, "exempt").get("idle") is None
        time.sleep(5)  # a few more cycles: nothing else is stopped, nothing is stopped twice
    finally:
        seen = watchdog.stop()
        op.kill()
    assert seen == {"Running"}
    assert fresh_cloud.stops() == 1  # the idle one; the native one stopped itself


async def _delete_culler(cloud: Emulator, instance_id: str) -> None:
    provider = connect(Account("pai-dsw", "cn-hangzhou", Credentials(*PAI_KEY), cloud.url))
    try:
        await provider.delete_idle_rule(instance_id)
    finally:
        await provider.aclose()


@pytest.mark.slow(207)
def test_restarted_operator_keeps_the_idle_clock(api: client.ApiClient, namespace: str, fresh_cloud: Emulator,
                                                 operator_env: dict[str, str], tmp_path: Path) -> None:  # fmt: skip
    instance_id = seed(fresh_cloud, "sleepy", utilization=IDLE)
    setup_account(api, namespace, fresh_cloud)
    policy(api, namespace, "ml", "ml", cpuPercent=10, idleMinutes=3, windowMinutes=1)
    adopt(api, namespace, "sleepy", instance_id, "ml")
    first = start_operator(namespace, operator_env, tmp_path / "first.log")
    try:
        since = wait_for(lambda: status_of(api, namespace, "sleepy").get("idle", {}).get("since"), timeout=120,
                         what="idle clock")  # fmt: skip
        time.sleep(20)
        first.stop(signal.SIGKILL)
    finally:
        first.kill()
    assert status_of(api, namespace, "sleepy")["phase"] == "Running"
    second = start_operator(namespace, operator_env, tmp_path / "second.log")
    clocks: set[str] = set()
    try:

        def stopped() -> dict[str, Any] | None:
            status = status_of(api, namespace, "sleepy")
            if status.get("idle", {}).get("since"):
                clocks.add(status["idle"]["since"])
            return status if status.get("phase") == "Stopped" else None

        status = wait_for(stopped, timeout=240, interval=0.5, what="stopped after the restart")
    finally:
        second.kill()
    assert clocks == {since}  # the restart neither reset the clock nor started a new one
    assert (at(status["lastAction"]["startedAt"]) - at(since)).total_seconds() >= 180  # and did not stop early
    assert fresh_cloud.stops() == 1


@pytest.mark.slow(72)
def test_fault_mix_gives_no_wrong_stops(api: client.ApiClient, namespace: str, fresh_cloud: Emulator,
                                        operator_env: dict[str, str], tmp_path: Path) -> None:  # fmt: skip
    faults = {"errorRate": 0.2, "throttleRate": 0.1, "retryAfterSeconds": 0.5, "latencyMs": 40, "pathPattern": "^/api/",
              "seed": 7}  # fmt: skip
    fresh_cloud.admin.put("/faults", json=faults).raise_for_status()
    idle = [seed(fresh_cloud, f"idle-{i}", gpu=i % 2, utilization=IDLE) for i in range(3)]
    busy = [seed(fresh_cloud, "busy-0"), seed(fresh_cloud, "busy-1", gpu=1, utilization={"cpu": 2, "gpu": 60}),
            seed(fresh_cloud, "busy-2", utilization={"cpu": 30, "gpu": 0})]  # fmt: skip
    exempt = seed(fresh_cloud, "exempt", utilization=IDLE)
    watchdog = Watchdog(fresh_cloud, [*busy, exempt])
    setup_account(api, namespace, fresh_cloud)
    policy(api, namespace, "ml", "ml", cpuPercent=10, gpuPercent=10, idleMinutes=1, windowMinutes=1)
    for i, instance_id in enumerate(idle):
        adopt(api, namespace, f"idle-{i}", instance_id, "ml")
    for i, instance_id in enumerate(busy):
        adopt(api, namespace, f"busy-{i}", instance_id, "ml")
    adopt(api, namespace, "exempt", exempt, "ml", exempt=True)
    op = start_operator(namespace, operator_env, tmp_path / "operator.log")
    try:
        for i in range(len(idle)):
            wait_phase(api, namespace, f"idle-{i}", "Stopped", timeout=300)
        time.sleep(5)
    finally:
        seen = watchdog.stop()
        op.kill()
    assert seen == {"Running"}
    assert all(fresh_cloud.instance(i)["status"] == "Running" for i in [*busy, exempt])


def modelarts_notebook(api: client.ApiClient, namespace: str, cloud: Emulator, name: str) -> str:
    """A ModelArts ProviderConfig `hw` and an adopted, idle notebook labelled team=<name>."""
    client.CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": "hw"}, "stringData": {
        "accessKeyId": HW_KEY[0], "accessKeySecret": HW_KEY[1]}})  # fmt: skip
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ProviderConfig", "metadata": {"name": "hw"},
        "spec": {"provider": "modelarts", "region": "cn-north-4", "projectId": PROJECT, "endpoint": cloud.url,
                 "credentialsSecretRef": {"name": "hw"}, "pollIntervalSeconds": 1}})  # fmt: skip
    instance_id: str = cloud.seed(cloud="modelarts", account=PROJECT, name=name, utilization=IDLE)["id"]
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookInstance",
        "metadata": {"name": name, "labels": {"team": name}},
        "spec": {"providerConfigRef": {"name": "hw"}, "instanceId": instance_id}})  # fmt: skip
    return instance_id


def test_native_max_running_hours_on_modelarts_sets_the_lease(api: client.ApiClient, namespace: str,
                                                              fresh_cloud: Emulator, operator_env: dict[str, str],
                                                              tmp_path: Path) -> None:  # fmt: skip
    instance_id = modelarts_notebook(api, namespace, fresh_cloud, "nlp")
    policy(api, namespace, "cap", "nlp", maxRunningHours=2, enforcement="Native")
    op = start_operator(namespace, operator_env, tmp_path / "operator.log")
    try:
        status = wait_for(lambda: (s := status_of(api, namespace, "nlp")).get("idle", {}).get("nativeShutdownAt")
                          and s, timeout=30, what="lease set")  # fmt: skip
        started = at(status["startedAt"])
        assert at(status["idle"]["nativeShutdownAt"]) == started + timedelta(hours=2)
        lease = fresh_cloud.instance(instance_id)["lease"]
        assert lease["type"] == "TIMING"
        lease_end = (lease["create_at"] + lease["duration"]) / 1000
        assert abs(lease_end - (started + timedelta(hours=2)).timestamp()) < 90
        assert status["idle"]["enforcement"] == "Native: ModelArts lease"
        time.sleep(3)  # more cycles: the lease is not renewed again, nothing fails
        assert fresh_cloud.calls().get("modelarts:RenewLease") == 1
        assert events(api, namespace, "nlp", "NativeSyncFailed") == []
    finally:
        op.kill()
    assert fresh_cloud.instance(instance_id)["status"] == "RUNNING"


def test_native_idle_policy_on_modelarts_sets_an_idle_lease(api: client.ApiClient, namespace: str,
                                                            fresh_cloud: Emulator, operator_env: dict[str, str],
                                                            tmp_path: Path) -> None:  # fmt: skip
    """idleMinutes on ModelArts become an IDLE lease (rounded up to its 60-minute minimum), kept in sync and
    restored when changed out of band; the running cap of the same policy stays with the operator."""
    instance_id = modelarts_notebook(api, namespace, fresh_cloud, "cv")
    policy(api, namespace, "idle", "cv", cpuPercent=10, idleMinutes=30, maxRunningHours=8, enforcement="Native")
    op = start_operator(namespace, operator_env, tmp_path / "operator.log")
    try:
        status = wait_for(lambda: (s := status_of(api, namespace, "cv")).get("idle", {}).get("nativeRule") and s,
                          timeout=30, what="IDLE lease set")  # fmt: skip
        lease = fresh_cloud.instance(instance_id)["lease"]
        assert (lease["type"], lease["duration"]) == ("IDLE", 3_600_000)
        enforcement = status["idle"]["enforcement"]
        assert enforcement.startswith("Native: ModelArts IDLE lease + Operator (")
        assert "idleMinutes 30 of idle rounded up to the 60 min lease minimum" in enforcement
        assert "maxRunningHours of idle by the operator (one lease per notebook)" in enforcement
        assert "idle as the cloud judges it (CPU <= 5%, GPU <= 1%, NPU <= 1%), not cpuPercent/gpuPercent" in enforcement
        wait_for(lambda: events(api, namespace, "cv", "NativeCullerSet"), timeout=10, what="NativeCullerSet Event")
        # Changed out of band (e.g. in the console): the operator puts the IDLE lease back.
        with httpx.Client(base_url=f"{fresh_cloud.url}/v1/{PROJECT}",
                          auth=HuaweiAkSkAuth(Credentials(*HW_KEY), PROJECT)) as console:  # fmt: skip
            console.patch(f"/notebooks/{instance_id}/lease", json={"type": "TIMING", "duration": 7_200_000})
        wait_for(lambda: fresh_cloud.calls().get("modelarts:RenewLease") == 3, timeout=30, what="lease restored")
        assert fresh_cloud.instance(instance_id)["lease"]["type"] == "IDLE"
    finally:
        op.kill()
    assert fresh_cloud.instance(instance_id)["status"] == "RUNNING"
