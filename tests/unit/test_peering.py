"""Which replica acts: kopf's peering rule on snapshots of a peering object, and automatic priorities."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from notebook_operator.cli import build_parser
from notebook_operator.reconcile.peering import DEFAULT_LIFETIME_S, Verdict, auto_priority, combined, verdict
from notebook_operator.runner import RunOptions, peering_setup

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def keepalive(priority: int, seen_ago: float, lifetime: int = 15) -> dict[str, object]:
    return {"priority": priority, "lifetime": lifetime, "lastseen": (NOW - timedelta(seconds=seen_ago)).isoformat()}


@pytest.mark.parametrize(("status", "active", "why"), [
    (None, False, "not in the peering yet"),
    ({"b": keepalive(-9, 1)}, False, "not in the peering yet"),
    ({"me": keepalive(-5, 1)}, True, "no other live peer"),
    # a stale own keep-alive (e.g. the API server was away) does not demote: kopf keeps acting
    ({"me": keepalive(-5, 60)}, True, "no other live peer"),
    ({"me": keepalive(-5, 1), "b": keepalive(-9, 1)}, True, "no live peer outranks"),
    ({"me": keepalive(-5, 1), "b": keepalive(-1, 1)}, False, "b has a higher priority"),
    ({"me": keepalive(-5, 1), "b": keepalive(-5, 1)}, False, "same priority"),
    # a dead peer (keep-alive ran out) no longer blocks, whatever its priority
    ({"me": keepalive(-5, 1), "b": keepalive(100, 16)}, True, "no other live peer"),
    ({"me": keepalive(-5, 1), "b": keepalive(100, 14.5)}, False, "higher priority"),
    # a clean exit writes lifetime 0: gone at once
    ({"me": keepalive(-5, 1), "b": keepalive(100, 0.001, lifetime=0)}, True, ""),
    # entries kopf could not read either do not count
    ({"me": keepalive(-5, 1), "b": {"priority": 100}, "c": "x", "d": {"lastseen": "yesterday"}}, True, "no other"),
])  # fmt: skip
def test_verdict_follows_kopfs_rule(status: dict[str, object] | None, active: bool, why: str) -> None:
    result = verdict(status, "me", -5, NOW)
    assert result.active is active
    assert why in result.why


def test_a_blocked_replica_looks_again_when_the_blocking_keepalive_runs_out() -> None:
    status = {"me": keepalive(0, 1), "b": keepalive(10, 5), "c": keepalive(20, 12)}
    result = verdict(status, "me", 0, NOW)
    assert not result.active
    assert result.recheck_at == NOW + timedelta(seconds=3)  # c's keep-alive ends first
    assert verdict(status, "me", 0, result.recheck_at + timedelta(seconds=10)).active


def test_namespaced_operator_is_paused_while_any_namespace_says_so() -> None:
    later = NOW + timedelta(seconds=5)
    assert combined([]).active
    assert combined([Verdict(True, "a"), Verdict(True, "b")]).active
    paused = combined([Verdict(True, "a"), Verdict(False, "b", later), Verdict(False, "c", NOW)])
    assert not paused.active and paused.recheck_at == NOW


def test_automatic_priorities_differ_and_the_older_process_wins() -> None:
    rng = random.Random(1)
    first = auto_priority(NOW, rng)
    second = auto_priority(NOW + timedelta(milliseconds=1), rng)
    assert first > second  # started earlier: higher priority
    same_ms = {auto_priority(NOW, random.Random(seed)) for seed in range(50)}
    assert len(same_ms) > 40  # ties within one millisecond are broken at random
    assert max(same_ms) < 0  # any explicit --priority >= 0 outranks every automatic one


def test_two_replicas_with_identical_arguments_elect_exactly_one() -> None:
    args = build_parser().parse_args(["run", "--peering", "shared"])
    options = RunOptions(peering_name=args.peering, priority=args.priority, peering_lifetime=args.peering_lifetime)
    a, b = peering_setup(options, clusterwide=True), peering_setup(options, clusterwide=True)
    assert a.identity != b.identity and a.priority != b.priority
    status = {a.identity: keepalive(a.priority, 1), b.identity: keepalive(b.priority, 1)}
    roles = [verdict(status, s.identity, s.priority, NOW).active for s in (a, b)]
    assert sorted(roles) == [False, True]


def test_peering_flags() -> None:
    parse = build_parser().parse_args
    default = parse(["run"])
    assert default.peering is None and default.priority is None and default.peering_lifetime == DEFAULT_LIFETIME_S
    setup = peering_setup(RunOptions(), clusterwide=True)
    assert setup.name == "notebook-operator" and not setup.mandatory  # optional: used when the CRDs exist
    named = peering_setup(RunOptions(peering_name="team-a", priority=7, namespaces=["a"]), clusterwide=False)
    assert (named.name, named.mandatory, named.priority, named.namespaces) == ("team-a", True, 7, ["a"])
    assert peering_setup(RunOptions(standalone=True), clusterwide=True).name is None
    assert parse(["run", "--peering-lifetime", "30"]).peering_lifetime == 30
    with pytest.raises(SystemExit):
        parse(["run", "--peering-lifetime", "3"])
