"""Peering as users run it: a named peering object is honoured, a missing one is a clear error at start,
and replicas started with identical arguments elect one active replica that a standby replaces when it dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from notebook_operator.kube import Kube, StaleObject
from tests.emulator import Emulator
from tests.integration.test_reconcile import TEMPLATE, notebook, setup_account, status_of, wait_phase
from tests.kube import get, wait_for
from tests.peering import Replica, create_peering, health, keepalives

LIFETIME_S = 10


@pytest.fixture
def replicas(operator_env: dict[str, str], tmp_path: Path) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    yield started
    for replica in started:
        replica.process.kill()


def test_missing_peering_object_stops_the_operator_with_a_clear_error(
    peering_crds: list[str], namespace: str, operator_env: dict[str, str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "notebook_operator", "run", "--namespace", namespace, "--peering", "nowhere",
         "--liveness", "", "--metrics-port", "0"],
        env=operator_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"KopfPeering 'nowhere' in namespace(s) {namespace} does not exist" in result.stderr
    assert "kind: KopfPeering" in result.stderr and "--standalone" in result.stderr  # how to fix it


def test_a_named_peering_is_honoured(
    api: client.ApiClient, peering_crds: list[str], namespace: str, emulator: Emulator, replicas: list[Replica],
    operator_env: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    create_peering(api, "team-a", namespace)
    replica = Replica(0, ["--namespace", namespace, "--peering", "team-a"], operator_env, tmp_path)
    replicas.append(replica)
    setup_account(api, namespace, emulator)
    notebook(api, namespace, "nb", {"template": TEMPLATE, "desiredState": "Running"})
    wait_phase(api, namespace, "nb", "Running", timeout=60)
    # The reported role may lag kopf's own switch by peering.RECHECK_S (2 s); the spec pass can be quicker.
    wait_for(replica.active, timeout=10, what="the replica reports itself active")
    assert len(keepalives(api, "team-a", namespace)) == 1  # its keep-alive is in the object it was told to use


@pytest.mark.slow(25)
def test_identical_replicas_elect_one_and_a_standby_takes_over(
    api: client.ApiClient, peering_crds: list[str], namespace: str, emulator: Emulator, replicas: list[Replica],
    operator_env: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    create_peering(api, "notebook-operator", namespace)
    argv = ["--namespace", namespace, "--peering", "notebook-operator", "--peering-lifetime", str(LIFETIME_S)]
    for n in range(2):
        replicas.append(Replica(n, argv, operator_env, tmp_path))
    wait_for(lambda: sorted(r.active() for r in replicas) == [False, True], timeout=30, what="one active replica")
    for replica in replicas:  # a standby is healthy too, and says what it is
        answer = wait_for(lambda r=replica: health(r.health), timeout=15, what="health endpoint")
        assert answer[0] == 200
        assert answer[1]["role"] == ("active" if replica.active() else "standby")
    setup_account(api, namespace, emulator)
    notebook(api, namespace, "nb", {"template": TEMPLATE, "desiredState": "Running"})
    wait_phase(api, namespace, "nb", "Running", timeout=60)
    assert emulator.calls().get("pai-dsw:CreateInstance") == 1

    active = next(r for r in replicas if r.active())
    standby = next(r for r in replicas if r is not active)
    active.process.proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(standby.active, timeout=LIFETIME_S + 5, what="the standby takes over")
    assert time.monotonic() - killed_at <= LIFETIME_S + 3  # within the lifetime, plus the role's recheck
    assert standby.process.saw("is now active")
    notebook(api, namespace, "nb2", {"template": {**TEMPLATE, "name": "nb2"}, "desiredState": "Running"})
    wait_phase(api, namespace, "nb2", "Running", timeout=60)
    assert emulator.calls().get("pai-dsw:CreateInstance") == 2


def test_an_action_is_claimed_once_by_a_conditional_write(
    api: client.ApiClient, namespace: str, kubeconfig: Path, operator_env: dict[str, str]
) -> None:
    """Two writers holding the same version of an object (two replicas while a takeover overlaps): only one
    claim of an action gets through; the other learns it is stale and does not call the cloud."""
    created = notebook(api, namespace, "claimed", {"instanceId": "dsw-x"})
    version = created["metadata"]["resourceVersion"]

    async def claim_twice() -> list[str]:
        os.environ["KUBECONFIG"] = str(kubeconfig)
        kube = await Kube.connect()
        outcomes = []
        try:
            for writer in ("a", "b"):
                try:
                    claim = {"lastAction": {"action": "stop", "state": "Pending", "reason": writer}}
                    written = await kube.patch_status("NotebookInstance", namespace, "claimed", claim,
                                                      resource_version=version)  # fmt: skip
                    outcomes.append(f"{writer}: claimed")
                    assert written == get(api, "NotebookInstance", namespace, "claimed")["metadata"]["resourceVersion"]
                except StaleObject:
                    outcomes.append(f"{writer}: stale")
        finally:
            await kube.close()
        return outcomes

    assert asyncio.run(claim_twice()) == ["a: claimed", "b: stale"]
    assert status_of(api, namespace, "claimed")["lastAction"]["reason"] == "a"
