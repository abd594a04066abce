"""Session fixtures: a real kube-apiserver + etcd built from Go modules, the CRDs, a namespace per test.
Tests under integration/ are marked `integration`, those under e2e/ `e2e`.

`make test` runs the suite in parallel (pytest-xdist): each worker is a pytest session of its own, so it
starts its own API server, etcd and emulator once and its tests run one after another on them, each in a
namespace of its own. No worker sees another's cluster, cloud or ports. Tests marked `slow(seconds)` are
scheduled first, longest first, each followed by a quick one, so the waits overlap and the workers end
together."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from notebook_devtools import localcluster
from tests.emulator import Emulator, running_emulator
from tests.kube import REPO, wait_for

PORTS_PER_WORKER = 1000


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ... under xdist
    if worker.startswith("gw") and worker[2:].isdigit():
        # Below the kernel's ephemeral ports (32768-): a port range per worker, inherited by what it starts.
        low = 20_000 + int(worker[2:]) * PORTS_PER_WORKER
        os.environ[localcluster.PORT_RANGE_ENV] = f"{low}-{low + PORTS_PER_WORKER - 1}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
        elif "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)
    items[:] = scheduling_order(items)


def expected_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("slow")
    return float(marker.args[0]) if marker and marker.args else 0.0


def scheduling_order(items: list[pytest.Item]) -> list[pytest.Item]:
    """The slow tests first, longest first, each followed by a quick one; then the rest in their order.

    xdist's load scheduler keeps two tests queued on a worker and hands out the next one whenever a worker
    finishes one: with this order each slow test goes to the worker that is free first (longest first is
    the classic greedy schedule), and the quick test queued behind it never holds a slow one back."""
    slow = sorted((i for i in items if expected_seconds(i) > 0), key=expected_seconds, reverse=True)
    quick = [i for i in items if expected_seconds(i) == 0]
    ordered: list[pytest.Item] = []
    for index, item in enumerate(slow):
        ordered.append(item)
        if index < len(quick):
            ordered.append(quick[index])
    return ordered + quick[len(slow) :]


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[localcluster.LocalCluster]:
    bins = REPO / ".cluster" / "bin"
    subprocess.run([str(REPO / "hack" / "build-kube.sh"), str(bins)], check=True)
    cluster = localcluster.start(bins, tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def kubeconfig(local_cluster: localcluster.LocalCluster) -> Path:
    return local_cluster.kubeconfig


@pytest.fixture(scope="session")
def api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> list[str]:
    return [str(REPO / ".cluster" / "bin" / "kubectl"), "--kubeconfig", str(kubeconfig)]


@pytest.fixture(scope="session")
def crds(api: client.ApiClient) -> list[str]:
    """Install crds/*.yaml and wait until each is Established."""
    ext = client.ApiextensionsV1Api(api)
    names = []
    for path in sorted((REPO / "crds").glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        try:
            ext.create_custom_resource_definition(body)
        except client.ApiException as e:
            if e.status != 409:  # already there: a test's helm install on this worker's API server came first
                raise
        names.append(body["metadata"]["name"])

    def established() -> bool:
        for name in names:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    wait_for(established, timeout=30, what="CRDs Established")
    return names


@pytest.fixture(scope="session")
def peering_crds(api: client.ApiClient, crds: list[str]) -> list[str]:
    """kopf's KopfPeering/ClusterKopfPeering CRDs, as the chart installs them (for HA tests)."""
    ext = client.ApiextensionsV1Api(api)
    names = []
    for body in yaml.safe_load_all((REPO / "charts/notebook-operator/crds/kopf.dev_peerings.yaml").read_text()):
        if not body:
            continue
        try:
            ext.create_custom_resource_definition(body)
        except client.ApiException as e:
            if e.status != 409:
                raise
        names.append(body["metadata"]["name"])

    def established() -> bool:
        return all(
            any(c.type == "Established" and c.status == "True"
                for c in ext.read_custom_resource_definition(n).status.conditions or [])
            for n in names
        )  # fmt: skip

    wait_for(established, timeout=30, what="peering CRDs Established")
    return names


@pytest.fixture
def namespace(api: client.ApiClient, crds: list[str]) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def operator_env(kubeconfig: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = str(kubeconfig)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session")
def emulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("emulator"), "--transition-delay", "0") as emulator:
        yield emulator


@pytest.fixture
def emulator(emulator_process: Emulator) -> Emulator:
    emulator_process.reset()
    return emulator_process
