"""`kubectl notebook` run the way users run it: the real kubectl finds the `kubectl-notebook` console script on
PATH and passes its flags on; the plugin reads and patches NotebookInstances on the real API server."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from notebook_operator.api.meta import GROUP, VERSION
from tests.kube import REPO, get

SNOOZE = "cloudnotebooks.io/keep-running-until"


def _stamp(delta: timedelta) -> str:
    """Relative to when the fixture runs (not to when the module was collected: the suite takes minutes)."""
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _notebook(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any], status: dict[str, Any]) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookInstance", "metadata": {"name": name},
        "spec": {"providerConfigRef": {"name": "pai"}, **spec}})  # fmt: skip
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "notebookinstances", name,
                                                 {"status": status})  # fmt: skip


@pytest.fixture
def notebooks(api: client.ApiClient, namespace: str) -> str:
    _notebook(api, namespace, "busy", {"instanceId": "dsw-1", "desiredState": "Running"}, {
        "provider": "pai-dsw", "phase": "Running", "cloudStatus": "Running",
        "urls": {"jupyterLab": "https://dsw.example/lab/dsw-1"},
        "nextShutdownAt": _stamp(timedelta(hours=2)), "nextShutdownReason": "afterRunning 8h",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Running", "message": "cloud status Running",
                        "lastTransitionTime": _stamp(timedelta(hours=-6))}],
    })  # fmt: skip
    _notebook(api, namespace, "sleepy", {"instanceId": "dsw-2"}, {
        "provider": "pai-dsw", "phase": "Running", "cloudStatus": "Running",
        "idle": {"since": _stamp(timedelta(minutes=-35)), "policy": "gpu-idle", "cpuPercent": 1.5, "gpuPercent": 0,
                 "enforcement": "Operator"},
        "lastAction": {"action": "stop", "state": "Failed", "reason": "IdleCullerPolicy gpu-idle: idle 30 min",
                       "startedAt": _stamp(timedelta(minutes=-5)), "message": "Throttling.User"},
        "pendingStop": {"at": _stamp(timedelta(minutes=10, seconds=50)), "by": "IdleCullerPolicy gpu-idle",
                        "reason": "idle since 11:00"},
        "cost": {"perHour": 12.5, "currency": "CNY", "accumulated": 30},
    })  # fmt: skip
    _notebook(api, namespace, "watched", {"instanceId": "dsw-3", "managementPolicy": "Observe"},
              {"provider": "pai-dsw", "phase": "Stopped"})  # fmt: skip
    return namespace


def kubectl_notebook(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    return subprocess.run([str(REPO / ".cluster" / "bin" / "kubectl"), "notebook", *args, "--kubeconfig",
                           str(kubeconfig)], capture_output=True, text=True, env=env, timeout=60)  # fmt: skip


def test_list_shows_phase_idle_and_next_stop(kubeconfig: Path, notebooks: str) -> None:
    listed = kubectl_notebook(kubeconfig, "list", "-n", notebooks)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PROVIDER", "PHASE", "DESIRED", "IDLE", "NEXT", "STOP", "PENDING", "STOP",
                                "COST/H"]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["busy"][:4] == ["busy", "pai-dsw", "Running", "Running"] and "in 1h" in lines[1]
    assert rows["sleepy"][4] == "35m"
    assert rows["sleepy"][6:] == ["in", "10m", "12.5", "CNY"]  # pending stop, cost per hour
    assert rows["watched"][2] == "Stopped"
    everywhere = kubectl_notebook(kubeconfig, "list", "-A")
    assert everywhere.returncode == 0 and everywhere.stdout.splitlines()[0].startswith("NAMESPACE")
    assert any(line.startswith(notebooks) for line in everywhere.stdout.splitlines())


def test_start_and_stop_patch_the_desired_state(api: client.ApiClient, kubeconfig: Path, notebooks: str) -> None:
    stopped = kubectl_notebook(kubeconfig, "stop", "busy", "-n", notebooks)
    assert stopped.returncode == 0 and "desiredState=Stopped" in stopped.stdout
    assert get(api, "NotebookInstance", notebooks, "busy")["spec"]["desiredState"] == "Stopped"
    assert kubectl_notebook(kubeconfig, "start", "busy", "-n", notebooks).returncode == 0
    assert get(api, "NotebookInstance", notebooks, "busy")["spec"]["desiredState"] == "Running"
    refused = kubectl_notebook(kubeconfig, "start", "watched", "-n", notebooks)
    assert refused.returncode == 1 and "Observe" in refused.stderr
    assert "desiredState" not in get(api, "NotebookInstance", notebooks, "watched")["spec"]
    missing = kubectl_notebook(kubeconfig, "stop", "nope", "-n", notebooks)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_open_prints_the_jupyterlab_url(kubeconfig: Path, notebooks: str) -> None:
    opened = kubectl_notebook(kubeconfig, "open", "busy", "-n", notebooks)
    assert (opened.returncode, opened.stdout.strip()) == (0, "https://dsw.example/lab/dsw-1")
    assert kubectl_notebook(kubeconfig, "open", "watched", "-n", notebooks).returncode == 1


def test_why_says_it_in_plain_words(kubeconfig: Path, notebooks: str) -> None:
    sleepy = kubectl_notebook(kubeconfig, "why", "sleepy", "-n", notebooks)
    assert sleepy.returncode == 0, sleepy.stderr
    assert "idle for 35m under IdleCullerPolicy gpu-idle (last sample: cpu 1.5%, gpu 0%)" in sleepy.stdout
    assert "last action: stop failed 5m ago: IdleCullerPolicy gpu-idle: idle 30 min (Throttling.User)" in sleepy.stdout
    busy = kubectl_notebook(kubeconfig, "why", "busy", "-n", notebooks)
    assert "Ready=True: Running - cloud status Running" in busy.stdout
    assert "next stop in 1h" in busy.stdout and "afterRunning 8h" in busy.stdout
    assert "  account: ProviderConfig " in busy.stdout  # the default kind


def test_the_context_flag_is_honoured(kubeconfig: Path, notebooks: str) -> None:
    wrong = kubectl_notebook(kubeconfig, "list", "-n", notebooks, "--context", "no-such-context")
    assert wrong.returncode == 1 and "no-such-context" in wrong.stderr


def test_snooze_annotates_keep_running_until(api: client.ApiClient, kubeconfig: Path, notebooks: str) -> None:
    before = datetime.now(UTC)
    snoozed = kubectl_notebook(kubeconfig, "snooze", "sleepy", "2h", "-n", notebooks)
    assert snoozed.returncode == 0, snoozed.stderr
    value = get(api, "NotebookInstance", notebooks, "sleepy")["metadata"]["annotations"][SNOOZE]
    until = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert before + timedelta(hours=2) - timedelta(seconds=2) <= until <= datetime.now(UTC) + timedelta(hours=2)
    assert value in snoozed.stdout
    bad = kubectl_notebook(kubeconfig, "snooze", "sleepy", "soon", "-n", notebooks)
    assert bad.returncode == 1 and "duration" in bad.stderr
    assert kubectl_notebook(kubeconfig, "snooze", "sleepy", "off", "-n", notebooks).returncode == 0
    assert SNOOZE not in (get(api, "NotebookInstance", notebooks, "sleepy")["metadata"].get("annotations") or {})
    # The pending stop is 10m50s after the fixture ran; four plugin runs later (seconds each on a loaded machine)
    # it is fewer whole minutes away: the ones left when `why` started or ended.
    pending_at = get(api, "NotebookInstance", notebooks, "sleepy")["status"]["pendingStop"]["at"]
    due = datetime.fromisoformat(pending_at.replace("Z", "+00:00"))
    left = {int((due - datetime.now(UTC)).total_seconds()) // 60}
    why = kubectl_notebook(kubeconfig, "why", "sleepy", "-n", notebooks)
    left.add(int((due - datetime.now(UTC)).total_seconds()) // 60)
    assert any(f"pending stop in {m}m ({pending_at}) by IdleCullerPolicy gpu-idle" in why.stdout for m in left), why


def test_snapshot_creates_a_notebook_snapshot(api: client.ApiClient, kubeconfig: Path, notebooks: str) -> None:
    # PAI-DSW pushes a snapshot to a registry: without --image-url it says so and creates nothing.
    refused = kubectl_notebook(kubeconfig, "snapshot", "busy", "-n", notebooks)
    assert refused.returncode == 1 and "--image-url" in refused.stderr
    made = kubectl_notebook(kubeconfig, "snapshot", "busy", "-n", notebooks, "--image-url", "registry.local/t/busy:1",
                            "--snapshot-name", "busy-env", "--retain")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "notebooksnapshot/busy-env created" in made.stdout
    spec = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, notebooks, "notebooksnapshots", "busy-env")["spec"]  # fmt: skip
    assert spec == {"notebookRef": {"name": "busy"}, "imageUrl": "registry.local/t/busy:1", "deletionPolicy": "Retain"}
