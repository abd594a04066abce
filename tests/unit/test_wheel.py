"""The operator's wheel (what the image installs) carries the operator only; the emulator, the demo and
the local cluster ship in the development-tools distribution and plug their subcommands in."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from notebook_operator.cli import COMMANDS_GROUP, build_parser

REPO = Path(__file__).resolve().parents[2]


def _wheel(source: Path, out: Path) -> zipfile.ZipFile:
    """Built from a copy: setuptools leaves build/ and *.egg-info in the tree it builds."""
    tree = out / "src"
    skipped = (".*", "__pycache__", "*.egg-info", "build", "tests", "charts", "deploy", "docs", "hack", "devtools")
    shutil.copytree(source, tree, ignore=shutil.ignore_patterns(*skipped))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(tree)],
                   check=True, capture_output=True)  # fmt: skip
    (path,) = out.glob("*.whl")
    return zipfile.ZipFile(path)


@pytest.fixture(scope="module")
def runtime_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    return _wheel(REPO, tmp_path_factory.mktemp("runtime"))


def test_runtime_wheel_lists_only_the_operator(runtime_wheel: zipfile.ZipFile) -> None:
    names = runtime_wheel.namelist()
    packages = {name.split("/")[0] for name in names}
    assert packages == {"notebook_operator", "notebook_operator-0.1.0.dist-info"}, packages
    modules = [name for name in names if name.endswith(".py")]
    assert "notebook_operator/runner.py" in modules
    for gone in ("cloudsim", "demo.py", "localcluster.py"):
        assert not [name for name in modules if gone in name], gone


def test_runtime_wheel_registers_no_development_commands(runtime_wheel: zipfile.ZipFile) -> None:
    entry_points = runtime_wheel.read("notebook_operator-0.1.0.dist-info/entry_points.txt").decode()
    assert "notebook-operator = notebook_operator.cli:main" in entry_points
    assert "kubectl-notebook = notebook_operator.kubectl_plugin:main" in entry_points  # the kubectl plugin
    assert COMMANDS_GROUP not in entry_points


def test_devtools_wheel_holds_the_emulator_demo_and_local_cluster(tmp_path: Path) -> None:
    wheel = _wheel(REPO / "devtools", tmp_path)
    modules = [name for name in wheel.namelist() if name.endswith(".py")]
    assert {name.split("/")[0] for name in modules} == {"notebook_devtools"}
    for module in ("cloudsim/server.py", "demo.py", "localcluster.py"):
        assert f"notebook_devtools/{module}" in modules
    dist_info = next(name for name in wheel.namelist() if name.endswith("entry_points.txt"))
    entry_points = wheel.read(dist_info).decode()
    assert f"[{COMMANDS_GROUP}]" in entry_points
    assert "emulator = notebook_devtools.commands:add_emulator" in entry_points


def test_installed_devtools_add_their_subcommands() -> None:
    parser = build_parser()
    args = parser.parse_args(["emulator", "--port", "9999", "--time-scale", "60"])
    assert (args.port, args.time_scale) == (9999, 60.0)
    assert parser.parse_args(["demo", "--keep"]).keep is True
