"""The kustomize base: the chart rendered with default values, applied with `kubectl apply -k` to the real
API server, whose Pod Security admission checks the pod template against the restricted profile."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.kube import REPO

BASE = REPO / "deploy" / "kustomize"


def test_kustomize_base_is_the_rendered_chart(tmp_path: Path) -> None:
    subprocess.run([str(REPO / "hack" / "build-helm.sh")], check=True)
    subprocess.run([str(REPO / "hack" / "gen-manifests.sh"), str(tmp_path)], check=True)
    assert (tmp_path / "notebook-operator.yaml").read_text() == (BASE / "notebook-operator.yaml").read_text(), (
        "deploy/kustomize is stale: run `make manifests`"
    )


def test_apply_k_creates_the_operator_and_passes_restricted_pod_security(kubectl: list[str], crds: list[str]) -> None:
    applied = subprocess.run([*kubectl, "apply", "-k", str(BASE)], capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert "would violate PodSecurity" not in applied.stderr, applied.stderr
    for line in ("namespace/notebook-operator", "deployment.apps/notebook-operator", "clusterrole.rbac",
                 "serviceaccount/notebook-operator", "service/notebook-operator-metrics"):  # fmt: skip
        assert line in applied.stdout, applied.stdout
    got = subprocess.run([*kubectl, "-n", "notebook-operator", "get", "deployment", "notebook-operator", "-o",
                          "jsonpath={.spec.template.spec.containers[0].args}"], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert "--all-namespaces" in got.stdout
