"""PAI-DSW 2022-01-01 through the official SDK (alibabacloud-pai-dsw20220101), unchanged, over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
from alibabacloud_pai_dsw20220101 import models as dsw
from alibabacloud_pai_dsw20220101.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import Config

from tests.emulator import PAI_KEY, Emulator


def sdk(emulator: Emulator, key: tuple[str, str] = PAI_KEY) -> Client:
    return Client(Config(access_key_id=key[0], access_key_secret=key[1], endpoint=emulator.endpoint, protocol="http"))


@pytest.fixture
def client(emulator: Emulator) -> Client:
    return sdk(emulator)


def create(client: Client, name: str = "nb", spec: str = "ecs.gn6i-c4g1.xlarge", **extra: Any) -> str:
    request = dsw.CreateInstanceRequest(instance_name=name, image_url="registry/img:1", ecs_spec=spec, **extra)
    response = client.create_instance(request)
    assert response.status_code == 200 and response.body.success
    instance_id: str = response.body.instance_id
    assert instance_id.startswith("dsw-")
    return instance_id


def test_create_get_and_instance_model(client: Client) -> None:
    labels = [dsw.CreateInstanceRequestLabels(key="team", value="vision")]
    instance_id = create(client, labels=labels, environment_variables={"A": "1"}, workspace_id="42")
    body = client.get_instance(instance_id, dsw.GetInstanceRequest()).body
    assert isinstance(body, dsw.GetInstanceResponseBody)
    assert body.instance_id == instance_id and body.instance_name == "nb"
    assert body.status == "Running" and body.accelerator_type == "GPU"
    assert body.ecs_spec == "ecs.gn6i-c4g1.xlarge" and body.workspace_id == "42"
    assert body.labels[0].key == "team" and body.environment_variables == {"A": "1"}
    assert body.jupyterlab_url and body.web_ideurl and body.terminal_url
    assert body.requested_resource.gpu == "1"


def test_stop_with_save_image_then_start(client: Client) -> None:
    instance_id = create(client)
    assert client.stop_instance(instance_id, dsw.StopInstanceRequest(save_image=True)).body.success
    body = client.get_instance(instance_id, dsw.GetInstanceRequest()).body
    assert body.status == "Stopped"
    assert body.latest_snapshot.image_url.endswith(":1")
    assert len(body.instance_snapshot_list) == 1
    assert client.start_instance(instance_id).body.success
    assert client.get_instance(instance_id, dsw.GetInstanceRequest()).body.status == "Running"


def test_illegal_transition_and_not_found(client: Client) -> None:
    instance_id = create(client)
    with pytest.raises(ClientException) as caught:
        client.start_instance(instance_id)
    assert caught.value.code == "InstanceStatusNotSupport" and caught.value.status_code == 400
    with pytest.raises(ClientException) as missing:
        client.get_instance("dsw-doesnotexist", dsw.GetInstanceRequest())
    assert missing.value.status_code == 404 and missing.value.code == "InstanceNotFound"
    assert missing.value.request_id


def test_update_and_delete(client: Client) -> None:
    instance_id = create(client, spec="ecs.c6.large")
    with pytest.raises(ClientException):  # a spec change needs a stopped instance
        client.update_instance(instance_id, dsw.UpdateInstanceRequest(ecs_spec="ecs.g6.xlarge"))
    client.update_instance(instance_id, dsw.UpdateInstanceRequest(instance_name="renamed"))
    client.stop_instance(instance_id, dsw.StopInstanceRequest())
    client.update_instance(instance_id, dsw.UpdateInstanceRequest(ecs_spec="ecs.g6.xlarge", start_instance=True))
    body = client.get_instance(instance_id, dsw.GetInstanceRequest()).body
    assert (body.instance_name, body.ecs_spec, body.status) == ("renamed", "ecs.g6.xlarge", "Running")
    assert client.delete_instance(instance_id).body.success
    with pytest.raises(ClientException):
        client.get_instance(instance_id, dsw.GetInstanceRequest())


def test_list_pages_and_total_count(client: Client, emulator: Emulator) -> None:
    emulator.seed_many([{"cloud": "pai-dsw", "account": PAI_KEY[0], "name": f"nb-{n:02d}"} for n in range(25)])
    seen: list[str] = []
    for page in (1, 2, 3):
        body = client.list_instances(dsw.ListInstancesRequest(page_number=page, page_size=10)).body
        assert isinstance(body, dsw.ListInstancesResponseBody)
        assert body.total_count == 25
        seen += [i.instance_id for i in body.instances]
    assert len(seen) == 25 == len(set(seen))
    assert client.list_instances(dsw.ListInstancesRequest(page_number=4, page_size=10)).body.instances == []


def test_list_filters_and_sorting(client: Client, emulator: Emulator) -> None:
    gpu = create(client, name="gpu-alice", labels=[dsw.CreateInstanceRequestLabels(key="team", value="a")])
    time.sleep(1.1)  # distinct GmtCreateTime seconds
    cpu = create(client, name="cpu-bob", spec="ecs.g6.4xlarge")
    client.stop_instance(cpu, dsw.StopInstanceRequest())

    def ids(**kw: Any) -> list[str]:
        return [i.instance_id for i in client.list_instances(dsw.ListInstancesRequest(**kw)).body.instances]

    assert ids(status="Stopped") == [cpu]
    assert ids(instance_name="alice") == [gpu]
    assert ids(accelerator_type="GPU") == [gpu]
    assert ids(labels={"team": "a"}) == [gpu]
    assert ids(labels={"team": "b"}) == []
    assert ids(min_cpu="8000") == [cpu]  # units of 0.001 CPU
    assert ids(max_cpu="4000") == [gpu]
    assert ids(instance_id=f"{gpu},{cpu}", sort_by="GmtCreateTime", order="ASC") == [gpu, cpu]
    assert ids(sort_by="GmtCreateTime", order="DESC") == [cpu, gpu]
    other_account = emulator.seed(cloud="pai-dsw", account="someone-else", name="hidden")
    assert other_account["id"] not in ids()


def test_batch_stop(client: Client, emulator: Emulator) -> None:
    """StopInstances as the official SDK's request and response models shape it: InstanceIds in, the affected
    InstanceIds and a refused instance in AccessDeniedDetail out (its Dict[str, str] keyed by instance id)."""
    first, second, refused = create(client, name="a"), create(client, name="b"), create(client, name="c")
    emulator.admin.put("/denied-instances", json={"ids": [refused]}).raise_for_status()
    try:
        request = dsw.StopInstancesRequest(instance_ids=[first, second, refused, "dsw-missing"])
        body = client.stop_instances(request).body
        assert isinstance(body, dsw.StopInstancesResponseBody)
        assert body.success and body.code == "200" and body.http_status_code == 200 and body.request_id
        assert sorted(body.instance_ids) == sorted([first, second])
        assert set(body.access_denied_detail) == {refused}
        assert client.get_instance(first, dsw.GetInstanceRequest()).body.status == "Stopped"
        assert client.get_instance(second, dsw.GetInstanceRequest()).body.status == "Stopped"
        assert client.get_instance(refused, dsw.GetInstanceRequest()).body.status == "Running"
        again = client.stop_instances(dsw.StopInstancesRequest(instance_ids=[first])).body
        assert again.success and not again.instance_ids  # already stopped: not affected
    finally:
        emulator.admin.delete("/permissions").raise_for_status()


def test_metrics_follow_scripted_utilization(client: Client, emulator: Emulator) -> None:
    seeded = emulator.seed(cloud="pai-dsw", account=PAI_KEY[0], name="m", gpu=1, utilization={"cpu": 3, "gpu": 80})
    now = time.time()
    request = dsw.GetInstanceMetricsRequest(
        metric_type="GpuCoreUsage",
        start_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
        end_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 120)),
        time_step="1",
    )
    time.sleep(0.1)
    body = client.get_instance_metrics(seeded["id"], request).body
    assert isinstance(body, dsw.GetInstanceMetricsResponseBody)
    assert body.instance_id == seeded["id"]
    # the seeded instance started just now: at most the current minute has a sample, and it is the scripted level
    for point in body.pod_metrics[0].metrics:
        assert point.value == 80.0
    with pytest.raises(ClientException) as caught:
        client.get_instance_metrics(seeded["id"], dsw.GetInstanceMetricsRequest(metric_type="Bogus"))
    assert caught.value.code == "ValidationError"


def test_events_and_lifecycle(client: Client) -> None:
    instance_id = create(client)
    client.stop_instance(instance_id, dsw.StopInstanceRequest())
    lifecycle = client.get_lifecycle(instance_id, dsw.GetLifecycleRequest(order="ASC")).body
    statuses = [record.status for record in lifecycle.lifecycle[0]]
    assert statuses == ["Creating", "EnvPreparing", "Running", "Stopping", "Stopped"]
    events = client.get_instance_events(instance_id, dsw.GetInstanceEventsRequest()).body
    assert events.instance_id == instance_id and events.events == []


def test_a_start_that_fails_says_why_in_the_sdk_shapes(client: Client, emulator: Emulator) -> None:
    """POST /_emulator/instances/{id}/fail: the next start ends in Failed with ReasonCode/ReasonMessage (GetInstance,
    ListInstances) and the events (GetInstanceEvents: strings), as the SDK's models read them."""
    instance_id = create(client)
    client.stop_instance(instance_id, dsw.StopInstanceRequest())
    failure = {"reasonCode": "InsufficientStock", "reasonMessage": "ecs.gn6i-c4g1.xlarge is out of stock",
               "events": ["ResourceAllocating: no stock of ecs.gn6i-c4g1.xlarge", "Instance start failed"]}  # fmt: skip
    emulator.admin.post(f"/instances/{instance_id}/fail", json=failure).raise_for_status()
    assert client.get_instance(instance_id, dsw.GetInstanceRequest()).body.status == "Stopped"  # only the next start
    assert client.start_instance(instance_id).body.success
    body = client.get_instance(instance_id, dsw.GetInstanceRequest()).body
    assert (body.status, body.reason_code, body.reason_message) == (
        "Failed",
        "InsufficientStock",
        "ecs.gn6i-c4g1.xlarge is out of stock",
    )
    (listed,) = [i for i in client.list_instances(dsw.ListInstancesRequest()).body.instances
                 if i.instance_id == instance_id]  # fmt: skip
    assert (listed.status, listed.reason_code) == ("Failed", "InsufficientStock")
    events = client.get_instance_events(instance_id, dsw.GetInstanceEventsRequest(max_events_num=10)).body.events
    assert [e.split(" ", 1)[1] for e in events] == failure["events"]
    later = dsw.GetInstanceEventsRequest(start_time="2999-01-01T00:00:00Z", max_events_num=10)
    assert client.get_instance_events(instance_id, later).body.events == []  # StartTime: only events from then on
    # GetLifecycle: the newest session (Limit counts sessions), newest record first.
    newest = client.get_lifecycle(instance_id, dsw.GetLifecycleRequest(order="DESC", limit=1)).body.lifecycle
    assert [[record.status for record in session] for session in newest] == [["Failed", "EnvPreparing", "Starting"]]
    # The next start is a new attempt: it comes up, and the failure's reason is history.
    assert client.start_instance(instance_id).body.success
    body = client.get_instance(instance_id, dsw.GetInstanceRequest()).body
    assert (body.status, body.reason_code) == ("Running", "")


