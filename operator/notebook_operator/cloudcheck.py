"""`notebook-operator cloud check`: a read-only preflight of one account - do the credentials work, and may
they make every read the operator needs? Nothing in the account is changed."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from notebook_operator.providers.base import Provider
from notebook_operator.providers.errors import AuthFailed, ProviderError
from notebook_operator.providers.factory import Account, connect
from notebook_operator.providers.pai.provider import PaiDswProvider
from notebook_operator.providers.types import CloudInstance

Read = Callable[[Provider, CloudInstance | None], Awaitable[object]]


@dataclass(frozen=True)
class Step:
    operation: str
    used_for: str
    required: bool
    read: Read | None  # None: the listing itself
    needs_instance: bool = True


async def _get(p: Provider, i: CloudInstance | None) -> object:
    assert i is not None
    return await p.get_instance(i.id)


async def _metrics(p: Provider, i: CloudInstance | None) -> object:
    assert i is not None
    return await p.get_utilization(i, timedelta(minutes=5))


async def _idle_rule(p: Provider, i: CloudInstance | None) -> object:
    assert i is not None
    return await p.get_idle_rule(i.id)


async def _timer(p: Provider, i: CloudInstance | None) -> object:
    assert i is not None
    return await p.get_shutdown_timer(i.id)


async def _ecs_specs(p: Provider, i: CloudInstance | None) -> object:
    assert isinstance(p, PaiDswProvider)
    return await p.offered_types()


LIST = "list every instance: mirror status, adopt, find what the operator created"
STEPS: dict[str, list[Step]] = {
    "pai-dsw": [
        Step("ListInstances", LIST, True, None),
        Step("GetInstance", "read an instance before and after an action", True, _get),
        Step("ListEcsSpecs", "check a template's instanceType before creating", False, _ecs_specs, False),
        Step("GetInstanceMetrics", "idle culling with enforcement: Operator", False, _metrics),
        Step("GetIdleInstanceCuller", "idle culling with enforcement: Native", False, _idle_rule),
        Step("GetInstanceShutdownTimer", "maxRunningHours with enforcement: Native", False, _timer),
    ],
    "modelarts": [
        Step("ListNotebooks", LIST, True, None),
        Step("ShowNotebook", "read a notebook before and after an action", True, _get),
        Step("ShowLease", "enforcement: Native (the IDLE or TIMING lease)", False, _idle_rule),
    ],
    "modelarts-devenv": [Step("ListInstances (DevEnviron)", LIST, True, None)],
    "roma-connect": [Step("CheckRomaInstanceListV2", LIST, True, None)],
}


@dataclass(frozen=True)
class Result:
    operation: str
    allowed: bool | str  # True, False, or "skipped"
    code: str
    message: str
    usedFor: str
    required: bool


async def run_checks(provider: Provider) -> list[Result]:
    results: list[Result] = []
    steps = STEPS[provider.name]
    first: CloudInstance | None = None
    try:
        async for instance in provider.list_instances():
            first = instance  # one page is enough
            break
        results.append(Result(steps[0].operation, True, "", "", steps[0].used_for, steps[0].required))
    except ProviderError as e:
        results.append(_refused(steps[0], e))
        why = "credentials refused" if isinstance(e, AuthFailed) else "the listing failed"
        return results + [_skipped(s, why) for s in steps[1:]]
    for step in steps[1:]:
        if first is None and step.needs_instance:
            results.append(_skipped(step, "no instance in the account to read"))
            continue
        assert step.read is not None
        try:
            await step.read(provider, first)
        except ProviderError as e:
            results.append(_refused(step, e))
        else:
            read = f"read {first.id}" if first is not None and step.needs_instance else ""
            results.append(Result(step.operation, True, "", read, step.used_for, step.required))
    return results


def _refused(step: Step, e: ProviderError) -> Result:
    return Result(step.operation, False, e.code or e.reason, e.message, step.used_for, step.required)


def _skipped(step: Step, why: str) -> Result:
    return Result(step.operation, "skipped", "", why, step.used_for, step.required)


def render(results: list[Result], output: str) -> str:
    if output == "json":
        return json.dumps({"checks": [asdict(r) for r in results]}, indent=2)
    rows = [["OPERATION", "ALLOWED", "CODE", "MESSAGE", "USED FOR", "REQUIRED"]]
    for r in results:
        allowed = r.allowed if isinstance(r.allowed, str) else ("yes" if r.allowed else "NO")
        rows.append([r.operation, allowed, r.code, r.message[:80], r.usedFor, "yes" if r.required else "no"])
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def exit_code(results: list[Result]) -> int:
    """0 when every required check passed, 1 when one was refused or failed."""
    return 1 if any(r.required and r.allowed is False for r in results) else 0


def check_account(account: Account, output: str, out: Any = sys.stdout) -> int:
    async def run() -> list[Result]:
        provider = connect(account)
        try:
            return await run_checks(provider)
        finally:
            await provider.aclose()

    results = asyncio.run(run())
    print(render(results, output), file=out)
    return exit_code(results)
