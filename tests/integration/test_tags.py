"""Ownership and chargeback tags on both clouds, read back through the official SDKs; an instance another cluster
manages is refused until the take-ownership annotation says to take it.

Sources of the shapes: alibabacloud_pai_dsw20220101 (CreateInstance Labels, UpdateInstanceLabels, DeleteInstanceLabels
LabelKeys); huaweicloudsdkmodelarts v1 (CreateNotebookTags, DeleteNotebookTags, NotebookResp.tags). Cap: 1 minute.
"""

from __future__ import annotations

import time

from alibabacloud_pai_dsw20220101 import models as dsw
from huaweicloudsdkmodelarts.v1 import ShowNotebookRequest
from kubernetes import client

from notebook_operator.api.meta import GROUP, VERSION
from tests.emulator import PAI_KEY, Emulator
from tests.integration.emulator.test_huawei_sdk import modelarts
from tests.integration.emulator.test_pai_sdk import sdk
from tests.integration.test_culling import adopt, events, modelarts_notebook, policy
from tests.integration.test_reconcile import (
    POLL_S,
    TEMPLATE,
    notebook,
    patch_spec,
    setup_account,
    status_of,
    wait_phase,
)
from tests.kube import wait_for
from tests.operator_process import OperatorProcess

OWNER_KEYS = ("cloudnotebooks.io:cluster", "cloudnotebooks.io:namespace", "cloudnotebooks.io:name")


def pai_labels(cloud: Emulator, instance_id: str) -> dict[str, str]:
    body = sdk(cloud).get_instance(instance_id, dsw.GetInstanceRequest()).body
    return {label.key: label.value for label in body.labels or []}


def modelarts_tags(cloud: Emulator, instance_id: str) -> dict[str, str]:
    response = modelarts(cloud).show_notebook(ShowNotebookRequest(id=instance_id))
    return {tag.key: tag.value for tag in response.tags or []}


def ready_condition(api: client.ApiClient, namespace: str, name: str) -> dict[str, str]:
    conditions = status_of(api, namespace, name).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), {})


def kube_system_uid(api: client.ApiClient) -> str:
    return str(client.CoreV1Api(api).read_namespace("kube-system").metadata.uid)


def test_pai_dsw_tags_created_changed_and_removed(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    setup_account(api, namespace, fresh_cloud)
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "providerconfigs", "pai", {"spec": {"defaultTags": {"cost-center": "cc-7"}}}
    )
    notebook(api, namespace, "tagged", {"template": TEMPLATE, "tags": {"team": "vision", "project": "p1"}})
    instance_id = wait_for(lambda: status_of(api, namespace, "tagged").get("instanceId"), timeout=30, what="created")
    owner = {"cloudnotebooks.io:cluster": kube_system_uid(api), "cloudnotebooks.io:namespace": namespace,
             "cloudnotebooks.io:name": "tagged"}  # fmt: skip
    # With the create itself (CreateInstance Labels), beside the creation's own token label.
    assert {**owner, "team": "vision", "project": "p1"}.items() <= pai_labels(fresh_cloud, instance_id).items()
    wanted = {**owner, "cost-center": "cc-7", "team": "vision", "project": "p1"}  # the account's default, too
    wait_for(lambda: wanted.items() <= pai_labels(fresh_cloud, instance_id).items(), timeout=20, what="labels")
    # A label someone else put on the instance is not the operator's: it stays.
    sdk(fresh_cloud).update_instance_labels(instance_id, dsw.UpdateInstanceLabelsRequest(
        labels=[dsw.UpdateInstanceLabelsRequestLabels(key="owner-note", value="keep")]))  # fmt: skip
    patch_spec(api, namespace, "tagged", {"tags": {"team": "speech", "project": None}})
    after = {**owner, "cost-center": "cc-7", "team": "speech", "owner-note": "keep"}
    ours = lambda: {k: v for k, v in pai_labels(fresh_cloud, instance_id).items() if "/" not in k}  # noqa: E731
    wait_for(lambda: ours() == after, timeout=20, what="labels changed")
    assert status_of(api, namespace, "tagged")["ownedTags"] == {**owner, "cost-center": "cc-7", "team": "speech"}
    calls = fresh_cloud.calls()
    time.sleep(4 * POLL_S)  # tags in order: no more calls for them
    assert fresh_cloud.calls().get("pai-dsw:UpdateInstanceLabels") == calls.get("pai-dsw:UpdateInstanceLabels")
    assert fresh_cloud.calls().get("pai-dsw:DeleteInstanceLabels") == calls.get("pai-dsw:DeleteInstanceLabels") == 1
    assert events(api, namespace, "tagged", "Tagged")


