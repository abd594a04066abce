"""Helpers for tests that talk to the real API server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client

from notebook_operator.api.meta import GROUP, VERSION

REPO = Path(__file__).resolve().parent.parent
PLURALS = {
    "ProviderConfig": "providerconfigs",
    "ClusterProviderConfig": "clusterproviderconfigs",
    "NotebookInstance": "notebookinstances",
    "IdleCullerPolicy": "idlecullerpolicies",
    "NotebookSnapshot": "notebooksnapshots",
}
T = TypeVar("T")


def load_manifests(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def create(api: client.ApiClient, obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """Create one manifest (a Secret or one of our custom resources) in namespace."""
    kind = obj["kind"]
    if kind == "Secret":
        result = client.CoreV1Api(api).create_namespaced_secret(namespace, obj)
        return dict(api.sanitize_for_serialization(result))
    if kind == "ServiceAccount":
        account = client.CoreV1Api(api).create_namespaced_service_account(namespace, obj)
        return dict(api.sanitize_for_serialization(account))
    if kind == "ClusterProviderConfig":
        made: dict[str, Any] = client.CustomObjectsApi(api).create_cluster_custom_object(
            GROUP, VERSION, PLURALS[kind], obj
        )
        return made
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[kind], obj
    )
    return created


def get(api: client.ApiClient, kind: str, namespace: str, name: str) -> dict[str, Any]:
    if kind == "ClusterProviderConfig":
        found: dict[str, Any] = client.CustomObjectsApi(api).get_cluster_custom_object(
            GROUP, VERSION, PLURALS[kind], name
        )
        return found
    obj: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[kind], name
    )
    return obj


def wait_for(check: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.2, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


def delete_cluster_provider_config(api: client.ApiClient, name: str, timeout: float = 15.0) -> None:
    """Delete a ClusterProviderConfig and wait until it is gone, while the test's operator still runs to release
    its finalizer. Killed first, it would leave the object Terminating on this worker's API server, and the next
    test's operator (another release, another identity) would be the one to release it."""
    custom = client.CustomObjectsApi(api)
    try:
        custom.delete_cluster_custom_object(GROUP, VERSION, "clusterproviderconfigs", name)
    except client.ApiException as e:
        if e.status != 404:
            raise
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            custom.get_cluster_custom_object(GROUP, VERSION, "clusterproviderconfigs", name)
        except client.ApiException as e:
            if e.status == 404:
                return
            raise
        time.sleep(0.2)
