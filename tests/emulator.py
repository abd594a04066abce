"""The cloud emulator as a real process on a loopback port, for tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from notebook_devtools.localcluster import free_port

PAI_KEY = ("AKID-test", "pai-test-secret")
HW_KEY = ("HWAK-test", "huawei-test-secret")
PROJECT = "proj0123456789"


class Emulator:
    def __init__(self, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.port = port
        self.proc = proc
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self.endpoint = f"127.0.0.1:{port}"
        self.admin = httpx.Client(base_url=f"{self.url}/_emulator", timeout=10)

    def seed(self, **spec: Any) -> dict[str, Any]:
        response = self.admin.post("/instances", json=spec)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def seed_many(self, specs: list[dict[str, Any]]) -> list[str]:
        response = self.admin.post("/instances", json={"instances": specs})
        response.raise_for_status()
        ids: list[str] = response.json()["ids"]
        return ids

    def instance(self, instance_id: str) -> dict[str, Any]:
        response = self.admin.get(f"/instances/{instance_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stops(self, instance_id: str | None = None) -> int:
        """PAI-DSW stops sent: StopInstance calls plus the members of StopInstances calls (batched stops)."""
        params = {"instance": instance_id} if instance_id else {}
        entries = self.admin.get("/journal", params=params).json()["entries"]
        routes = ("pai-dsw:StopInstance", "pai-dsw:StopInstances")
        return sum(
            1 for e in entries if e["instance"] and e["route"] in routes and not e["outcome"].startswith("fault")
        )

    def calls(self) -> dict[str, int]:
        counts: dict[str, int] = self.admin.get("/calls").json()["calls"]
        return counts

    def reset(self) -> None:
        self.admin.post("/reset").raise_for_status()
        self.admin.put("/config", json={"transitionDelay": 0}).raise_for_status()

    def wait_status(self, instance_id: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            current = self.instance(instance_id)
            if current["status"] == status:
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"{instance_id} is {current['status']}, not {status}, after {timeout}s")
            time.sleep(0.05)

    def stop(self) -> None:
        self.admin.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@contextmanager
def running_emulator(log_dir: Path, *extra: str) -> Iterator[Emulator]:
    port = free_port()
    log = log_dir / f"emulator-{port}.log"
    args = [
        sys.executable, "-m", "notebook_operator", "emulator", "--port", str(port),
        "--credential", ":".join(PAI_KEY), "--credential", ":".join(HW_KEY), *extra,
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    emulator = Emulator(port, proc, log)
    deadline = time.monotonic() + 20
    while True:
        try:
            if emulator.admin.get("/health").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            emulator.stop()
            raise RuntimeError(f"emulator did not start:\n{log.read_text()}")
        time.sleep(0.1)
    try:
        yield emulator
    finally:
        emulator.stop()
