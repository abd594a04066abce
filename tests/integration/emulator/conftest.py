"""One emulator process for the session (instant transitions), reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulator import Emulator, running_emulator


@pytest.fixture(scope="session")
def emulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("emulator"), "--transition-delay", "0") as emulator:
        yield emulator


@pytest.fixture
def emulator(emulator_process: Emulator) -> Emulator:
    emulator_process.reset()
    return emulator_process
