"""Shared pieces of the three resources: the API group, the camelCase base model, conditions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "cloudnotebooks.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "cloudnotebooks"

# Bounds shared by every schema so the API server's CEL cost estimator can price each rule.
NAME_MAX = 253
TEXT_MAX = 1024
LIST_MAX = 64
# What the cloud said about an instance (a failure's code and text), as kept in status and conditions.
CLOUD_REASON_MAX = 256

# A bounded string for map values and list items.
Text = Annotated[str, Field(max_length=TEXT_MAX)]


def object_ref(kind: str, namespace: str, name: str, uid: str) -> dict[str, Any]:
    """One of our namespaced objects as an Event's involvedObject."""
    metadata = {"namespace": namespace, "name": name, "uid": uid}
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata}


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One `x-kubernetes-validations` entry; fieldPath makes the API server name the field."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class Model(BaseModel):
    """Base of every spec and status model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready dict with camelCase keys and no unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(Model):
    """Status is written by the operator only; tolerate fields a newer version added."""

    model_config = ConfigDict(extra="ignore")


class LocalObjectReference(Model):
    name: str = Field(min_length=1, max_length=NAME_MAX, description="Name of an object in the same namespace.")


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """A kstatus-compatible condition (metav1.Condition)."""

    type: str = Field(max_length=316)
    status: ConditionStatus
    reason: str = Field(default="", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class LabelSelectorRequirement(Model):
    key: str = Field(min_length=1, max_length=317)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[Text] | None = Field(default=None, max_length=LIST_MAX)


class LabelSelector(Model):
    """metav1.LabelSelector: an empty selector matches every object."""

    match_labels: dict[str, Text] | None = Field(default=None, max_length=LIST_MAX)
    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, max_length=LIST_MAX)
