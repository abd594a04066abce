"""What the cloud says about a failure reaches Kubernetes: the Ready condition, status.cloudReason, one Event.

The emulator's /fail makes the next start end in the cloud's own failed state, with its ReasonCode and
ReasonMessage (the shapes tests/integration/emulator/test_pai_sdk.py checks with the official SDK). Cap: 1 minute.
"""

from __future__ import annotations

import time

from kubernetes import client

from tests.emulator import PAI_KEY, Emulator
from tests.integration.test_culling import events
from tests.integration.test_reconcile import POLL_S, condition, notebook, setup_account, status_of
from tests.kube import wait_for
from tests.operator_process import OperatorProcess

FAILURE = {"reasonCode": "InsufficientStock", "reasonMessage": "ecs.gn6i-c4g1.xlarge is out of stock in cn-hangzhou-k",
           "events": ["ResourceAllocating: no stock", "Instance start failed"]}  # fmt: skip
REASON = "InsufficientStock: ecs.gn6i-c4g1.xlarge is out of stock in cn-hangzhou-k"


def test_a_start_that_fails_says_why_in_ready_status_and_one_event(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
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


def test_a_healthy_account_reads_no_events(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    seeded = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="fine")
    setup_account(api, namespace, fresh_cloud)
    notebook(api, namespace, "fine", {"instanceId": seeded["id"]})
    wait_for(lambda: status_of(api, namespace, "fine").get("phase") == "Running", timeout=30, what="Running")
    time.sleep(5 * POLL_S)
    assert "pai-dsw:GetInstanceEvents" not in fresh_cloud.calls()
    assert "cloudReason" not in status_of(api, namespace, "fine")
