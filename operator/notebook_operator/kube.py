"""The operator's own Kubernetes API client (kubernetes_asyncio), for what kopf does not do for us:
status patches of many objects from the poller, and reading credential Secrets."""

from __future__ import annotations

import json
import os
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.waiters import waiting_on
from notebook_operator.write_limiter import WriteLimiter

PLURALS = {
    "NotebookInstance": "notebookinstances",
    "ProviderConfig": "providerconfigs",
    "ClusterProviderConfig": "clusterproviderconfigs",
    "IdleCullerPolicy": "idlecullerpolicies",
    "NotebookSnapshot": "notebooksnapshots",
}


PEERING_GROUP = "kopf.dev"
# Every wait has an end: a status write waits at most this long for a slot, then this long for its answer.
SLOT_WAIT_S = 60.0
WRITE_TIMEOUT_S = 30.0


class SecretMissing(LookupError):
    pass


class ServiceAccountMissing(LookupError):
    pass


class TokenRequestDenied(PermissionError):
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
        self._limit = WriteLimiter(concurrency)

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
        self,
        kind: str,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
        urgent: bool = False,
    ) -> str | None:
        """Merge-patch status: the object's new resourceVersion, None when the object is gone. With
        `resource_version` the write is conditional (the API server refuses it with 409 when the object changed
        since): StaleObject. `urgent` writes go before the others waiting for a slot."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        options: dict[str, Any] = {"_content_type": "application/merge-patch+json", "_request_timeout": WRITE_TIMEOUT_S}
        with waiting_on(f"a slot for a status write ({len(self._limit)} waiting)"):
            async with self._limit.slot(urgent, within=SLOT_WAIT_S):
                try:
                    with waiting_on("the API server's answer to a status write"):
                        if namespace:
                            written = await self.custom.patch_namespaced_custom_object_status(
                                GROUP, VERSION, namespace, PLURALS[kind], name, body, **options
                            )
                        else:  # cluster-scoped
                            written = await self.custom.patch_cluster_custom_object_status(
                                GROUP, VERSION, PLURALS[kind], name, body, **options
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

    async def create(self, kind: str, namespace: str, body: dict[str, Any]) -> None:
        """Create one of our namespaced objects (an existing one of that name is left as it is)."""
        try:
            await self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], body)
        except ApiException as e:
            if e.status != 409:
                raise

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

    async def request_token(
        self, namespace: str, service_account: str, audience: str, seconds: int
    ) -> tuple[str, float | None]:
        """A token of the TokenRequest API for a ServiceAccount: (token, expiry epoch seconds). ServiceAccountMissing
        when there is no such ServiceAccount, TokenRequestDenied when RBAC refuses (the message holds no token)."""
        body = {"spec": {"audiences": [audience], "expirationSeconds": seconds}}
        async with self._limit.slot():
            try:
                answer = await self.core.create_namespaced_service_account_token(
                    service_account,
                    namespace,
                    body,  # type: ignore[arg-type]
                )
            except ApiException as e:
                if e.status == 404:
                    raise ServiceAccountMissing(f"ServiceAccount {namespace}/{service_account} not found") from None
                if e.status == 403:
                    raise TokenRequestDenied(
                        f"the operator may not request tokens for ServiceAccount {namespace}/{service_account} "
                        "(the chart grants it for identity.tenantServiceAccount only)"
                    ) from None
                raise
        expires = answer.status.expiration_timestamp
        return str(answer.status.token), expires.timestamp() if expires is not None else None

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
