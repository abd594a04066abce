"""What makes the emulator faithful beyond single calls: state machines, server-side enforcement with time
scaling, faults, signature freshness and replay, and state kept across a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from notebook_operator.providers.credentials import Credentials
from notebook_operator.providers.signers import AcsV3Auth, HuaweiAkSkAuth
from notebook_operator.signing import acs3
from tests.emulator import HW_KEY, PAI_KEY, PROJECT, Emulator, running_emulator


def pai(emulator: Emulator) -> httpx.Client:
    return httpx.Client(base_url=f"{emulator.url}/api/v2", auth=AcsV3Auth(Credentials(*PAI_KEY)), timeout=10)


def action(name: str) -> dict[str, str]:
    return {"x-acs-action": name}


def create_pai(client: httpx.Client, spec: str = "ecs.gn6i-c4g1.xlarge") -> str:
    body = {"InstanceName": "nb", "ImageUrl": "img:1", "EcsSpec": spec}
    response = client.post("/instances", json=body, headers=action("CreateInstance"))
    assert response.status_code == 200, response.text
    instance_id: str = response.json()["InstanceId"]
    return instance_id


def statuses_seen(emulator: Emulator, instance_id: str, until: str, timeout: float = 10) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = emulator.instance(instance_id)["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == until:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"never reached {until}: {seen}")


def lifecycle(client: httpx.Client, instance_id: str) -> list[str]:
    """The statuses the cloud's own GetLifecycle records, oldest first, every session."""
    response = client.get(
        f"/instances/{instance_id}/lifecycle", params={"Order": "ASC"}, headers=action("GetLifecycle")
    )
    return [record["Status"] for session in response.json()["Lifecycle"] for record in session]


def test_state_machine_steps_with_delay(emulator: Emulator) -> None:
    """Every step is recorded (GetLifecycle) and takes its delay: a poller sees the first status, then a subsequence
    of the steps (a poller starved longer than one step, as on a loaded machine, may miss a middle one)."""
    emulator.admin.put("/config", json={"transitionDelay": 0.3}).raise_for_status()
    with pai(emulator) as client:
        instance_id = create_pai(client)
        seen = statuses_seen(emulator, instance_id, "Running")
        assert seen[0] == "Creating" and set(seen) <= {"Creating", "EnvPreparing", "Running"}
        assert lifecycle(client, instance_id) == ["Creating", "EnvPreparing", "Running"]
        assert client.put(f"/instances/{instance_id}/stop", headers=action("StopInstance")).status_code == 200
        illegal = client.put(f"/instances/{instance_id}/start", headers=action("StartInstance"))
        assert illegal.status_code == 400 and illegal.json()["Code"] == "InstanceStatusNotSupport"  # still Stopping
        assert set(statuses_seen(emulator, instance_id, "Stopped")) <= {"Stopping", "Stopped"}
        assert lifecycle(client, instance_id)[-2:] == ["Stopping", "Stopped"]
        client.delete(f"/instances/{instance_id}", headers=action("DeleteInstance"))
        assert emulator.instance(instance_id)["status"] == "Deleting"
        time.sleep(0.5)
        assert emulator.admin.get(f"/instances/{instance_id}").status_code == 404


def test_running_time_accumulates(emulator: Emulator) -> None:
    with pai(emulator) as client:
        instance_id = create_pai(client)
        time.sleep(0.3)
        client.put(f"/instances/{instance_id}/stop", headers=action("StopInstance"))
        first = client.get(f"/instances/{instance_id}", headers=action("GetInstance")).json()
        time.sleep(0.3)
        later = client.get(f"/instances/{instance_id}", headers=action("GetInstance")).json()
        assert 250 <= first["AccumulatedRunningTimeInMs"] == later["AccumulatedRunningTimeInMs"]  # frozen while stopped


@pytest.fixture
def fast_clock(tmp_path: Path) -> Iterator[Emulator]:
    """An emulator whose clock runs 600x: ten emulated minutes per real second."""
    with running_emulator(tmp_path, "--time-scale", "600", "--transition-delay", "0") as emulator:
        yield emulator


