"""Helpers for tests of several operator replicas: peering objects, each replica's role and health."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from kubernetes import client

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
