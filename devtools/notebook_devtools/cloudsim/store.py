"""The emulator's state: instances of every cloud, in memory, optionally kept in a SQLite file."""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Cloud = Literal["pai-dsw", "modelarts", "devenv", "roma"]
CLOUDS: tuple[Cloud, ...] = ("pai-dsw", "modelarts", "devenv", "roma")

DEFAULT_BUSY = {"cpu": 60.0, "gpu": 70.0, "memory": 50.0}


@dataclass
class SimInstance:
    cloud: Cloud
    account: str  # PAI-DSW: the access key id; Huawei: the project id
    id: str
    name: str
    status: str
    created_at: float  # emulated epoch seconds
    modified_at: float
    attrs: dict[str, Any] = field(default_factory=dict)  # cloud-specific fields, in the cloud's wire names
    gpu: int = 0
    # (from emulated time, running?) - the power history, for running time and metric gaps
    running_since: float | None = None
    accumulated_ms: int = 0
    intervals: list[list[float | None]] = field(default_factory=list)
    # (from emulated time, {"cpu", "gpu", "memory"}) - scripted utilization levels
    utilization: list[list[Any]] = field(default_factory=list)
    culler: dict[str, Any] | None = None
    idle_since: float | None = None
    timer: dict[str, Any] | None = None
    lease: dict[str, Any] | None = None
    # pending state-machine steps: [[status, due wall-clock epoch seconds], ...]
    steps: list[list[Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    # GetLifecycle's session: "from startup to failure or shutdown" (SDK); each create or start begins one
    session: int = 0
    client_token: str | None = None

    def level(self, at: float) -> dict[str, float]:
        current = dict(DEFAULT_BUSY)
        for since, levels in self.utilization:
            if since <= at:
                current = {**current, **levels}
        if not self.gpu:
            current["gpu"] = 0.0
        return current

    def was_running(self, at: float) -> bool:
        return any(start is not None and start <= at and (end is None or at < end) for start, end in self.intervals)


def new_id(cloud: Cloud) -> str:
    if cloud == "pai-dsw":
        return "dsw-" + uuid.uuid4().hex[:16]
    return str(uuid.uuid4())


class Store:
    """Instances by id, with write-through persistence when a SQLite path is given."""

    def __init__(self, path: Path | None = None) -> None:
        self.instances: dict[str, SimInstance] = {}
        self._by_account: dict[tuple[str, str], dict[str, SimInstance]] = {}
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
            for (body,) in self._db.execute("SELECT body FROM instances"):
                instance = SimInstance(**json.loads(body))
                self._index(instance)

    def _index(self, instance: SimInstance) -> None:
        self.instances[instance.id] = instance
        self._by_account.setdefault((instance.cloud, instance.account), {})[instance.id] = instance

    def put(self, instance: SimInstance) -> None:
        self._index(instance)
        self.save(instance)

    def save(self, instance: SimInstance) -> None:
        if self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO instances (id, body) VALUES (?, ?)", (instance.id, json.dumps(asdict(instance)))
            )
            self._db.commit()

    def remove(self, instance_id: str) -> None:
        instance = self.instances.pop(instance_id, None)
        if instance is not None:
            self._by_account.get((instance.cloud, instance.account), {}).pop(instance_id, None)
        if self._db is not None:
            self._db.execute("DELETE FROM instances WHERE id = ?", (instance_id,))
            self._db.commit()

    def clear(self) -> None:
        for instance_id in list(self.instances):
            self.remove(instance_id)

    def of(self, cloud: Cloud, account: str) -> list[SimInstance]:
        return list(self._by_account.get((cloud, account), {}).values())

    def find(self, cloud: Cloud, account: str, instance_id: str) -> SimInstance | None:
        instance = self.instances.get(instance_id)
        if instance is None or instance.cloud != cloud or instance.account != account:
            return None
        return instance

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
