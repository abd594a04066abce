"""Scale-out by namespace shards: two releases of the chart with disjoint `watchNamespaces` in one cluster.
Each installs (the CRDs once, its own RBAC and peering object), each operator - run with its release's
rendered argv as its release's ServiceAccount - reconciles its own namespace, and neither one reads or
writes anything in the other's (the API server's audit log). Wall-time cap: 2 minutes."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from notebook_devtools import localcluster
from tests.e2e.test_chart import ALLOW_EMULATOR, CHART, audited, render, service_account_kubeconfig
from tests.emulator import Emulator
from tests.integration.test_reconcile import TEMPLATE, notebook, setup_account, wait_phase
from tests.operator_process import OperatorProcess

WALL_CAP_S = 120


@pytest.fixture
def shards(helm: str, kubeconfig: Path, api: client.ApiClient, crds: list[str]) -> Iterator[dict[str, list[str]]]:
    """Two releases, each watching (and installed in) its own new namespace: {namespace: rendered argv}."""
    suffix = uuid.uuid4().hex[:6]
    releases = {f"shard-a-{suffix}": f"team-a-{suffix}", f"shard-b-{suffix}": f"team-b-{suffix}"}
    argv = {}
    for release, namespace in releases.items():
        client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
        values = ["--set", f"watchNamespaces={{{namespace}}}", "--set", "replicaCount=2", *ALLOW_EMULATOR]
        result = subprocess.run([helm, "install", release, str(CHART), "--namespace", namespace, "--kubeconfig",
                                 str(kubeconfig), *values], capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 0, f"{release}: {result.stderr}"
        (deployment,) = [d for d in render(helm, *values) if d["kind"] == "Deployment"]
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"][1:]
        argv[namespace] = [a for a in args if not a.startswith(("--liveness", "--metrics-port"))]
    yield argv
    for release, namespace in releases.items():
        subprocess.run([helm, "uninstall", release, "--namespace", namespace, "--kubeconfig", str(kubeconfig)],
                       capture_output=True, check=False)  # fmt: skip


def test_two_releases_with_disjoint_namespaces_each_reconcile_only_their_own(
    api: client.ApiClient, local_cluster: localcluster.LocalCluster, shards: dict[str, list[str]],
    emulator: Emulator, tmp_path: Path,
) -> None:  # fmt: skip
    began = time.monotonic()
    operators = []
    accounts = {}
    try:
        for namespace, args in shards.items():
            assert f"--namespace={namespace}" in args and not any(a == "--all-namespaces" for a in args)
            release = "shard-" + namespace.removeprefix("team-")
            account = f"{release}-notebook-operator"
            accounts[namespace] = f"system:serviceaccount:{namespace}:{account}"
            kubeconfig = service_account_kubeconfig(api, local_cluster, namespace, account,
                                                    tmp_path / f"{namespace}.kubeconfig")  # fmt: skip
            env = {"KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1", "PATH": os.environ.get("PATH", "/usr/bin")}
            operators.append(OperatorProcess([*args, "--liveness", "", "--metrics-port", "0"], env,
                                             tmp_path / f"{namespace}.log"))  # fmt: skip
            setup_account(api, namespace, emulator)
            notebook(api, namespace, "nb", {"template": {**TEMPLATE, "name": namespace}, "desiredState": "Running"})
        for namespace in shards:
            wait_phase(api, namespace, "nb", "Running", timeout=60)
        assert emulator.calls().get("pai-dsw:CreateInstance") == 2  # one per shard, none twice
    finally:
        for op in operators:
            op.kill()
    for namespace, user in accounts.items():
        events = audited(local_cluster, user)
        # (the kube-system namespace's uid is read once: the cluster id of ownership tags)
        touched = {e["objectRef"]["namespace"] for e in events if e["objectRef"].get("namespace")
                   and e["objectRef"]["resource"] != "namespaces"}  # fmt: skip
        assert touched == {namespace}, f"{user} touched {touched}"
        # Cluster-scoped: only reading ClusterProviderConfigs and namespace labels (for their namespaceSelector), and
        # the start-up check asking the API server what it may do (a SelfSubjectAccessReview: anyone may) and
        # reading the kube-system namespace (its uid is the cluster id of ownership tags).
        cluster = {(e["objectRef"]["resource"], e["verb"]) for e in events if not e["objectRef"].get("namespace")}
        reads = {(r, v) for r in ("clusterproviderconfigs", "namespaces") for v in ("list", "watch")}
        assert cluster <= reads | {("selfsubjectaccessreviews", "create"), ("namespaces", "get")}, cluster
    assert time.monotonic() - began < WALL_CAP_S
