"""What the cloud knows reaches Kubernetes: a failure's reason (the Ready condition, status.cloudReason, one Event,
the cloud's own events) and the exact time an instance became Running (GetLifecycle), which afterRunning counts from.

The emulator's /fail makes the next start end in the cloud's own failed state, with its ReasonCode and
ReasonMessage (the shapes tests/integration/emulator/test_pai_sdk.py checks with the official SDK). Cap: 1 minute.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kubernetes import client

from tests.emulator import PAI_KEY, Emulator
from tests.integration.test_culling import events
from tests.integration.test_kubectl_plugin import kubectl_notebook
from tests.integration.test_reconcile import POLL_S, condition, notebook, setup_account, status_of
from tests.kube import wait_for
from tests.operator_process import OperatorProcess

FAILURE = {"reasonCode": "InsufficientStock", "reasonMessage": "ecs.gn6i-c4g1.xlarge is out of stock in cn-hangzhou-k",
           "events": ["ResourceAllocating: no stock", "Instance start failed"]}  # fmt: skip
REASON = "InsufficientStock: ecs.gn6i-c4g1.xlarge is out of stock in cn-hangzhou-k"


def test_a_start_that_fails_says_why_in_ready_status_and_one_event(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess, kubeconfig: Path
) -> None:
    seeded = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="no-stock", gpu=1, status="Stopped")
    fresh_cloud.admin.post(f"/instances/{seeded['id']}/fail", json=FAILURE).raise_for_status()
    setup_account(api, namespace, fresh_cloud)
    notebook(api, namespace, "no-stock", {"instanceId": seeded["id"], "desiredState": "Running"})

    wait_for(lambda: (s := status_of(api, namespace, "no-stock")).get("phase") == "Failed" and s,
             timeout=30, what="Failed")  # fmt: skip
    ready = wait_for(lambda: (c := condition(status_of(api, namespace, "no-stock"), "Ready")).get("reason")
                     == "CloudFailed" and c, timeout=10, what="Ready CloudFailed")  # fmt: skip
    assert ready["status"] == "False" and ready["message"] == REASON
    assert status_of(api, namespace, "no-stock")["cloudReason"] == REASON
    wait_for(lambda: events(api, namespace, "no-stock", "CloudFailed"), timeout=10, what="CloudFailed Event")
    # The cloud's own events of the failure (GetInstanceEvents), each an Event of its own, read once.
    posted = wait_for(lambda: len(found := events(api, namespace, "no-stock", "CloudEvent")) == 2 and found,
                      timeout=10, what="CloudEvent Events")  # fmt: skip
    assert sorted(text.split(" ", 1)[1] for text in posted) == sorted(FAILURE["events"])
    time.sleep(5 * POLL_S)  # more polls of the same failure: no second Event, no second read, no second start
    assert events(api, namespace, "no-stock", "CloudFailed") == [REASON]
    assert len(events(api, namespace, "no-stock", "CloudEvent")) == 2
    calls = fresh_cloud.calls()
    assert (calls.get("pai-dsw:StartInstance"), calls.get("pai-dsw:GetInstanceEvents")) == (1, 1)
    # `kubectl notebook why` says it in the cloud's words: its reason, then its events.
    why = kubectl_notebook(kubeconfig, "why", "no-stock", "-n", namespace)
    assert why.returncode == 0, why.stderr
    assert f"Ready=False: CloudFailed - {REASON}" in why.stdout
    assert f"the cloud says: {REASON}" in why.stdout
    assert f"CloudFailed: {REASON}" in why.stdout
    assert all("CloudEvent: " in line for line in why.stdout.splitlines() if "ResourceAllocating: no stock" in line)
    assert "Instance start failed" in why.stdout


def test_a_healthy_account_reads_no_events(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    seeded = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="fine")
    setup_account(api, namespace, fresh_cloud)
    notebook(api, namespace, "fine", {"instanceId": seeded["id"]})
    wait_for(lambda: status_of(api, namespace, "fine").get("phase") == "Running", timeout=30, what="Running")
    time.sleep(5 * POLL_S)
    assert "pai-dsw:GetInstanceEvents" not in fresh_cloud.calls()
    assert "pai-dsw:GetLifecycle" not in fresh_cloud.calls()  # no afterRunning timer: the listing's estimate will do
    assert "cloudReason" not in status_of(api, namespace, "fine")
    assert status_of(api, namespace, "fine")["startedAtSource"] == "GmtModifiedTime"


def test_after_running_counts_from_the_lifecycle_not_the_last_modification(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    """Running for 50 s per GetLifecycle, but modified just now (GmtModifiedTime, the listing's estimate): a 1m
    afterRunning timer falls due 10 s from now, not 60 s from now. The lifecycle is read once for this start."""
    seeded = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="long-running", runningForSeconds=50)
    began = datetime.now(UTC)
    setup_account(api, namespace, fresh_cloud)
    notebook(api, namespace, "long-running", {"instanceId": seeded["id"], "shutdown": {"afterRunning": "1m"}})
    status = wait_for(lambda: (s := status_of(api, namespace, "long-running")).get("startedAtSource") == "GetLifecycle"
                      and s, timeout=30, what="startedAt from GetLifecycle")  # fmt: skip
    started = datetime.fromisoformat(status["startedAt"])
    assert abs((started - (began - timedelta(seconds=50))).total_seconds()) <= 3, status["startedAt"]
    assert datetime.fromisoformat(status["nextShutdownAt"]) == started + timedelta(minutes=1)
    wait_for(lambda: status_of(api, namespace, "long-running").get("phase") == "Stopped", timeout=30, what="stopped")
    assert datetime.now(UTC) < began + timedelta(seconds=45)  # the estimate would have stopped it after 60 s
    assert fresh_cloud.calls().get("pai-dsw:GetLifecycle") == 1
