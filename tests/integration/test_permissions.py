"""A missing cloud permission, as the operator reports it: a refused listing stalls the ProviderConfig with
reason PermissionDenied, a refused optional read is named in its condition and an Event, and a refused stop
says so on the NotebookInstance. The emulator refuses operations per access key as a RAM/IAM policy would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubernetes import client

from tests.emulator import PAI_KEY, Emulator
from tests.integration.test_culling import IDLE, adopt, events, policy, seed
from tests.integration.test_reconcile import notebook, setup_account, status_of
from tests.kube import get, wait_for
from tests.operator_process import OperatorProcess


def deny(cloud: Emulator, *operations: str) -> None:
    cloud.admin.put("/permissions", json={"accessKeyId": PAI_KEY[0], "deny": list(operations)}).raise_for_status()


def account_condition(api: client.ApiClient, namespace: str, type_: str) -> dict[str, str]:
    """The condition, or {} before the first poll."""
    conditions = (get(api, "ProviderConfig", namespace, "pai").get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


def test_a_refused_listing_stalls_the_account(api: client.ApiClient, namespace: str, fresh_cloud: Emulator,
                                              operator: OperatorProcess) -> None:  # fmt: skip
    deny(fresh_cloud, "pai-dsw:ListInstances")
    setup_account(api, namespace, fresh_cloud)
    stalled = wait_for(lambda: account_condition(api, namespace, "Stalled"), timeout=30, what="Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "PermissionDenied")
    assert "ListInstances" in stalled["message"] and "Forbidden.RAM" in stalled["message"]
    fresh_cloud.admin.delete("/permissions").raise_for_status()  # granted: it recovers by itself
    wait_for(lambda: account_condition(api, namespace, "Ready").get("status") == "True", timeout=60, what="Ready")


def test_refused_metrics_and_a_refused_stop_are_reported(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    deny(fresh_cloud, "pai-dsw:GetInstanceMetrics", "pai-dsw:StopInstance", "pai-dsw:StopInstances")
    idle_id, timed_id = seed(fresh_cloud, "idle", utilization=IDLE), seed(fresh_cloud, "timed")
    setup_account(api, namespace, fresh_cloud)
    policy(api, namespace, "ml", "ml", cpuPercent=10, idleMinutes=5, windowMinutes=1)
    adopt(api, namespace, "idle", idle_id, "ml")
    soon = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    notebook(api, namespace, "timed", {"instanceId": timed_id, "shutdown": {"at": soon}})
    ready = wait_for(lambda: "refused" in (r := account_condition(api, namespace, "Ready")).get("message", "") and r,
                     timeout=30, what="refusal named")  # fmt: skip
    assert ready["status"] == "True"  # the account works; one optional read is not allowed
    assert ready["message"].startswith("refused (PermissionDenied): pai-dsw GetInstanceMetrics: Forbidden.RAM")
    wait_for(lambda: events(api, namespace, "pai", "PermissionDenied"), timeout=10, what="PermissionDenied Event")
    action = wait_for(lambda: (s := status_of(api, namespace, "timed")).get("lastAction", {}).get("state") == "Failed"
                      and s["lastAction"], timeout=30, what="stop refused")  # fmt: skip
    assert "Forbidden.RAM" in action["message"] and action["action"] == "stop"
    wait_for(lambda: events(api, namespace, "timed", "PermissionDenied"), timeout=10, what="the stop's Event")
    assert len(events(api, namespace, "pai", "PermissionDenied")) == 1  # once, not every cycle
    assert fresh_cloud.instance(timed_id)["status"] == "Running"
