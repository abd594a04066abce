"""Fixtures of the operator tests: an emulator whose instances take a moment to change state, as clouds do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator import Emulator
from tests.integration.test_reconcile import start_operator
from tests.operator_process import OperatorProcess


@pytest.fixture(scope="session")
def cloud(emulator_process: Emulator) -> Emulator:
    """The worker's one emulator; `fresh_cloud` empties it and sets its delay for each test."""
    return emulator_process


@pytest.fixture
def fresh_cloud(cloud: Emulator) -> Iterator[Emulator]:
    """Empty, with no faults left by the test before, instances taking 0.3 s a step."""
    cloud.admin.post("/reset").raise_for_status()
    cloud.admin.put("/config", json={"transitionDelay": 0.3}).raise_for_status()
    yield cloud
    cloud.admin.delete("/faults").raise_for_status()


@pytest.fixture
def operator(namespace: str, operator_env: dict[str, str], tmp_path: Path) -> Iterator[OperatorProcess]:
    """`notebook-operator run --standalone -n NAMESPACE`, killed after the test."""
    op = start_operator(namespace, operator_env, tmp_path / "operator.log")
    yield op
    op.kill()
