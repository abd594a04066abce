"""`notebook-operator run` as a child process for tests, its output collected line by line."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from notebook_devtools.localcluster import EMULATOR_ENDPOINTS


# The emulator listens on loopback: namespaced ProviderConfigs may name it only because the admin allows it.
ALLOW_EMULATOR = ["--allowed-endpoint", EMULATOR_ENDPOINTS]


class OperatorProcess:
    """`notebook-operator run` as a child process, its output collected line by line. Unless `args` has its own
    --allowed-endpoint (the chart's rendered ones), the emulator's loopback address is allowed."""

    def __init__(self, args: list[str], env: dict[str, str], log_file: Path) -> None:
        self.lines: list[str] = []
        self.log_file = log_file.open("w")
        if not any(a.startswith("--allowed-endpoint") for a in args):
            args = [*args, *ALLOW_EMULATOR]
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
