"""Money (pure): the price per hour of a notebook and what it has cost while running.

The price comes from ProviderConfig spec.pricing when it names the instance type (ModelArts publishes no
prices through its API, and a negotiated discount beats a list price), else from the cloud's price list
(PAI-DSW ListEcsSpecs). status.cost.accumulated counts running time the operator saw, since it created or
adopted the notebook; status.cost.countedAt is how far it has counted, so a restart loses nothing. It is
written at most every COST_REFRESH (30 min) while running and when the run ends (a cluster of notebooks must
not cost a write per poll).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from notebook_operator.api.providerconfig import Pricing
from notebook_operator.providers.types import CloudInstance, HourlyPrice
from notebook_operator.times import parse_rfc3339, rfc3339

COST_REFRESH = timedelta(minutes=30)


@dataclass(frozen=True)
class Price:
    per_hour: float
    currency: str
    source: str


def price_of(instance_type: str | None, pricing: Pricing | None, listed: Mapping[str, HourlyPrice]) -> Price | None:
    if not instance_type:
        return None
    if pricing is not None and instance_type in pricing.per_hour:
        return Price(float(pricing.per_hour[instance_type]), pricing.currency, "ProviderConfig pricing")
    found = listed.get(instance_type)
    return Price(found.amount, found.currency, "cloud price list") if found else None


def cost_status(
    previous: Mapping[str, Any] | None, price: Price | None, observed: CloudInstance | None, now: datetime
) -> dict[str, Any] | None:
    """The new status.cost, or None when it is not worth a write yet."""
    previous = dict(previous or {})
    accumulated = float(previous.get("accumulated") or 0.0)
    counted = parse_rfc3339(previous.get("countedAt"))
    rate = previous.get("perHour")
    running = observed is not None and observed.phase == "Running" and observed.started_at is not None
    if counted is not None and rate is not None:  # it ran at the last count: add the time since
        since = max(counted, observed.started_at) if running and observed and observed.started_at else counted
        accumulated += float(rate) * max(0.0, (now - since).total_seconds()) / 3600
    if price is None:
        if observed is None or not observed.instance_type:
            return None if not previous else _changed(previous, {**previous, "countedAt": None})
        missing = {
            "accumulated": round(accumulated, 4) if previous.get("accumulated") is not None else None,
            "source": f"no price for {observed.instance_type}: add it to the ProviderConfig's spec.pricing",
        }
        return _changed(previous, missing)
    new: dict[str, Any] = {
        "perHour": price.per_hour,
        "currency": price.currency,
        "source": price.source,
        "accumulated": round(accumulated, 4),
        "countedAt": rfc3339(now) if running else None,
    }
    due = counted is None or now - counted >= COST_REFRESH
    if (
        running
        and not due
        and {k: previous.get(k) for k in ("perHour", "currency", "source")}
        == {
            "perHour": price.per_hour,
            "currency": price.currency,
            "source": price.source,
        }
    ):
        return None
    return _changed(previous, new)


def _changed(previous: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    clean = {k: v for k, v in new.items() if v is not None}
    return None if clean == {k: v for k, v in previous.items() if v is not None} else clean
