"""crds/ must be exactly what the models generate, and the schemas must be structural."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from notebook_operator.api.crdgen import KINDS, render
from notebook_operator.api.meta import GROUP
from tests.kube import REPO


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_crd_file_matches_models(kind: Any) -> None:
    path = REPO / "crds" / f"{GROUP}_{kind.plural}.yaml"
    assert path.exists(), "run `make crds`"
    assert path.read_text() == render(kind), f"{path} is stale: run `make crds`"


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key in ("properties",):
            for name, child in node.get(key, {}).items():
                found.extend(_walk(child, f"{path}.{name}"))
        if isinstance(node.get("items"), dict):
            found.extend(_walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            found.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return found


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural(kind: Any) -> None:
    crd = yaml.safe_load(render(kind))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node and "anyOf" not in node and "allOf" not in node, path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        if node.get("type") == "string" and path.startswith(".spec"):
            assert "maxLength" in node or "enum" in node or node.get("format") == "date-time", (
                f"{path}: unbounded string makes CEL cost estimation fail"
            )
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path}: unbounded list"


def test_kinds_have_status_subresource_and_columns() -> None:
    for kind in KINDS:
        version = yaml.safe_load(render(kind))["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert any(col["jsonPath"] == ".metadata.creationTimestamp" for col in version["additionalPrinterColumns"])


def test_notebook_columns_as_designed() -> None:
    ni = next(k for k in KINDS if k.kind == "NotebookInstance")
    names = [c["name"] for c in ni.columns]
    for wanted in ("Provider", "Instance ID", "Phase", "Desired", "Idle For", "Next Shutdown", "Age"):
        assert wanted in names
