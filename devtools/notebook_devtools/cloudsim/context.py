"""What every route of the emulator shares: the store, the state machines, auth, faults, call counts."""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from notebook_devtools.cloudsim.auth import Verifier
from notebook_devtools.cloudsim.clock import Clock
from notebook_devtools.cloudsim.faults import Faults
from notebook_devtools.cloudsim.jwt import OidcOptions, TokenVerifier
from notebook_devtools.cloudsim.lifecycle import Lifecycle
from notebook_devtools.cloudsim.store import Store


@dataclass
class Sim:
    store: Store
    clock: Clock
    lifecycle: Lifecycle
    verifier: Verifier
    faults: Faults | None = None
    calls: Counter[str] = field(default_factory=Counter)
    # One entry per routed request (instance: the one in its path, if any), faulted or refused ones included:
    # what tests count to prove an action was sent once (e.g. one StopInstance per instance across a failover).
    journal: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=200_000))
    # Operations a credential may not call (as a RAM / IAM policy would refuse them): access key -> routes.
    denied: dict[str, set[str]] = field(default_factory=dict)
    denied_instances: set[str] = field(default_factory=set)  # a resource-level policy refuses stopping these
    oidc: TokenVerifier = field(default_factory=lambda: TokenVerifier(OidcOptions(), None))
    iam_subject_tokens: dict[str, float] = field(default_factory=dict)  # Huawei unscoped tokens -> wall-clock expiry

    def record(self, route: str, request: web.Request, status: int, outcome: str, instance: str | None = None) -> None:
        instance = (
            instance
            or request.match_info.get("InstanceId")
            or request.match_info.get("id")
            or request.match_info.get("instance_id")
        )
        self.journal.append(
            {"route": route, "instance": instance, "status": status, "outcome": outcome, "at": self.clock.now()}
        )


SIM: web.AppKey[Sim] = web.AppKey("sim", Sim)


def sim(request: web.Request) -> Sim:
    return request.app[SIM]


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body ({} when empty); ValueError when it is not an object."""
    raw = await request.read()
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the request body must be a JSON object")
    return data
