"""Who manages a cloud instance, as its tags say, and the tag changes that keep its tags as declared.

Pure: the reconciler reads the instance's tags from the listing it already has (no extra call for a notebook
whose tags are in order) and sends only what changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CLUSTER_TAG = "cloudnotebooks.io:cluster"
NAMESPACE_TAG = "cloudnotebooks.io:namespace"
NAME_TAG = "cloudnotebooks.io:name"
OWNER_TAGS = (CLUSTER_TAG, NAMESPACE_TAG, NAME_TAG)


def ownership_tags(cluster_id: str, namespace: str, name: str) -> dict[str, str]:
    return {CLUSTER_TAG: cluster_id, NAMESPACE_TAG: namespace, NAME_TAG: name}


def owner_of(labels: Mapping[str, str]) -> str | None:
    """The owner the tags name, "cluster/namespace/name" (None: no ownership tags)."""
    if not any(labels.get(k) for k in OWNER_TAGS):
        return None
    return "/".join(labels.get(k) or "?" for k in OWNER_TAGS)


def owned_elsewhere(labels: Mapping[str, str], ours: Mapping[str, str]) -> str | None:
    """Why the instance belongs to someone else (another cluster or another NotebookInstance), else None. An
    instance without ownership tags belongs to nobody yet."""
    if not any(labels.get(k) for k in OWNER_TAGS) or all(labels.get(k) == ours[k] for k in OWNER_TAGS):
        return None
    if labels.get(CLUSTER_TAG) != ours[CLUSTER_TAG]:
        where = f"cluster {labels.get(CLUSTER_TAG) or '(none)'}"
    else:
        where = "this cluster"
    owner = f"{labels.get(NAMESPACE_TAG) or '?'}/{labels.get(NAME_TAG) or '?'}"
    return (
        f"the instance's ownership tags say NotebookInstance {owner} in {where} manages it; nothing was sent. "
        'Annotate cloudnotebooks.io/take-ownership: "true" to take it over'
    )


def desired_tags(
    ownership: Mapping[str, str], defaults: Mapping[str, str] | None, declared: Mapping[str, str] | None
) -> dict[str, str]:
    """The account's defaults, the notebook's own over them, and the ownership tags over both."""
    return {**(defaults or {}), **(declared or {}), **ownership}


@dataclass(frozen=True)
class TagChanges:
    put: dict[str, str]  # keys to add or change, with their values
    remove: tuple[str, ...]  # keys the operator set before and no longer declares

    def __bool__(self) -> bool:
        return bool(self.put or self.remove)


def tag_changes(desired: Mapping[str, str], current: Mapping[str, str], owned: list[str]) -> TagChanges:
    """Only the operator's keys change: what is declared, and what it set before (`owned`). A tag someone else
    put on the instance, under a key never declared here, is left alone."""
    put = {k: v for k, v in desired.items() if current.get(k) != v}
    remove = tuple(sorted(k for k in owned if k not in desired and k in current))
    return TagChanges(put, remove)
