"""Emulated time: runs `scale` times faster than the wall clock from the moment the emulator starts."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self.scale = scale
        self._wall0 = time.time()

    def now(self) -> float:
        """Emulated epoch seconds."""
        wall = time.time()
        return self._wall0 + (wall - self._wall0) * self.scale

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def real_seconds(self, emulated: float) -> float:
        return emulated / self.scale


def iso(epoch: float | None) -> str | None:
    """Alibaba's time format: UTC `yyyy-MM-ddTHH:mm:ssZ`."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """ISO 8601 (with Z or offset, optional fraction) or epoch milliseconds."""
    text = text.strip()
    if text.isdigit():
        value = int(text)
        return value / 1000 if value > 10**11 else float(value)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
