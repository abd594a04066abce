"""Keyless credentials end to end (wall-time cap: 3 minutes). The chart installed with identity.oidc enabled;
the operator run with the chart's rendered argv, as the chart's ServiceAccount, with an OIDC token from the
TokenRequest API (audience sts.aliyuncs.com) where the projected volume puts it; the emulator verifies that
token against the API server's own JWKS. A NotebookInstance of an admin's ClusterProviderConfig (the operator's
own token) is reconciled with no static key anywhere, the temporary credentials are refreshed (900 s lifetime at
60x: every 12 s), and a namespace's ProviderConfig whose token has the wrong audience shows up as IdentityRefused."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from notebook_devtools import localcluster
from notebook_operator.api.meta import GROUP, VERSION
from tests.e2e.test_chart import ALLOW_EMULATOR, CHART, TENANT_ACCOUNT, render, service_account_kubeconfig
from tests.emulator import Emulator, running_emulator
from tests.integration.test_reconcile import notebook, status_of, wait_phase
from tests.kube import delete_cluster_provider_config, get, wait_for
from tests.operator_process import OperatorProcess

WALL_CAP_S = 180
ACCOUNT_ID = "5550001112223333"
ROLE = f"acs:ram::{ACCOUNT_ID}:role/notebook-operator"
PROVIDER_ARN = f"acs:ram::{ACCOUNT_ID}:oidc-provider/local-cluster"
AUDIENCE = "sts.aliyuncs.com"


def _discovery(cluster: localcluster.LocalCluster, path: str) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    request = urllib.request.Request(f"{cluster.url}{path}", headers={"Authorization": f"Bearer {cluster.token}"})
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        found: dict[str, Any] = json.load(answer)
        return found


@pytest.fixture
def keyless_release(
    helm: str, kubeconfig: Path, api: client.ApiClient, crds: list[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    namespace = f"keyless-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    values = ["--set", f"watchNamespaces={{{namespace}}}", "--set", "identity.oidc.enabled=true",
              "--set", f"identity.oidc.audience={AUDIENCE}", *ALLOW_EMULATOR]  # fmt: skip
    result = subprocess.run([helm, "install", "keyless", str(CHART), "--namespace", namespace, "--kubeconfig",
                             str(kubeconfig), *values], capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (deployment,) = [d for d in render(helm, *values) if d["kind"] == "Deployment"]
    yield namespace, deployment
    subprocess.run([helm, "uninstall", "keyless", "--namespace", namespace, "--kubeconfig", str(kubeconfig)],
                   capture_output=True, check=False)  # fmt: skip


def _token(api: client.ApiClient, namespace: str, account: str, audience: str, expires: int = 86400) -> str:
    """The emulator judges `exp` on its own clock, 60x here: 86,400 s last 24 minutes, 600 s (the API server's
    shortest) 10 seconds."""
    request = client.CoreV1Api(api).create_namespaced_service_account_token(
        account, namespace, {"spec": {"audiences": [audience], "expirationSeconds": expires}})  # fmt: skip
    return str(request.status.token)


def _spec(cloud: Emulator, **oidc: Any) -> dict[str, Any]:
    return {"provider": "pai-dsw", "region": "cn-hangzhou", "endpoint": cloud.url, "pollIntervalSeconds": 2,
            "oidc": {"roleArn": ROLE, "oidcProviderArn": PROVIDER_ARN, "stsEndpoint": cloud.url,
                     "durationSeconds": 900, **oidc}}  # fmt: skip


def _provider_config(api: client.ApiClient, namespace: str, name: str, cloud: Emulator, **oidc: Any) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ProviderConfig", "metadata": {"name": name},
        "spec": _spec(cloud, **oidc)})  # fmt: skip


def _ready(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    status = get(api, "ProviderConfig", namespace, name).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})


@pytest.mark.slow(45)
def test_keyless_operator_reconciles_with_refreshed_credentials_and_reports_refused_tokens(
    api: client.ApiClient, local_cluster: localcluster.LocalCluster, keyless_release: tuple[str, Any], tmp_path: Path,
) -> None:  # fmt: skip
    began = time.monotonic()
    namespace, deployment = keyless_release
    pod = deployment["spec"]["template"]["spec"]
    (projected,) = [v["projected"]["sources"][0]["serviceAccountToken"] for v in pod["volumes"] if "projected" in v]
    assert projected["audience"] == AUDIENCE
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    token_path = env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"]
    assert token_path.startswith("/var/run/secrets/") and token_path.endswith("/token")

    issuer = _discovery(local_cluster, "/.well-known/openid-configuration")["issuer"]
    (tmp_path / "jwks.json").write_text(json.dumps(_discovery(local_cluster, "/openid/v1/jwks")))
    account = "keyless-notebook-operator"  # the installed release's (the rendered one is named after `nbop`)
    good = tmp_path / "token"
    good.write_text(_token(api, namespace, account, AUDIENCE))  # what the kubelet writes to the projected path
    client.CoreV1Api(api).create_namespaced_service_account(namespace, {"metadata": {"name": TENANT_ACCOUNT}})
    client.CoreV1Api(api).patch_namespace(namespace, {"metadata": {"labels": {"keyless-test": namespace}}})
    shared = f"shared-{namespace}"  # cluster-scoped: a name of this test's own
    with running_emulator(tmp_path, "--transition-delay", "0", "--time-scale", "60", "--oidc-jwks",
                          str(tmp_path / "jwks.json"), "--oidc-issuer", issuer) as cloud:  # fmt: skip
        seeded = cloud.seed(cloud="pai-dsw", account=ACCOUNT_ID, name="keyless-nb")
        args = [a for a in pod["containers"][0]["args"][1:] if not a.startswith(("--liveness", "--metrics-port"))]
        kubeconfig = service_account_kubeconfig(api, local_cluster, namespace, account, tmp_path / "sa.kubeconfig")
        process_env = {"KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1", "PATH": os.environ.get("PATH", ""),
                       "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(good)}  # fmt: skip
        operator = OperatorProcess([*args, "--liveness", "", "--metrics-port", "0"], process_env, tmp_path / "op.log")
        custom = client.CustomObjectsApi(api)
        try:
            # The admin's account: the operator's own token (ambient), for the namespaces the selector admits.
            custom.create_cluster_custom_object(GROUP, VERSION, "clusterproviderconfigs", {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterProviderConfig", "metadata": {"name": shared},
                "spec": {**_spec(cloud), "namespaceSelector": {"matchLabels": {"keyless-test": namespace}}},
            })  # fmt: skip
            # A namespace's account whose token (its own ServiceAccount's) names an audience STS does not take.
            _provider_config(api, namespace, "refused", cloud, audience="https://kubernetes.default.svc.cluster.local")
            ref = {"kind": "ClusterProviderConfig", "name": shared}
            notebook(api, namespace, "nb", {"instanceId": seeded["id"], "desiredState": "Stopped",
                                            "providerConfigRef": ref})  # fmt: skip
            wait_phase(api, namespace, "nb", "Stopped", timeout=60)
            assert status_of(api, namespace, "nb")["lastAction"]["state"] == "Succeeded"

            def accepted() -> list[dict[str, Any]]:
                journal = cloud.admin.get("/journal", params={"route": "sts:AssumeRoleWithOIDC"}).json()["entries"]
                return [e for e in journal if e["status"] == 200]

            deadline = time.monotonic() + 60
            while len(accepted()) < 3 and time.monotonic() < deadline:
                time.sleep(1)
            assert len(accepted()) >= 3, accepted()  # the first exchange, then at least two refreshes
            cloud.admin.put(f"/instances/{seeded['id']}/status", json={"status": "Running"}).raise_for_status()
            wait_phase(api, namespace, "nb", "Running", timeout=30)  # still mirrored after the refreshes
            refused = wait_for(lambda: _ready(api, namespace, "refused").get("reason") == "IdentityRefused"
                               and _ready(api, namespace, "refused"), timeout=30, what="refused")  # fmt: skip
            assert refused["status"] == "False" and "AudienceNotMatch" in refused["message"]
            wait_for(lambda: any(e.reason == "IdentityRefused" and e.involved_object.name == "refused"
                                 for e in client.CoreV1Api(api).list_namespaced_event(namespace).items),
                     timeout=10, what="IdentityRefused Event")  # fmt: skip
        finally:
            delete_cluster_provider_config(api, shared)  # before the kill: its operator releases the finalizer
            operator.kill()
    secrets = client.CoreV1Api(api).list_namespaced_secret(namespace).items
    assert not [s for s in secrets if s.type == "Opaque"]  # no static key anywhere
    log = (tmp_path / "op.log").read_text()
    assert good.read_text() not in log
    assert time.monotonic() - began < WALL_CAP_S
