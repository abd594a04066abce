"""The chart installed for real: the image `make image` built, two pods on a real node, their real probes.

A kubelet runs the pods here (notebook_devtools.node: containerd, kube-proxy, scheduler, controllers), so what only
a kubelet exercises is exercised: the probes, runAsNonRoot and readOnlyRootFilesystem, the projected ServiceAccount
token, the downward-API env, the metrics Service, a rolling update, a pod deleted under the active replica, and a
start-up failure as a CrashLoopBackOff whose logs say why. The emulator runs on the host; the pods reach it at the
machine's address. At the end the node is stopped and nothing of it may be left on the machine.

Wall-time cap: 6 minutes after the builds (asserted at the end). Skipped where this machine cannot run a node
(not root, no cgroups, no image built), except under NODE_TESTS=required (CI), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from notebook_devtools import localcluster
from notebook_devtools import node as local_node
from notebook_operator.api.meta import GROUP, VERSION
from tests.e2e.test_failover import _stops
from tests.e2e.test_keyless import _discovery
from tests.emulator import Emulator, running_emulator
from tests.kube import REPO, load_manifests, wait_for

WALL_CAP_S = 360
BIN = REPO / ".cluster" / "bin"
IMAGE_ARCHIVE = REPO / ".cluster" / "image" / "image.tar"
CHART = REPO / "charts" / "notebook-operator"
RELEASE, SYSTEM, TEAM = "nbop", "notebook-operator", "team-a"
EXAMPLE_KEY = ("LTAI-example-key-id", "example-secret")  # examples/pai-dsw/providerconfig.yaml's Secret
ACCOUNT_ID = "5550001112223333"
AUDIENCE = "sts.aliyuncs.com"
MUTATIONS = ("Stop", "Start", "Create", "Delete", "Update")


def _unavailable(reason: str) -> None:
    if os.environ.get("NODE_TESTS") == "required":
        pytest.fail(f"NODE_TESTS=required, but {reason}")
    pytest.skip(reason)


@dataclass
class Node:
    cluster: localcluster.LocalCluster
    node: local_node.LocalNode
    kubectl: list[str]
    api: client.ApiClient

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self.kubectl, *args], capture_output=True, text=True, timeout=120)
        assert not check or result.returncode == 0, result.stderr
        return result

    def helm(self, *args: str) -> None:
        result = subprocess.run([str(BIN / "helm"), *args, "--kubeconfig", str(self.cluster.kubeconfig)],
                                capture_output=True, text=True, timeout=180)  # fmt: skip
        assert result.returncode == 0, result.stderr

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        found = self.run("get", "pods", "-n", namespace, "-l", selector, "-o", "json")
        items: list[dict[str, Any]] = json.loads(found.stdout)["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def _diagnose(n: Node) -> None:
    """What a failed step leaves for the reader (captured output): the resources' status and the operator's logs."""
    for args in (["get", "nbi,nbpc,nbcpc", "-A", "-o", "yaml"], ["get", "pods", "-A", "-o", "wide"],
                 ["logs", "-n", SYSTEM, "-l", "app.kubernetes.io/name=notebook-operator", "--tail", "40"]):  # fmt: skip
        print(f"$ kubectl {' '.join(args)}\n{n.run(*args, check=False).stdout[-6000:]}")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    try:
        local_node.check_host(BIN)
    except local_node.NodeUnavailable as e:
        _unavailable(str(e))
    if not IMAGE_ARCHIVE.exists():
        _unavailable(f"no operator image at {IMAGE_ARCHIVE}: run `make image`")
    cluster = localcluster.start(BIN, tmp_path / "cluster", node=True)
    try:
        started = local_node.start(cluster, BIN, tmp_path / "node", [IMAGE_ARCHIVE])
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        installed = Node(cluster, started, [str(BIN / "kubectl"), "--kubeconfig", str(cluster.kubeconfig)], api)
        yield installed
        if local_node.LocalNode.load(tmp_path / "node"):  # the test did not get to its end
            _diagnose(installed)
        api.close()
    finally:
        if not local_node.stop(tmp_path / "node", BIN):  # a no-op when the test stopped it itself
            shutil.rmtree(tmp_path / "node", ignore_errors=True)  # the unpacked images: about 1 GB
        cluster.stop()


def _metrics(pod: dict[str, Any]) -> dict[str, float]:
    """The pod's metrics, scraped at its address as Prometheus does from the metrics Service's endpoints."""
    with urllib.request.urlopen(f"http://{pod['status']['podIP']}:8081/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {m[1]: float(m[2]) for m in re.finditer(r"^(notebook_operator_\w+) ([0-9.e+-]+)$", text, re.M)}


def _service_endpoints(n: Node) -> set[str]:
    slices = json.loads(
        n.run(
            "get",
            "endpointslices",
            "-n",
            SYSTEM,
            "-l",
            f"kubernetes.io/service-name={RELEASE}-notebook-operator-metrics",
            "-o",
            "json",
        ).stdout
    )
    return {a for s in slices["items"] for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")
            for a in e["addresses"]}  # fmt: skip


def _ready_pods(n: Node, count: int, exclude: set[str] = frozenset(), timeout: float = 120) -> list[dict[str, Any]]:  # type: ignore[assignment]
    def ready() -> list[dict[str, Any]] | None:
        pods = [p for p in n.pods(SYSTEM, "app.kubernetes.io/name=notebook-operator")
                if p["metadata"]["name"] not in exclude]  # fmt: skip
        fine = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                       for c in p["status"].get("conditions") or [])]  # fmt: skip
        return fine if len(fine) == count == len(pods) else None

    return wait_for(ready, timeout=timeout, what=f"{count} Ready operator pods")


def _active(pods: list[dict[str, Any]]) -> list[str]:
    """The pods whose metrics say they are the active replica."""
    return [p["metadata"]["name"] for p in pods if _metrics(p).get("notebook_operator_active") == 1]


def _container_facts(n: Node, pod: str) -> tuple[str, str, str]:
    status = n.run("exec", "-n", SYSTEM, pod, "--", "cat", "/proc/1/status").stdout
    mountinfo = n.run("exec", "-n", SYSTEM, pod, "--", "cat", "/proc/1/mountinfo").stdout
    root = next(line for line in mountinfo.splitlines() if line.split()[4] == "/")
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M)
    no_new_privs = re.search(r"^NoNewPrivs:\s+(\d)", status, re.M)
    assert uid and no_new_privs
    return uid[1], no_new_privs[1], root.split()[5]


def _phase(n: Node, namespace: str, name: str) -> str | None:
    obj = client.CustomObjectsApi(n.api).get_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances",
                                                                      name)  # fmt: skip
    phase: str | None = (obj.get("status") or {}).get("phase")
    return phase


def _adopt_with_timer(n: Node, cloud: Emulator, name: str, due: float) -> str:
    instance_id: str = cloud.seed(cloud="pai-dsw", account=ACCOUNT_ID, name=name)["id"]
    client.CustomObjectsApi(n.api).create_namespaced_custom_object(GROUP, VERSION, TEAM, "notebookinstances", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookInstance", "metadata": {"name": name},
        "spec": {"providerConfigRef": {"kind": "ClusterProviderConfig", "name": "keyless"}, "instanceId": instance_id,
                 "shutdown": {"at": datetime.fromtimestamp(due, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}},
    })  # fmt: skip
    return instance_id


def _mutations(cloud: Emulator, since: float) -> list[tuple[str, str]]:
    """(route, instance) of every change asked of the cloud since then; a batched call has a line per member. Tag
    writes are not changes of the instance's state: the adopted instance gets its ownership tags meanwhile."""
    entries: list[dict[str, Any]] = cloud.admin.get("/journal").json()["entries"]
    return [(e["route"], e["instance"]) for e in entries
            if e["at"] > since and e["instance"] and any(word in e["route"] for word in MUTATIONS)
            and "Labels" not in e["route"]]  # fmt: skip


