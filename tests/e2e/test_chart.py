"""The Helm chart: lint, values schema, rendering, `helm install` on the real API server, and the operator
running as the chart's ServiceAccount (token from the TokenRequest API) - which proves the chart's RBAC
is enough - while the API server's audit log shows every granted verb used, which proves it is no more."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from notebook_devtools import localcluster
from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.reconcile import peering
from tests.emulator import Emulator
from tests.integration.test_reconcile import TEMPLATE, notebook, setup_account, wait_phase
from tests.kube import REPO, get, wait_for
from tests.operator_process import OperatorProcess

# The admin's allow-list for the tests' emulator on loopback (chart value security.allowedEndpoints).
TENANT_ACCOUNT = "notebook-operator-identity"
ALLOW_EMULATOR = ["--set-json", f"security.allowedEndpoints={json.dumps([localcluster.EMULATOR_ENDPOINTS])}"]

BIN = REPO / ".cluster" / "bin"
CHART = REPO / "charts" / "notebook-operator"
RELEASE = "nbop"


def render(helm: str, *args: str) -> list[dict[str, Any]]:
    out = subprocess.run([helm, "template", RELEASE, str(CHART), "--namespace", "ops", *args],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def kind(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == name]


def test_chart_carries_the_generated_crds() -> None:
    generated = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    assert generated and all((CHART / "crds" / n).read_bytes() == (REPO / "crds" / n).read_bytes() for n in generated)
    assert sorted(p.name for p in (CHART / "crds").glob("*.yaml")) == sorted([*generated, "kopf.dev_peerings.yaml"])


OPTIONAL = "podDisruptionBudget.enabled=true,metrics.serviceMonitor.enabled=true"


@pytest.mark.parametrize("values", [[], ["--set", "replicaCount=3"], ["--set", "watchNamespaces={a,b}"],
                                    ["--set", OPTIONAL]])  # fmt: skip
def test_helm_lint_is_clean(helm: str, values: list[str]) -> None:
    result = subprocess.run([helm, "lint", "--strict", str(CHART), *values], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


@pytest.mark.parametrize(("values", "field"), [
    (["--set", "replicaCount=0"], "replicaCount"),
    (["--set-string", "replicaCount=two"], "replicaCount"),
    (["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
    (["--set", "image.repository="], "repository"),
    (["--set", "watchNamespaces={Bad_Namespace}"], "watchNamespaces"),
    (["--set", "logFormat=xml"], "logFormat"),
    (["--set", "metrics.port=80"], "port"),
    (["--set", "metrics.serviceMonitor.interval=often"], "interval"),
    (["--set", "resources.requests.memory=lots"], "memory"),
    (["--set", "podDisruptionBudget.minAvailable=half"], "minAvailable"),
    (["--set", "surprise=1"], "surprise"),
    (["--set", "peering.lifetimeSeconds=3"], "lifetimeSeconds"),
    (["--set-string", "peering.priority=high"], "priority"),
    (["--set", "serviceAccount.create=false"], "serviceAccount.name"),
    (["--set", "identity.tenantServiceAccount=Not_A_Name"], "tenantServiceAccount"),
    (["--set", "security.namespacedAmbientCredentials=maybe"], "namespacedAmbientCredentials"),
    (["--set", "security.allowedEndpoints=https://x"], "allowedEndpoints"),
    (["--set", "security.allowWebhooks={x}"], "allowWebhooks"),
])  # fmt: skip
def test_values_schema_rejects_bad_values(helm: str, values: list[str], field: str) -> None:
    result = subprocess.run([helm, "template", RELEASE, str(CHART), *values], capture_output=True, text=True)
    assert result.returncode != 0
    assert field in result.stderr, result.stderr


def test_deployment_is_hardened(helm: str) -> None:
    docs = render(helm)
    (deployment,) = kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "privileged": False, "capabilities": {"drop": ["ALL"]}}  # fmt: skip
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "--all-namespaces" in container["args"] and "--standalone" in container["args"]
    assert pod["serviceAccountName"] == f"{RELEASE}-notebook-operator"
    assert kind(docs, "Service") and not kind(docs, "PodDisruptionBudget") and not kind(docs, "ServiceMonitor")
    assert not kind(docs, "ClusterKopfPeering")


def test_rbac_has_no_wildcards_and_the_same_rules_in_both_scopes(helm: str) -> None:
    cluster = render(helm, "--set", "replicaCount=2")
    namespaced = render(helm, "--set", "replicaCount=2", "--set", "watchNamespaces={team-a,team-b}")
    (cluster_role,) = kind(cluster, "ClusterRole")
    roles = [r for r in kind(namespaced, "Role") if not r["metadata"]["name"].endswith(("-secrets", "-events"))]
    assert [r["metadata"]["namespace"] for r in roles] == ["team-a", "team-b"]
    # Cluster-scoped kinds (ClusterProviderConfigs, namespace labels) need a ClusterRole in either scope.
    (cluster_part,) = kind(namespaced, "ClusterRole")
    assert {r for rule in cluster_part["rules"] for r in rule["resources"]} == {
        "clusterproviderconfigs", "clusterproviderconfigs/status", "namespaces"}  # fmt: skip
    (secrets,) = [r for r in kind(namespaced, "Role") if r["metadata"]["name"].endswith("-secrets")]
    assert secrets["metadata"]["namespace"] == "ops" and secrets["rules"][0]["verbs"] == ["get"]
    for rules in [cluster_role["rules"], *(r["rules"] for r in roles), cluster_part["rules"]]:
        for rule in rules:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
    strip = json.dumps(cluster_role["rules"]).replace("clusterkopfpeerings", "kopfpeerings")
    namespace_rules, peering_rules = roles[0]["rules"][:-2], roles[0]["rules"][-2:]
    assert json.loads(strip) == namespace_rules + cluster_part["rules"] + peering_rules
    # Tokens only for the tenant identity ServiceAccount, by name.
    (token_rule,) = [r for r in roles[0]["rules"] if r["resources"] == ["serviceaccounts/token"]]
    assert token_rule == {"apiGroups": [""], "resources": ["serviceaccounts/token"],
                          "resourceNames": ["notebook-operator-identity"], "verbs": ["create"]}  # fmt: skip
    args = kind(cluster, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--peering=notebook-operator" in args and kind(cluster, "ClusterKopfPeering")
    assert [p["metadata"]["namespace"] for p in kind(namespaced, "KopfPeering")] == ["team-a", "team-b"]


def test_optional_parts(helm: str) -> None:
    docs = render(helm, "--set", "podDisruptionBudget.enabled=true,metrics.serviceMonitor.enabled=true")
    assert kind(docs, "PodDisruptionBudget")[0]["spec"]["minAvailable"] == 1
    assert kind(docs, "ServiceMonitor")[0]["spec"]["endpoints"][0]["port"] == "metrics"
    docs = render(helm, "--set", "metrics.enabled=false")
    assert not kind(docs, "Service")
    assert "--metrics-port=0" in kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]


def _args(docs: list[dict[str, Any]]) -> list[str]:
    args: list[str] = kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_security_values(helm: str) -> None:
    """The admin's tenancy settings become the operator's flags, and the token RBAC follows the name."""
    default = _args(render(helm))
    assert "--tenant-service-account=notebook-operator-identity" in default
    assert not any(a.startswith(("--allowed-", "--namespaced-ambient")) for a in default)
    values = ["--set", "identity.tenantServiceAccount=nb-identity",
              "--set", "security.namespacedAmbientCredentials=true",
              "--set-json", 'security.allowedEndpoints=["^https://gw\\\\.corp:443$","^http://127\\\\.0\\\\.0\\\\.1:8765$"]',
              "--set-json", 'security.allowedWebhooks=["^https://chat\\\\.corp:443$"]']  # fmt: skip
    docs = render(helm, *values)
    args = _args(docs)
    assert {"--tenant-service-account=nb-identity", "--namespaced-ambient-credentials",
            r"--allowed-endpoint=^https://gw\.corp:443$", r"--allowed-endpoint=^http://127\.0\.0\.1:8765$",
            r"--allowed-webhook=^https://chat\.corp:443$"} <= set(args)  # fmt: skip
    (cluster_role,) = kind(docs, "ClusterRole")
    (token_rule,) = [r for r in cluster_role["rules"] if r["resources"] == ["serviceaccounts/token"]]
    assert token_rule["resourceNames"] == ["nb-identity"]


def test_peering_values(helm: str) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["peering"]
    # One default: the chart's are the operator's own.
    assert (values["name"], values["lifetimeSeconds"]) == (peering.DEFAULT_NAME, peering.DEFAULT_LIFETIME_S)
    assert "--standalone" in _args(render(helm))
    ha = _args(render(helm, "--set", "replicaCount=2"))
    assert f"--peering={peering.DEFAULT_NAME}" in ha and f"--peering-lifetime={peering.DEFAULT_LIFETIME_S}" in ha
    assert not any(a.startswith("--priority") for a in ha)  # identical replicas: automatic distinct priorities
    tuned = _args(render(helm, "--set", "peering.enabled=true,peering.name=blue,peering.lifetimeSeconds=30",
                         "--set", "peering.priority=5"))  # fmt: skip
    assert {"--peering=blue", "--peering-lifetime=30", "--priority=5"} <= set(tuned)
    env = kind(render(helm), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in env


# --- installed, and the operator as the chart's ServiceAccount ----------------------------------------


@pytest.fixture
def installed(helm: str, kubeconfig: Path, namespace: str) -> Iterator[list[dict[str, Any]]]:
    """The chart installed watching `namespace`, with two replicas' worth of peering."""
    values = ["--set", f"watchNamespaces={{{namespace}}}", "--set", "replicaCount=2", *ALLOW_EMULATOR]
    result = subprocess.run([helm, "install", RELEASE, str(CHART), "--namespace", namespace, "--kubeconfig",
                             str(kubeconfig), *values], capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "watching: " + namespace in result.stdout  # NOTES.txt
    yield render(helm, *values)
    subprocess.run([helm, "uninstall", RELEASE, "--namespace", namespace, "--kubeconfig", str(kubeconfig)],
                   capture_output=True, check=False)  # fmt: skip


def service_account_kubeconfig(api: client.ApiClient, cluster: localcluster.LocalCluster, namespace: str,
                               account: str, path: Path) -> Path:  # fmt: skip
    request = client.CoreV1Api(api).create_namespaced_service_account_token(
        account, namespace, {"spec": {"audiences": ["https://kubernetes.default.svc.cluster.local"],
                                      "expirationSeconds": 3600}})  # fmt: skip
    return localcluster.write_kubeconfig(cluster, path, account, request.status.token, namespace=namespace)


def granted(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"]}  # fmt: skip


def audited(cluster: localcluster.LocalCluster, user: str) -> list[dict[str, Any]]:
    lines = (cluster.workdir / "logs" / "audit.log").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("user", {}).get("username") == user and e.get("objectRef")]


def test_operator_runs_as_the_chart_service_account(
    api: client.ApiClient, local_cluster: localcluster.LocalCluster, namespace: str, installed: list[dict[str, Any]],
    emulator: Emulator, kubectl: list[str], tmp_path: Path,
) -> None:  # fmt: skip
    account = f"{RELEASE}-notebook-operator"
    listing = subprocess.run([*kubectl, "get", "serviceaccounts,roles,rolebindings,deployments,services,kopfpeerings",
                              "-n", namespace, "-o", "json"], capture_output=True, text=True, check=True)  # fmt: skip
    made = {(item["kind"], item["metadata"]["name"]) for item in json.loads(listing.stdout)["items"]}
    assert {("ServiceAccount", account), ("Role", account), ("RoleBinding", account), ("Deployment", account),
            ("Service", f"{account}-metrics"), ("KopfPeering", "notebook-operator")} <= made  # fmt: skip
    (deployment,) = kind(installed, "Deployment")
    args = [a for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            if not a.startswith(("--liveness", "--metrics-port"))]  # fmt: skip
    assert args[0] == "run" and f"--namespace={namespace}" in args and "--peering=notebook-operator" in args
    kubeconfig = service_account_kubeconfig(api, local_cluster, namespace, account, tmp_path / "sa.kubeconfig")
    env = {"KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"}
    op = OperatorProcess([*args[1:], "--liveness", "", "--metrics-port", "0"], env, tmp_path / "operator.log")
    try:
        setup_account(api, namespace, emulator)
        # A keyless account: the operator requests a token for the namespace's identity ServiceAccount (the
        # emulator here trusts no issuer, so the exchange is refused - after the token request RBAC allowed).
        client.CoreV1Api(api).create_namespaced_service_account(namespace, {"metadata": {"name": TENANT_ACCOUNT}})
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ProviderConfig", "metadata": {"name": "keyless"},
            "spec": {"provider": "pai-dsw", "region": "cn-hangzhou", "endpoint": emulator.url,
                     "oidc": {"roleArn": "acs:ram::1:role/r", "oidcProviderArn": "acs:ram::1:oidc-provider/p",
                              "stsEndpoint": emulator.url}}})  # fmt: skip
        wait_for(lambda: any(c.get("reason") == "IdentityRefused" for c in
                             (get(api, "ProviderConfig", namespace, "keyless").get("status") or {}).get("conditions")
                             or []), timeout=30, what="the keyless account refused by the emulator")  # fmt: skip
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "idlecullerpolicies", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "IdleCullerPolicy", "metadata": {"name": "all"},
            "spec": {"selector": {}, "cpuPercent": 5, "idleMinutes": 60}})  # fmt: skip
        notebook(api, namespace, "made", {"template": TEMPLATE, "desiredState": "Running"})
        status = wait_phase(api, namespace, "made", "Running", timeout=60)
        assert status["lastAction"]["action"] == "create"
        wait_for(lambda: get(api, "IdleCullerPolicy", namespace, "all").get("status", {}).get("matched") == 1,
                 timeout=30, what="policy status")  # fmt: skip
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "notebooksnapshots", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookSnapshot", "metadata": {"name": "saved"},
            "spec": {"notebookRef": {"name": "made"}, "imageUrl": "registry.local/team/saved:1"}})  # fmt: skip
        wait_for(lambda: (get(api, "NotebookSnapshot", namespace, "saved").get("status") or {}).get("phase") == "Ready",
                 timeout=30, what="snapshot Ready")  # fmt: skip
        client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "notebooksnapshots",
                                                                     "saved")  # fmt: skip
        wait_for(lambda: emulator.calls().get("pai-dsw:DeleteInstanceSnapshot"), timeout=30, what="snapshot deleted")
        client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances",
                                                                     "made")  # fmt: skip
        wait_for(lambda: not _exists(api, namespace, "made"), timeout=60, what="deleted through the finalizer")
        assert emulator.calls().get("pai-dsw:DeleteInstance") == 1
    finally:
        op.kill()
    user = f"system:serviceaccount:{namespace}:{account}"
    events = audited(local_cluster, user)
    refused = {(e["objectRef"].get("apiGroup", ""), e["objectRef"]["resource"], e["verb"]) for e in events
               if e.get("responseStatus", {}).get("code") == 403}  # fmt: skip
    # kopf's scanning of namespaces and CRDs is off (runner.py), so nothing at all is refused.
    assert refused == set(), f"the chart's RBAC is not enough: {sorted(refused)}"
    used = {
        (
            e["objectRef"].get("apiGroup", ""),
            e["objectRef"]["resource"]
            + ("/" + e["objectRef"]["subresource"] if e["objectRef"].get("subresource") else ""),
            e["verb"],
        )
        for e in events
    }
    (role,) = [r for r in kind(installed, "Role") if r["metadata"]["namespace"] == namespace]
    # A snapshot before a cull (snapshotBeforeStop) creates a NotebookSnapshot; this test culls nothing, so that
    # one grant goes unused here (tests/integration/test_snapshots.py culls with it).
    unused = granted(role["rules"]) - used - {("cloudnotebooks.io", "notebooksnapshots", "create")}
    assert unused == set(), f"granted but never used: {sorted(unused)}"


def _exists(api: client.ApiClient, namespace: str, name: str) -> bool:
    try:
        get(api, "NotebookInstance", namespace, name)
    except client.ApiException as e:
        if e.status == 404:
            return False
        raise
    return True