def test_modelarts_gets_its_tags_after_adoption_and_keeps_them_in_sync(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    instance_id = modelarts_notebook(api, namespace, fresh_cloud, "nlp")  # adopted, Manage
    owner = {"cloudnotebooks.io:cluster": kube_system_uid(api), "cloudnotebooks.io:namespace": namespace,
             "cloudnotebooks.io:name": "nlp"}  # fmt: skip
    wait_for(lambda: modelarts_tags(fresh_cloud, instance_id) == owner, timeout=20, what="ownership tags")
    patch_spec(api, namespace, "nlp", {"tags": {"team": "nlp", "budget": "b-1"}})
    wait_for(lambda: modelarts_tags(fresh_cloud, instance_id) == {**owner, "team": "nlp", "budget": "b-1"},
             timeout=20, what="declared tags")  # fmt: skip
    patch_spec(api, namespace, "nlp", {"tags": {"team": "nlp-2", "budget": None}})
    wait_for(lambda: modelarts_tags(fresh_cloud, instance_id) == {**owner, "team": "nlp-2"},
             timeout=20, what="changed and removed")  # fmt: skip
    calls = fresh_cloud.calls()
    assert calls.get("modelarts:DeleteNotebookTags") == 1


def test_an_instance_owned_elsewhere_is_refused_then_taken_with_the_annotation(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    theirs = [{"Key": "cloudnotebooks.io:cluster", "Value": "other-cluster"},
              {"Key": "cloudnotebooks.io:namespace", "Value": "team-b"},
              {"Key": "cloudnotebooks.io:name", "Value": "their-nb"}]  # fmt: skip
    seeded = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="shared", attrs={"Labels": theirs})
    setup_account(api, namespace, fresh_cloud)
    notebook(api, namespace, "mine", {"instanceId": seeded["id"], "desiredState": "Stopped"})
    ready = wait_for(lambda: (c := ready_condition(api, namespace, "mine")).get("reason") == "OwnedElsewhere" and c,
                     timeout=30, what="OwnedElsewhere")  # fmt: skip
    assert ready["status"] == "False" and "team-b/their-nb" in ready["message"] and "other-cluster" in ready["message"]
    time.sleep(4 * POLL_S)
    calls = fresh_cloud.calls()
    assert not {"pai-dsw:StopInstance", "pai-dsw:StopInstances", "pai-dsw:UpdateInstanceLabels"} & calls.keys()
    assert fresh_cloud.instance(seeded["id"])["status"] == "Running"
    assert events(api, namespace, "mine", "OwnedElsewhere")  # said once
    assert len(events(api, namespace, "mine", "OwnedElsewhere")) == 1
    # Told to take it: the poll pass writes our ownership tags and stops it as declared.
    client.CustomObjectsApi(api).patch_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances", "mine",
        {"metadata": {"annotations": {"cloudnotebooks.io/take-ownership": "true"}}})  # fmt: skip
    wait_for(lambda: pai_labels(fresh_cloud, seeded["id"]).get("cloudnotebooks.io:name") == "mine",
             timeout=20, what="ownership taken")  # fmt: skip
    labels = pai_labels(fresh_cloud, seeded["id"])
    assert labels["cloudnotebooks.io:cluster"] == kube_system_uid(api)
    assert labels["cloudnotebooks.io:namespace"] == namespace
    wait_for(lambda: fresh_cloud.instance(seeded["id"])["status"] == "Stopped", timeout=20, what="stopped")
    wait_for(lambda: ready_condition(api, namespace, "mine").get("reason") not in (None, "OwnedElsewhere"),
             timeout=10, what="condition cleared")  # fmt: skip


def test_observe_never_writes_tags(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    seeded = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="watched")
    setup_account(api, namespace, fresh_cloud)
    notebook(api, namespace, "watched", {"instanceId": seeded["id"], "managementPolicy": "Observe"})
    wait_for(lambda: status_of(api, namespace, "watched").get("phase") == "Running", timeout=30, what="Running")
    time.sleep(3 * POLL_S)
    assert "pai-dsw:UpdateInstanceLabels" not in fresh_cloud.calls()
    assert not any(k in pai_labels(fresh_cloud, seeded["id"]) for k in OWNER_KEYS)


def test_a_running_cap_counts_from_the_lifecycle_not_from_the_tag_write(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    """Adopting writes the ownership tags, which moves GmtModifiedTime (the listing's estimate of the start). A
    maxRunningHours of 0.02 (72 s) on an instance running for 2 minutes is due at once: the start is read from
    GetLifecycle, once, before the stop, whether the tag write came first (the policy was seen after the first pass)
    or not (housekeeping never holds back a due stop) - not estimated from the tag write (that would put the stop
    72 s later, past this wait)."""
    setup_account(api, namespace, fresh_cloud)
    seeded = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="long", runningForSeconds=120)["id"]
    policy(api, namespace, "cap", "cap", maxRunningHours=0.02)
    adopt(api, namespace, "long", seeded, "cap")
    status = wait_phase(api, namespace, "long", "Stopped", timeout=40)
    assert "maxRunningHours" in status["stoppedBy"]
    assert fresh_cloud.calls().get("pai-dsw:GetLifecycle") == 1
    journal = fresh_cloud.admin.get("/journal", params={"instance": seeded}).json()["entries"]
    routes = [e["route"] for e in journal]
    stop = next(k for k, route in enumerate(routes) if route in ("pai-dsw:StopInstance", "pai-dsw:StopInstances"))
    assert routes.index("pai-dsw:GetLifecycle") < stop
