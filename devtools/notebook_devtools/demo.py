"""`notebook-operator demo`: the whole loop on this machine - local API server, cloud emulator, operator,
sample resources - with a live table until the timed instances are stopped, then a summary."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import yaml
from kubernetes import client, config

from notebook_devtools import demo_view as view
from notebook_devtools import localcluster
from notebook_operator.api.meta import GROUP, VERSION

NAMESPACE = "demo"
MODELARTS_SHARED = "modelarts-shared"  # a ClusterProviderConfig: the admin's account
PAI = ("LTAI-demo", "demo-pai-secret")
HUAWEI = ("HWAK-demo", "demo-huawei-secret")
PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
MODELARTS_PRICES = {"modelarts.vm.cpu.2u": 1.2}  # CNY per hour, illustrative
NO_STOCK = {
    "reasonCode": "InsufficientStock",
    "reasonMessage": "ecs.gn6i-c4g1.xlarge is out of stock in cn-hangzhou",
    "events": ["ResourceAllocating: no stock of ecs.gn6i-c4g1.xlarge in cn-hangzhou", "Instance start failed"],
}


def _spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def _resources(emulator: str, at: str) -> list[dict[str, Any]]:
    def secret(name: str, key: tuple[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "stringData": {"accessKeyId": key[0], "accessKeySecret": key[1]},
        }

    def pc(name: str, provider: str, **extra: Any) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ProviderConfig",
            "metadata": {"name": name},
            "spec": {
                "provider": provider,
                "region": "cn-hangzhou" if provider == "pai-dsw" else "cn-north-4",
                "endpoint": emulator,
                "credentialsSecretRef": {"name": name},
                "pollIntervalSeconds": 2,
                **extra,
            },
        }

    def nb(name: str, pc_name: str, kind: str = "ProviderConfig", **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "NotebookInstance",
            "metadata": {"name": name, "labels": {"team": "demo"}},
            "spec": {"providerConfigRef": {"kind": kind, "name": pc_name}, **spec},
        }

    # The ModelArts account is the admin's (cluster-scoped), shared with the namespaces its selector admits.
    shared = pc(
        MODELARTS_SHARED,
        "modelarts",
        projectId=PROJECT,
        pricing={"currency": "CNY", "perHour": {"modelarts.vm.cpu.2u": 1.2}},
        credentialsSecretRef={"namespace": NAMESPACE, "name": "modelarts"},
        namespaceSelector={"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
    )
    shared["kind"] = "ClusterProviderConfig"

    pai_template = {
        "image": "dsw-registry.cn-hangzhou.cr.aliyuncs.com/pai/modelscope:1.9.1",
        "instanceType": "ecs.gn6i-c4g1.xlarge",
    }
    return [
        secret("pai", PAI),
        secret("modelarts", HUAWEI),
        pc("pai", "pai-dsw"),
        # ModelArts publishes no prices through its API: the account's own (PAI-DSW's come from ListEcsSpecs).
        shared,
        nb(
            "alice-gpu",
            "pai",
            template={"name": "alice-gpu", **pai_template},
            desiredState="Running",
            shutdown={"at": at},
        ),
        nb(
            "bob-gpu",
            "pai",
            template={"name": "bob-gpu", **pai_template},
            desiredState="Running",
            # warned a minute ahead: the warning goes out as it starts, the stop a minute later
            shutdown={"afterRunning": "1m", "warnMinutes": 1},
        ),
        nb(
            "carol-cpu",
            MODELARTS_SHARED,
            "ClusterProviderConfig",
            template={
                "name": "carol-cpu",
                "image": "e1a07296-22a8-4f05-8bc8-e936c8e54090",
                "instanceType": "modelarts.vm.cpu.2u",
            },
            desiredState="Running",
        ),
        # Stop a notebook whose CPU and GPU stayed under 10% for a minute (minutes, so the demo is short).
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "IdleCullerPolicy",
            "metadata": {"name": "gpu-idle"},
            "spec": {
                "selector": {"matchLabels": {"team": "demo"}},
                "cpuPercent": 10,
                "gpuPercent": 10,
                "idleMinutes": 1,
                "windowMinutes": 1,
                # The environment of a culled notebook is saved first (a NotebookSnapshot), then it stops.
                "snapshotBeforeStop": True,
                "snapshotImageRepository": "dsw-registry.cn-hangzhou.cr.aliyuncs.com/demo/culled",
            },
        },
    ]


def _apply(api: client.ApiClient, obj: dict[str, Any]) -> None:
    if obj["kind"] == "Secret":
        client.CoreV1Api(api).create_namespaced_secret(NAMESPACE, obj)  # type: ignore[arg-type]  # a dict body
        return
    if obj["kind"] == "ClusterProviderConfig":
        client.CustomObjectsApi(api).create_cluster_custom_object(GROUP, VERSION, "clusterproviderconfigs", obj)
        return
    plural = {
        "ProviderConfig": "providerconfigs",
        "NotebookInstance": "notebookinstances",
        "IdleCullerPolicy": "idlecullerpolicies",
    }[obj["kind"]]
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, obj)


def _items(api: client.ApiClient, plural: str = "notebookinstances") -> list[dict[str, Any]]:
    items: dict[str, Any] = cast(
        dict[str, Any],
        client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural),
    )
    return list(items["items"])


def _frame(api: client.ApiClient, items: list[dict[str, Any]]) -> list[str]:
    events = client.CoreV1Api(api).list_namespaced_event(NAMESPACE).items
    lines = view.table(items, datetime.now(UTC))
    happened = view.feed(events)
    return [*lines, "", "what happened:" if happened else "", *happened]


def _policy_status(api: client.ApiClient, culled: int, deadline: float) -> dict[str, Any]:
    """The policy's status once its periodic update has counted the culls (or at the deadline)."""
    while True:
        body = cast(
            dict[str, Any],
            client.CustomObjectsApi(api).get_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "idlecullerpolicies", "gpu-idle"
            ),
        )
        status: dict[str, Any] = body.get("status") or {}
        if status.get("stopped") == culled or time.monotonic() > deadline:
            return status
        time.sleep(1)


