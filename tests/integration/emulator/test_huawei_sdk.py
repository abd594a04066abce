"""ModelArts notebooks and ROMA Connect through the official Huawei SDKs; DevEnviron (absent from the SDK)
through the project's own SDK-HMAC-SHA256 signer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkmodelarts.v1 import (
    CreateImageRequest,
    CreateNotebookRequest,
    CreateNotebookTagsRequest,
    CreateTmsTagsRequest,
    DeleteImageRequest,
    DeleteNotebookRequest,
    DeleteNotebookTagsRequest,
    DeleteTmsTagsRequest,
    ImageCreateReq,
    LeaseReq,
    ListFlavorsRequest,
    ListImageRequest,
    ListNotebooksRequest,
    ListNotebooksResponse,
    ModelArtsClient,
    NotebookCreateRequest,
    NotebookUpdateRequest,
    RenewLeaseRequest,
    ShowImageRequest,
    ShowLeaseRequest,
    ShowNotebookRequest,
    StartNotebookRequest,
    StopNotebookRequest,
    TmsTag,
    UpdateNotebookRequest,
    VolumeMountRequest,
)
from huaweicloudsdkroma.v2 import CheckRomaInstanceListV2Request, RomaClient

from notebook_operator.providers.credentials import Credentials
from notebook_operator.providers.signers import HuaweiAkSkAuth
from tests.emulator import HW_KEY, PROJECT, Emulator


def _config() -> HttpConfig:
    config = HttpConfig.get_default_config()
    config.timeout = (3, 10)
    config.retry_times = 0
    return config


def modelarts(emulator: Emulator, key: tuple[str, str] = HW_KEY) -> ModelArtsClient:
    return (
        ModelArtsClient.new_builder()
        .with_credentials(BasicCredentials(key[0], key[1], PROJECT))
        .with_http_config(_config())
        .with_endpoint(emulator.url)
        .build()
    )


@pytest.fixture
def client(emulator: Emulator) -> ModelArtsClient:
    return modelarts(emulator)


def create(client: ModelArtsClient, name: str = "nb", flavor: str = "modelarts.vm.gpu.t4u8") -> str:
    body = NotebookCreateRequest(
        name=name, image_id="img-1", flavor=flavor, volume=VolumeMountRequest(category="EVS", capacity=50)
    )
    response = client.create_notebook(CreateNotebookRequest(body=body))
    assert response.status_code == 201
    notebook_id: str = response.id
    return notebook_id


def test_notebook_lifecycle_round_trip(client: ModelArtsClient) -> None:
    notebook_id = create(client)
    shown = client.show_notebook(ShowNotebookRequest(id=notebook_id))
    assert (shown.status, shown.name, shown.flavor) == ("RUNNING", "nb", "modelarts.vm.gpu.t4u8")
    assert shown.custom_spec.gpu == 1.0 and shown.lease.duration == 3_600_000 and shown.lease.enable
    assert shown.url
    assert client.stop_notebook(StopNotebookRequest(id=notebook_id)).status == "STOPPED"
    started = client.start_notebook(StartNotebookRequest(id=notebook_id, duration=7_200_000, type="TIMING"))
    assert started.status == "RUNNING"
    lease = client.show_lease(ShowLeaseRequest(id=notebook_id))
    assert (lease.duration, lease.type, lease.enable) == (7_200_000, "TIMING", True)
    renewed = client.renew_lease(RenewLeaseRequest(id=notebook_id, body=LeaseReq(duration=3_600_000, type="TIMING")))
    assert renewed.duration >= 3_600_000 and renewed.update_at >= lease.update_at
    updated = client.update_notebook(UpdateNotebookRequest(id=notebook_id, body=NotebookUpdateRequest(description="d")))
    assert updated.description == "d"
    assert client.delete_notebook(DeleteNotebookRequest(id=notebook_id)).status == "DELETING"
    with pytest.raises(ClientRequestException) as gone:
        client.show_notebook(ShowNotebookRequest(id=notebook_id))
    assert gone.value.status_code == 404 and gone.value.error_code == "ModelArts.6404"


def test_a_start_that_fails_says_why_in_the_sdk_shapes(client: ModelArtsClient, emulator: Emulator) -> None:
    """The next start ends in START_FAILED with fail_reason and a FAILED step in action_progress (JobProgress)."""
    notebook_id = create(client)
    client.stop_notebook(StopNotebookRequest(id=notebook_id))
    failure = {"reasonCode": "ModelArts.6404", "reasonMessage": "insufficient resources in the pool"}
    emulator.admin.post(f"/instances/{notebook_id}/fail", json=failure).raise_for_status()
    client.start_notebook(StartNotebookRequest(id=notebook_id))
    shown = client.show_notebook(ShowNotebookRequest(id=notebook_id))
    assert (shown.status, shown.fail_reason) == ("START_FAILED", "insufficient resources in the pool")
    failed = [p for p in shown.action_progress if p.status == "FAILED"]
    assert [(p.step, p.description) for p in failed] == [(2, "insufficient resources in the pool")]
    client.start_notebook(StartNotebookRequest(id=notebook_id))  # a new attempt comes up; the reason is history
    shown = client.show_notebook(ShowNotebookRequest(id=notebook_id))
    assert (shown.status, shown.fail_reason, shown.action_progress) == ("RUNNING", "", [])


def test_illegal_state_and_lease_range(client: ModelArtsClient) -> None:
    notebook_id = create(client)
    with pytest.raises(ClientRequestException) as running:
        client.start_notebook(StartNotebookRequest(id=notebook_id))
    assert running.value.status_code == 409 and running.value.request_id
    client.stop_notebook(StopNotebookRequest(id=notebook_id))
    with pytest.raises(ClientRequestException) as too_long:
        client.start_notebook(StartNotebookRequest(id=notebook_id, duration=10**10))
    assert too_long.value.status_code == 400


def test_list_paging_filters_and_model(client: ModelArtsClient, emulator: Emulator) -> None:
    specs = [{"cloud": "modelarts", "account": PROJECT, "name": f"nb-{n:02d}"} for n in range(23)]
    specs.append({"cloud": "modelarts", "account": PROJECT, "name": "stopped-one", "status": "STOPPED"})
    emulator.seed_many(specs)
    # offset is the record offset ("Start offset of the records", seed modelarts-notebooks-ListNotebooks.txt;
    # Huawei's Terraform provider pages with offset += len(data), data_source_huaweicloud_modelarts_notebooks.go)
    seen: list[str] = []
    for page, offset in enumerate((0, 10, 20)):
        response = client.list_notebooks(ListNotebooksRequest(limit=10, offset=offset, sort_key="create_at",
                                                              sort_dir="ASC"))  # fmt: skip
        assert isinstance(response, ListNotebooksResponse)
        assert (response.total, response.pages, response.current, response.size) == (24, 3, page, 10)
        assert len(response.data) == (10 if page < 2 else 4)
        seen += [n.id for n in response.data]
    assert len(seen) == len(set(seen)) == 24  # three pages, no overlap
    shifted = client.list_notebooks(ListNotebooksRequest(limit=10, offset=5, sort_key="create_at", sort_dir="ASC"))
    assert [n.id for n in shifted.data] == seen[5:15]  # any record offset, not only page starts
    stopped = client.list_notebooks(ListNotebooksRequest(status="STOPPED"))
    assert [n.name for n in stopped.data] == ["stopped-one"]
    named = client.list_notebooks(ListNotebooksRequest(name="nb-0", sort_key="name", sort_dir="ASC"))
    assert [n.name for n in named.data] == [f"nb-0{n}" for n in range(10)]


def test_list_flavors(client: ModelArtsClient) -> None:
    response = client.list_flavors(ListFlavorsRequest(category="GPU"))
    assert response.total == 2 and all(f.category == "GPU" for f in response.data)


def test_wrong_secret_refused_with_apig_error(emulator: Emulator) -> None:
    with pytest.raises(ClientRequestException) as caught:
        modelarts(emulator, (HW_KEY[0], "not-the-secret")).list_notebooks(ListNotebooksRequest())
    assert (caught.value.status_code, caught.value.error_code) == (401, "APIGW.0301")
    assert caught.value.request_id


def test_roma_instance_list(emulator: Emulator) -> None:
    emulator.seed_many([{"cloud": "roma", "account": PROJECT, "name": f"roma-{n}"} for n in range(7)])
    emulator.seed(cloud="roma", account=PROJECT, name="broken", status="ERROR")
    client = (
        RomaClient.new_builder()
        .with_credentials(BasicCredentials(*HW_KEY, PROJECT))
        .with_http_config(_config())
        .with_endpoint(emulator.url)
        .build()
    )
    first = client.check_roma_instance_list_v2(CheckRomaInstanceListV2Request(offset=0, limit=5))
    second = client.check_roma_instance_list_v2(CheckRomaInstanceListV2Request(offset=5, limit=5))
    assert (first.total, first.size, second.size) == (8, 5, 3)
    assert len({i.id for i in first.instances + second.instances}) == 8
    errors = client.check_roma_instance_list_v2(CheckRomaInstanceListV2Request(status="ERROR"))
    assert [i.name for i in errors.instances] == ["broken"]
    with pytest.raises(ClientRequestException) as bad:
        client.check_roma_instance_list_v2(CheckRomaInstanceListV2Request(status="NOPE"))
    assert bad.value.status_code == 400


def _devenv(emulator: Emulator) -> httpx.Client:
    auth = HuaweiAkSkAuth(Credentials(*HW_KEY), PROJECT)
    return httpx.Client(base_url=f"{emulator.url}/v1/{PROJECT}/demanager", auth=auth, timeout=10)


def test_devenviron_list_and_actions(emulator: Emulator) -> None:
    ids = emulator.seed_many(
        [{"cloud": "devenv", "account": PROJECT, "name": name} for name in ("charlie", "alpha", "bravo")]
    )
    with _devenv(emulator) as client:
        assert client.get("/instances", params={"de_type": "notebook"}).status_code == 400  # de_type is case-sensitive
        listed: dict[str, Any] = client.get("/instances", params={"de_type": "Notebook"}).json()
        assert listed["total_count"] == 3
        assert [i["name"] for i in listed["instances"]] == ["alpha", "bravo", "charlie"]
        page = client.get("/instances", params={"de_type": "Notebook", "order": "desc", "offset": 1, "limit": 1}).json()
        assert [i["name"] for i in page["instances"]] == ["bravo"]
        stopped = client.post(f"/instances/{ids[0]}/action", json={"action": "stop"})
        assert stopped.json() == {"current_status": "STOPPED", "previous_state": "RUNNING"}
        again = client.post(f"/instances/{ids[0]}/action", json={"action": "stop"})
        assert again.status_code == 400 and "error_message" in again.json()
        only_stopped = client.get("/instances", params={"de_type": "Notebook", "status": "STOPPED"}).json()
        assert [i["id"] for i in only_stopped["instances"]] == [ids[0]]
        assert (
            client.post(f"/instances/{ids[0]}/action", json={"action": "start"}).json()["current_status"] == "RUNNING"
        )


def test_notebook_tags_created_and_deleted_through_the_sdk(client: ModelArtsClient) -> None:
    notebook_id = create(client)
    tags = [TmsTag(key="team", value="nlp"), TmsTag(key="cloudnotebooks.io:name", value="nb")]
    created = client.create_notebook_tags(CreateNotebookTagsRequest(resource_id=notebook_id,
                                                                    body=CreateTmsTagsRequest(tags=tags)))  # fmt: skip
    assert created.status_code == 204
    changed = CreateTmsTagsRequest(tags=[TmsTag(key="team", value="nlp-2")])  # an existing key gets the new value
    client.create_notebook_tags(CreateNotebookTagsRequest(resource_id=notebook_id, body=changed))
    shown = client.show_notebook(ShowNotebookRequest(id=notebook_id))
    assert {t.key: t.value for t in shown.tags} == {"team": "nlp-2", "cloudnotebooks.io:name": "nb"}
    gone = DeleteTmsTagsRequest(tags=[TmsTag(key="team")])
    assert client.delete_notebook_tags(DeleteNotebookTagsRequest(resource_id=notebook_id, body=gone)).status_code == 204
    shown = client.show_notebook(ShowNotebookRequest(id=notebook_id))
    assert {t.key: t.value for t in shown.tags} == {"cloudnotebooks.io:name": "nb"}


def test_image_saved_listed_and_deleted_through_the_sdk(client: ModelArtsClient) -> None:
    notebook_id = create(client)
    saved = client.create_image(CreateImageRequest(id=notebook_id, body=ImageCreateReq(name="env", tag="v1",
                                                                                       namespace="team")))  # fmt: skip
    assert saved.id and saved.status in ("CREATING", "ACTIVE") and saved.swr_path.endswith("/team/env:v1")
    assert saved.origin == "IMAGE_SAVE" and saved.type == "DEDICATED"
    with pytest.raises(ClientRequestException):  # the same name and tag again
        client.create_image(CreateImageRequest(id=notebook_id, body=ImageCreateReq(name="env", tag="v1")))
    listed = client.list_image(ListImageRequest(name="env", limit=10))
    assert listed.total == 1 and listed.data[0].id == saved.id
    assert client.show_image(ShowImageRequest(id=saved.id)).name == "env"
    client.delete_image(DeleteImageRequest(id=saved.id))
    with pytest.raises(ClientRequestException) as caught:
        client.show_image(ShowImageRequest(id=saved.id))
    assert caught.value.status_code == 404
    client.stop_notebook(StopNotebookRequest(id=notebook_id))
    with pytest.raises(ClientRequestException):  # only a running notebook is saved
        client.create_image(CreateImageRequest(id=notebook_id, body=ImageCreateReq(name="env", tag="v2")))
