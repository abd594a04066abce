"""kstatus conditions (Ready, Reconciling, Stalled) as plain dicts, changed only when they change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from notebook_operator.times import rfc3339

Condition = dict[str, Any]


def set_condition(
    conditions: list[Condition] | None,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """A new list with `type_` set; lastTransitionTime moves only when the status flips."""
    value = "True" if status else "False"
    result = [dict(c) for c in conditions or []]
    for condition in result:
        if condition.get("type") == type_:
            if condition.get("status") != value:
                condition["lastTransitionTime"] = rfc3339(now)
            condition.update(status=value, reason=reason, message=message)
            if generation is not None:
                condition["observedGeneration"] = generation
            return result
    entry: Condition = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": rfc3339(now),
    }
    if generation is not None:
        entry["observedGeneration"] = generation
    result.append(entry)
    return result


def kstatus(
    conditions: list[Condition] | None,
    *,
    ready: bool,
    reconciling: bool,
    stalled: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """Ready plus the two abnormal-true conditions kstatus reads (Reconciling, Stalled)."""
    out = set_condition(conditions, "Ready", ready, reason, message, now, generation)
    out = set_condition(
        out,
        "Reconciling",
        reconciling,
        reason if reconciling else "Idle",
        message if reconciling else "",
        now,
        generation,
    )
    return set_condition(
        out, "Stalled", stalled, reason if stalled else "Healthy", message if stalled else "", now, generation
    )


def same_conditions(old: list[Condition] | None, new: list[Condition] | None) -> bool:
    def key(conditions: list[Condition] | None) -> list[tuple[Any, ...]]:
        return sorted(
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("observedGeneration"))
            for c in conditions or []
        )

    return key(old) == key(new)
