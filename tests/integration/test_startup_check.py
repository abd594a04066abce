"""`notebook-operator run` that cannot work says why and exits, against the real API server (cap: 1 minute).

Before the start-up checks, a missing kubeconfig or an unanswering API server made `run` print nothing and wait
forever (kopf retries), and RBAC that refused its watch looped on 403s: in a pod, a Running container that did
nothing. Each case here must exit non-zero within 30 s with one line naming the problem and the fix.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client

from notebook_devtools import localcluster
from tests.kube import REPO

MAX_S = 30.0


def run_operator(env: dict[str, str], *args: str) -> tuple[int, str, float]:
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "notebook_operator", "run", "--standalone", "--metrics-port", "0", "--liveness", "",
         *args],
        env=env, capture_output=True, text=True, timeout=MAX_S + 15, cwd=REPO,
    )  # fmt: skip
    return result.returncode, result.stderr.strip(), time.monotonic() - began


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    assert lines[0].startswith("notebook-operator: ")
    return lines[0]


def test_missing_kubeconfig(operator_env: dict[str, str], tmp_path: Path) -> None:
    code, stderr, took = run_operator(operator_env, "--kubeconfig", str(tmp_path / "nonexistent"))
    line = one_line(stderr)
    assert code != 0 and took < MAX_S
    assert "nonexistent" in line and "no such file" in line and "--kubeconfig" in line


def test_kubeconfig_without_clusters(operator_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    code, stderr, took = run_operator(operator_env, "--kubeconfig", str(path))
    line = one_line(stderr)
    assert code != 0 and took < MAX_S
    assert str(path) in line and "not usable" in line and "current-context" in line


def test_api_server_that_does_not_answer(
    operator_env: dict[str, str], local_cluster: localcluster.LocalCluster, tmp_path: Path
) -> None:
    closed = f"https://127.0.0.1:{localcluster.free_port()}"  # nothing listens there
    path = localcluster.write_kubeconfig(local_cluster, tmp_path / "dead", "admin", local_cluster.token, server=closed)
    code, stderr, took = run_operator(operator_env, "--kubeconfig", str(path))
    line = one_line(stderr)
    assert code != 0 and took < MAX_S
    assert f"the API server at {closed} does not answer" in line


def test_credentials_the_api_server_refuses(
    operator_env: dict[str, str], local_cluster: localcluster.LocalCluster, tmp_path: Path
) -> None:
    path = localcluster.write_kubeconfig(local_cluster, tmp_path / "bad-token", "nobody", "not-a-valid-token")
    code, stderr, took = run_operator(operator_env, "--kubeconfig", str(path))
    line = one_line(stderr)
    assert code != 0 and took < MAX_S
    assert "refuses the credentials (401 Unauthorized)" in line
    assert "not-a-valid-token" not in line


def test_rbac_that_refuses_the_watch(
    api: client.ApiClient, namespace: str, operator_env: dict[str, str], local_cluster: localcluster.LocalCluster,
    tmp_path: Path,
) -> None:  # fmt: skip
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "powerless"}})
    token = core.create_namespaced_service_account_token("powerless", namespace, {"spec": {"expirationSeconds": 600}})
    path = localcluster.write_kubeconfig(local_cluster, tmp_path / "sa", "powerless", token.status.token)
    code, stderr, took = run_operator(operator_env, "--kubeconfig", str(path), "--namespace", namespace)
    line = one_line(stderr)
    assert code != 0 and took < MAX_S
    assert f"RBAC refuses list notebookinstances.cloudnotebooks.io in namespace {namespace}" in line
    assert f"system:serviceaccount:{namespace}:powerless" in line