def test_idle_culler_stops_idle_not_busy(fast_clock: Emulator) -> None:
    emulator = fast_clock
    with pai(emulator) as client:
        idle, busy, gpu_busy = create_pai(client), create_pai(client), create_pai(client)
        emulator.admin.put(f"/instances/{idle}/utilization", json={"cpu": 1, "gpu": 0}).raise_for_status()
        emulator.admin.put(f"/instances/{gpu_busy}/utilization", json={"cpu": 1, "gpu": 90}).raise_for_status()
        culler = {"CpuPercentThreshold": 10, "GpuPercentThreshold": 10, "MaxIdleTimeInMinutes": 20}
        for instance_id in (idle, busy, gpu_busy):
            response = client.post(
                f"/instances/{instance_id}/idleinstanceculler", json=culler, headers=action("CreateIdleInstanceCuller")
            )
            assert response.status_code == 200, response.text
    emulator.wait_status(idle, "Stopped", timeout=10)  # 20 emulated minutes = 2 s
    assert any("IdleInstanceCuller" in event for event in emulator.instance(idle)["events"])
    assert emulator.instance(busy)["status"] == "Running"
    assert emulator.instance(gpu_busy)["status"] == "Running"  # idle CPU, busy GPU: not idle


def test_shutdown_timer_fires(fast_clock: Emulator) -> None:
    emulator = fast_clock
    with pai(emulator) as client:
        instance_id = create_pai(client)
        response = client.post(
            f"/instances/{instance_id}/shutdowntimer",
            json={"RemainingTimeInMs": 30 * 60 * 1000},
            headers=action("CreateInstanceShutdownTimer"),
        )
        assert response.status_code == 200
    started = time.monotonic()
    emulator.wait_status(instance_id, "Stopped", timeout=10)
    assert time.monotonic() - started >= 2  # 30 emulated minutes is 3 real seconds: not early
    assert emulator.instance(instance_id)["shutdownTimer"] is None


def test_modelarts_lease_expires(fast_clock: Emulator) -> None:
    emulator = fast_clock
    with httpx.Client(
        base_url=f"{emulator.url}/v1/{PROJECT}", auth=HuaweiAkSkAuth(Credentials(*HW_KEY), PROJECT)
    ) as client:
        body = {"name": "nb", "image_id": "img", "volume": {"category": "EVS"}, "flavor": "modelarts.vm.cpu.2u"}
        notebook = client.post("/notebooks", json=body).json()
        assert notebook["lease"]["duration"] == 3_600_000
    emulator.wait_status(notebook["id"], "STOPPED", timeout=15)  # one emulated hour = 6 s


def test_faults_error_throttle_latency_drop(emulator: Emulator) -> None:
    with pai(emulator) as client:
        emulator.admin.put("/faults", json={"errorRate": 1.0, "statusCode": 503}).raise_for_status()
        response = client.get("/instances", headers=action("ListInstances"))
        assert response.status_code == 503 and response.json()["Code"] == "ServiceUnavailable"

        emulator.admin.put("/faults", json={"throttleRate": 1.0, "retryAfterSeconds": 2}).raise_for_status()
        response = client.get("/instances", headers=action("ListInstances"))
        assert response.status_code == 429 and response.headers["x-acs-retry-after"] == "2000"

        emulator.admin.put("/faults", json={"latencyMs": 300}).raise_for_status()
        started = time.monotonic()
        assert client.get("/instances", headers=action("ListInstances")).status_code == 200
        assert time.monotonic() - started >= 0.3

        emulator.admin.put("/faults", json={"dropRate": 1.0, "pathPattern": "^/api/v2/instances$"}).raise_for_status()
        with pytest.raises(httpx.TransportError):
            client.get("/instances", headers=action("ListInstances"))
        ecs = client.get("/ecsspecs", params={"AcceleratorType": "CPU"}, headers=action("ListEcsSpecs"))
        assert ecs.status_code == 200  # outside the pattern

        emulator.admin.delete("/faults").raise_for_status()
        assert client.get("/instances", headers=action("ListInstances")).status_code == 200

    huawei = httpx.Client(base_url=emulator.url, auth=HuaweiAkSkAuth(Credentials(*HW_KEY), PROJECT))
    emulator.admin.put("/faults", json={"throttleRate": 1.0}).raise_for_status()
    response = huawei.get(f"/v1/{PROJECT}/notebooks")
    assert response.status_code == 429 and response.json()["error_code"] == "APIGW.0308"
    assert response.headers["Retry-After"] == "1"
    emulator.admin.put("/faults", json={"errorRate": 1.0, "statusCode": 500}).raise_for_status()
    roma = huawei.get(f"/v2/{PROJECT}/instances")
    assert roma.status_code == 500 and set(roma.json()) == {"error_code", "error_msg", "error_details", "request_id"}
    huawei.close()


