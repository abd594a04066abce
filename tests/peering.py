"""Helpers for tests of several operator replicas: peering objects, each replica's role and health."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from notebook_devtools.localcluster import free_port
from tests.operator_process import OperatorProcess

KOPF = ("kopf.dev", "v1")


def create_peering(api: client.ApiClient, name: str, namespace: str | None = None) -> None:
    custom = client.CustomObjectsApi(api)
    if namespace is None:
        body = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}}
        custom.create_cluster_custom_object(*KOPF, "clusterkopfpeerings", body)
    else:
        body = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": name}}
        custom.create_namespaced_custom_object(*KOPF, namespace, "kopfpeerings", body)


def keepalives(api: client.ApiClient, name: str, namespace: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(*KOPF, namespace, "kopfpeerings", name)
    status: dict[str, Any] = obj.get("status") or {}
    return status


def metric(port: int, name: str) -> float | None:
    """One unlabelled sample from the replica's /metrics, None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def health(port: int) -> tuple[int, dict[str, Any]] | None:
    """(HTTP status, probe results) of the replica's /healthz, None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status, json.loads(response.read().decode())
    except OSError:
        return None


class Replica:
    """One `notebook-operator run` of a shared argv with its own local ports - the chart's `--liveness=` and
    `--metrics-port=` rewritten, or added when absent - and restarted with the same argv when killed, as a
    kubelet would."""

    def __init__(self, index: int, argv: list[str], env: dict[str, str], logs: Path) -> None:
        self.index, self.env, self.logs, self.starts = index, env, logs, 0
        self.health, self.metrics = free_port(), free_port()
        liveness, metrics = f"--liveness=http://127.0.0.1:{self.health}/healthz", f"--metrics-port={self.metrics}"
        self.argv = [liveness if a.startswith("--liveness=") else metrics if a.startswith("--metrics-port=") else a
                     for a in argv]  # fmt: skip
        self.argv += [a for a in (liveness, metrics) if a not in self.argv]
        self.process = self._start()

    def _start(self) -> OperatorProcess:
        self.starts += 1
        return OperatorProcess(self.argv, self.env, self.logs / f"replica{self.index}-{self.starts}.log")

    def active(self) -> bool:
        return metric(self.metrics, "notebook_operator_active") == 1

    def kill_and_restart(self) -> float:
        self.process.proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        self.process.proc.wait()
        self.process = self._start()
        return killed_at

    def alive(self) -> bool:
        return self.process.proc.poll() is None
