"""`notebook-operator demo`: the whole loop on this machine - local API server, cloud emulator, operator,
sample resources - with a live table until the timed instances are stopped, then a summary."""

from __future__ import annotations

import os
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

from notebook_operator import localcluster
from notebook_operator.api.meta import GROUP, VERSION

NAMESPACE = "demo"
PAI = ("LTAI-demo", "demo-pai-secret")
HUAWEI = ("HWAK-demo", "demo-huawei-secret")
PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


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
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                "stringData": {"accessKeyId": key[0], "accessKeySecret": key[1]}}  # fmt: skip

    def pc(name: str, provider: str, **extra: Any) -> dict[str, Any]:
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ProviderConfig", "metadata": {"name": name},
                "spec": {"provider": provider, "region": "cn-hangzhou" if provider == "pai-dsw" else "cn-north-4",
                         "endpoint": emulator, "credentialsSecretRef": {"name": name}, "pollIntervalSeconds": 2,
                         **extra}}  # fmt: skip

    def nb(name: str, pc_name: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookInstance",
                "metadata": {"name": name, "labels": {"team": "demo"}},
                "spec": {"providerConfigRef": {"name": pc_name}, **spec}}  # fmt: skip

    pai_template = {"image": "dsw-registry.cn-hangzhou.cr.aliyuncs.com/pai/modelscope:1.9.1", "instanceType":
                    "ecs.gn6i-c4g1.xlarge"}  # fmt: skip
    return [
        secret("pai", PAI), secret("modelarts", HUAWEI),
        pc("pai", "pai-dsw"), pc("modelarts", "modelarts", projectId=PROJECT),
        nb("alice-gpu", "pai", template={"name": "alice-gpu", **pai_template}, desiredState="Running",
           shutdown={"at": at}),
        nb("bob-gpu", "pai", template={"name": "bob-gpu", **pai_template}, desiredState="Running",
           shutdown={"afterRunning": "1m"}),
        nb("carol-cpu", "modelarts", template={"name": "carol-cpu", "image": "e1a07296-22a8-4f05-8bc8-e936c8e54090",
                                               "instanceType": "modelarts.vm.cpu.2u"}, desiredState="Running"),
    ]  # fmt: skip


def _apply(api: client.ApiClient, obj: dict[str, Any]) -> None:
    if obj["kind"] == "Secret":
        client.CoreV1Api(api).create_namespaced_secret(NAMESPACE, obj)  # type: ignore[arg-type]  # a dict body
        return
    plural = {"ProviderConfig": "providerconfigs", "NotebookInstance": "notebookinstances"}[obj["kind"]]
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, obj)


def _table(api: client.ApiClient) -> tuple[str, list[dict[str, Any]]]:
    items: dict[str, Any] = cast(
        dict[str, Any],
        client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "notebookinstances"),
    )
    rows = [["NAME", "PROVIDER", "INSTANCE ID", "PHASE", "DESIRED", "NEXT SHUTDOWN", "LAST ACTION"]]
    for item in sorted(items["items"], key=lambda i: i["metadata"]["name"]):
        s = item.get("status") or {}
        last = s.get("lastAction") or {}
        rows.append([item["metadata"]["name"], s.get("provider", ""), s.get("instanceId", ""), s.get("phase", ""),
                     item["spec"].get("desiredState", ""), s.get("nextShutdownAt", ""),
                     f"{last.get('action', '')} {last.get('state', '')}".strip()])  # fmt: skip
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    text = "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return text, items["items"]


def run(bin_dir: Path, workdir: Path, keep: bool = False, timeout: float = 240) -> int:
    started = time.monotonic()
    print(f"notebook-operator demo: starting a local API server in {workdir} ...", flush=True)
    cluster = localcluster.start(bin_dir, workdir / "cluster")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        port = localcluster.free_port()
        emulator = f"http://127.0.0.1:{port}"
        procs.append(_spawn([sys.executable, "-m", "notebook_operator", "emulator", "--port", str(port),
                             "--credential", ":".join(PAI), "--credential", ":".join(HUAWEI),
                             "--transition-delay", "1"], workdir / "emulator.log"))  # fmt: skip
        _wait_http(f"{emulator}/_emulator/health")
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
        ext = client.ApiextensionsV1Api(api)
        for path in sorted((Path(__file__).resolve().parents[2] / "crds").glob("*.yaml")):
            ext.create_custom_resource_definition(yaml.safe_load(path.read_text()))
        time.sleep(2)
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})  # type: ignore[arg-type]
        # An instance someone clicked together in the console, adopted by id and only observed.
        seeded = httpx.post(f"{emulator}/_emulator/instances", json={"cloud": "pai-dsw", "account": PAI[0],
                            "name": "legacy-console", "gpu": 1}).json()  # fmt: skip
        at = (datetime.now(UTC) + timedelta(seconds=25)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for obj in _resources(emulator, at):
            _apply(api, obj)
        _apply(api, {"apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookInstance",
                     "metadata": {"name": "legacy-console"},
                     "spec": {"providerConfigRef": {"name": "pai"}, "instanceId": seeded["id"],
                              "managementPolicy": "Observe"}})  # fmt: skip
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        procs.append(_spawn([sys.executable, "-m", "notebook_operator", "run", "--standalone", "-n", NAMESPACE,
                             "--liveness", "", "--metrics-port", "0"], workdir / "operator.log", env))  # fmt: skip
        print(f"operator running; alice-gpu stops at {at}, bob-gpu one minute after it starts\n", flush=True)
        stopped: set[str] = set()
        while time.monotonic() - started < timeout:
            text, items = _table(api)
            print(text + "\n", flush=True)
            stopped = {i["metadata"]["name"] for i in items if (i.get("status") or {}).get("stoppedBy")}
            if {"alice-gpu", "bob-gpu"} <= stopped:
                break
            time.sleep(5)
        calls = httpx.get(f"{emulator}/_emulator/calls").json()["calls"]
        print("summary:")
        print(f"  instances mirrored: {len(items)} (3 created, 1 adopted)")
        print(f"  stopped on their shutdown timers: {', '.join(sorted(stopped)) or 'none'}")
        print(f"  cloud calls: {sum(calls.values())} ({calls.get('pai-dsw:ListInstances', 0)} PAI-DSW list pages,"
              f" {calls.get('pai-dsw:StopInstance', 0)} stops)")  # fmt: skip
        print("  idle culling (IdleCullerPolicy) lands with its own issue")
        ok = {"alice-gpu", "bob-gpu"} <= stopped
        if keep:
            pids = " ".join(str(p.pid) for p in procs)
            print(f"\nleft running:\n  export KUBECONFIG={cluster.kubeconfig}\n  emulator: {emulator}\n"
                  f"  stop with: kill {pids}; .venv/bin/python -m notebook_operator.localcluster down "
                  f"--dir {workdir / 'cluster'}")  # fmt: skip
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
            cluster.stop()
