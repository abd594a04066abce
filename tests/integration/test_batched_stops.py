"""Batched stops on PAI-DSW against the real API server and the emulator over HTTP: the stops one poll pass decides
go out through StopInstances, at most spec.batchSize per call, each notebook claimed first and given its own
outcome; a refused member is PermissionDenied alone, a batch that fails whole falls back to StopInstance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubernetes import client

from notebook_operator.api.meta import GROUP, VERSION
from tests.emulator import PAI_KEY, Emulator
from tests.integration.test_culling import events
from tests.integration.test_permissions import account_condition
from tests.integration.test_reconcile import notebook, setup_account, status_of, wait_phase
from tests.kube import wait_for
from tests.operator_process import OperatorProcess


def _due_soon(seconds: float = 6) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _account_ready(api: client.ApiClient, namespace: str) -> None:
    """Before the notebooks: their spec passes (on creation) then find the account connected and are done long
    before the stops fall due, so the stops are the poll pass's."""
    wait_for(lambda: account_condition(api, namespace, "Ready").get("status") == "True", timeout=30, what="Ready")


def _member_lines(cloud: Emulator, instance_id: str) -> list[str]:
    entries = cloud.admin.get("/journal", params={"route": "pai-dsw:StopInstances", "instance": instance_id}).json()
    return [e["outcome"] for e in entries["entries"]]


def test_a_wave_goes_out_in_batches_and_a_refused_member_is_refused_alone(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    """Wall-time cap: 1 minute (about 10 s)."""
    setup_account(api, namespace, fresh_cloud)
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "providerconfigs", "pai", {"spec": {"batchSize": 2}}
    )
    ids = {f"w{k}": fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name=f"w{k}")["id"] for k in range(5)}
    fresh_cloud.admin.put("/denied-instances", json={"ids": [ids["w4"]]}).raise_for_status()
    _account_ready(api, namespace)
    due = _due_soon()
    for name, instance_id in ids.items():
        notebook(api, namespace, name, {"instanceId": instance_id, "shutdown": {"at": due}})
    for name in ("w0", "w1", "w2", "w3"):
        status = wait_phase(api, namespace, name, "Stopped", timeout=40)
        assert status["lastAction"]["state"] == "Succeeded" and status["lastAction"]["action"] == "stop"
    refused = wait_for(lambda: (s := status_of(api, namespace, "w4")).get("lastAction", {}).get("state") == "Failed"
                       and s["lastAction"], timeout=30, what="w4's stop refused")  # fmt: skip
    assert "AccessDenied" in refused["message"]
    wait_for(lambda: events(api, namespace, "w4", "PermissionDenied"), timeout=10, what="w4's PermissionDenied Event")
    operator.kill()  # the counts below stay still
    assert fresh_cloud.instance(ids["w4"])["status"] == "Running"
    calls = fresh_cloud.calls()
    for name in ("w0", "w1", "w2", "w3"):
        assert _member_lines(fresh_cloud, ids[name]) == ["stopped"]  # each exactly once
    refusals = _member_lines(fresh_cloud, ids["w4"])
    assert set(refusals) == {"denied"}  # a failed stop is tried again each pass, alone in its batch
    # The wave: ceil(5 / 2) calls; then one per retry of the refused one. No single StopInstance.
    assert calls["pai-dsw:StopInstances"] == 3 + len(refusals) - 1 and "pai-dsw:StopInstance" not in calls
    assert not events(api, namespace, "w0", "PermissionDenied")


def test_a_batch_that_fails_whole_falls_back_to_single_stops(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    """Wall-time cap: 2 minutes (about 30 s: the failing batch is retried within its budget first)."""
    batch_path = "^/api/v2/batch/instances/stop$"
    fresh_cloud.admin.put("/faults", json={"errorRate": 1.0, "statusCode": 503, "pathPattern": batch_path})
    setup_account(api, namespace, fresh_cloud)
    ids = {f"f{k}": fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name=f"f{k}")["id"] for k in range(2)}
    _account_ready(api, namespace)
    due = _due_soon()
    for name, instance_id in ids.items():
        notebook(api, namespace, name, {"instanceId": instance_id, "shutdown": {"at": due}})
    for name in ids:
        wait_phase(api, namespace, name, "Stopped", timeout=90)
    calls = fresh_cloud.calls()
    assert calls.get("pai-dsw:StopInstance") == 2  # one single stop each, on the pass after the batch failed
    for instance_id in ids.values():
        assert not _member_lines(fresh_cloud, instance_id)  # the batch never reached the cloud's handler
        assert fresh_cloud.stops(instance_id) == 1
