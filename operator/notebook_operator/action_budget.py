"""How many cloud calls one poll pass of an account may spend on actions (stops, starts, updates), so a wave of
due actions cannot hold the pass - and the mirroring, warnings and culls of every other notebook - past its
interval.

Capacity: what the account's rate limit allows within one poll interval, minus the listing's calls. A stop that
goes out in a batch (PAI-DSW StopInstances) costs its share of one call. What does not fit waits for the next pass
with `status.lastAction.state: Queued`; the next pass first reserves the capacity for what has waited longest
(oldest `Queued` first, the namespaces of a shared account taking turns, so one namespace's backlog cannot hold back
another's due stop), then admits new actions in the order their notebooks are listed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

QUEUED = "Queued"


@dataclass(frozen=True)
class Waiting:
    """A notebook whose action the last pass queued."""

    uid: str
    since: str  # RFC 3339: when it was first queued
    cost: float
    namespace: str = ""


def capacity(calls_per_interval: float, listing_calls: int) -> float:
    """Calls a pass may spend on actions (rate limit x poll interval, less the listing's); at least one, so a
    wave always drains."""
    return max(1.0, calls_per_interval - listing_calls)


class ActionBudget:
    def __init__(self, calls: float, waiting: Iterable[Waiting] = ()) -> None:
        self.calls = calls
        self.spent = 0.0
        self.queued: set[str] = set()  # uids this pass queued
        # Capacity held for what waited longest: it goes first whatever order this pass lists it in.
        self._reserved: dict[str, float] = {}
        held = 0.0
        for item in in_turn(waiting, lambda w: w.since, lambda w: w.namespace):
            if held + item.cost > calls:
                break
            self._reserved[item.uid] = item.cost
            held += item.cost

    def admit(self, uid: str, cost: float) -> bool:
        """True: send it now (counted as spent). False: it waits for the next pass."""
        if uid in self._reserved:
            self.spent += self._reserved.pop(uid)
            self.queued.discard(uid)
            return True
        if self.spent + sum(self._reserved.values()) + cost <= self.calls + 1e-9:
            self.spent += cost
            self.queued.discard(uid)
            return True
        self.queued.add(uid)
        return False

    def spare(self) -> float:
        """Calls no stop or action of this pass has taken or holds: what housekeeping may spend."""
        return max(0.0, self.calls - self.spent - sum(self._reserved.values()))

    def spend(self, calls: float) -> None:
        """Housekeeping took `calls` of the spare ones."""
        self.spent += calls

    def release(self, uid: str) -> None:
        """The notebook's pass ended without using its reservation (e.g. stopped meanwhile by someone else)."""
        self._reserved.pop(uid, None)


def in_turn(items: Iterable[T], since: Callable[[T], Any], namespace: Callable[[T], str]) -> list[T]:
    """Longest-waiting first within each namespace; the namespaces take turns, the one whose first waited longest
    first: one namespace's backlog cannot hold back another's."""
    by_namespace: dict[str, list[T]] = {}
    for item in sorted(items, key=since):
        by_namespace.setdefault(namespace(item), []).append(item)
    queues = list(by_namespace.values())
    return [q[turn] for turn in range(max((len(q) for q in queues), default=0)) for q in queues if turn < len(q)]
