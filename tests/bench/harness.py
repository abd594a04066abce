"""What the benchmarks share: a local API server with the CRDs and an emulator, one PAI-DSW account in
a namespace, the operator as a process, and reading its metrics and memory."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import yaml
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig

from notebook_devtools import localcluster
from notebook_operator.api.meta import GROUP, VERSION
from tests.emulator import PAI_KEY, Emulator, running_emulator
from tests.kube import REPO

CONCURRENCY = 16


async def api_client(kubeconfig: Path) -> aclient.ApiClient:
    configuration = aclient.Configuration()
    await aconfig.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = 64
    return aclient.ApiClient(configuration)


async def bounded(jobs: list[Any], limit: int = CONCURRENCY) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def run(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(run(j) for j in jobs))


async def install_crds(api: aclient.ApiClient) -> None:
    """Ours and kopf's peering CRDs (the chart's crds/ folder)."""
    ext = aclient.ApiextensionsV1Api(api)
    for path in sorted((REPO / "charts" / "notebook-operator" / "crds").glob("*.yaml")):
        for body in yaml.safe_load_all(path.read_text()):
            if body:
                await ext.create_custom_resource_definition(body)
    await asyncio.sleep(3)  # Established


async def phases(custom: aclient.CustomObjectsApi, namespace: str) -> dict[str, str]:
    items = (await custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances"))["items"]
    return {i["metadata"]["name"]: (i.get("status") or {}).get("phase", "") for i in items}


def _scrape(port: int) -> str:
    text: str = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return text


def metric(port: int, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", _scrape(port), re.M))


def metric_by(port: int, name: str, label: str) -> dict[str, int]:
    """A counter's values summed by one of its labels."""
    found: dict[str, int] = {}
    for labels, value in re.findall(rf"^{name}{{([^}}]*)}} ([0-9.e+]+)$", _scrape(port), re.M):
        key = dict(re.findall(r'(\w+)="([^"]*)"', labels)).get(label, "")
        found[key] = found.get(key, 0) + int(float(value))
    return found


def report(results: list[dict[str, Any]], output: Path, table: str) -> None:
    """Write the results as JSON and print their table."""
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(table)
    print(f"\nwritten to {output}")


def figures_table(results: list[dict[str, Any]], by: str, heading: str = "{}") -> str:
    """A markdown table: one column per run (named by its `by` field, through `heading`), one row per figure."""
    lines = ["| figure | " + " | ".join(heading.format(r[by]) for r in results) + " |",
             "|---|" + "---|" * len(results)]  # fmt: skip
    lines += [f"| {k} | " + " | ".join(str(r[k]) for r in results) + " |" for k in results[0] if k != by]
    return "\n".join(lines)


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    threads = re.search(r"Threads:\s+(\d+)", status)
    print(f"bench: operator threads {threads.group(1) if threads else '?'}", file=sys.stderr)
    return round(int(match.group(1)) / 1024, 1) if match else 0.0


async def pai_account(api: aclient.ApiClient, namespace: str, emulator: Emulator, interval: int,
                     rate_limit: float) -> None:  # fmt: skip
    """A namespace with a Secret and the ProviderConfig `pai` for the emulator's PAI-DSW account."""
    core, custom = aclient.CoreV1Api(api), aclient.CustomObjectsApi(api)
    await core.create_namespace({"metadata": {"name": namespace}})
    await core.create_namespaced_secret(namespace, {"metadata": {"name": "pai"}, "stringData": {
        "accessKeyId": PAI_KEY[0], "accessKeySecret": PAI_KEY[1]}})  # fmt: skip
    await custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ProviderConfig", "metadata": {"name": "pai"},
        "spec": {"provider": "pai-dsw", "region": "cn-hangzhou", "endpoint": emulator.url, "rateLimit": rate_limit,
                 "credentialsSecretRef": {"name": "pai"}, "pollIntervalSeconds": interval}})  # fmt: skip


def start_operator(namespace: str, kubeconfig: Path, metrics_port: int, log: IO[bytes],
                   peering: list[str] | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
    """`run -n NAMESPACE`, standalone unless `peering` gives the peering flags."""
    return subprocess.Popen(
        [sys.executable, "-m", "notebook_operator", "run", *(peering or ["--standalone"]), "-n", namespace,
         "--liveness", "", "--metrics-port", str(metrics_port), "--allowed-endpoint", localcluster.EMULATOR_ENDPOINTS],
        env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin"}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


@asynccontextmanager
async def local_setup(transition_delay: float) -> AsyncIterator[tuple[localcluster.LocalCluster, Emulator, Path]]:
    """The API server (built if needed) with the CRDs installed, and an emulator; torn down after."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(REPO / "hack" / "build-kube.sh"), str(REPO / ".cluster" / "bin")], check=True)
        cluster = localcluster.start(REPO / ".cluster" / "bin", Path(tmp) / "cluster")
        try:
            api = await api_client(cluster.kubeconfig)
            await install_crds(api)
            await api.close()
            with running_emulator(Path(tmp), "--transition-delay", str(transition_delay)) as emulator:
                yield cluster, emulator, Path(tmp)
        finally:
            cluster.stop()
