"""Each cloud's instance state machine, and what the cloud enforces by itself (culler, timer, lease).

Operations move an instance through a list of statuses, one every `delay` real seconds (all at
once with delay 0). `tick` advances due steps and applies server-side stops; the server calls
it a few times a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from notebook_devtools.cloudsim.clock import Clock, iso
from notebook_devtools.cloudsim.store import Cloud, SimInstance, Store

GONE = "__gone__"

RUNNING: dict[Cloud, str] = {"pai-dsw": "Running", "modelarts": "RUNNING", "devenv": "RUNNING", "roma": "RUNNING"}
# The status a failed start (or create) ends in: each cloud's own (the SDKs' status lists).
FAILED: dict[tuple[Cloud, str], str] = {
    ("pai-dsw", "create"): "Failed",
    ("pai-dsw", "start"): "Failed",
    ("modelarts", "create"): "CREATE_FAILED",
    ("modelarts", "start"): "START_FAILED",
    ("devenv", "start"): "START_FAILED",
}

STEPS: dict[tuple[Cloud, str], list[str]] = {
    ("pai-dsw", "create"): ["Creating", "EnvPreparing", "Running"],
    ("pai-dsw", "start"): ["Starting", "EnvPreparing", "Running"],
    ("pai-dsw", "stop"): ["Stopping", "Stopped"],
    ("pai-dsw", "stop-save"): ["Saving", "Stopping", "Stopped"],
    ("pai-dsw", "update"): ["Updating", "Stopped"],
    ("pai-dsw", "delete"): ["Deleting", GONE],
    ("modelarts", "create"): ["CREATING", "STARTING", "RUNNING"],
    ("modelarts", "start"): ["STARTING", "RUNNING"],
    ("modelarts", "stop"): ["STOPPING", "STOPPED"],
    ("modelarts", "delete"): ["DELETING", GONE],
    ("devenv", "start"): ["STARTING", "RUNNING"],
    ("devenv", "stop"): ["STOPPING", "STOPPED"],
}

# Statuses each operation may start from; anything else is the cloud's illegal-state error.
ALLOWED_FROM: dict[tuple[Cloud, str], set[str]] = {
    ("pai-dsw", "start"): {"Stopped", "Failed", "Saved", "SaveFailed"},
    ("pai-dsw", "stop"): {"Running", "Starting", "EnvPreparing", "ResourceAllocating", "Queuing", "Recovering"},
    ("pai-dsw", "update"): {"Stopped", "Failed", "Saved", "SaveFailed"},
    ("pai-dsw", "delete"): {
        "Stopped",
        "Failed",
        "Saved",
        "SaveFailed",
        "Running",
        "Creating",
        "EnvPreparing",
        "Queuing",
        "ResourceAllocating",
        "Stopping",
        "Starting",
        "Updating",
        "Recovering",
        "Saving",
    },
    ("modelarts", "start"): {"STOPPED", "START_FAILED", "ERROR"},
    ("modelarts", "stop"): {"RUNNING", "STARTING"},
    ("modelarts", "update"): {"STOPPED", "RUNNING"},
    ("modelarts", "delete"): {"RUNNING", "STOPPED", "ERROR", "CREATE_FAILED", "START_FAILED", "FROZEN", "STARTING"},
    ("devenv", "start"): {"STOPPED", "START_FAILED"},
    ("devenv", "stop"): {"RUNNING"},
}


class IllegalState(Exception):
    def __init__(self, instance: SimInstance, operation: str) -> None:
        super().__init__(f"{operation} is not allowed while the instance {instance.id} is {instance.status}")
        self.instance = instance
        self.operation = operation


@dataclass
class Lifecycle:
    store: Store
    clock: Clock
    delay: float = 2.0  # real seconds between two statuses of one operation

    def check(self, instance: SimInstance, operation: str) -> None:
        allowed = ALLOWED_FROM.get((instance.cloud, operation))
        if allowed is not None and instance.status not in allowed:
            raise IllegalState(instance, operation)

    def begin(self, instance: SimInstance, operation: str, reason: str = "") -> None:
        """Start an operation: first status now, the rest on the delay schedule."""
        self.check(instance, operation)
        steps = STEPS[(instance.cloud, operation)]
        failed = FAILED.get((instance.cloud, operation))
        if failed:  # a new attempt, a new session: the last one's reason is history (GetLifecycle, events)
            instance.session += 1
            for key in ("ReasonCode", "ReasonMessage", "fail_reason", "action_progress"):
                instance.attrs.pop(key, None)
            if instance.attrs.get("fail_next"):  # it fails where it would have come up
                steps = [*steps[:-1], failed]
        wall = time.time()
        instance.steps = [[status, wall + self.delay * (n + 1)] for n, status in enumerate(steps[1:])]
        self.set_status(instance, steps[0], reason or operation)
        if self.delay <= 0:
            self.advance(instance, float("inf"))
        elif instance.id in self.store.instances:
            self.store.save(instance)

    def fail_next(self, instance: SimInstance, code: str, message: str, events: list[str]) -> None:
        """Make the next start fail with this reason and events; a start under way fails at once."""
        instance.attrs["fail_next"] = {"code": code, "message": message, "events": events}
        running = RUNNING[instance.cloud]
        if instance.steps and instance.steps[-1][0] == running:
            operation = "create" if instance.status in ("Creating", "CREATING") else "start"
            instance.steps = []
            self.set_status(instance, FAILED.get((instance.cloud, operation), "Failed"))
        elif instance.id in self.store.instances:
            self.store.save(instance)

    def _failed(self, instance: SimInstance, now: float) -> str:
        """The reason and events of a start that fails now, in the cloud's own fields."""
        failure = instance.attrs.pop("fail_next")
        code, message = failure["code"], failure["message"]
        if instance.cloud == "pai-dsw":
            instance.attrs["ReasonCode"], instance.attrs["ReasonMessage"] = code, message
        else:  # ModelArts, DevEnviron: the reason, and the step that failed (JobProgress)
            instance.attrs["fail_reason"] = message
            instance.attrs["action_progress"] = [
                {"step": 1, "status": "COMPLETED", "description": "resources allocated"},
                {"step": 2, "status": "FAILED", "description": message},
            ]
        instance.events.extend(f"{iso(now)} {event}" for event in failure["events"])
        return str(code or message)

    def set_status(self, instance: SimInstance, status: str, reason: str = "") -> None:
        now = self.clock.now()
        if status == GONE:
            self.store.remove(instance.id)
            return
        if instance.attrs.get("fail_next") and status in FAILED.values():
            reason = self._failed(instance, now)
        running = RUNNING[instance.cloud]
        if instance.status == running and status != running and instance.running_since is not None:
            instance.accumulated_ms += int((now - instance.running_since) * 1000)
            instance.running_since = None
            if instance.intervals and instance.intervals[-1][1] is None:
                instance.intervals[-1][1] = now
            instance.idle_since = None
        if status == running and instance.status != running:
            instance.running_since = now
            instance.intervals.append([now, None])
            if instance.lease is not None:
                instance.lease["create_at"] = int(now * 1000)
                instance.lease["update_at"] = int(now * 1000)
        if instance.lifecycle:
            instance.lifecycle[-1]["GmtEndTime"] = iso(now)
        instance.lifecycle.append(
            {"Status": status, "ReasonCode": reason, "ReasonMessage": reason, "GmtCreateTime": iso(now),
             "session": instance.session}
        )  # fmt: skip
        del instance.lifecycle[:-100]
        instance.status = status
        instance.modified_at = now
        if instance.id in self.store.instances:
            self.store.save(instance)

    def advance(self, instance: SimInstance, wall: float) -> None:
        while instance.steps and instance.steps[0][1] <= wall:
            status, _ = instance.steps.pop(0)
            self.set_status(instance, status)

    def running_ms(self, instance: SimInstance) -> int:
        extra = 0 if instance.running_since is None else int((self.clock.now() - instance.running_since) * 1000)
        return instance.accumulated_ms + extra

    def tick(self) -> None:
        wall, now = time.time(), self.clock.now()
        for instance in list(self.store.instances.values()):
            self.advance(instance, wall)
            if instance.id not in self.store.instances or instance.status != RUNNING[instance.cloud]:
                continue
            if instance.steps:
                continue
            reason = self._server_side_stop(instance, now)
            if reason:
                instance.events.append(f"{iso(now)} {reason}")
                operation = "stop"
                self.begin(instance, operation, reason)

    def _server_side_stop(self, instance: SimInstance, now: float) -> str | None:
        if instance.timer and instance.timer.get("due", float("inf")) <= now:
            instance.timer = None
            return "ShutdownTimer: the scheduled stop time was reached"
        if instance.culler:
            since = idle_since(
                instance, instance.culler.get("CpuPercentThreshold"), instance.culler.get("GpuPercentThreshold"), now
            )
            instance.idle_since = since
            limit = float(instance.culler.get("MaxIdleTimeInMinutes") or 0) * 60
            if since is not None and limit and now - since >= limit:
                return "IdleInstanceCuller: idle longer than MaxIdleTimeInMinutes"
        lease = instance.lease
        if lease and lease.get("enable", True) and lease.get("create_at"):
            duration_s = float(lease.get("duration", 0)) / 1000
            if lease.get("type") == "IDLE":
                # The cloud's own idea of idle (Huawei's ModelArts FAQ on auto stop): CPU at most 5 %,
                # GPU at most 1 % (NPU at most 1 %, little network traffic: not modelled here).
                since = idle_since(instance, 5, 1, now, at_most=True)
                if since is not None and now - since >= duration_s:
                    return "Lease: idle for the lease duration"
            elif now >= lease["create_at"] / 1000 + duration_s:
                return "Lease: the auto-stop time was reached"
        return None


def idle_since(
    instance: SimInstance, cpu_threshold: Any, gpu_threshold: Any, now: float, at_most: bool = False
) -> float | None:
    """Since when every given threshold has held without a break (None: busy now). Idle is below the
    threshold (PAI-DSW's culler), or at most it with `at_most` (ModelArts' IDLE lease)."""

    def busy(level: float, threshold: Any) -> bool:
        return level > float(threshold) if at_most else level >= float(threshold)

    def idle(levels: dict[str, float]) -> bool:
        if cpu_threshold is not None and busy(levels["cpu"], cpu_threshold):
            return False
        return not (instance.gpu and gpu_threshold is not None and busy(levels["gpu"], gpu_threshold))

    if not idle(instance.level(now)):
        return None
    since = instance.running_since if instance.running_since is not None else now
    changes = sorted(float(t) for t, _ in instance.utilization if float(t) <= now)
    for change in reversed(changes):
        if change <= since:
            break
        if not idle(instance.level(change - 1e-6)):
            return change
    return since
