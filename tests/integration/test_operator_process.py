"""The operator process against the real API server: starts, sees resources, serves health, stops on SIGTERM."""

from __future__ import annotations

import copy
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from notebook_devtools.localcluster import free_port
from tests.kube import REPO, create, load_manifests, wait_for
from tests.operator_process import OperatorProcess


@pytest.fixture
def operator_process(
    namespace: str, operator_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[OperatorProcess, int]]:
    port = free_port()
    op = OperatorProcess(
        [
            "--standalone",
            "--namespace",
            namespace,
            "--liveness",
            f"http://127.0.0.1:{port}/healthz",
            "--metrics-port",
            "0",
        ],
        operator_env,
        tmp_path / "operator.log",
    )
    yield op, port
    if op.proc.poll() is None:
        op.proc.kill()
        op.proc.wait()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_operator_sees_notebook_and_stops_on_sigterm(
    api: client.ApiClient, namespace: str, operator_process: tuple[OperatorProcess, int]
) -> None:
    op, port = operator_process
    wait_for(lambda: _healthy(port), timeout=30, what="operator health endpoint")

    notebook = copy.deepcopy(load_manifests(REPO / "examples/modelarts-devenv/notebookinstance.yaml")[0])
    create(api, notebook, namespace)
    wait_for(
        lambda: op.saw(f"NotebookInstance {namespace}/legacy-devenv seen"),
        timeout=30,
        what="the operator to log the new NotebookInstance",
    )
    assert op.proc.poll() is None

    elapsed = op.stop(signal.SIGTERM, timeout=10)
    assert elapsed < 10
    assert op.proc.returncode == 0, "".join(op.lines[-30:])
