"""`notebook-operator run` as a child process for tests, its output collected line by line."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from notebook_devtools.localcluster import EMULATOR_ENDPOINTS

# The emulator and the tests' webhook receivers listen on loopback: namespaced objects may name them only because
# the admin (the test) allows it. The chart's rendered arguments carry their own (security.* values).
ALLOW_LOOPBACK = ["--allowed-endpoint", EMULATOR_ENDPOINTS, "--allowed-webhook", EMULATOR_ENDPOINTS]


class OperatorProcess:
    """`notebook-operator run` as a child process, its output collected line by line. Arguments not rendered by
    the chart (no --tenant-service-account) also allow loopback endpoints and webhooks (ALLOW_LOOPBACK)."""

    def __init__(self, args: list[str], env: dict[str, str], log_file: Path) -> None:
        self.lines: list[str] = []
        self.log_file = log_file.open("w")
        if not any(a.startswith("--tenant-service-account") for a in args):
            args = [*args, *ALLOW_LOOPBACK]
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

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
