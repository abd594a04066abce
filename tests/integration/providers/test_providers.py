"""Every provider method against the emulator over real HTTP: paging, errors, and each fault mode."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from notebook_operator.providers.base import Provider
from notebook_operator.providers.credentials import Credentials
from notebook_operator.providers.errors import (
    AuthFailed,
    Conflict,
    InstanceTypeNotOffered,
    InvalidRequest,
    NotFound,
    Throttled,
    Transient,
    Unsupported,
)
from notebook_operator.providers.factory import Account, connect
from notebook_operator.providers.http import RetryPolicy
from notebook_operator.providers.types import CreateSpec, IdleRule, ListFilter, UpdateSpec
from tests.emulator import HW_KEY, PAI_KEY, PROJECT, Emulator

FAST_RETRY = RetryPolicy(max_attempts=6, base_delay=0.02, max_delay=0.2, budget=10)


def account(emulator: Emulator, provider: str, key: tuple[str, str] | None = None) -> Account:
    key = key or (PAI_KEY if provider == "pai-dsw" else HW_KEY)
    return Account(provider, "cn-north-4", Credentials(*key), emulator.url, PROJECT, rate_limit=1000)


@pytest.fixture
async def pai(emulator: Emulator) -> AsyncIterator[Provider]:
    provider = connect(account(emulator, "pai-dsw"), retry=FAST_RETRY)
    yield provider
    await provider.aclose()


@pytest.fixture
async def modelarts(emulator: Emulator) -> AsyncIterator[Provider]:
    provider = connect(account(emulator, "modelarts"), retry=FAST_RETRY)
    yield provider
    await provider.aclose()


def spec(name: str = "nb", token: str = "token-0001", **kw: object) -> CreateSpec:
    return CreateSpec(name=name, image="registry/img:1", client_token=token, **kw)  # type: ignore[arg-type]


async def test_pai_lifecycle(pai: Provider, emulator: Emulator) -> None:
    instance_id = await pai.create_instance(spec(instance_type="ecs.gn6i-c4g1.xlarge", labels={"team": "a"}))
    instance = await pai.get_instance(instance_id)
    assert (instance.phase, instance.name, instance.is_gpu, instance.labels["team"]) == ("Running", "nb", True, "a")
    assert instance.urls.jupyter_lab and instance.started_at and instance.created_at
    found = await pai.find_by_client_token("token-0001", "nb")
    assert found is not None and found.id == instance_id
    assert await pai.find_by_client_token("token-other", "nb") is None

    await pai.stop_instance(instance_id, save_image=True)
    assert (await pai.get_instance(instance_id)).phase == "Stopped"
    with pytest.raises(Conflict):
        await pai.stop_instance(instance_id)
    await pai.update_instance(instance_id, UpdateSpec(instance_type="ecs.g6.xlarge"))
    assert (await pai.get_instance(instance_id)).instance_type == "ecs.g6.xlarge"
    await pai.start_instance(instance_id)
    assert (await pai.get_instance(instance_id)).phase == "Running"
    await pai.delete_instance(instance_id)
    with pytest.raises(NotFound) as gone:
        await pai.get_instance(instance_id)
    assert gone.value.request_id


async def test_pai_paging_across_many_pages(emulator: Emulator) -> None:
    emulator.seed_many([{"cloud": "pai-dsw", "account": PAI_KEY[0], "name": f"nb-{n:03d}"} for n in range(230)])
    provider = connect(account(emulator, "pai-dsw"))
    provider.page_size = 17  # type: ignore[attr-defined]
    try:
        ids = [i.id async for i in provider.list_instances()]
        stopped = [i async for i in provider.list_instances(ListFilter(status="Stopped"))]
    finally:
        await provider.aclose()
    assert len(ids) == 230 == len(set(ids))
    assert stopped == []
    assert emulator.calls()["pai-dsw:ListInstances"] == 14 + 1  # ceil(230/17) pages, then the filtered list


async def test_pai_utilization(pai: Provider, emulator: Emulator) -> None:
    seeded = emulator.seed(cloud="pai-dsw", account=PAI_KEY[0], name="m", gpu=1)
    emulator.admin.put(f"/instances/{seeded['id']}/utilization", json={"cpu": 2, "gpu": 85})
    instance = await pai.get_instance(seeded["id"])
    usage = await pai.get_utilization(instance, timedelta(minutes=10))
    assert usage.window == timedelta(minutes=10)
    if usage.samples:  # a sample lands only on a whole minute the instance was running in
        assert usage.gpu_max == 85.0 and usage.cpu_max == 2.0


async def test_pai_idle_rule_and_timer(pai: Provider) -> None:
    instance_id = await pai.create_instance(spec(instance_type="ecs.c6.large"))
    assert await pai.get_idle_rule(instance_id) is None
    rule = IdleRule(cpu_percent=10, gpu_percent=5, max_idle_minutes=30)
    await pai.put_idle_rule(instance_id, rule)
    await pai.put_idle_rule(instance_id, rule)  # idempotent
    assert await pai.get_idle_rule(instance_id) == rule
    changed = IdleRule(cpu_percent=20, max_idle_minutes=60)
    await pai.put_idle_rule(instance_id, changed)  # one culler per instance: delete then create
    assert await pai.get_idle_rule(instance_id) == changed
    await pai.delete_idle_rule(instance_id)
    await pai.delete_idle_rule(instance_id)  # idempotent
    assert await pai.get_idle_rule(instance_id) is None

    due = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    await pai.put_shutdown_timer(instance_id, due)
    assert await pai.get_shutdown_timer(instance_id) == due
    await pai.delete_shutdown_timer(instance_id)
    assert await pai.get_shutdown_timer(instance_id) is None
    with pytest.raises(NotFound):
        await pai.get_idle_rule("dsw-missing")


async def test_modelarts_lifecycle_and_lease(modelarts: Provider) -> None:
    instance_id = await modelarts.create_instance(spec(instance_type="modelarts.vm.cpu.2u", description="mine"))
    instance = await modelarts.get_instance(instance_id)
    assert instance.phase == "Running" and instance.shutdown_at is not None
    assert (await modelarts.find_by_client_token("token-0001", "nb")) is not None
    await modelarts.stop_instance(instance_id)
    await modelarts.start_instance(instance_id, run_for=timedelta(hours=5))
    lease_end = await modelarts.get_shutdown_timer(instance_id)
    started = (await modelarts.get_instance(instance_id)).started_at
    assert lease_end and started and abs((lease_end - started).total_seconds() - 5 * 3600) < 2
    due = datetime.now(UTC) + timedelta(hours=3)
    await modelarts.put_shutdown_timer(instance_id, due)
    got = await modelarts.get_shutdown_timer(instance_id)
    assert got and abs((got - due).total_seconds()) < 5
    with pytest.raises(InvalidRequest, match="1 h to 72 h"):
        await modelarts.put_shutdown_timer(instance_id, datetime.now(UTC) + timedelta(minutes=10))
    await modelarts.put_idle_rule(instance_id, IdleRule(max_idle_minutes=90))
    assert await modelarts.get_idle_rule(instance_id) == IdleRule(max_idle_minutes=90)
    await modelarts.delete_idle_rule(instance_id)
    assert await modelarts.get_idle_rule(instance_id) is None
    with pytest.raises(Unsupported):
        await modelarts.stop_instance(instance_id, save_image=True)
    with pytest.raises(Unsupported):
        await modelarts.get_utilization(instance, timedelta(minutes=5))
    await modelarts.delete_instance(instance_id)
    with pytest.raises(NotFound):
        await modelarts.get_instance(instance_id)


async def test_modelarts_paging(modelarts: Provider, emulator: Emulator) -> None:
    """131 notebooks over three pages of a server that reads `offset` as a record offset (the seed page, and
    Huawei's Terraform provider): every notebook once, in ceil(131/50) calls."""
    emulator.seed_many([{"cloud": "modelarts", "account": PROJECT, "name": f"nb-{n:03d}"} for n in range(131)])
    names = [i.name async for i in modelarts.list_instances()]
    assert sorted(names) == [f"nb-{n:03d}" for n in range(131)]
    assert emulator.calls()["modelarts:ListNotebooks"] == 3
    offsets = [e for e in emulator.admin.get("/journal", params={"route": "modelarts:ListNotebooks"}).json()["entries"]]
    assert len(offsets) == 3


async def test_modelarts_paging_while_the_project_changes(modelarts: Provider, emulator: Emulator) -> None:
    """Notebooks created or deleted between two pages shift the records: no duplicates, no crash, and none of
    the notebooks that exist throughout is missed (the listing starts again when `total` moved)."""
    ids = emulator.seed_many([{"cloud": "modelarts", "account": PROJECT, "name": f"nb-{n:03d}"} for n in range(120)])
    listing = modelarts.list_instances()
    seen = [await anext(listing) for _ in range(50)]  # the first page
    emulator.admin.delete(f"/instances/{ids[3]}").raise_for_status()  # records after it move one place left
    emulator.seed(cloud="modelarts", account=PROJECT, name="late")
    seen += [i async for i in listing]
    found = [i.id for i in seen]
    assert len(found) == len(set(found))
    assert set(ids) - {ids[3]} <= set(found)


async def test_devenv_and_roma(emulator: Emulator) -> None:
    dev_ids = emulator.seed_many([{"cloud": "devenv", "account": PROJECT, "name": f"d{n}"} for n in range(130)])
    emulator.seed_many([{"cloud": "roma", "account": PROJECT, "name": f"r{n}"} for n in range(105)])
    devenv = connect(account(emulator, "modelarts-devenv"))
    roma = connect(account(emulator, "roma-connect"))
    try:
        assert len([i async for i in devenv.list_instances()]) == 130
        await devenv.stop_instance(dev_ids[5])
        assert (await devenv.get_instance(dev_ids[5])).phase == "Stopped"
        with pytest.raises(Conflict):
            await devenv.stop_instance(dev_ids[5])
        await devenv.start_instance(dev_ids[5])
        assert (await devenv.get_instance(dev_ids[5])).phase == "Running"
        with pytest.raises(NotFound):
            await devenv.get_instance("nope")
        assert len([i async for i in roma.list_instances()]) == 105
        assert not roma.capabilities
        with pytest.raises(Unsupported):
            await roma.stop_instance("x")
        with pytest.raises(Unsupported):
            await devenv.create_instance(spec())
    finally:
        await devenv.aclose()
        await roma.aclose()


@pytest.mark.parametrize("provider", ["pai-dsw", "modelarts", "modelarts-devenv", "roma-connect"])
async def test_bad_credentials_are_auth_failed(emulator: Emulator, provider: str) -> None:
    key = ("AKID-test" if provider == "pai-dsw" else "HWAK-test", "definitely-wrong")
    client = connect(account(emulator, provider, key))
    try:
        with pytest.raises(AuthFailed) as caught:
            await anext(client.list_instances())
    finally:
        await client.aclose()
    assert "definitely-wrong" not in str(caught.value) and "definitely-wrong" not in repr(caught.value)


async def test_server_errors_are_retried_and_recover(pai: Provider, emulator: Emulator) -> None:
    emulator.seed(cloud="pai-dsw", account=PAI_KEY[0], name="x")
    emulator.admin.put("/faults", json={"errorRate": 0.5, "statusCode": 503, "seed": 7}).raise_for_status()
    for _ in range(10):
        assert len([i async for i in pai.list_instances()]) == 1


async def test_throttling_honours_retry_after(emulator: Emulator) -> None:
    outcomes: list[str] = []
    provider = connect(
        account(emulator, "pai-dsw"), retry=FAST_RETRY, observer=lambda p, op, outcome, s: outcomes.append(outcome)
    )
    emulator.admin.put("/faults", json={"throttleRate": 0.5, "retryAfterSeconds": 0.3, "seed": 3}).raise_for_status()
    started = time.monotonic()
    try:
        for _ in range(4):
            assert [i async for i in provider.list_instances()] == []
    finally:
        await provider.aclose()
    throttles = outcomes.count("Throttled")
    assert throttles >= 1 and outcomes.count("ok") == 4
    assert time.monotonic() - started >= 0.3 * throttles  # each throttle waited its retry-after


async def test_latency_within_timeouts(pai: Provider, emulator: Emulator) -> None:
    emulator.admin.put("/faults", json={"latencyMs": 400}).raise_for_status()
    started = time.monotonic()
    assert [i async for i in pai.list_instances()] == []
    assert time.monotonic() - started >= 0.4


async def test_dropped_connections_retried_for_reads(pai: Provider, emulator: Emulator) -> None:
    emulator.seed(cloud="pai-dsw", account=PAI_KEY[0], name="x")
    emulator.admin.put("/faults", json={"dropRate": 0.5, "seed": 11}).raise_for_status()
    for _ in range(6):
        assert len([i async for i in pai.list_instances()]) == 1


async def test_create_is_never_retried_blind(pai: Provider, emulator: Emulator) -> None:
    emulator.admin.put("/faults", json={"dropRate": 1.0, "pathPattern": "^/api/v2/instances$"}).raise_for_status()
    with pytest.raises(Transient, match="outcome is unknown"):
        await pai.create_instance(spec(instance_type="ecs.c6.large"))
    emulator.admin.delete("/faults")
    assert emulator.admin.get("/instances").json()["total"] == 0


async def test_retry_budget_exhausted_is_typed(pai: Provider, emulator: Emulator) -> None:
    emulator.admin.put("/faults", json={"errorRate": 1.0, "statusCode": 500}).raise_for_status()
    with pytest.raises(Transient) as caught:
        await pai.get_instance("dsw-any")
    assert caught.value.code == "InternalError" and caught.value.status == 500
    emulator.admin.put("/faults", json={"throttleRate": 1.0, "retryAfterSeconds": 0.05}).raise_for_status()
    with pytest.raises(Throttled):
        await pai.get_instance("dsw-any")


async def test_pai_checks_the_instance_type_against_list_ecs_specs(pai: Provider, emulator: Emulator) -> None:
    """An instance type the region does not offer is refused before any CreateInstance, naming what is offered;
    the catalogue (ListEcsSpecs, CPU and GPU) is read once and cached."""
    with pytest.raises(InstanceTypeNotOffered) as refused:
        await pai.create_instance(spec(instance_type="ecs.nope.large"))
    assert "ecs.nope.large" in str(refused.value) and "ecs.g7.xlarge" in str(refused.value)
    assert "ecs.gn6v-c8g1.2xlarge" in str(refused.value)
    assert emulator.calls().get("pai-dsw:CreateInstance") is None
    await pai.create_instance(spec(instance_type="ecs.gn7i-c8g1.2xlarge"))
    assert emulator.calls()["pai-dsw:CreateInstance"] == 1
    assert emulator.calls()["pai-dsw:ListEcsSpecs"] == 2  # CPU and GPU, then cached


async def test_pai_resource_group_instance_requests_shared_memory(pai: Provider, emulator: Emulator) -> None:
    """template.resources.sharedMemoryGiB is RequestedResource.SharedMemory (GB) of CreateInstance, as the official
    SDK's CreateInstanceRequestRequestedResource names it."""
    created = spec(cpu=8, memory_gib=32, gpu=1, gpu_type="A10", shared_memory_gib=16, resource_id="quota-1")
    instance_id = await pai.create_instance(created)
    requested = emulator.instance(instance_id)["attrs"]["RequestedResource"]
    assert requested == {"CPU": "8", "Memory": "32", "GPU": "1", "GPUType": "A10", "SharedMemory": "16"}
    assert (await pai.get_instance(instance_id)).resources.gpu == 1
