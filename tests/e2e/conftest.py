"""Fixtures of the whole-product tests."""

from __future__ import annotations

import subprocess

import pytest

from tests.kube import REPO

BIN = REPO / ".cluster" / "bin"


@pytest.fixture(scope="session")
def helm() -> str:
    subprocess.run([str(REPO / "hack" / "build-helm.sh"), str(BIN)], check=True)
    return str(BIN / "helm")