def test_idle_culler_crud(client: Client) -> None:
    instance_id = create(client)
    request = dsw.CreateIdleInstanceCullerRequest(
        cpu_percent_threshold=10, gpu_percent_threshold=5, max_idle_time_in_minutes=30
    )
    assert client.create_idle_instance_culler(instance_id, request).body.success
    with pytest.raises(ClientException) as twice:
        client.create_idle_instance_culler(instance_id, request)
    assert twice.value.code == "IdleInstanceCullerAlreadyExists"
    culler = client.get_idle_instance_culler(instance_id).body
    assert (culler.cpu_percent_threshold, culler.gpu_percent_threshold, culler.max_idle_time_in_minutes) == (10, 5, 30)
    instance = client.get_instance(instance_id, dsw.GetInstanceRequest()).body
    assert instance.idle_instance_culler.max_idle_time_in_minutes == 30
    assert client.delete_idle_instance_culler(instance_id).body.success
    with pytest.raises(ClientException) as gone:
        client.get_idle_instance_culler(instance_id)
    assert gone.value.status_code == 404


def test_shutdown_timer_crud(client: Client) -> None:
    instance_id = create(client)
    body = dsw.CreateInstanceShutdownTimerRequest(remaining_time_in_ms=3_600_000)
    assert client.create_instance_shutdown_timer(instance_id, body).body.success
    timer = client.get_instance_shutdown_timer(instance_id).body
    assert 3_590_000 < timer.remaining_time_in_ms <= 3_600_000 and timer.due_time
    assert client.delete_instance_shutdown_timer(instance_id).body.success
    with pytest.raises(ClientException):
        client.get_instance_shutdown_timer(instance_id)