def _seed(emulator: str, **spec: Any) -> str:
    instance_id: str = httpx.post(f"{emulator}/_emulator/instances", json=spec).json()["id"]
    return instance_id


REPO = Path(__file__).resolve().parents[2]
IMAGE_ARCHIVE = REPO / ".cluster" / "image" / "image.tar"
RELEASE, RELEASE_NAMESPACE = "notebook-operator", "notebook-operator"


def _start_node(bin_dir: Path, workdir: Path, cluster: localcluster.LocalCluster) -> None:
    from notebook_devtools import node as local_node

    if not IMAGE_ARCHIVE.exists():
        raise RuntimeError(f"no operator image at {IMAGE_ARCHIVE}: make image (make demo NODE=1 does)")
    print("notebook-operator demo: starting a node (containerd, kubelet, kube-proxy, scheduler) ...", flush=True)
    # Where `localcluster down --dir <cluster>` finds it, as for `make cluster NODE=1`.
    local_node.start(cluster, bin_dir, cluster.workdir / "node", [IMAGE_ARCHIVE])


def _helm_install(bin_dir: Path, cluster: localcluster.LocalCluster, emulator: str) -> None:
    """The chart, as a user installs it: the operator as a pod on the node, from the image `make image` built."""
    allowed = json.dumps(["^" + re.escape(emulator) + "$"])  # the admin names the emulator: plain http to it is fine
    result = subprocess.run(
        [str(bin_dir / "helm"), "install", RELEASE, str(REPO / "charts" / "notebook-operator"), "--namespace",
         RELEASE_NAMESPACE, "--create-namespace", "--kubeconfig", str(cluster.kubeconfig), "--wait", "--timeout",
         "3m", "--set", "image.pullPolicy=Never", "--set", f"watchNamespaces={{{NAMESPACE}}}",
         "--set-json", f"security.allowedEndpoints={allowed}"],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"helm install failed: {result.stderr.strip()}")
    print(f"chart installed: the operator runs as a pod in namespace {RELEASE_NAMESPACE} (kubectl get pods -A)")


