"""The operator's own Kubernetes API client (kubernetes_asyncio), for what kopf does not do for us:
status patches of many objects from the poller, and reading credential Secrets."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from notebook_operator.api.meta import GROUP, VERSION

PLURALS = {
    "NotebookInstance": "notebookinstances",
    "ProviderConfig": "providerconfigs",
    "IdleCullerPolicy": "idlecullerpolicies",
}


PEERING_GROUP = "kopf.dev"


class SecretMissing(LookupError):
    pass


class PeeringCrdMissing(LookupError):
    pass


class StatusRejected(ValueError):
    """The API server refused a status patch as invalid (422): a bug of ours, not a reason to stop."""


class StaleObject(Exception):
    """A conditional write found a newer resourceVersion: somebody else wrote the object first."""


class Kube:
    def __init__(self, api: client.ApiClient, concurrency: int = 16) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self._limit = asyncio.Semaphore(concurrency)

    @classmethod
    async def connect(cls) -> Kube:
        """In-cluster service account, else $KUBECONFIG / ~/.kube/config."""
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return cls(client.ApiClient())
        configuration = client.Configuration()
        await config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration)
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        await self.api.close()

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
    ) -> str | None:
        """Merge-patch status: the object's new resourceVersion, None when the object is gone. With
        `resource_version` the write is conditional (the API server refuses it with 409 when the object changed
        since): StaleObject."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        async with self._limit:
            try:
                written = await self.custom.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    namespace,
                    PLURALS[kind],
                    name,
                    body,
                    _content_type="application/merge-patch+json",  # type: ignore[call-arg]
                )
            except ApiException as e:
                if e.status == 404:
                    return None
                if e.status == 422:
                    raise StatusRejected(f"{kind} {namespace}/{name}: status refused: {_message(e)}") from None
                if e.status == 409 and resource_version:
                    raise StaleObject(
                        f"{kind} {namespace}/{name} changed since resourceVersion {resource_version}"
                    ) from None
                raise
            return str((written.get("metadata") or {}).get("resourceVersion") or "unknown")

    async def count(self, kind: str, namespace: str) -> int:
        """How many objects of one of our kinds the namespace holds: one list call of one item."""
        found = await self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], limit=1)
        return len(found.get("items") or []) + int((found.get("metadata") or {}).get("remainingItemCount") or 0)

    async def read_secret(self, namespace: str, name: str) -> tuple[dict[str, str], str]:
        """(data, resourceVersion); SecretMissing when absent."""
        try:
            secret = await self.core.read_namespaced_secret(name, namespace)
        except ApiException as e:
            if e.status == 404:
                raise SecretMissing(f"Secret {namespace}/{name} not found") from None
            raise
        return dict(secret.data or {}), str(secret.metadata.resource_version)

    async def peering_objects(self, name: str, namespaces: list[str]) -> list[dict[str, Any]]:
        """kopf's peering object `name`: the ClusterKopfPeering when `namespaces` is empty, else the KopfPeering
        of each namespace found. Listed with a field selector (the chart grants list/watch, not get).
        PeeringCrdMissing when the API server does not serve the kind."""
        selector = f"metadata.name={name}"
        try:
            if not namespaces:
                found = await self.custom.list_cluster_custom_object(
                    PEERING_GROUP, "v1", "clusterkopfpeerings", field_selector=selector, _request_timeout=10
                )
                return list(found.get("items") or [])
            items: list[dict[str, Any]] = []
            for namespace in namespaces:
                found = await self.custom.list_namespaced_custom_object(
                    PEERING_GROUP, "v1", namespace, "kopfpeerings", field_selector=selector, _request_timeout=10
                )
                items.extend(found.get("items") or [])
            return items
        except ApiException as e:
            if e.status == 404:
                raise PeeringCrdMissing(
                    f"the API server does not serve {'KopfPeering' if namespaces else 'ClusterKopfPeering'} "
                    f"({PEERING_GROUP}/v1): install the chart's crds/kopf.dev_peerings.yaml"
                ) from None
            raise


def _message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or b"{}").get("message", ""))[:512]
    except (TypeError, ValueError):
        return str(e.reason)
