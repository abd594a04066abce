"""Generate the CustomResourceDefinitions in crds/ from the pydantic models.

Pydantic emits JSON Schema with $refs and anyOf-null for optionals; Kubernetes wants a
structural OpenAPI v3 schema with everything inlined. This module does that translation
and adds what only a CRD has: scope, names, subresources and printer columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from notebook_operator.api.idlecullerpolicy import IdleCullerPolicySpec, IdleCullerPolicyStatus
from notebook_operator.api.meta import CATEGORY, GROUP, VERSION
from notebook_operator.api.notebookinstance import NotebookInstanceSpec, NotebookInstanceStatus
from notebook_operator.api.notebooksnapshot import NotebookSnapshotSpec, NotebookSnapshotStatus
from notebook_operator.api.providerconfig import ClusterProviderConfigSpec, ProviderConfigSpec, ProviderConfigStatus

_DROP_KEYS = {"title", "$defs"}


def _overlay(type_schema: dict[str, Any], field_schema: dict[str, Any]) -> dict[str, Any]:
    """A field's own keys (description, default) win over its type's; CEL rules of both apply."""
    rules = type_schema.get("x-kubernetes-validations", []) + field_schema.get("x-kubernetes-validations", [])
    merged = {**type_schema, **field_schema}
    if rules:
        merged["x-kubernetes-validations"] = rules
    return merged


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Resolve $ref, fold `anyOf: [X, null]` into X and drop keys Kubernetes does not accept."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        node = _overlay(_inline(defs[node.pop("$ref").rsplit("/", 1)[-1]], defs), node)
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unsupported union in CRD schema: {options}")
        node = _overlay(_inline(options[0], defs), node)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("default", 0) is None:
        node.pop("default")
    if node.get("additionalProperties") is False:
        node.pop("additionalProperties")  # structural schemas prune unknown fields instead
    for bound in ("Minimum", "Maximum"):
        if isinstance(node.get(f"exclusive{bound}"), int | float) and not isinstance(node[f"exclusive{bound}"], bool):
            # JSON Schema 2020 carries the bound itself; OpenAPI v3.0 a flag beside minimum/maximum.
            node[bound.lower()] = node.pop(f"exclusive{bound}")
            node[f"exclusive{bound}"] = True
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        out[key] = _inline(value, defs) if key in ("properties", "items", "additionalProperties") else value
        if key == "properties":
            out[key] = {name: _inline(prop, defs) for name, prop in value.items()}
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "format" in out and out["format"] not in ("date-time", "int32", "int64", "float", "double"):
        out.pop("format")
    return out


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation", ref_template="#/$defs/{model}")
    result: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    return result


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: list[str]
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: list[dict[str, Any]] = field(default_factory=list)
    scope: str = "Namespaced"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def _age() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _ready() -> dict[str, Any]:
    return {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}


def _account_columns() -> list[dict[str, Any]]:
    """ProviderConfig's and ClusterProviderConfig's: the same account spec and status."""
    return [
        {"name": "Provider", "type": "string", "jsonPath": ".spec.provider"},
        {"name": "Region", "type": "string", "jsonPath": ".spec.region"},
        _ready(),
        {"name": "Instances", "type": "integer", "jsonPath": ".status.instanceCount"},
        {"name": "Last List", "type": "date", "jsonPath": ".status.lastSuccessfulListTime"},
        _age(),
    ]


KINDS: tuple[Kind, ...] = (
    Kind(
        "ProviderConfig",
        "providerconfigs",
        ["nbpc"],
        ProviderConfigSpec,
        ProviderConfigStatus,
        _account_columns(),
    ),
    Kind(
        "ClusterProviderConfig",
        "clusterproviderconfigs",
        ["nbcpc"],
        ClusterProviderConfigSpec,
        ProviderConfigStatus,
        _account_columns(),
        scope="Cluster",
    ),
    Kind(
        "NotebookInstance",
        "notebookinstances",
        ["nbi", "notebook"],
        NotebookInstanceSpec,
        NotebookInstanceStatus,
        [
            {"name": "Provider", "type": "string", "jsonPath": ".status.provider"},
            {"name": "Instance ID", "type": "string", "jsonPath": ".status.instanceId"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Desired", "type": "string", "jsonPath": ".spec.desiredState"},
            {"name": "Idle For", "type": "date", "jsonPath": ".status.idle.since"},
            {"name": "Next Shutdown", "type": "string", "jsonPath": ".status.nextShutdownAt"},
            {"name": "Pending Stop", "type": "string", "jsonPath": ".status.pendingStop.at"},
            _ready(),
            _age(),
        ],
    ),
    Kind(
        "NotebookSnapshot",
        "notebooksnapshots",
        ["nbsnap"],
        NotebookSnapshotSpec,
        NotebookSnapshotStatus,
        [
            {"name": "Notebook", "type": "string", "jsonPath": ".spec.notebookRef.name"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Image", "type": "string", "jsonPath": ".status.imageUrl"},
            {"name": "Deletion", "type": "string", "jsonPath": ".spec.deletionPolicy"},
            _ready(),
            _age(),
        ],
    ),
    Kind(
        "IdleCullerPolicy",
        "idlecullerpolicies",
        ["icp", "culler"],
        IdleCullerPolicySpec,
        IdleCullerPolicyStatus,
        [
            {"name": "Action", "type": "string", "jsonPath": ".spec.action"},
            {"name": "Enforcement", "type": "string", "jsonPath": ".spec.enforcement"},
            {"name": "Dry Run", "type": "boolean", "jsonPath": ".spec.dryRun"},
            {"name": "Matched", "type": "integer", "jsonPath": ".status.matched"},
            {"name": "Idle", "type": "integer", "jsonPath": ".status.idle"},
            {"name": "Stopped", "type": "integer", "jsonPath": ".status.stopped"},
            _age(),
        ],
    ),
)


def crd(kind: Kind) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": openapi_schema(kind.spec),
            "status": openapi_schema(kind.status),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": GROUP,
            "scope": kind.scope,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": kind.short_names,
                "categories": [CATEGORY, "all"] if kind.kind == "NotebookInstance" else [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": kind.columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def render(kind: Kind) -> str:
    header = "# Generated by `notebook-operator crds` from operator/notebook_operator/api. Do not edit.\n"
    return header + yaml.safe_dump(crd(kind), sort_keys=False, width=120)


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = directory / f"{GROUP}_{kind.plural}.yaml"
        path.write_text(render(kind), encoding="utf-8")
        written.append(path)
    return written