@pytest.mark.slow(125)
def test_chart_installed_on_a_node_runs_fails_over_upgrades_and_uninstalls(node: Node, tmp_path: Path) -> None:
    began = time.monotonic()
    n = node
    custom = client.CustomObjectsApi(n.api)

    # Before the chart: the operator, run against a cluster without its CRDs, says so and exits.
    result = subprocess.run([sys.executable, "-m", "notebook_operator", "run", "--standalone", "--kubeconfig",
                             str(n.cluster.kubeconfig)], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1 and "the CRDs are not installed" in result.stderr, result.stderr

    issuer = _discovery(n.cluster, "/.well-known/openid-configuration")["issuer"]
    (tmp_path / "jwks.json").write_text(json.dumps(_discovery(n.cluster, "/openid/v1/jwks")))
    with running_emulator(tmp_path, "--host", "0.0.0.0", "--transition-delay", "0.3",  # noqa: S104 (pods reach it)
                          "--credential", ":".join(EXAMPLE_KEY), "--oidc-jwks", str(tmp_path / "jwks.json"),
                          "--oidc-issuer", issuer) as cloud:  # fmt: skip
        endpoint = f"http://{n.cluster.node_ip}:{cloud.url.rsplit(':', 1)[1]}"
        allowed = json.dumps(["^" + re.escape(endpoint) + "$"])  # plain http: the admin names this origin
        values = ["--set", "replicaCount=2", "--set", "image.pullPolicy=Never",
                  "--set", "identity.oidc.enabled=true", "--set", f"identity.oidc.audience={AUDIENCE}",
                  "--set-json", f"security.allowedEndpoints={allowed}"]  # fmt: skip
        n.helm("install", RELEASE, str(CHART), "--namespace", SYSTEM, "--create-namespace", *values)

        # Both pods Ready through their real probes; exactly one is the active replica.
        pods = _ready_pods(n, 2)
        assert _service_endpoints(n) == {p["status"]["podIP"] for p in pods}
        wait_for(lambda: len(_active(pods)) == 1, timeout=60, what="one active replica")
        (first_active,) = _active(pods)
        # The replica's peering identity is its pod's name: the kubelet filled POD_NAME from the downward API.
        wait_for(lambda: f"this replica ({first_active}/" in n.run("logs", "-n", SYSTEM, first_active).stdout,
                 timeout=30, what="the active replica names itself by its pod")  # fmt: skip
        for pod in pods:  # as the chart declares them, read from the running containers
            uid, no_new_privs, root_options = _container_facts(n, pod["metadata"]["name"])
            assert uid != "0" and no_new_privs == "1" and root_options.split(",")[0] == "ro", (uid, root_options)

        # The examples, pointed at the emulator: the operator in a pod reaches the host and reconciles them.
        n.run("create", "namespace", TEAM)
        n.run("label", "namespace", TEAM, "keyless=yes")
        for manifest in load_manifests(REPO / "examples/pai-dsw/providerconfig.yaml"):
            if manifest["kind"] == "ProviderConfig":
                manifest["spec"] |= {"endpoint": endpoint, "pollIntervalSeconds": 2}
            (tmp_path / "example.yaml").write_text(yaml.safe_dump(manifest))
            n.run("apply", "-n", TEAM, "-f", str(tmp_path / "example.yaml"))
        n.run("apply", "-n", TEAM, "-f", str(REPO / "examples/pai-dsw/notebookinstance.yaml"))
        wait_for(lambda: _phase(n, TEAM, "alice-gpu") == "Running", timeout=60, what="example notebook Running")

        # Keyless: the operator's own projected token (mounted by the kubelet), verified by the emulator against
        # the API server's JWKS.
        custom.create_cluster_custom_object(GROUP, VERSION, "clusterproviderconfigs", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterProviderConfig", "metadata": {"name": "keyless"},
            "spec": {"provider": "pai-dsw", "region": "cn-hangzhou", "endpoint": endpoint, "pollIntervalSeconds": 2,
                     "namespaceSelector": {"matchLabels": {"keyless": "yes"}},
                     "oidc": {"roleArn": f"acs:ram::{ACCOUNT_ID}:role/notebook-operator",
                              "oidcProviderArn": f"acs:ram::{ACCOUNT_ID}:oidc-provider/local",
                              "stsEndpoint": endpoint, "durationSeconds": 900}},
        })  # fmt: skip

        # The active pod deleted as a shutdown timer falls due: the other takes over, the stop happens once.
        (active,) = _active(pods)
        due = time.time() + 20
        failover_id = _adopt_with_timer(n, cloud, "t-failover", due)
        wait_for(lambda: _phase(n, TEAM, "t-failover") == "Running", timeout=30, what="t-failover mirrored")
        assert any(e["status"] == 200 for e in cloud.admin.get(
            "/journal", params={"route": "sts:AssumeRoleWithOIDC"}).json()["entries"])  # fmt: skip
        time.sleep(max(0.0, due - 1 - time.time()))
        n.run("delete", "pod", "-n", SYSTEM, active, "--wait=false")
        wait_for(lambda: _phase(n, TEAM, "t-failover") == "Stopped", timeout=60, what="t-failover stopped")
        pods = _ready_pods(n, 2, exclude={active})
        wait_for(lambda: len(_active(pods)) == 1, timeout=60, what="one active replica after the takeover")
        time.sleep(5)  # a second stop, if any, would come within a poll or two
        assert len(_stops(cloud, failover_id)) == 1, _stops(cloud, failover_id)

        # helm upgrade changing a value rolls both pods; a timer due during the roll is acted on once.
        before = {p["metadata"]["name"] for p in pods}
        rolled_at = time.time()
        roll_id = _adopt_with_timer(n, cloud, "t-roll", rolled_at + 12)
        n.helm("upgrade", RELEASE, str(CHART), "--namespace", SYSTEM, *values,
               "--set-string", "podAnnotations.rollout=2")  # fmt: skip
        pods = _ready_pods(n, 2, exclude=before)
        wait_for(lambda: _phase(n, TEAM, "t-roll") == "Stopped", timeout=60, what="t-roll stopped")
        wait_for(lambda: len(_active(pods)) == 1, timeout=60, what="one active replica after the upgrade")
        time.sleep(5)
        assert len(_stops(cloud, roll_id)) == 1, _stops(cloud, roll_id)
        changes = _mutations(cloud, rolled_at)
        assert changes in ([("pai-dsw:StopInstance", roll_id)], [("pai-dsw:StopInstances", roll_id)]), changes

        # helm uninstall: the custom resources and the cloud instances stay as they were.
        names = {i["metadata"]["name"] for i in custom.list_namespaced_custom_object(
            GROUP, VERSION, TEAM, "notebookinstances")["items"]}  # fmt: skip
        cloud_before = {i: cloud.instance(i)["status"] for i in (failover_id, roll_id)}
        uninstalled_at = time.time()
        n.helm("uninstall", RELEASE, "--namespace", SYSTEM, "--wait")
        wait_for(lambda: not n.pods(SYSTEM, "app.kubernetes.io/name=notebook-operator"), timeout=60,
                 what="operator pods gone")  # fmt: skip
        after = {i["metadata"]["name"] for i in custom.list_namespaced_custom_object(
            GROUP, VERSION, TEAM, "notebookinstances")["items"]}  # fmt: skip
        assert after == names == {"alice-gpu", "t-failover", "t-roll"}
        assert {i: cloud.instance(i)["status"] for i in cloud_before} == cloud_before
        assert not _mutations(cloud, uninstalled_at)

    # A start-up failure in a pod: RBAC refuses the watch. CrashLoopBackOff, and its logs say why in one line.
    n.run("create", "serviceaccount", "powerless", "-n", TEAM)
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    image = f"ghcr.io/notebook-operator/notebook-operator:{version}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "refused", "labels": {"app": "refused"}},
           "spec": {"serviceAccountName": "powerless", "containers": [{
               "name": "operator", "image": image, "imagePullPolicy": "Never",
               "args": ["run", "--standalone", "--namespace", TEAM],
               "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                   "allowPrivilegeEscalation": False}}]}}  # fmt: skip
    (tmp_path / "refused.yaml").write_text(yaml.safe_dump(pod))
    n.run("apply", "-n", TEAM, "-f", str(tmp_path / "refused.yaml"))

    def crash_looping() -> bool:
        """Restarted at least twice, having exited 1 each time (the kubelet says CrashLoopBackOff between
        restarts; on a loaded machine the status is sampled as often right after an exit, as `Error`)."""
        (found,) = n.pods(TEAM, "app=refused")
        container = (found["status"].get("containerStatuses") or [{}])[0]
        state, last = container.get("state") or {}, (container.get("lastState") or {}).get("terminated") or {}
        exited = state.get("terminated") or last
        backing_off = (state.get("waiting") or {}).get("reason") == "CrashLoopBackOff"
        settled = backing_off or "terminated" in state
        return bool(container.get("restartCount", 0) >= 2 and exited.get("exitCode") == 1 and settled)

    wait_for(crash_looping, timeout=120, what="a crash loop (restarted twice, exit code 1)")

    def said() -> list[str] | None:
        """The log of the container that last said something: the current one, else the previous (backing off,
        the current one does not exist yet)."""
        for previous in ([], ["--previous"]):
            result = n.run("logs", "-n", TEAM, "refused", *previous, check=False)
            lines = result.stdout.strip().splitlines()
            if result.returncode == 0 and lines:
                return lines
        return None

    logs = wait_for(said, timeout=30, what="the crash-looping container's log")
    assert logs == [f"notebook-operator: RBAC refuses list notebookinstances.{GROUP} in namespace {TEAM} to "
                    f"system:serviceaccount:{TEAM}:powerless: grant the chart's ClusterRole (or Role) to this "
                    "identity, or watch only namespaces it may read (--namespace)"], logs  # fmt: skip

    # make cluster-down's teardown: nothing of the node is left on the machine.
    assert local_node.stop(n.node.workdir, BIN) == []
    assert time.monotonic() - began < WALL_CAP_S
