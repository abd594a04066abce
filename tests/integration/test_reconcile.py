"""The operator end to end: real API server, the emulator over HTTP, and the operator process."""

from __future__ import annotations

import base64
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from notebook_operator.api.meta import GROUP, VERSION
from tests.emulator import PAI_KEY, Emulator
from tests.kube import get, wait_for
from tests.operator_process import OperatorProcess

POLL_S = 1


OPERATOR_UP = "Initial authentication has finished"  # kopf's, once the process is started and logged in


def start_operator(namespace: str, env: dict[str, str], log: Path) -> OperatorProcess:
    """Started and logged in: the tests' deadlines measure what the operator does, not how long a loaded
    machine takes to start a Python process (seen: 20 s with eight test workers on 2 cores)."""
    args = ["--standalone", "--namespace", namespace, "--liveness", "", "--metrics-port", "0"]
    op = OperatorProcess(args, env, log)
    deadline = time.monotonic() + 90
    while not op.saw(OPERATOR_UP):
        if op.proc.poll() is not None or time.monotonic() > deadline:
            op.kill()
            raise AssertionError("the operator did not start:\n" + "".join(op.lines[-20:]))
        time.sleep(0.1)
    return op


def setup_account(api: client.ApiClient, namespace: str, cloud: Emulator, secret: tuple[str, str] = PAI_KEY,
                  name: str = "pai") -> None:  # fmt: skip
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        {"metadata": {"name": name}, "data": {"accessKeyId": base64.b64encode(secret[0].encode()).decode(),
                                               "accessKeySecret": base64.b64encode(secret[1].encode()).decode()}},
    )  # fmt: skip
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ProviderConfig", "metadata": {"name": name},
        "spec": {"provider": "pai-dsw", "region": "cn-hangzhou", "endpoint": cloud.url,
                 "credentialsSecretRef": {"name": name}, "pollIntervalSeconds": POLL_S},
    })  # fmt: skip


def notebook(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookInstance", "metadata": {"name": name},
            "spec": {"providerConfigRef": {"name": "pai"}, **spec}}  # fmt: skip
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "notebookinstances", body
    )
    return created


def status_of(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = get(api, "NotebookInstance", namespace, name).get("status") or {}
    return status


def wait_phase(api: client.ApiClient, namespace: str, name: str, phase: str, timeout: float = 30) -> dict[str, Any]:
    return wait_for(
        lambda: (s := status_of(api, namespace, name)).get("phase") == phase and s,
        timeout=timeout, what=f"{name} phase {phase}",
    )  # fmt: skip


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == type_)


def patch_spec(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "notebookinstances", name, {"spec": spec}
    )


TEMPLATE = {"name": "nb", "image": "registry/img:1", "instanceType": "ecs.c6.large"}


def test_adopt_mirrors_status_and_out_of_band_changes(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    seeded = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="existing", gpu=1)
    setup_account(api, namespace, fresh_cloud)
    notebook(api, namespace, "adopted", {"instanceId": seeded["id"], "managementPolicy": "Observe"})
    status = wait_phase(api, namespace, "adopted", "Running")
    assert status["instanceId"] == seeded["id"] and status["provider"] == "pai-dsw"
    assert status["urls"]["jupyterLab"] and status["resources"]["gpu"] == 1
    assert condition(status, "Ready")["status"] == "True"
    fresh_cloud.admin.put(f"/instances/{seeded['id']}/status", json={"status": "Stopped"}).raise_for_status()
    status = wait_phase(api, namespace, "adopted", "Stopped", timeout=10)
    assert status["cloudStatus"] == "Stopped"
    assert fresh_cloud.calls().get("pai-dsw:StartInstance", 0) == 0  # Observe never acts
    pc = get(api, "ProviderConfig", namespace, "pai")["status"]
    assert condition(pc, "Ready")["status"] == "True" and pc["instanceCount"] == 1


@pytest.mark.slow(25)
def test_create_stop_start(api: client.ApiClient, namespace: str, fresh_cloud: Emulator,
                           operator: OperatorProcess) -> None:  # fmt: skip
    setup_account(api, namespace, fresh_cloud)
    notebook(api, namespace, "made", {"template": TEMPLATE, "desiredState": "Running"})
    status = wait_phase(api, namespace, "made", "Running")
    assert status["lastAction"]["action"] == "create" and status["lastAction"]["state"] == "Succeeded"
    assert fresh_cloud.calls()["pai-dsw:CreateInstance"] == 1
    patch_spec(api, namespace, "made", {"desiredState": "Stopped"})
    wait_phase(api, namespace, "made", "Stopped")
    patch_spec(api, namespace, "made", {"desiredState": "Running"})
    wait_phase(api, namespace, "made", "Running")
    status = wait_for(lambda: (s := status_of(api, namespace, "made")).get("observedGeneration") == 3 and s,
                      timeout=20, what="generation 3 handled")  # fmt: skip
    assert condition(status, "Ready")["status"] == "True"
    calls = fresh_cloud.calls()
    assert (calls["pai-dsw:CreateInstance"], calls["pai-dsw:StopInstance"], calls["pai-dsw:StartInstance"]) == (1, 1, 1)


