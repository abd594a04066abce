"""`notebook-operator demo` in its normal mode: exits 0, its summary says what happened, nothing is left running."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kube import REPO


@pytest.mark.slow(149)
def test_demo_runs_and_cleans_up(tmp_path: Path) -> None:
    subprocess.run([str(REPO / "hack" / "build-kube.sh"), str(REPO / ".cluster" / "bin")], check=True)
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "notebook_operator", "demo", "--bin-dir", str(REPO / ".cluster" / "bin"),
         "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout.split("summary:")[-1]
    lines = {line.strip().split(": ")[0]: line.strip() for line in summary.splitlines() if ": " in line}
    assert lines["instances mirrored"] == "instances mirrored: 7 (3 created, 4 adopted)", summary
    assert lines["failed to start"] == (
        "failed to start: frank-no-stock (InsufficientStock: ecs.gn6i-c4g1.xlarge is out of stock in cn-hangzhou)"
    ), summary
    assert lines["stopped on their shutdown timers"].endswith(": alice-gpu, bob-gpu"), summary
    assert lines["culled when idle"].endswith(": dave-idle-gpu"), summary
    assert re.fullmatch(r"snapshots saved before culls: dave-idle-gpu-cull-[0-9-]+ \(Ready\)",
                        lines["snapshots saved before culls"]), summary  # fmt: skip
    # busy GPU behind an idle CPU, ModelArts (no metrics), unmatched
    assert lines["still running"].endswith(": carol-cpu, erin-busy-gpu, legacy-console"), summary
    assert lines["instances stopped"].endswith(": 3"), summary
    assert "matched 5, stopped 1" in lines["IdleCullerPolicy gpu-idle"], summary
    assert "3 stops" in lines["cloud calls"], summary
    assert lines["saved so far by culling"].split(" (")[0].endswith(" CNY"), summary
    # dave-idle-gpu, alice-gpu, bob-gpu: three ecs.gn6i-c4g1.xlarge at the emulator's ListEcsSpecs price
    assert lines["stopped notebooks were costing"].endswith(": 35.25 CNY/h"), summary
    assert lines["projected per month for a team of 7"].endswith(": 10,857 CNY"), summary  # 35.25 x 14 h x 22 days
    before = result.stdout.split("summary:")[0]
    frames = before.split("operator running;")[1]  # the first line names the (long) work dir
    wide = [line for line in frames.splitlines() if len(line) > 120]
    assert not wide, f"the live table is wider than 120 columns: {wide}"
    assert "what happened:" in before and "bob-gpu warned: stops at" in before, before[-2000:]
    # The cluster's processes carry the work dir in their flags, the emulator its demo key, the operator its namespace.
    for pattern in (str(workdir), "LTAI-demo:demo-pai-secret", "run --standalone -n demo "):
        leftovers = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        assert leftovers.stdout.strip() == "", f"left running ({pattern}): {leftovers.stdout}"
