"""Fault injection on request: errors, throttling, latency and dropped connections, by path pattern."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any


@dataclass
class Faults:
    error_rate: float = 0.0  # share of requests answered with status_code
    status_code: int = 503
    throttle_rate: float = 0.0  # share answered with the cloud's throttling error
    retry_after_s: float = 1.0
    latency_ms: float = 0.0  # added to every matching request
    drop_rate: float = 0.0  # share whose connection is closed without an answer
    path_pattern: str = ".*"
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("error_rate", "throttle_rate", "drop_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.status_code not in (500, 502, 503, 504):
            raise ValueError("statusCode must be 500, 502, 503 or 504")
        if self.latency_ms < 0 or self.retry_after_s < 0:
            raise ValueError("latencyMs and retryAfterSeconds must not be negative")
        self._pattern = re.compile(self.path_pattern)
        self._random = random.Random(self.seed)  # noqa: S311 (test traffic, not cryptography)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Faults:
        names = {
            "errorRate": "error_rate",
            "statusCode": "status_code",
            "throttleRate": "throttle_rate",
            "retryAfterSeconds": "retry_after_s",
            "latencyMs": "latency_ms",
            "dropRate": "drop_rate",
            "pathPattern": "path_pattern",
            "seed": "seed",
        }
        unknown = set(body) - set(names)
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**{names[k]: v for k, v in body.items()})

    def to_json(self) -> dict[str, Any]:
        return {
            "errorRate": self.error_rate,
            "statusCode": self.status_code,
            "throttleRate": self.throttle_rate,
            "retryAfterSeconds": self.retry_after_s,
            "latencyMs": self.latency_ms,
            "dropRate": self.drop_rate,
            "pathPattern": self.path_pattern,
        }

    def matches(self, path: str) -> bool:
        return bool(self._pattern.search(path))

    def pick(self) -> str | None:
        """'drop', 'throttle', 'error' or None for this request."""
        roll = self._random.random()
        for outcome, rate in (("drop", self.drop_rate), ("throttle", self.throttle_rate), ("error", self.error_rate)):
            if roll < rate:
                return outcome
            roll -= rate
        return None