@pytest.mark.slow(45)
def test_an_instance_type_the_region_does_not_offer_stalls_with_the_offered_types(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    setup_account(api, namespace, fresh_cloud)
    notebook(api, namespace, "typo", {"template": {**TEMPLATE, "instanceType": "ecs.g6.xlarg"}})
    status = wait_for(lambda: (s := status_of(api, namespace, "typo")).get("conditions") and
                      condition(s, "Stalled")["status"] == "True" and s, timeout=30, what="Stalled")  # fmt: skip
    stalled = condition(status, "Stalled")
    assert stalled["reason"] == "InstanceTypeNotOffered"
    assert "ecs.g6.xlarg is not offered" in stalled["message"] and "ecs.g6.xlarge" in stalled["message"]
    assert status["lastAction"]["state"] == "Failed"
    assert "pai-dsw:CreateInstance" not in fresh_cloud.calls()  # refused before any create
    patch_spec(api, namespace, "typo", {"template": {**TEMPLATE, "instanceType": "ecs.g6.xlarge"}})
    wait_phase(api, namespace, "typo", "Running", timeout=60)  # the next try (30 s) uses the fixed spec


@pytest.mark.slow(63)
def test_shutdown_at_and_schedule(api: client.ApiClient, namespace: str, fresh_cloud: Emulator,
                                  operator: OperatorProcess) -> None:  # fmt: skip
    setup_account(api, namespace, fresh_cloud)
    notebook(api, namespace, "timed", {"template": {**TEMPLATE, "name": "timed"}, "desiredState": "Running"})
    notebook(api, namespace, "cron", {"template": {**TEMPLATE, "name": "cron"}, "desiredState": "Running",
                                      "shutdown": {"schedule": "* * * * *", "timeZone": "Asia/Shanghai"}})  # fmt: skip
    wait_phase(api, namespace, "timed", "Running")
    at = (datetime.now(UTC) + timedelta(seconds=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch_spec(api, namespace, "timed", {"shutdown": {"at": at}})
    running = wait_for(lambda: (s := status_of(api, namespace, "timed")).get("nextShutdownAt") and s, timeout=10)
    assert running["nextShutdownAt"] == at and running["nextShutdownReason"].startswith("at ")
    stopped = wait_phase(api, namespace, "timed", "Stopped", timeout=30)
    assert stopped["lastAction"]["action"] == "stop" and "shutdown at" in stopped["lastAction"]["reason"]
    assert stopped["stoppedBy"].startswith("notebook-operator: shutdown")
    assert condition(stopped, "Ready")["status"] == "True"  # a scheduled stop is the declared state
    assert get(api, "NotebookInstance", namespace, "timed")["spec"]["desiredState"] == "Running"  # spec untouched
    cron = wait_phase(api, namespace, "cron", "Stopped", timeout=75)  # the next whole minute
    assert "schedule" in cron["lastAction"]["reason"]
    time.sleep(3 * POLL_S)
    assert status_of(api, namespace, "timed")["phase"] == "Stopped"  # not started again
    assert fresh_cloud.stops() == 2 and "pai-dsw:StartInstance" not in fresh_cloud.calls()
    patch_spec(api, namespace, "timed", {"shutdown": None})  # a spec change: desiredState applies again
    wait_phase(api, namespace, "timed", "Running")


@pytest.mark.parametrize("policy", ["Delete", "Orphan"])
def test_delete_policies(api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess,
                         policy: str) -> None:  # fmt: skip
    setup_account(api, namespace, fresh_cloud)
    notebook(api, namespace, "doomed", {"template": TEMPLATE, "desiredState": "Running", "deletionPolicy": policy})
    instance_id = wait_phase(api, namespace, "doomed", "Running")["instanceId"]
    client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances",
                                                                  "doomed")  # fmt: skip

    def gone() -> bool:
        try:
            get(api, "NotebookInstance", namespace, "doomed")
        except ApiException as e:
            return e.status == 404
        return False

    wait_for(gone, timeout=30, what="the NotebookInstance to be deleted")
    still_there = fresh_cloud.admin.get(f"/instances/{instance_id}").status_code == 200
    assert still_there is (policy == "Orphan")


@pytest.mark.parametrize(
    ("secret", "data", "reason"),
    [
        (None, None, "SecretNotFound"),
        ("pai", {"accessKeyId": PAI_KEY[0]}, "SecretKeyMissing"),
        ("pai", {"accessKeyId": PAI_KEY[0], "accessKeySecret": "not-the-secret"}, "CredentialsRefused"),
    ],
)
def test_bad_secret_stalls_with_reason(api: client.ApiClient, namespace: str, fresh_cloud: Emulator,
                                       operator: OperatorProcess, secret: str | None, data: dict[str, str] | None,
                                       reason: str) -> None:  # fmt: skip
    if secret and data:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        client.CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": secret}, "data": encoded})
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ProviderConfig", "metadata": {"name": "pai"},
        "spec": {"provider": "pai-dsw", "region": "cn-hangzhou", "endpoint": fresh_cloud.url,
                 "credentialsSecretRef": {"name": "pai"}, "pollIntervalSeconds": POLL_S},
    })  # fmt: skip

    def stalled() -> dict[str, Any] | None:
        status = get(api, "ProviderConfig", namespace, "pai").get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        return conditions.get("Stalled") if conditions.get("Stalled", {}).get("status") == "True" else None

    stalled_condition = wait_for(stalled, timeout=20, what="ProviderConfig Stalled")
    assert stalled_condition["reason"] == reason
    assert "not-the-secret" not in stalled_condition["message"]

    def posted() -> list[Any] | None:  # Events follow the status write they report
        found = client.CoreV1Api(api).list_namespaced_event(namespace).items
        return found if any(e.reason == reason for e in found) else None

    events = wait_for(posted, timeout=10, what=f"{reason} Event")
    assert all("not-the-secret" not in (e.message or "") for e in events)


