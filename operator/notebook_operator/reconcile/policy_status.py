"""IdleCullerPolicy.status from the NotebookInstances it selects (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notebook_operator.reconcile.culling import policy_hours_saved
from notebook_operator.reconcile.policies import Policy, is_exempt, selects


@dataclass(frozen=True)
class Selected:
    """What the policy status needs of one NotebookInstance."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    status: Mapping[str, Any]


def summarize(policy: Policy, notebooks: Iterable[Selected], now: datetime) -> dict[str, Any]:
    """Counts over the selected notebooks (exempt ones are counted apart), the hours saved so far and what they
    would have cost at each notebook's price (by currency; notebooks without a price add hours, not money)."""
    counts = {"matched": 0, "exempt": 0, "running": 0, "idle": 0, "stopped": 0}
    hours = 0.0
    money: dict[str, float] = {}
    for item in notebooks:
        if not selects(policy.selector, item.labels):
            continue
        if is_exempt(item.annotations):
            counts["exempt"] += 1
            continue
        counts["matched"] += 1
        idle = item.status.get("idle") or {}
        phase = item.status.get("phase")
        if phase == "Running":
            counts["running"] += 1
            if any(clock.get("policy") == policy.name for clock in idle.get("clocks") or ()):
                counts["idle"] += 1
        if idle.get("culledBy") == policy.name and phase in ("Stopping", "Stopped"):
            counts["stopped"] += 1
        saved = policy_hours_saved(idle, policy.name, now)
        hours += saved
        cost = item.status.get("cost") or {}
        if saved and cost.get("perHour") is not None and cost.get("currency"):
            money[cost["currency"]] = money.get(cost["currency"], 0.0) + saved * float(cost["perHour"])
    savings = {currency: round(amount, 2) for currency, amount in sorted(money.items())}
    return {**counts, "estimatedHoursSaved": round(hours, 2), "estimatedSavings": savings or None}
