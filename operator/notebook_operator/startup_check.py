"""What `notebook-operator run` checks before kopf starts: credentials, the API server, the CRDs, RBAC.

kopf alone prints nothing and retries forever when the kubeconfig is missing or the API server does not answer,
and retries a refused watch for as long. Each check here ends in one line that names the problem and the fix,
so `run` exits non-zero within 30 s and, in a pod, the CrashLoopBackOff's `kubectl logs` says why.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.kube import Kube

SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
DEADLINE_S = 25.0  # all checks together; an unanswering API server is retried until then
REQUEST_TIMEOUT_S = 5.0
CRD_PLURALS = (
    "notebookinstances",
    "idlecullerpolicies",
    "providerconfigs",
    "clusterproviderconfigs",
    "notebooksnapshots",
)
# What the operator cannot work without, per watched scope ("" = all namespaces).
NEEDED = (
    ("list", "notebookinstances", ""),
    ("watch", "notebookinstances", ""),
    ("patch", "notebookinstances", "status"),
    ("list", "idlecullerpolicies", ""),
    ("list", "providerconfigs", ""),
)


class StartupProblem(Exception):
    """One line: what is wrong and how to fix it."""


@dataclass(frozen=True)
class Credentials:
    in_cluster: bool
    kubeconfig: str | None  # the file(s) used when not in-cluster


def credentials(environ: dict[str, str], home: Path) -> Credentials:
    """Which credentials `run` will use, or why there are none (a missing or unreadable kubeconfig)."""
    paths = environ.get("KUBECONFIG")
    if not paths and environ.get("KUBERNETES_SERVICE_HOST"):
        if not SERVICE_ACCOUNT_TOKEN.exists():
            raise StartupProblem(
                f"running in a pod without a ServiceAccount token ({SERVICE_ACCOUNT_TOKEN} is missing): "
                "set automountServiceAccountToken: true on the pod or its ServiceAccount"
            )
        return Credentials(in_cluster=True, kubeconfig=None)
    if not paths:
        default = home / ".kube" / "config"
        if not default.exists():
            raise StartupProblem(
                f"no Kubernetes credentials: {default} does not exist and KUBECONFIG is not set; "
                "pass --kubeconfig FILE (or run in a pod with a ServiceAccount)"
            )
        paths = str(default)
    for path in paths.split(os.pathsep):
        if not path:
            continue
        if not Path(path).exists():
            raise StartupProblem(
                f"cannot read the kubeconfig {path}: no such file; pass --kubeconfig with an existing file"
            )
        if not os.access(path, os.R_OK):
            raise StartupProblem(
                f"cannot read the kubeconfig {path}: permission denied; make it readable by uid {os.getuid()}"
            )
    return Credentials(in_cluster=False, kubeconfig=paths)


async def _connect(creds: Credentials) -> client.ApiClient:
    """The client `run` will use (Kube.connect: the same choice of credentials), or why it cannot be made."""
    try:
        kube = await Kube.connect()
    except (ConfigException, OSError, ValueError, KeyError, TypeError) as e:
        where = "the in-cluster ServiceAccount" if creds.in_cluster else f"the kubeconfig {creds.kubeconfig}"
        raise StartupProblem(
            f"{where} is not usable ({_first_line(e)}): check its clusters, users and current-context"
        ) from None
    return kube.api


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


async def _reach(api: client.ApiClient, deadline: float) -> None:
    """Wait for the API server to answer /version, until the deadline."""
    host = api.configuration.host
    loop = asyncio.get_running_loop()
    while True:
        try:
            await client.VersionApi(api).get_code(_request_timeout=REQUEST_TIMEOUT_S)
            return
        except ApiException as e:
            if e.status == 401:
                raise StartupProblem(
                    f"the API server at {host} refuses the credentials (401 Unauthorized): "
                    "the kubeconfig's token or client certificate is not valid for this cluster"
                ) from None
            problem = f"{e.status} {e.reason}"
        except (TimeoutError, OSError, aiohttp.ClientError) as e:
            problem = _first_line(e) or type(e).__name__
        if loop.time() + REQUEST_TIMEOUT_S > deadline:
            raise StartupProblem(
                f"the API server at {host} does not answer ({problem}): check the kubeconfig's server address "
                "and that the cluster runs"
            )
        await asyncio.sleep(1.0)


async def _crds_installed(api: client.ApiClient) -> None:
    try:
        resources = await client.CustomObjectsApi(api).get_api_resources(
            GROUP, VERSION, _request_timeout=REQUEST_TIMEOUT_S
        )
    except ApiException as e:
        if e.status == 404:
            resources = None
        else:
            raise StartupProblem(f"cannot read API discovery for {GROUP}/{VERSION}: {e.status} {e.reason}") from None
    served = {r.name for r in resources.resources} if resources else set()
    missing = [plural for plural in CRD_PLURALS if plural not in served]
    if missing:
        raise StartupProblem(
            f"the CRDs are not installed ({', '.join(f'{p}.{GROUP}' for p in missing)} not served): "
            "kubectl apply -f crds/ (helm install installs them)"
        )


async def _rbac_allows(api: client.ApiClient, namespaces: list[str]) -> None:
    authz = client.AuthorizationV1Api(api)
    for namespace in namespaces or [""]:
        for verb, plural, subresource in NEEDED:
            review = client.V1SelfSubjectAccessReview(
                spec=client.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=client.V1ResourceAttributes(
                        group=GROUP, resource=plural, subresource=subresource, verb=verb, namespace=namespace
                    )
                )
            )
            answer = await authz.create_self_subject_access_review(review, _request_timeout=REQUEST_TIMEOUT_S)
            if not answer.status.allowed:
                what = f"{verb} {plural}{'/' + subresource if subresource else ''}.{GROUP}"
                scope = f"in namespace {namespace}" if namespace else "in all namespaces"
                raise StartupProblem(
                    f"RBAC refuses {what} {scope} to {await _who(api)}: grant the chart's ClusterRole (or Role) "
                    "to this identity, or watch only namespaces it may read (--namespace)"
                )


async def _who(api: client.ApiClient) -> str:
    try:
        review = await client.AuthenticationV1Api(api).create_self_subject_review(
            client.V1SelfSubjectReview(), _request_timeout=REQUEST_TIMEOUT_S
        )
        return str(review.status.user_info.username)
    except (ApiException, TimeoutError, OSError, aiohttp.ClientError):
        return "this identity"


async def _kube_system_uid(api: client.ApiClient) -> str:
    try:
        namespace = await client.CoreV1Api(api).read_namespace("kube-system", _request_timeout=REQUEST_TIMEOUT_S)
    except ApiException as e:
        if e.status in (401, 403, 404):
            raise StartupProblem(
                f"cannot read the namespace kube-system for the cluster id of ownership tags (HTTP {e.status}): "
                "grant get on it (the chart does) or pass --cluster-id (chart value clusterId)"
            ) from None
        raise
    return str(namespace.metadata.uid)


async def check(namespaces: list[str], cluster_id: str = "") -> str:
    """Raise StartupProblem with the first thing that keeps the operator from working; else the cluster id the
    ownership tags name (`cluster_id` when given, else the kube-system namespace's uid)."""
    creds = credentials(dict(os.environ), Path.home())
    api = await _connect(creds)
    try:
        deadline = asyncio.get_running_loop().time() + DEADLINE_S
        await _reach(api, deadline)
        async with asyncio.timeout_at(deadline + REQUEST_TIMEOUT_S):
            await _crds_installed(api)
            await _rbac_allows(api, namespaces)
            return cluster_id or await _kube_system_uid(api)
    except TimeoutError:
        raise StartupProblem(f"the API server at {api.configuration.host} answers too slowly to start") from None
    except (ApiException, OSError, aiohttp.ClientError) as e:
        raise StartupProblem(f"the API server failed a start-up check: {_first_line(e)}") from None
    finally:
        await api.close()