def run(bin_dir: Path, workdir: Path, keep: bool = False, timeout: float = 270, node: bool = False) -> int:
    """node=True: the API server serves a real node, and the operator is the chart's pod on it."""
    started = time.monotonic()
    print(f"notebook-operator demo: starting a local API server in {workdir} ...", flush=True)
    cluster = localcluster.start(bin_dir, workdir / "cluster", node=node)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if node:
            _start_node(bin_dir, workdir, cluster)
        port = localcluster.free_port()
        # On a node the operator's pod reaches the emulator at the machine's address, not loopback.
        emulator = f"http://{cluster.node_ip or '127.0.0.1'}:{port}"
        procs.append(
            _spawn(
                [
                    sys.executable,
                    "-m",
                    "notebook_operator",
                    "emulator",
                    "--host",
                    "0.0.0.0" if node else "127.0.0.1",  # noqa: S104 (pods reach it at the machine's address)
                    "--port",
                    str(port),
                    "--credential",
                    ":".join(PAI),
                    "--credential",
                    ":".join(HUAWEI),
                    "--transition-delay",
                    "1",
                ],
                workdir / "emulator.log",
            )
        )
        _wait_http(f"{emulator}/_emulator/health")
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})  # type: ignore[arg-type]
        if node:  # the chart installs the CRDs, then the operator's pod waits for the resources
            _helm_install(bin_dir, cluster, emulator)
        else:
            ext = client.ApiextensionsV1Api(api)
            for path in sorted((REPO / "crds").glob("*.yaml")):
                ext.create_custom_resource_definition(yaml.safe_load(path.read_text()))
            time.sleep(2)
        # Instances clicked together in the console, adopted by id: one only observed, one idle since it
        # started (the policy will stop it), one with a busy GPU behind an idle CPU (never stopped), and a
        # stopped one asked to run that cannot start: its GPU type is out of stock, and the cloud says so.
        pai = {"cloud": "pai-dsw", "account": PAI[0], "gpu": 1, "attrs": {"EcsSpec": "ecs.gn6i-c4g1.xlarge"}}
        adopted = {
            "legacy-console": (_seed(emulator, name="legacy-console", **pai), {"managementPolicy": "Observe"}, {}),
            "dave-idle-gpu": (
                _seed(emulator, name="dave-idle-gpu", utilization={"cpu": 2, "gpu": 0}, **pai),
                {},
                {"team": "demo"},
            ),
            "erin-busy-gpu": (
                _seed(emulator, name="erin-busy-gpu", utilization={"cpu": 3, "gpu": 85}, **pai),
                {},
                {"team": "demo"},
            ),
        }
        no_stock = _seed(emulator, name="frank-no-stock", status="Stopped", **pai)
        httpx.post(f"{emulator}/_emulator/instances/{no_stock}/fail", json=NO_STOCK).raise_for_status()
        adopted["frank-no-stock"] = (no_stock, {"desiredState": "Running"}, {})
        at = (datetime.now(UTC) + timedelta(seconds=25)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for obj in _resources(emulator, at):
            _apply(api, obj)
        for name, (instance_id, spec, labels) in adopted.items():
            ref = {"providerConfigRef": {"name": "pai"}, "instanceId": instance_id}
            _apply(
                api,
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "NotebookInstance",
                    "metadata": {"name": name, "labels": labels},
                    "spec": {**ref, **spec},
                },
            )
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        procs += (
            []
            if node
            else [
                _spawn(
                    [
                        sys.executable,
                        "-m",
                        "notebook_operator",
                        "run",
                        "--standalone",
                        "-n",
                        NAMESPACE,
                        "--liveness",
                        "",
                        "--metrics-port",
                        "0",
                        # The emulator is on loopback: allowed for this namespace's ProviderConfigs by the admin (us).
                        "--allowed-endpoint",
                        localcluster.EMULATOR_ENDPOINTS,
                    ],
                    workdir / "operator.log",
                    env,
                )
            ]
        )
        print(
            f"operator running; alice-gpu stops at {at}, bob-gpu one minute after it starts (warned a minute\n"
            "ahead), dave-idle-gpu when it has been idle for a minute\n",
            flush=True,
        )
        expected = {"alice-gpu", "bob-gpu", "dave-idle-gpu"}
        stopped: dict[str, str] = {}
        settled: set[str] = set()
        screen = view.Screen(sys.stdout)
        items: list[dict[str, Any]] = []
        while time.monotonic() - started < timeout:
            items = _items(api)
            screen.show(_frame(api, items))
            stopped = {
                i["metadata"]["name"]: i["status"]["stoppedBy"]
                for i in items
                if (i.get("status") or {}).get("stoppedBy")
            }
            # stoppedBy is written with the stop call; the summary waits until the cloud says Stopped too.
            settled = {i["metadata"]["name"] for i in items if (i.get("status") or {}).get("phase") == "Stopped"}
            if expected <= set(stopped) & settled:
                break
            time.sleep(5)
        timers = sorted(n for n, by in stopped.items() if "shutdown" in by)
        culled = sorted(n for n, by in stopped.items() if "IdleCullerPolicy" in by)
        policy = _policy_status(api, len(culled), deadline=time.monotonic() + 20)
        calls = httpx.get(f"{emulator}/_emulator/calls").json()["calls"]
        # Stops sent: StopInstance calls and the members of batched StopInstances calls.
        journal = httpx.get(f"{emulator}/_emulator/journal").json()["entries"]
        stop_routes = ("pai-dsw:StopInstance", "pai-dsw:StopInstances", "modelarts:StopNotebook")
        stops = sum(1 for e in journal if e["instance"] and e["route"] in stop_routes)
        running = sorted(i["metadata"]["name"] for i in items if (i.get("status") or {}).get("phase") == "Running")
        print("summary:")
        for line in view.money_lines(policy, items, sorted(stopped), team=len(items)):
            print(line)
        print(f"  instances mirrored: {len(items)} (3 created, {len(adopted)} adopted)")
        failed = [f"{i['metadata']['name']} ({i['status'].get('cloudReason', 'no reason given')})"
                  for i in items if (i.get("status") or {}).get("phase") == "Failed"]  # fmt: skip
        print(f"  failed to start: {', '.join(failed) or 'none'}")
        print(f"  stopped on their shutdown timers: {', '.join(timers) or 'none'}")
        print(f"  culled when idle: {', '.join(culled) or 'none'}")
        snapshots = _items(api, "notebooksnapshots")
        saved = [f"{s['metadata']['name']} ({(s.get('status') or {}).get('phase', 'Pending')})" for s in snapshots]
        print(f"  snapshots saved before culls: {', '.join(saved) or 'none'}")
        print(f"  still running: {', '.join(running) or 'none'}")
        print(f"  instances stopped: {len(stopped)}")
        print(
            f"  IdleCullerPolicy gpu-idle: matched {policy.get('matched', 0)}, stopped {policy.get('stopped', 0)}, "
            f"estimated hours saved {policy.get('estimatedHoursSaved', 0):.2f}"
        )
        print(
            f"  cloud calls: {sum(calls.values())} ({calls.get('pai-dsw:ListInstances', 0)} PAI-DSW list pages,"
            f" {calls.get('pai-dsw:GetInstanceMetrics', 0)} metrics reads, "
            f"{stops} stops)"
        )
        ok = expected <= set(stopped) & settled
        if keep:
            pids = " ".join(str(p.pid) for p in procs)
            down = f".venv/bin/python -m notebook_devtools.localcluster down --dir {workdir / 'cluster'}"
            down += f" --bin-dir {bin_dir}"
            print(
                f"\nleft running:\n  export KUBECONFIG={cluster.kubeconfig}\n  emulator: {emulator}\n"
                f"  stop with: kill {pids}; {down}"
            )
        return 0 if ok else 1
    finally:
        if not keep:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            if node:
                from notebook_devtools import node as local_node

                left = local_node.stop(cluster.workdir / "node", bin_dir)
                if left:
                    print("the node left behind: " + "; ".join(left), file=sys.stderr)
            cluster.stop()