def test_list_ecs_specs(client: Client) -> None:
    """The families a DSW user picks, with a price, read through the official SDK's model and paging."""
    body = client.list_ecs_specs(dsw.ListEcsSpecsRequest(accelerator_type="GPU", page_size=2)).body
    assert body.total_count == 7 and len(body.ecs_specs) == 2
    assert all(spec.gpu >= 1 and spec.is_available and spec.price > 0 and spec.currency for spec in body.ecs_specs)
    gpu = [s.instance_type for p in (1, 2, 3, 4) for s in client.list_ecs_specs(
        dsw.ListEcsSpecsRequest(accelerator_type="GPU", page_size=2, page_number=p)).body.ecs_specs]  # fmt: skip
    assert len(gpu) == len(set(gpu)) == 7
    assert {t.split("-")[0] for t in gpu} == {"ecs.gn6i", "ecs.gn7i", "ecs.gn6v"}
    cpu = client.list_ecs_specs(dsw.ListEcsSpecsRequest(accelerator_type="CPU", page_size=50)).body.ecs_specs
    assert {s.instance_type.split(".")[1] for s in cpu} == {"c6", "c7", "g6", "g7"}
    assert all(s.memory == s.cpu * (2 if ".c" in s.instance_type else 4) for s in cpu)


@pytest.mark.parametrize(
    ("key", "code", "status"),
    [
        ((PAI_KEY[0], "wrong-secret"), "SignatureDoesNotMatch", 400),
        (("AK-unknown", "whatever"), "InvalidAccessKeyId.NotFound", 404),
    ],
)
def test_bad_credentials_refused(emulator: Emulator, key: tuple[str, str], code: str, status: int) -> None:
    with pytest.raises(ClientException) as caught:
        sdk(emulator, key).list_instances(dsw.ListInstancesRequest())
    assert (caught.value.code, caught.value.status_code) == (code, status)
    assert "wrong-secret" not in str(caught.value)


