"""List filters as predicates, built once per request from the query string."""

from __future__ import annotations

from collections.abc import Callable, Collection

from notebook_devtools.cloudsim.store import SimInstance

Predicate = Callable[[SimInstance], bool]
Getter = Callable[[SimInstance], object]


def equals(get: Getter, value: str) -> Predicate:
    return lambda instance: str(get(instance)) == value


def contains(get: Getter, value: str) -> Predicate:
    return lambda instance: value in str(get(instance))


def one_of(get: Getter, values: Collection[str]) -> Predicate:
    return lambda instance: str(get(instance)) in values


def between(get: Callable[[SimInstance], float], low: float | None, high: float | None) -> Predicate:
    return lambda instance: (low is None or get(instance) >= low) and (high is None or get(instance) <= high)


def select(instances: list[SimInstance], checks: list[Predicate]) -> list[SimInstance]:
    """The instances every check accepts."""
    if not checks:
        return instances
    return [i for i in instances if all(check(i) for check in checks)]