def test_missing_instance_is_reported_not_recreated(api: client.ApiClient, namespace: str, fresh_cloud: Emulator,
                                                    operator: OperatorProcess) -> None:  # fmt: skip
    setup_account(api, namespace, fresh_cloud)
    seeded = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="short-lived")
    notebook(api, namespace, "adopted", {"instanceId": seeded["id"], "desiredState": "Running"})
    wait_phase(api, namespace, "adopted", "Running")
    fresh_cloud.admin.delete(f"/instances/{seeded['id']}").raise_for_status()
    status = wait_phase(api, namespace, "adopted", "Deleted", timeout=10)
    assert condition(status, "Stalled")["reason"] == "InstanceNotFound"
    assert "pai-dsw:CreateInstance" not in fresh_cloud.calls()


@pytest.mark.parametrize("moment", ["create", "stop"])
@pytest.mark.slow(25)
def test_sigkill_mid_action_then_restart_acts_once(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator_env: dict[str, str], tmp_path: Path,
    moment: str,
) -> None:  # fmt: skip
    setup_account(api, namespace, fresh_cloud)
    first = start_operator(namespace, operator_env, tmp_path / "first.log")
    try:
        if moment == "stop":
            notebook(api, namespace, "victim", {"template": TEMPLATE, "desiredState": "Running"})
            wait_phase(api, namespace, "victim", "Running")
        pattern = "^/api/v2/instances$" if moment == "create" else "/stop$"
        fresh_cloud.admin.put("/faults", json={"latencyMs": 3000, "pathPattern": pattern}).raise_for_status()
        if moment == "create":
            notebook(api, namespace, "victim", {"template": TEMPLATE, "desiredState": "Running"})
        else:
            patch_spec(api, namespace, "victim", {"desiredState": "Stopped"})
        time.sleep(1.5)  # the call is in flight, held by the emulator's latency
        first.stop(signal.SIGKILL)
    finally:
        first.kill()
    fresh_cloud.admin.delete("/faults").raise_for_status()
    second = start_operator(namespace, operator_env, tmp_path / "second.log")
    try:
        wait_phase(api, namespace, "victim", "Running" if moment == "create" else "Stopped", timeout=40)
        time.sleep(3 * POLL_S)
    finally:
        second.kill()
    sent = fresh_cloud.calls()["pai-dsw:CreateInstance"] if moment == "create" else fresh_cloud.stops()
    assert sent == 1
    assert fresh_cloud.admin.get("/instances").json()["total"] == 1