def test_labels_updated_and_deleted_through_the_sdk(client: Client) -> None:
    instance_id = create(client, labels=[dsw.CreateInstanceRequestLabels(key="team", value="vision")])
    labels = [dsw.UpdateInstanceLabelsRequestLabels(key="team", value="speech"),
              dsw.UpdateInstanceLabelsRequestLabels(key="cost", value="cc-1")]  # fmt: skip
    updated = client.update_instance_labels(instance_id, dsw.UpdateInstanceLabelsRequest(labels=labels))
    assert isinstance(updated.body, dsw.UpdateInstanceLabelsResponseBody) and updated.body.request_id
    body = client.get_instance(instance_id, dsw.GetInstanceRequest()).body
    assert {label.key: label.value for label in body.labels} == {"team": "speech", "cost": "cc-1"}
    deleted = client.delete_instance_labels(instance_id, dsw.DeleteInstanceLabelsRequest(label_keys="team,absent"))
    assert isinstance(deleted.body, dsw.DeleteInstanceLabelsResponseBody) and deleted.body.request_id
    body = client.get_instance(instance_id, dsw.GetInstanceRequest()).body
    assert {label.key: label.value for label in body.labels} == {"cost": "cc-1"}
    with pytest.raises(ClientException) as caught:  # LabelKeys is mandatory
        client.delete_instance_labels(instance_id, dsw.DeleteInstanceLabelsRequest())
    assert caught.value.status_code == 400


def test_snapshot_round_trip_through_the_sdk(client: Client) -> None:
    instance_id = create(client)
    request = dsw.CreateInstanceSnapshotRequest(
        image_url="registry.local/team/env:v1", snapshot_name="env-v1", exclude_paths=["/mnt/data"],
        labels=[dsw.CreateInstanceSnapshotRequestLabels(key="k", value="v")],
    )  # fmt: skip
    created = client.create_instance_snapshot(instance_id, request).body
    assert isinstance(created, dsw.CreateInstanceSnapshotResponseBody) and created.snapshot_id.startswith("snp-")
    with pytest.raises(ClientException) as taken:  # the same name again, without Overwrite
        client.create_instance_snapshot(instance_id, request)
    assert taken.value.status_code == 400
    got = client.get_instance_snapshot(instance_id, created.snapshot_id).body
    assert isinstance(got, dsw.GetInstanceSnapshotResponseBody)
    assert (got.snapshot_name, got.image_url, got.exclude_paths) == ("env-v1", "registry.local/team/env:v1",
                                                                      ["/mnt/data"])  # fmt: skip
    assert got.status in ("Pushing", "Saved")
    listed = client.list_instance_snapshot(instance_id, dsw.ListInstanceSnapshotRequest(page_size=10)).body
    assert isinstance(listed, dsw.ListInstanceSnapshotResponseBody)
    assert listed.total_count == 1 and listed.snapshots[0].snapshot_id == created.snapshot_id
    assert client.delete_instance_snapshot(instance_id, created.snapshot_id).body.success
    with pytest.raises(ClientException) as gone:
        client.get_instance_snapshot(instance_id, created.snapshot_id)
    assert gone.value.status_code == 404
