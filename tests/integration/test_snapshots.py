"""NotebookSnapshot: saved in the cloud once, Ready, the image of a new notebook, and deleted (or kept) with the
resource; read back through the official SDKs.

Sources of the shapes: alibabacloud_pai_dsw20220101 (CreateInstanceSnapshot, GetInstanceSnapshot,
ListInstanceSnapshot, DeleteInstanceSnapshot); huaweicloudsdkmodelarts v1 (CreateImage `create-image`, ShowImage,
ListImage, DeleteImage; ImageResponse.status). Cap: 1 minute.
"""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_pai_dsw20220101 import models as dsw
from alibabacloud_tea_openapi.exceptions import ClientException
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import CreateImageRequest, ImageCreateReq, ShowImageRequest
from kubernetes import client

from notebook_operator.api.meta import GROUP, VERSION
from tests.emulator import PAI_KEY, Emulator
from tests.integration.emulator.test_huawei_sdk import modelarts
from tests.integration.emulator.test_pai_sdk import sdk
from tests.integration.test_culling import adopt, events, modelarts_notebook, policy
from tests.integration.test_reconcile import TEMPLATE, notebook, setup_account, status_of, wait_phase
from tests.kube import get, wait_for
from tests.operator_process import OperatorProcess


def snapshot(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookSnapshot", "metadata": {"name": name}, "spec": spec}
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "notebooksnapshots", body)


def snapshot_status(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = get(api, "NotebookSnapshot", namespace, name).get("status") or {}
    return status


def delete_snapshot(api: client.ApiClient, namespace: str, name: str) -> None:
    client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "notebooksnapshots", name)


def gone(api: client.ApiClient, namespace: str, name: str) -> bool:
    try:
        get(api, "NotebookSnapshot", namespace, name)
    except client.ApiException as e:
        return e.status == 404
    return False


def test_pai_dsw_snapshot_saved_used_by_a_new_notebook_and_deleted(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    setup_account(api, namespace, fresh_cloud)
    # A notebook whose template starts from a snapshot not saved yet: refused, nothing created.
    notebook(api, namespace, "from-env", {"template": {**{k: v for k, v in TEMPLATE.items() if k != "image"},
             "name": "from-env", "imageFrom": {"snapshotRef": {"name": "env"}}}})  # fmt: skip
    ready = wait_for(lambda: next((c for c in status_of(api, namespace, "from-env").get("conditions") or []
                                   if c["type"] == "Ready" and c["reason"] == "SnapshotNotReady"), None),
                     timeout=20, what="SnapshotNotReady")  # fmt: skip
    assert "NotebookSnapshot env is not found" in ready["message"]
    assert fresh_cloud.calls().get("pai-dsw:CreateInstance") is None

    notebook(api, namespace, "work", {"template": TEMPLATE})
    wait_phase(api, namespace, "work", "Running")
    snapshot(api, namespace, "env", {"notebookRef": {"name": "work"}, "imageUrl": "registry.local/team/env:v1",
                                     "excludePaths": ["/mnt/data"]})  # fmt: skip
    status = wait_for(lambda: (s := snapshot_status(api, namespace, "env")).get("phase") == "Ready" and s,
                      timeout=30, what="snapshot Ready")  # fmt: skip
    assert status["imageUrl"] == "registry.local/team/env:v1" and status["snapshotId"].startswith("snp-")
    assert status["account"] == "ProviderConfig/pai"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Ready": "True", "Reconciling": "False",
                                                                      "Stalled": "False"}  # fmt: skip
    # The cloud's own view, through the official SDK: the name it was asked for, the paths left out.
    work_id = status_of(api, namespace, "work")["instanceId"]
    body = sdk(fresh_cloud).get_instance_snapshot(work_id, status["snapshotId"]).body
    assert isinstance(body, dsw.GetInstanceSnapshotResponseBody)
    assert (body.snapshot_name, body.image_url, body.exclude_paths) == (status["cloudName"], status["imageUrl"],
                                                                         ["/mnt/data"])  # fmt: skip
    assert fresh_cloud.calls()["pai-dsw:CreateInstanceSnapshot"] == 1  # asked once
    assert events(api, namespace, "env", "SnapshotReady")

    # Now the waiting notebook is created from the snapshot's image.
    created = wait_phase(api, namespace, "from-env", "Running")
    new = sdk(fresh_cloud).get_instance(created["instanceId"], dsw.GetInstanceRequest()).body
    assert new.image_url == "registry.local/team/env:v1"

    delete_snapshot(api, namespace, "env")  # deletionPolicy Delete (the default): the cloud snapshot goes too
    wait_for(lambda: gone(api, namespace, "env"), timeout=20, what="snapshot resource deleted")
    with pytest.raises(ClientException):
        sdk(fresh_cloud).get_instance_snapshot(work_id, status["snapshotId"])


