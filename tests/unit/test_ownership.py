"""Ownership and tags, pure: who the tags name, what a pass changes (only the operator's keys)."""

from __future__ import annotations

from notebook_operator.reconcile.ownership import (
    CLUSTER_TAG,
    NAME_TAG,
    NAMESPACE_TAG,
    desired_tags,
    owned_elsewhere,
    owner_of,
    ownership_tags,
    tag_changes,
)

OURS = ownership_tags("c-1", "team-a", "nb")


def test_an_instance_without_ownership_tags_belongs_to_nobody() -> None:
    assert owned_elsewhere({"team": "x"}, OURS) is None
    assert owner_of({"team": "x"}) is None


def test_ours_is_ours_and_another_cluster_or_notebook_is_not() -> None:
    assert owned_elsewhere(OURS, OURS) is None
    other_cluster = {**OURS, CLUSTER_TAG: "c-2"}
    why = owned_elsewhere(other_cluster, OURS)
    assert why is not None and "cluster c-2" in why and "team-a/nb" in why and "take-ownership" in why
    other_notebook = {**OURS, NAME_TAG: "nb-2"}
    why = owned_elsewhere(other_notebook, OURS)
    assert why is not None and "this cluster" in why and "team-a/nb-2" in why
    assert owned_elsewhere({NAMESPACE_TAG: "team-b"}, OURS) is not None  # a partial claim is a claim
    assert owner_of(other_cluster) == "c-2/team-a/nb"


def test_ownership_wins_over_declared_tags_and_declared_over_defaults() -> None:
    desired = desired_tags(OURS, {"cost": "cc-1", "team": "default"}, {"team": "vision"})
    assert desired == {**OURS, "cost": "cc-1", "team": "vision"}


def test_changes_touch_only_the_operators_keys() -> None:
    current = {**OURS, "team": "old", "gone": "x", "someone-elses": "keep"}
    changes = tag_changes({**OURS, "team": "new"}, current, [*OURS, "team", "gone"])
    assert changes.put == {"team": "new"}
    assert changes.remove == ("gone",)  # "someone-elses" was never the operator's
    assert not tag_changes({**OURS, "team": "new"}, {**OURS, "team": "new", "x": "y"}, list(OURS))
