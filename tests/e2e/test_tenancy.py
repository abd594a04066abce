"""Teams share one operator safely (wall-time cap: 4 minutes; 8 s measured in the parallel suite). The chart
installed watching three team namespaces, with identity.oidc (the operator's own projected token, as a file) and
the admin's allow-lists; the operator run with the chart's rendered argv as the chart's ServiceAccount. The
emulator verifies OIDC tokens
against the API server's JWKS and holds trust policies: each team's RAM role (and Huawei identity provider)
trusts only its own namespace's identity ServiceAccount. Listeners of the test's own record every request.

Each attack fails and every listener that must receive nothing receives nothing:
- a ProviderConfig naming `oidc.tokenFile` (the operator's own token): the field does not exist (pruned), and a
  namespace without its identity ServiceAccount is IdentityServiceAccountMissing with no request to its STS;
- another team's roleArn, or the operator's own role: the token is the namespace's own, the STS refuses it;
- stsEndpoint / iamEndpoint / endpoint at an address not allowed, a URL with userinfo, a metadata address:
  EndpointNotAllowed, nothing sent;
- an allowed endpoint that redirects to an internal address: the redirect is not followed;
- an allowed endpoint whose error answer carries a canary: the canary reaches no status, Event or log line;
- webhooks at loopback, 169.254.169.254, 100.100.100.200 and a name resolving to 127.0.0.1: NotificationBlocked
  Events (no URL in them), counted as blocked; a webhook the admin allows that fails: NotificationFailed.
And the legitimate paths work: a namespace with its ServiceAccount gets credentials for its own role (so its token's
`sub` is its own), and a ClusterProviderConfig serves an admitted namespace's notebook and refuses another's.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from notebook_devtools import localcluster
from notebook_operator.api.meta import GROUP, VERSION
from tests.e2e.test_chart import CHART, TENANT_ACCOUNT, render, service_account_kubeconfig
from tests.e2e.test_keyless import _discovery, _token
from tests.emulator import PAI_KEY, running_emulator
from tests.integration.test_reconcile import status_of, wait_phase
from tests.kube import delete_cluster_provider_config, get, wait_for
from tests.operator_process import OperatorProcess

WALL_CAP_S = 240
RELEASE = "tenancy"
OPERATOR_ACCOUNT = f"{RELEASE}-notebook-operator"
AUDIENCE = "sts.aliyuncs.com"
CANARY = "CANARY-7f3e9c"
LOOPBACK = r"^http://127\.0\.0\.1"


def role(account: str) -> str:
    return f"acs:ram::{account}:role/notebooks"


def provider_arn(account: str) -> str:
    return f"acs:ram::{account}:oidc-provider/cluster"


class Listener:
    """A loopback HTTP server of the test's own that records every request and answers as told:
    `record` 200 {}, `redirect` 302 to `location`, `canary` 400 with the canary in its body and status line,
    `fail` 500."""

    def __init__(self, mode: str, location: str = "") -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                requests.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", location)
                    body = b""
                elif mode == "canary":
                    self.send_response(400, f"Bad {CANARY}")
                    self.send_header("Content-Type", "text/html")
                    body = f"<html>{CANARY} internal stack trace</html>".encode()
                elif mode == "fail":
                    self.send_response(500)
                    self.send_header("Content-Type", "application/json")
                    body = json.dumps({"errmsg": CANARY}).encode()
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    body = b"{}"
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", localcluster.free_port()), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def _secret(api: client.ApiClient, namespace: str, name: str, **data: str) -> None:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    client.CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": name}, "data": encoded})


def _create(api: client.ApiClient, namespace: str, plural: str, kind: str, name: str, spec: dict[str, Any],
            labels: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name, "labels": labels or {}},
            "spec": spec}  # fmt: skip
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body, field_validation="Ignore"
    )
    return created


def _ready(api: client.ApiClient, kind: str, namespace: str, name: str) -> dict[str, Any]:
    status = get(api, kind, namespace, name).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})


def _reason(api: client.ApiClient, kind: str, namespace: str, name: str, reason: str) -> dict[str, Any]:
    return wait_for(lambda: (c := _ready(api, kind, namespace, name)).get("reason") == reason and c, timeout=40,
                    what=f"{kind} {namespace}/{name} Ready reason {reason}")  # fmt: skip


def _events(api: client.ApiClient, namespace: str) -> list[Any]:
    return list(client.CoreV1Api(api).list_namespaced_event(namespace).items)


@pytest.fixture
def teams(api: client.ApiClient, crds: list[str]) -> Iterator[dict[str, str]]:
    """Four new namespaces (the CRDs installed first: the chart's helm install then finds them)."""
    run = uuid.uuid4().hex[:6]
    names = {key: f"{key}-{run}" for key in ("ops", "team-a", "team-b", "team-c")}
    core = client.CoreV1Api(api)
    for key, namespace in names.items():
        labels = {"notebooks.test/shared": run} if key == "team-a" else {}
        core.create_namespace({"metadata": {"name": namespace, "labels": labels}})
    names["run"] = run
    yield names
    for key, namespace in names.items():
        if key != "run":
            core.delete_namespace(namespace)


@pytest.mark.slow(15)
def test_no_namespace_borrows_the_operators_identity_files_or_network_position(
    api: client.ApiClient, local_cluster: localcluster.LocalCluster, helm: str, kubeconfig: Path,
    teams: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    began = time.monotonic()
    ops, team_a, team_b, team_c = teams["ops"], teams["team-a"], teams["team-b"], teams["team-c"]
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    trap = Listener("record")  # not allowed: must receive nothing
    witness = Listener("record")  # allowed, team-c's STS: must receive nothing (no ServiceAccount, no token)
    redirector = Listener("redirect", location=f"{trap.url}/latest/meta-data")
    canary = Listener("canary")
    failing_hook = Listener("fail")  # a webhook the admin allows, answering 500
    listeners = (trap, witness, redirector, canary, failing_hook)
    issuer = _discovery(local_cluster, "/.well-known/openid-configuration")["issuer"]
    (tmp_path / "jwks.json").write_text(json.dumps(_discovery(local_cluster, "/openid/v1/jwks")))
    account_a, account_b, operator_account = "1000000000000001", "1000000000000002", "1000000000000009"
    subject = "system:serviceaccount:{}:" + TENANT_ACCOUNT
    trust = ["--oidc-trust", f"{role(account_a)}={subject.format(team_a)}",
             "--oidc-trust", f"{role(account_b)}={subject.format(team_b)}",
             "--oidc-trust", f"{role(operator_account)}=system:serviceaccount:{ops}:{OPERATOR_ACCOUNT}",
             "--oidc-trust", f"idp-a={subject.format(team_a)}"]  # fmt: skip
    with running_emulator(tmp_path, "--transition-delay", "0", "--oidc-jwks", str(tmp_path / "jwks.json"),
                          "--oidc-issuer", issuer, "--oidc-client-id", "hw-client", *trust) as cloud:  # fmt: skip
        allowed = "|".join(str(p) for p in (cloud.port, witness.port, redirector.port, canary.port))
        endpoints = json.dumps([LOOPBACK + f":({allowed})$"])
        webhooks = json.dumps([LOOPBACK + f":{failing_hook.port}$"])
        values = ["--set", f"watchNamespaces={{{team_a},{team_b},{team_c}}}", "--set", "identity.oidc.enabled=true",
                  "--set-json", f"security.allowedEndpoints={endpoints}",
                  "--set-json", f"security.allowedWebhooks={webhooks}"]  # fmt: skip
        installed = subprocess.run([helm, "install", RELEASE, str(CHART), "--namespace", ops, "--kubeconfig",
                                    str(kubeconfig), *values], capture_output=True, text=True)  # fmt: skip
        assert installed.returncode == 0, installed.stderr
        (deployment,) = [d for d in render(helm, *values) if d["kind"] == "Deployment"]
        pod = deployment["spec"]["template"]["spec"]
        args = [a for a in pod["containers"][0]["args"][1:] if not a.startswith(("--liveness", "--metrics-port"))]
        assert f"--tenant-service-account={TENANT_ACCOUNT}" in args
        assert not any(a == "--namespaced-ambient-credentials" for a in args)
        # The operator's own projected token, where the chart's identity.oidc puts it: a file only it reads.
        own_token = tmp_path / "operator-token"
        own_token.write_text(_token(api, ops, OPERATOR_ACCOUNT, AUDIENCE))
        for namespace in (team_a, team_b):  # team-c has no identity ServiceAccount
            core.create_namespaced_service_account(namespace, {"metadata": {"name": TENANT_ACCOUNT}})
        mine = cloud.seed(cloud="pai-dsw", account=account_a, name="team-a-nb")
        shared_a = cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="shared-a")
        shared_b = cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="shared-b")
        port = localcluster.free_port()
        kube = service_account_kubeconfig(api, local_cluster, ops, OPERATOR_ACCOUNT, tmp_path / "sa.kubeconfig")
        env = {"KUBECONFIG": str(kube), "PYTHONUNBUFFERED": "1", "PATH": os.environ.get("PATH", ""),
               "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(own_token),
               "HUAWEICLOUD_SDK_ID_TOKEN_FILE": str(own_token)}  # fmt: skip
        operator = OperatorProcess([*args, "--liveness", "", "--metrics-port", str(port)], env, tmp_path / "op.log")
        shared = f"shared-{teams['run']}"
        try:
            sts = {"stsEndpoint": cloud.url, "durationSeconds": 900}
            keyless = {"provider": "pai-dsw", "region": "cn-hangzhou", "endpoint": cloud.url, "pollIntervalSeconds": 2}

            def pc(namespace: str, name: str, **spec: Any) -> None:
                _create(api, namespace, "providerconfigs", "ProviderConfig", name, {**keyless, **spec})

            def rrsa(account: str, **extra: Any) -> dict[str, Any]:
                return {"roleArn": role(account), "oidcProviderArn": provider_arn(account), **sts, **extra}

            # Legitimate: team-a's own role, with team-a's own token.
            pc(team_a, "own", oidc=rrsa(account_a))
            # Attacks from team-b: team-a's role, the operator's role.
            pc(team_b, "steal", oidc=rrsa(account_a))
            pc(team_b, "operator-role", oidc=rrsa(operator_account))
            # team-c names the operator's token file (no such field: pruned) and has no identity ServiceAccount.
            stored = _create(api, team_c, "providerconfigs", "ProviderConfig", "token-file", {
                **keyless, "oidc": rrsa(account_a, tokenFile=str(own_token), stsEndpoint=witness.url)})  # fmt: skip
            assert "tokenFile" not in stored["spec"]["oidc"]
            # Endpoints the admin did not allow.
            _secret(api, team_a, "keys", accessKeyId=PAI_KEY[0], accessKeySecret=PAI_KEY[1])
            static = {"credentialsSecretRef": {"name": "keys"}}
            pc(team_a, "sts-elsewhere", oidc=rrsa(account_a, stsEndpoint=trap.url))
            pc(team_a, "iam-elsewhere", provider="modelarts", region="cn-north-4", projectId="p1",
               oidc={"idpId": "idp-a", "audience": "hw-client", "iamEndpoint": f"{trap.url}/v3"})  # fmt: skip
            pc(team_a, "endpoint-elsewhere", endpoint=trap.url, **static)
            pc(team_a, "metadata", endpoint="http://100.100.100.200", **static)
            pc(team_a, "userinfo", endpoint=f"http://127.0.0.1:{cloud.port}@127.0.0.1:{trap.port}/", **static)
            pc(team_a, "redirect", endpoint=redirector.url, **static)
            pc(team_a, "canary", endpoint=canary.url, **static)
            # The admin's account, for the namespaces labelled for it (team-a, not team-b).
            _secret(api, ops, "shared-keys", accessKeyId=PAI_KEY[0], accessKeySecret=PAI_KEY[1])
            custom.create_cluster_custom_object(GROUP, VERSION, "clusterproviderconfigs", {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterProviderConfig", "metadata": {"name": shared},
                "spec": {"provider": "pai-dsw", "region": "cn-hangzhou", "endpoint": cloud.url,
                         "pollIntervalSeconds": 2, "credentialsSecretRef": {"namespace": ops, "name": "shared-keys"},
                         "namespaceSelector": {"matchLabels": {"notebooks.test/shared": teams["run"]}}}})  # fmt: skip
            by_shared = {"kind": "ClusterProviderConfig", "name": shared}
            _create(api, team_a, "notebookinstances", "NotebookInstance", "shared",
                    {"providerConfigRef": by_shared, "instanceId": shared_a["id"]})  # fmt: skip
            _create(api, team_b, "notebookinstances", "NotebookInstance", "shared",
                    {"providerConfigRef": by_shared, "instanceId": shared_b["id"]})  # fmt: skip
            # Webhooks: each notebook warned of a stop in 30 minutes, its policy's webhook one of these.
            hooks = {"loopback": f"https://127.0.0.1:{trap.port}/hook", "link-local": "https://169.254.169.254/hook",
                     "metadata": "https://100.100.100.200/hook", "named": f"https://localhost:{trap.port}/hook",
                     "failing": f"{failing_hook.url}/hook"}  # fmt: skip
            _secret(api, team_a, "hooks", **hooks)
            due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1800))
            for key in hooks:
                _create(api, team_a, "idlecullerpolicies", "IdleCullerPolicy", f"hook-{key}", {
                    "selector": {"matchLabels": {"hook": key}}, "maxRunningHours": 100,
                    "notify": {"webhookSecretRef": {"name": "hooks", "key": key}, "format": "slack"}})  # fmt: skip
                seeded = cloud.seed(cloud="pai-dsw", account=account_a, name=f"hook-{key}")
                _create(api, team_a, "notebookinstances", "NotebookInstance", f"hook-{key}",
                        {"providerConfigRef": {"name": "own"}, "instanceId": seeded["id"],
                         "shutdown": {"at": due, "warnMinutes": 60}}, labels={"hook": key})  # fmt: skip
            _create(api, team_a, "notebookinstances", "NotebookInstance", "mine",
                    {"providerConfigRef": {"name": "own"}, "instanceId": mine["id"]})  # fmt: skip

            # The legitimate paths.
            wait_phase(api, team_a, "mine", "Running", timeout=60)  # team-a's token: the role trusts its sub
            assert _reason(api, "ProviderConfig", team_a, "own", "Polling")["status"] == "True"
            wait_phase(api, team_a, "shared", "Running", timeout=30)  # admitted by the ClusterProviderConfig
            refused = _reason(api, "NotebookInstance", team_b, "shared", "ProviderConfigNotAllowed")
            assert refused["status"] == "False" and "phase" not in status_of(api, team_b, "shared")
            # The attacks.
            for name in ("steal", "operator-role"):
                condition = _reason(api, "ProviderConfig", team_b, name, "IdentityRefused")
                assert "NoPermission" in condition["message"]
            missing = _reason(api, "ProviderConfig", team_c, "token-file", "IdentityServiceAccountMissing")
            assert TENANT_ACCOUNT in missing["message"]
            for name in ("sts-elsewhere", "iam-elsewhere", "endpoint-elsewhere", "metadata", "userinfo"):
                condition = _reason(api, "ProviderConfig", team_a, name, "EndpointNotAllowed")
                assert "--allowed-endpoint" in condition["message"] or "userinfo" in condition["message"]
            redirected = _reason(api, "ProviderConfig", team_a, "redirect", "InvalidConfiguration")
            assert "redirect" in redirected["message"] and redirector.requests
            reflected = _reason(api, "ProviderConfig", team_a, "canary", "InvalidConfiguration")
            assert "Bad Request" in reflected["message"] and canary.requests

            def event(reason: str, name: str) -> Any:
                return wait_for(lambda: next((e for e in _events(api, team_a) if e.reason == reason
                                              and e.involved_object.name == name), None),
                                timeout=30, what=f"{reason} on {name}")  # fmt: skip

            for key in ("loopback", "link-local", "metadata", "named"):
                message = event("NotificationBlocked", f"hook-{key}").message
                assert hooks[key] not in message and "127.0.0.1" not in message
            failed = event("NotificationFailed", "hook-failing")
            assert "HTTP 500" in failed.message and CANARY not in failed.message and failing_hook.requests
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            blocked = [
                line
                for line in metrics.splitlines()
                if line.startswith("notebook_operator_notifications_total") and 'result="blocked"' in line
            ]
            assert sum(float(line.rsplit(" ", 1)[1]) for line in blocked) == 4, blocked
        finally:
            delete_cluster_provider_config(api, shared)  # before the kill: its operator releases the finalizer
            operator.kill()
            subprocess.run([helm, "uninstall", RELEASE, "--namespace", ops, "--kubeconfig", str(kubeconfig)],
                           capture_output=True, check=False)  # fmt: skip
            for listener in listeners:
                listener.close()
        assert trap.requests == [] and witness.requests == []
        sts_calls = cloud.admin.get("/journal", params={"route": "sts:AssumeRoleWithOIDC"}).json()["entries"]
        assert {e["status"] for e in sts_calls} <= {200, 403}  # own role accepted; the two thefts refused
    # The canary and every token: in no status, no Event, no log line.
    everything = json.dumps(
        [
            [
                get(api, "ProviderConfig", ns, i["metadata"]["name"])
                for i in custom.list_namespaced_custom_object(GROUP, VERSION, ns, "providerconfigs")["items"]
            ]
            for ns in (team_a, team_b, team_c)
        ]
    ) + json.dumps([api.sanitize_for_serialization(e) for ns in (team_a, team_b, team_c) for e in _events(api, ns)])
    log = (tmp_path / "op.log").read_text()
    for text in (everything, log):
        assert CANARY not in text and own_token.read_text() not in text
        assert "LTAI" not in text and PAI_KEY[1] not in text
    assert time.monotonic() - began < WALL_CAP_S