def test_faults_reject_bad_settings(emulator: Emulator) -> None:
    assert emulator.admin.put("/faults", json={"errorRate": 2}).status_code == 400
    assert emulator.admin.put("/faults", json={"statusCode": 404}).status_code == 400
    assert emulator.admin.put("/faults", json={"colour": 1}).status_code == 400


def _signed_headers(date: datetime, nonce: str) -> dict[str, str]:
    headers = {
        "host": "127.0.0.1",
        "x-acs-action": "ListInstances",
        "x-acs-version": "2022-01-01",
        "x-acs-date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": acs3.EMPTY_SHA256,
    }
    return headers


def test_nonce_replay_and_stale_date_refused(emulator: Emulator) -> None:
    host = emulator.endpoint
    for when, nonce, expected in (
        (datetime.now(UTC), "nonce-once", None),
        (datetime.now(UTC), "nonce-once", "SignatureNonceUsed"),
        (datetime.now(UTC) - timedelta(hours=1), "nonce-stale", "InvalidTimeStamp.Expired"),
    ):
        headers = {**_signed_headers(when, nonce), "host": host}
        headers["Authorization"] = acs3.authorization(*PAI_KEY, "GET", "/api/v2/instances", [], headers)
        response = httpx.get(f"{emulator.url}/api/v2/instances", headers=headers)
        if expected is None:
            assert response.status_code == 200, response.text
        else:
            assert response.json()["Code"] == expected


def test_unknown_route_is_cloud_404(emulator: Emulator) -> None:
    with pai(emulator) as client:
        response = client.get("/nothing-here", headers=action("Nothing"))
        assert response.status_code == 404 and response.json()["Success"] is False


def test_calls_counted_per_operation(emulator: Emulator) -> None:
    with pai(emulator) as client:
        create_pai(client)
        client.get("/instances", headers=action("ListInstances"))
        client.get("/instances", headers=action("ListInstances"))
    assert emulator.calls() == {"pai-dsw:CreateInstance": 1, "pai-dsw:ListInstances": 2}
    emulator.admin.delete("/calls")
    assert emulator.calls() == {}


def test_state_file_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    with running_emulator(tmp_path, "--state", str(state), "--transition-delay", "0") as first, pai(first) as client:
        kept = create_pai(client)
        client.put(f"/instances/{kept}/stop", headers=action("StopInstance"))
        first.admin.put(f"/instances/{kept}/utilization", json={"cpu": 4})
    with running_emulator(tmp_path, "--state", str(state)) as second, pai(second) as client:
        body = client.get(f"/instances/{kept}", headers=action("GetInstance")).json()
        assert body["Status"] == "Stopped" and body["InstanceName"] == "nb"
        assert second.instance(kept)["utilization"]["cpu"] == 4


def test_modelarts_idle_lease_uses_the_clouds_own_thresholds(fast_clock: Emulator) -> None:
    """An IDLE lease (set with the official SDK's RenewLease and LeaseReq type IDLE) stops a notebook that
    stayed idle for the lease duration, idle meaning the cloud's own thresholds (Huawei's ModelArts FAQ on
    auto stop: CPU at most 5 %, GPU at most 1 %), whatever a policy said."""
    from huaweicloudsdkmodelarts.v1 import LeaseReq, RenewLeaseRequest

    from tests.integration.emulator.test_huawei_sdk import modelarts

    levels = {"idle": {"cpu": 5, "gpu": 0}, "gpu-idle": {"cpu": 2, "gpu": 1}, "cpu-busy": {"cpu": 6, "gpu": 0},
              "gpu-busy": {"cpu": 1, "gpu": 2}}  # fmt: skip
    ids = {name: fast_clock.seed(cloud="modelarts", account=PROJECT, name=name, gpu=1 if "gpu" in name else 0,
                                 utilization=level)["id"] for name, level in levels.items()}  # fmt: skip
    client = modelarts(fast_clock)
    for instance_id in ids.values():
        answer = client.renew_lease(RenewLeaseRequest(id=instance_id, body=LeaseReq(duration=3_600_000, type="IDLE")))
        assert answer.type == "IDLE" and answer.duration == 3_600_000
    fast_clock.wait_status(ids["idle"], "STOPPED", timeout=15)  # one emulated hour = 6 s
    fast_clock.wait_status(ids["gpu-idle"], "STOPPED", timeout=5)
    assert fast_clock.instance(ids["cpu-busy"])["status"] == "RUNNING"
    assert fast_clock.instance(ids["gpu-busy"])["status"] == "RUNNING"
