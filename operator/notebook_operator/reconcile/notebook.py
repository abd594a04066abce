"""One NotebookInstance as the reconcilers see it: parsed once at the edge (a kopf handler or watch
event), typed spec inward, and the status document it was seen with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from notebook_operator.api.meta import object_ref
from notebook_operator.api.notebookinstance import NotebookInstanceSpec
from notebook_operator.times import rfc3339

KIND = "NotebookInstance"
DROPPED_ANNOTATIONS = ("kopf.zalando.org/", "kubectl.kubernetes.io/last-applied-configuration")


@dataclass(frozen=True)
class Notebook:
    namespace: str
    name: str
    uid: str
    generation: int | None
    spec: NotebookInstanceSpec
    # The status document as last seen. It stays a document: every writer sends merge patches of it, and
    # the decisions compare its fields with what they would write.
    status: Mapping[str, Any]
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    resource_version: str = ""  # the version this view is of: actions are claimed against it

    @classmethod
    def from_object(
        cls,
        namespace: str,
        name: str,
        uid: str,
        meta: Mapping[str, Any],
        spec: Mapping[str, Any],
        status: Mapping[str, Any],
    ) -> Notebook:
        """Parse a NotebookInstance as the API server gave it; pydantic.ValidationError when the spec is not one.
        kopf's annotations and kubectl's last-applied copy are dropped: they would copy the spec again."""
        annotations = meta.get("annotations") or {}
        return cls(
            namespace=namespace,
            name=name,
            uid=uid,
            generation=meta.get("generation"),
            spec=NotebookInstanceSpec.model_validate(dict(spec)),
            status=dict(status),
            labels=dict(meta.get("labels") or {}),
            annotations={k: v for k, v in annotations.items() if not k.startswith(DROPPED_ANNOTATIONS)},
            resource_version=str(meta.get("resourceVersion") or ""),
        )

    @property
    def instance_id(self) -> str | None:
        value = self.status.get("instanceId") or self.spec.instance_id
        return str(value) if value else None

    @property
    def account(self) -> tuple[str, str]:
        """The cloud account it lives in: (namespace, ProviderConfig name), or ("", ClusterProviderConfig name)."""
        ref = self.spec.provider_config_ref
        return ("" if ref.kind == "ClusterProviderConfig" else self.namespace), ref.name

    def owner(self, key: str) -> str | None:
        """Who owns it, from the label `key`, else the annotation of that name."""
        return self.labels.get(key) or self.annotations.get(key)

    @property
    def managed(self) -> bool:
        return self.spec.management_policy == "Manage"

    @property
    def ref(self) -> dict[str, Any]:
        """The object as an Event's involvedObject."""
        return object_ref(KIND, self.namespace, self.name, self.uid)


def deletion_policy(spec: NotebookInstanceSpec) -> str:
    """What deleting the resource does in the cloud: Delete only for managed ones (by default those created
    here); adopted and observed instances are left in place."""
    if spec.management_policy != "Manage":
        return "Orphan"
    return spec.deletion_policy or ("Delete" if spec.template is not None else "Orphan")


def action_record(
    action: str, reason: str, state: str, now: datetime, generation: int | None, **extra: Any
) -> dict[str, Any]:
    """status.lastAction."""
    return {
        "action": action,
        "reason": reason[:1024],
        "state": state,
        "startedAt": rfc3339(now),
        "generation": generation,
        **extra,
    }
