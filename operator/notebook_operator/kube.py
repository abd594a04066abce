"""The operator's own Kubernetes API client (kubernetes_asyncio), for what kopf does not do for us:
status patches of many objects from the poller, and reading credential Secrets."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from notebook_operator.api.meta import GROUP, VERSION

PLURALS = {"NotebookInstance": "notebookinstances", "ProviderConfig": "providerconfigs",
           "IdleCullerPolicy": "idlecullerpolicies"}  # fmt: skip


class SecretMissing(LookupError):
    pass


class Kube:
    def __init__(self, api: client.ApiClient, concurrency: int = 16) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self._limit = asyncio.Semaphore(concurrency)
        self.writes = 0  # status patches sent, for the benchmark and metrics

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

    async def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> bool:
        """Merge-patch status; False when the object is gone."""
        async with self._limit:
            try:
                await self.custom.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    namespace,
                    PLURALS[kind],
                    name,
                    {"status": status},
                    _content_type="application/merge-patch+json",  # type: ignore[call-arg]
                )
            except ApiException as e:
                if e.status == 404:
                    return False
                raise
            self.writes += 1
            return True

    async def read_secret(self, namespace: str, name: str) -> tuple[dict[str, str], str]:
        """(data, resourceVersion); SecretMissing when absent."""
        try:
            secret = await self.core.read_namespaced_secret(name, namespace)
        except ApiException as e:
            if e.status == 404:
                raise SecretMissing(f"Secret {namespace}/{name} not found") from None
            raise
        return dict(secret.data or {}), str(secret.metadata.resource_version)