def test_modelarts_image_found_again_by_name_and_retained(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    instance_id = modelarts_notebook(api, namespace, fresh_cloud, "cv")
    wait_phase(api, namespace, "cv", "Running")
    # An image of that name and tag made before (by an operator that died before recording it): found again,
    # create-image is not called a second time.
    earlier = modelarts(fresh_cloud).create_image(
        CreateImageRequest(id=instance_id, body=ImageCreateReq(name="cv-env", tag="v1", namespace="team"))
    )
    snapshot(api, namespace, "cv-env", {"notebookRef": {"name": "cv"}, "imageName": "cv-env", "imageTag": "v1",
                                        "imageNamespace": "team", "deletionPolicy": "Retain"})  # fmt: skip
    status = wait_for(lambda: (s := snapshot_status(api, namespace, "cv-env")).get("phase") == "Ready" and s,
                      timeout=30, what="image Ready")  # fmt: skip
    assert status["imageId"] == earlier.id
    assert status["imageUrl"].endswith("/team/cv-env:v1")
    assert fresh_cloud.calls()["modelarts:CreateImage"] == 1  # the SDK's, above
    delete_snapshot(api, namespace, "cv-env")
    wait_for(lambda: gone(api, namespace, "cv-env"), timeout=20, what="resource deleted")
    shown = modelarts(fresh_cloud).show_image(ShowImageRequest(id=earlier.id))  # Retain: the image stays
    assert shown.status == "ACTIVE"


def test_a_snapshot_of_a_stopped_notebook_waits_and_a_wrong_cloud_field_fails(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    instance_id = modelarts_notebook(api, namespace, fresh_cloud, "nlp")
    wait_phase(api, namespace, "nlp", "Running")
    snapshot(api, namespace, "wrong", {"notebookRef": {"name": "nlp"}, "imageUrl": "registry.local/x/y:1"})
    failed = wait_for(lambda: (s := snapshot_status(api, namespace, "wrong")).get("phase") == "Failed" and s,
                      timeout=20, what="Failed")  # fmt: skip
    assert "set spec.imageName" in failed["reason"]
    fresh_cloud.admin.put(f"/instances/{instance_id}/status", json={"status": "STOPPED"}).raise_for_status()
    wait_phase(api, namespace, "nlp", "Stopped")
    snapshot(api, namespace, "later", {"notebookRef": {"name": "nlp"}, "imageName": "nlp-env", "imageTag": "v1"})
    pending = wait_for(lambda: (s := snapshot_status(api, namespace, "later")).get("reason") and s,
                       timeout=20, what="Pending with a reason")  # fmt: skip
    assert pending["phase"] == "Pending" and "to be Running" in pending["reason"]
    assert "modelarts:CreateImage" not in fresh_cloud.calls()
    with pytest.raises(ClientRequestException):  # nothing was made in the cloud
        modelarts(fresh_cloud).show_image(ShowImageRequest(id="not-made"))


def test_a_cull_with_snapshot_before_stop_saves_first_then_stops(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator: OperatorProcess
) -> None:
    """A running cap of maxRunningHours 0.002 (7.2 s), due soon after adoption (PAI-DSW's estimate of the start,
    GmtModifiedTime, moves when the ownership tags are written: it errs late). The stop waits for the
    NotebookSnapshot the cull makes, then says it was saved first."""
    setup_account(api, namespace, fresh_cloud)
    saved = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="saved", runningForSeconds=120)["id"]
    unsaved = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="unsaved", runningForSeconds=120)["id"]
    policy(api, namespace, "keep", "keep", maxRunningHours=0.002, snapshotBeforeStop=True,
           snapshotImageRepository="registry.local/team/culls")  # fmt: skip
    policy(api, namespace, "norepo", "norepo", maxRunningHours=0.002, snapshotBeforeStop=True)
    adopt(api, namespace, "saved", saved, "keep")
    adopt(api, namespace, "unsaved", unsaved, "norepo")

    stopped = wait_phase(api, namespace, "saved", "Stopped", timeout=40)
    assert "saved first" in stopped["stoppedBy"]
    listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "notebooksnapshots", label_selector="cloudnotebooks.io/cull-of=saved"
    )["items"]
    assert len(listed) == 1 and listed[0]["status"]["phase"] == "Ready"
    assert listed[0]["spec"]["imageUrl"].startswith("registry.local/team/culls:saved-")
    journal = fresh_cloud.admin.get("/journal", params={"instance": saved}).json()["entries"]
    routes = [e["route"] for e in journal if "Snapshot" in e["route"] or "Stop" in e["route"]]
    assert routes.index("pai-dsw:CreateInstanceSnapshot") < min(
        routes.index(r) for r in routes if r.startswith("pai-dsw:Stop"))  # fmt: skip
    assert any("saved first" in text for text in events(api, namespace, "saved", "Culled"))
    assert "idle" not in stopped or "snapshot" not in stopped["idle"]  # the next cull saves a new one

    # PAI-DSW pushes to a registry the policy must name: without one the stop is not held, and says why.
    other = wait_phase(api, namespace, "unsaved", "Stopped", timeout=40)
    assert "no snapshot first" in other["stoppedBy"]
