"""Which replica acts: kopf peering read the way kopf reads it, and a distinct priority per process.

kopf (engines/peering.py) keeps one keep-alive per operator in the peering object's status,
`{identity: {priority, lifetime, lastseen}}`. An operator pauses while another live peer has a higher
priority, and *every* operator pauses while a live peer has the same priority ("Possibly conflicting
operators with the same priority"). A peer is live until `lastseen + lifetime`. This module applies
that rule to one snapshot, so the operator can report its own role; kopf does the pausing itself.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from notebook_operator.times import parse_rfc3339

DEFAULT_NAME = "notebook-operator"
# Seconds a keep-alive is valid: a standby takes over at most this long after the active replica dies.
# kopf touches its keep-alive every lifetime - (5..10) s, so this also bounds the API write rate.
DEFAULT_LIFETIME_S = 15
MIN_LIFETIME_S = 10  # below this, kopf's keep-alive interval (lifetime - 5..10 s) drops to 1 s

# Automatic priorities are negative, so any explicit --priority >= 0 (kopf's default and what
# `kopf freeze` uses) outranks them, and the older process outranks the newer one: a replica that
# restarts after a crash comes back as a standby instead of taking the work back from its peer.
_AUTO_SPREAD = 1000


def auto_priority(started_at: datetime, rng: random.Random | None = None) -> int:
    """A priority that differs per process: minus the start time in ms, with 3 random digits for ties."""
    millis = int(started_at.timestamp() * 1000)
    return -(millis * _AUTO_SPREAD + (rng or random.SystemRandom()).randrange(_AUTO_SPREAD))


@dataclass(frozen=True)
class Peer:
    identity: str
    priority: int
    deadline: datetime  # lastseen + lifetime


def peers(status: Mapping[str, Any] | None) -> list[Peer]:
    """The keep-alives in a peering object's status; malformed entries are skipped, as kopf cannot use them."""
    found = []
    for identity, info in (status or {}).items():
        if not isinstance(info, Mapping) or not info.get("lastseen"):
            continue
        try:
            lastseen = parse_rfc3339(str(info["lastseen"]))
            if lastseen is None:
                continue
            deadline = lastseen + timedelta(seconds=int(info.get("lifetime", 60)))
            found.append(Peer(str(identity), int(info.get("priority", 0)), deadline))
        except (TypeError, ValueError):
            continue
    return found


@dataclass(frozen=True)
class Verdict:
    active: bool
    why: str
    # When a blocking peer's keep-alive runs out: look again then, it may be dead.
    recheck_at: datetime | None = None


def verdict(status: Mapping[str, Any] | None, identity: str, priority: int, now: datetime) -> Verdict:
    found = peers(status)
    if not any(p.identity == identity for p in found):
        # kopf processes nothing before it has joined the peering (its first keep-alive).
        return Verdict(False, "standby: not in the peering yet (no keep-alive of its own)")
    live = [p for p in found if p.identity != identity and p.deadline > now]
    higher = [p for p in live if p.priority > priority]
    same = [p for p in live if p.priority == priority]
    blocking = higher + same
    recheck = min((p.deadline for p in blocking), default=None)
    if higher:
        leader = max(higher, key=lambda p: p.priority)
        return Verdict(False, f"standby: {leader.identity} has a higher priority", recheck)
    if same:
        return Verdict(
            False, f"paused: {same[0].identity} has the same priority {priority} (kopf pauses both)", recheck
        )
    return Verdict(True, f"active: no live peer outranks priority {priority}" if live else "active: no other live peer")


def combined(verdicts: list[Verdict]) -> Verdict:
    """A namespaced operator has one peering object per namespace; kopf pauses while any of them says so."""
    if not verdicts:
        return Verdict(True, "active: standalone")
    waiting = [v for v in verdicts if not v.active]
    if not waiting:
        return verdicts[0]
    rechecks = [v.recheck_at for v in waiting if v.recheck_at is not None]
    return Verdict(False, waiting[0].why, min(rechecks, default=None))
