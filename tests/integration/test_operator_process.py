"""The operator process against the real API server: starts, sees resources, serves health, stops on SIGTERM."""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from notebook_operator.localcluster import free_port
from tests.kube import REPO, create, load_manifests, wait_for


class OperatorProcess:
    """`notebook-operator run` as a child process, its output collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str], log_file: Path) -> None:
        self.lines: list[str] = []
        self.log_file = log_file.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "notebook_operator", "run", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.append(line)
            self.log_file.write(line)
            self.log_file.flush()

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> float:
        started = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)
        return time.monotonic() - started


@pytest.fixture
def operator_process(
    namespace: str, operator_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[OperatorProcess, int]]:
    port = free_port()
    op = OperatorProcess(
        ["--standalone", "--namespace", namespace, "--liveness", f"http://127.0.0.1:{port}/healthz"],
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
